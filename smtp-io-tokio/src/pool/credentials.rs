//! How a pool logs in on each new connection: a password with the mechanism the engine picks or
//! one named, or an OAuth 2.0 token from a [`TokenSource`] (XOAUTH2, OAUTHBEARER), fetched for
//! each new connection and once more, fresh, when the server rejects it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use smtp_proto::Secret;

use crate::{AuthMechanism, SmtpClient, SmtpError, SmtpOp, TokioTransport};

/// The SASL mechanisms that carry an OAuth 2.0 token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenMechanism {
    /// XOAUTH2 (Google, Microsoft).
    XOAuth2,
    /// OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

impl From<TokenMechanism> for AuthMechanism {
    fn from(m: TokenMechanism) -> AuthMechanism {
        match m {
            TokenMechanism::XOAuth2 => AuthMechanism::XOAuth2,
            TokenMechanism::OAuthBearer => AuthMechanism::OAuthBearer,
        }
    }
}

/// A token request's future, as a [`TokenSource`] returns it.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<Secret>> + Send + 'a>>;

/// Where a [`Mailer`](super::Mailer) gets an OAuth 2.0 access token for XOAUTH2 or
/// OAUTHBEARER: asked once for each new connection, and once more with `refresh: true` when
/// the server rejected the token it gave (an expired token: the pool then logs in again on a
/// fresh connection). A source that caches tokens should drop its cached one on `refresh`.
///
/// Any `Fn(bool) -> impl Future<Output = io::Result<String>>` is a source:
///
/// ```no_run
/// use smtp_io_tokio::{Mailer, TlsMode, TokenMechanism};
///
/// # fn demo() -> Result<(), smtp_io_tokio::SmtpError> {
/// let mailer = Mailer::builder("smtp.office365.com", 587, TlsMode::StartTls, "app.example.com")
///     .oauth2(TokenMechanism::XOAuth2, "me@example.com", |refresh: bool| async move {
///         // Ask the identity provider (a cached token unless `refresh`).
///         Ok::<_, std::io::Error>(format!("token-{refresh}"))
///     })
///     .build()?;
/// # drop(mailer); Ok(()) }
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// An access token; `refresh`: the server rejected the previous one.
    fn token(&self, refresh: bool) -> TokenFuture<'_>;
}

impl<F, Fut, T> TokenSource for F
where
    F: Fn(bool) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<T>> + Send + 'static,
    T: Into<String>,
{
    fn token(&self, refresh: bool) -> TokenFuture<'_> {
        let future = self(refresh);
        Box::pin(async move { future.await.map(|token| Secret::from(token.into())) })
    }
}

/// What a pool logs in with; never shown by `Debug`.
pub(super) enum Credentials {
    /// A password, with the mechanism to use (`None`: the best the server offers).
    Password {
        user: String,
        password: Secret,
        mechanism: Option<AuthMechanism>,
    },
    /// An OAuth 2.0 token from a source, for XOAUTH2 or OAUTHBEARER.
    Token {
        user: String,
        mechanism: TokenMechanism,
        source: Arc<dyn TokenSource>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password {
                user, mechanism, ..
            } => f
                .debug_struct("Password")
                .field("user", user)
                .field("mechanism", mechanism)
                .finish_non_exhaustive(),
            Credentials::Token {
                user, mechanism, ..
            } => f
                .debug_struct("Token")
                .field("user", user)
                .field("mechanism", mechanism)
                .finish_non_exhaustive(),
        }
    }
}

/// How a login attempt on a new connection ended.
pub(super) enum Login {
    /// Logged in.
    Done,
    /// The server rejected the token: get a fresh one and log in on a new connection.
    TokenRejected,
}

