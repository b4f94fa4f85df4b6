// nodemailer's smtp-server as the XOAUTH2 server of the Worker's end-to-end test (our own
// server of ../e2e-common speaks PLAIN, LOGIN and SCRAM only): STARTTLS, then AUTH PLAIN LOGIN
// XOAUTH2 required before MAIL. XOAUTH2 accepts `user` with `token` and answers anything else
// with RFC 6749's JSON error (then 535). Records each message: envelope, AUTH user and
// mechanism, and the exact bytes. `connections` counts TCP connections.
import { SMTPServer } from "smtp-server";

/** `{ key, cert, user, pass, token }` -> `{ port, messages, connections(), close() }`. */
export async function startOAuthServer({ key, cert, user, pass, token }) {
  const messages = [];
  let connections = 0;
  const server = new SMTPServer({
    name: "localhost",
    banner: "e2e oauth",
    key,
    cert,
    authMethods: ["PLAIN", "LOGIN", "XOAUTH2"],
    authOptional: false,
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, session, callback) {
      const ok =
        auth.method === "XOAUTH2"
          ? auth.username === user && auth.accessToken === token
          : auth.username === user && auth.password === pass;
      if (ok) {
        session.e2eAuthMethod = auth.method;
        return callback(null, { user: auth.username });
      }
      if (auth.method === "XOAUTH2") {
        return callback(null, { data: { status: "401", schemes: "bearer", scope: "https://mail.example.com/" } });
      }
      const err = new Error("5.7.8 Authentication credentials invalid");
      err.responseCode = 535;
      callback(err);
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        const e = session.envelope;
        messages.push({
          from: e.mailFrom ? e.mailFrom.address : null,
          to: e.rcptTo.map((r) => r.address),
          authUser: session.user ?? null,
          authMethod: session.e2eAuthMethod ?? null,
          tls: session.secure,
          data: Buffer.concat(chunks),
        });
        callback(null, `OK: queued as O${messages.length}`);
      });
    },
  });
  server.on("error", () => {});
  const port = await new Promise((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.server.address().port));
  });
  return {
    port,
    messages,
    connections: () => connections,
    close: () =>
      Promise.race([new Promise((r) => server.close(r)), new Promise((r) => setTimeout(r, 2000).unref())]),
  };
}
