// A small scripted SMTP / LMTP server for the WASI end-to-end test of the connect options that
// switch extensions and protocols (pipelining, chunking, data-pipelining, protocol). It runs in
// the server worker thread (see server-worker.mjs) and records, per connection, every command
// line and how the commands were grouped in the reads (a pipelined flight arrives in one read,
// a command sent alone in a read of its own), and every message with the command that carried
// its body (DATA, un-stuffed, or BDAT, as is).
//
// Listeners (127.0.0.1, free ports, plaintext, no AUTH):
//   smtp   EHLO offers PIPELINING, CHUNKING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES; LHLO refused
//   lmtp   LHLO offers PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES; EHLO and HELO refused; after
//          each message one reply per accepted recipient
// A recipient whose local part starts with "reject" gets 550 5.1.1 at RCPT; in LMTP one that
// starts with "lmtpfail" is accepted at RCPT and refused (550) after the message.

import net from "node:net";

/** -> `{ ports, state(), close() }`; `state()` is plain data (buffers as base64). */
export async function startFeatureServers() {
  const connections = [];
  const messages = [];
  const sockets = new Set();

  function handler(listener, lmtp) {
    return (sock) => {
      sockets.add(sock);
      sock.on("close", () => sockets.delete(sock));
      sock.on("error", () => {});
      const conn = { listener, reads: [], commands: [] };
      connections.push(conn);
      let buf = Buffer.alloc(0);
      let mode = "command"; // or "data", "bdat"
      let bdatLeft = 0;
      let bdatLast = false;
      let tx = null;
      const say = (text) => {
        if (!sock.destroyed) sock.write(text);
      };
      const caps = lmtp
        ? ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
        : ["PIPELINING", "CHUNKING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES"];
      const greet = () => say(["localhost", ...caps].map((c, i, a) => `250${i === a.length - 1 ? " " : "-"}${c}\r\n`).join(""));

      function finish(via) {
        const data = Buffer.concat(tx.body);
        messages.push({ listener, via, from: tx.from, to: tx.accepted.slice(), data: data.toString("base64") });
        if (lmtp) {
          say(tx.accepted.map((r) => (/^lmtpfail/i.test(r) ? `550 5.2.0 <${r}> mailbox unavailable\r\n` : `250 2.0.0 <${r}> delivered\r\n`)).join(""));
        } else {
          say(`250 2.0.0 OK queued as F${messages.length}\r\n`);
        }
        tx = null;
      }

      function command(line) {
        const verb = (line.split(" ")[0] ?? "").toUpperCase();
        conn.commands.push(line);
        const arg = (prefix) => {
          const m = /<([^>]*)>/.exec(line.slice(prefix.length));
          return m ? m[1] : "";
        };
        switch (verb) {
          case "EHLO":
            return lmtp ? say("500 5.5.1 this is LMTP: LHLO\r\n") : greet();
          case "LHLO":
            return lmtp ? greet() : say("500 5.5.1 this is SMTP: EHLO\r\n");
          case "HELO":
            return lmtp ? say("500 5.5.1 this is LMTP: LHLO\r\n") : say("250 localhost\r\n");
          case "MAIL":
            tx = { from: arg("MAIL FROM:"), accepted: [], body: [] };
            return say("250 2.1.0 sender ok\r\n");
          case "RCPT": {
            if (!tx) return say("503 5.5.1 MAIL first\r\n");
            const r = arg("RCPT TO:");
            if (/^reject/i.test(r)) return say(`550 5.1.1 <${r}>: Recipient address rejected\r\n`);
            tx.accepted.push(r);
            return say("250 2.1.5 recipient ok\r\n");
          }
          case "DATA":
            if (!tx || tx.accepted.length === 0) return say("554 5.5.1 no valid recipients\r\n");
            mode = "data";
            return say("354 end with <CRLF>.<CRLF>\r\n");
          case "BDAT": {
            const [, size, last] = line.split(" ");
            bdatLeft = Number(size);
            bdatLast = (last ?? "").toUpperCase() === "LAST";
            if (!Number.isSafeInteger(bdatLeft) || bdatLeft < 0 || lmtp) {
              say("501 5.5.4 bad BDAT\r\n");
              return sock.destroy();
            }
            if (!tx) tx = { from: null, accepted: [], body: [], refused: true };
            mode = "bdat";
            return;
          }
          case "RSET":
            tx = null;
            return say("250 2.0.0 reset\r\n");
          case "NOOP":
            return say("250 2.0.0 ok\r\n");
          case "QUIT":
            say("221 2.0.0 bye\r\n");
            return sock.end();
          default:
            return say("500 5.5.2 unknown command\r\n");
        }
      }

      say(`220 localhost ${lmtp ? "LMTP" : "ESMTP"} wasi-e2e features\r\n`);
      sock.on("data", (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        const verbs = [];
        for (;;) {
          if (mode === "data") {
            const end = buf.subarray(0, 3).equals(Buffer.from(".\r\n")) ? -2 : buf.indexOf("\r\n.\r\n");
            if (end === -1) break;
            const raw = end < 0 ? Buffer.alloc(0) : buf.subarray(0, end + 2);
            buf = buf.subarray(end + 5);
            // Un-stuff: a line that starts with "." loses that dot.
            const text = raw.toString("latin1").replace(/(^|\r\n)\./g, "$1");
            tx.body.push(Buffer.from(text, "latin1"));
            mode = "command";
            finish("DATA");
            continue;
          }
          if (mode === "bdat") {
            const take = Math.min(bdatLeft, buf.length);
            tx.body.push(buf.subarray(0, take));
            buf = buf.subarray(take);
            bdatLeft -= take;
            if (bdatLeft > 0) break;
            mode = "command";
            if (tx.refused) {
              tx = null;
              say("554 5.5.1 no valid recipients\r\n");
            } else if (bdatLast) finish("BDAT");
            else say("250 2.0.0 chunk received\r\n");
            continue;
          }
          const nl = buf.indexOf("\r\n");
          if (nl < 0) {
            if (buf.length > 4096) sock.destroy();
            break;
          }
          const line = buf.subarray(0, nl).toString("utf8");
          buf = buf.subarray(nl + 2);
          verbs.push((line.split(" ")[0] ?? "").toUpperCase());
          command(line);
        }
        if (verbs.length) conn.reads.push(verbs);
      });
    };
  }

  const servers = { smtp: net.createServer(handler("smtp", false)), lmtp: net.createServer(handler("lmtp", true)) };
  const ports = {};
  for (const [name, server] of Object.entries(servers)) {
    ports[name] = await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(server.address().port));
    });
  }
  return {
    ports,
    state: () => ({ connections: connections.map((c) => ({ ...c, reads: c.reads.map((r) => r.slice()), commands: c.commands.slice() })), messages: messages.slice() }),
    close: () => {
      for (const s of sockets) s.destroy();
      return Promise.all(Object.values(servers).map((s) => new Promise((r) => s.close(r))));
    },
  };
}
