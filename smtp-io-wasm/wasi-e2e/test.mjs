// End-to-end test of the WASI 0.2 client: the smtp-wasi-component, transpiled by jco, called
// from this JavaScript host through its WIT interface (smtp-rs:smtp/client: the one-shot `send`
// and the `session` resource), against loopback SMTP servers running in a worker thread (our own
// of ../e2e-common and nodemailer's smtp-server). Checks the exact bytes each server received in
// every TLS mode, the typed errors of the failure cases, ten messages on one session over one
// TLS connection, a 20 MiB body from a wasi:io input stream in bounded guest memory, the AUTH
// mechanism chosen by name and an XOAUTH2 token accepted and refused; the certificate checked
// for tls-server-name instead of the host dialled (127.0.0.1); delivery through a real proxy
// (pproxy: SOCKS5 and HTTP CONNECT, with and without credentials) and from a local address
// (127.0.0.2); and the connect options that switch the engine (pipelining, chunking,
// data-pipelining, protocol lmtp, transcript-lines) against feature-server.mjs, which records
// how the commands arrived.
//
// Usage: node test.mjs WORK_DIR   (WORK_DIR holds component/smtp.js and the test certificates)
import { Worker } from "node:worker_threads";
import crypto from "node:crypto";
import { readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { execFileSync, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { NO_OPTIONS, call, fileStream, json } from "./wit.mjs";

const work = path.resolve(process.argv[2] ?? "work");
const read = (name) => readFileSync(path.join(work, name), "utf8");
const CA = read("ca.pem");
const OTHER_CA = read("other-ca.pem");
const USER = "wasi-user@example.com";
const PASS = "correct horse battery staple";
const TOKEN = "ya29.wasi-e2e-access-token";

// --- servers in a worker thread -----------------------------------------------------------
const worker = new Worker(new URL("./server-worker.mjs", import.meta.url), {
  workerData: { key: read("server.key"), cert: read("server.pem"), user: USER, pass: PASS, token: TOKEN },
});
worker.on("error", (e) => {
  console.error("server worker failed:", e);
  process.exit(1);
});
const reply = (field) =>
  new Promise((resolve) => {
    const handler = (msg) => {
      if (field in msg) {
        worker.off("message", handler);
        resolve(msg);
      }
    };
    worker.on("message", handler);
  });
const { ports: P, nodePorts: N, featurePorts: F } = await reply("ports");
async function serverState() {
  const state = reply("messages");
  worker.postMessage("state");
  return state;
}

// --- the component ------------------------------------------------------------------------
// The guest's linear memories, seen from the host: jco's module keeps
// `WebAssembly.instantiate` when it loads, so wrapping it first shows every core instance it
// makes (the component's memory is the one its main module exports).
const memories = [];
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...args) {
  const made = await instantiate.apply(this, args);
  const instance = made instanceof WebAssembly.Instance ? made : made.instance;
  for (const v of Object.values(instance.exports)) if (v instanceof WebAssembly.Memory) memories.push(v);
  return made;
};
const { client } = await import(pathToFileURL(path.join(work, "component", "smtp.js")).href);
WebAssembly.instantiate = instantiate;
const guestMemory = () => memories.reduce((n, m) => n + m.buffer.byteLength, 0);

/** Call the WIT function: its result ({ ok } or { err }, see `call`) and how long it took. */
function send(options, envelope, message) {
  const start = performance.now();
  const bytes = typeof message === "string" ? new TextEncoder().encode(message) : message;
  const r = call(() => client.send(options, envelope, bytes));
  return { ...r, ms: performance.now() - start };
}

// --- checks -------------------------------------------------------------------------------
let failures = 0;
let passed = 0;
let current = "";
function check(cond, what, got) {
  if (!cond) {
    failures++;
    console.log(`    FAIL ${current}: ${what}; got ${json(got)}`);
  }
}
async function test(name, body) {
  current = name;
  const before = failures;
  const start = performance.now();
  try {
    await body();
  } catch (e) {
    failures++;
    console.log(`    FAIL ${name}: threw ${e && e.stack ? e.stack : e}`);
  }
  const ms = Math.round(performance.now() - start);
  if (failures === before) passed++;
  console.log(`${failures === before ? "ok  " : "FAIL"} ${name} (${ms} ms)`);
}

function options(port, tls, extra = {}) {
  return {
    host: tls === "none" ? "127.0.0.1" : "localhost",
    port,
    tls,
    ehloDomain: "component.example",
    credentials: { user: USER, password: PASS },
    allowPlaintextAuth: false,
    caPem: CA,
    connectTimeoutMs: 5000,
    replyTimeoutMs: 10000,
    ...extra,
  };
}

const message = (tag) =>
  `From: ${USER}\r\nTo: friend@example.org\r\nSubject: WASI ${tag}\r\n` +
  `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
  `Hello from a WASI 0.2 component (${tag}).\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n` +
  `8-bit: h\u00e9llo w\u00f6rld \u2713\r\n\r\nend\r\n`;

function bigMessage(tag, lines) {
  let body = `From: ${USER}\r\nTo: friend@example.org\r\nSubject: WASI big ${tag}\r\n\r\n`;
  for (let i = 0; i < lines; i++) {
    body += `${i % 7 === 0 ? "." : ""}line ${String(i).padStart(6, "0")} ${"abcdefghijklmnopqrstuvwxyz0123456789".repeat(2)}\r\n`;
  }
  return body;
}

async function expectDelivered(opts, envelope, body, want) {
  const before = (await serverState()).messages.length;
  const r = send(opts, envelope, body);
  check(r.ok !== undefined, "send succeeded", r.err);
  if (!r.ok) return;
  const { messages } = await serverState();
  check(messages.length === before + 1, "the server recorded one message", messages.length - before);
  const got = messages[messages.length - 1];
  const sent = Buffer.from(body, "utf8");
  const data = Buffer.from(got.data, "base64");
  check(data.equals(sent), "the bytes delivered equal the message sent", `${data.length} vs ${sent.length} bytes`);
  check(got.listener === want.listener, "listener", got.listener);
  check(got.tls === want.tls, "TLS at MAIL FROM", got.tls);
  check(got.tlsVersion === want.serverTls, "TLS version seen by the server", got.tlsVersion);
  check(got.authUser === USER && got.authMech === want.mech, "authenticated user and mechanism", [got.authUser, got.authMech]);
  check(got.from === envelope.sender, "MAIL FROM", got.from);
  check(JSON.stringify(got.to) === JSON.stringify(envelope.recipients), "RCPT TO", got.to);
  const d = r.ok;
  check(d.queueId === got.queueId, "queue id", d.queueId);
  check(d.reply.code === 250 && d.reply.enhanced === "2.0.0", "final reply", d.reply);
  check(d.size === BigInt(sent.length), "size", d.size);
  check(d.tlsVersion === want.clientTls, "TLS version seen by the client", d.tlsVersion);
  check(d.authMechanism === want.mech, "auth mechanism reported", d.authMechanism);
  check(
    d.recipients.length === envelope.recipients.length && d.recipients.every((x) => x.accepted && x.reply.code === 250),
    "recipients",
    d.recipients,
  );
  return r;
}

async function expectError(opts, envelope, body, tag, want) {
  const before = (await serverState()).messages.length;
  const r = send(opts, envelope, body);
  check(r.err !== undefined, "send failed", r.ok);
  if (!r.err) return r;
  check(r.err.tag === tag, `error class ${tag}`, r.err);
  check(r.fate === "not-sent", "fate not-sent (nothing was delivered)", r.fate);
  for (const [k, v] of Object.entries(want)) {
    check(json(r.err.val?.[k]) === json(v), `error.${k} = ${json(v)}`, r.err);
  }
  const after = (await serverState()).messages.length;
  check(after === before, "nothing was delivered", after - before);
  return r;
}

const env = (...recipients) => ({ sender: USER, recipients: recipients.length ? recipients : ["friend@example.org"] });

// --- delivery in the three TLS modes ------------------------------------------------------
await test("plain: AUTH PLAIN (opted in), exact bytes delivered", async () => {
  await expectDelivered(options(P.plain, "none", { allowPlaintextAuth: true }), env(), message("plain"), {
    listener: "plain", tls: false, serverTls: null, clientTls: undefined, mech: "PLAIN",
  });
});

await test("STARTTLS: TLS 1.3, AUTH PLAIN, two recipients, exact bytes delivered", async () => {
  await expectDelivered(options(P.starttls, "starttls"), env("friend@example.org", "other@example.net"), message("starttls"), {
    listener: "starttls", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "PLAIN",
  });
});

await test("implicit TLS: TLS 1.3, AUTH LOGIN, exact bytes delivered", async () => {
  await expectDelivered(options(P.implicit, "implicit"), env(), message("implicit"), {
    listener: "implicit", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "LOGIN",
  });
});

await test("implicit TLS: a 1.1 MB message (many TLS records), exact bytes delivered", async () => {
  await expectDelivered(options(P.implicit, "implicit"), env(), bigMessage("implicit", 13000), {
    listener: "implicit", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "LOGIN",
  });
});

await test("implicit TLS: SCRAM-SHA-256-PLUS bound to the TLS 1.3 tls-exporter, fresh nonces, exact bytes", async () => {
  const want = { listener: "scram", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "SCRAM-SHA-256-PLUS" };
  await expectDelivered(options(P.scram, "implicit"), env(), message("scram 1"), want);
  await expectDelivered(options(P.scram, "implicit"), env(), message("scram 2"), want);
  const { messages } = await serverState();
  const [a, b] = messages.slice(-2).map((m) => m.scramNonce);
  check(typeof a === "string" && a.length >= 24 && a !== b, "two sessions, two different client nonces (wasi:random)", [a, b]);
});

// --- typed errors -------------------------------------------------------------------------
await test("implicit TLS, certificate from an untrusted CA: io error invalid-data during connect", async () => {
  const r = await expectError(options(P.implicit, "implicit", { caPem: OTHER_CA }), env(), message("x"), "io", {
    during: "connect", kind: "invalid-data",
  });
  check(/certificate/i.test(r.err?.val?.message ?? "") && /UnknownIssuer/.test(r.err?.val?.message ?? ""), "the message names the certificate problem", r.err);
});

await test("implicit TLS, certificate for another name (dialled 127.0.0.1): io error invalid-data", async () => {
  const r = await expectError(options(P.implicit, "implicit", { host: "127.0.0.1" }), env(), message("x"), "io", {
    during: "connect", kind: "invalid-data",
  });
  check(/not valid for name/.test(r.err?.val?.message ?? ""), "the message says the name does not match", r.err);
});

await test("STARTTLS with the bundled webpki roots only (test CA not trusted): io error in the TLS handshake", async () => {
  const { events: before } = await serverState();
  const r = await expectError(options(P.starttls, "starttls", { caPem: undefined }), env(), message("x"), "io", {
    during: "tls-handshake", kind: "invalid-data",
  });
  check(/UnknownIssuer/.test(r.err?.val?.message ?? ""), "the message names the certificate problem", r.err);
  const { events } = await serverState();
  check(!events.slice(before.length).some((e) => e.event === "tls-up"), "the server never saw TLS established", events.slice(before.length));
});

await test("refused recipient: protocol error recipients-refused with the server's 550", async () => {
  const r = await expectError(options(P.starttls, "starttls"), env("reject-me@example.org"), message("x"), "protocol", {
    kind: "recipients-refused", during: "rcpt-to", blame: "server-refused",
  });
  const refused = r.err?.val?.refused ?? [];
  check(refused.length === 1 && refused[0].recipient === "reject-me@example.org", "the refused recipient", refused);
  check(refused[0]?.reply.code === 550 && refused[0]?.reply.enhanced === "5.1.1", "its reply", refused[0]?.reply);
  check(refused[0]?.accepted === false, "marked not accepted", refused[0]);
});

await test("bytes injected after the STARTTLS 220: protocol error response-injection, no TLS, nothing sent", async () => {
  const { events: before } = await serverState();
  await expectError(options(P.inject, "starttls"), env(), message("x"), "protocol", { kind: "response-injection", blame: "server-misbehaved", during: "starttls" });
  const { events } = await serverState();
  check(!events.slice(before.length).some((e) => e.event === "tls-up"), "no TLS handshake was attempted", events.slice(before.length));
});

await test("a server that drops the connection at MAIL: protocol error connection-closed during mail-from", async () => {
  await expectError(options(P.disconnect, "none", { credentials: undefined }), env(), message("x"), "protocol", {
    kind: "connection-closed", during: "mail-from", blame: "io",
  });
});

await test("a message's fate: not-sent when the server hangs up at MAIL, refused when it refuses the data, unknown when it hangs up after the end of data (one-shot and session)", async () => {
  const plain = (port) => options(port, "none", { credentials: undefined });
  const atMail = send(plain(P.disconnect), env(), message("fate at MAIL"));
  check(atMail.err?.tag === "protocol" && atMail.fate === "not-sent", "hang-up at MAIL: not-sent", atMail);
  const refused = send(plain(P.refusing), env(), message("fate refused"));
  check(refused.err?.tag === "protocol" && refused.err.val.reply?.code === 554 && refused.fate === "refused", "554 after the data: refused", refused);
  // The error looks like the hang-up at MAIL; only the fate tells that it may have arrived.
  const lost = send(plain(P.lost), env(), message("fate lost"));
  check(lost.err?.tag === "protocol" && lost.err.val.kind === "connection-closed" && lost.fate === "unknown", "hang-up after the end of data: unknown", lost);
  const session = client.Session.open(plain(P.lost));
  // (bytesOf is defined further down.)
  const encoded = (text) => new TextEncoder().encode(text);
  const inSession = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: encoded(message("fate session")) }));
  check(inSession.fate === "unknown", "session.send: unknown too", inSession);
  const later = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: encoded(message("fate later")) }));
  check(later.fate === "not-sent", "the next message on the closed session: not-sent", later);
  call(() => session.quit());
});

await test("closed port: io error connection-refused during connect", async () => {
  await expectError(options(P.closed, "none", { credentials: undefined }), env(), message("x"), "io", {
    during: "connect", kind: "connection-refused",
  });
});

await test("silent server: timeout waiting for the greeting, after the reply timeout (a real timer)", async () => {
  const r = await expectError(options(P.silent, "none", { replyTimeoutMs: 700 }), env(), message("x"), "timeout", {
    during: "greeting", afterMs: 700n,
  });
  check(r.ms >= 650 && r.ms < 5000, "the call took about the timeout", Math.round(r.ms));
});

await test("wrong password: auth error rejected with the server's 535", async () => {
  const r = await expectError(options(P.starttls, "starttls", { credentials: { user: USER, password: "wrong" } }), env(), message("x"), "auth", {
    kind: "rejected", blame: "server-refused",
  });
  check(r.err?.val?.reply?.code === 535 && r.err?.val?.reply?.enhanced === "5.7.8", "the 535 reply", r.err?.val?.reply);
});

await test("plaintext AUTH not opted in: auth error plaintext-refused, no credentials sent", async () => {
  await expectError(options(P.plain, "none"), env(), message("x"), "auth", { kind: "plaintext-refused", blame: "local-check" });
});

await test("invalid input: a CR LF in the sender, and a CA PEM without certificates", async () => {
  await expectError(options(P.starttls, "starttls"), { sender: "a@b.example\r\nRCPT TO:<x@y>", recipients: ["friend@example.org"] }, message("x"), "invalid-input", {});
  await expectError(options(P.starttls, "starttls", { caPem: "not a certificate" }), env(), message("x"), "invalid-input", {});
});

// --- the session deadline (deadline-ms), counted from before the connect --------------------
// Each deadline is shorter than the connect and reply timeouts, so only the deadline can end
// these calls early.
await test("silent server, deadline 800 ms under a 10 s reply timeout: deadline-exceeded during greeting", async () => {
  const r = await expectError(options(P.silent, "none", { credentials: undefined, deadlineMs: 800 }), env(), message("x"), "deadline-exceeded", {
    during: "greeting", afterMs: 800n,
  });
  check(r.ms >= 750 && r.ms < 6000, "the call took about the deadline, far less than the reply timeout", Math.round(r.ms));
});

await test("implicit TLS, ClientHello never answered, deadline 800 ms under a 10 s connect timeout: deadline-exceeded during connect", async () => {
  const r = await expectError(options(P.silent, "implicit", { deadlineMs: 800, connectTimeoutMs: 10000 }), env(), message("x"), "deadline-exceeded", {
    during: "connect", afterMs: 800n,
  });
  check(r.ms >= 750 && r.ms < 6000, "the call took about the deadline, far less than the connect timeout", Math.round(r.ms));
});

// The slowTls listener answers the ClientHello 1 s after the TCP accept and greets 1.5 s after
// the handshake. A 2 s deadline counted from before the connect runs out while the greeting is
// awaited (one counted from after the connect would have 0.5 s to spare and deliver); an 8 s
// deadline delivers, which shows the listener works and the deadline alone ended the first call.
await test("implicit TLS, handshake 1 s late, greeting 1.5 s after it, deadline 2 s: deadline-exceeded (connect time counted)", async () => {
  const { events: before } = await serverState();
  const r = await expectError(options(P.slowTls, "implicit", { deadlineMs: 2000 }), env(), message("x"), "deadline-exceeded", {
    afterMs: 2000n,
  });
  // Normally during the greeting; during connect only on a machine so loaded that the handshake
  // itself ends past 2 s. Either way the connect counted.
  check(["greeting", "connect"].includes(r.err?.val?.during), "during the greeting (or the connect)", r.err);
  check(r.ms >= 1900 && r.ms < 8000, "the call took about the deadline", Math.round(r.ms));
  const { events } = await serverState();
  const mine = events.slice(before.length).filter((e) => e.listener === "slowTls");
  check(!mine.some((e) => e.event === "greeting"), "the server had not greeted yet", mine);
  console.log(`     (deadline-exceeded during ${r.err?.val?.during} after ${Math.round(r.ms)} ms; server: ${mine.map((e) => e.event).join(", ")})`);
});

await test("implicit TLS, the same slow server, deadline 8 s: delivered", async () => {
  await expectDelivered(options(P.slowTls, "implicit", { deadlineMs: 8000 }), env(), message("slow tls"), {
    listener: "slowTls", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "LOGIN",
  });
});

// --- the session resource (nodemailer's smtp-server counts connections, handshakes, MAILs) ---

const sha256 = (bytes) => crypto.createHash("sha256").update(bytes).digest("hex");
const bytesOf = (text) => new TextEncoder().encode(text);
const nodeState = async () => (await serverState()).node;

await test("session: ten messages on one STARTTLS connection (one TCP connection, one TLS handshake, ten MAIL FROMs), exact bytes", async () => {
  const before = await nodeState();
  const session = client.Session.open(options(N.starttls, "starttls"));
  const caps = session.capabilities();
  check(caps.some((c) => /^AUTH\b/i.test(c)) && caps.some((c) => /^SIZE\b/i.test(c)), "capabilities after STARTTLS", caps);
  const sent = [];
  for (let i = 0; i < 10; i++) {
    const body = bytesOf(message(`session ${i}`));
    sent.push(body);
    const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: body }));
    check(r.ok !== undefined, `message ${i} sent`, r.err);
    check(r.ok?.reply.code === 250 && r.ok?.queueId, `message ${i}: 250 with a queue id`, r.ok?.reply);
    check(r.ok?.tlsVersion === "TLSv1_3" && r.ok?.authMechanism === "PLAIN", `message ${i}: TLS 1.3, PLAIN`, r.ok);
  }
  check(call(() => session.noop()).ok?.code === 250, "NOOP on the same connection", null);
  check(call(() => session.quit()).err === undefined, "QUIT", null);
  const after = await nodeState();
  check(after.connections - before.connections === 1, "one TCP connection", after.connections - before.connections);
  check(after.tls - before.tls === 1, "one TLS handshake", after.tls - before.tls);
  check(after.mailFrom - before.mailFrom === 10, "ten MAIL FROMs", after.mailFrom - before.mailFrom);
  check(after.authMethods.length - before.authMethods.length === 1, "one AUTH", after.authMethods.slice(before.authMethods.length));
  const got = after.messages.slice(before.messages.length);
  check(got.length === 10 && got.every((m, i) => m.sha256 === sha256(sent[i]) && m.length === sent[i].length), "ten messages, each byte-exact, in order", got.map((m) => m.length));
  const late = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf(message("late")) }));
  check(late.err?.tag === "invalid-input", "a send after quit is invalid-input", late);
});

await test("session: per-message options and results: partial acceptance lists each recipient; require-all refuses; the session goes on", async () => {
  const before = await nodeState();
  const session = client.Session.open(options(N.implicit, "implicit"));
  const partial = call(() =>
    session.send(env("friend@example.org", "reject-me@example.org", "other@example.net"), { ...NO_OPTIONS, acceptPartial: true, envelopeId: "wasi-envid-1", dsnReturn: "headers", notify: { success: false, failure: true, delay: false }, originalRecipients: ["a+b@example.org", "c@example.org", "d@example.org"] }, { tag: "bytes", val: bytesOf(message("partial")) }),
  );
  const rs = partial.ok?.recipients ?? [];
  check(rs.length === 3 && rs[0].accepted && !rs[1].accepted && rs[2].accepted, "accepted, refused, accepted", rs);
  check(rs[1]?.reply.code === 550 && rs[1]?.reply.enhanced === "5.1.1", "the refusal's reply", rs[1]);
  const all = call(() => session.send(env("friend@example.org", "reject-me@example.org"), NO_OPTIONS, { tag: "bytes", val: bytesOf(message("require all")) }));
  check(all.err?.tag === "protocol" && all.err.val.kind === "recipients-refused" && all.err.val.during === "rcpt-to", "require-all: recipients-refused during rcpt-to", all);
  check(all.err?.val.refused?.[0]?.recipient === "reject-me@example.org", "the refused recipient", all.err?.val.refused);
  const next = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf(message("after refusal")) }));
  check(next.ok?.reply.code === 250, "the next message on the same session is delivered", next);
  const wrongSize = call(() => session.send(env(), { ...NO_OPTIONS, size: 3n }, { tag: "bytes", val: bytesOf(message("wrong size")) }));
  check(wrongSize.err?.tag === "invalid-input", "a declared size that is not the message's: invalid-input", wrongSize);
  const badEnvid = call(() => session.send(env(), { ...NO_OPTIONS, envelopeId: "has space" }, { tag: "bytes", val: bytesOf(message("bad envid")) }));
  check(badEnvid.err?.tag === "invalid-input", "an ENVID with a space: invalid-input", badEnvid);
  const badOrcpt = call(() => session.send(env(), { ...NO_OPTIONS, originalRecipients: ["x@example.org", "y@example.org"] }, { tag: "bytes", val: bytesOf(message("orcpt count")) }));
  check(badOrcpt.err?.tag === "invalid-input", "ORCPT count differing from the recipients: invalid-input", badOrcpt);
  const noOrcpt = call(() => session.send(env(), { ...NO_OPTIONS, originalRecipients: [] }, { tag: "bytes", val: bytesOf(message("orcpt empty")) }));
  check(noOrcpt.err?.tag === "invalid-input" && noOrcpt.fate === "not-sent", "an empty ORCPT list: invalid-input (it was ignored)", noOrcpt);
  session.quit();
  const after = await nodeState();
  const got = after.messages.slice(before.messages.length);
  check(got.length === 2, "two messages delivered (partial, after refusal)", got.length);
  check(JSON.stringify(got[0]?.to) === JSON.stringify(["friend@example.org", "other@example.net"]), "partial: delivered to the accepted two", got[0]?.to);
  check(got[0]?.mailArgs?.ENVID === "wasi-envid-1" && got[0]?.mailArgs?.RET === "HDRS", "DSN ENVID and RET reached the server", got[0]?.mailArgs);
  const firstRcpt = got[0]?.rcptArgs?.[0] ?? {};
  check(firstRcpt.NOTIFY === "FAILURE" && /^rfc822;a(\+2B|\+)b@example\.org$/i.test(firstRcpt.ORCPT ?? ""), "NOTIFY and ORCPT on RCPT (smtp-server decodes the xtext)", got[0]?.rcptArgs);
  check(after.connections - before.connections === 1, "one connection for all of it", after.connections - before.connections);
});

await test("session: send-batch of four, one refused, each with its own result, one connection", async () => {
  const before = await nodeState();
  const session = client.Session.open(options(N.starttls, "starttls"));
  const bodies = [0, 1, 2, 3].map((i) => bytesOf(message(`batch ${i}`)));
  const results = session.sendBatch(
    // Options left out entirely ({}): every field is an option or a bool that defaults to false.
    bodies.map((b, i) => ({ envelope: i === 2 ? env("reject-batch@example.org") : env(), options: {}, message: b })),
  );
  check(results.length === 4, "four results", results.length);
  check([0, 1, 3].every((i) => results[i]?.tag === "ok" && results[i].val.reply.code === 250), "three delivered", results);
  const third = results[2]?.tag === "err" ? results[2].val : {};
  check(third.error?.tag === "protocol" && third.error.val.kind === "recipients-refused", "the third refused", results[2]);
  check(third.fate === "not-sent", "the third: fate not-sent", third.fate);
  session.quit();
  const after = await nodeState();
  const got = after.messages.slice(before.messages.length);
  check(got.length === 3 && [0, 1, 3].every((i, k) => got[k]?.sha256 === sha256(bodies[i])), "the three delivered byte-exact, in order", got.length);
  check(after.connections - before.connections === 1, "one connection", after.connections - before.connections);
});

/** A message of about `mib` MiB with CRLF lines, a dot line on every 8 KiB boundary. */
function largeMessage(mib) {
  const head = bytesOf(`From: ${USER}\r\nTo: friend@example.org\r\nSubject: WASI stream\r\n\r\n`);
  const out = Buffer.alloc(mib * 1024 * 1024);
  head.forEach((b, i) => (out[i] = b));
  let at = head.length;
  let n = 0;
  while (at < out.length - 200) {
    const line = Buffer.from(`${at % 8192 < 80 ? "." : ""}line ${String(n++).padStart(8, "0")} ${"0123456789abcdefghijklmnopqrstuvwxyz".repeat(2)}\r\n`);
    line.copy(out, at);
    at += line.length;
  }
  return out.subarray(0, at);
}

await test("session: a 20 MiB message from a wasi:io input stream, declared size, in bounded guest memory, exact bytes", async () => {
  const big = largeMessage(20);
  const file = path.join(work, "big.eml");
  writeFileSync(file, big);
  const before = await nodeState();
  const session = client.Session.open(options(N.implicit, "implicit"));
  const memBefore = guestMemory();
  const start = performance.now();
  const r = call(() => session.send(env(), { ...NO_OPTIONS, size: BigInt(big.length) }, { tag: "stream", val: fileStream(file) }));
  const ms = Math.round(performance.now() - start);
  const memAfter = guestMemory();
  check(r.ok?.reply.code === 250 && r.ok?.size === BigInt(big.length), "delivered, size as declared", r.err ?? r.ok?.size);
  session.quit();
  const got = (await nodeState()).messages.slice(before.messages.length);
  check(got.length === 1 && got[0].length === big.length && got[0].sha256 === sha256(big), "the server got exactly the 20 MiB", got.map((m) => m.length));
  check(got[0]?.mailArgs?.SIZE === String(big.length), "SIZE= declared", got[0]?.mailArgs);
  check(memBefore > 0 && memAfter - memBefore <= 2 * 1024 * 1024, "guest memory grew by at most 2 MiB", [memBefore, memAfter]);
  check(memAfter < 8 * 1024 * 1024, "guest memory stayed under 8 MiB (the message is 20 MiB)", memAfter);
  console.log(`     (20 MiB in ${ms} ms; guest memory ${memBefore} -> ${memAfter} bytes)`);

  // The measure can see growth: the same message as bytes must be copied into the guest.
  const s2 = client.Session.open(options(N.implicit, "implicit"));
  const r2 = call(() => s2.send(env(), NO_OPTIONS, { tag: "bytes", val: big }));
  check(r2.ok?.reply.code === 250, "the same message as bytes is delivered too", r2.err);
  s2.quit();
  check(guestMemory() >= big.length, "as bytes, guest memory holds at least the message (so the check above can fail)", [memAfter, guestMemory()]);
  unlinkSync(file);
});

await test("session: a stream longer than its declared size is abandoned before its end of data: invalid-input, nothing delivered, session closed", async () => {
  const text = bytesOf(message("too long"));
  const file = path.join(work, "long.eml");
  writeFileSync(file, text);
  const before = await nodeState();
  const session = client.Session.open(options(N.starttls, "starttls"));
  const r = call(() => session.send(env(), { ...NO_OPTIONS, size: BigInt(text.length - 10) }, { tag: "stream", val: fileStream(file) }));
  check(r.err?.tag === "invalid-input", "invalid-input", r);
  const again = call(() => session.noop());
  check(again.err !== undefined, "the session is closed: later calls fail", again);
  const after = await nodeState();
  check(after.messages.length === before.messages.length, "nothing delivered", after.messages.length - before.messages.length);
  unlinkSync(file);
});

// --- AUTH: the mechanism by name, tokens -----------------------------------------------------
await test("one-shot send, auth-mechanism login where PLAIN is offered too: the server sees LOGIN", async () => {
  await expectDelivered(options(P.starttls, "starttls", { authMechanism: "login" }), env(), message("login by name"), {
    listener: "starttls", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "LOGIN",
  });
});

await test("session.login by name on nodemailer (PLAIN, LOGIN, XOAUTH2 offered): LOGIN, then a message", async () => {
  const before = await nodeState();
  const session = client.Session.open(options(N.starttls, "starttls", { credentials: undefined }));
  const used = call(() => session.login(USER, PASS, "login"));
  check(used.ok === "LOGIN", "login() returns LOGIN", used);
  const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf(message("session login")) }));
  check(r.ok?.authMechanism === "LOGIN", "the delivery says LOGIN", r);
  session.quit();
  const after = await nodeState();
  check(JSON.stringify(after.authMethods.slice(before.authMethods.length)) === '["LOGIN"]', "the server saw AUTH LOGIN only", after.authMethods.slice(before.authMethods.length));
  check(after.messages.at(-1)?.authMethod === "LOGIN" && after.messages.at(-1)?.authUser === USER, "the message was sent as the LOGIN user", after.messages.at(-1));
});

await test("XOAUTH2 token accepted (connect options token): delivered as the token's user", async () => {
  const before = await nodeState();
  const r = send(options(N.starttls, "starttls", { credentials: undefined, token: { user: USER, token: TOKEN } }), env(), message("xoauth2"));
  check(r.ok?.authMechanism === "XOAUTH2" && r.ok?.reply.code === 250, "delivered after XOAUTH2", r);
  const after = await nodeState();
  const m = after.messages.at(-1);
  check(after.messages.length === before.messages.length + 1 && m.authMethod === "XOAUTH2" && m.authUser === USER, "the server saw XOAUTH2 for the user", m);
});

await test("XOAUTH2 token rejected: auth error rejected with the server's 535, nothing delivered, the token in no message", async () => {
  const before = await nodeState();
  const wrong = "ya29.a-token-the-server-refuses";
  const r = send(options(N.starttls, "starttls", { credentials: undefined, token: { user: USER, token: wrong }, authMechanism: "xoauth2" }), env(), message("bad token"));
  check(r.err?.tag === "auth" && r.err.val.kind === "rejected", "auth error rejected", r.err);
  check(r.err?.val.reply?.code === 535, "the 535", r.err?.val.reply);
  check(!json(r.err).includes(wrong), "the token appears nowhere in the error", r.err);
  const after = await nodeState();
  check(after.messages.length === before.messages.length, "nothing delivered", after.messages.length - before.messages.length);
});

await test("credentials and a token together, or a token mechanism with a password: invalid-input, nothing connected, no secret in the message", async () => {
  const before = await nodeState();
  const both = send(options(N.starttls, "starttls", { token: { user: USER, token: TOKEN } }), env(), message("x"));
  check(both.err?.tag === "invalid-input", "both: invalid-input", both.err);
  const mixed = send(options(N.starttls, "starttls", { authMechanism: "xoauth2" }), env(), message("x"));
  check(mixed.err?.tag === "invalid-input", "xoauth2 with a password: invalid-input", mixed.err);
  const session = call(() => client.Session.open(options(N.starttls, "starttls", { credentials: undefined, token: { user: USER, token: TOKEN }, authMechanism: "plain" })));
  check(session.err?.tag === "invalid-input", "a token with plain: invalid-input (session.open)", session);
  for (const e of [both.err, mixed.err, session.err]) check(!json(e).includes(PASS) && !json(e).includes(TOKEN), "no secret in the error", e);
  const after = await nodeState();
  check(after.connections === before.connections, "no connection was opened", after.connections - before.connections);
});

await test("client certificate: a key that is not PEM is invalid-input before connecting, and the key is not quoted", async () => {
  const key = "-----BEGIN PRIVATE KEY-----\nnot-really-a-key-SECRETBYTES\n-----END PRIVATE KEY-----\n";
  const r = send(options(N.implicit, "implicit", { clientCertificate: { certPem: read("server.pem"), keyPem: key } }), env(), message("x"));
  check(r.err?.tag === "invalid-input" && /client-certificate/.test(r.err.val), "invalid-input naming the client certificate", r.err);
  check(!json(r.err).includes("SECRETBYTES"), "the key is not quoted", r.err);
});

await test("client certificate offered to a server that does not ask for one: delivered", async () => {
  const r = send(options(N.implicit, "implicit", { clientCertificate: { certPem: read("server.pem"), keyPem: read("server.key") } }), env(), message("client cert"));
  check(r.ok?.reply.code === 250, "delivered", r.err);
});

// --- tls-server-name: the certificate checked for a name other than the host dialled ---------
// The test certificate names only localhost (subjectAltName DNS:localhost, no IP address): dialled
// as 127.0.0.1 the name check fails, unless tls-server-name says localhost. Every other test
// leaves the field out, which jco passes as none.
const NOT_LOCALHOST = "mail.example.org";
const tlsUp = (events, from) => events.slice(from).filter((e) => e.event === "tls-up");

await test("tls-server-name, implicit TLS to 127.0.0.1 (the certificate names only localhost): refused without it, delivered with tlsServerName localhost", async () => {
  const r = await expectError(options(P.implicit, "implicit", { host: "127.0.0.1" }), env(), message("x"), "io", {
    during: "connect", kind: "invalid-data",
  });
  check(/not valid for name/.test(r.err?.val?.message ?? ""), "without it: the name does not match", r.err);
  await expectDelivered(options(P.implicit, "implicit", { host: "127.0.0.1", tlsServerName: "localhost" }), env(), message("tls-server-name implicit"), {
    listener: "implicit", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "LOGIN",
  });
});

await test("tls-server-name, STARTTLS to 127.0.0.1: one-shot send and session refused without it (during tls-handshake), delivered with it, SNI localhost", async () => {
  await expectError(options(P.starttls, "starttls", { host: "127.0.0.1" }), env(), message("x"), "io", {
    during: "tls-handshake", kind: "invalid-data",
  });
  await expectDelivered(options(P.starttls, "starttls", { host: "127.0.0.1", tlsServerName: "localhost" }), env(), message("tls-server-name starttls"), {
    listener: "starttls", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "PLAIN",
  });
  // The session resource, on nodemailer's server (which records the SNI it was asked for).
  const before = await nodeState();
  const refused = call(() => client.Session.open(options(N.starttls, "starttls", { host: "127.0.0.1" })));
  check(refused.err?.tag === "io" && refused.err.val.during === "tls-handshake" && refused.err.val.kind === "invalid-data", "session.open without it: io error invalid-data during tls-handshake", refused);
  check(/not valid for name/.test(refused.err?.val?.message ?? ""), "the message says the name does not match", refused.err);
  const session = client.Session.open(options(N.starttls, "starttls", { host: "127.0.0.1", tlsServerName: "localhost" }));
  const sent = bytesOf(message("tls-server-name session"));
  const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: sent }));
  check(r.ok?.reply.code === 250 && r.ok.tlsVersion === "TLSv1_3" && r.ok.authMechanism === "PLAIN", "session with it: delivered over TLS 1.3 after AUTH PLAIN", r.err ?? r.ok);
  session.quit();
  const after = await nodeState();
  check(after.connections - before.connections === 2, "two connections (the refused one, the session)", after.connections - before.connections);
  check(json(after.serverNames.slice(before.serverNames.length)) === json(["localhost"]), "one TLS session established, and its SNI was localhost", after.serverNames.slice(before.serverNames.length));
  const got = after.messages.slice(before.messages.length);
  check(got.length === 1 && got[0].sha256 === sha256(sent), "the message delivered byte-exact", got.map((m) => m.length));
});

await test("tls-server-name naming another host (localhost dialled): io error invalid-data, during tls-handshake (STARTTLS) or connect (implicit), no TLS established, nothing delivered", async () => {
  const { events: before } = await serverState();
  const names = (r) => /not valid for name/.test(r.err?.val?.message ?? "") && r.err.val.message.includes(NOT_LOCALHOST);
  const s = await expectError(options(P.starttls, "starttls", { tlsServerName: NOT_LOCALHOST }), env(), message("x"), "io", {
    during: "tls-handshake", kind: "invalid-data",
  });
  check(names(s), "STARTTLS: the message names the name checked", s.err);
  const i = await expectError(options(P.implicit, "implicit", { tlsServerName: NOT_LOCALHOST }), env(), message("x"), "io", {
    during: "connect", kind: "invalid-data",
  });
  check(names(i), "implicit: the message names the name checked", i.err);
  const o = call(() => client.Session.open(options(P.implicit, "implicit", { tlsServerName: NOT_LOCALHOST })));
  check(o.err?.tag === "io" && o.err.val.during === "connect" && o.err.val.kind === "invalid-data" && names(o), "session.open: the same typed error", o);
  const { events } = await serverState();
  check(tlsUp(events, before.length).length === 0, "the servers never saw TLS established", events.slice(before.length));
});

await test("tls-server-name that cannot be a server name: invalid-input before anything is connected (the caller's mistake, not a retryable I/O error); unused with tls none", async () => {
  const before = (await serverState()).connections;
  const r = await expectError(options(P.starttls, "starttls", { tlsServerName: "not a host name!" }), env(), message("x"), "invalid-input", {});
  check(/not a valid TLS server name/.test(r.err?.val ?? ""), "the message says why", r.err);
  const o = call(() => client.Session.open(options(P.implicit, "implicit", { tlsServerName: "" })));
  check(o.err?.tag === "invalid-input" && /not a valid TLS server name/.test(o.err.val), "an empty name (session.open): the same", o);
  const after = (await serverState()).connections;
  check(after.starttls === before.starttls && after.implicit === before.implicit, "no connection was opened", [before, after]);
  await expectDelivered(options(P.plain, "none", { allowPlaintextAuth: true, tlsServerName: NOT_LOCALHOST }), env(), message("tls-server-name plain"), {
    listener: "plain", tls: false, serverTls: null, clientTls: undefined, mech: "PLAIN",
  });
});

// --- proxy and local-address: a real pproxy (another process), nodemailer's view of the peer ---
// pproxy listens on 127.0.0.1 with four listeners (SOCKS5, HTTP CONNECT, each with and without
// credentials; --auth 0: credentials asked on every connection) and logs each tunnel as
// "<kind> <client ip:port> -> <host:port>". The SMTP host stays localhost (the name the
// certificate has): a certificate checked for the proxy's address (127.0.0.1) would fail.
const PROXY_USER = "proxy-user";
const PROXY_PASS = "proxy-pass-SECRET-7731";

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** pproxy with the four listeners, once each is up: `{ ports, url(kind, creds?), log() }`. */
async function startPproxy() {
  const ports = { socks: await freePort(), http: await freePort(), socksAuth: await freePort(), httpAuth: await freePort() };
  const scheme = (kind) => (kind.startsWith("socks") ? "socks5" : "http");
  const args = ["-u", "-m", "pproxy", "-v", "--auth", "0"];
  for (const [kind, port] of Object.entries(ports)) {
    args.push("-l", `${scheme(kind)}://127.0.0.1:${port}${kind.endsWith("Auth") ? `#${PROXY_USER}:${PROXY_PASS}` : ""}`);
  }
  const child = spawn(process.env.PPROXY_PYTHON || "python3", args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let exited = null;
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  child.on("exit", (code) => (exited = code));
  child.on("error", (e) => (exited = e.message));
  process.on("exit", () => child.kill());
  const serving = () => Object.values(ports).every((port) => log.includes(`:${port} by `));
  for (let i = 0; i < 200 && !serving() && exited === null; i++) await new Promise((r) => setTimeout(r, 50));
  if (!serving()) throw new Error(`pproxy did not start (python3 -m pproxy; pip install pproxy): exit ${exited}; log: ${log}`);
  return {
    ports,
    /** The listener's URL, with its credentials (or `creds` as "user:password", "" for none). */
    url: (kind, creds) => {
      const userinfo = creds ?? (kind.endsWith("Auth") ? `${PROXY_USER}:${PROXY_PASS}` : "");
      return `${scheme(kind)}://${userinfo ? `${userinfo}@` : ""}127.0.0.1:${ports[kind]}`;
    },
    log: () => log,
    stop: () => child.kill(),
  };
}

