//! Any EHLO reply text: capability parsing never panics and never reports a SIZE of 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{Capabilities, Reply, ReplyCode};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let reply = Reply::new(ReplyCode::OK, None, text.as_ref());
    let caps = Capabilities::from_ehlo(&reply);
    assert_ne!(caps.size_limit(), Some(0));
    assert_eq!(caps.raw_lines().len(), reply.lines().count() - 1);
    for name in caps.auth_mechanism_names() {
        let _ = caps.keyword_params(name);
    }
});
