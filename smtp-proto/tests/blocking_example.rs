//! `examples/blocking.rs`, the engine in a plain `std::net` loop, gets every safety rule from the
//! engine's clock with no deadline of its own: against a server that never answers and one that
//! reads the message one byte a second, its `--deadline` ends the run with
//! `SmtpError::DeadlineExceeded` instead of a hang.

#[allow(dead_code)]
#[path = "../examples/blocking.rs"]
mod blocking;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use smtp_proto::{SmtpError, SmtpOp};

/// A server on loopback; `serve` runs for each connection on a thread of its own.
fn server(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn args(server: String, deadline: Duration, file: Option<String>) -> blocking::Args {
    blocking::Args {
        server,
        from: "alice@example.com".into(),
        to: vec!["bob@example.org".into()],
        file,
        timeout: None,
        deadline: Some(deadline),
    }
}

/// Run the example; its error, which must be the engine's deadline, and how long it took.
fn deadline_error(args: &blocking::Args) -> (SmtpOp, Duration, Duration) {
    let started = Instant::now();
    let error = blocking::run(args).expect_err("the run succeeded");
    let took = started.elapsed();
    match error.downcast_ref::<SmtpError>() {
        Some(SmtpError::DeadlineExceeded { during, after }) => (*during, *after, took),
        _ => panic!("not the deadline: {error}"),
    }
}

#[test]
fn a_server_that_never_replies_meets_the_deadline() {
    let addr = server(|stream| {
        // Accept, say nothing, keep the connection open until the client leaves.
        let mut stream = stream;
        let _ = stream.read(&mut [0; 1]);
    });
    let (during, after, took) = deadline_error(&args(addr, Duration::from_secs(1), None));
    assert_eq!((during, after), (SmtpOp::Greeting, Duration::from_secs(1)));
    assert!(took >= Duration::from_secs(1), "ended early: {took:?}");
    assert!(took < Duration::from_secs(30), "hung: {took:?}");
}

#[test]
fn a_server_reading_one_byte_a_second_meets_the_deadline() {
    let addr = server(|stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let _ = writer.write_all(b"220 slow.test\r\n");
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let reply: &[u8] = match line.get(..4).unwrap_or("") {
                "EHLO" => b"250 slow.test\r\n",
                "DATA" => {
                    let _ = writer.write_all(b"354 go\r\n");
                    // The body, one byte a second, until the client gives up.
                    let mut byte = [0; 1];
                    while reader.read(&mut byte).unwrap_or(0) == 1 {
                        thread::sleep(Duration::from_secs(1));
                    }
                    return;
                }
                _ => b"250 ok\r\n",
            };
            if writer.write_all(reply).is_err() {
                return;
            }
        }
    });
    // Larger than what the socket buffers of both ends hold, so the client's writes block.
    let path = std::env::temp_dir().join(format!("blocking-example-{}.eml", std::process::id()));
    let mut message = b"Subject: slow\r\n\r\n".to_vec();
    while message.len() < 24 * 1024 * 1024 {
        message.extend_from_slice(b"a line of the body, over and over again\r\n");
    }
    std::fs::write(&path, &message).unwrap();
    let file = Some(path.to_string_lossy().into_owned());
    let (during, after, took) = deadline_error(&args(addr, Duration::from_secs(3), file));
    std::fs::remove_file(&path).unwrap();
    assert_eq!((during, after), (SmtpOp::DataEnd, Duration::from_secs(3)));
    assert!(took >= Duration::from_secs(3), "ended early: {took:?}");
    assert!(took < Duration::from_secs(60), "hung: {took:?}");
}
