// The WASI column of the interop matrix: the smtp-wasi-component, transpiled by jco and called
// through its WIT interface (one-shot `send` and the `session` resource), against the real
// servers tests/servers/start-servers.sh started (aiosmtpd, nodemailer's smtp-server, Postfix +
// Dovecot, Exim, smtp-sink), reading their ports, credentials, CA and capture folders from the
// environment it exported (SMTP_INTEROP_*). Every delivered message is read back from the
// server's capture folder and compared byte for byte with what was sent (after the
// normalisation SMTP implies and the trace header the server prepends), with its envelope and
// the AUTH mechanism the server recorded.
//
// Rows go to stdout and, tab-separated (server, case, pass|FAIL, detail), to the file named by
// SMTP_INTEROP_RESULTS: the same matrix as the Rust interop tests, with the server column
// "<server>-wasi" and the tokio column's case labels where the case is the same: every case the
// tokio column runs on these servers except mail-builder (a Rust-only API), and a few of its own
// (a session over TLS with AUTH, a streamed body, a client certificate). DKIM is signed here in
// memory only (a streamed body cannot be signed through the WIT interface), so its label says
// "(memory, session, batch)" where the tokio one says "(memory, file, pool)". Where the
// tokio case reads the client's transcript (PIPELINING, CHUNKING, DSN parameters, HELO, LHLO),
// this one reads the component's (connect option transcript-lines). Postfix also has the tokio
// and blocking columns' proxy rows (tests/tests/interop/proxy.rs): sends through a real pproxy
// (SOCKS5 and HTTP CONNECT, with credentials; connect option proxy) and wrong proxy
// credentials, see "through a real proxy" below. Exit status 1 when a case failed.
//
// Usage: node interop.mjs COMPONENT_DIR   (the folder holding jco's smtp.js; it must sit under
//        this folder so that its imports find node_modules/@bytecodealliance/preview2-shim)
import crypto from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { NO_OPTIONS, call, fileStream, json } from "./wit.mjs";

const componentDir = path.resolve(process.argv[2] ?? "work-interop/component");
const { client } = await import(pathToFileURL(path.join(componentDir, "smtp.js")).href);

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`interop.mjs: ${name} is not set: run tests/servers/run-interop.sh`);
    process.exit(2);
  }
  return v;
};
const HOST = "127.0.0.1";
const EHLO = "wasi.interop.test";
const FROM = "sender@example.com";
const USER = env("SMTP_INTEROP_USER");
const PASS = env("SMTP_INTEROP_PASS");
const TOKEN = env("SMTP_INTEROP_TOKEN");
const CA = fs.readFileSync(env("SMTP_INTEROP_CA"), "utf8");
const RESULTS = process.env.SMTP_INTEROP_RESULTS;
const CAPTURE_WAIT_MS = 20000;
const SCRATCH = fs.mkdtempSync(path.join(path.dirname(componentDir), "stream-"));

// ------------------------------------------------------------------------- the component

const describe = (err) => `${err.tag}: ${json(err.val)}`.slice(0, 300);

/** Connect options every case of the current target gets (node-lmtp: protocol lmtp). */
let targetOptions = {};
function connectOptions(port, tls, extra = {}) {
  return {
    host: HOST,
    port,
    tls,
    ehloDomain: EHLO,
    allowPlaintextAuth: false,
    caPem: CA,
    connectTimeoutMs: 10000,
    replyTimeoutMs: 30000,
    ...targetOptions,
    ...extra,
  };
}
/** The end of a session's transcript, for an error message. */
const tail = (session, n = 20) => {
  const lines = session.transcript();
  return `\n    transcript:\n${lines.slice(-n).map((l) => `      ${l}`).join("\n")}`;
};
/** True when the session is closed: NOOP fails (with the error that closed it). */
const closed = (session) => call(() => session.noop()).err !== undefined;
const bytes = (v) => (typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v));
const bodyOf = (b) => ({ tag: "bytes", val: new Uint8Array(b) });

// ------------------------------------------------------------------------ messages, captures

let seq = 0;
const newId = (server, label) => `wasi.${server}.${label.replace(/[^A-Za-z0-9]/g, "-")}.${process.pid}.${++seq}`;
const message = (id, headers, body) =>
  Buffer.concat([
    bytes(`From: Interop Sender <${FROM}>\r\nTo: rcpt@example.org\r\nSubject: interop ${id}\r\nX-Interop-Id: <${id}>\r\n${headers}\r\n`),
    bytes(body),
  ]);
const plainBody = (id) => `Hello from the WASI interop test ${id}.\r\nSecond line.\r\n`;

