// End-to-end test: the example Worker (built by run.sh into WORK/worker, and with the `dkim`
// feature into WORK/worker-dkim) runs in workerd through Miniflare's API and sends mail through
// the loopback SMTP servers of smtp-server.mjs. Every configuration runs the default build but
// those of DKIM_BUILD.
//
// The Worker takes its SMTP server, TLS mode, credentials and token from its environment, so
// each configuration under test is its own Worker (same script, different bindings: strings
// become workerd `text` bindings, as wrangler secrets and string vars do; a number becomes a
// `json` binding, as a wrangler `[vars]` number does).
//
// Usage: NODE_EXTRA_CA_CERTS=WORK/ca.pem node test.mjs WORK
// (the CA must be set before Node starts: Miniflare reads it when it is imported).

import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { execFileSync, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { Miniflare } from "miniflare";
import { startSmtpServers } from "./smtp-server.mjs";
import { startOAuthServer } from "./oauth-server.mjs";

const work = process.argv[2];
if (!work) {
  console.error("usage: node test.mjs WORK_DIR");
  process.exit(2);
}

const USER = "worker@example.com";
const PASS = "s3cret pass"; // a space, to check nothing trims it
const TOKEN = `e2e-${randomBytes(24).toString("base64url")}`;
const smtp = await startSmtpServers({
  key: readFileSync(path.join(work, "server.key")),
  cert: readFileSync(path.join(work, "server.pem")),
  user: USER,
  pass: PASS,
});
const P = smtp.ports;
// An OAuth 2.0 access token for USER, and nodemailer's smtp-server that checks it (XOAUTH2).
const OAUTH_TOKEN = `ya29.${randomBytes(18).toString("base64url")}`;
const WRONG_OAUTH_TOKEN = `ya29.wrong-${randomBytes(9).toString("base64url")}`;
const oauth = await startOAuthServer({
  key: readFileSync(path.join(work, "server.key")),
  cert: readFileSync(path.join(work, "server.pem")),
  user: USER,
  pass: PASS,
  token: OAUTH_TOKEN,
});

// A port that was just free: open and close a listener to find one.
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
const closedPort = await freePort();

// A real proxy: pproxy (Python, `pip install pproxy`), as the Rust route tests run it
// (testkit/src/proxy.rs): SOCKS5 and HTTP CONNECT, each without and with credentials (asked on
// every connection: `--auth 0`). With -v it logs each tunnel as "<kind> <client> -> <target>",
// which shows that a message really went through it.
const PROXY_USER = "proxy-user";
const PROXY_PASS = `pp-${randomBytes(15).toString("hex")}`;
const WRONG_PROXY_PASS = `wrong-${randomBytes(15).toString("hex")}`;
async function startPproxy() {
  const ports = { socks: await freePort(), http: await freePort(), socksAuth: await freePort(), httpAuth: await freePort() };
  const creds = `${PROXY_USER}:${PROXY_PASS}`;
  const listeners = [
    `socks5://127.0.0.1:${ports.socks}`,
    `http://127.0.0.1:${ports.http}`,
    `socks5://127.0.0.1:${ports.socksAuth}#${creds}`,
    `http://127.0.0.1:${ports.httpAuth}#${creds}`,
  ];
  const child = spawn(process.env.PPROXY_PYTHON || "python3", ["-u", "-m", "pproxy", "-v", "--auth", "0", ...listeners.flatMap((l) => ["-l", l])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  process.on("exit", () => child.kill());
  const log = [];
  for (const stream of [child.stdout, child.stderr]) readline.createInterface(stream).on("line", (line) => log.push(line));
  let exited = null;
  child.on("exit", (code) => (exited = code ?? "signal"));
  child.on("error", (e) => (exited = e.message));
  for (let i = 0; log.filter((l) => l.startsWith("Serving on")).length < listeners.length; i++) {
    if (exited !== null || i >= 200) {
      child.kill();
      throw new Error(`pproxy did not start (pip install pproxy): ${exited ?? "not listening after 10 s"}\n${log.join("\n")}`);
    }
    await delay(50);
  }
  return {
    ports,
    log,
    // How many tunnels of this kind ("socks5" or "http") to `target` (host:port) it logged.
    tunnels: (kind, target) => log.filter((l) => l.startsWith(`${kind} `) && l.endsWith(`-> ${target}`)).length,
    close: () => child.kill(),
  };
}
const pproxy = await startPproxy();
const PX = pproxy.ports;
const socksUrl = (port, pass) => `socks5://${pass ? `${PROXY_USER}:${pass}@` : ""}127.0.0.1:${port}`;
const httpUrl = (port, pass) => `http://${pass ? `${PROXY_USER}:${pass}@` : ""}127.0.0.1:${port}`;

const secrets = { API_TOKEN: TOKEN, SMTP_USER: USER, SMTP_PASSWORD: PASS };
// DKIM: smtp-dkim's test key; dkimpy checks the signatures (smtp-dkim/tests/dkim_verify.py).
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
const DKIM_KEY_FILE = path.join(ROOT, "smtp-dkim", "tests", "keys", "rsa2048-pkcs8.pem");
const DKIM_KEY = readFileSync(DKIM_KEY_FILE, "utf8");
const BOGUS_DKIM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-SECRETBYTES\n-----END PRIVATE KEY-----\n";
const dkimVars = { DKIM_PRIVATE_KEY: DKIM_KEY, DKIM_SELECTOR: "sel2026", DKIM_DOMAIN: "example.com" };
// name -> bindings (the Worker's vars and secrets)
const configs = {
  starttls: { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  // A number, as `SMTP_PORT = 465` in wrangler's [vars] gives.
  implicit: { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: P.implicit },
  capped: { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), MAX_BODY_BYTES: "4096" },
  plaintext: { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "none", SMTP_PORT: String(P.plain) },
  "no-token": { SMTP_USER: USER, SMTP_PASSWORD: PASS, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  disconnect: { API_TOKEN: TOKEN, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.disconnect) },
  silent: { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.silent), SMTP_TIMEOUT_MS: "1500" },
  "wrong-password": { ...secrets, SMTP_PASSWORD: "wrong", SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  port25: { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: "25" },
  "other-name-implicit": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_TIMEOUT_MS: "5000" },
  "other-name-starttls": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_TIMEOUT_MS: "5000" },
  inject: { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.inject) },
  refused: { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "starttls", SMTP_PORT: String(closedPort), SMTP_TIMEOUT_MS: "5000" },
  // The session deadline (SMTP_DEADLINE_MS), always shorter than the connect and reply timeout
  // (SMTP_TIMEOUT_MS), so only the deadline can end these sessions early.
  "deadline-silent": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.silent), SMTP_TIMEOUT_MS: "20000", SMTP_DEADLINE_MS: "1000" },
  "deadline-no-server-hello": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.silent), SMTP_TIMEOUT_MS: "20000", SMTP_DEADLINE_MS: "1000" },
  "deadline-slow-tls": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.slowTls), SMTP_TIMEOUT_MS: "20000", SMTP_DEADLINE_MS: "2000" },
  "deadline-slow-tls-enough": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.slowTls), SMTP_TIMEOUT_MS: "20000", SMTP_DEADLINE_MS: "8000" },
  // The AUTH mechanism by name (SMTP_AUTH_MECHANISM), and OAuth 2.0 tokens (XOAUTH2).
  "login-by-name": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_AUTH_MECHANISM: "LOGIN" },
  "xoauth2-request": { API_TOKEN: TOKEN, SMTP_USER: USER, SMTP_AUTH_MECHANISM: "XOAUTH2", SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(oauth.port) },
  "xoauth2-configured": { API_TOKEN: TOKEN, SMTP_USER: USER, SMTP_PASSWORD: OAUTH_TOKEN, SMTP_AUTH_MECHANISM: "xoauth2", SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(oauth.port) },
  // DKIM, on the build with the `dkim` feature (DKIM_BUILD)...
  dkim: { ...secrets, ...dkimVars, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  "dkim-bad-key": { ...secrets, ...dkimVars, DKIM_PRIVATE_KEY: BOGUS_DKIM_KEY, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  "dkim-no-selector": { ...secrets, DKIM_PRIVATE_KEY: DKIM_KEY, DKIM_DOMAIN: "example.com", SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  "dkim-build-unsigned": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  // ... and on the default build, which has no signer and must refuse them.
  "no-dkim-build": { ...secrets, ...dkimVars, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  "no-dkim-build-domain": { ...secrets, DKIM_DOMAIN: "example.com", SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls) },
  "bad-mechanism": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_AUTH_MECHANISM: "CRAM-MD5" },
  // Through a proxy (SMTP_PROXY, pproxy on 127.0.0.1): the certificate (for localhost only) is
  // checked for SMTP_HOST, so TLS through the tunnel works only if the proxy's name is not used.
  "proxy-socks-starttls": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_PROXY: socksUrl(PX.socks) },
  "proxy-socks-implicit": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_PROXY: socksUrl(PX.socks) },
  "proxy-http-starttls": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_PROXY: httpUrl(PX.http) },
  "proxy-http-implicit": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_PROXY: httpUrl(PX.http) },
  "proxy-socks-auth": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_PROXY: socksUrl(PX.socksAuth, PROXY_PASS) },
  "proxy-http-auth": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_PROXY: httpUrl(PX.httpAuth, PROXY_PASS) },
  "proxy-socks-wrong-auth": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_PROXY: socksUrl(PX.socksAuth, WRONG_PROXY_PASS), SMTP_TIMEOUT_MS: "5000" },
  "proxy-http-wrong-auth": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_PROXY: httpUrl(PX.httpAuth, WRONG_PROXY_PASS), SMTP_TIMEOUT_MS: "5000" },
  "proxy-unreachable": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_PROXY: socksUrl(closedPort), SMTP_TIMEOUT_MS: "5000" },
  "proxy-malformed": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_PROXY: `socks5://${PROXY_USER}:${PROXY_PASS}@127.0.0.1` },
  "proxy-inject": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.inject), SMTP_PROXY: socksUrl(PX.socks) },
  // The proxy dialled as localhost (the certificate's name), the SMTP server as 127.0.0.1: TLS
  // must fail, as the certificate is checked for 127.0.0.1, never for the proxy's name...
  "proxy-not-the-proxys-name": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_PROXY: `socks5://localhost:${PX.socks}`, SMTP_TIMEOUT_MS: "5000" },
  // ... and with SMTP_TLS_SERVER_NAME=localhost it is checked for that name: delivered.
  "proxy-tls-name": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_PROXY: httpUrl(PX.http), SMTP_TLS_SERVER_NAME: "localhost" },
  // SMTP_TLS_SERVER_NAME without a proxy: dialled as 127.0.0.1, the certificate names only
  // localhost.
  "tls-name-implicit": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_TLS_SERVER_NAME: "localhost" },
  "tls-name-starttls": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_TLS_SERVER_NAME: "localhost" },
  "tls-name-wrong-implicit": { ...secrets, SMTP_HOST: "127.0.0.1", SMTP_TLS: "implicit", SMTP_PORT: String(P.implicit), SMTP_TLS_SERVER_NAME: "wrong.example", SMTP_TIMEOUT_MS: "5000" },
  "tls-name-wrong-starttls": { ...secrets, SMTP_HOST: "localhost", SMTP_TLS: "starttls", SMTP_PORT: String(P.starttls), SMTP_TLS_SERVER_NAME: "wrong.example", SMTP_TIMEOUT_MS: "5000" },
};

