// End-to-end test: the example Worker (built by run.sh into WORK/worker) runs in workerd through
// Miniflare's API and sends mail through the loopback SMTP servers of smtp-server.mjs.
//
// Usage: NODE_EXTRA_CA_CERTS=WORK/ca.pem node test.mjs WORK
// (the CA must be set before Node starts: Miniflare reads it when it is imported).

import { readFileSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";
import { startSmtpServers } from "./smtp-server.mjs";

const work = process.argv[2];
if (!work) {
  console.error("usage: node test.mjs WORK_DIR");
  process.exit(2);
}

const USER = "worker@example.com";
const PASS = "s3cret pass"; // a space, to check nothing trims it
const smtp = await startSmtpServers({
  key: readFileSync(path.join(work, "server.key")),
  cert: readFileSync(path.join(work, "server.pem")),
  user: USER,
  pass: PASS,
});

const mf = new Miniflare({
  modules: true,
  scriptPath: path.join(work, "worker", "entry.mjs"),
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  compatibilityDate: "2025-01-01",
});

let failures = 0;
let passed = 0;
const results = [];

function check(cond, what, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? "" : `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`}`);
}

async function send(job, { stream } = {}) {
  let res;
  if (stream) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(job)) {
      if (k === "body") continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else if (v !== undefined) q.append(k, String(v));
    }
    res = await mf.dispatchFetch(`http://worker.test/send?${q}`, {
      method: "POST",
      headers: { "content-type": "message/rfc822" },
      body: job.body,
    });
  } else {
    res = await mf.dispatchFetch("http://worker.test/send", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(job),
    });
  }
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`the Worker answered ${res.status} with non-JSON: ${text.slice(0, 500)}`);
  }
  return { status: res.status, json };
}

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    results.push(`ok    ${name} (${Date.now() - t0} ms)`);
    console.log(`ok    ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    results.push(`FAIL  ${name}: ${e.message}`);
    console.log(`FAIL  ${name}: ${e.message}`);
  }
}

// A message that needs dot-stuffing, holds UTF-8 and a long line, and ends with CRLF.
function message(subject, extra = "") {
  return (
    `From: ${USER}\r\nTo: friend@example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
    `Hello from a Worker: héllo wörld ✓\r\n.leading dot\r\n..two dots\r\n.\r\n` +
    `${"x".repeat(900)}\r\n${extra}last line\r\n`
  );
}

function base(port, tls, extra = {}) {
  return { host: tls === "none" ? "127.0.0.1" : "localhost", port, tls, user: USER, pass: PASS, from: USER, ...extra };
}

function lastMessage() {
  return smtp.messages[smtp.messages.length - 1];
}

async function expectDelivered(job, opts, { listener, tls, ehloCount }) {
  const before = smtp.messages.length;
  const { status, json } = await send(job, opts);
  check(status === 200 && json.ok, "the Worker reports success", json);
  check(smtp.messages.length === before + 1, "the server recorded one message", smtp.messages.length - before);
  const got = lastMessage();
  check(got.listener === listener, "listener", got.listener);
  check(got.tls === tls, "TLS at MAIL FROM", got.tls);
  check(got.authUser === USER, "authenticated user", got.authUser);
  if (ehloCount !== undefined) check(got.ehloCount === ehloCount, "EHLO count", got.ehloCount);
  check(got.from === job.from, "MAIL FROM", got.from);
  check(JSON.stringify(got.to) === JSON.stringify(job.to), "RCPT TO", got.to);
  const sent = Buffer.from(job.body, "utf8");
  check(got.data.equals(sent), "received bytes equal the message sent", `${got.data.length} vs ${sent.length} bytes`);
  const o = json.outcome;
  check(o.queue_id === got.queueId, "queue id", o.queue_id);
  check(o.reply.code === 250 && o.reply.enhanced === "2.0.0", "final reply", o.reply);
  // The size counts message bytes, never the dots added by stuffing (streamed or not).
  check(o.size === sent.length, "size", `${o.size}, expected ${sent.length}`);
  check(o.recipients.length === job.to.length && o.recipients.every((r) => r.accepted && r.code === 250), "recipients", o.recipients);
  return got;
}

