// The loopback SMTP server both end-to-end suites use (e2e/ for the Worker, wasi-e2e/ for the
// WASI component), with Node's built-ins only. Each suite names its listeners and what each one
// does (see its own smtp-server.mjs); this module is the protocol they all share.
//
// Every listener offers PIPELINING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES, refuses a recipient
// whose local part starts with "reject" (550 5.1.1), refuses one starting with "ctl" with a
// reply whose text holds control characters (ESC, BEL, DEL, a C1 control and a bidi override),
// and records each message it accepts: the envelope and MAIL parameters, whether TLS was on (and
// its version), the EHLO count, the AUTH user and mechanism (and the SCRAM client nonce), and
// the exact data bytes after dot-unstuffing (the CRLF before the final dot belongs to the
// message), as a Buffer. `connections` counts the TCP connections each listener accepted (to
// prove that a refused request opened none); `events` records TLS and SCRAM happenings.
//
// A listener's options:
//   auth        AUTH offered and required before MAIL (PLAIN and LOGIN unless said otherwise;
//               with starttls, only after STARTTLS)
//   starttls    STARTTLS offered
//   implicit    TLS from the first byte
//   loginOnly   only AUTH LOGIN offered (so LOGIN is exercised)
//   scram       only AUTH SCRAM-SHA-256-PLUS and SCRAM-SHA-256 offered. The SCRAM exchange
//               (RFC 5802, 7677) is checked in full, and for -PLUS the channel binding must
//               equal this TLS session's RFC 9266 tls-exporter value (Node's
//               exportKeyingMaterial): a client that exports the wrong bytes gets 535.
//   inject      sends an extra reply in the same write as its STARTTLS 220
//   dropAtMail  drops the connection (no reply) when it reads MAIL FROM
//   dropAtEnd   reads the whole message, then drops the connection without answering its end
//               (the message's fate is unknown to the client; it is not recorded as delivered)
//   refuseAtEnd answers the end of every message 554 (refused after its data)
//   silent      accepts connections and never says anything (for timeouts)
//   handshakeDelayMs  with implicit: the TCP connection is accepted at once, but the TLS
//               handshake starts only this long after it (the ClientHello waits unanswered), so
//               a client's connect step (TLS included) takes at least this long
//   greetingDelayMs   the 220 greeting comes this long after the session starts (after the TLS
//               handshake with implicit)

import crypto from "node:crypto";
import net from "node:net";
import tls from "node:tls";

const CRLF = "\r\n";

// The listeners both suites have (a suite adds its own and may override these):
//   plain       plaintext; AUTH PLAIN LOGIN offered; AUTH required before MAIL
//   starttls    STARTTLS offered; AUTH PLAIN LOGIN offered (and required) only after it
//   implicit    TLS from the first byte; only AUTH LOGIN offered (so LOGIN is exercised)
//   inject      like starttls, but sends an extra reply in the same write as its STARTTLS 220
//   silent      accepts connections and never says anything (for timeouts)
//   slowTls     like implicit, but answers the ClientHello only after 1 s and greets 1.5 s after
//               the handshake (for the session deadline: connect time must count against it)
export const commonListeners = {
  plain: { auth: true },
  starttls: { auth: true, starttls: true },
  implicit: { auth: true, implicit: true, loginOnly: true },
  inject: { auth: true, starttls: true, inject: true },
  silent: { silent: true },
  slowTls: { auth: true, implicit: true, loginOnly: true, handshakeDelayMs: 1000, greetingDelayMs: 1500 },
};

