//! Any string given as an address, domain or DSN argument either is refused or yields exactly
//! one command line: no second command can be smuggled in.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smtp_proto::Field;
use smtp_proto::command::{
    Address, Command, Domain, EnvelopeId, MailParams, OriginalRecipient, RcptParams, ReversePath,
};

fn one_line(out: &BytesMut) {
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
        Command::Ehlo(&d).write_for_fuzzing(&mut out);
        one_line(&out);
    }
    if let Ok(path) = ReversePath::new(&s) {
        out.clear();
        let params = MailParams {
            envid: EnvelopeId::new(&s).ok(),
            ..MailParams::default()
        };
        Command::MailFrom(&path, &params).write_for_fuzzing(&mut out);
        one_line(&out);
    }
    if let Ok(a) = Address::new(&s, Field::ForwardPath) {
        out.clear();
        let params = RcptParams {
            orcpt: OriginalRecipient::new(&s).ok(),
            ..RcptParams::default()
        };
        Command::RcptTo(&a, &params).write_for_fuzzing(&mut out);
        one_line(&out);
    }
});
