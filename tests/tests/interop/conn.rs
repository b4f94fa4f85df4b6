//! One connection of a case: the client, its transcript, and how errors are reported with
//! the end of that transcript.

use crate::*;

/// Every command and reply of one connection (AUTH payloads are redacted by the engine).
#[derive(Clone, Default)]
pub(crate) struct Transcript(Arc<Mutex<Vec<String>>>);

impl TranscriptSink for Transcript {
    fn client(&self, line: &str) {
        self.0.lock().unwrap().push(format!("C: {line}"));
    }
    fn server(&self, reply: &Reply) {
        self.0.lock().unwrap().push(format!("S: {reply}"));
    }
}

impl Transcript {
    pub(crate) fn client_lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("C: ").map(str::to_owned))
            .collect()
    }

    pub(crate) fn sent(&self, prefix: &str) -> bool {
        self.sent_with(prefix, &[])
    }

    /// Whether a command starting with `prefix` went out carrying each of `params`.
    pub(crate) fn sent_with(&self, prefix: &str, params: &[&str]) -> bool {
        self.client_lines()
            .iter()
            .any(|l| l.starts_with(prefix) && params.iter().all(|p| l.contains(p)))
    }

    pub(crate) fn tail(&self, n: usize) -> String {
        let lines = self.0.lock().unwrap();
        let skip = lines.len().saturating_sub(n);
        let mut out = String::new();
        if skip > 0 {
            let _ = writeln!(out, "      ... {skip} earlier line(s)");
        }
        for l in lines.iter().skip(skip) {
            let _ = writeln!(out, "      {l}");
        }
        out
    }
}

pub(crate) struct Conn {
    pub(crate) client: SmtpClient,
    pub(crate) log: Transcript,
}

impl Conn {
    /// An error message with the error, its debug form and the end of the transcript.
    pub(crate) fn fail(&self, what: &str, e: &SmtpError) -> String {
        failure(&self.log, what, e)
    }

    pub(crate) fn explain(&self, what: &str) -> String {
        format!("{what}\n    transcript:\n{}", self.log.tail(30))
    }

    /// The session must still be usable after what `note` says: a NOOP is answered, then QUIT.
    pub(crate) async fn noop_then_quit(mut self, note: &str) -> Result<String, String> {
        self.client
            .noop()
            .await
            .map_err(|e| self.fail("NOOP afterwards", &e))?;
        self.quit().await?;
        Ok(format!("{note}; session usable"))
    }

    pub(crate) async fn quit(self) -> Result<(), String> {
        let log = self.log.clone();
        self.client
            .quit()
            .await
            .map_err(|e| failure(&log, "QUIT", &e))
    }
}

pub(crate) fn failure(log: &Transcript, what: &str, e: &SmtpError) -> String {
    format!(
        "{what}: {e}\n    error: {e:?}\n    transcript:\n{}",
        log.tail(30)
    )
}

pub(crate) async fn connect_with(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    options: SmtpClientOptions,
) -> Result<Conn, String> {
    connect_route(ctx, t, port, mode, options, None).await
}

/// [`connect_with`], through `proxy` when given (the TLS name stays [`HOST`], the SMTP
/// server's).
pub(crate) async fn connect_route(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    options: SmtpClientOptions,
    proxy: Option<Proxy>,
) -> Result<Conn, String> {
    let log = Transcript::default();
    // A target's LMTP applies to every case; a case may ask for LMTP on an SMTP target's port.
    let options = if t.protocol == Protocol::Lmtp {
        options.with_protocol(Protocol::Lmtp)
    } else {
        options
    };
    let options = options
        .with_timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .with_transcript(Box::new(log.clone()));
    let mut connect = ConnectOptions::new(mode)
        .with_tls_config(ctx.tls.clone())
        .with_connect_timeout(Duration::from_secs(10))
        .with_client_options(options);
    if let Some(proxy) = proxy {
        connect = connect.with_proxy(proxy);
    }
    let client = connect
        .connect(HOST, port, EHLO)
        .await
        .map_err(|e| failure(&log, &format!("connect to {port} ({mode:?})"), &e))?;
    let tls = client.session().is_tls();
    if tls != (mode != TlsMode::None) {
        return Err(format!(
            "connected with {mode:?} but session().is_tls() = {tls}"
        ));
    }
    Ok(Conn { client, log })
}

pub(crate) async fn connect(
    ctx: &Ctx,
    t: &Target,
    options: SmtpClientOptions,
) -> Result<Conn, String> {
    connect_with(ctx, t, t.port, t.mode, options).await
}