/** The length of pproxy's log once nothing has come for 150 ms (what earlier tests made it log
 *  has arrived). */
async function quietLog(pproxy) {
  let length = -1;
  while (length !== pproxy.log().length) {
    length = pproxy.log().length;
    await new Promise((r) => setTimeout(r, 150));
  }
  return length;
}

/** The tunnels pproxy logged after `from` (its log's length then) that match `re`, waiting up to
 *  2 s for `count` of them: its output is read by this thread, blocked during a component call. */
async function tunnelsSince(pproxy, from, re, count = 1) {
  const lines = () => pproxy.log().slice(from).split("\n").filter((l) => / -> /.test(l) && re.test(l));
  for (let i = 0; i < 40 && lines().length < count; i++) await new Promise((r) => setTimeout(r, 50));
  return lines();
}

const pproxy = await startPproxy();

await test("proxy: SOCKS5 and HTTP CONNECT, with and without credentials, STARTTLS and implicit TLS: delivered byte-exact through one pproxy tunnel each, the certificate checked for the SMTP host localhost (not the proxy 127.0.0.1)", async () => {
  for (const kind of ["socks", "http", "socksAuth", "httpAuth"]) {
    for (const [port, tls, mech] of [[P.starttls, "starttls", "PLAIN"], [P.implicit, "implicit", "LOGIN"]]) {
      const from = pproxy.log().length;
      await expectDelivered(options(port, tls, { proxy: pproxy.url(kind) }), env(), message(`proxy ${kind} ${tls}`), {
        listener: tls, tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech,
      });
      const lines = await tunnelsSince(pproxy, from, /./);
      const want = new RegExp(`^${kind.startsWith("socks") ? "socks5" : "http"} 127\\.0\\.0\\.1:\\d+ -> localhost:${port}$`);
      check(lines.length === 1 && want.test(lines[0]), `${kind} ${tls}: pproxy logged one tunnel to localhost:${port}`, lines);
    }
  }
  check(!pproxy.log().includes("Unauthorized"), "pproxy refused nothing", pproxy.log());
});

