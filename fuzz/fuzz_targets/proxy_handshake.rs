//! Whatever a proxy answers, in whatever pieces, the handshake of either kind (SOCKS5 with and
//! without credentials, HTTP CONNECT) never panics, never asks for more than
//! `MAX_PROXY_READ` bytes at once nor takes more than it asked for, keeps its answer bounded,
//! ends open or with an error (after which it takes nothing more), and never shows the proxy
//! password in an error or in `Debug`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::connect::{
    MAX_CONNECT_ANSWER, MAX_PROXY_READ, Proxy, ProxyHandshake, TunnelProgress,
};

const PASSWORD: &str = "fuzz-proxy-pa55word";

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let proxy = match choice % 4 {
        0 => Proxy::socks5("proxy.example", 1080),
        1 => Proxy::socks5("proxy.example", 1080).with_credentials("user", PASSWORD),
        2 => Proxy::http("proxy.example", 3128),
        _ => Proxy::http("proxy.example", 3128).with_credentials("user", PASSWORD),
    };
    let host = if choice & 4 == 0 {
        "mx.example"
    } else {
        "[2001:db8::25]"
    };
    let mut handshake = ProxyHandshake::new(&proxy, host, 25).expect("a valid target");
    assert!(!format!("{handshake:?}").contains(PASSWORD));
    // The next byte of the input says how much of what is asked for the proxy sends next.
    let mut input = rest;
    let mut fed = 0usize;
    loop {
        drop(handshake.poll_transmit());
        let wants = handshake.wants();
        assert!(wants <= MAX_PROXY_READ);
        if wants == 0 {
            assert!(handshake.is_open());
            return;
        }
        let Some((&split, tail)) = input.split_first() else {
            return;
        };
        let n = (usize::from(split) % wants + 1).min(tail.len());
        if n == 0 {
            return;
        }
        let (piece, tail) = tail.split_at(n);
        input = tail;
        fed += n;
        // An answer past these bounds is refused, never stored.
        assert!(fed <= MAX_CONNECT_ANSWER + 4 + 2 + 2 + 4 + 255 + 2 + 1);
        match handshake.feed(piece) {
            Ok(TunnelProgress::Open) => {
                assert!(handshake.is_open());
                assert_eq!(handshake.wants(), 0);
                return;
            }
            Ok(TunnelProgress::Continue) => {}
            Err(error) => {
                assert!(!error.to_string().contains(PASSWORD));
                assert!(!handshake.is_open());
                assert_eq!(handshake.wants(), 0);
                assert!(handshake.poll_transmit().is_none());
                assert!(handshake.feed(b"x").is_err());
                return;
            }
        }
    }
});