/** What SMTP delivers for `sent`: every bare CR and bare LF becomes CRLF, ending in CRLF. */
function normalize(sent) {
  const out = [];
  for (let i = 0; i < sent.length; i++) {
    const b = sent[i];
    if (b === 13 && sent[i + 1] === 10) {
      out.push(13, 10);
      i++;
    } else if (b === 13 || b === 10) out.push(13, 10);
    else out.push(b);
  }
  if (out.length && !(out[out.length - 2] === 13 && out[out.length - 1] === 10)) out.push(13, 10);
  return Buffer.from(out);
}
const crlfToLf = (data) => Buffer.from(data.toString("latin1").replace(/\r\n/g, "\n"), "latin1");
/** The length of the header field at the start of `data` with its folded lines. */
function headerLength(data) {
  let pos = 0;
  for (;;) {
    const nl = data.indexOf(10, pos);
    if (nl < 0) return data.length;
    pos = nl + 1;
    if (data[pos] !== 32 && data[pos] !== 9) return pos;
  }
}
/** The message as sent, cut out of a capture file of kind `kind`. */
function extract(kind, data) {
  if (kind === "exact") return data;
  if (kind === "received-lf" || kind === "received-crlf") {
    if (!data.subarray(0, 9).equals(Buffer.from("Received:"))) throw new Error("capture does not start with a Received: header");
    return data.subarray(headerLength(data));
  }
  // smtp-sink's dump: X-* envelope headers, a Received: header, the message, one LF more.
  const at = data.indexOf("\nReceived: ") + 1;
  if (at <= 0) throw new Error("smtp-sink dump without its Received: header");
  const rest = data.subarray(at + headerLength(data.subarray(at)));
  return rest[rest.length - 1] === 10 ? rest.subarray(0, rest.length - 1) : rest;
}
function expected(kind, sent) {
  const wire = normalize(sent);
  return kind === "received-lf" || kind === "sink" ? crlfToLf(wire) : wire;
}
function parseEnvelope(kind, data, envText) {
  const c = { data, from: "", rcpts: [], authUser: null, authMethod: null };
  if (kind === "sink") {
    for (const line of data.toString("utf8").split("\n")) {
      const first = (v) => (v.trim().split(/\s+/)[0] ?? "").replace(/^</, "").replace(/>$/, "");
      if (line.startsWith("X-Mail-Args: ")) c.from = first(line.slice(13));
      else if (line.startsWith("X-Rcpt-Args: ")) c.rcpts.push(first(line.slice(13)));
      else if (line.startsWith("Received:")) break;
    }
    return c;
  }
  for (const line of (envText ?? "").split("\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1).trim();
    if (k === "mail_from") c.from = v;
    else if (k === "rcpt") c.rcpts.push(v);
    else if (k === "auth_user" && v) c.authUser = v;
    else if (k === "auth_method" && v) c.authMethod = v;
  }
  return c;
}
function scan(t, ids, found) {
  for (const name of fs.readdirSync(t.spool)) {
    if (name.startsWith(".") || name.endsWith(".env")) continue;
    if (t.capture !== "sink" && !name.endsWith(".eml")) continue;
    let data;
    try {
      data = fs.readFileSync(path.join(t.spool, name));
    } catch {
      continue;
    }
    for (const id of ids) {
      if (found.has(id) || data.indexOf(`X-Interop-Id: <${id}>`) < 0) continue;
      let envText = null;
      try {
        envText = fs.readFileSync(path.join(t.spool, name.replace(/\.eml$/, ".env")), "utf8");
      } catch {}
      found.set(id, parseEnvelope(t.capture, data, envText));
    }
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Wait for each expected message and compare it with what was sent. */
async function verify(t, wants) {
  const found = new Map();
  const deadline = Date.now() + CAPTURE_WAIT_MS;
  for (;;) {
    scan(t, wants.map((w) => w.id), found);
    if (found.size === wants.length) break;
    if (Date.now() > deadline) {
      const missing = wants.filter((w) => !found.has(w.id)).map((w) => w.id);
      throw new Error(`${missing.length} of ${wants.length} message(s) never reached ${t.spool}: ${missing.join(", ")}`);
    }
    await sleep(50);
  }
  for (const w of wants) {
    const got = found.get(w.id);
    const body = extract(t.capture, got.data);
    const want = expected(t.capture, w.sent);
    if (!body.equals(want)) {
      let at = 0;
      while (at < body.length && at < want.length && body[at] === want[at]) at++;
      throw new Error(`${w.id}: delivered bytes differ at offset ${at} (got ${body.length} bytes, expected ${want.length})`);
    }
    if (got.from !== w.from) throw new Error(`${w.id}: envelope sender ${got.from}, expected ${w.from}`);
    const a = [...new Set(got.rcpts)].sort().join(",");
    const b = [...new Set(w.rcpts)].sort().join(",");
    if (a !== b) throw new Error(`${w.id}: envelope recipients ${a}, expected ${b}`);
    if (w.authUser && got.authUser !== w.authUser) throw new Error(`${w.id}: AUTH user ${got.authUser}, expected ${w.authUser}`);
    if (w.authMethod && got.authMethod && got.authMethod.toUpperCase() !== w.authMethod) {
      throw new Error(`${w.id}: the server recorded AUTH ${got.authMethod}, expected ${w.authMethod}`);
    }
  }
}
/** True when no capture holds `id` (checked after a later message arrived). */
function absent(t, id) {
  const found = new Map();
  scan(t, [id], found);
  return found.size === 0;
}

// ------------------------------------------------------------------------------------- cases

const MECH = { plain: "PLAIN", login: "LOGIN", xoauth2: "XOAUTH2", "scram-sha256": "SCRAM-SHA-256" };

/** One message with the one-shot `send`, optionally after AUTH with `mech` asked by name (and
 *  `extra` connect options, e.g. a proxy). */
async function caseSend(t, label, port, mode, mech, extra = {}) {
  const id = newId(t.name, label);
  const sent = message(id, "", plainBody(id));
  const auth =
    mech === undefined
      ? {}
      : mech === "xoauth2"
        ? { token: { user: USER, token: TOKEN }, authMechanism: mech }
        : { credentials: { user: USER, password: PASS }, authMechanism: mech, allowPlaintextAuth: mode === "none" };
  const r = call(() => client.send(connectOptions(port, mode, { ...auth, ...extra }), { sender: FROM, recipients: ["rcpt@example.org"] }, new Uint8Array(sent)));
  if (r.err) throw new Error(describe(r.err));
  if (mech && r.ok.authMechanism !== MECH[mech]) throw new Error(`AUTH ${r.ok.authMechanism}, asked for ${MECH[mech]}`);
  await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"], authUser: mech ? USER : null, authMethod: mech ? MECH[mech] : null }]);
  return `${mech ? `AUTH ${MECH[mech]} ok; ` : ""}${r.ok.tlsVersion ?? "no TLS"}; final reply ${r.ok.reply.code} ${r.ok.reply.text}`;
}

/** A wrong password (or token): auth rejected with the server's 5xx; then, on the same
 *  session, the right one works (a refused AUTH leaves the session usable), as in the tokio
 *  case. The one-shot `send` with the wrong secret fails the same way. */
async function caseWrongSecret(t, port, mode, mech) {
  const wrong = mech === "xoauth2" ? "ya29.wrong-token" : "wrong-password";
  const auth =
    mech === "xoauth2"
      ? { token: { user: USER, token: wrong }, authMechanism: mech }
      : { credentials: { user: USER, password: wrong }, authMechanism: mech };
  const id = newId(t.name, "wrong");
  const oneShot = call(() => client.send(connectOptions(port, mode, auth), { sender: FROM, recipients: ["rcpt@example.org"] }, new Uint8Array(message(id, "", plainBody(id)))));
  if (!oneShot.err || oneShot.err.tag !== "auth" || oneShot.err.val.kind !== "rejected") throw new Error(`one-shot send: expected auth rejected, got ${oneShot.err ? describe(oneShot.err) : "a delivery"}`);
  const session = client.Session.open(connectOptions(port, mode, { transcriptLines: 50 }));
  try {
    const r = call(() => session.login(USER, wrong, mech));
    if (!r.err) throw new Error("a wrong secret was accepted");
    if (r.err.tag !== "auth" || r.err.val.kind !== "rejected") throw new Error(`expected auth rejected, got ${describe(r.err)}`);
    const code = r.err.val.reply?.code ?? 0;
    if (code < 500 || code > 599 || !r.err.val.reply.text.trim()) throw new Error(`expected a 5xx refusal with the server's text, got ${json(r.err.val.reply)}`);
    for (const e of [r.err, oneShot.err]) if (json(e).includes(wrong) || json(session.transcript()).includes(wrong)) throw new Error("the secret appears in the error or the transcript");
    if (mech === "xoauth2" && !r.err.val.message.includes("401")) throw new Error(`expected the decoded JSON error (status 401) in the message: ${r.err.val.message}`);
    const right = call(() => session.login(USER, mech === "xoauth2" ? TOKEN : PASS, mech));
    if (right.err) throw new Error(`AUTH again with the right secret: ${describe(right.err)}${tail(session)}`);
    if (right.ok !== MECH[mech]) throw new Error(`AUTH again: ${right.ok}, asked for ${MECH[mech]}`);
    return `rejected: ${code} ${r.err.val.reply.text}${mech === "xoauth2" ? ` (${r.err.val.message.slice(r.err.val.message.indexOf("("))})` : ""}; retry with the right ${mech === "xoauth2" ? "token" : "password"} ok`;
  } finally {
    call(() => session.quit());
  }
}

/** login() without a mechanism picks `want` among what the server offers. */
async function caseAutoLogin(t, port, mode, want) {
  const session = client.Session.open(connectOptions(port, mode));
  try {
    const r = call(() => session.login(USER, PASS, undefined));
    if (r.err) throw new Error(`login(): ${describe(r.err)}`);
    if (r.ok !== want) throw new Error(`login() chose ${r.ok}, expected ${want}`);
    const offered = session.capabilities().find((c) => /^AUTH\b/i.test(c)) ?? "";
    return `offered ${offered.slice(5)}; login() chose ${r.ok}`;
  } finally {
    call(() => session.quit());
  }
}

/** AUTH on plaintext to a server that wants TLS first: not offered, or refused with a 5xx (the
 *  client is allowed to try, so that what is checked is the server's answer). */
async function caseAuthNeedsTls(t, port) {
  const session = client.Session.open(connectOptions(port, "none", { allowPlaintextAuth: true }));
  try {
    const r = call(() => session.login(USER, PASS, undefined));
    if (!r.err) throw new Error("AUTH succeeded in plaintext on a server that requires TLS");
    if (r.err.tag === "auth" && r.err.val.kind === "unsupported-mechanism") return `AUTH not offered before STARTTLS (${session.capabilities().join(", ")})`;
    const code = r.err.val?.reply?.code ?? 0;
    if (r.err.tag === "auth" && r.err.val.kind === "rejected" && code >= 500 && code < 600) return `refused: ${code} ${r.err.val.reply.text}`;
    throw new Error(`expected a refusal or AUTH not offered, got ${describe(r.err)}`);
  } finally {
    call(() => session.quit());
  }
}

/** MAIL on plaintext to a port that requires STARTTLS: 530 during mail-from. */
async function caseMailNeedsTls(t, port) {
  const session = client.Session.open(connectOptions(port, "none"));
  try {
    const id = newId(t.name, "mail-needs-tls");
    const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, NO_OPTIONS, bodyOf(message(id, "", plainBody(id)))));
    if (!r.err) throw new Error("a message was accepted in plaintext on a STARTTLS-required port");
    if (r.err.tag !== "protocol" || r.err.val.kind !== "unexpected-code" || r.err.val.during !== "mail-from" || r.err.val.reply?.code !== 530) throw new Error(`expected 530 to MAIL, got ${describe(r.err)}`);
    return `MAIL refused: ${r.err.val.reply.code} ${r.err.val.reply.text}`;
  } finally {
    call(() => session.quit());
  }
}

/** Send `count` messages on one session (one connection) and check every capture. */
async function caseSession(t, port, mode, count, mech) {
  const opts = mech ? { credentials: { user: USER, password: PASS }, authMechanism: mech } : {};
  const session = client.Session.open(connectOptions(port, mode, opts));
  const wants = [];
  try {
    for (let i = 0; i < count; i++) {
      const id = newId(t.name, `session-${i}`);
      const sent = message(id, "", `${plainBody(id)}${i % 7 === 0 ? `.dot line ${i}\r\n` : ""}`);
      const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, NO_OPTIONS, bodyOf(sent)));
      if (r.err) throw new Error(`message ${i}: ${describe(r.err)}`);
      wants.push({ id, sent, from: FROM, rcpts: ["rcpt@example.org"] });
    }
  } finally {
    call(() => session.quit());
  }
  await verify(t, wants);
  return `${count} messages on one session`;
}