// Start one listener per entry of `listeners` (name -> options, above), each on a free port of
// 127.0.0.1, greeting with "220 localhost ESMTP <banner>-<name>". With `closedPort`, `ports.closed`
// is a port that refuses connections (bound once, then closed).
export async function startSmtpServers({ key, cert, user, pass, banner, listeners, closedPort = false }) {
  const messages = [];
  const events = [];
  const connections = Object.fromEntries(Object.keys(listeners).map((name) => [name, 0]));
  const secureContext = tls.createSecureContext({ key, cert });
  const sockets = new Set();
  let queueCounter = 0;

  function track(socket) {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  }

  function session(raw, opts) {
    track(raw);
    let sock = raw;
    let secure = opts.implicit === true;
    let buf = Buffer.alloc(0);
    let mode = "cmd"; // cmd | data | auth-plain | login-user | login-pass | scram-first | scram-final | scram-done
    let scram = null;
    let ehloCount = 0;
    let ehloSeen = false;
    let authUser = null;
    let authMech = null;
    let loginName = null;
    let txn = null;
    let dataParts = [];
    let closed = false;

    const say = (...lines) => {
      if (!closed) sock.write(lines.join(CRLF) + CRLF);
    };
    const onData = (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      pump();
    };
    raw.on("data", onData);
    const greeting = `220 localhost ESMTP ${banner}-${opts.name}`;
    if (opts.greetingDelayMs) {
      const timer = setTimeout(() => {
        events.push({ listener: opts.name, event: "greeting" });
        say(greeting);
      }, opts.greetingDelayMs);
      raw.on("close", () => clearTimeout(timer));
    } else {
      say(greeting);
    }

    const authOffered = () => opts.auth && (secure || !opts.starttls);

    function checkCredentials(u, p) {
      if (u === user && p === pass) {
        authUser = u;
        say("235 2.7.0 Authentication successful");
      } else {
        authMech = null;
        say("535 5.7.8 Authentication credentials invalid");
      }
      mode = "cmd";
    }

    const hmac = (key, text) => crypto.createHmac("sha256", key).update(text).digest();
    const scramFail = (why) => {
      events.push({ listener: opts.name, event: "scram-failed", why });
      authMech = null;
      mode = "cmd";
      say("535 5.7.8 Authentication credentials invalid");
    };

    // One step of the server side of SCRAM-SHA-256(-PLUS), from the client's decoded message.
    function scramStep(text) {
      if (mode === "scram-first") {
        // gs2-header: "p=tls-exporter,," for -PLUS, "n,," or "y,," without channel binding.
        const m = /^(p=tls-exporter|n|y),([^,]*),(n=([^,]*),r=([^,]+)(,.*)?)$/.exec(text);
        if (!m) return scramFail(`bad client-first ${text}`);
        if (scram.plus !== m[1].startsWith("p=")) return scramFail(`gs2 header ${m[1]} for ${authMech}`);
        const user_ = m[4].replace(/=2C/g, ",").replace(/=3D/g, "=");
        scram.gs2 = `${m[1]},${m[2]},`;
        scram.user = user_;
        scram.clientNonce = m[5];
        scram.clientFirstBare = m[3];
        scram.nonce = m[5] + crypto.randomBytes(18).toString("base64");
        scram.salt = crypto.randomBytes(16);
        scram.serverFirst = `r=${scram.nonce},s=${scram.salt.toString("base64")},i=4096`;
        mode = "scram-final";
        return say(`334 ${Buffer.from(scram.serverFirst).toString("base64")}`);
      }
      if (mode === "scram-final") {
        const m = /^(c=([^,]*),r=([^,]*)),p=([^,]*)$/.exec(text);
        if (!m) return scramFail(`bad client-final ${text}`);
        const cb = scram.plus ? sock.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0)) : Buffer.alloc(0);
        const wantC = Buffer.concat([Buffer.from(scram.gs2), cb]).toString("base64");
        if (m[2] !== wantC) return scramFail("channel binding mismatch");
        if (m[3] !== scram.nonce) return scramFail("nonce mismatch");
        if (scram.user !== user) return scramFail("unknown user");
        const salted = crypto.pbkdf2Sync(pass, scram.salt, 4096, 32, "sha256");
        const clientKey = hmac(salted, "Client Key");
        const storedKey = crypto.createHash("sha256").update(clientKey).digest();
        const authMessage = `${scram.clientFirstBare},${scram.serverFirst},${m[1]}`;
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.from(m[4], "base64");
        const expected = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
        if (proof.length !== expected.length || !crypto.timingSafeEqual(proof, expected)) return scramFail("wrong proof");
        const serverSig = hmac(hmac(salted, "Server Key"), authMessage);
        mode = "scram-done";
        return say(`334 ${Buffer.from(`v=${serverSig.toString("base64")}`).toString("base64")}`);
      }
      // scram-done: the client acknowledges the server's signature with an empty response.
      if (text !== "") return scramFail("non-empty response after server-final");
      authUser = scram.user;
      mode = "cmd";
      say("235 2.7.0 Authentication successful");
    }

    function finishData() {
      const data = Buffer.concat(dataParts);
      dataParts = [];
      mode = "cmd";
      if (opts.dropAtEnd) {
        events.push({ listener: opts.name, event: "dropped-at-end" });
        closed = true;
        sock.destroy();
        if (sock !== raw) raw.destroy();
        return;
      }
      if (opts.refuseAtEnd) {
        txn = null;
        say("554 5.6.0 Message refused after its data");
        return;
      }
      const id = `Q${++queueCounter}`;
      messages.push({
        listener: opts.name,
        tls: secure,
        tlsVersion: secure ? sock.getProtocol() : null,
        ehloCount,
        authUser,
        authMech,
        scramNonce: scram ? scram.clientNonce : null,
        from: txn.from,
        mailParams: txn.params,
        to: txn.to.slice(),
        data,
        queueId: id,
      });
      txn = null;
      say(`250 2.0.0 Ok: queued as ${id}`);
    }

    // Returns false when the session stops reading this socket (closed or handed to TLS).
    function command(line) {
      const verb = line.toUpperCase().split(" ")[0];
      if (mode.startsWith("scram-")) {
        if (line === "*") return say("501 5.7.0 Authentication cancelled"), (mode = "cmd"), true;
        scramStep(Buffer.from(line, "base64").toString("utf8"));
        return true;
      }
      if (mode === "auth-plain" || mode === "login-user" || mode === "login-pass") {
        if (line === "*") return say("501 5.7.0 Authentication cancelled"), (mode = "cmd"), true;
        const text = Buffer.from(line, "base64").toString("utf8");
        if (mode === "auth-plain") {
          const parts = text.split("\0");
          checkCredentials(parts[1], parts[2]);
        } else if (mode === "login-user") {
          loginName = text;
          mode = "login-pass";
          say("334 UGFzc3dvcmQ6");
        } else {
          checkCredentials(loginName, text);
        }
        return true;
      }
      switch (verb) {
        case "EHLO": {
          ehloCount++;
          ehloSeen = true;
          txn = null;
          const caps = [`localhost greets ${line.slice(5)}`, "PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES"];
          if (opts.starttls && !secure) caps.push("STARTTLS");
          if (authOffered()) caps.push(opts.scram ? "AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256" : opts.loginOnly ? "AUTH LOGIN" : "AUTH PLAIN LOGIN");
          say(...caps.map((c, i) => `250${i === caps.length - 1 ? " " : "-"}${c}`));
          return true;
        }
        case "HELO":
          ehloSeen = true;
          say("250 localhost");
          return true;
        case "STARTTLS": {
          if (!opts.starttls || secure) return say("502 5.5.1 STARTTLS not available"), true;
          if (opts.inject) {
            // A man in the middle's trick: a reply smuggled in with the 220, in the same segment.
            say("220 2.0.0 Ready to start TLS", "250 2.0.0 injected");
            return true;
          }
          say("220 2.0.0 Ready to start TLS");
          // RFC 3207: anything pipelined after STARTTLS is discarded.
          if (buf.length) events.push({ listener: opts.name, event: "bytes-after-starttls", bytes: buf.length });
          buf = Buffer.alloc(0);
          raw.removeListener("data", onData);
          const tlsSock = new tls.TLSSocket(raw, { isServer: true, secureContext });
          track(tlsSock);
          tlsSock.on("secure", () => events.push({ listener: opts.name, event: "tls-up" }));
          tlsSock.on("error", (e) => events.push({ listener: opts.name, event: "tls-error", message: e.message }));
          sock = tlsSock;
          secure = true;
          ehloSeen = false;
          authUser = null;
          txn = null;
          tlsSock.on("data", onData);
          return false;
        }
        case "AUTH": {
          if (!authOffered()) return say("503 5.5.1 AUTH not available"), true;
          if (authUser) return say("503 5.5.1 Already authenticated"), true;
          const [, mech, initial] = line.split(" ");
          const m = (mech || "").toUpperCase();
          if (opts.scram && (m === "SCRAM-SHA-256-PLUS" || m === "SCRAM-SHA-256")) {
            authMech = m;
            scram = { plus: m.endsWith("-PLUS") };
            mode = "scram-first";
            if (initial) scramStep(Buffer.from(initial, "base64").toString("utf8"));
            else say("334 ");
          } else if (opts.scram) {
            say("504 5.5.4 Unrecognized authentication type");
          } else if (m === "PLAIN" && !opts.loginOnly) {
            authMech = "PLAIN";
            if (initial) {
              const parts = Buffer.from(initial, "base64").toString("utf8").split("\0");
              checkCredentials(parts[1], parts[2]);
            } else {
              mode = "auth-plain";
              say("334 ");
            }
          } else if (m === "LOGIN") {
            authMech = "LOGIN";
            if (initial) {
              loginName = Buffer.from(initial, "base64").toString("utf8");
              mode = "login-pass";
              say("334 UGFzc3dvcmQ6");
            } else {
              mode = "login-user";
              say("334 VXNlcm5hbWU6");
            }
          } else {
            say("504 5.5.4 Unrecognized authentication type");
          }
          return true;
        }
        case "MAIL": {
          if (opts.dropAtMail) {
            events.push({ listener: opts.name, event: "dropped-at-mail" });
            closed = true;
            sock.destroy();
            if (sock !== raw) raw.destroy();
            return false;
          }
          if (!ehloSeen) return say("503 5.5.1 EHLO first"), true;
          if (opts.auth && !authUser) return say("530 5.7.0 Authentication required"), true;
          const m = /^MAIL FROM:\s?<([^>]*)>\s*(.*)$/i.exec(line);
          if (!m) return say("501 5.5.4 Syntax: MAIL FROM:<address>"), true;
          txn = { from: m[1], params: m[2], to: [] };
          say("250 2.1.0 Ok");
          return true;
        }
        case "RCPT": {
          if (!txn) return say("503 5.5.1 MAIL first"), true;
          const m = /^RCPT TO:\s?<([^>]*)>/i.exec(line);
          if (!m) return say("501 5.5.4 Syntax: RCPT TO:<address>"), true;
          if (m[1].toLowerCase().startsWith("reject")) {
            say(`550 5.1.1 <${m[1]}>: Recipient address rejected: User unknown`);
          } else if (m[1].toLowerCase().startsWith("ctl")) {
            say(`550 5.1.1 <${m[1]}>: \x1b[2J\x1b[31mred\x07 del\x7f c1\u0085 \u202eevil`);
          } else {
            txn.to.push(m[1]);
            say("250 2.1.5 Ok");
          }
          return true;
        }
        case "DATA": {
          if (!txn) return say("503 5.5.1 MAIL first"), true;
          if (txn.to.length === 0) {
            txn = null;
            return say("554 5.5.1 Error: no valid recipients"), true;
          }
          mode = "data";
          dataParts = [];
          say("354 End data with <CR><LF>.<CR><LF>");
          return true;
        }
        case "RSET":
          txn = null;
          say("250 2.0.0 Ok");
          return true;
        case "NOOP":
          say("250 2.0.0 Ok");
          return true;
        case "QUIT":
          say("221 2.0.0 Bye");
          closed = true;
          sock.end();
          return false;
        default:
          say("502 5.5.2 Error: command not recognized");
          return true;
      }
    }

    function pump() {
      while (!closed) {
        const i = buf.indexOf(CRLF);
        if (i < 0) return;
        const line = buf.subarray(0, i);
        buf = buf.subarray(i + 2);
        if (mode === "data") {
          if (line.length === 1 && line[0] === 0x2e) {
            finishData();
          } else {
            // Dot-unstuffing: a leading dot was doubled by the client.
            dataParts.push(line[0] === 0x2e ? line.subarray(1) : line, Buffer.from(CRLF));
          }
          continue;
        }
        if (!command(line.toString("utf8"))) return;
      }
    }
  }

  const listen = (server) =>
    new Promise((resolve, reject) => {
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(server.address().port));
    });

  // Implicit TLS whose handshake starts `delay` ms after the TCP accept: the client's
  // ClientHello waits in the socket, unanswered, meanwhile.
  function delayedTls(raw, opts, delay) {
    track(raw);
    const timer = setTimeout(() => {
      if (raw.destroyed) return;
      const tlsSock = new tls.TLSSocket(raw, { isServer: true, secureContext });
      tlsSock.on("error", (e) => events.push({ listener: opts.name, event: "tls-error", message: e.message }));
      tlsSock.on("secure", () => {
        events.push({ listener: opts.name, event: "tls-up" });
        session(tlsSock, opts);
      });
    }, delay);
    raw.on("close", () => clearTimeout(timer));
  }

  const servers = {};
  for (const [name, opts] of Object.entries(listeners)) {
    const handler = opts.silent
      ? (s) => track(s)
      : opts.implicit && opts.handshakeDelayMs
        ? (s) => delayedTls(s, { ...opts, name }, opts.handshakeDelayMs)
        : (s) => session(s, { ...opts, name });
    servers[name] =
      opts.implicit && !opts.handshakeDelayMs ? tls.createServer({ key, cert }, handler) : net.createServer(handler);
    // Every TCP connection, counted before any TLS handshake.
    servers[name].on("connection", () => connections[name]++);
    if (opts.implicit && !opts.handshakeDelayMs) {
      servers[name].on("tlsClientError", (err) =>
        events.push({ listener: name, event: "tls-client-error", message: err.message }),
      );
    }
  }

  const ports = {};
  for (const [name, server] of Object.entries(servers)) ports[name] = await listen(server);

  if (closedPort) {
    // A port that refuses connections: bound once, then closed.
    const probe = net.createServer();
    ports.closed = await listen(probe);
    await new Promise((r) => probe.close(() => r()));
  }

  return {
    ports,
    messages,
    events,
    connections,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(Object.values(servers).map((s) => new Promise((r) => s.close(() => r()))));
    },
  };
}
