// nodemailer's smtp-server (the SMTP server of the Node ecosystem, a second implementation
// beside ../e2e-common) for the session, stream and token checks of the WASI end-to-end test.
// It runs in the server worker thread (see server-worker.mjs) and counts what a client did on it:
// TCP connections and the address each came from, TLS handshakes (STARTTLS or implicit) and the
// SNI each asked for, MAIL FROMs, and for each message its length and SHA-256 (computed while it
// streams in: a 20 MiB message is never held whole).
//
// Listeners (127.0.0.1, free ports; the certificate names "localhost"):
//   starttls   STARTTLS offered; AUTH PLAIN LOGIN XOAUTH2 only after it and required before MAIL
//   implicit   TLS from the first byte; the same AUTH
// Both offer SIZE 64 MiB, PIPELINING, 8BITMIME, DSN and ENHANCEDSTATUSCODES. XOAUTH2 accepts
// `user` with `token` and answers anything else with the JSON error of RFC 6749 (then 535).
// A recipient whose local part starts with "reject" gets 550 5.1.1.

import crypto from "node:crypto";
import { SMTPServer } from "smtp-server";

export const NODE_SIZE = 64 * 1024 * 1024;

/** `{ key, cert, user, pass, token }` -> `{ ports, stats(), close() }`. */
export async function startNodeServers({ key, cert, user, pass, token }) {
  // serverNames: the SNI each TLS handshake asked for (null: none sent, as for an IP address);
  // peers: the address each connection came from (its IP only).
  const counts = { connections: 0, tls: 0, mailFrom: 0, authMethods: [], serverNames: [], peers: [] };
  const messages = [];

  function onAuth(auth, session, callback) {
    if (auth.method === "XOAUTH2") {
      if (auth.username === user && auth.accessToken === token) return callback(null, { user: auth.username });
      return callback(null, { data: { status: "401", schemes: "bearer", scope: "https://mail.example.com/" } });
    }
    if (auth.username === user && auth.password === pass) return callback(null, { user: auth.username });
    const err = new Error("5.7.8 Authentication credentials invalid");
    err.responseCode = 535;
    callback(err);
  }

  function onData(stream, session, callback) {
    const hash = crypto.createHash("sha256");
    let length = 0;
    let head = [];
    let headLength = 0;
    stream.on("data", (chunk) => {
      hash.update(chunk);
      length += chunk.length;
      if (headLength < 4096) {
        head.push(chunk);
        headLength += chunk.length;
      }
    });
    stream.on("end", () => {
      if (stream.sizeExceeded) return callback(null);
      const id = `N${messages.length + 1}`;
      const e = session.envelope;
      messages.push({
        id,
        length,
        sha256: hash.digest("hex"),
        head: Buffer.concat(head).subarray(0, 4096).toString("utf8"),
        from: e.mailFrom ? e.mailFrom.address : null,
        mailArgs: e.mailFrom ? e.mailFrom.args || {} : {},
        to: e.rcptTo.map((r) => r.address),
        rcptArgs: e.rcptTo.map((r) => r.args || {}),
        authUser: session.user ?? null,
        authMethod: session.user ? session.wasiAuthMethod ?? null : null,
        secure: session.secure,
      });
      callback(null, `OK: queued as ${id}`);
    });
  }

  const common = (extra) => ({
    name: "localhost",
    banner: "wasi-e2e node",
    key,
    cert,
    authMethods: ["PLAIN", "LOGIN", "XOAUTH2"],
    authOptional: false,
    size: NODE_SIZE,
    rejectOversized: true,
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      counts.connections++;
      counts.peers.push(session.remoteAddress);
      callback();
    },
    onSecure(socket, session, callback) {
      counts.tls++;
      counts.serverNames.push(socket.servername || null);
      callback();
    },
    onAuth(auth, session, callback) {
      counts.authMethods.push(auth.method);
      onAuth(auth, session, (err, result) => {
        // smtp-server keeps the user, not the mechanism: remember it on the session.
        if (!err && result?.user) session.wasiAuthMethod = auth.method;
        callback(err, result);
      });
    },
    onMailFrom(address, session, callback) {
      counts.mailFrom++;
      callback();
    },
    onRcptTo(address, session, callback) {
      if (/^reject/i.test(address.address)) {
        const err = new Error(`5.1.1 <${address.address}>: Recipient address rejected`);
        err.responseCode = 550;
        return callback(err);
      }
      callback();
    },
    onData,
    ...extra,
  });

  const servers = { starttls: new SMTPServer(common({})), implicit: new SMTPServer(common({ secure: true })) };
  const ports = {};
  for (const [name, server] of Object.entries(servers)) {
    server.on("error", () => {});
    ports[name] = await new Promise((resolve, reject) => {
      server.server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(server.server.address().port));
    });
  }
  return {
    ports,
    stats: () => ({ ...counts, authMethods: counts.authMethods.slice(), serverNames: counts.serverNames.slice(), peers: counts.peers.slice(), messages: messages.slice() }),
    // smtp-server's close waits for its connections; a test that left one open must not hang.
    close: () =>
      Promise.race([
        Promise.all(Object.values(servers).map((s) => new Promise((r) => s.close(r)))),
        new Promise((r) => setTimeout(r, 2000).unref()),
      ]),
  };
}