// The configurations run by the build with the `dkim` feature (WORK/worker-dkim).
const DKIM_BUILD = new Set(["dkim", "dkim-bad-key", "dkim-no-selector", "dkim-build-unsigned"]);

// Every line workerd prints (the Workers' console.error among them), passed on as Miniflare does
// by default, and kept for the checks of what the Worker logged.
const runtimeLog = [];
function handleRuntimeStdio(stdout, stderr) {
  readline.createInterface(stdout).on("line", (line) => (runtimeLog.push(line), console.log(line)));
  readline.createInterface(stderr).on("line", (line) => (runtimeLog.push(line), console.error(line)));
}

const mf = new Miniflare({
  handleRuntimeStdio,
  workers: Object.entries(configs).map(([name, bindings]) => ({
    name,
    modules: true,
    scriptPath: path.join(work, DKIM_BUILD.has(name) ? "worker-dkim" : "worker", "entry.mjs"),
    // Module names are relative to this root (the default, the current directory, fails when
    // WORK lies outside it).
    modulesRoot: path.join(work, DKIM_BUILD.has(name) ? "worker-dkim" : "worker"),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2025-01-01",
    bindings,
    // dispatchFetch("http://<name>.test/...") reaches this Worker (and keeps Content-Length).
    routes: [`${name}.test/*`],
  })),
});

