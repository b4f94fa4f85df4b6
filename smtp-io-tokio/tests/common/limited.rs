//! A server with a rate limit of its own, for the pool's throttle tests: it takes at most
//! `per_second` MAIL commands in any one second, and answers `421` (hanging up) to any more,
//! and to its first `refuse_first`; it records when each MAIL came and who was delivered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

/// What a limited server saw.
#[derive(Default)]
pub struct Seen {
    /// When each MAIL came, refused or not.
    pub mails: Mutex<Vec<Instant>>,
    /// MAIL commands answered `421`.
    pub refused: Mutex<usize>,
    /// The MAIL line of each message delivered.
    pub delivered: Mutex<Vec<String>>,
}

struct Limited {
    seen: Arc<Seen>,
    per_second: usize,
    refuse_first: usize,
    from: String,
}

impl Conversation for Limited {
    fn command(&mut self, line: &str) -> Act {
        if !line.to_ascii_uppercase().starts_with("MAIL") {
            return well_behaved("limited.test", &[], line);
        }
        let now = Instant::now();
        let over = {
            let mut mails = self.seen.mails.lock().unwrap();
            mails.push(now);
            let recent = mails
                .iter()
                .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
                .count();
            recent > self.per_second || mails.len() <= self.refuse_first
        };
        if over {
            *self.seen.refused.lock().unwrap() += 1;
            return Act::close("421 4.7.0 slow down\r\n");
        }
        self.from = line.to_owned();
        Act::send("250 ok\r\n")
    }

    fn keeps_bodies(&self) -> bool {
        false
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        self.seen.delivered.lock().unwrap().push(self.from.clone());
        Act::send("250 queued\r\n")
    }
}

/// Start a limited server; its port.
pub async fn limited_server(seen: Arc<Seen>, per_second: usize, refuse_first: usize) -> u16 {
    let server = MockServer::start(move |_| Limited {
        seen: seen.clone(),
        per_second,
        refuse_first,
        from: String::new(),
    })
    .await;
    // The server serves until the runtime ends; its handle only counts.
    server.port()
}