await test("proxy: the session resource through SOCKS5 (STARTTLS): two messages on one tunnel, one connection seen by the server, a clean QUIT; and a plaintext session through HTTP CONNECT", async () => {
  const before = await nodeState();
  const from = pproxy.log().length;
  const opened = call(() => client.Session.open(options(N.starttls, "starttls", { proxy: pproxy.url("socksAuth") })));
  check(opened.ok !== undefined, "session.open through the proxy", opened.err);
  if (!opened.ok) return;
  const session = opened.ok;
  const sent = [0, 1].map((i) => bytesOf(message(`proxy session ${i}`)));
  for (const body of sent) {
    const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: body }));
    check(r.ok?.reply.code === 250 && r.ok.tlsVersion === "TLSv1_3", "delivered over TLS 1.3", r.err ?? r.ok);
  }
  const quit = call(() => session.quit());
  check(quit.err === undefined, "QUIT", quit.err);
  const after = await nodeState();
  check(after.connections - before.connections === 1, "one connection", after.connections - before.connections);
  check(json(after.serverNames.slice(before.serverNames.length)) === json(["localhost"]), "SNI localhost (the SMTP host, not the proxy)", after.serverNames.slice(before.serverNames.length));
  const got = after.messages.slice(before.messages.length);
  check(got.length === 2 && got.every((m, i) => m.sha256 === sha256(sent[i])), "both byte-exact", got.map((m) => m.length));
  const lines = await tunnelsSince(pproxy, from, /./);
  check(lines.length === 1 && lines[0].endsWith(`-> localhost:${N.starttls}`), "one tunnel", lines);
  // Plaintext too (tls none, through HTTP CONNECT), to the feature server.
  const plain = call(() => client.Session.open(options(F.smtp, "none", { credentials: undefined, proxy: pproxy.url("http") })));
  check(call(() => plain.ok?.noop()).ok?.code === 250, "plaintext session through HTTP CONNECT: NOOP", plain.err);
  const plainQuit = call(() => plain.ok?.quit());
  check(plain.ok && plainQuit.err === undefined, "plaintext: QUIT", plainQuit.err);
});

