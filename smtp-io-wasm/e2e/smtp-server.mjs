// A small SMTP server for the end-to-end test, on loopback, with Node's built-ins only.
//
// Listeners (each on a free port of 127.0.0.1):
//   plain       plaintext; AUTH PLAIN LOGIN offered; AUTH required before MAIL
//   starttls    STARTTLS offered; AUTH PLAIN LOGIN offered (and required) only after it
//   implicit    TLS from the first byte; only AUTH LOGIN offered (so LOGIN is exercised)
//   inject      like starttls, but sends an extra reply in the same write as its STARTTLS 220
//   disconnect  STARTTLS offered, no AUTH; drops the connection (no reply) when it reads MAIL FROM
//   silent      accepts connections and never says anything (for timeouts)
//
// Every listener offers PIPELINING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES, refuses a recipient
// whose local part starts with "reject" (550 5.1.1), refuses one starting with "ctl" with a
// reply whose text holds control characters (ESC, BEL, DEL, a C1 control and a bidi override),
// and records each message it accepts with the envelope and the exact data bytes after
// dot-unstuffing (the final CRLF before the dot is part of the message). `connections` counts
// the TCP connections each listener accepted (to prove that a refused request opened none).

import net from "node:net";
import tls from "node:tls";

const CRLF = "\r\n";

export async function startSmtpServers({ key, cert, user, pass }) {
  const messages = [];
  const events = [];
  const connections = { plain: 0, starttls: 0, implicit: 0, inject: 0, disconnect: 0, silent: 0 };
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
    let mode = "cmd"; // cmd | data | auth-plain | login-user | login-pass
    let ehloCount = 0;
    let ehloSeen = false;
    let authUser = null;
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
    say(`220 localhost ESMTP e2e-${opts.name}`);

    function authOffered() {
      return opts.auth && (secure || !opts.starttls);
    }

    function checkCredentials(u, p) {
      if (u === user && p === pass) {
        authUser = u;
        say("235 2.7.0 Authentication successful");
      } else {
        say("535 5.7.8 Authentication credentials invalid");
      }
      mode = "cmd";
    }

    function finishData() {
      const data = Buffer.concat(dataParts);
      dataParts = [];
      mode = "cmd";
      const id = `Q${++queueCounter}`;
      messages.push({
        listener: opts.name,
        tls: secure,
        ehloCount,
        authUser,
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
      const upper = line.toUpperCase();
      const verb = upper.split(" ")[0];
      if (mode === "auth-plain") {
        if (line === "*") return say("501 5.7.0 Authentication cancelled"), (mode = "cmd"), true;
        const parts = Buffer.from(line, "base64").toString("utf8").split("\0");
        checkCredentials(parts[1], parts[2]);
        return true;
      }
      if (mode === "login-user") {
        if (line === "*") return say("501 5.7.0 Authentication cancelled"), (mode = "cmd"), true;
        loginName = Buffer.from(line, "base64").toString("utf8");
        mode = "login-pass";
        say("334 UGFzc3dvcmQ6");
        return true;
      }
      if (mode === "login-pass") {
        if (line === "*") return say("501 5.7.0 Authentication cancelled"), (mode = "cmd"), true;
        checkCredentials(loginName, Buffer.from(line, "base64").toString("utf8"));
        return true;
      }
      switch (verb) {
        case "EHLO": {
          ehloCount++;
          ehloSeen = true;
          txn = null;
          const caps = [`localhost greets ${line.slice(5)}`, "PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES"];
          if (opts.starttls && !secure) caps.push("STARTTLS");
          if (authOffered()) caps.push(opts.loginOnly ? "AUTH LOGIN" : "AUTH PLAIN LOGIN");
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
          if (m === "PLAIN" && !opts.loginOnly) {
            if (initial) {
              const parts = Buffer.from(initial, "base64").toString("utf8").split("\0");
              checkCredentials(parts[1], parts[2]);
            } else {
              mode = "auth-plain";
              say("334 ");
            }
          } else if (m === "LOGIN") {
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

  const servers = {
    plain: net.createServer((s) => session(s, { name: "plain", auth: true })),
    starttls: net.createServer((s) => session(s, { name: "starttls", auth: true, starttls: true })),
    implicit: tls.createServer({ key, cert }, (s) =>
      session(s, { name: "implicit", auth: true, implicit: true, loginOnly: true }),
    ),
    inject: net.createServer((s) => session(s, { name: "inject", auth: true, starttls: true, inject: true })),
    disconnect: net.createServer((s) => session(s, { name: "disconnect", starttls: true, dropAtMail: true })),
    silent: net.createServer((s) => track(s)),
  };
  // Every TCP connection, counted before any TLS handshake.
  for (const [name, server] of Object.entries(servers)) server.on("connection", () => connections[name]++);
  servers.implicit.on("tlsClientError", (err) => events.push({ listener: "implicit", event: "tls-client-error", message: err.message }));

  const ports = {};
  for (const [name, server] of Object.entries(servers)) ports[name] = await listen(server);

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