async function expectError(job, want, opts) {
  const { status, json } = await send(job, opts);
  check(status === 502 && json.ok === false && json.error, "the Worker reports an SMTP error", json);
  const e = json.error;
  for (const [k, v] of Object.entries(want)) {
    check(JSON.stringify(e[k]) === JSON.stringify(v), `error.${k} = ${JSON.stringify(v)}`, e);
  }
  return e;
}

const P = smtp.ports;

await test("plain: AUTH PLAIN, exact bytes delivered", async () => {
  await expectDelivered(base(P.plain, "none", { to: ["friend@example.org"], body: message("plain") }), {}, { listener: "plain", tls: false, ehloCount: 1 });
});

await test("STARTTLS: upgrade, EHLO again, AUTH PLAIN, exact bytes delivered", async () => {
  await expectDelivered(base(P.starttls, "starttls", { to: ["friend@example.org", "other@example.net"], body: message("starttls") }), {}, { listener: "starttls", tls: true, ehloCount: 2 });
  check(smtp.events.some((e) => e.listener === "starttls" && e.event === "tls-up"), "the server saw the TLS handshake");
  check(!smtp.events.some((e) => e.event === "bytes-after-starttls"), "nothing was pipelined after STARTTLS", smtp.events);
});

await test("implicit TLS: AUTH LOGIN, exact bytes delivered", async () => {
  await expectDelivered(base(P.implicit, "implicit", { to: ["friend@example.org"], body: message("implicit") }), {}, { listener: "implicit", tls: true, ehloCount: 1 });
});

await test("streamed request body (ReadableStream, ~570 KiB, STARTTLS): exact bytes delivered", async () => {
  const lines = [];
  for (let i = 0; i < 12000; i++) lines.push(i % 7 === 0 ? `.line ${i} starts with a dot` : `line ${i} ${"abcdefghij".repeat(4)}`);
  const body = `From: ${USER}\r\nTo: a@example.org\r\nSubject: streamed\r\n\r\n${lines.join("\r\n")}\r\n`;
  const got = await expectDelivered(base(P.starttls, "starttls", { to: ["a@example.org", "b@example.org", "c@example.org"], body }), { stream: true }, { listener: "starttls", tls: true, ehloCount: 2 });
  console.log(`      (MAIL FROM parameters: ${got.mailParams || "none"})`);
});

await test("every recipient refused: typed RecipientsRefused error with the 550 reply", async () => {
  const before = smtp.messages.length;
  const e = await expectError(base(P.plain, "none", { to: ["reject-me@example.org"], body: message("refused") }), {
    kind: "Protocol",
    detail: "RecipientsRefused",
    op: "RcptTo",
    accepted: 0,
    transient: false,
  });
  check(e.refused.length === 1 && e.refused[0].recipient === "reject-me@example.org" && e.refused[0].code === 550 && e.refused[0].enhanced === "5.1.1", "refused recipient", e.refused);
  check(e.refused[0].text.includes("Recipient address rejected"), "reply text kept", e.refused[0].text);
  check(smtp.messages.length === before, "nothing delivered");
});

await test("one of two recipients refused: typed RecipientsRefused error, no message delivered", async () => {
  const before = smtp.messages.length;
  const e = await expectError(base(P.plain, "none", { to: ["ok@example.org", "reject-2@example.org"], body: message("partial") }), {
    kind: "Protocol",
    detail: "RecipientsRefused",
    op: "RcptTo",
    accepted: 1,
  });
  check(e.refused.length === 1 && e.refused[0].index === 1 && e.refused[0].code === 550, "refused recipient", e.refused);
  const delivered = smtp.messages.slice(before);
  check(delivered.every((m) => m.data.length === 0), "the message body was not delivered", delivered.map((m) => m.data.length));
  if (delivered.length) console.log(`      note: the engine ended DATA with a lone dot, so the server recorded ${delivered.length} empty message(s)`);
});