let failures = 0;
let passed = 0;
const results = [];

function check(cond, what, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? "" : `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`}`);
}

// Every string in a JSON value.
function strings(v, out = []) {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === "object") Object.entries(v).forEach(([k, x]) => (out.push(k), strings(x, out)));
  return out;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

// One request to a Worker. `body` a string (sent with Content-Length) or, with `chunked`, sent
// as a stream without Content-Length; `from: null` / `token: null` leave them out. Checks what every answer must satisfy: JSON, no secret,
// no control character.
async function call(worker, { method = "POST", path: p = "/send", from = USER, to = ["friend@example.org"], query, token = TOKEN, auth, body, chunked = false, headers: extra = {} } = {}) {
  const q = new URLSearchParams();
  if (query) for (const [k, v] of query) q.append(k, v);
  else {
    if (from !== null) q.append("from", from);
    for (const t of to) q.append("to", t);
  }
  const headers = { "content-type": "message/rfc822", ...extra };
  if (auth !== undefined) headers.authorization = auth;
  else if (token !== null) headers.authorization = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined && method !== "GET" && method !== "HEAD") {
    if (chunked) {
      const bytes = Buffer.from(body, "utf8");
      init.body = new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(new Uint8Array(bytes.subarray(i, i + 1000)));
          controller.close();
        },
      });
      init.duplex = "half";
    } else {
      // As curl does (Miniflare's dispatchFetch would otherwise send it chunked).
      init.body = body;
      headers["content-length"] = String(Buffer.byteLength(body));
    }
  }
  const res = await mf.dispatchFetch(`http://${worker}.test${p}?${q}`, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`the Worker answered ${res.status} with non-JSON: ${text.slice(0, 500)}`);
  }
  check(
    [PASS, TOKEN, OAUTH_TOKEN, WRONG_OAUTH_TOKEN, PROXY_PASS, WRONG_PROXY_PASS].every((secret) => !text.includes(secret)),
    "the answer holds no password or token",
    text,
  );
  const bad = strings(json).find((s) => CONTROL.test(s));
  check(bad === undefined, "no control or bidi character in the answer", bad);
  check((res.headers.get("content-type") || "").startsWith("application/json"), "JSON content type", res.headers.get("content-type"));
  return { status: res.status, json, headers: res.headers, text };
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

// A message of exactly `size` bytes (ASCII, CRLF line endings).
function messageOfSize(size) {
  const head = `From: ${USER}\r\nTo: friend@example.org\r\nSubject: sized\r\n\r\n`;
  const rest = size - head.length; // at least 100
  const full = Math.floor(rest / 50) - 1;
  const r = rest - 50 * full; // 50..99, split in two lines
  const line = (n) => `${"y".repeat(n - 2)}\r\n`;
  const m = head + line(50).repeat(full) + line(Math.floor(r / 2)) + line(r - Math.floor(r / 2));
  if (m.length !== size || !m.endsWith("\r\n")) throw new Error(`messageOfSize(${size}) made ${m.length} bytes`);
  return m;
}

const totalConnections = () => Object.values(smtp.connections).reduce((a, b) => a + b, 0) + oauth.connections();

// Runs `fn`, then checks that no listener saw a TCP connection meanwhile (after a short grace
// period for a connection in flight) and nothing was delivered.
async function expectNoSmtp(fn) {
  const conns = totalConnections();
  const msgs = smtp.messages.length;
  const r = await fn();
  await delay(150);
  check(totalConnections() === conns, "no SMTP connection was made", smtp.connections);
  check(smtp.messages.length === msgs, "nothing delivered");
  return r;
}

async function expectRefused(worker, opts, status, error) {
  return expectNoSmtp(async () => {
    const r = await call(worker, opts);
    check(r.status === status && r.json.ok === false && r.json.error === error, `${status} ${error}`, { status: r.status, body: r.json });
    return r;
  });
}

async function expectDelivered(worker, opts, { listener, tls, ehloCount, authUser = USER }) {
  const before = smtp.messages.length;
  const { status, json } = await call(worker, opts);
  check(status === 200 && json.ok, "the Worker reports success", { status, json });
  check(smtp.messages.length === before + 1, "the server recorded one message", smtp.messages.length - before);
  const got = smtp.messages[smtp.messages.length - 1];
  check(got.listener === listener, "listener", got.listener);
  check(got.tls === tls, "TLS at MAIL FROM", got.tls);
  check(got.authUser === authUser, "authenticated user", got.authUser);
  if (ehloCount !== undefined) check(got.ehloCount === ehloCount, "EHLO count", got.ehloCount);
  const to = opts.to || ["friend@example.org"];
  check(got.from === (opts.from || USER), "MAIL FROM", got.from);
  check(JSON.stringify(got.to) === JSON.stringify(to), "RCPT TO", got.to);
  const sent = Buffer.from(opts.body, "utf8");
  check(got.data.equals(sent), "received bytes equal the message sent", `${got.data.length} vs ${sent.length} bytes`);
  const o = json.outcome;
  check(o.queue_id === got.queueId, "queue id", o.queue_id);
  check(o.reply.code === 250 && o.reply.enhanced === "2.0.0", "final reply", o.reply);
  // The size counts message bytes, never the dots added by stuffing.
  check(o.size === sent.length, "size", `${o.size}, expected ${sent.length}`);
  check(o.recipients.length === to.length && o.recipients.every((r) => r.accepted && r.code === 250), "recipients", o.recipients);
  return got;
}

