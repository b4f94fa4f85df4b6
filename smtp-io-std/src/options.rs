//! The engine's settings of a [`ConnectOptions`](crate::ConnectOptions) as the shared driver
//! takes them ([`SmtpClientOptions`]).

use smtp_proto::client::SmtpClientOptions;
use smtp_proto::{MessageOptions, PlaintextAuth, SessionConfig, SmtpError};

/// `config`, `message` and the read buffer as driver options, every field carried over.
///
/// `SmtpClientOptions` takes a [`SessionConfig`] only field by field, through its builders,
/// and has none for [`SessionConfig::max_bdat_in_flight`] and
/// [`SessionConfig::bdat_chunk_size`]: a value other than the default for either cannot reach
/// the engine, so it is refused here, before any I/O, rather than dropped.
pub(crate) fn client_options(
    config: SessionConfig,
    message: MessageOptions,
    read_buffer: usize,
) -> Result<SmtpClientOptions, SmtpError> {
    let defaults = SessionConfig::default();
    if config.max_bdat_in_flight != defaults.max_bdat_in_flight
        || config.bdat_chunk_size != defaults.bdat_chunk_size
    {
        return Err(SmtpError::Internal {
            what: "smtp-io-std cannot pass max_bdat_in_flight or bdat_chunk_size to the driver \
                   yet: leave them at their defaults",
        });
    }
    let mut options = SmtpClientOptions::new()
        .with_reply_limits(config.limits)
        .with_timeouts(config.timeouts)
        .with_protocol(config.protocol)
        .with_pipelining(config.pipelining)
        .with_chunking(config.chunking)
        .with_max_flight_bytes(config.max_flight_bytes)
        .with_max_chained(config.max_chained)
        .with_recipient_policy(config.recipient_policy)
        .with_data_pipelining(config.data_pipelining)
        .with_implicit_tls(config.tls)
        .with_max_scram_iterations(config.max_scram_iterations)
        .with_policy(config.policy)
        .with_audit_sink(config.audit)
        .with_message_options(message)
        .with_read_buffer(read_buffer);
    if config.plaintext_auth == PlaintextAuth::Allow {
        options = options.allow_plaintext_auth();
    }
    if let Some(sink) = config.transcript {
        options = options.with_transcript(sink);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use smtp_proto::{DataPipelining, ExtensionUse, Protocol, RecipientPolicy, Timeouts};

    use super::*;

    /// Every field set away from its default arrives in the driver's options (their Debug
    /// forms agree), and the two that cannot are refused.
    #[test]
    fn every_field_is_carried_over_or_refused() {
        let mut config = SessionConfig::default();
        config.timeouts = Timeouts::uniform(Duration::from_secs(7));
        config.timeouts.total = Some(Duration::from_secs(70));
        config.protocol = Protocol::Lmtp;
        config.pipelining = ExtensionUse::Never;
        config.chunking = ExtensionUse::Never;
        config.max_flight_bytes = 99;
        config.max_chained = 3;
        config.recipient_policy = RecipientPolicy::AcceptPartial;
        config.data_pipelining = DataPipelining::Always;
        config.tls = true;
        config.plaintext_auth = PlaintextAuth::Allow;
        config.max_scram_iterations = 1234;
        let want = format!("{config:?}");
        let options = client_options(config, MessageOptions::default(), 4096).unwrap();
        assert_eq!(format!("{:?}", options.session_config()), want);

        for change in [
            |c: &mut SessionConfig| c.max_bdat_in_flight += 1,
            |c: &mut SessionConfig| c.bdat_chunk_size += 1,
        ] {
            let mut config = SessionConfig::default();
            change(&mut config);
            let refused = client_options(config, MessageOptions::default(), 4096);
            assert!(matches!(refused, Err(SmtpError::Internal { .. })));
        }
    }
}
