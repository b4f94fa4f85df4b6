//! `--proxy` and `--bind` through the whole CLI: STARTTLS to the capture server through a real
//! SOCKS5 proxy (`pproxy`, started here; `scripts/test.sh` installs it) with its password from
//! `SMTP_PROXY_PASSWORD`, the certificate checked for the SMTP server, never the proxy; a wrong
//! proxy password fails as a connect error without showing it; a bad proxy URL is a usage error.

use super::*;

use smtp_testkit::proxy::{Listen, Pproxy};

#[tokio::test]
async fn starttls_through_a_socks5_proxy_with_its_password_from_the_environment() {
    let proxy = Pproxy::start(&[Listen::Socks5Auth]);
    let port = proxy.port(Listen::Socks5Auth);
    let proxy_url = format!("socks5://user@127.0.0.1:{port}");
    let (server, _ca, args) = external(
        CaptureConfig::default(),
        "proxy-ok",
        &[
            "--to",
            "bob@example.org",
            "--proxy",
            &proxy_url,
            "--timeout",
            "10",
        ],
    )
    .await;
    let out = smtp_send_async(
        args.clone(),
        vec![("SMTP_PROXY_PASSWORD".into(), "secret".into())],
        Some(MESSAGE.to_vec()),
    )
    .await;
    assert_exit(&out, Exit::Accepted);
    assert_eq!(server.messages().len(), 1);
    let tunnels = proxy.tunnels_to(&server.addr().to_string());
    assert!(tunnels > 0, "{}", proxy.log());

    // The wrong proxy password: a connect error that does not show it; nothing delivered.
    let out = smtp_send_async(
        args,
        vec![("SMTP_PROXY_PASSWORD".into(), "not-the-secret".into())],
        Some(MESSAGE.to_vec()),
    )
    .await;
    assert_exit(&out, Exit::Connect);
    assert!(!text(&out.stderr).contains("not-the-secret"));
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_bad_proxy_or_bind_is_a_usage_error_before_connecting() {
    for (flag, value) in [
        ("--proxy", "ftp://me:hunter2@proxy.example:21"),
        ("--proxy", "socks5://proxy.example"),
        ("--bind", "not-an-address"),
    ] {
        let out = to_port_1(
            "alice@example.com",
            "bob@example.org",
            &[flag, value],
            Some(MESSAGE),
        );
        assert_exit(&out, Exit::Usage);
        assert!(!text(&out.stderr).contains("hunter2"));
    }
}

/// `--client-cert` needs `--client-key` (and the other way round); files that cannot be read
/// are a local I/O error, a key that is no key a usage error, both before connecting.
#[test]
fn client_certificate_flags_are_checked_before_connecting() {
    let cert = temp_file(
        "client-cert.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let key = temp_file("client-key.pem", b"not a key at all");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // The client certificate flags, the exit they end with, and what standard error names.
    let cases: [(&[&str], Exit, Option<&str>); 3] = [
        (
            &["--client-cert", "/nonexistent/cert.pem"],
            Exit::Usage,
            None,
        ),
        (
            &[
                "--client-cert",
                "/nonexistent/cert.pem",
                "--client-key",
                "/nonexistent/key.pem",
            ],
            Exit::LocalIo,
            None,
        ),
        (
            &["--client-cert", cert, "--client-key", key],
            Exit::Usage,
            Some("--client-cert"),
        ),
    ];
    for (flags, exit, names) in cases {
        let out = to_port_1(
            "alice@example.com",
            "bob@example.org",
            &[&["--tls", "implicit"], flags].concat(),
            Some(MESSAGE),
        );
        assert_exit(&out, exit);
        if let Some(names) = names {
            assert!(text(&out.stderr).contains(names));
        }
    }
}
