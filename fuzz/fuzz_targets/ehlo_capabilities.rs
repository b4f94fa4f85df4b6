//! Any EHLO reply text: capability parsing never panics, never reports a SIZE of 0, and keeps a
//! bounded list of AUTH mechanism names, each once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::capabilities::MAX_UNKNOWN_AUTH_NAMES;
use smtp_proto::{Capabilities, Reply, ReplyCode};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let reply = Reply::new(ReplyCode::OK, None, text.as_ref());
    let caps = Capabilities::from_ehlo(&reply);
    assert_ne!(caps.size_limit(), Some(0));
    assert_eq!(caps.raw_lines().len(), reply.lines().count() - 1);
    let names = caps.auth_mechanism_names();
    assert!(names.len() <= MAX_UNKNOWN_AUTH_NAMES + caps.auth_mechanisms().len());
    for (i, name) in names.iter().enumerate() {
        assert!(!names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)));
        let _ = caps.keyword_params(name);
    }
});