await test("proxy: the certificate is checked for the SMTP host, never the proxy's name (SMTP host 127.0.0.1 through a proxy named localhost: refused; with tls-server-name localhost: delivered)", async () => {
  const viaLocalhost = `socks5://localhost:${pproxy.ports.socks}`;
  const r = await expectError(options(P.implicit, "implicit", { host: "127.0.0.1", proxy: viaLocalhost }), env(), message("x"), "io", {
    during: "connect", kind: "invalid-data",
  });
  check(/not valid for name/.test(r.err?.val?.message ?? ""), "the name the certificate lacks is the SMTP host's", r.err);
  await expectDelivered(options(P.implicit, "implicit", { host: "127.0.0.1", tlsServerName: "localhost", proxy: viaLocalhost }), env(), message("proxy tls-server-name"), {
    listener: "implicit", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "LOGIN",
  });
});

// pproxy answers refused HTTP credentials with 407 (permission-denied), but closes a SOCKS5
// connection without the RFC 1929 failure reply (so: the SOCKS5 proxy closed the connection
// before the tunnel opened, unexpected-eof); the in-guest tests check a SOCKS5 refusal proper.
await test("proxy: wrong or missing credentials: io error during connect (HTTP permission-denied; SOCKS5, which pproxy just closes, unexpected-eof), no password in the error, nothing reaches the SMTP server", async () => {
  const WRONG = "wrong-SECRET-pw-4242";
  const before = (await serverState()).connections;
  const errors = [];
  for (const [kind, ioKind, says] of [["socksAuth", "unexpected-eof", /the SOCKS5 proxy closed/], ["httpAuth", "permission-denied", /proxy/i]]) {
    for (const creds of [`${PROXY_USER}:${WRONG}`, ""]) {
      const r = await expectError(options(P.starttls, "starttls", { proxy: pproxy.url(kind, creds) }), env(), message("x"), "io", {
        during: "connect", kind: ioKind,
      });
      check(says.test(r.err?.val?.message ?? ""), `${kind} ${creds ? "wrong" : "none"}: the message names the proxy`, r.err);
      errors.push(r.err);
    }
  }
  const o = call(() => client.Session.open(options(P.implicit, "implicit", { proxy: pproxy.url("httpAuth", `${PROXY_USER}:${WRONG}`) })));
  check(o.err?.tag === "io" && o.err.val.during === "connect" && o.err.val.kind === "permission-denied", "session.open: the same typed error", o);
  errors.push(o.err);
  const basic = Buffer.from(`${PROXY_USER}:${WRONG}`).toString("base64");
  for (const e of errors) check(!json(e).includes(WRONG) && !json(e).includes(basic) && !json(e).includes(PROXY_PASS), "no password in the error", e);
  const after = (await serverState()).connections;
  check(after.starttls === before.starttls && after.implicit === before.implicit, "the SMTP server saw no connection", [before, after]);
});