impl Credentials {
    /// Log in on `client`; `refresh`: the previous token was rejected.
    pub(super) async fn login(
        &self,
        client: &mut SmtpClient<TokioTransport>,
        refresh: bool,
    ) -> Result<Login, SmtpError> {
        match self {
            Credentials::Password {
                user,
                password,
                mechanism,
            } => {
                // The password came in as a `String`: always valid UTF-8.
                let password = password.expose_str().unwrap_or_default();
                match mechanism {
                    None => client.login(user, password).await?,
                    Some(m) => client.login_with(*m, user, password).await?,
                }
                Ok(Login::Done)
            }
            Credentials::Token {
                user,
                mechanism,
                source,
            } => {
                // Bounded like an AUTH step: an identity provider that never answers must not
                // hold the connection's place (and the caller) for ever.
                let limit = client.session().config().timeouts.command;
                let token = tokio::time::timeout(limit, source.token(refresh))
                    .await
                    .map_err(|_| SmtpError::Timeout {
                        during: SmtpOp::Auth,
                        after: limit,
                    })?
                    .map_err(|e| {
                        SmtpError::io(
                            SmtpOp::Auth,
                            e.kind(),
                            format!("the token source failed: {e}"),
                        )
                    })?;
                let token = token.expose_str().ok_or_else(|| {
                    SmtpError::io(
                        SmtpOp::Auth,
                        std::io::ErrorKind::InvalidData,
                        "the token source gave a token that is not UTF-8",
                    )
                })?;
                match client.login_with((*mechanism).into(), user, token).await {
                    Ok(()) => Ok(Login::Done),
                    Err(e) if e.is_credentials_refused() && !refresh => Ok(Login::TokenRejected),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

    use super::*;
    use crate::{AuthError, Mailer, SendError, SendOutcome, SmtpClientOptions, TlsMode};

    /// What the server saw: per connection, the AUTH mechanism and credential of each attempt.
    #[derive(Default)]
    struct Seen {
        auths: Mutex<Vec<(usize, String, String)>>,
        delivered: Mutex<usize>,
    }

    /// A server that offers PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER, takes any password, and
    /// only the token "fresh" (any other gets XOAUTH2's JSON error challenge, then 535): what
    /// it saw, and its port.
    async fn server() -> (Arc<Seen>, u16) {
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        let server = MockServer::start(move |conn| OAuthServer {
            conn,
            seen: shared.clone(),
            owed: None,
        })
        .await;
        // The server serves until the runtime ends; its handle only counts.
        (seen, server.port())
    }

    /// One connection of [`server`].
    struct OAuthServer {
        conn: usize,
        seen: Arc<Seen>,
        /// In an AUTH exchange: the lines the client still owes, and the reply to the last one.
        owed: Option<(usize, &'static str)>,
    }

    impl Conversation for OAuthServer {
        fn greeting(&mut self) -> Act {
            Act::send("220 oauth.test\r\n")
        }

        fn command(&mut self, line: &str) -> Act {
            if let Some((lines, reply)) = self.owed.take() {
                if lines == 1 {
                    return Act::send(reply);
                }
                self.owed = Some((lines - 1, reply));
                return Act::send("334 VXNlcm5hbWU6\r\n");
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words
                .first()
                .is_some_and(|w| w.eq_ignore_ascii_case("AUTH"))
            {
                return well_behaved(
                    "oauth.test",
                    &["AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER"],
                    line,
                );
            }
            let mechanism = words.get(1).copied().unwrap_or_default().to_string();
            let initial = words.get(2).copied().unwrap_or_default();
            let decoded = B64.decode(initial).unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded).into_owned();
            let credential = match text.split_once("auth=Bearer ") {
                Some((_, rest)) => rest.trim_end_matches('\u{1}').to_string(),
                None => text,
            };
            self.seen.auths.lock().unwrap().push((
                self.conn,
                mechanism.clone(),
                credential.clone(),
            ));
            match mechanism.as_str() {
                "LOGIN" => {
                    // User name, then password: both taken.
                    self.owed = Some((2, "235 2.7.0 ok\r\n"));
                    Act::send("334 VXNlcm5hbWU6\r\n")
                }
                "XOAUTH2" | "OAUTHBEARER" if credential != "fresh" => {
                    let json = B64.encode(r#"{"status":"401","schemes":"Bearer"}"#);
                    self.owed = Some((1, "535 5.7.8 token expired\r\n"));
                    Act::send(format!("334 {json}\r\n"))
                }
                _ => Act::send("235 2.7.0 ok\r\n"),
            }
        }

        fn keeps_bodies(&self) -> bool {
            false
        }

        fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
            *self.seen.delivered.lock().unwrap() += 1;
            Act::send("250 queued\r\n")
        }
    }

    fn builder(port: u16) -> crate::MailerBuilder {
        Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
            .max_connections(1)
            .client_options(SmtpClientOptions::allow_plaintext_auth)
    }

    /// The one message every test sends.
    async fn send_one(mailer: &Mailer) -> Result<SendOutcome, SendError> {
        mailer
            .send("me@test.example", ["you@test.example"], b"hi\r\n")
            .await
    }

    /// An expired token: rejected with the JSON challenge, asked for afresh, and the message
    /// goes through on a new connection; the source saw one plain and one refresh request.
    #[tokio::test]
    async fn an_expired_token_is_refreshed_once_on_a_new_connection() {
        let (seen, port) = server().await;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let source = {
            let asked = asked.clone();
            move |refresh: bool| {
                asked.lock().unwrap().push(refresh);
                async move { Ok::<_, std::io::Error>(if refresh { "fresh" } else { "stale" }) }
            }
        };
        let builder = builder(port).oauth2(TokenMechanism::XOAuth2, "me@test.example", source);
        let shown = format!("{builder:?}");
        let mailer = builder.build().unwrap();
        send_one(&mailer).await.unwrap();
        assert_eq!(*asked.lock().unwrap(), [false, true]);
        let auths = seen.auths.lock().unwrap().clone();
        assert_eq!(
            auths,
            [
                (1, "XOAUTH2".to_string(), "stale".to_string()),
                (2, "XOAUTH2".to_string(), "fresh".to_string()),
            ]
        );
        assert_eq!(*seen.delivered.lock().unwrap(), 1);
        assert!(mailer.connections().open <= 1);
        assert!(
            shown.contains("me@test.example") && !shown.contains("stale"),
            "{shown}"
        );
        mailer.shutdown().await;
    }

    /// A token rejected twice fails the send with the rejection, without a third try.
    #[tokio::test]
    async fn a_token_rejected_twice_fails_the_send() {
        let (seen, port) = server().await;
        let mailer = builder(port)
            .oauth2(TokenMechanism::OAuthBearer, "me@test.example", |_| async {
                Ok::<_, std::io::Error>("never-valid")
            })
            .build()
            .unwrap();
        let error = send_one(&mailer).await.unwrap_err();
        assert!(
            matches!(
                error.smtp_error(),
                Some(SmtpError::Auth(AuthError::Rejected { .. }))
            ),
            "{error:?}"
        );
        assert!(!format!("{error:?}{error}").contains("never-valid"));
        // One refresh per connection attempt, and a rejected login is not a retried message.
        assert_eq!(seen.auths.lock().unwrap().len(), 2);
        assert_eq!(*seen.delivered.lock().unwrap(), 0);
    }

    /// A password mechanism asked for by name is used even though the server prefers another.
    #[tokio::test]
    async fn a_named_password_mechanism_is_used() {
        let (seen, port) = server().await;
        let mailer = builder(port)
            .credentials_with(AuthMechanism::Login, "me@test.example", "app-password")
            .build()
            .unwrap();
        send_one(&mailer).await.unwrap();
        let mechanisms: Vec<String> = seen
            .auths
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m, _)| m.clone())
            .collect();
        assert_eq!(mechanisms, ["LOGIN"]);
        mailer.shutdown().await;
    }

    /// A pool from a connection URL: its user, password (percent-decoded) and mechanism log
    /// in; `connect_url` does the same for one client.
    #[tokio::test]
    async fn a_url_names_the_server_and_the_login() {
        let (seen, port) = server().await;
        let url: crate::SmtpUrl = format!(
            "smtp://me%40test.example:app%20pw@127.0.0.1:{port}?tls=none&auth=login&timeout=5"
        )
        .parse()
        .unwrap();
        let mailer = crate::MailerBuilder::from_url(&url, "client.test")
            .client_options(SmtpClientOptions::allow_plaintext_auth)
            .build()
            .unwrap();
        send_one(&mailer).await.unwrap();
        mailer.shutdown().await;
        let url: crate::SmtpUrl =
            format!("smtp://me%40test.example:app%20pw@127.0.0.1:{port}?tls=none&auth=plain")
                .parse()
                .unwrap();
        // One client: without opting in, a plaintext login is refused before it is sent.
        let refused = crate::connect_url(&url, "client.test").await.unwrap_err();
        assert!(
            matches!(refused, SmtpError::Auth(AuthError::PlaintextRefused { .. })),
            "{refused:?}"
        );
        let auths = seen.auths.lock().unwrap().clone();
        assert_eq!(auths.len(), 1, "{auths:?}");
        assert_eq!(auths[0].1, "LOGIN");
        assert_eq!(*seen.delivered.lock().unwrap(), 1);
    }
}
