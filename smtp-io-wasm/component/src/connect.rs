//! Opening a client from the WIT connect options: the login checked before anything is
//! opened, every option mapped onto `ConnectOptions` (invalid ones refused before any I/O),
//! then connect and log in.

use super::*;

/// How to log in, from the connect options: checked before anything is opened.
pub(crate) enum Login {
    None,
    Password {
        user: String,
        password: Secret,
        mechanism: Option<AuthMechanism>,
    },
    Token {
        user: String,
        token: Secret,
        mechanism: AuthMechanism,
    },
}

pub(crate) fn login_plan(
    credentials: Option<wit::Credentials>,
    token: Option<wit::TokenCredentials>,
    mechanism: Option<wit::AuthMechanism>,
) -> Result<Login, wit::SmtpError> {
    let mechanism = mechanism.map(mechanism_of);
    let invalid = |what: &str| Err(wit::SmtpError::InvalidInput(what.to_owned()));
    match (credentials, token, mechanism) {
        (Some(_), Some(_), _) => invalid("give credentials or a token, not both"),
        (None, None, Some(_)) => invalid("auth-mechanism without credentials or a token"),
        (None, None, None) => Ok(Login::None),
        (Some(c), None, m) => {
            // Taken over at once, so the password is wiped even when the plan is refused.
            let password = Secret::from(c.password);
            match m {
                Some(m) if m.takes_token() => {
                    invalid("auth-mechanism xoauth2 / oauthbearer takes a token, not a password")
                }
                m => Ok(Login::Password {
                    user: c.user,
                    password,
                    mechanism: m,
                }),
            }
        }
        (None, Some(t), m) => {
            let token = Secret::from(t.token);
            match m {
                None => Ok(Login::Token {
                    user: t.user,
                    token,
                    mechanism: AuthMechanism::XOAuth2,
                }),
                Some(m) if m.takes_token() => Ok(Login::Token {
                    user: t.user,
                    token,
                    mechanism: m,
                }),
                Some(_) => invalid("a token needs auth-mechanism xoauth2 or oauthbearer"),
            }
        }
    }
}

pub(crate) fn mechanism_of(m: wit::AuthMechanism) -> AuthMechanism {
    match m {
        wit::AuthMechanism::Plain => AuthMechanism::Plain,
        wit::AuthMechanism::Login => AuthMechanism::Login,
        wit::AuthMechanism::Xoauth2 => AuthMechanism::XOAuth2,
        wit::AuthMechanism::Oauthbearer => AuthMechanism::OAuthBearer,
        wit::AuthMechanism::ScramSha256 => AuthMechanism::ScramSha256,
        wit::AuthMechanism::ScramSha256Plus => AuthMechanism::ScramSha256Plus,
    }
}

pub(crate) async fn login(
    client: &mut SmtpClient,
    user: &str,
    secret: &Secret,
    mechanism: Option<AuthMechanism>,
) -> Result<(), wit::SmtpError> {
    let Some(secret) = secret.expose_str() else {
        return Err(wit::SmtpError::InvalidInput(
            "the secret is not UTF-8".to_owned(),
        ));
    };
    match mechanism {
        None => client.login(user, secret).await,
        Some(m) => client.login_with(m, user, secret).await,
    }
    .map_err(|e| error(&e))
}

pub(crate) fn use_of(u: wit::ExtensionUse) -> ExtensionUse {
    match u {
        wit::ExtensionUse::WhenOffered => ExtensionUse::WhenOffered,
        wit::ExtensionUse::Never => ExtensionUse::Never,
    }
}