async function expectError(worker, opts, status, want) {
  const { status: got, json } = await call(worker, opts);
  check(got === status && json.ok === false, `HTTP ${status} with ok: false`, { status: got, json });
  for (const [k, v] of Object.entries(want)) {
    check(JSON.stringify(json[k]) === JSON.stringify(v), `${k} = ${JSON.stringify(v)}`, json);
  }
  return json;
}

// ---------------------------------------------------------------- who may call, and how

await test("no Authorization header: 401 with no detail, no SMTP connection", async () => {
  const r = await expectRefused("starttls", { token: null, body: message("no token") }, 401, "unauthorized");
  check(r.text === '{"ok":false,"error":"unauthorized"}', "the body is only the class", r.text);
  check(r.headers.get("www-authenticate") === "Bearer", "WWW-Authenticate: Bearer", r.headers.get("www-authenticate"));
});

await test("wrong token (same length, prefix, longer, empty, other scheme): 401, no SMTP connection", async () => {
  const flipped = TOKEN.slice(0, -1) + (TOKEN.endsWith("A") ? "B" : "A");
  for (const auth of [`Bearer ${flipped}`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, "Bearer ", `Basic ${TOKEN}`, TOKEN]) {
    const r = await expectRefused("starttls", { auth, body: message("wrong token") }, 401, "unauthorized");
    check(r.text === '{"ok":false,"error":"unauthorized"}', "no detail", r.text);
  }
});

await test("token in the query string instead of the header: 401, no SMTP connection", async () => {
  await expectRefused("starttls", { token: null, query: [["from", USER], ["to", "friend@example.org"], ["token", TOKEN]], body: message("query token") }, 401, "unauthorized");
});

await test("yesterday's open-relay request (no token; host, port, tls=none, user, pass in the query): 401, no SMTP connection", async () => {
  const query = [["host", "127.0.0.1"], ["port", String(P.plain)], ["tls", "none"], ["user", USER], ["pass", PASS], ["from", USER], ["to", "friend@example.org"]];
  await expectRefused("starttls", { token: null, query, body: message("open relay") }, 401, "unauthorized");
});

await test("GET (and PUT): 405 with Allow: POST, no SMTP connection", async () => {
  const r = await expectRefused("starttls", { method: "GET" }, 405, "method_not_allowed");
  check(r.headers.get("allow") === "POST", "Allow: POST", r.headers.get("allow"));
  await expectRefused("starttls", { method: "PUT", body: message("put") }, 405, "method_not_allowed");
});

await test("another path: 404", async () => {
  await expectRefused("starttls", { path: "/", body: message("root") }, 404, "not_found");
});

await test("no API_TOKEN configured: every request refused (500 config), no SMTP connection", async () => {
  const r = await expectRefused("no-token", { body: message("unconfigured") }, 500, "config");
  check(r.text === '{"ok":false,"error":"config"}', "no detail", r.text);
  await expectRefused("no-token", { token: null, body: message("unconfigured") }, 500, "config");
});

// ---------------------------------------------------------------- delivery

await test("STARTTLS: upgrade, EHLO again, AUTH PLAIN, exact bytes delivered", async () => {
  await expectDelivered("starttls", { to: ["friend@example.org", "other@example.net"], body: message("starttls") }, { listener: "starttls", tls: true, ehloCount: 2 });
  check(smtp.events.some((e) => e.listener === "starttls" && e.event === "tls-up"), "the server saw the TLS handshake");
  check(!smtp.events.some((e) => e.event === "bytes-after-starttls"), "nothing was pipelined after STARTTLS", smtp.events);
});

await test("implicit TLS (port as a JSON number binding): AUTH LOGIN, exact bytes delivered", async () => {
  await expectDelivered("implicit", { body: message("implicit") }, { listener: "implicit", tls: true, ehloCount: 1 });
});

await test("streamed request body (~570 KiB, STARTTLS): exact bytes delivered, no SIZE= from Content-Length", async () => {
  const lines = [];
  for (let i = 0; i < 12000; i++) lines.push(i % 7 === 0 ? `.line ${i} starts with a dot` : `line ${i} ${"abcdefghij".repeat(4)}`);
  const body = `From: ${USER}\r\nTo: a@example.org\r\nSubject: streamed\r\n\r\n${lines.join("\r\n")}\r\n`;
  const got = await expectDelivered("starttls", { to: ["a@example.org", "b@example.org", "c@example.org"], body }, { listener: "starttls", tls: true, ehloCount: 2 });
  check(!/SIZE=/i.test(got.mailParams), "Content-Length is not declared as SIZE=", got.mailParams);
});

await test("bare-LF message with Content-Length: delivered with CRLF line endings", async () => {
  const before = smtp.messages.length;
  const body = `From: ${USER}\nTo: friend@example.org\nSubject: lf\n\nline one\nline two\n`;
  const { status, json } = await call("starttls", { body });
  check(status === 200 && json.ok, "the Worker reports success", { status, json });
  check(smtp.messages.length === before + 1, "one message recorded", smtp.messages.length - before);
  const got = smtp.messages[smtp.messages.length - 1];
  const expected = Buffer.from(body.replace(/\n/g, "\r\n"), "utf8");
  check(got.data.equals(expected), "received the message with CRLF line endings", `${got.data.length} vs ${expected.length}`);
});

await test("chunked request body (no Content-Length, implicit TLS): exact bytes delivered", async () => {
  const got = await expectDelivered("implicit", { body: message("chunked", "z\r\n".repeat(3000)), chunked: true }, { listener: "implicit", tls: true });
  check(!/SIZE=/i.test(got.mailParams), "no SIZE= without a declared length", got.mailParams);
});

// ---------------------------------------------------------------- plaintext is not offered

await test("plaintext asked in the query (tls=none, host, port, pass): 400, no SMTP connection", async () => {
  const query = [["from", USER], ["to", "friend@example.org"], ["tls", "none"], ["host", "127.0.0.1"], ["port", String(P.plain)]];
  const r = await expectRefused("starttls", { query, body: message("tls none") }, 400, "bad_request");
  check(r.json.reason.includes('"tls"'), "the reason names the parameter", r.json);
  await expectRefused("starttls", { query: [["from", USER], ["to", "friend@example.org"], ["pass", PASS]], body: message("pass") }, 400, "bad_request");
});

