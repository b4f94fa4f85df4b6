//! The three clients behind one small interface: connect, send a message held in memory, send a
//! message from a file, quit.

use std::path::Path;

use lettre::address::{Address as LettreAddress, Envelope};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

const HELO: &str = "bench.test";

/// Which client, configured how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flavour {
    /// smtp-io-tokio as shipped: `connect_plain` (TCP_NODELAY on, PIPELINING and CHUNKING used
    /// when offered, the default `tracing` transcript).
    Ours,
    /// Ours with `send_batch`: all N messages of a connection in one call (batch chaining).
    OursBatch,
    /// lettre 0.11 `AsyncSmtpConnection::connect_tokio1` as shipped (Nagle on).
    Lettre,
    /// lettre on a socket we opened with TCP_NODELAY (`connect_with_transport`).
    LettreNodelay,
    /// mail-send 0.7 `SmtpClientBuilder::connect_plain` as shipped (Nagle on).
    MailSend,
    /// mail-send with `set_nodelay(true)` on its stream after connecting.
    MailSendNodelay,
}

impl Flavour {
    pub const ALL: [Flavour; 6] = [
        Flavour::Ours,
        Flavour::OursBatch,
        Flavour::Lettre,
        Flavour::LettreNodelay,
        Flavour::MailSend,
        Flavour::MailSendNodelay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Ours => "ours",
            Flavour::OursBatch => "ours-batch",
            Flavour::Lettre => "lettre",
            Flavour::LettreNodelay => "lettre-nodelay",
            Flavour::MailSend => "mail-send",
            Flavour::MailSendNodelay => "mail-send-nodelay",
        }
    }

    pub fn parse(s: &str) -> Flavour {
        Flavour::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .unwrap_or_else(|| panic!("unknown flavour {s:?}"))
    }

    /// A peer as shipped: Nagle's algorithm on.
    pub fn nagle(self) -> bool {
        matches!(self, Flavour::Lettre | Flavour::MailSend)
    }
}

pub type Error = Box<dyn std::error::Error>;

/// lettre's envelope of the sender `from` and the recipients `to`, parsed.
pub fn lettre_envelope<E>(from: &str, to: &[&str]) -> Result<Envelope, E>
where
    E: From<lettre::address::AddressError> + From<lettre::error::Error>,
{
    Ok(Envelope::new(
        Some(from.parse::<LettreAddress>()?),
        to.iter()
            .map(|t| t.parse::<LettreAddress>())
            .collect::<Result<_, _>>()?,
    )?)
}

/// One open connection of some flavour (a handful per process: the size difference is moot).
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Ours(smtp_io_tokio::SmtpClient),
    Lettre(AsyncSmtpConnection),
    MailSend(mail_send::SmtpClient<TcpStream>),
}

impl Conn {
    /// Connect, read the greeting and EHLO.
    pub async fn connect(flavour: Flavour, host: &str, port: u16) -> Result<Conn, Error> {
        Ok(match flavour {
            Flavour::Ours | Flavour::OursBatch => {
                Conn::Ours(smtp_io_tokio::connect_plain(host, port, HELO).await?)
            }
            Flavour::Lettre => Conn::Lettre(
                AsyncSmtpConnection::connect_tokio1(
                    (host, port),
                    None,
                    &ClientId::Domain(HELO.into()),
                    None,
                    None,
                )
                .await?,
            ),
            Flavour::LettreNodelay => {
                let tcp = TcpStream::connect((host, port)).await?;
                tcp.set_nodelay(true)?;
                Conn::Lettre(
                    AsyncSmtpConnection::connect_with_transport(
                        Box::new(tcp),
                        &ClientId::Domain(HELO.into()),
                    )
                    .await?,
                )
            }
            Flavour::MailSend | Flavour::MailSendNodelay => {
                let client = mail_send::SmtpClientBuilder::new(host, port)?
                    .implicit_tls(false)
                    .helo_host(HELO)
                    .connect_plain()
                    .await?;
                if flavour == Flavour::MailSendNodelay {
                    client.stream.set_nodelay(true)?;
                }
                Conn::MailSend(client)
            }
        })
    }

    /// Send one message held in memory, the way each library takes it.
    pub async fn send(&mut self, from: &str, to: &[&str], body: &[u8]) -> Result<(), Error> {
        match self {
            Conn::Ours(c) => {
                c.send_mail_bytes(from, to, body).await?;
            }
            Conn::Lettre(c) => {
                let envelope = lettre_envelope::<Error>(from, to)?;
                c.send(&envelope, body).await?;
            }
            Conn::MailSend(c) => {
                c.send(mail_send::smtp::message::Message::new(
                    from,
                    to.iter().copied(),
                    body,
                ))
                .await?;
            }
        }
        Ok(())
    }

    /// Send the message in `path`: ours streams it (`ReaderBody`), the peers have to read it into
    /// memory first.
    pub async fn send_file(&mut self, from: &str, to: &[&str], path: &Path) -> Result<(), Error> {
        match self {
            Conn::Ours(c) => {
                let mut body = smtp_io_tokio::ReaderBody::open(path).await?;
                c.send_mail_stream(from, to, &mut body).await?;
                Ok(())
            }
            _ => {
                let body = tokio::fs::read(path).await?;
                self.send(from, to, &body).await
            }
        }
    }

    /// Send `count` copies of one message: ours by `send_batch` (in groups of 256, so memory
    /// stays bounded), the peers one by one.
    pub async fn send_batch(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        count: usize,
    ) -> Result<(), Error> {
        match self {
            Conn::Ours(c) => {
                let mut left = count;
                while left > 0 {
                    let group = left.min(256);
                    let batch = vec![smtp_io_tokio::OutgoingMessage::new(from, to, body); group];
                    for result in c.send_batch(&batch).await {
                        result?;
                    }
                    left -= group;
                }
            }
            _ => {
                for _ in 0..count {
                    self.send(from, to, body).await?;
                }
            }
        }
        Ok(())
    }

    /// One NOOP round trip (used to measure the path's RTT).
    pub async fn noop(&mut self) -> Result<(), Error> {
        match self {
            Conn::Ours(c) => {
                c.noop().await?;
            }
            Conn::Lettre(c) => {
                c.command(lettre::transport::smtp::commands::Noop).await?;
            }
            Conn::MailSend(c) => c.noop().await?,
        }
        Ok(())
    }

    pub async fn quit(self) -> Result<(), Error> {
        match self {
            Conn::Ours(c) => c.quit().await?,
            Conn::Lettre(mut c) => {
                c.quit().await?;
            }
            Conn::MailSend(c) => c.quit().await?,
        }
        Ok(())
    }
}
