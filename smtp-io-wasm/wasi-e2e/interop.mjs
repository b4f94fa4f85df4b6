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
// "<server>-wasi" and the tokio column's case labels where the case is the same. Exit status 1 when a case failed.
//
// Usage: node interop.mjs COMPONENT_DIR   (the folder holding jco's smtp.js; it must sit under
//        this folder so that its imports find node_modules/@bytecodealliance/preview2-shim)
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { filesystem } from "@bytecodealliance/preview2-shim";

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

/** Call something that returns a WIT `result`: { ok } or { err } (the thrown payload). */
function call(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e && e.payload !== undefined) return { err: e.payload };
    throw e;
  }
}
const json = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x));
const describe = (err) => `${err.tag}: ${json(err.val)}`.slice(0, 300);
const NO_OPTIONS = { requireTls: false, acceptPartial: false };

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
    ...extra,
  };
}
const bytes = (v) => (typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v));
const bodyOf = (b) => ({ tag: "bytes", val: new Uint8Array(b) });

/** An input-stream over a file, from the same preview2 shim the component runs on. */
function fileStream(file) {
  filesystem._setPreopens({ "/scratch": SCRATCH });
  const [[dir]] = filesystem.preopens.getDirectories();
  return dir.openAt({ symlinkFollow: false }, path.basename(file), {}, { read: true }).readViaStream(0n);
}

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

/** One message with the one-shot `send`, optionally after AUTH with `mech` asked by name. */
async function caseSend(t, label, port, mode, mech) {
  const id = newId(t.name, label);
  const sent = message(id, "", plainBody(id));
  const auth =
    mech === undefined
      ? {}
      : mech === "xoauth2"
        ? { token: { user: USER, token: TOKEN }, authMechanism: mech }
        : { credentials: { user: USER, password: PASS }, authMechanism: mech, allowPlaintextAuth: mode === "none" };
  const r = call(() => client.send(connectOptions(port, mode, auth), { sender: FROM, recipients: ["rcpt@example.org"] }, new Uint8Array(sent)));
  if (r.err) throw new Error(describe(r.err));
  if (mech && r.ok.authMechanism !== MECH[mech]) throw new Error(`AUTH ${r.ok.authMechanism}, asked for ${MECH[mech]}`);
  await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"], authUser: mech ? USER : null, authMethod: mech ? MECH[mech] : null }]);
  return `${mech ? `AUTH ${MECH[mech]} ok; ` : ""}${r.ok.tlsVersion ?? "no TLS"}; final reply ${r.ok.reply.code} ${r.ok.reply.text}`;
}

async function caseWrongSecret(t, port, mode, mech) {
  const auth =
    mech === "xoauth2"
      ? { token: { user: USER, token: "ya29.wrong-token" }, authMechanism: mech }
      : { credentials: { user: USER, password: "wrong-password" }, authMechanism: mech };
  const id = newId(t.name, "wrong");
  const r = call(() => client.send(connectOptions(port, mode, auth), { sender: FROM, recipients: ["rcpt@example.org"] }, new Uint8Array(message(id, "", plainBody(id)))));
  if (!r.err) throw new Error("a wrong secret was accepted");
  if (r.err.tag !== "auth" || r.err.val.kind !== "rejected") throw new Error(`expected auth rejected, got ${describe(r.err)}`);
  const code = r.err.val.reply?.code ?? 0;
  if (code < 500 || code > 599) throw new Error(`expected a 5xx refusal, got ${code}`);
  if (json(r.err).includes("wrong-password") || json(r.err).includes("wrong-token")) throw new Error("the secret appears in the error");
  return `rejected: ${code} ${r.err.val.reply.text}`;
}