await test("proxy: one that cannot be reached is io error connection-refused during connect, naming it (cannot reach the proxy 127.0.0.1:port)", async () => {
  const r = await expectError(options(P.starttls, "starttls", { proxy: `socks5://127.0.0.1:${P.closed}` }), env(), message("x"), "io", {
    during: "connect", kind: "connection-refused",
  });
  check((r.err?.val?.message ?? "").includes(`cannot reach the proxy 127.0.0.1:${P.closed}: `), "the message names the proxy", r.err);
});

await test("proxy and local-address that cannot be parsed: invalid-input before any connection (no password in the error)", async () => {
  const before = (await serverState()).connections;
  const beforeNode = await nodeState();
  const from = await quietLog(pproxy);
  const SECRET = "url-SECRET-pw-0042";
  const badProxies = [
    `ftp://u:${SECRET}@127.0.0.1:${pproxy.ports.socks}`,
    `socks5://u:${SECRET}@127.0.0.1`,
    `http://u:${SECRET}@127.0.0.1:99999`,
    `socks5://u%zz:${SECRET}@127.0.0.1:${pproxy.ports.socks}`,
    "",
  ];
  for (const proxy of badProxies) {
    const r = await expectError(options(P.starttls, "starttls", { proxy }), env(), message("x"), "invalid-input", {});
    check(/^proxy: /.test(r.err?.val ?? "") && !json(r.err).includes(SECRET), `${json(proxy.replace(SECRET, "***"))}: invalid-input naming the proxy, without the password`, r.err);
  }
  const o = call(() => client.Session.open(options(N.starttls, "starttls", { proxy: badProxies[0] })));
  check(o.err?.tag === "invalid-input" && !json(o.err).includes(SECRET), "session.open: invalid-input, without the password", o);
  for (const localAddress of ["not-an-ip", "127.0.0.256", "[::1]", "", "localhost"]) {
    const r = await expectError(options(P.starttls, "starttls", { localAddress }), env(), message("x"), "invalid-input", {});
    check(/^local-address: /.test(r.err?.val ?? ""), `${json(localAddress)}: invalid-input naming local-address`, r.err);
  }
  const l = call(() => client.Session.open(options(N.starttls, "starttls", { localAddress: "300.1.2.3" })));
  check(l.err?.tag === "invalid-input", "session.open with a bad local-address: invalid-input", l);
  const after = (await serverState()).connections;
  check(json(after) === json(before), "the SMTP servers saw no connection", [before, after]);
  check((await nodeState()).connections === beforeNode.connections, "nor did nodemailer's", null);
  check((await quietLog(pproxy)) === from, "nor the proxy (it logged nothing)", pproxy.log().slice(from));
});

