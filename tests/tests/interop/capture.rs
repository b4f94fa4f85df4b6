//! The messages the cases send and how they are read back: ids, bodies, the normalisation SMTP
//! implies, each server's capture format, and the checks of what arrived.

use crate::*;

pub(crate) static SEQ: AtomicUsize = AtomicUsize::new(1);

pub(crate) fn new_id(t: &Target, label: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{}.{label}.{}.{n}", t.name, std::process::id())
}

/// A message: fixed headers with the id, `headers` (each ending in CRLF), a blank line, `body`.
pub(crate) fn message(id: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Interop Sender <{FROM}>\r\nTo: rcpt@example.org\r\nSubject: interop {id}\r\n\
         X-Interop-Id: <{id}>\r\n{headers}\r\n"
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

pub(crate) fn plain_body(id: &str) -> Vec<u8> {
    format!("Hello from the interop test {id}.\r\nSecond line.\r\n").into_bytes()
}

/// A fresh id for `label` ([`new_id`]) and the message with that id, no extra header and the
/// [`plain_body`].
pub(crate) fn new_plain_message(t: &Target, label: &str) -> (String, Vec<u8>) {
    let id = new_id(t, label);
    let msg = message(&id, "", &plain_body(&id));
    (id, msg)
}

/// What SMTP delivers for `sent`: every bare CR and bare LF becomes CRLF, and the message ends
/// with CRLF (the reference the engine's encoders are held to as well).
pub(crate) use smtp_testkit::reference::crlf_normalized as normalize;

pub(crate) fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// The length of the header block starting at `data`'s first line (a field and its folded
/// continuation lines), including its line ends.
pub(crate) fn header_len(data: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        match data[pos..].iter().position(|&b| b == b'\n') {
            None => return data.len(),
            Some(nl) => pos += nl + 1,
        }
        if !matches!(data.get(pos), Some(b' ' | b'\t')) {
            return pos;
        }
    }
}

/// The message as the client sent it, cut out of a capture file.
pub(crate) fn extract(kind: Capture, data: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        Capture::Exact => Ok(data.to_vec()),
        Capture::ReceivedLf | Capture::ReceivedCrlf => {
            if !data.starts_with(b"Received:") {
                return Err(format!(
                    "capture does not start with the expected Received: header: {}",
                    show(&data[..data.len().min(120)])
                ));
            }
            Ok(data[header_len(data)..].to_vec())
        }
        Capture::SinkDump => {
            let at = find(data, b"\nReceived: ")
                .ok_or("smtp-sink dump without its Received: header")?
                + 1;
            let rest = &data[at + header_len(&data[at..])..];
            Ok(rest.strip_suffix(b"\n").unwrap_or(rest).to_vec())
        }
    }
}

/// What the capture must hold for a sent message.
pub(crate) fn expected(kind: Capture, sent: &[u8]) -> Vec<u8> {
    let wire = normalize(sent);
    match kind {
        Capture::Exact | Capture::ReceivedCrlf => wire,
        Capture::ReceivedLf | Capture::SinkDump => crlf_to_lf(&wire),
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

pub(crate) fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(40);
    format!(
        "bytes differ at offset {at} (got {} bytes, expected {}):\n      got:      \"{}\"\n      \
         expected: \"{}\"",
        got.len(),
        want.len(),
        show(&got[from..got.len().min(at + 40)]),
        show(&want[from..want.len().min(at + 40)]),
    )
}

// ------------------------------------------------------------------------------- captures

/// One captured message: its bytes and envelope.
pub(crate) struct Captured {
    pub(crate) data: Vec<u8>,
    pub(crate) from: String,
    pub(crate) rcpts: Vec<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) auth_method: Option<String>,
}

pub(crate) fn parse_envelope(kind: Capture, data: &[u8], env: Option<String>) -> Captured {
    let mut c = Captured {
        data: data.to_vec(),
        from: String::new(),
        rcpts: Vec::new(),
        auth_user: None,
        auth_method: None,
    };
    if kind == Capture::SinkDump {
        // X-Mail-Args: <a@b> SIZE=.. / X-Rcpt-Args: <c@d> ...
        let text = String::from_utf8_lossy(data);
        for line in text.lines() {
            let first = |v: &str| {
                let t = v.split_whitespace().next().unwrap_or("");
                t.trim_start_matches('<').trim_end_matches('>').to_owned()
            };
            if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
                c.from = first(v);
            } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
                c.rcpts.push(first(v));
            } else if line.starts_with("Received:") {
                break;
            }
        }
        return c;
    }
    for line in env.unwrap_or_default().lines() {
        let Some((k, v)) = line.split_once(": ").or_else(|| line.split_once(':')) else {
            continue;
        };
        let v = v.trim().to_owned();
        match k {
            "mail_from" => c.from = v,
            "rcpt" => c.rcpts.push(v),
            "auth_user" if !v.is_empty() => c.auth_user = Some(v),
            "auth_method" if !v.is_empty() => c.auth_method = Some(v),
            _ => {}
        }
    }
    c
}

pub(crate) fn marker(id: &str) -> Vec<u8> {
    format!("X-Interop-Id: <{id}>").into_bytes()
}

