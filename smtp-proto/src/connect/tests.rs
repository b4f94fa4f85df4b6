//! The shared connect settings and the adapter side (`settings.rs`, `adapter.rs`): an adapter
//! written as adapters write theirs, the defaults, URLs, refusals, the clock, shared copies.

use std::io;
use std::sync::{Arc, Mutex};
use std::thread_local;

use core::future::Future;
use core::net::IpAddr;
use core::time::Duration;

use super::*;
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::client::{SmtpClient, SmtpClientOptions};
use crate::connect::ProxyKind;
use crate::error::SmtpError;
use crate::future::block_on;
use crate::options::Shared;
use crate::policy::BoundedPolicy;
use crate::reply::Reply;
use crate::session::{DataPipelining, Protocol};
use crate::transcript::TranscriptSink;
use crate::transport::Transport;

/// An adapter's options, as an adapter writes them: the shared settings and one extra.
#[derive(Debug)]
struct Options {
    settings: ConnectSettings,
    extra: bool,
}

crate::connect_options! {
    Options { extra: false }
    fn default_client_options() -> SmtpClientOptions {
        SmtpClientOptions::new().with_max_chained(3)
    }
}

impl Options {
    fn with_extra(mut self) -> Self {
        self.extra = true;
        self
    }
}

/// A server in memory: its greeting at once, then its next reply after each write of the
/// client, whatever it wrote; it keeps the writes. Once `closed`, a read with nothing ready
/// finds the end of the stream.
struct Memory {
    replies: Vec<&'static [u8]>,
    ready: Vec<u8>,
    written: Arc<Mutex<Vec<u8>>>,
    closed: bool,
}

impl Transport for Memory {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ready.is_empty() {
            if self.closed {
                return Ok(0);
            }
            return core::future::pending().await;
        }
        let n = buf.len().min(self.ready.len());
        buf[..n].copy_from_slice(&self.ready[..n]);
        self.ready.drain(..n);
        Ok(n)
    }
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.written.lock().unwrap().extend_from_slice(buf);
        if !self.replies.is_empty() {
            self.ready.extend_from_slice(self.replies.remove(0));
        }
        Ok(())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn sleep(_: Duration) -> impl Future<Output = ()> {
        core::future::pending()
    }
    fn now() -> Duration {
        Duration::ZERO
    }
    /// Encrypted, so that a login needs no plaintext permission.
    fn is_encrypted(&self) -> bool {
        true
    }
}

impl Memory {
    /// A server that says nothing until written to, then gives `replies` one per write.
    fn replying(replies: &[&'static [u8]]) -> Memory {
        Memory {
            replies: replies.to_vec(),
            ready: Vec::new(),
            written: Arc::default(),
            closed: false,
        }
    }
}

/// The replies of a server that greets, offers AUTH PLAIN and accepts it.
const SERVER: [&[u8]; 3] = [
    b"220 mx.example\r\n",
    b"250-mx.example\r\n250 AUTH PLAIN\r\n",
    b"235 ok\r\n",
];

thread_local! {
    static WRITTEN: Arc<Mutex<Vec<u8>>> = Arc::default();
    static OPENED: Mutex<Option<(String, u16, String, TlsMode)>> = const { Mutex::new(None) };
}

impl Connect for Options {
    type Transport = Memory;