async function caseCapabilities(t, port, want) {
  const session = client.Session.open(connectOptions(port, "none"));
  const caps = session.capabilities();
  call(() => session.quit());
  const keywords = new Set(caps.map((c) => c.split(/\s+/)[0].toUpperCase()));
  const missing = want.filter((k) => !keywords.has(k));
  if (missing.length) throw new Error(`not advertised: ${missing.join(", ")}; EHLO said ${caps.join(", ")}`);
  return caps.join(", ");
}

async function caseUtf8(t, port) {
  const id = newId(t.name, "smtputf8");
  const from = "jos\u00e9.\u00f1and\u00fa@example.com";
  const to = ["\u7528\u6237@example.org", "rcpt@example.org"];
  const sent = message(id, "X-Utf8-Subject: Gr\u00fc\u00dfe, \u4e16\u754c\r\n", "\u00dcn\u00efc\u00f6d\u00e9 body \u2713\r\n");
  const r = call(() => client.send(connectOptions(port, "none"), { sender: from, recipients: to }, new Uint8Array(sent)));
  if (r.err) throw new Error(describe(r.err));
  await verify(t, [{ id, sent, from, rcpts: to }]);
  return "UTF-8 sender and recipient delivered (SMTPUTF8 declared by the engine)";
}

async function caseUtf8RefusedLocally(t, port) {
  const id = newId(t.name, "smtputf8-refused");
  const r = call(() => client.send(connectOptions(port, "none"), { sender: FROM, recipients: ["\u7528\u6237@example.org"] }, new Uint8Array(message(id, "", plainBody(id)))));
  if (!r.err || r.err.tag !== "protocol" || r.err.val.kind !== "extension-unavailable" || r.err.val.blame !== "local-check") {
    throw new Error(`expected extension-unavailable (local-check), got ${r.err ? describe(r.err) : "a delivery"}`);
  }
  return "refused locally: SMTPUTF8 not offered";
}

/** A declared size over the server's SIZE: refused before MAIL, the session goes on. */
async function caseOversize(t, port) {
  const session = client.Session.open(connectOptions(port, "none"));
  try {
    const sizeLine = session.capabilities().find((c) => /^SIZE\s+\d+/i.test(c));
    if (!sizeLine) throw new Error("the server advertises no SIZE limit");
    const limit = BigInt(sizeLine.split(/\s+/)[1]);
    const id = newId(t.name, "over-size");
    const file = path.join(SCRATCH, `${id}.eml`);
    fs.writeFileSync(file, message(id, "", plainBody(id)));
    const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, { ...NO_OPTIONS, size: limit + 1n }, { tag: "stream", val: fileStream(file) }));
    fs.unlinkSync(file);
    if (!r.err || r.err.tag !== "protocol" || r.err.val.kind !== "message-too-large") throw new Error(`expected message-too-large, got ${r.err ? describe(r.err) : "a delivery"}`);
    const id2 = newId(t.name, "over-size-next");
    const sent2 = message(id2, "", plainBody(id2));
    const next = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, NO_OPTIONS, bodyOf(sent2)));
    if (next.err) throw new Error(`the next message: ${describe(next.err)}`);
    await verify(t, [{ id: id2, sent: sent2, from: FROM, rcpts: ["rcpt@example.org"] }]);
    if (!absent(t, id)) throw new Error("the over-size message was delivered");
    return `declared ${limit + 1n} over SIZE ${limit}: message-too-large before MAIL; the next message delivered`;
  } finally {
    call(() => session.quit());
  }
}

/** send-batch of 50, chained; message 25 has a recipient with a CR LF in it, refused locally
 *  (invalid-input) while the others go: as the tokio column's batch-50-chained. */
async function caseBatch(t, port) {
  const session = client.Session.open(connectOptions(port, "none"));
  const BAD = 25;
  const items = [];
  for (let i = 0; i < 50; i++) {
    const id = newId(t.name, `batch-${i}`);
    const body = `${plainBody(id)}${i % 7 === 0 ? ".starts with a dot\r\n" : ""}`;
    items.push({ id, sent: message(id, "", body), from: FROM, rcpts: i === BAD ? ["broken\r\nRSET@example.org"] : ["rcpt@example.org"] });
  }
  const started = performance.now();
  const results = session.sendBatch(items.map((m) => ({ envelope: { sender: FROM, recipients: m.rcpts }, options: NO_OPTIONS, message: new Uint8Array(m.sent) })));
  const ms = Math.round(performance.now() - started);
  call(() => session.quit());
  if (results.length !== 50) throw new Error(`${results.length} results for 50 messages`);
  const refused = results[BAD].tag === "err" ? results[BAD].val : {};
  if (refused.error?.tag !== "invalid-input" || refused.fate !== "not-sent") throw new Error(`message ${BAD} (bad recipient): ${json(results[BAD])}`);
  const bad = results.findIndex((r, i) => i !== BAD && r.tag !== "ok");
  if (bad >= 0) throw new Error(`batch message ${bad}: ${describe(results[bad].val.error)}`);
  await verify(t, items.filter((_, i) => i !== BAD));
  if (!absent(t, items[BAD].id)) throw new Error("the locally refused message was delivered");
  return `49 sent in ${ms} ms by send-batch, the locally refused one skipped, all delivered intact`;
}

/** pipelining-on / pipelining-off: three recipients; the transcript shows whether MAIL and the
 *  RCPTs left in one flight (each command queued before any reply) or one per round trip. */
async function casePipelining(t, port, use) {
  const session = client.Session.open(connectOptions(port, "none", { pipelining: use, transcriptLines: 100 }));
  try {
    const offered = session.capabilities().some((c) => /^PIPELINING\b/i.test(c));
    const id = newId(t.name, `pipelining-${use}`);
    const sent = message(id, "", plainBody(id));
    const to = ["rcpt1@example.org", "rcpt2@example.org", "rcpt3@example.org"];
    const r = call(() => session.send({ sender: FROM, recipients: to }, NO_OPTIONS, bodyOf(sent)));
    if (r.err) throw new Error(`${describe(r.err)}${tail(session)}`);
    const lines = session.transcript();
    const mail = lines.findIndex((l) => l.startsWith("C: MAIL FROM"));
    const envelope = lines.slice(mail, mail + 4);
    const flight = envelope.length === 4 && envelope.every((l) => l.startsWith("C: "));
    const oneByOne = lines.slice(mail).filter((l) => /^C: (MAIL|RCPT)/.test(l)).length === 4 &&
      lines.slice(mail).every((l, i, a) => !/^C: (MAIL|RCPT)/.test(l) || a[i + 1]?.startsWith("S: "));
    const wantFlight = offered && use === "when-offered";
    if (mail < 0 || (wantFlight ? !flight : !oneByOne)) throw new Error(`PIPELINING ${offered ? "offered" : "not offered"}, ${use}: expected ${wantFlight ? "MAIL and 3 RCPTs in one flight" : "one command per reply"}${tail(session)}`);
    await verify(t, [{ id, sent, from: FROM, rcpts: to }]);
    return `3 recipients delivered; PIPELINING ${offered ? "offered" : "not offered"}; ${wantFlight ? "MAIL + 3 RCPT in one flight" : "one command per round trip"}`;
  } finally {
    call(() => session.quit());
  }
}

/** chunking-on (BDAT) / chunking-off (DATA): a body with dot lines, long enough for chunks. */
async function caseChunking(t, port, use) {
  const session = client.Session.open(connectOptions(port, "none", { chunking: use, transcriptLines: 200 }));
  try {
    const offered = session.capabilities().some((c) => /^CHUNKING\b/i.test(c));
    const id = newId(t.name, `chunking-${use}`);
    let body = ".leading dot\r\n..two dots\r\n.\r\nmiddle\r\n";
    for (let i = 0; i < 2000; i++) body += `line ${String(i).padStart(5, "0")} of a long body for BDAT chunks\r\n`;
    const sent = message(id, "", body);
    const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, NO_OPTIONS, bodyOf(sent)));
    if (r.err) throw new Error(`${describe(r.err)}${tail(session)}`);
    const lines = session.transcript();
    const bdat = lines.some((l) => l.startsWith("C: BDAT"));
    const data = lines.includes("C: DATA");
    const wantBdat = offered && use === "when-offered";
    if (bdat !== wantBdat || data === wantBdat) throw new Error(`CHUNKING ${offered ? "offered" : "not offered"} and ${use}: BDAT used = ${bdat}, DATA used = ${data}${tail(session, 12)}`);
    await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"] }]);
    return `${normalize(sent).length} bytes via ${bdat ? "BDAT" : "DATA"}`;
  } finally {
    call(() => session.quit());
  }
}