await test("server drops the connection at MAIL FROM: typed error during MailFrom", async () => {
  const e = await expectError({ host: "127.0.0.1", port: P.disconnect, tls: "none", from: USER, to: ["friend@example.org"], body: message("dropped") }, { op: "MailFrom" });
  const closed = e.kind === "Protocol" && e.detail === "ConnectionClosed";
  const io = e.kind === "Io";
  check(closed || io, "ConnectionClosed (or an I/O error) during MAIL FROM", e);
  console.log(`      (reported as ${e.kind}${e.detail ? "/" + e.detail : ""}: ${e.message})`);
});

await test("silent server: the engine's greeting timeout fires on the runtime timer", async () => {
  const t0 = Date.now();
  await expectError({ host: "127.0.0.1", port: P.silent, tls: "none", from: USER, to: ["friend@example.org"], body: "x\r\n", timeout_ms: 1500 }, {
    kind: "Timeout",
    op: "Greeting",
    after_ms: 1500,
  });
  const took = Date.now() - t0;
  check(took >= 1400 && took < 10000, "took about the timeout", `${took} ms`);
});

await test("wrong password: typed Auth/Rejected error with the 535 reply", async () => {
  await expectError(base(P.starttls, "starttls", { pass: "wrong", to: ["friend@example.org"], body: message("auth") }), {
    kind: "Auth",
    detail: "Rejected",
    op: "Auth",
    code: 535,
    enhanced: "5.7.8",
  });
});

await test("port 25: refused before connecting with an InvalidInput error", async () => {
  const e = await expectError({ host: "127.0.0.1", port: 25, tls: "none", from: USER, to: ["friend@example.org"], body: "x\r\n" }, {
    kind: "InvalidInput",
    transient: false,
  });
  check(e.message.includes("port 25"), "message names port 25", e.message);
});

await test("certificate for another name (implicit TLS to 127.0.0.1, cert for localhost): I/O error", async () => {
  const before = smtp.messages.length;
  const e = await expectError({ host: "127.0.0.1", port: P.implicit, tls: "implicit", from: USER, to: ["friend@example.org"], body: "x\r\n", timeout_ms: 5000 }, { kind: "Io" });
  check(smtp.messages.length === before, "nothing delivered");
  console.log(`      (${e.message})`);
});

await test("STARTTLS with a certificate for another name: I/O error, nothing sent in plaintext", async () => {
  const before = smtp.messages.length;
  const e = await expectError(base(P.starttls, "starttls", { host: "127.0.0.1", to: ["friend@example.org"], body: "x\r\n", timeout_ms: 5000 }), { kind: "Io" });
  check(["StartTls", "TlsHandshake", "Ehlo"].includes(e.op), "during the upgrade or the EHLO after it", e);
  check(smtp.messages.length === before, "nothing delivered");
  console.log(`      (during ${e.op}: ${e.message})`);
});

await test("bytes injected after the STARTTLS 220: ResponseInjection, session closed", async () => {
  await expectError(base(P.inject, "starttls", { to: ["friend@example.org"], body: "x\r\n" }), {
    kind: "Protocol",
    detail: "ResponseInjection",
  });
});

await test("connection refused: I/O error during Connect", async () => {
  // A port that was just free: open and close a listener to find one.
  const net = await import("node:net");
  const port = await new Promise((r) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
  const e = await expectError({ host: "127.0.0.1", port, tls: "none", from: USER, to: ["friend@example.org"], body: "x\r\n", timeout_ms: 5000 }, { kind: "Io" });
  check(["Connect", "Greeting"].includes(e.op), "during Connect (or the first read)", e);
  console.log(`      (during ${e.op}: ${e.message})`);
});

await mf.dispose();
await smtp.close();

console.log(`\n${passed} passed, ${failures} failed`);
if (failures) {
  console.error("E2E FAILED:\n" + results.filter((r) => r.startsWith("FAIL")).join("\n"));
  process.exit(1);
}