await test("local-address 127.0.0.2: the server sees the connection come from 127.0.0.2 (one-shot and session; 127.0.0.1 without it); through a proxy, pproxy sees it", async () => {
  const before = await nodeState();
  const one = send(options(N.starttls, "starttls", { localAddress: "127.0.0.2" }), env(), message("local address"));
  check(one.ok?.reply.code === 250, "one-shot: delivered", one.err);
  const plain = send(options(N.starttls, "starttls"), env(), message("no local address"));
  check(plain.ok?.reply.code === 250, "without it: delivered", plain.err);
  const session = client.Session.open(options(N.implicit, "implicit", { localAddress: "127.0.0.2" }));
  check(call(() => session.noop()).ok?.code === 250, "session: NOOP", null);
  session.quit();
  const after = await nodeState();
  check(json(after.peers.slice(before.peers.length)) === json(["127.0.0.2", "127.0.0.1", "127.0.0.2"]), "the peers nodemailer saw", after.peers.slice(before.peers.length));
  const from = pproxy.log().length;
  await expectDelivered(options(P.starttls, "starttls", { proxy: pproxy.url("http"), localAddress: "127.0.0.2" }), env(), message("local address via proxy"), {
    listener: "starttls", tls: true, serverTls: "TLSv1.3", clientTls: "TLSv1_3", mech: "PLAIN",
  });
  const lines = await tunnelsSince(pproxy, from, /./);
  check(lines.length === 1 && new RegExp(`^http 127\\.0\\.0\\.2:\\d+ -> localhost:${P.starttls}$`).test(lines[0]), "pproxy: the tunnel's client is 127.0.0.2", lines);
});

await test("local-address of the other family (::1 to 127.0.0.1): io error addr-not-available during connect, naming both", async () => {
  const r = await expectError(options(P.plain, "none", { host: "127.0.0.1", credentials: undefined, localAddress: "::1" }), env(), message("x"), "io", {
    during: "connect", kind: "addr-not-available",
  });
  const text = r.err?.val?.message ?? "";
  check(text.includes("::1") && text.includes(`127.0.0.1:${P.plain}`), "the message names both addresses", r.err);
});

pproxy.stop();

// --- the extension and protocol switches (feature-server.mjs sees how commands arrive) -------
const featureState = async () => (await serverState()).features;
/** What the feature server saw on the connections opened since `before`. */
const since = (before, after) => ({
  connections: after.connections.slice(before.connections.length),
  messages: after.messages.slice(before.messages.length),
});
const plainOptions = (port, extra = {}) => options(port, "none", { credentials: undefined, ...extra });
const three = env("one@example.org", "two@example.org", "three@example.org");
const flightOf = (reads) => reads.some((r) => r.join(" ").includes("MAIL RCPT RCPT RCPT"));

await test("pipelining: when-offered (and the default) sends MAIL and three RCPTs in one flight; never: the server reads one command at a time", async () => {
  for (const use of [undefined, "when-offered", "never"]) {
    const before = await featureState();
    const session = client.Session.open(plainOptions(F.smtp, { pipelining: use, transcriptLines: 100 }));
    const body = bytesOf(message(`pipelining ${use}`));
    const r = call(() => session.send(three, NO_OPTIONS, { tag: "bytes", val: body }));
    check(r.ok?.reply.code === 250 && r.ok.recipients.length === 3, `${use}: delivered to three`, r.err ?? r.ok);
    session.quit();
    const { connections, messages } = since(before, await featureState());
    const reads = connections[0]?.reads ?? [];
    check(connections.length === 1 && messages.length === 1, `${use}: one connection, one message`, [connections.length, messages.length]);
    check(messages[0] && Buffer.from(messages[0].data, "base64").equals(Buffer.from(body)), `${use}: byte-exact`, messages[0]?.via);
    if (use === "never") {
      check(reads.length > 0 && reads.every((verbs) => verbs.length === 1), "never: every read holds one command", reads);
      const lines = session.transcript();
      const mail = lines.findIndex((l) => l.startsWith("C: MAIL FROM"));
      check(mail >= 0 && lines[mail + 1]?.startsWith("S: 250"), "never: the transcript shows MAIL's reply before the first RCPT", lines.slice(mail, mail + 3));
    } else {
      check(flightOf(reads), `${use}: MAIL and the three RCPTs arrived in one read`, reads);
    }
  }
});