/** data-pipelining always (the pool's mode), one recipient of three refused, with chunking on
 *  and off: over DATA with PIPELINING, DATA leaves with the envelope and the session closes
 *  before a body byte; over BDAT (or without PIPELINING) no body is sent and the session goes
 *  on. Either way nothing is delivered and the next message goes through. */
async function caseRequireAllPipelinedData(t, port) {
  const notes = [];
  for (const chunking of ["when-offered", "never"]) {
    let session = client.Session.open(connectOptions(port, "none", { dataPipelining: "always", chunking, transcriptLines: 100 }));
    try {
      const caps = session.capabilities();
      const pipelining = caps.some((c) => /^PIPELINING\b/i.test(c));
      const bdat = chunking === "when-offered" && caps.some((c) => /^CHUNKING\b/i.test(c));
      const first = newId(t.name, "require-all-pipelined");
      const r = call(() => session.send({ sender: FROM, recipients: ["ok1@example.org", "reject1@example.org", "ok2@example.org"] }, NO_OPTIONS, bodyOf(message(first, "", plainBody(first)))));
      if (!r.err || r.err.tag !== "protocol" || r.err.val.kind !== "recipients-refused" || r.err.val.refused.length !== 1 || r.err.val.refused[0].recipient !== "reject1@example.org") {
        throw new Error(`expected recipients-refused (reject1 only), got ${r.err ? describe(r.err) : "a delivery"}${tail(session)}`);
      }
      const lines = session.transcript();
      const dataSent = lines.includes("C: DATA");
      const bodySent = lines.some((l) => l === "C: ." || l.startsWith("C: BDAT") || l.startsWith("C: [message body"));
      const isClosed = closed(session);
      const expectData = pipelining && !bdat;
      if (dataSent !== expectData || bodySent || isClosed !== expectData) {
        throw new Error(`PIPELINING ${pipelining}, BDAT ${bdat}: DATA sent ${dataSent} (expected ${expectData}), body sent ${bodySent}, session closed ${isClosed}${tail(session)}`);
      }
      if (isClosed) {
        call(() => session.quit());
        session = client.Session.open(connectOptions(port, "none"));
      }
      const id2 = newId(t.name, "require-all-pipelined-next");
      const sent2 = message(id2, "", plainBody(id2));
      const next = call(() => session.send({ sender: FROM, recipients: ["ok1@example.org"] }, NO_OPTIONS, bodyOf(sent2)));
      if (next.err) throw new Error(`the next message: ${describe(next.err)}`);
      await verify(t, [{ id: id2, sent: sent2, from: FROM, rcpts: ["ok1@example.org"] }]);
      if (!absent(t, first)) throw new Error(`${first} was delivered to a partial list`);
      const note = bdat ? "BDAT: body held back" : isClosed ? "DATA pipelined, closed before the body" : "no PIPELINING: DATA never sent";
      if (!notes.includes(note)) notes.push(note);
    } finally {
      call(() => session.quit());
    }
  }
  return `${notes.join("; ")}; nothing delivered; next message ok`;
}

/** LMTP: one recipient refused at RCPT, one after the message (node-lmtp: "lmtpfail"), each
 *  with its own reply in the delivery; smtp-sink's -L port without a capture. */
async function caseLmtpPerRecipient(t, port, capture) {
  const session = client.Session.open(connectOptions(port, "none", { protocol: "lmtp", transcriptLines: 100 }));
  try {
    if (!session.transcript().some((l) => l.startsWith("C: LHLO"))) throw new Error(`no LHLO sent${tail(session)}`);
    const to = capture ? ["ok1@example.org", "reject1@example.org", "lmtpfail1@example.org", "ok2@example.org"] : ["ok1@example.org", "ok2@example.org"];
    const id = newId(t.name, "lmtp-per-recipient");
    const sent = message(id, "", plainBody(id));
    const r = call(() => session.send({ sender: FROM, recipients: to }, { ...NO_OPTIONS, acceptPartial: true }, bodyOf(sent)));
    if (r.err) throw new Error(`${describe(r.err)}${tail(session)}`);
    const status = r.ok.recipients.map((x) => [x.recipient, x.reply.code, x.accepted]);
    const bad = status.some(([rcpt, code, accepted]) => rcpt.startsWith("ok") !== (Math.floor(code / 100) === 2) || accepted !== rcpt.startsWith("ok"));
    if (bad || status.length !== to.length || status.some(([rcpt], i) => rcpt !== to[i])) throw new Error(`per-recipient results ${json(status)}`);
    if (capture) await verify(t, [{ id, sent, from: FROM, rcpts: ["ok1@example.org", "lmtpfail1@example.org", "ok2@example.org"] }]);
    return json(status.map(([rcpt, code]) => [rcpt, code]));
  } finally {
    call(() => session.quit());
  }
}

/** smtp-sink's faults: two recipients; the typed error, and whether the session survived. */
async function caseFault(t, port, fault) {
  const session = client.Session.open(connectOptions(port, "none", { transcriptLines: 100 }));
  try {
    const id = newId(t.name, `fault-${fault}`);
    const r = call(() => session.send({ sender: FROM, recipients: ["rcpt1@example.org", "rcpt2@example.org"] }, NO_OPTIONS, bodyOf(message(id, "", plainBody(id)))));
    const caps = session.capabilities();
    const e = r.err?.val;
    const code = e?.reply?.code ?? 0;
    const usable = () => {
      const n = call(() => session.noop());
      if (n.err) throw new Error(`NOOP afterwards: ${describe(n.err)}${tail(session)}`);
      return "session usable";
    };
    const unexpected = () => new Error(`${fault}: unexpected ${r.err ? describe(r.err) : `success ${r.ok.reply.code}`}${tail(session)}`);
    switch (fault) {
      case "nopipe":
        if (r.err || caps.some((c) => /^PIPELINING\b/i.test(c))) throw unexpected();
        return `sent without PIPELINING: ${r.ok.reply.code} ${r.ok.reply.text}`;
      case "noesmtp":
        if (r.err || !session.transcript().some((l) => l.startsWith("C: HELO"))) throw unexpected();
        return `EHLO refused, HELO used: ${r.ok.reply.code} ${r.ok.reply.text}`;
      case "rcpt5xx":
        if (r.err?.tag !== "protocol" || e.kind !== "recipients-refused" || e.refused.length !== 2 || !e.refused.every((x) => Math.floor(x.reply.code / 100) === 5)) throw unexpected();
        return `recipients-refused: ${e.refused[0].reply.code} ${e.refused[0].reply.text}; ${usable()}`;
      case "mail4xx":
        if (r.err?.tag !== "protocol" || e.kind !== "unexpected-code" || e.during !== "mail-from" || Math.floor(code / 100) !== 4) throw unexpected();
        return `transient: ${code} ${e.reply.text}`;
      case "datahangup":
        if (!((r.err?.tag === "protocol" && e.kind === "connection-closed") || r.err?.tag === "io") || !closed(session)) throw unexpected();
        return `${r.err.tag} ${e.kind ?? ""} during ${e.during}; session closed`;
      case "rcpt421":
        if (r.err?.tag !== "protocol" || e.kind !== "unexpected-code" || code !== 421 || !closed(session)) throw unexpected();
        return `421 during ${e.during}; session closed`;
      case "abort550":
        if (r.err?.tag !== "protocol" || e.kind !== "unexpected-code" || e.during !== "data-end" || code !== 550) throw unexpected();
        return `550 during data-end; ${closed(session) ? "session closed" : "read after the dot (timing)"}`;
      case "dot5xx":
      case "dot4xx": {
        const cls = fault === "dot5xx" ? 5 : 4;
        if (r.err?.tag !== "protocol" || e.kind !== "unexpected-code" || e.during !== "data-end" || Math.floor(code / 100) !== cls) throw unexpected();
        return `${cls === 5 ? "permanent" : "transient"}: ${code} ${e.reply.text}; ${usable()}`;
      }
      default:
        throw new Error(`unknown fault ${fault}`);
    }
  } finally {
    call(() => session.quit());
  }
}

