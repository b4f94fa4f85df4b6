//! Any string given as an address, domain or DSN argument either is refused or yields exactly
//! one command line: no second command can be smuggled in.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smtp_proto::Field;
use smtp_proto::command::{
    Address, Command, Domain, EnvelopeId, MailParams, OriginalRecipient, RcptParams, ReversePath,
};

/// Write `command` into `out` (cleared first) and check that it is one line.
fn one_line(out: &mut BytesMut, command: Command<'_>) {
    out.clear();
    command.write_for_fuzzing(out);
    assert!(out.ends_with(b"\r\n"));
    let body = &out[..out.len() - 2];
    assert!(
        !body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
        "{out:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let mut out = BytesMut::new();
    if let Ok(d) = Domain::new(&s) {
        one_line(&mut out, Command::Ehlo(&d));
    }
    if let Ok(path) = ReversePath::new(&s) {
        let params = MailParams {
            envid: EnvelopeId::new(&s).ok(),
            ..MailParams::default()
        };
        one_line(&mut out, Command::MailFrom(&path, &params));
    }
    if let Ok(a) = Address::new(&s, Field::ForwardPath) {
        let params = RcptParams {
            orcpt: OriginalRecipient::new(&s).ok(),
            ..RcptParams::default()
        };
        one_line(&mut out, Command::RcptTo(&a, &params));
    }
});