await test("chunking: when-offered (and the default) sends the body with BDAT as is; never: DATA, dot-stuffed; both byte-exact", async () => {
  for (const [use, via] of [[undefined, "BDAT"], ["when-offered", "BDAT"], ["never", "DATA"]]) {
    const before = await featureState();
    const session = client.Session.open(plainOptions(F.smtp, { chunking: use, transcriptLines: 100 }));
    const body = bytesOf(message(`chunking ${use}`));
    const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: body }));
    check(r.ok?.reply.code === 250, `${use}: delivered`, r.err);
    session.quit();
    const { messages } = since(before, await featureState());
    check(messages.length === 1 && messages[0].via === via, `${use}: the body came with ${via}`, messages.map((m) => m.via));
    check(messages[0] && Buffer.from(messages[0].data, "base64").equals(Buffer.from(body)), `${use}: byte-exact`, messages[0]?.data.length);
    const lines = session.transcript();
    check(lines.some((l) => l.startsWith(via === "BDAT" ? "C: BDAT" : "C: DATA")) && !lines.some((l) => l.startsWith(via === "BDAT" ? "C: DATA" : "C: BDAT")), `${use}: the transcript shows ${via} only`, lines.filter((l) => /^C: (BDAT|DATA)/.test(l)));
  }
});

await test("data-pipelining always: DATA leaves with the envelope; one of three refused closes the session before a body byte, nothing delivered; when-safe: DATA never sent, the session goes on", async () => {
  const refusing = env("one@example.org", "reject-me@example.org", "two@example.org");
  // always (over DATA: chunking never)
  let before = await featureState();
  const always = client.Session.open(plainOptions(F.smtp, { dataPipelining: "always", chunking: "never" }));
  const r = call(() => always.send(refusing, NO_OPTIONS, { tag: "bytes", val: bytesOf(message("data pipelined")) }));
  check(r.err?.tag === "protocol" && r.err.val.kind === "recipients-refused" && r.err.val.refused[0]?.recipient === "reject-me@example.org", "recipients-refused, reject-me", r.err ?? r.ok);
  check(call(() => always.noop()).err !== undefined, "the session is closed", null);
  call(() => always.quit());
  let seen = since(before, await featureState());
  check(seen.connections[0]?.reads.some((v) => v.join(" ").includes("MAIL RCPT RCPT RCPT DATA")), "MAIL, the RCPTs and DATA arrived in one read", seen.connections[0]?.reads);
  check(seen.messages.length === 0, "nothing delivered", seen.messages.length);
  // when-safe (the default)
  before = await featureState();
  const safe = client.Session.open(plainOptions(F.smtp, { chunking: "never" }));
  const r2 = call(() => safe.send(refusing, NO_OPTIONS, { tag: "bytes", val: bytesOf(message("data safe")) }));
  check(r2.err?.tag === "protocol" && r2.err.val.kind === "recipients-refused", "when-safe: recipients-refused", r2.err ?? r2.ok);
  const next = call(() => safe.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf(message("after refusal")) }));
  check(next.ok?.reply.code === 250, "when-safe: the next message on the same session is delivered", next.err);
  safe.quit();
  seen = since(before, await featureState());
  const cmds = seen.connections[0]?.commands ?? [];
  check(cmds.filter((c) => c === "DATA").length === 1 && cmds.includes("RSET"), "when-safe: DATA only for the second message, RSET after the refusal", cmds);
  check(seen.messages.length === 1 && JSON.stringify(seen.messages[0].to) === '["friend@example.org"]', "when-safe: only the second message delivered", seen.messages.map((m) => m.to));
});

await test("protocol lmtp: LHLO, one reply per recipient after the message (a refusal at RCPT and one after the data), one-shot and session", async () => {
  const before = await featureState();
  const to = ["ok1@example.org", "reject1@example.org", "lmtpfail1@example.org", "ok2@example.org"];
  const session = client.Session.open(plainOptions(F.lmtp, { protocol: "lmtp", transcriptLines: 100 }));
  const body = bytesOf(message("lmtp"));
  const r = call(() => session.send({ sender: USER, recipients: to }, { ...NO_OPTIONS, acceptPartial: true }, { tag: "bytes", val: body }));
  const got = (r.ok?.recipients ?? []).map((x) => [x.recipient, x.reply.code, x.accepted]);
  check(
    json(got) === json([["ok1@example.org", 250, true], ["reject1@example.org", 550, false], ["lmtpfail1@example.org", 550, false], ["ok2@example.org", 250, true]]),
    "each recipient's own result",
    got,
  );
  check(/mailbox unavailable/.test(r.ok?.recipients?.[2]?.reply.text ?? ""), "lmtpfail1's reply is the one after the message", r.ok?.recipients?.[2]);
  check(session.transcript().some((l) => l.startsWith("C: LHLO component.example")), "LHLO in the transcript", session.transcript().slice(0, 3));
  session.quit();
  const one = send(plainOptions(F.lmtp, { protocol: "lmtp" }), env(), message("lmtp one-shot"));
  check(one.ok?.reply.code === 250 && one.ok.recipients[0]?.reply.code === 250, "one-shot send over LMTP", one.err ?? one.ok);
  const smtp = send(plainOptions(F.lmtp), env(), message("smtp to lmtp"));
  check(smtp.err !== undefined, "protocol smtp (the default) to the LMTP server fails (EHLO and HELO refused)", smtp.ok);
  const seen = since(before, await featureState());
  check(seen.connections.length === 3 && seen.connections.slice(0, 2).every((c) => c.commands[0]?.startsWith("LHLO ")), "LHLO first on both LMTP connections", seen.connections.map((c) => c.commands[0]));
  check(seen.connections[2]?.commands[0]?.startsWith("EHLO "), "EHLO without the option", seen.connections[2]?.commands);
  check(seen.messages.length === 2 && json(seen.messages[0].to) === json(["ok1@example.org", "lmtpfail1@example.org", "ok2@example.org"]), "the server stored the message once, for the three accepted at RCPT", seen.messages.map((m) => m.to));
  check(seen.messages[0] && Buffer.from(seen.messages[0].data, "base64").equals(Buffer.from(body)), "byte-exact", null);
});

await test("transcript: commands and replies, redacted (AUTH mechanism only, the body's size), only the last transcript-lines kept, none unless asked", async () => {
  const session = client.Session.open(options(P.starttls, "starttls", { transcriptLines: 200 }));
  const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf(message("transcript")) }));
  check(r.ok?.reply.code === 250, "delivered", r.err);
  session.quit();
  const lines = session.transcript();
  for (const want of ["C: EHLO component.example", "C: STARTTLS", "C: AUTH PLAIN", "C: MAIL FROM:<wasi-user@example.com>", "C: QUIT"]) {
    check(lines.some((l) => l.startsWith(want)), `a line starting ${want}`, lines);
  }
  check(lines.some((l) => /^C: \[message body: \d+ bytes/.test(l)), "the body as its size", lines);
  check(lines.some((l) => l.startsWith("S: 220")) && lines.every((l) => /^[CS]: /.test(l)), "replies too, every line C: or S:", lines.slice(0, 4));
  const plainB64 = Buffer.from(`\0${USER}\0${PASS}`).toString("base64");
  check(!json(lines).includes(PASS) && !json(lines).includes(plainB64) && !json(lines).includes("Hello from a WASI"), "no password, no SASL response, no body text", null);
  const short = client.Session.open(options(P.starttls, "starttls", { transcriptLines: 3 }));
  short.noop();
  const last = short.transcript();
  check(last.length === 3 && last[1] === "C: NOOP" && last[2].startsWith("S: 250"), "transcript-lines 3 keeps the last three", last);
  short.quit();
  const none = client.Session.open(options(P.starttls, "starttls"));
  check(none.transcript().length === 0, "none kept without transcript-lines", none.transcript());
  none.quit();
});

// --- DKIM: signed in the guest, verified by dkimpy (an implementation nobody here wrote) ------
// smtp-dkim/tests/dkim_verify.py derives the public key from the private one and hands it to
// dkimpy through its DNS hook; it prints one "<file> True|False" line per message.
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
const DKIM_KEY_FILE = path.join(ROOT, "smtp-dkim", "tests", "keys", "rsa2048-pkcs8.pem");
const DKIM_ED_KEY_FILE = path.join(ROOT, "smtp-dkim", "tests", "keys", "ed25519-pkcs8.pem");
const DKIM_KEY = readFileSync(DKIM_KEY_FILE, "utf8");
const DKIM_ED_KEY = readFileSync(DKIM_ED_KEY_FILE, "utf8");
const dkimOptions = (extra = {}) => ({ keyPem: DKIM_KEY, domain: "example.com", selector: "sel2026", ...extra });
// The key's base64 lines: none of them may appear in an error.
const keyLines = (pem) => pem.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
let dkimFiles = 0;

/** dkimpy's verdict on each message (Buffers), with the public key of `keyFile`. */
function dkimVerify(keyFile, messages, selector = "sel2026", domain = "example.com") {
  const files = messages.map((m) => {
    const file = path.join(work, `dkim-${dkimFiles++}.eml`);
    writeFileSync(file, m);
    return file;
  });
  const out = execFileSync(process.env.DKIM_PYTHON || "python3", [path.join(ROOT, "smtp-dkim", "tests", "dkim_verify.py"), keyFile, selector, domain, ...files], { encoding: "utf8" });
  const verdicts = files.map((f) => {
    const line = out.split("\n").find((l) => l.startsWith(`${f} `));
    return line === undefined ? "missing" : line.slice(f.length + 1).trim();
  });
  for (const f of files) unlinkSync(f);
  return verdicts;
}
/** A copy with one byte of the body (or the Subject) changed: dkimpy must refuse it. */
function tampered(data, what) {
  const text = data.toString("latin1");
  const changed = what === "body" ? text.replace("Hello from", "Jello from") : text.replace("Subject: WASI", "Subject: WASX");
  return Buffer.from(changed, "latin1");
}
/** The DKIM-Signature field (unfolded) in front of a delivered copy. */
const signatureOf = (data) => {
  const text = data.toString("latin1").replace(/\r\n[ \t]+/g, " ");
  return text.startsWith("DKIM-Signature: ") ? text.slice(0, text.indexOf("\r\n")) : "";
};
const received = async (count) => (await serverState()).messages.slice(-count).map((m) => Buffer.from(m.data, "base64"));