async function caseBody(t, port, label, headers, body) {
  const id = newId(t.name, label);
  const sent = message(id, headers, body);
  const r = call(() => client.send(connectOptions(port, "none"), { sender: FROM, recipients: ["rcpt@example.org"] }, new Uint8Array(sent)));
  if (r.err) throw new Error(describe(r.err));
  await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"] }]);
  return `${sent.length} bytes delivered exactly`;
}

async function casePartial(t, port) {
  const id = newId(t.name, "partial");
  const sent = message(id, "", plainBody(id));
  const to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
  const session = client.Session.open(connectOptions(port, "none"));
  const r = call(() => session.send({ sender: FROM, recipients: to }, { ...NO_OPTIONS, acceptPartial: true }, bodyOf(sent)));
  call(() => session.quit());
  if (r.err) throw new Error(describe(r.err));
  const refused = r.ok.recipients.filter((x) => !x.accepted);
  if (refused.length !== 1 || refused[0].recipient !== "reject1@example.org" || Math.floor(refused[0].reply.code / 100) !== 5) {
    throw new Error(`expected reject1 refused with 5xx, got ${json(r.ok.recipients)}`);
  }
  await verify(t, [{ id, sent, from: FROM, rcpts: ["ok1@example.org", "ok2@example.org"] }]);
  return `refused: ${refused[0].reply.code} ${refused[0].reply.text}`;
}

async function caseRequireAll(t, port) {
  const id = newId(t.name, "require-all");
  const sent = message(id, "", plainBody(id));
  const session = client.Session.open(connectOptions(port, "none"));
  try {
    const r = call(() => session.send({ sender: FROM, recipients: ["ok1@example.org", "reject1@example.org", "ok2@example.org"] }, NO_OPTIONS, bodyOf(sent)));
    if (!r.err) throw new Error("sent despite a refused recipient");
    if (r.err.tag !== "protocol" || r.err.val.kind !== "recipients-refused" || r.err.val.refused.length !== 1) throw new Error(`expected recipients-refused, got ${describe(r.err)}`);
    // The session goes on; the refused message must not arrive.
    const id2 = newId(t.name, "require-all-next");
    const sent2 = message(id2, "", plainBody(id2));
    const next = call(() => session.send({ sender: FROM, recipients: ["ok1@example.org"] }, NO_OPTIONS, bodyOf(sent2)));
    if (next.err) throw new Error(`the next message: ${describe(next.err)}`);
    await verify(t, [{ id: id2, sent: sent2, from: FROM, rcpts: ["ok1@example.org"] }]);
    if (!absent(t, id)) throw new Error("the refused message was delivered");
    return `recipients-refused: ${r.err.val.refused[0].reply.code}; next message delivered`;
  } finally {
    call(() => session.quit());
  }
}

async function caseStream(t, port) {
  const id = newId(t.name, "stream");
  let body = "";
  for (let i = 0; body.length < 200 * 1024; i++) body += `${i % 50 === 0 ? "." : ""}line ${i} ${"abcdefghij".repeat(6)}\r\n`;
  const sent = message(id, "", body);
  const file = path.join(SCRATCH, `${id}.eml`);
  fs.writeFileSync(file, sent);
  const session = client.Session.open(connectOptions(port, "none"));
  const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, { ...NO_OPTIONS, size: BigInt(sent.length) }, { tag: "stream", val: fileStream(file) }));
  call(() => session.quit());
  fs.unlinkSync(file);
  if (r.err) throw new Error(describe(r.err));
  await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"] }]);
  return `${sent.length} bytes from a wasi:io input stream, SIZE declared`;
}

/** DSN parameters: on MAIL and RCPT and delivered where DSN is offered, refused locally
 *  before MAIL where it is not. */
async function caseDsn(t, port) {
  const id = newId(t.name, "dsn");
  const sent = message(id, "", plainBody(id));
  const options = { ...NO_OPTIONS, dsnReturn: "headers", envelopeId: `env-${seq}`, notify: { success: false, failure: true, delay: true }, originalRecipients: ["orig+list@example.org"] };
  const session = client.Session.open(connectOptions(port, "none", { transcriptLines: 100 }));
  try {
    const offered = session.capabilities().some((c) => /^DSN\b/i.test(c));
    const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, options, bodyOf(sent)));
    const lines = session.transcript();
    if (!offered) {
      if (!r.err || r.err.tag !== "protocol" || r.err.val.kind !== "extension-unavailable" || r.err.val.blame !== "local-check") throw new Error(`expected extension-unavailable, got ${r.err ? describe(r.err) : "a delivery"}`);
      if (lines.some((l) => l.startsWith("C: MAIL"))) throw new Error(`MAIL was sent${tail(session)}`);
      return "DSN not offered: refused locally before MAIL";
    }
    if (r.err) throw new Error(`${describe(r.err)}${tail(session)}`);
    const mail = lines.some((l) => l.startsWith("C: MAIL FROM") && l.includes("RET=HDRS") && l.includes("ENVID="));
    const rcpt = lines.some((l) => l.startsWith("C: RCPT TO") && l.includes("NOTIFY=FAILURE,DELAY") && l.includes("ORCPT=rfc822;orig+2Blist@example.org"));
    if (!(mail && rcpt)) throw new Error(`DSN parameters missing from MAIL / RCPT${tail(session)}`);
    await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"] }]);
    return "RET=HDRS ENVID= NOTIFY=FAILURE,DELAY ORCPT= accepted and delivered";
  } finally {
    call(() => session.quit());
  }
}

async function caseClientCertificate(t, port) {
  const cert = (c, k) => ({ certPem: fs.readFileSync(env(c), "utf8"), keyPem: fs.readFileSync(env(k), "utf8") });
  const id = newId(t.name, "mtls");
  const sent = message(id, "", "mutual TLS\r\n");
  const ok = call(() => client.send(connectOptions(port, "implicit", { clientCertificate: cert("SMTP_INTEROP_CLIENT_CERT", "SMTP_INTEROP_CLIENT_KEY") }), { sender: FROM, recipients: ["mtls@example.org"] }, new Uint8Array(sent)));
  if (ok.err) throw new Error(`with the CA's client certificate: ${describe(ok.err)}`);
  const id2 = newId(t.name, "mtls-stranger");
  const stranger = call(() => client.send(connectOptions(port, "implicit", { clientCertificate: cert("SMTP_INTEROP_STRANGER_CERT", "SMTP_INTEROP_STRANGER_KEY") }), { sender: FROM, recipients: ["mtls@example.org"] }, new Uint8Array(message(id2, "", "stranger\r\n"))));
  if (!stranger.err) throw new Error("a certificate from another CA was accepted");
  await verify(t, [{ id, sent, from: FROM, rcpts: ["mtls@example.org"] }]);
  if (!absent(t, id2)) throw new Error("the stranger's message was delivered");
  return `accepted with the CA's certificate; another CA's: ${stranger.err.tag} ${stranger.err.val.kind ?? ""}`;
}

/** DKIM (issue 24): messages signed in the guest (connect options dkim) verify with Python's
 *  dkimpy (smtp-dkim/tests/dkim_verify.py, as the tokio case) from the copies the server
 *  delivered: the one-shot `send`, a session's `send` and its `send-batch`, all bodies in memory
 *  (a streamed body cannot be signed: refused with invalid-input, nothing sent, the session goes
 *  on). Each copy, trace header removed and line ends as sent, must start with the signature and
 *  hold the message as given after it; the first with one letter changed must not verify. */
const DKIM_TESTS = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..", "smtp-dkim", "tests");
const DKIM_KEY_FILE = path.join(DKIM_TESTS, "keys", "rsa2048-pkcs8.pem");
const DKIM_SELECTOR = "sel2026";
const DKIM_DOMAIN = "example.com";
const DKIM_HEADERS = "Date: Mon, 7 Dec 2026 03:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n";
const DKIM_BODY = "Gr\u00fc\u00dfe, caf\u00e9.\r\n.one dot\r\n..two dots\r\n.\r\nbare LF\nbare CR\rtrailing space   \r\n";