/** Send `count` messages on one session (one connection) and check every capture. */
async function caseSession(t, port, mode, count, mech) {
  const opts = mech ? { credentials: { user: USER, password: PASS }, authMechanism: mech } : {};
  const session = client.Session.open(connectOptions(port, mode, opts));
  const wants = [];
  try {
    for (let i = 0; i < count; i++) {
      const id = newId(t.name, `session-${i}`);
      const sent = message(id, "", `${plainBody(id)}.dot line ${i}\r\n`);
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

async function caseBatch(t, port) {
  const session = client.Session.open(connectOptions(port, "none"));
  const items = [0, 1, 2].map((i) => {
    const id = newId(t.name, `batch-${i}`);
    return { id, sent: message(id, "", plainBody(id)), from: FROM, rcpts: ["rcpt@example.org"] };
  });
  const results = session.sendBatch(items.map((m) => ({ envelope: { sender: FROM, recipients: m.rcpts }, options: NO_OPTIONS, message: new Uint8Array(m.sent) })));
  call(() => session.quit());
  const bad = results.findIndex((r) => r.tag !== "ok");
  if (bad >= 0) throw new Error(`batch message ${bad}: ${describe(results[bad].val)}`);
  await verify(t, items);
  return `3 results: ${results.map((r) => r.val.reply.code).join(", ")}`;
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

async function caseDsn(t, port) {
  const id = newId(t.name, "dsn");
  const sent = message(id, "", plainBody(id));
  const options = { ...NO_OPTIONS, dsnReturn: "headers", envelopeId: `env-${seq}`, notify: { success: false, failure: true, delay: true }, originalRecipients: ["orig+list@example.org"] };
  const session = client.Session.open(connectOptions(port, "none"));
  const r = call(() => session.send({ sender: FROM, recipients: ["rcpt@example.org"] }, options, bodyOf(sent)));
  call(() => session.quit());
  if (r.err) throw new Error(describe(r.err));
  await verify(t, [{ id, sent, from: FROM, rcpts: ["rcpt@example.org"] }]);
  return "RET, ENVID, NOTIFY accepted";
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
const bodyCases = (p, { dsn, utf8 = true, size = true }) => [
  ...(utf8 ? [["smtputf8-address", () => (t) => caseUtf8(t, p)]] : [["smtputf8-refused-locally", () => (t) => caseUtf8RefusedLocally(t, p)]]),
  ...(size ? [["over-size-refused-before-mail", () => (t) => caseOversize(t, p)]] : []),
  ["dot-lines", () => (t) => caseBody(t, p, "dot-lines", "", ".leading dot\r\n..two dots\r\n.\r\nmiddle\r\n. space after dot\r\n")],
  ["bare-lf-and-cr", () => (t) => caseBody(t, p, "bare-lf-and-cr", "", "line one\nline two\rline three\r\nline four\nend")],
  ["8bit-body", () => (t) => caseBody(t, p, "8bit", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n", "h\u00e9llo w\u00f6rld \u2713\r\n")],
  ["partial-recipients", () => (t) => casePartial(t, p)],
  ["require-all-recipients", () => (t) => caseRequireAll(t, p)],
  ...(dsn ? [["dsn-parameters", () => (t) => caseDsn(t, p)]] : []),
  ["10-messages-one-session", () => (t) => caseSession(t, p, "none", 10)],
  ["batch-3-chained", () => (t) => caseBatch(t, p)],
  ["stream-body", () => (t) => caseStream(t, p)],
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
        ["10-messages-one-session+starttls+auth-login", () => (t) => caseSession(t, p, "starttls", 10, "login")],
        ...bodyCases(p, { dsn: false }),
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
        ["wrong-xoauth2-token", () => (t) => caseWrongSecret(t, p, "starttls", "xoauth2")],
        ["10-messages-one-session+implicit+auth-plain", () => (t) => caseSession(t, tls, "implicit", 10, "plain")],
        ...bodyCases(p, { dsn: true }),
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
        ["starttls-wrong-password-plain", () => (t) => caseWrongSecret(t, submit, "starttls", "plain")],
        ["starttls-wrong-password-login", () => (t) => caseWrongSecret(t, submit, "starttls", "login")],
        ["10-messages-one-session+submission+auth-login", () => (t) => caseSession(t, submit, "starttls", 10, "login")],
        ...bodyCases(p, { dsn: true }),
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
        ...bodyCases(p, { dsn: true }),
      ],
    });
  }
  if (process.env.SMTP_INTEROP_SINK_PORTS) {
    const ports = Object.fromEntries(env("SMTP_INTEROP_SINK_PORTS").split(",").map((kv) => kv.split("=")));
    const p = Number(ports.basic);
    list.push({
      name: "smtp-sink", spool: env("SMTP_INTEROP_SINK_SPOOL"), capture: "sink",
      cases: [
        ["ehlo-capabilities", () => (t) => caseCapabilities(t, p, ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"])],
        ["plain", () => (t) => caseSend(t, "plain", p, "none")],
        ["dot-lines", () => (t) => caseBody(t, p, "dot-lines", "", ".leading dot\r\n..two dots\r\n.\r\nend\r\n")],
        ["bare-lf-and-cr", () => (t) => caseBody(t, p, "bare-lf-and-cr", "", "line one\nline two\rline three\r\nend")],
        ["smtputf8-refused-locally", () => (t) => caseUtf8RefusedLocally(t, p)],
        ["10-messages-one-session", () => (t) => caseSession(t, p, "none", 10)],
        ["batch-3-chained", () => (t) => caseBatch(t, p)],
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
