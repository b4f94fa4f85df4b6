//! Tests of the `command` module.

use super::*;
use proptest::prelude::*;

mod arguments;
mod injection;

/// The line `cmd` writes; also checks that `encoded_len` predicts its length exactly.
fn line(cmd: Command<'_>) -> String {
    let mut out = BytesMut::new();
    cmd.write_to(&mut out);
    assert_eq!(cmd.encoded_len(), out.len(), "encoded_len of {cmd:?}");
    String::from_utf8(out.to_vec()).unwrap()
}

fn arg_err(field: Field, reason: ArgumentError) -> InvalidInputError {
    InvalidInputError::Argument { field, reason }
}

fn fb(field: Field, byte: u8, index: usize) -> InvalidInputError {
    arg_err(field, ArgumentError::ForbiddenByte { byte, index })
}

fn syn(field: Field, what: &'static str) -> InvalidInputError {
    arg_err(field, ArgumentError::Syntax(what))
}

fn addr(s: &str) -> Address {
    Address::new(s, Field::ForwardPath).unwrap()
}

fn xtext(s: &str) -> String {
    let mut out = BytesMut::new();
    write_xtext(s, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

/// Decode xtext (RFC 3461 section 4), refusing anything malformed.
fn xtext_decode(s: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                let hi = hex(*s.get(i + 1)?)?;
                let lo = hex(*s.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'=' => return None,
            b @ 0x21..=0x7e => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- wire forms

#[test]
fn hello_commands() {
    let d = Domain::new("client.example").unwrap();
    assert_eq!(line(Command::Ehlo(&d)), "EHLO client.example\r\n");
    assert_eq!(line(Command::Helo(&d)), "HELO client.example\r\n");
    assert_eq!(line(Command::Lhlo(&d)), "LHLO client.example\r\n");
    let lit = Domain::new("[IPv6:2001:db8::1]").unwrap();
    assert_eq!(line(Command::Ehlo(&lit)), "EHLO [IPv6:2001:db8::1]\r\n");
}

#[test]
fn simple_commands() {
    assert_eq!(line(Command::StartTls), "STARTTLS\r\n");
    assert_eq!(line(Command::Data), "DATA\r\n");
    assert_eq!(line(Command::Rset), "RSET\r\n");
    assert_eq!(line(Command::Noop), "NOOP\r\n");
    assert_eq!(line(Command::Quit), "QUIT\r\n");
}

#[test]
fn bdat() {
    let bdat = |size, last| line(Command::Bdat { size, last });
    assert_eq!(bdat(0, false), "BDAT 0\r\n");
    assert_eq!(bdat(0, true), "BDAT 0 LAST\r\n");
    assert_eq!(bdat(12, true), "BDAT 12 LAST\r\n");
    assert_eq!(bdat(1_000_000, false), "BDAT 1000000\r\n");
    assert_eq!(bdat(u64::MAX, true), "BDAT 18446744073709551615 LAST\r\n");
}

#[test]
fn write_appends() {
    let mut out = BytesMut::from(&b"X"[..]);
    Command::Noop.write_to(&mut out);
    Command::Bdat {
        size: 7,
        last: false,
    }
    .write_to(&mut out);
    assert_eq!(&out[..], b"XNOOP\r\nBDAT 7\r\n");
}

#[test]
fn mail_from() {
    let none = MailParams::default();
    let from = ReversePath::new("a@x.example").unwrap();
    assert_eq!(
        line(Command::MailFrom(&from, &none)),
        "MAIL FROM:<a@x.example>\r\n"
    );
    let bracketed = ReversePath::new("<a@x.example>").unwrap();
    assert_eq!(bracketed, from);
    assert_eq!(
        line(Command::MailFrom(&ReversePath::Null, &none)),
        "MAIL FROM:<>\r\n"
    );
    let all = MailParams {
        size: Some(19),
        body: Some(BodyType::EightBitMime),
        smtputf8: true,
        ret: Some(DsnReturn::Headers),
        envid: Some(EnvelopeId::new("id+1=x").unwrap()),
        requiretls: true,
    };
    assert_eq!(
        line(Command::MailFrom(&from, &all)),
        "MAIL FROM:<a@x.example> SIZE=19 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx \
             REQUIRETLS\r\n"
    );
}

#[test]
fn mail_params_one_by_one() {
    let from = ReversePath::Null;
    let mail = |p: MailParams| line(Command::MailFrom(&from, &p));
    let d = MailParams::default;
    assert_eq!(
        mail(MailParams {
            size: Some(0),
            ..d()
        }),
        "MAIL FROM:<> SIZE=0\r\n"
    );
    for (body, text) in [
        (BodyType::SevenBit, "7BIT"),
        (BodyType::EightBitMime, "8BITMIME"),
        (BodyType::BinaryMime, "BINARYMIME"),
    ] {
        assert_eq!(
            mail(MailParams {
                body: Some(body),
                ..d()
            }),
            format!("MAIL FROM:<> BODY={text}\r\n")
        );
    }
    assert_eq!(
        mail(MailParams {
            smtputf8: true,
            ..d()
        }),
        "MAIL FROM:<> SMTPUTF8\r\n"
    );
    assert_eq!(
        mail(MailParams {
            ret: Some(DsnReturn::Full),
            ..d()
        }),
        "MAIL FROM:<> RET=FULL\r\n"
    );
    assert_eq!(
        mail(MailParams {
            ret: Some(DsnReturn::Headers),
            ..d()
        }),
        "MAIL FROM:<> RET=HDRS\r\n"
    );
    assert_eq!(
        mail(MailParams {
            envid: Some(EnvelopeId::new("QQ314159").unwrap()),
            ..d()
        }),
        "MAIL FROM:<> ENVID=QQ314159\r\n"
    );
    assert_eq!(
        mail(MailParams {
            requiretls: true,
            ..d()
        }),
        "MAIL FROM:<> REQUIRETLS\r\n"
    );
    assert_eq!(
        mail(MailParams {
            size: Some(u64::MAX),
            requiretls: true,
            ..d()
        }),
        "MAIL FROM:<> SIZE=18446744073709551615 REQUIRETLS\r\n"
    );
}

#[test]
fn mail_from_utf8() {
    let from = ReversePath::new("jöran@bücher.example").unwrap();
    assert!(from.needs_smtputf8());
    let p = MailParams {
        size: Some(8),
        body: Some(BodyType::EightBitMime),
        smtputf8: true,
        ..MailParams::default()
    };
    assert_eq!(
        line(Command::MailFrom(&from, &p)),
        "MAIL FROM:<jöran@bücher.example> SIZE=8 BODY=8BITMIME SMTPUTF8\r\n"
    );
}

#[test]
fn rcpt_to() {
    let to = addr("<b@y.example>");
    let rcpt = |p: RcptParams| line(Command::RcptTo(&to, &p));
    assert_eq!(rcpt(RcptParams::default()), "RCPT TO:<b@y.example>\r\n");
    assert_eq!(
        rcpt(RcptParams {
            notify: Some(Notify::Never),
            orcpt: None
        }),
        "RCPT TO:<b@y.example> NOTIFY=NEVER\r\n"
    );
    let cases = [
        (false, false, false, ""),
        (true, false, false, " NOTIFY=SUCCESS"),
        (false, true, false, " NOTIFY=FAILURE"),
        (false, false, true, " NOTIFY=DELAY"),
        (true, true, false, " NOTIFY=SUCCESS,FAILURE"),
        (true, false, true, " NOTIFY=SUCCESS,DELAY"),
        (false, true, true, " NOTIFY=FAILURE,DELAY"),
        (true, true, true, " NOTIFY=SUCCESS,FAILURE,DELAY"),
    ];
    for (success, failure, delay, text) in cases {
        let notify = Notify::On {
            success,
            failure,
            delay,
        };
        assert_eq!(
            rcpt(RcptParams {
                notify: Some(notify),
                orcpt: None
            }),
            format!("RCPT TO:<b@y.example>{text}\r\n")
        );
    }
    assert_eq!(
        rcpt(RcptParams {
            notify: None,
            orcpt: Some(OriginalRecipient::new("b+tag@y.example").unwrap()),
        }),
        "RCPT TO:<b@y.example> ORCPT=rfc822;b+2Btag@y.example\r\n"
    );
    assert_eq!(
        rcpt(RcptParams {
            notify: Some(Notify::On {
                success: false,
                failure: true,
                delay: true
            }),
            orcpt: Some(OriginalRecipient::new("<x=y@z.example>").unwrap()),
        }),
        "RCPT TO:<b@y.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+3Dy@z.example\r\n"
    );
    let pm = addr("Postmaster");
    assert_eq!(
        line(Command::RcptTo(&pm, &RcptParams::default())),
        "RCPT TO:<Postmaster>\r\n"
    );
}

#[test]
fn ops() {
    let d = Domain::new("a.example").unwrap();
    let a = addr("a@b");
    let (m, r) = (MailParams::default(), RcptParams::default());
    let rp = ReversePath::Null;
    let cases = [
        (Command::Ehlo(&d), SmtpOp::Ehlo),
        (Command::Helo(&d), SmtpOp::Helo),
        (Command::Lhlo(&d), SmtpOp::Lhlo),
        (Command::StartTls, SmtpOp::StartTls),
        (Command::MailFrom(&rp, &m), SmtpOp::MailFrom),
        (Command::RcptTo(&a, &r), SmtpOp::RcptTo),
        (Command::Data, SmtpOp::Data),
        (
            Command::Bdat {
                size: 1,
                last: false,
            },
            SmtpOp::Bdat,
        ),
        (
            Command::Bdat {
                size: 1,
                last: true,
            },
            SmtpOp::DataEnd,
        ),
        (Command::Rset, SmtpOp::Rset),
        (Command::Noop, SmtpOp::Noop),
        (Command::Quit, SmtpOp::Quit),
    ];
    for (cmd, op) in cases {
        assert_eq!(cmd.op(), op, "{cmd:?}");
    }
}

// ---------------------------------------------------------------- xtext

#[test]
fn xtext_vectors() {
    assert_eq!(xtext(""), "");
    assert_eq!(xtext("plain!~"), "plain!~");
    assert_eq!(xtext("id+1"), "id+2B1");
    assert_eq!(xtext("a=b"), "a+3Db");
    assert_eq!(xtext("a b"), "a+20b");
    assert_eq!(xtext("\r\n\0\x7f"), "+0D+0A+00+7F");
    assert_eq!(xtext("é"), "+C3+A9");
    assert_eq!(xtext("++"), "+2B+2B");
}