/// Scan the capture folder once for the messages with these ids.
pub(crate) fn scan(
    t: &Target,
    ids: &[String],
    found: &mut BTreeMap<String, Captured>,
) -> Result<(), String> {
    let spool = t.spool.as_ref().expect("scan needs a spool");
    let entries = std::fs::read_dir(spool).map_err(|e| format!("{}: {e}", spool.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".env") {
            continue;
        }
        if t.capture != Capture::SinkDump && !name.ends_with(".eml") {
            continue;
        }
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        for id in ids {
            if found.contains_key(id) || find(&data, &marker(id)).is_none() {
                continue;
            }
            let env = std::fs::read_to_string(path.with_extension("env")).ok();
            found.insert(id.clone(), parse_envelope(t.capture, &data, env));
        }
    }
    Ok(())
}

pub(crate) async fn wait_captures(
    t: &Target,
    ids: &[String],
) -> Result<BTreeMap<String, Captured>, String> {
    let deadline = Instant::now() + CAPTURE_WAIT;
    let mut found = BTreeMap::new();
    loop {
        scan(t, ids, &mut found)?;
        if found.len() == ids.len() {
            return Ok(found);
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = ids.iter().filter(|i| !found.contains_key(*i)).collect();
            return Err(format!(
                "{} of {} message(s) never reached the capture folder {} within {:?}: {missing:?}",
                missing.len(),
                ids.len(),
                t.spool
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                CAPTURE_WAIT
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a delivered message must look like.
pub(crate) struct Expect<'a> {
    pub(crate) id: String,
    pub(crate) sent: Vec<u8>,
    pub(crate) from: &'a str,
    pub(crate) rcpts: Vec<&'a str>,
    pub(crate) auth_user: Option<&'a str>,
    pub(crate) auth_method: Option<AuthMechanism>,
}

impl<'a> Expect<'a> {
    /// Message `id`, sent as `sent` from `from` to `rcpts`, without AUTH.
    pub(crate) fn new(id: String, sent: Vec<u8>, from: &'a str, rcpts: &[&'a str]) -> Expect<'a> {
        Expect {
            id,
            sent,
            from,
            rcpts: rcpts.to_vec(),
            auth_user: None,
            auth_method: None,
        }
    }
}

pub(crate) fn check_captured(t: &Target, want: &Expect<'_>, got: &Captured) -> Result<(), String> {
    let body = extract(t.capture, &got.data)?;
    let wanted = expected(t.capture, &want.sent);
    if body != wanted {
        return Err(format!(
            "{}: delivered bytes differ from what was sent: {}",
            want.id,
            first_difference(&body, &wanted)
        ));
    }
    if got.from != want.from {
        return Err(format!(
            "{}: envelope sender {:?}, expected {:?}",
            want.id, got.from, want.from
        ));
    }
    let got_rcpts: BTreeSet<_> = got.rcpts.iter().map(String::as_str).collect();
    let want_rcpts: BTreeSet<_> = want.rcpts.iter().copied().collect();
    if got_rcpts != want_rcpts {
        return Err(format!(
            "{}: envelope recipients {got_rcpts:?}, expected {want_rcpts:?}",
            want.id
        ));
    }
    if let Some(user) = want.auth_user
        && got.auth_user.as_deref() != Some(user)
    {
        return Err(format!(
            "{}: the server recorded AUTH user {:?}, expected {user:?}",
            want.id, got.auth_user
        ));
    }
    if let (Some(m), Some(recorded)) = (want.auth_method, got.auth_method.as_deref())
        && !recorded.eq_ignore_ascii_case(m.name())
    {
        return Err(format!(
            "{}: the server recorded AUTH method {recorded:?}, expected {}",
            want.id,
            m.name()
        ));
    }
    Ok(())
}

/// Wait for every expected message and compare each with what was sent. Without a capture
/// folder there is nothing to check.
pub(crate) async fn verify(t: &Target, wants: &[Expect<'_>]) -> Result<(), String> {
    if t.spool.is_none() {
        return Ok(());
    }
    let ids: Vec<String> = wants.iter().map(|w| w.id.clone()).collect();
    let found = wait_captures(t, &ids).await?;
    for w in wants {
        check_captured(t, w, &found[&w.id])?;
    }
    Ok(())
}

/// True when no capture holds the message `id` (checked after a later message arrived).
pub(crate) fn absent(t: &Target, id: &str) -> Result<bool, String> {
    if t.spool.is_none() {
        return Ok(true);
    }
    let mut found = BTreeMap::new();
    scan(t, &[id.to_owned()], &mut found)?;
    Ok(found.is_empty())
}

/// Send one message on `conn` and return what to expect in the capture.
pub(crate) async fn send<'a>(
    conn: &mut Conn,
    id: String,
    from: &'a str,
    to: &[&'a str],
    headers: &str,
    body: &[u8],
) -> Result<(SendOutcome, Expect<'a>), String> {
    let msg = message(&id, headers, body);
    let outcome = conn
        .client
        .send_mail_bytes(from, to, &msg)
        .await
        .map_err(|e| conn.fail(&format!("sending {id}"), &e))?;
    Ok((outcome, Expect::new(id, msg, from, to)))
}