/** dkimpy's verdict on each message, as the tokio case gets it. */
function dkimpy(t, messages) {
  const dir = fs.mkdtempSync(path.join(SCRATCH, `dkim-${t.name}-`));
  const files = messages.map((m, i) => {
    const file = path.join(dir, `${i}.eml`);
    fs.writeFileSync(file, m);
    return file;
  });
  const python = process.env.DKIM_PYTHON || "python3";
  const r = spawnSync(python, [path.join(DKIM_TESTS, "dkim_verify.py"), DKIM_KEY_FILE, DKIM_SELECTOR, DKIM_DOMAIN, ...files], { encoding: "utf8" });
  fs.rmSync(dir, { recursive: true, force: true });
  if (r.error) throw new Error(`cannot run ${python} (pip install dkimpy cryptography pynacl): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`dkim_verify.py failed (${r.status}): ${(r.stderr ?? "").trim()}`);
  const verdicts = r.stdout.split("\n").filter((l) => l && !l.startsWith("record ")).map((l) => l.endsWith(" True"));
  if (verdicts.length !== messages.length) throw new Error(`dkim_verify.py gave ${verdicts.length} verdicts: ${r.stdout}`);
  return verdicts;
}

async function caseDkim(t, port) {
  const dkim = { keyPem: fs.readFileSync(DKIM_KEY_FILE, "utf8"), domain: DKIM_DOMAIN, selector: DKIM_SELECTOR };
  const to = ["rcpt@example.org"];
  const envelope = { sender: FROM, recipients: to };
  const ids = ["memory", "session", "batch"].map((l) => newId(t.name, `dkim-${l}`));
  const sent = ids.map((id) => message(id, DKIM_HEADERS, DKIM_BODY));
  const one = call(() => client.send(connectOptions(port, "none", { dkim }), envelope, new Uint8Array(sent[0])));
  if (one.err) throw new Error(`one-shot send: ${describe(one.err)}`);
  const session = client.Session.open(connectOptions(port, "none", { dkim, transcriptLines: 40 }));
  try {
    const r = call(() => session.send(envelope, NO_OPTIONS, bodyOf(sent[1])));
    if (r.err) throw new Error(`session send: ${describe(r.err)}${tail(session)}`);
    const file = path.join(SCRATCH, `dkim-stream-${process.pid}.eml`);
    fs.writeFileSync(file, sent[1]);
    const streamed = call(() => session.send(envelope, NO_OPTIONS, { tag: "stream", val: fileStream(file) }));
    fs.rmSync(file, { force: true });
    if (streamed.err?.tag !== "invalid-input") throw new Error(`a streamed body on a signing session: ${streamed.err ? describe(streamed.err) : "sent"}, expected invalid-input`);
    const [b] = session.sendBatch([{ envelope, options: NO_OPTIONS, message: new Uint8Array(sent[2]) }]);
    if (b.tag !== "ok") throw new Error(`send-batch: ${describe(b.val.error)}${tail(session)}`);
    const q = call(() => session.quit());
    if (q.err) throw new Error(`quit: ${describe(q.err)}`);
  } finally {
    call(() => session.quit());
  }
  const found = new Map();
  const deadline = Date.now() + CAPTURE_WAIT_MS;
  for (;;) {
    scan(t, ids, found);
    if (found.size === ids.length) break;
    if (Date.now() > deadline) throw new Error(`${ids.filter((id) => !found.has(id)).join(", ")} never reached ${t.spool}`);
    await sleep(50);
  }
  const delivered = ids.map((id, i) => {
    // Trace header removed, CRLF line ends (a capture with LF line ends had CRLF on the wire).
    const copy = normalize(extract(t.capture, found.get(id).data));
    if (!copy.subarray(0, 16).equals(Buffer.from("DKIM-Signature: "))) throw new Error(`${id}: the delivered copy does not start with the signature`);
    const rest = copy.subarray(copy.indexOf("\r\nFrom: ") + 2);
    if (!rest.equals(normalize(sent[i]))) throw new Error(`${id}: the message after the signature is not the one sent`);
    return copy;
  });
  const tampered = Buffer.from(delivered[0]);
  let at = tampered.length - 1;
  while (at >= 0 && !/[A-Za-z]/.test(String.fromCharCode(tampered[at]))) at--;
  tampered[at] ^= 0x20;
  const verdicts = dkimpy(t, [...delivered, tampered]);
  if (json(verdicts) !== json([true, true, true, false])) {
    throw new Error(`dkimpy on the delivered copies (one-shot, session, batch, tampered): ${json(verdicts)}, expected [true,true,true,false]`);
  }
  return "signed in the guest (one-shot, session, batch; bytes): delivered copies verify (dkimpy), a changed byte fails; a stream is refused";
}

// ------------------------------------------------------------------------ through a real proxy

// The proxy rows of the tokio and blocking columns (tests/tests/interop/proxy.rs and
// case/route.rs), with their labels and checks: pproxy (`pip install pproxy`; scripts/test.sh
// installs it), SOCKS5 or HTTP CONNECT with credentials (--auth 0: asked on every connection),
// one pproxy per row, killed when the row ends (also when it fails, or when this process exits).
// pproxy listens on 127.0.0.2, an address the server's certificate does not name (localhost,
// 127.0.0.1, ::1; tests/servers/start-servers.sh), while the SMTP host stays 127.0.0.1: so a TLS
// session through it proves the certificate was checked for the SMTP host, not the proxy. (The
// Rust rows reach pproxy on 127.0.0.2 through a relay; here pproxy listens there itself: a relay
// in this process could not move a byte while a component call blocks its thread.) pproxy logs
// each tunnel as "<kind> <client ip:port> -> <host:port>".
const PROXY_IP = "127.0.0.2";
const PROXY_USER = "user";
const PROXY_PASS = "secret";
/** The wrong proxy password of the refused row: it must never show in an error. */
const WRONG_PROXY_PASSWORD = "wr0ng-proxy-pa55";

/** A free port on `ip` (bound and released: pproxy binds it next). */
async function freePort(ip) {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, ip, resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** pproxy on PROXY_IP with one listener with credentials per kind ("socks5", "http"), once each
 *  listens: `{ url(kind, password?), log(), tunnels(port), expectTunnels(port, before, want),
 *  stop() }`. Killed if it does not come up. */
async function startPproxy(kinds) {
  const ports = {};
  for (const kind of kinds) ports[kind] = await freePort(PROXY_IP);
  const args = ["-u", "-m", "pproxy", "-v", "--auth", "0"];
  for (const kind of kinds) args.push("-l", `${kind}://${PROXY_IP}:${ports[kind]}#${PROXY_USER}:${PROXY_PASS}`);
  const child = spawn(process.env.PPROXY_PYTHON || "python3", args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let exited = null;
  const gone = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve((exited = signal ?? code)));
    child.on("error", (e) => resolve((exited = e.message)));
  });
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const killNow = () => child.kill("SIGKILL");
  process.on("exit", killNow);
  const stop = async () => {
    process.off("exit", killNow);
    if (exited === null) {
      child.kill();
      if ((await Promise.race([gone, sleep(3000).then(() => "timeout")])) === "timeout") {
        child.kill("SIGKILL");
        await gone;
      }
    }
  };
  // "Serving on ipv? 127.0.0.2:PORT by socks5" once a listener is up.
  const serving = () => kinds.every((kind) => log.includes(`${PROXY_IP}:${ports[kind]} by `));
  for (let i = 0; i < 200 && !serving() && exited === null; i++) await sleep(50);
  if (!serving()) {
    await stop();
    throw new Error(`pproxy did not listen on ${PROXY_IP} (python3 -m pproxy; pip install pproxy): exit ${exited}; log: ${log.trim()}`);
  }
  const arrow = (port) => new RegExp(` -> ${HOST.replace(/\./g, "\\.")}:${port}$`);
  const tunnels = (port) => log.split("\n").filter((l) => arrow(port).test(l.trim())).length;
  return {
    /** The listener's URL with the user and `password` (default: the right one). */
    url: (kind, password = PROXY_PASS) => `${kind}://${PROXY_USER}:${encodeURIComponent(password)}@${PROXY_IP}:${ports[kind]}`,
    log: () => log,
    /** How many tunnels to the SMTP server's `port` pproxy's log shows so far. */
    tunnels,
    /** pproxy's log shows exactly `want` tunnels to `port` since it showed `before`: waits up to
     *  5 s for one (its output is read on this thread, which a component call blocks), or 500 ms
     *  when none is wanted (time for one that should not be there to show). */
    expectTunnels: async (port, before, want) => {
      const deadline = Date.now() + (want === 0 ? 500 : 5000);
      let fresh = tunnels(port) - before;
      while (fresh < Math.max(want, 1) && Date.now() < deadline) {
        await sleep(50);
        fresh = tunnels(port) - before;
      }
      if (fresh !== want) throw new Error(`pproxy's log shows ${fresh} new tunnel(s) to ${HOST}:${port}, expected ${want}:\n${log.trim()}`);
      return `${fresh} new tunnel${fresh === 1 ? "" : "s"} to ${HOST}:${port} in pproxy's log`;
    },
    stop,
  };
}