await test("dkim, one-shot send: rsa-sha256 relaxed/relaxed signed in the guest; the delivered copy verifies with dkimpy; a tampered body or Subject does not", async () => {
  const body = message("dkim one-shot");
  const r = send(options(P.starttls, "starttls", { dkim: dkimOptions() }), env(), body);
  check(r.ok?.reply.code === 250, "delivered", r.err);
  if (!r.ok) return;
  const [got] = await received(1);
  const text = signatureOf(got);
  check(text.startsWith("DKIM-Signature: v=1; a=rsa-sha256;") && /d=example\.com;/.test(text) && /s=sel2026;/.test(text) && /c=relaxed\/relaxed;/.test(text), "a DKIM-Signature field in front (rsa-sha256, d=, s=, c=)", text.slice(0, 200));
  check(got.subarray(got.indexOf("From: ")).equals(Buffer.from(body, "utf8")), "the message after the signature is the one given, byte for byte", got.length);
  const t = Number(/\bt=(\d+);/.exec(text)?.[1]);
  check(Math.abs(t - Date.now() / 1000) < 120, "t= is the WASI wall clock's time", t);
  check(r.ok.size === BigInt(got.length), "the size reported is the signed message's", [r.ok.size, got.length]);
  const verdicts = dkimVerify(DKIM_KEY_FILE, [got, tampered(got, "body"), tampered(got, "subject")]);
  check(json(verdicts) === json(["True", "False", "False"]), "dkimpy: the copy verifies, the tampered body and Subject do not", verdicts);
});

await test("dkim, session: simple/simple with a header list and x=, two sends and a batch of two on one connection, ed25519 on another; each verifies; a stream is refused, the session goes on", async () => {
  const before = (await serverState()).connections.starttls;
  const session = client.Session.open(options(P.starttls, "starttls", {
    dkim: dkimOptions({ headers: ["From", "To", "Subject"], headerCanonicalization: "simple", bodyCanonicalization: "simple", expireAfterSecs: 3600n }),
  }));
  const sent = [];
  for (let i = 0; i < 2; i++) {
    const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf(message(`dkim session ${i}`)) }));
    check(r.ok?.reply.code === 250, `message ${i} delivered`, r.err);
    sent.push(message(`dkim session ${i}`));
  }
  // A streamed body cannot be read twice: refused before anything of it is sent.
  const file = path.join(work, "dkim-stream.eml");
  writeFileSync(file, message("dkim stream"));
  const beforeStream = (await serverState()).messages.length;
  const streamed = call(() => session.send(env(), NO_OPTIONS, { tag: "stream", val: fileStream(file) }));
  unlinkSync(file);
  check(streamed.err?.tag === "invalid-input" && /stream/.test(streamed.err.val) && /dkim/.test(streamed.err.val), "a streamed body on a signing session: invalid-input naming dkim and the stream", streamed);
  check((await serverState()).messages.length === beforeStream, "nothing delivered for the stream", null);
  const batch = session.sendBatch([0, 1].map((i) => ({ envelope: env(), options: NO_OPTIONS, message: bytesOf(message(`dkim batch ${i}`)) })));
  check(batch.length === 2 && batch.every((b) => b.tag === "ok" && b.val.reply.code === 250), "the batch after it delivered (the session went on)", batch);
  sent.push(message("dkim batch 0"), message("dkim batch 1"));
  session.quit();
  check((await serverState()).connections.starttls - before === 1, "one connection", null);
  const got = await received(4);
  check(got.every((g) => /^DKIM-Signature: v=1; a=rsa-sha256; c=simple\/simple;/.test(signatureOf(g)) && /h=from:to:subject;/i.test(signatureOf(g).replace(/\s+/g, "")) && /x=\d+;/.test(signatureOf(g))), "simple/simple, h=from:to:subject, x= in every signature", got.map(signatureOf));
  check(got.every((g, i) => g.subarray(g.indexOf("From: ")).equals(Buffer.from(sent[i], "utf8"))), "each message after its signature as given, in order", null);
  const verdicts = dkimVerify(DKIM_KEY_FILE, [...got, tampered(got[0], "body"), tampered(got[3], "subject")]);
  check(json(verdicts) === json(["True", "True", "True", "True", "False", "False"]), "dkimpy: four verify, the tampered copies do not", verdicts);
  // Ed25519 (RFC 8463) on the one-shot send.
  const ed = send(options(P.implicit, "implicit", { dkim: { keyPem: DKIM_ED_KEY, domain: "example.com", selector: "ed2026" } }), env(), message("dkim ed25519"));
  check(ed.ok?.reply.code === 250, "ed25519: delivered", ed.err);
  const [edGot] = await received(1);
  check(signatureOf(edGot).startsWith("DKIM-Signature: v=1; a=ed25519-sha256;"), "ed25519-sha256", signatureOf(edGot));
  const edVerdicts = dkimVerify(DKIM_ED_KEY_FILE, [edGot, tampered(edGot, "body")], "ed2026");
  check(json(edVerdicts) === json(["True", "False"]), "dkimpy: ed25519 verifies, tampered does not", edVerdicts);
});

await test("dkim: a malformed key, a bad selector or a header list without From is invalid-input before any connection; no key byte in any error", async () => {
  const before = (await serverState()).connections.starttls;
  const bogus = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ-SECRETBYTES\n-----END PRIVATE KEY-----\n";
  const bad = send(options(P.starttls, "starttls", { dkim: dkimOptions({ keyPem: bogus }) }), env(), message("x"));
  check(bad.err?.tag === "invalid-input" && /^dkim: /.test(bad.err.val) && /key/.test(bad.err.val), "malformed key: invalid-input naming the dkim key", bad.err);
  const notPem = call(() => client.Session.open(options(P.starttls, "starttls", { dkim: dkimOptions({ keyPem: "SECRETBYTES" }) })));
  check(notPem.err?.tag === "invalid-input" && /dkim/.test(notPem.err.val), "not PEM (session.open): invalid-input", notPem);
  const small = send(options(P.starttls, "starttls", { dkim: dkimOptions({ keyPem: readFileSync(path.join(ROOT, "smtp-dkim", "tests", "keys", "rsa512-pkcs1.pem"), "utf8") }) }), env(), message("x"));
  check(small.err?.tag === "invalid-input" && /1024/.test(small.err.val), "a 512-bit RSA key: invalid-input", small.err);
  const selector = send(options(P.starttls, "starttls", { dkim: dkimOptions({ selector: "bad selector" }) }), env(), message("x"));
  check(selector.err?.tag === "invalid-input" && /selector/.test(selector.err.val), "a bad selector: invalid-input", selector.err);
  const noFrom = send(options(P.starttls, "starttls", { dkim: dkimOptions({ headers: ["To", "Subject"] }) }), env(), message("x"));
  check(noFrom.err?.tag === "invalid-input" && /From/.test(noFrom.err.val), "headers without From: invalid-input", noFrom.err);
  for (const e of [bad.err, notPem.err, small.err, selector.err, noFrom.err]) {
    const text = json(e);
    check(!text.includes("SECRETBYTES") && !text.includes("MIIEvQIBADAN") && keyLines(DKIM_KEY).every((l) => !text.includes(l)), "no key byte in the error", e);
  }
  // The one-shot send signs before connecting: a message without From opens nothing either.
  const oneNoFrom = send(options(P.starttls, "starttls", { dkim: dkimOptions() }), env(), "To: friend@example.org\r\nSubject: no from\r\n\r\nbody\r\n");
  check(oneNoFrom.err?.tag === "invalid-input" && /From/.test(oneNoFrom.err.val), "one-shot, a message without From: invalid-input", oneNoFrom.err);
  check((await serverState()).connections.starttls === before, "no connection was opened", (await serverState()).connections.starttls - before);
  // A message without From cannot be signed: refused before MAIL, the session goes on.
  const session = client.Session.open(options(P.starttls, "starttls", { dkim: dkimOptions() }));
  const beforeMsgs = (await serverState()).messages.length;
  const r = call(() => session.send(env(), NO_OPTIONS, { tag: "bytes", val: bytesOf("To: friend@example.org\r\nSubject: no from\r\n\r\nbody\r\n") }));
  check(r.err?.tag === "invalid-input" && /From/.test(r.err.val), "a message without From: invalid-input", r.err);
  check(call(() => session.noop()).ok?.code === 250, "the session goes on", null);
  session.quit();
  check((await serverState()).messages.length === beforeMsgs, "nothing delivered", null);
});

// --- done ---------------------------------------------------------------------------------
worker.postMessage("close");
await reply("closed");
console.log(`\n${passed} passed, ${failures === 0 ? "no" : failures} failed check(s)`);
process.exit(failures === 0 ? 0 : 1);