/// Connect, greet, and log in as the options say; the transcript when one was asked for, and
/// the DKIM signer (its key checked before anything is opened).
pub(crate) async fn open(
    options: wit::ConnectOptions,
) -> Result<(SmtpClient, Option<Transcript>, Option<DkimSigner>), wit::SmtpError> {
    let plan = login_plan(options.credentials, options.token, options.auth_mechanism)?;
    let signer = options.dkim.map(dkim_signer).transpose()?;
    let mode = match options.tls {
        wit::TlsMode::Implicit => TlsMode::Implicit,
        wit::TlsMode::Starttls => TlsMode::StartTls,
        wit::TlsMode::None => TlsMode::None,
    };
    let mut connect = ConnectOptions::new(mode);
    let mut tls = match &options.ca_pem {
        Some(pem) => Some(
            TlsConfig::from_ca_pem(pem.as_bytes())
                .map_err(|e| wit::SmtpError::InvalidInput(format!("ca-pem: {e}")))?,
        ),
        None => None,
    };
    if let Some(cert) = options.client_certificate {
        let key = Secret::from(cert.key_pem);
        let base = tls.take().unwrap_or_else(TlsConfig::webpki_roots);
        let with_cert = base
            .with_client_certificate_pem(cert.cert_pem.as_bytes(), key.expose())
            // The error never quotes the key (smtp-rustls says only what was wrong).
            .map_err(|e| wit::SmtpError::InvalidInput(format!("client-certificate: {e}")))?;
        tls = Some(with_cert);
    }
    if let Some(tls) = tls {
        connect = connect.with_tls(tls);
    }
    if let Some(name) = options.tls_server_name {
        // Checked when the connection opens: a name that cannot be a server name is an io
        // error (invalid-input) during connect, before any I/O.
        connect = connect.with_tls_server_name(name);
    }
    if let Some(url) = options.proxy {
        // Wiped when dropped: the URL may hold the proxy password. The parse error never
        // repeats it (smtp-proto's ProxyUrlError says only what was wrong).
        let url = Secret::from(url);
        let proxy = url
            .expose_str()
            .ok_or_else(|| wit::SmtpError::InvalidInput("proxy: not UTF-8".to_owned()))
            .and_then(|url| {
                Proxy::parse(url).map_err(|e| wit::SmtpError::InvalidInput(format!("proxy: {e}")))
            })?;
        connect = connect.with_proxy(proxy);
    }
    if let Some(address) = options.local_address {
        let ip = address.parse::<IpAddr>().map_err(|_| {
            wit::SmtpError::InvalidInput(format!("local-address: {address:?} is not an IP address"))
        })?;
        connect = connect.with_local_address(ip);
    }
    if let Some(ms) = options.connect_timeout_ms {
        connect = connect.with_connect_timeout(Duration::from_millis(ms.into()));
    }
    if options.allow_plaintext_auth {
        connect = connect.map_client_options(|o| o.allow_plaintext_auth());
    }
    if let Some(u) = options.pipelining {
        connect = connect.map_client_options(|o| o.with_pipelining(use_of(u)));
    }
    if let Some(u) = options.chunking {
        connect = connect.map_client_options(|o| o.with_chunking(use_of(u)));
    }
    if let Some(d) = options.data_pipelining {
        let d = match d {
            wit::DataPipelining::WhenSafe => DataPipelining::WhenSafe,
            wit::DataPipelining::Always => DataPipelining::Always,
        };
        connect = connect.map_client_options(|o| o.with_data_pipelining(d));
    }
    if let Some(p) = options.protocol {
        let p = match p {
            wit::Protocol::Smtp => Protocol::Smtp,
            wit::Protocol::Lmtp => Protocol::Lmtp,
        };
        connect = connect.map_client_options(|o| o.with_protocol(p));
    }
    let transcript = options.transcript_lines.map(Transcript::new);
    if let Some(t) = &transcript {
        let sink = t.clone();
        connect = connect.map_client_options(|o| o.with_transcript(Box::new(sink)));
    }
    if let Some(ms) = options.reply_timeout_ms {
        connect = connect.with_reply_timeout(Duration::from_millis(ms.into()));
    }
    if let Some(ms) = options.deadline_ms {
        // The session's deadline counts from before the connect (`ConnectClock`): the TCP
        // connect and an implicit-TLS handshake count against it.
        connect = connect.with_deadline(Duration::from_millis(ms.into()));
    }
    let mut client = connect
        .connect(&options.host, options.port, &options.ehlo_domain)
        .await
        .map_err(|e| error(&e))?;
    match plan {
        Login::None => {}
        Login::Password {
            user,
            password,
            mechanism,
        } => login(&mut client, &user, &password, mechanism).await?,
        Login::Token {
            user,
            token,
            mechanism,
        } => login(&mut client, &user, &token, Some(mechanism)).await?,
    }
    Ok((client, transcript, signer))
}