/** One message through the proxy `kind` ("socks5" or "http", with credentials) after AUTH PLAIN:
 *  first, straight to the server with the certificate checked for the proxy's address, the TLS
 *  handshake fails (io-error invalid-data: during tls-handshake for STARTTLS, during connect for
 *  implicit TLS); then through the proxy the message is delivered (its copy verified byte for
 *  byte, with its envelope and the AUTH user and mechanism Postfix recorded), and pproxy's log
 *  shows exactly one new tunnel to 127.0.0.1:port. The tokio column's case_proxied. */
async function caseProxied(t, label, port, mode, kind) {
  const pproxy = await startPproxy([kind]);
  try {
    const direct = call(() => client.Session.open(connectOptions(port, mode, { tlsServerName: PROXY_IP })));
    if (direct.ok) {
      call(() => direct.ok.quit());
      throw new Error(`the server's certificate is accepted for ${PROXY_IP}, the proxy's address: the proxied row could not tell which name was checked`);
    }
    const during = mode === "starttls" ? "tls-handshake" : "connect";
    if (direct.err.tag !== "io" || direct.err.val.kind !== "invalid-data" || direct.err.val.during !== during) {
      throw new Error(`checking the certificate for ${PROXY_IP} (the proxy's address) should fail the TLS handshake (io invalid-data during ${during}), got ${describe(direct.err)}`);
    }
    const before = pproxy.tunnels(port);
    const sent = await caseSend(t, label, port, mode, "plain", { proxy: pproxy.url(kind) });
    const tunnels = await pproxy.expectTunnels(port, before, 1);
    return `${sent}; TLS checked for ${HOST} via ${kind} at ${PROXY_IP}; ${tunnels}`;
  } finally {
    await pproxy.stop();
  }
}

/** Wrong credentials for a SOCKS5 and for an HTTP CONNECT proxy (session.open, the connect the
 *  tokio case makes): each an io-error during connect, without the password or its base64 in
 *  the error, and no tunnel to `port` in pproxy's log (so Postfix received nothing). The tokio
 *  column's case_proxy_wrong_credentials. */
async function caseProxyWrongCredentials(t, port, mode) {
  const kinds = ["socks5", "http"];
  const pproxy = await startPproxy(kinds);
  try {
    const before = pproxy.tunnels(port);
    const secrets = [WRONG_PROXY_PASSWORD, Buffer.from(WRONG_PROXY_PASSWORD).toString("base64"), Buffer.from(`${PROXY_USER}:${WRONG_PROXY_PASSWORD}`).toString("base64")];
    const notes = [];
    for (const kind of kinds) {
      const opened = call(() => client.Session.open(connectOptions(port, mode, { proxy: pproxy.url(kind, WRONG_PROXY_PASSWORD) })));
      if (opened.ok) {
        call(() => opened.ok.quit());
        throw new Error(`${kind}: a wrong proxy password was accepted`);
      }
      const e = opened.err;
      if (e.tag !== "io" || e.val.during !== "connect") throw new Error(`${kind}: expected an io error during connect, got ${describe(e)}`);
      const shown = `${json(e)} ${String(e.val.message)}`;
      if (secrets.some((s) => shown.includes(s))) throw new Error(`${kind}: the proxy password shows in the error: ${shown}`);
      notes.push(`${kind}: io ${e.val.kind}: ${e.val.message}`);
    }
    await pproxy.expectTunnels(port, before, 0);
    return `${notes.join("; ")}; no tunnel to ${HOST}:${port}`;
  } finally {
    await pproxy.stop();
  }
}

// ----------------------------------------------------------------------------------- servers

const port = (name) => Number(env(name));
const tlsAndAuth = (p, tls, mechs) => [
  ["plain", () => (t) => caseSend(t, "plain", p, "none")],
  ["starttls", () => (t) => caseSend(t, "starttls", p, "starttls")],
  ["implicit-tls", () => (t) => caseSend(t, "implicit-tls", tls, "implicit")],
  ...mechs.map((m) => [`starttls+auth-${MECH[m].toLowerCase()}`, () => (t) => caseSend(t, `starttls+auth-${m}`, p, "starttls", m)]),
  ...mechs.map((m) => [`implicit+auth-${MECH[m].toLowerCase()}`, () => (t) => caseSend(t, `implicit+auth-${m}`, tls, "implicit", m)]),
  ...mechs.filter((m) => m === "plain" || m === "login").map((m) => [`starttls-wrong-password-${MECH[m].toLowerCase()}`, () => (t) => caseWrongSecret(t, p, "starttls", m)]),
];
/** The tokio column's body_cases(pipelining, chunking, smtputf8, size), with its labels, in
 *  its order (less mail-builder, Rust only), then the WASI column's own stream-body. */
