//! The whole engine fed arbitrary server bytes at every stage of a session: it never panics, and
//! it only ever asks to write well-formed command lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::command::Domain;
use smtp_proto::session::{BodyInfo, Envelope};
use smtp_proto::{MessageOptions, Session, SessionConfig};

fn drain(session: &mut Session, wire: &mut Vec<u8>) {
    while let Some(bytes) = session.poll_transmit() {
        wire.extend_from_slice(&bytes);
    }
    while session.poll_event().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new(
        Domain::new("client.test").unwrap(),
        SessionConfig::default(),
    );
    let mut wire = Vec::new();
    // The server's bytes come in pieces separated by 0xFF; between pieces the client acts.
    for (step, piece) in data.split(|&b| b == 0xFF).enumerate() {
        session.feed(piece);
        drain(&mut session, &mut wire);
        match step % 4 {
            1 => {
                let _ = session.login_auto("user", "secret");
            }
            2 => {
                let env =
                    Envelope::new("a@example.com", &["b@example.org", "c@example.org"]).unwrap();
                let body = BodyInfo::Known {
                    size: 4,
                    eight_bit: false,
                };
                let _ = session.start_mail(env, body, &MessageOptions::default());
            }
            3 => {
                if session.wants_body() {
                    let _ = session.send_body(b"hi\r\n");
                    let _ = session.finish_body();
                    // Chain the next message behind the final dot when the engine allows it.
                    if session.ready_for_mail() {
                        let env = Envelope::new("a@example.com", &["d@example.org"]).unwrap();
                        let body = BodyInfo::Known {
                            size: 6,
                            eight_bit: false,
                        };
                        let _ = session.start_mail(env, body, &MessageOptions::default());
                    }
                }
            }
            _ => {}
        }
        drain(&mut session, &mut wire);
    }
    session.handle_eof();
    drain(&mut session, &mut wire);
    // The secret never reaches the wire in clear text.
    assert!(!wire.windows(6).any(|w| w == b"secret"));
});