await test("SMTP_TLS=none in the environment: 500 config, no SMTP connection", async () => {
  const plainBefore = smtp.connections.plain;
  const r = await expectRefused("plaintext", { body: message("env none") }, 500, "config");
  check(r.text === '{"ok":false,"error":"config"}', "no detail", r.text);
  check(smtp.connections.plain === plainBefore, "the plaintext listener saw nothing");
});

await test("port 25 in the environment: 500 config before connecting", async () => {
  await expectRefused("port25", { body: message("port 25") }, 500, "config");
});

// ---------------------------------------------------------------- request checks

await test("envelope errors (no from, no to, CRLF in an address) and an empty body: 400, no SMTP connection", async () => {
  await expectRefused("starttls", { from: null, body: message("x") }, 400, "bad_request");
  await expectRefused("starttls", { to: [], body: message("x") }, 400, "bad_request");
  const r = await expectRefused("starttls", { to: ["a@example.org>\r\nRCPT TO:<evil@example.org"], body: message("x") }, 400, "bad_request");
  check(r.json.reason.includes("recipient address"), "the reason names the field", r.json);
  const r2 = await expectRefused("starttls", { body: undefined }, 400, "bad_request");
  check(r2.json.reason.includes("empty"), "an empty body is refused", r2.json);
  await expectRefused("starttls", { body: "" }, 400, "bad_request");
});

await test("MAX_BODY_BYTES=4096: a body of exactly 4096 bytes is delivered", async () => {
  await expectDelivered("capped", { body: messageOfSize(4096) }, { listener: "starttls", tls: true });
});

await test("MAX_BODY_BYTES=4096: Content-Length 4097 is 413 before any SMTP connection", async () => {
  const r = await expectRefused("capped", { body: messageOfSize(4097) }, 413, "too_large");
  check(r.json.max_bytes === 4096, "max_bytes", r.json);
});

await test("MAX_BODY_BYTES=4096: a chunked body of 4097+ bytes is cut off (413), nothing delivered", async () => {
  const before = smtp.messages.length;
  const r = await call("capped", { body: messageOfSize(6000), chunked: true });
  check(r.status === 413 && r.json.error === "too_large", "413 too_large", { status: r.status, json: r.json });
  await delay(150);
  check(smtp.messages.length === before, "nothing delivered", smtp.messages.length - before);
  // A chunked body within the cap still goes through.
  await expectDelivered("capped", { body: messageOfSize(3000), chunked: true }, { listener: "starttls", tls: true });
});

// ---------------------------------------------------------------- SMTP failures, mapped