const bodyCases = (p, { pipelining, chunking, utf8 = true, size = true }) => [
  ...(pipelining ? [["pipelining-on", () => (t) => casePipelining(t, p, "when-offered")]] : []),
  ["pipelining-off", () => (t) => casePipelining(t, p, "never")],
  ...(chunking
    ? [
        ["chunking-on (BDAT)", () => (t) => caseChunking(t, p, "when-offered")],
        ["chunking-off (DATA)", () => (t) => caseChunking(t, p, "never")],
      ]
    : []),
  ["8bit-body", () => (t) => caseBody(t, p, "8bit", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n", "h\u00e9llo w\u00f6rld \u2713\r\n")],
  ...(utf8 ? [["smtputf8-address", () => (t) => caseUtf8(t, p)]] : [["utf8-address-refused-locally", () => (t) => caseUtf8RefusedLocally(t, p)]]),
  ["dot-lines", () => (t) => caseBody(t, p, "dot-lines", "", ".leading dot\r\n..two dots\r\n.\r\nmiddle\r\n. space after dot\r\n")],
  ["bare-lf-and-cr", () => (t) => caseBody(t, p, "bare-lf-and-cr", "", "line one\nline two\rline three\r\nline four\nend")],
  ["partial-recipients (1 of 3 refused)", () => (t) => casePartial(t, p)],
  ["require-all-recipients", () => (t) => caseRequireAll(t, p)],
  ["require-all-pipelined-data (pool mode)", () => (t) => caseRequireAllPipelinedData(t, p)],
  ...(size ? [["over-size-refused-before-mail", () => (t) => caseOversize(t, p)]] : []),
  ["dsn-parameters", () => (t) => caseDsn(t, p)],
  ["50-messages-one-connection", () => (t) => caseSession(t, p, "none", 50)],
  ["batch-50-chained", () => (t) => caseBatch(t, p)],
  ["stream-body", () => (t) => caseStream(t, p)],
  ["dkim-signed-verifies (memory, session, batch)", () => (t) => caseDkim(t, p)],
];

function targets() {
  const list = [];
  if (process.env.SMTP_INTEROP_AIOSMTPD_PORT) {
    const p = port("SMTP_INTEROP_AIOSMTPD_PORT");
    const tls = port("SMTP_INTEROP_AIOSMTPD_TLS_PORT");
    list.push({
      name: "aiosmtpd", spool: env("SMTP_INTEROP_AIOSMTPD_SPOOL"), capture: "exact",
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["SIZE", "8BITMIME", "SMTPUTF8", "STARTTLS"])],
        ...tlsAndAuth(p, tls, ["plain", "login"]),
        ["auth-before-starttls-refused", () => (t) => caseAuthNeedsTls(t, p)],
        ["10-messages-one-session+starttls+auth-login", () => (t) => caseSession(t, p, "starttls", 10, "login")],
        ...bodyCases(p, { pipelining: false, chunking: false }),
        ["client-certificate", () => (t) => caseClientCertificate(t, port("SMTP_INTEROP_AIOSMTPD_MTLS_PORT"))],
      ],
    });
  }
  if (process.env.SMTP_INTEROP_NODE_PORT) {
    const p = port("SMTP_INTEROP_NODE_PORT");
    const tls = port("SMTP_INTEROP_NODE_TLS_PORT");
    list.push({
      name: "node", spool: env("SMTP_INTEROP_NODE_SPOOL"), capture: "exact",
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "STARTTLS", "SIZE", "AUTH"])],
        ...tlsAndAuth(p, tls, ["plain", "login", "xoauth2"]),
        ["implicit-wrong-password-plain", () => (t) => caseWrongSecret(t, tls, "implicit", "plain")],
        ["wrong-xoauth2-token", () => (t) => caseWrongSecret(t, p, "starttls", "xoauth2")],
        ["auth-before-starttls-refused", () => (t) => caseAuthNeedsTls(t, p)],
        ["10-messages-one-session+implicit+auth-plain", () => (t) => caseSession(t, tls, "implicit", 10, "plain")],
        ...bodyCases(p, { pipelining: true, chunking: false }),
      ],
    });
  }
  if (process.env.SMTP_INTEROP_NODE_LMTP_PORT) {
    const p = port("SMTP_INTEROP_NODE_LMTP_PORT");
    const body = Object.fromEntries(bodyCases(p, { pipelining: true, chunking: false }));
    const pick = (label) => [label, body[label]];
    list.push({
      name: "node-lmtp", spool: env("SMTP_INTEROP_NODE_SPOOL"), capture: "exact",
      // Every case of this target speaks LMTP (LHLO, a reply per recipient after the message).
      connect: { protocol: "lmtp" },
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"])],
        ["lmtp-plain", () => (t) => caseSend(t, "lmtp-plain", p, "none")],
        ["lmtp-per-recipient-replies", () => (t) => caseLmtpPerRecipient(t, p, true)],
        ...["pipelining-on", "pipelining-off", "8bit-body", "smtputf8-address", "dot-lines", "bare-lf-and-cr", "require-all-recipients", "over-size-refused-before-mail", "50-messages-one-connection", "batch-50-chained", "stream-body"].map(pick),
      ],
    });
  }
  if (process.env.SMTP_INTEROP_POSTFIX_PORT) {
    const p = port("SMTP_INTEROP_POSTFIX_PORT");
    const submit = port("SMTP_INTEROP_POSTFIX_SUBMIT_PORT");
    const tls = port("SMTP_INTEROP_POSTFIX_TLS_PORT");
    const auth = (mode, where, m) => [`${mode === "implicit" ? "implicit" : "submission"}+auth-${MECH[m].toLowerCase()}`, () => (t) => caseSend(t, `${mode}-auth-${m}`, where, mode, m)];
    list.push({
      name: "postfix", spool: env("SMTP_INTEROP_POSTFIX_SPOOL"), capture: "received-lf",
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["PIPELINING", "SIZE", "STARTTLS", "AUTH", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"])],
        ["plain", () => (t) => caseSend(t, "plain", p, "none")],
        ["starttls", () => (t) => caseSend(t, "starttls", p, "starttls")],
        ["plain+auth-plain", () => (t) => caseSend(t, "plain-auth-plain", p, "none", "plain")],
        ...["plain", "login", "scram-sha256"].flatMap((m) => [auth("starttls", submit, m), auth("implicit", tls, m)]),
        ["plain+auth-scram-sha-256", () => (t) => caseSend(t, "plain-auth-scram", p, "none", "scram-sha256")],
        ["starttls-auth-auto-selection", () => (t) => caseAutoLogin(t, submit, "starttls", "SCRAM-SHA-256")],
        ["starttls-wrong-password-scram-sha-256", () => (t) => caseWrongSecret(t, submit, "starttls", "scram-sha256")],
        ["starttls-wrong-password-plain", () => (t) => caseWrongSecret(t, submit, "starttls", "plain")],
        ["starttls-wrong-password-login", () => (t) => caseWrongSecret(t, submit, "starttls", "login")],
        ["implicit-wrong-password-plain", () => (t) => caseWrongSecret(t, tls, "implicit", "plain")],
        ["auth-before-starttls-refused", () => (t) => caseAuthNeedsTls(t, submit)],
        ["mail-before-starttls-refused", () => (t) => caseMailNeedsTls(t, submit)],
        // Through real proxies (pproxy), then wrong proxy credentials (as the Rust columns).
        ["socks5+starttls+auth-plain", () => (t) => caseProxied(t, "socks5+starttls+auth-plain", submit, "starttls", "socks5")],
        ["http-connect+implicit+auth-plain", () => (t) => caseProxied(t, "http-connect+implicit+auth-plain", tls, "implicit", "http")],
        ["proxy: wrong credentials", () => (t) => caseProxyWrongCredentials(t, submit, "starttls")],
        ["10-messages-one-session+submission+auth-login", () => (t) => caseSession(t, submit, "starttls", 10, "login")],
        ...bodyCases(p, { pipelining: true, chunking: true }),
      ],
    });
  }
  if (process.env.SMTP_INTEROP_EXIM_PORT) {
    const p = port("SMTP_INTEROP_EXIM_PORT");
    const tls = port("SMTP_INTEROP_EXIM_TLS_PORT");
    list.push({
      name: "exim", spool: env("SMTP_INTEROP_EXIM_SPOOL"), capture: "received-crlf",
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["SIZE", "8BITMIME", "DSN", "PIPELINING", "AUTH", "CHUNKING", "STARTTLS", "SMTPUTF8"])],
        ...tlsAndAuth(p, tls, ["plain", "login"]),
        ["10-messages-one-session+implicit+auth-plain", () => (t) => caseSession(t, tls, "implicit", 10, "plain")],
        ...bodyCases(p, { pipelining: true, chunking: true }),
      ],
    });
  }
  if (process.env.SMTP_INTEROP_SINK_PORTS) {
    const ports = Object.fromEntries(env("SMTP_INTEROP_SINK_PORTS").split(",").map((kv) => kv.split("=")));
    const sink = (name) => {
      if (!ports[name]) throw new Error(`SMTP_INTEROP_SINK_PORTS has no ${name} sink`);
      return Number(ports[name]);
    };
    const p = Number(ports.basic);
    const body = Object.fromEntries(bodyCases(p, { pipelining: true, chunking: false, utf8: false, size: false }));
    const pick = (label) => [label, body[label]];
    const fault = (label, name) => [label, () => (t) => caseFault(t, sink(name), name)];
    list.push({
      name: "smtp-sink", spool: env("SMTP_INTEROP_SINK_SPOOL"), capture: "sink",
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"])],
        ["plain", () => (t) => caseSend(t, "plain", p, "none")],
        ...["pipelining-on", "pipelining-off", "8bit-body", "utf8-address-refused-locally", "dot-lines", "bare-lf-and-cr", "dsn-parameters", "50-messages-one-connection", "batch-50-chained"].map(pick),
        ["lmtp-per-recipient-replies", () => (t) => caseLmtpPerRecipient(t, sink("lmtp"), false)],
        fault("fault: no PIPELINING (-p)", "nopipe"),
        fault("fault: EHLO refused (-f EHLO)", "noesmtp"),
        fault("fault: RCPT 5xx (-f RCPT)", "rcpt5xx"),
        fault("fault: MAIL 4xx (-r MAIL)", "mail4xx"),
        fault("fault: hang up on DATA (-q DATA)", "datahangup"),
        fault("fault: 421 on RCPT (-Q RCPT)", "rcpt421"),
        fault("fault: 550 after 354 (-A 0)", "abort550"),
        fault("fault: 5xx after dot (-f .)", "dot5xx"),
        fault("fault: 4xx after dot (-r .)", "dot4xx"),
        ["stream-body", () => (t) => caseStream(t, p)],
      ],
    });
  }
  return list;
}

// ------------------------------------------------------------------------------------ running

let failed = 0;
let rows = "";
const only = process.env.SMTP_INTEROP_WASI_ONLY; // a server name, to run just its cases
for (const t of targets()) {
  if (only && t.name !== only) continue;
  const server = `${t.name}-wasi`;
  targetOptions = t.connect ?? {};
  for (const [label, make] of t.cases) {
    const start = performance.now();
    let status = "pass";
    let note;
    try {
      note = await make()(t);
    } catch (e) {
      status = "FAIL";
      failed++;
      note = e instanceof Error ? e.message : json(e);
    }
    const ms = Math.round(performance.now() - start);
    console.log(`  [${server}] ${label.padEnd(44)} ${status.padEnd(5)} (${String(ms).padStart(5)} ms) ${note}`);
    const clean = String(note).replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").slice(0, 160);
    rows += `${server}\t${label}\t${status}\t${clean}\n`;
  }
}
if (RESULTS) fs.appendFileSync(RESULTS, rows);
fs.rmSync(SCRATCH, { recursive: true, force: true });
console.log(`\nWASI interop: ${rows.split("\n").filter(Boolean).length} cases, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