    async fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient<Memory>, SmtpError> {
        let (_clock, parts) = self.settings.start::<Memory>(ehlo_domain)?;
        parts.refuse(&[ConnectSetting::Proxy])?;
        OPENED.with(|o| {
            *o.lock().unwrap() = Some((host.into(), port, ehlo_domain.into(), parts.mode))
        });
        let transport = Memory {
            replies: SERVER[1..].to_vec(),
            ready: SERVER[0].to_vec(),
            written: WRITTEN.with(Arc::clone),
            closed: false,
        };
        SmtpClient::connect_with(transport, ehlo_domain, parts.client).await
    }
}

/// Every shared builder method lands in the shared settings, and the adapter's own
/// settings stay beside them.
#[test]
fn the_shared_methods_set_the_shared_settings() {
    let proxy = Proxy::parse("socks5://proxy.example:1080").unwrap();
    let local: IpAddr = "192.0.2.7".parse().unwrap();
    let options = Options::new(TlsMode::StartTls)
        .with_extra()
        .with_connect_timeout(Duration::from_secs(5))
        .with_deadline(Duration::from_secs(90))
        .with_reply_timeout(Duration::from_secs(7))
        .allow_plaintext_auth()
        .with_tls_server_name("mx.example")
        .with_proxy(proxy)
        .with_local_address(local)
        .map_client_options(|o| o.with_data_pipelining(DataPipelining::Always));
    assert!(options.extra);
    let s = options.settings();
    assert_eq!(options.mode(), TlsMode::StartTls);
    assert_eq!(s.connect_timeout(), Duration::from_secs(5));
    assert_eq!(s.tls_server_name(), Some("mx.example"));
    assert_eq!(s.proxy().map(Proxy::kind), Some(ProxyKind::Socks5));
    assert_eq!(s.local_address(), Some(local));
    let config = s.session_config();
    assert_eq!(config.timeouts.total, Some(Duration::from_secs(90)));
    assert_eq!(config.timeouts.command, Duration::from_secs(7));
    assert_eq!(config.plaintext_auth, crate::PlaintextAuth::Allow);
    assert_eq!(config.data_pipelining, DataPipelining::Always);
    // The adapter's default client options, kept by the changes above.
    assert_eq!(config.max_chained, 3);
    // `with_client_options` replaces them, the adapter's defaults included.
    let replaced = options.with_client_options(SmtpClientOptions::new());
    assert_eq!(replaced.settings().session_config().max_chained, 8);
    assert_eq!(
        replaced.settings().connect_timeout(),
        Duration::from_secs(5)
    );
}

/// The client's settings every adapter offers by name reach the session's configuration, each
/// keeping the others.
#[test]
fn the_client_methods_reach_the_session() {
    let timeouts = crate::Timeouts {
        greeting: Duration::from_secs(3),
        ..crate::Timeouts::default()
    };
    let options = Options::new(TlsMode::Implicit)
        .with_timeouts(timeouts)
        .with_protocol(Protocol::Lmtp)
        .with_pipelining(crate::ExtensionUse::Never)
        .with_chunking(crate::ExtensionUse::Never)
        .with_recipient_policy(crate::RecipientPolicy::AcceptPartial)
        .with_policy(Box::new(BoundedPolicy::new().max_recipients(2)))
        .with_message_options(crate::MessageOptions {
            require_tls: true,
            ..crate::MessageOptions::default()
        })
        .with_read_buffer(1)
        .with_audit_sink(Box::new(crate::NoopAuditSink))
        .with_transcript(Box::new(Lines::default()))
        .map_session_config(|c| c.max_chained = 5);
    let config = options.settings().session_config();
    assert_eq!(config.timeouts.greeting, Duration::from_secs(3));
    assert_eq!(config.protocol, Protocol::Lmtp);
    assert_eq!(config.pipelining, crate::ExtensionUse::Never);
    assert_eq!(config.chunking, crate::ExtensionUse::Never);
    assert_eq!(
        config.recipient_policy,
        crate::RecipientPolicy::AcceptPartial
    );
    assert_eq!(config.max_chained, 5);
    assert!(config.transcript.is_some());
    let three = crate::Envelope::new(
        "a@x.example",
        &["b@y.example", "c@y.example", "d@y.example"],
    );
    let refused = config.policy.check_recipients(three.unwrap().to());
    assert!(refused.is_err(), "the policy is kept");
    let client = options.settings().client_options();
    assert!(client.message.require_tls);
    assert_eq!(client.read_buffer, Some(512));
    let replaced = options.with_session_config(crate::SessionConfig::default());
    assert_eq!(
        replaced.settings().session_config().protocol,
        Protocol::Smtp
    );
}

#[test]
fn defaults() {
    let options = Options::new(TlsMode::Implicit);
    let s = options.settings();
    assert_eq!(s.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(s.tls_server_name(), None);
    assert!(s.proxy().is_none() && s.local_address().is_none());
    assert_eq!(s.session_config().timeouts.total, None);
    assert_eq!(s.session_config().max_chained, 3);
}

/// A STARTTLS handshake is bounded by the connect timeout, as an implicit-TLS one is: `start`
/// takes the smaller of it and the session's own handshake limit. It used to wait out the
/// 5-minute command limit.
#[test]
fn start_bounds_the_starttls_handshake_by_the_connect_timeout() {
    let handshake = |options: Options| {
        let (_, parts) = options.settings.start::<Memory>("client.example").unwrap();
        parts.client.session_config().timeouts.tls_handshake
    };
    let quick = Options::new(TlsMode::StartTls).with_connect_timeout(Duration::from_secs(7));
    assert_eq!(handshake(quick), Duration::from_secs(7));
    let tight = Options::new(TlsMode::StartTls).with_session_config(crate::SessionConfig {
        timeouts: crate::Timeouts::uniform(Duration::from_secs(3)),
        ..crate::SessionConfig::default()
    });
    assert_eq!(handshake(tight), Duration::from_secs(3));
}

#[test]
fn from_url_takes_the_urls_settings() {
    let url =
        SmtpUrl::parse("lmtp://mx.example:2424?tls=none&timeout=9&connect_timeout=4&deadline=60")
            .unwrap();
    let options = Options::from_url(&url);
    let s = options.settings();
    assert_eq!(options.mode(), TlsMode::None);
    assert_eq!(s.connect_timeout(), Duration::from_secs(4));
    let config = s.session_config();
    assert_eq!(config.protocol, Protocol::Lmtp);
    assert_eq!(config.timeouts.command, Duration::from_secs(9));
    assert_eq!(config.timeouts.total, Some(Duration::from_secs(60)));
    // The adapter's defaults are the base.
    assert_eq!(config.max_chained, 3);
    // Nothing in the URL: the defaults.
    let plain = Options::from_url(&SmtpUrl::parse("smtps://mx.example").unwrap());
    assert_eq!(plain.mode(), TlsMode::Implicit);
    assert_eq!(plain.settings().connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(plain.settings().session_config().timeouts.total, None);
}

#[test]
fn a_setting_the_adapter_cannot_honour_is_refused() {
    let all = [
        ConnectSetting::Proxy,
        ConnectSetting::LocalAddress,
        ConnectSetting::TlsServerName,
    ];
    assert!(
        ConnectSettings::new(TlsMode::None)
            .into_parts()
            .refuse(&all)
            .is_ok()
    );
    let cases = [
        (
            ConnectSettings::new(TlsMode::None)
                .with_proxy(Proxy::parse("http://proxy.example:3128").unwrap()),
            "proxy",
        ),
        (
            ConnectSettings::new(TlsMode::None).with_local_address("::1".parse().unwrap()),
            "local address",
        ),
        (
            ConnectSettings::new(TlsMode::None).with_tls_server_name("mx.example"),
            "certificate",
        ),
    ];
    for (settings, named) in cases {
        let parts = settings.into_parts();
        let err = parts.refuse(&all).unwrap_err();
        assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains(named), "{err}");
        // Allowed when the adapter can honour it.
        assert!(parts.refuse(&[]).is_ok());
    }
    let parts = ConnectSettings::new(TlsMode::None)
        .with_tls_server_name("mx.example")
        .into_parts();
    assert_eq!(parts.server_name("192.0.2.1"), "mx.example");
    let parts = ConnectSettings::new(TlsMode::None).into_parts();
    assert_eq!(parts.server_name("192.0.2.1"), "192.0.2.1");
}

/// `start` checks the EHLO name before anything else and marks the client options with
/// the start, so the deadline counts from it.
#[test]
fn start_checks_the_ehlo_name_and_marks_the_start() {
    let err = ConnectSettings::new(TlsMode::None)
        .start::<Memory>("bad name")
        .unwrap_err();
    assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
    let (_, parts) = ConnectSettings::new(TlsMode::None)
        .start::<Memory>("client.example")
        .unwrap();
    assert!(parts.client.into_parts().started.is_some());
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl TranscriptSink for Lines {
    fn client(&self, line: &str) {
        self.0.lock().unwrap().push(line.into());
    }
    fn server(&self, _: &Reply) {}
    fn enabled(&self) -> bool {
        false
    }
}

/// Copies of shared settings have the same values and share the policy and the sinks,
/// each of whose methods is forwarded (the traits' provided ones too).
#[test]
fn shared_settings_copy_values_and_share_the_sinks() {
    let lines = Arc::new(Lines::default());
    let shared = ConnectSettings::new(TlsMode::StartTls)
        .with_connect_timeout(Duration::from_secs(3))
        .with_tls_server_name("mx.example")
        .map_client_options(|o| {
            o.with_data_pipelining(DataPipelining::Always)
                .with_policy(Box::new(BoundedPolicy::new().max_message_size(1000)))
                .with_transcript(Box::new(Shared(lines.clone() as Arc<dyn TranscriptSink>)))
                .with_read_buffer(4096)
        })
        .into_shared();
    assert_eq!(shared.mode(), TlsMode::StartTls);
    assert_eq!(
        shared.session_config().data_pipelining,
        DataPipelining::Always
    );
    let copies = [shared.settings(), shared.clone().settings()];
    for (n, copy) in copies.into_iter().enumerate() {
        assert_eq!(copy.mode(), TlsMode::StartTls);
        assert_eq!(copy.connect_timeout(), Duration::from_secs(3));
        assert_eq!(copy.tls_server_name(), Some("mx.example"));
        let parts = copy.into_parts().client.into_parts();
        assert_eq!(parts.config.data_pipelining, DataPipelining::Always);
        assert_eq!(parts.read_buffer, Some(4096));
        assert_eq!(parts.config.policy.max_message_size(), Some(1000));
        let sink = parts.config.transcript.expect("the transcript is kept");
        assert!(!sink.enabled(), "the sink's own `enabled` is forwarded");
        sink.client(&format!("copy {n}"));
    }
    assert_eq!(*lines.0.lock().unwrap(), ["copy 0", "copy 1"]);
    // Without a transcript, copies have none.
    let none = ConnectSettings::new(TlsMode::None).into_shared().settings();
    assert!(
        none.into_parts()
            .client
            .into_parts()
            .config
            .transcript
            .is_none()
    );
}

#[test]
fn url_credentials_and_ehlo_name() {
    let url = SmtpUrl::parse("smtps://me%40x.example:s3cret@mx.example?helo=app.example").unwrap();
    assert_eq!(url.credentials(), Some(("me@x.example", "s3cret")));
    assert_eq!(url.ehlo_domain("fallback.example"), "app.example");
    let url = SmtpUrl::parse("smtps://me@mx.example").unwrap();
    assert_eq!(url.credentials(), None, "no password: the caller logs in");
    assert_eq!(url.ehlo_domain("fallback.example"), "fallback.example");
}

/// `connect_url` over an adapter: the URL's host, port, EHLO name and mode reach the
/// adapter's `connect`, and it logs in with the URL's credentials.
#[test]
fn connect_url_connects_and_logs_in() {
    let url = SmtpUrl::parse("smtps://me:pw@mx.example:4650?helo=app.example&auth=plain").unwrap();
    let client = block_on(connect_url::<Options>(&url, "fallback.example")).unwrap();
    assert_eq!(client.state(), crate::SessionState::Ready);
    let opened = OPENED.with(|o| o.lock().unwrap().take()).unwrap();
    assert_eq!(
        opened,
        (
            "mx.example".into(),
            4650,
            "app.example".into(),
            TlsMode::Implicit
        )
    );
    let written = WRITTEN.with(|w| String::from_utf8(w.lock().unwrap().clone()).unwrap());
    assert!(
        written.starts_with("EHLO app.example\r\nAUTH PLAIN "),
        "{written}"
    );
}

/// Without credentials nothing is sent after EHLO.
#[test]
fn connect_url_without_credentials_does_not_log_in() {
    let url = SmtpUrl::parse("smtps://mx.example").unwrap();
    let client = block_on(connect_url::<Options>(&url, "client.example")).unwrap();
    assert_eq!(client.state(), crate::SessionState::Authentication);
    let written = WRITTEN.with(|w| String::from_utf8(w.lock().unwrap().clone()).unwrap());
    assert_eq!(written, "EHLO client.example\r\n");
}

#[test]
fn an_adapter_refusal_stops_connect_url() {
    let url = SmtpUrl::parse("smtps://mx.example").unwrap();
    let options = Options::from_url(&url).with_proxy(Proxy::parse("socks5://p.example:1").unwrap());
    let err = block_on(Connect::connect(options, "mx.example", 465, "c.example")).unwrap_err();
    assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
}

/// Through either kind of proxy whose last answer arrives in one piece with the server's
/// greeting: the tunnel takes the proxy's answer and not a byte more, and the session that
/// follows on the same transport reads the greeting and says EHLO.
#[test]
fn a_tunnel_takes_no_byte_of_the_server() {
    const HTTP: &[&[u8]] = &[b"HTTP/1.1 200 Connection established\r\n\r\n220 mx.example\r\n"];
    const SOCKS5: &[&[u8]] = &[
        &[5, 0],
        &[
            5, 0, 0, 1, 127, 0, 0, 1, 0, 25, b'2', b'2', b'0', b' ', b'm', b'x', b'\r', b'\n',
        ],
    ];
    for (proxy, answers, request) in [
        (
            Proxy::http("proxy", 3128),
            HTTP,
            &b"CONNECT mx.example:25 HTTP/1.1\r\nHost: mx.example:25\r\n\r\n"[..],
        ),
        (
            Proxy::socks5("proxy", 1080),
            SOCKS5,
            &[
                5, 1, 0, 5, 1, 0, 3, 10, b'm', b'x', b'.', b'e', b'x', b'a', b'm', b'p', b'l',
                b'e', 0, 25,
            ][..],
        ),
    ] {
        let replies: Vec<&'static [u8]> = answers.iter().chain(&SERVER[1..]).copied().collect();
        let mut transport = Memory::replying(&replies);
        let written = Arc::clone(&transport.written);
        block_on(open_tunnel(&mut transport, &proxy, "mx.example", 25)).unwrap();
        assert_eq!(written.lock().unwrap().as_slice(), request);
        written.lock().unwrap().clear();
        let client = block_on(SmtpClient::connect_with(
            transport,
            "client.example",
            SmtpClientOptions::new(),
        ))
        .unwrap();
        assert_eq!(client.capabilities(), ["AUTH PLAIN"]);
        assert_eq!(
            written.lock().unwrap().as_slice(),
            b"EHLO client.example\r\n"
        );
    }
}

/// A proxy that closes the connection mid-handshake, or refuses the tunnel, ends it with an
/// error naming it; nothing is read past its answer.
#[test]
fn a_tunnel_that_fails_says_why() {
    let mut closed = Memory {
        closed: true,
        ..Memory::replying(&[])
    };
    let err = block_on(open_tunnel(
        &mut closed,
        &Proxy::socks5("p", 1),
        "mx.example",
        25,
    ));
    let err = err.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("SOCKS5"), "{err}");
    let mut refused = Memory::replying(&[b"HTTP/1.1 403 Forbidden\r\n\r\n220 mx\r\n"]);
    let err = block_on(open_tunnel(
        &mut refused,
        &Proxy::http("p", 1),
        "mx.example",
        25,
    ));
    assert_eq!(err.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(refused.ready, b"220 mx\r\n");
}