await test("every recipient refused: 422 recipients_refused with the 550 reply, nothing delivered", async () => {
  const before = smtp.messages.length;
  const e = await expectError("starttls", { to: ["reject-me@example.org"], body: message("refused") }, 422, {
    error: "recipients_refused",
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

await test("one of two recipients refused: 422, the message body not delivered", async () => {
  const before = smtp.messages.length;
  const e = await expectError("starttls", { to: ["ok@example.org", "reject-2@example.org"], body: message("partial") }, 422, {
    error: "recipients_refused",
    accepted: 1,
  });
  check(e.refused.length === 1 && e.refused[0].index === 1 && e.refused[0].code === 550, "refused recipient", e.refused);
  const delivered = smtp.messages.slice(before);
  check(delivered.every((m) => m.data.length === 0), "the message body was not delivered", delivered.map((m) => m.data.length));
});

await test("server reply with control characters: escaped in the answer", async () => {
  const e = await expectError("starttls", { to: ["ctl@example.org"], body: message("ctl") }, 422, { error: "recipients_refused" });
  const text = e.refused[0].text;
  // call() already checked that no control or bidi character is left; the escapes show them.
  for (const esc of ["\\u001b[2J", "\\u0007", "\\u007f", "\\u0085", "\\u202e"]) check(text.includes(esc), `escaped ${esc}`, text);
});

await test("server drops the connection at MAIL FROM (no AUTH configured): 502 during MailFrom", async () => {
  const e = await expectError("disconnect", { body: message("dropped") }, 502, { op: "MailFrom" });
  check((e.kind === "Protocol" && e.detail === "ConnectionClosed") || e.kind === "Io", "ConnectionClosed (or an I/O error)", e);
  console.log(`      (reported as ${e.error}: ${e.kind}${e.detail ? "/" + e.detail : ""})`);
});

await test("silent server: 504 timeout during Greeting after SMTP_TIMEOUT_MS=1500 (runtime timer)", async () => {
  const t0 = Date.now();
  await expectError("silent", { body: "x\r\n" }, 504, { error: "timeout", kind: "Timeout", op: "Greeting", after_ms: 1500 });
  const took = Date.now() - t0;
  check(took >= 1400 && took < 10000, "took about the timeout", `${took} ms`);
});

await test("wrong SMTP_PASSWORD: 502 auth, Rejected with the 535 reply, no password in the answer", async () => {
  await expectError("wrong-password", { body: message("auth") }, 502, {
    error: "auth",
    kind: "Auth",
    detail: "Rejected",
    op: "Auth",
    code: 535,
    enhanced: "5.7.8",
  });
});

await test("certificate for another name (implicit TLS to 127.0.0.1): 502 io, nothing delivered", async () => {
  const before = smtp.messages.length;
  await expectError("other-name-implicit", { body: "x\r\n" }, 502, { error: "io", kind: "Io" });
  check(smtp.messages.length === before, "nothing delivered");
});

await test("STARTTLS with a certificate for another name: 502 io, nothing delivered", async () => {
  const before = smtp.messages.length;
  const e = await expectError("other-name-starttls", { body: "x\r\n" }, 502, { error: "io", kind: "Io" });
  check(["StartTls", "TlsHandshake", "Ehlo"].includes(e.op), "during the upgrade or the EHLO after it", e);
  check(smtp.messages.length === before, "nothing delivered");
});

await test("bytes injected after the STARTTLS 220: 502 protocol, ResponseInjection", async () => {
  await expectError("inject", { body: "x\r\n" }, 502, { error: "protocol", kind: "Protocol", detail: "ResponseInjection" });
});

await test("connection refused: 502 io during Connect", async () => {
  const e = await expectError("refused", { body: "x\r\n" }, 502, { error: "io", kind: "Io" });
  check(["Connect", "Greeting"].includes(e.op), "during Connect (or the first read)", e);
});

// ---------------------------------------------------------------- proxies (SMTP_PROXY)

// Delivered through pproxy: the message arrives, and pproxy logged exactly one tunnel of its
// kind to the SMTP server (so it did carry the connection).
async function expectDeliveredThrough(worker, kind, target, subject, expected) {
  const before = pproxy.tunnels(kind, target);
  const got = await expectDelivered(worker, { body: message(subject) }, expected);
  await delay(50);
  check(pproxy.tunnels(kind, target) === before + 1, `pproxy logged one ${kind} tunnel to ${target}`, pproxy.log.slice(-5));
  return got;
}

await test("SOCKS5 proxy, STARTTLS: delivered through the tunnel, the certificate checked for SMTP_HOST", async () => {
  await expectDeliveredThrough("proxy-socks-starttls", "socks5", `localhost:${P.starttls}`, "socks5 starttls", { listener: "starttls", tls: true, ehloCount: 2 });
});

await test("SOCKS5 proxy, implicit TLS (upgraded right after the tunnel opens): delivered", async () => {
  await expectDeliveredThrough("proxy-socks-implicit", "socks5", `localhost:${P.implicit}`, "socks5 implicit", { listener: "implicit", tls: true, ehloCount: 1 });
});

await test("HTTP CONNECT proxy, STARTTLS: delivered through the tunnel", async () => {
  await expectDeliveredThrough("proxy-http-starttls", "http", `localhost:${P.starttls}`, "http starttls", { listener: "starttls", tls: true, ehloCount: 2 });
});

await test("HTTP CONNECT proxy, implicit TLS: delivered through the tunnel", async () => {
  await expectDeliveredThrough("proxy-http-implicit", "http", `localhost:${P.implicit}`, "http implicit", { listener: "implicit", tls: true, ehloCount: 1 });
});

await test("proxies that ask for credentials (SOCKS5 user/password, HTTP Basic), the right ones in SMTP_PROXY: delivered", async () => {
  await expectDeliveredThrough("proxy-socks-auth", "socks5", `localhost:${P.starttls}`, "socks5 auth", { listener: "starttls", tls: true, ehloCount: 2 });
  await expectDeliveredThrough("proxy-http-auth", "http", `localhost:${P.implicit}`, "http auth", { listener: "implicit", tls: true, ehloCount: 1 });
});

await test("wrong proxy credentials (SOCKS5, HTTP): 502 io during Connect, no SMTP connection, the password in no answer and no log line", async () => {
  for (const worker of ["proxy-socks-wrong-auth", "proxy-http-wrong-auth"]) {
    const tunnels = pproxy.tunnels("socks5", `localhost:${P.starttls}`) + pproxy.tunnels("http", `localhost:${P.implicit}`);
    await expectNoSmtp(() => expectError(worker, { body: message(worker) }, 502, { error: "io", kind: "Io", op: "Connect" }));
    const now = pproxy.tunnels("socks5", `localhost:${P.starttls}`) + pproxy.tunnels("http", `localhost:${P.implicit}`);
    check(now === tunnels, "pproxy opened no tunnel", pproxy.log.slice(-5));
  }
  await delay(100);
  check(!runtimeLog.some((l) => l.includes(PROXY_PASS) || l.includes(WRONG_PROXY_PASS)), "no proxy password in the Worker's log");
  check(pproxy.log.some((l) => /unauthorized|auth/i.test(l)), "pproxy refused the credentials", pproxy.log.slice(-5));
});

await test("proxy that cannot be reached: 502 io during Connect, the log says \"cannot reach the proxy\"", async () => {
  await expectNoSmtp(() => expectError("proxy-unreachable", { body: message("proxy down") }, 502, { error: "io", kind: "Io", op: "Connect" }));
  await expectLogged([`cannot reach the proxy 127.0.0.1:${closedPort}`]);
});

await test("malformed SMTP_PROXY (no port; it holds a password): 500 config before any connection, the password in no answer or log", async () => {
  const r = await expectRefused("proxy-malformed", { body: message("bad proxy") }, 500, "config");
  check(r.text === '{"ok":false,"error":"config"}', "the body is only the class", r.text);
  await expectLogged(["bad setting SMTP_PROXY"]);
  check(!runtimeLog.some((l) => l.includes(PROXY_PASS)), "no proxy password in the Worker's log");
});

await test("bytes injected after the STARTTLS 220, through a SOCKS5 tunnel: 502 protocol, ResponseInjection", async () => {
  await expectError("proxy-inject", { body: "x\r\n" }, 502, { error: "protocol", kind: "Protocol", detail: "ResponseInjection" });
});

await test("proxy dialled as localhost (the certificate's name), SMTP server as 127.0.0.1: TLS fails, nothing delivered (never the proxy's name)", async () => {
  const before = smtp.messages.length;
  const { status, json } = await call("proxy-not-the-proxys-name", { body: message("proxy name") });
  check(status >= 500 && json.ok === false, "refused", { status, json });
  check(pproxy.tunnels("socks5", `127.0.0.1:${P.implicit}`) >= 1, "it did go through the proxy", pproxy.log.slice(-5));
  console.log(`      (${status} ${json.error}${json.op ? " during " + json.op : ""})`);
  check(smtp.messages.length === before, "nothing delivered");
});

await test("HTTP CONNECT proxy, implicit TLS to 127.0.0.1 with SMTP_TLS_SERVER_NAME=localhost: delivered", async () => {
  await expectDeliveredThrough("proxy-tls-name", "http", `127.0.0.1:${P.implicit}`, "proxy tls name", { listener: "implicit", tls: true, ehloCount: 1 });
});

// ---------------------------------------------------------------- SMTP_TLS_SERVER_NAME

await test("SMTP_TLS_SERVER_NAME=localhost, dialled as 127.0.0.1 (certificate for localhost only), implicit TLS and STARTTLS: delivered", async () => {
  await expectDelivered("tls-name-implicit", { body: message("tls name implicit") }, { listener: "implicit", tls: true, ehloCount: 1 });
  await expectDelivered("tls-name-starttls", { body: message("tls name starttls") }, { listener: "starttls", tls: true, ehloCount: 2 });
});

await test("SMTP_TLS_SERVER_NAME that the certificate does not name (implicit TLS to 127.0.0.1, STARTTLS to localhost): fails, nothing delivered", async () => {
  for (const worker of ["tls-name-wrong-implicit", "tls-name-wrong-starttls"]) {
    const before = smtp.messages.length;
    const { status, json } = await call(worker, { body: message(worker) });
    // Workers TLS errors are late and opaque: only the failure is asserted, not its text.
    check(status >= 500 && json.ok === false, "refused", { worker, status, json });
    check(smtp.messages.length === before, "nothing delivered", worker);
    console.log(`      (${worker}: ${status} ${json.error}${json.op ? " during " + json.op : ""})`);
  }
});

// ---------------------------------------------------------------- the session deadline

await test("silent server, SMTP_DEADLINE_MS=1000 under SMTP_TIMEOUT_MS=20000: 504 DeadlineExceeded during Greeting", async () => {
  const t0 = Date.now();
  await expectError("deadline-silent", { body: "x\r\n" }, 504, {
    error: "timeout", kind: "DeadlineExceeded", op: "Greeting", transient: true, after_ms: 1000,
  });
  const took = Date.now() - t0;
  check(took >= 900 && took < 15000, "took about the deadline, far less than the reply timeout", `${took} ms`);
});

// workerd does implicit TLS itself, and the socket's `opened` promise (the adapter's connect
// step) settles only after the handshake: a ClientHello never answered is a connect that never
// ends.
await test("implicit TLS, ClientHello never answered, SMTP_DEADLINE_MS=1000 under SMTP_TIMEOUT_MS=20000: 504 DeadlineExceeded during Connect", async () => {
  const conns = smtp.connections.silent;
  const t0 = Date.now();
  await expectError("deadline-no-server-hello", { body: "x\r\n" }, 504, {
    error: "timeout", kind: "DeadlineExceeded", op: "Connect", transient: true, after_ms: 1000,
  });
  const took = Date.now() - t0;
  check(took >= 900 && took < 15000, "took about the deadline, far less than the connect timeout", `${took} ms`);
  check(smtp.connections.silent === conns + 1, "the TCP connection was accepted (the TLS handshake is what hung)", smtp.connections);
});

// The slowTls listener answers the ClientHello 1 s after the TCP accept and greets 1.5 s after
// the handshake. A 2 s deadline counted from before the connect runs out while the greeting is
// awaited (one counted from after the connect would have 0.5 s to spare and deliver); an 8 s
// deadline delivers, which shows the listener works and the deadline alone ended the first call.
await test("implicit TLS, handshake 1 s late, greeting 1.5 s after it, SMTP_DEADLINE_MS=2000: 504 DeadlineExceeded (connect time counted)", async () => {
  const before = smtp.events.length;
  const t0 = Date.now();
  const e = await expectError("deadline-slow-tls", { body: "x\r\n" }, 504, {
    error: "timeout", kind: "DeadlineExceeded", after_ms: 2000,
  });
  const took = Date.now() - t0;
  // Normally during the greeting; during the connect only on a machine so loaded that the
  // handshake itself ends past 2 s. Either way the connect counted.
  check(["Greeting", "Connect"].includes(e.op), "during the greeting (or the connect)", e);
  check(took >= 1900 && took < 15000, "took about the deadline", `${took} ms`);
  await delay(100);
  const mine = smtp.events.slice(before).filter((x) => x.listener === "slowTls");
  check(!mine.some((x) => x.event === "greeting"), "the server had not greeted yet", mine);
  console.log(`      (DeadlineExceeded during ${e.op} after ${took} ms; server: ${mine.map((x) => x.event).join(", ")})`);
});

await test("implicit TLS, the same slow server, SMTP_DEADLINE_MS=8000: delivered", async () => {
  await expectDelivered("deadline-slow-tls-enough", { body: message("slow tls") }, { listener: "slowTls", tls: true, ehloCount: 1 });
});

// ---------------------------------------------------------------- AUTH mechanism and OAuth tokens

await test("SMTP_AUTH_MECHANISM=LOGIN where PLAIN is offered too: the server sees AUTH LOGIN", async () => {
  const got = await expectDelivered("login-by-name", { body: message("login by name") }, { listener: "starttls", tls: true, ehloCount: 2 });
  check(got.authMech === "LOGIN", "AUTH LOGIN", got.authMech);
});

await test("XOAUTH2 with the token from the request (SMTP-Access-Token): delivered as the token's user", async () => {
  const before = oauth.messages.length;
  const body = message("xoauth2 request token");
  const { status, json } = await call("xoauth2-request", { body, headers: { "SMTP-Access-Token": OAUTH_TOKEN } });
  check(status === 200 && json.ok, "the Worker reports success", { status, json });
  const got = oauth.messages.slice(before);
  check(got.length === 1 && got[0].authMethod === "XOAUTH2" && got[0].authUser === USER, "XOAUTH2 for USER", got);
  check(got[0]?.data.equals(Buffer.from(body, "utf8")), "exact bytes delivered");
});

await test("XOAUTH2 with the token from the Worker's secret (SMTP_PASSWORD): delivered", async () => {
  const before = oauth.messages.length;
  const { status, json } = await call("xoauth2-configured", { body: message("xoauth2 configured token") });
  check(status === 200 && json.ok, "the Worker reports success", { status, json });
  check(oauth.messages.length === before + 1 && oauth.messages.at(-1).authMethod === "XOAUTH2", "XOAUTH2", oauth.messages.at(-1));
});

await test("XOAUTH2 with a token the server refuses: 502 auth Rejected (535), nothing delivered, no token in the answer", async () => {
  const before = oauth.messages.length;
  await expectError("xoauth2-request", { body: message("bad token"), headers: { "SMTP-Access-Token": WRONG_OAUTH_TOKEN } }, 502, {
    error: "auth",
    kind: "Auth",
    detail: "Rejected",
    code: 535,
  });
  check(oauth.messages.length === before, "nothing delivered");
});

await test("SMTP-Access-Token to a Worker that logs in with a password, or no token where one is needed: 400, no SMTP connection", async () => {
  await expectRefused("starttls", { body: message("token to a password worker"), headers: { "SMTP-Access-Token": OAUTH_TOKEN } }, 400, "bad_request");
  await expectRefused("xoauth2-request", { body: message("no token") }, 400, "bad_request");
});

await test("SMTP_AUTH_MECHANISM not one the Worker knows: 500 config, no SMTP connection", async () => {
  await expectRefused("bad-mechanism", { body: message("bad mechanism") }, 500, "config");
});

// dkimpy's verdict on each message (Buffers): "True" or "False".
let dkimFiles = 0;
function dkimVerify(messages) {
  const files = messages.map((m) => {
    const file = path.join(work, `dkim-${dkimFiles++}.eml`);
    writeFileSync(file, m);
    return file;
  });
  const out = execFileSync(process.env.DKIM_PYTHON || "python3", [path.join(ROOT, "smtp-dkim", "tests", "dkim_verify.py"), DKIM_KEY_FILE, "sel2026", "example.com", ...files], { encoding: "utf8" });
  for (const f of files) unlinkSync(f);
  return files.map((f) => (out.split("\n").find((l) => l.startsWith(`${f} `)) ?? "missing").slice(f.length + 1));
}

await test("DKIM configured (DKIM_PRIVATE_KEY, DKIM_SELECTOR, DKIM_DOMAIN): signed with Date.now(), Content-Length and chunked uploads; the delivered copies verify with dkimpy, a tampered one does not", async () => {
  const copies = [];
  for (const chunked of [false, true]) {
    const body = message(`dkim ${chunked ? "chunked" : "content-length"}`);
    const before = smtp.messages.length;
    const { status, json } = await call("dkim", { body, chunked });
    check(status === 200 && json.ok, "the Worker reports success", { status, json });
    check(smtp.messages.length === before + 1, "one message delivered", smtp.messages.length - before);
    const got = smtp.messages.at(-1).data;
    const text = got.toString("latin1").replace(/\r\n[ \t]+/g, " ");
    check(text.startsWith("DKIM-Signature: v=1; a=rsa-sha256;") && /d=example\.com;/.test(text) && /s=sel2026;/.test(text), "a DKIM-Signature in front (rsa-sha256, d=, s=)", text.slice(0, 200));
    const t = Number(/\bt=(\d+);/.exec(text)?.[1]);
    check(Math.abs(t - Date.now() / 1000) < 120, "t= is the current time", t);
    check(got.subarray(got.indexOf("From: ")).equals(Buffer.from(body, "utf8")), "the message after the signature is the one sent", got.length);
    check(json.outcome.size === got.length, "the size is the signed message's", json.outcome.size);
    copies.push(got);
  }
  const tampered = Buffer.from(copies[0].toString("latin1").replace("Hello from a Worker", "Jello from a Worker"), "latin1");
  const verdicts = dkimVerify([...copies, tampered]);
  check(JSON.stringify(verdicts) === JSON.stringify(["True", "True", "False"]), "dkimpy: both verify, the tampered copy does not", verdicts);
});

await test("DKIM: a malformed DKIM_PRIVATE_KEY or a missing DKIM_SELECTOR is 500 config before any connection, the key in no answer; a message without From is 400", async () => {
  for (const worker of ["dkim-bad-key", "dkim-no-selector"]) {
    const r = await expectRefused(worker, { body: message(worker) }, 500, "config");
    check(!r.text.includes("SECRETBYTES") && !r.text.includes("MIIEvQIBADAN") && !r.text.includes(DKIM_KEY.split("\n")[1]), "no key byte in the answer", r.text);
  }
  const r = await expectRefused("dkim", { body: "To: friend@example.org\r\nSubject: no from\r\n\r\nbody\r\n" }, 400, "bad_request");
  check(/DKIM/.test(r.json.reason ?? "") && /From/.test(r.json.reason ?? ""), "the reason says the message cannot be signed without From", r.json);
});

await test("DKIM build without a DKIM setting: delivered unsigned, byte for byte (streamed)", async () => {
  const got = await expectDelivered("dkim-build-unsigned", { body: message("dkim build, no key"), chunked: true }, { listener: "starttls", tls: true });
  check(!got.data.includes("DKIM-Signature"), "no signature", got.data.subarray(0, 100).toString("latin1"));
});

// Polls the runtime's log for a line holding every one of `parts` (console.error may come after
// the answer).
async function expectLogged(parts) {
  for (let i = 0; i < 40; i++) {
    if (runtimeLog.some((l) => parts.every((p) => l.includes(p)))) return;
    await delay(50);
  }
  check(false, `the Worker's log holds ${JSON.stringify(parts)}`, runtimeLog.slice(-10));
}

await test("default build (no dkim feature) with DKIM settings: 500 config before any connection, the log names the setting and the feature; nothing sent unsigned", async () => {
  for (const [worker, name] of [["no-dkim-build", "DKIM_PRIVATE_KEY"], ["no-dkim-build-domain", "DKIM_DOMAIN"]]) {
    const r = await expectRefused(worker, { body: message(worker) }, 500, "config");
    check(r.text === '{"ok":false,"error":"config"}', "the body is only the class", r.text);
    await expectLogged([`bad setting ${name}: set, but this Worker was built without DKIM signing`, "`dkim` feature", "--features dkim"]);
  }
  check(!runtimeLog.some((l) => l.includes(DKIM_KEY.split("\n")[1])), "no key byte in the log");
});

await mf.dispose();
pproxy.close();
await smtp.close();
await oauth.close();

console.log(`\n${passed} passed, ${failures} failed`);
if (failures) {
  console.error("E2E FAILED:\n" + results.filter((r) => r.startsWith("FAIL")).join("\n"));
  process.exit(1);
}
