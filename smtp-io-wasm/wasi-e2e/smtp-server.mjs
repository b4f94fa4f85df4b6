// The loopback SMTP servers of the WASI end-to-end test: the shared server of
// ../e2e-common/smtp-server.mjs (what every listener does, what it records). They run in a
// worker thread (see server-worker.mjs): a component call under jco blocks the main thread
// while the guest waits in wasi:io/poll, so a server on the main thread would never answer.
//
// Listeners (each on a free port of 127.0.0.1; the certificate names "localhost"): the common
// ones (plain, starttls, implicit, inject, silent, slowTls) and
//   scram       TLS from the first byte; only AUTH SCRAM-SHA-256-PLUS and SCRAM-SHA-256 offered,
//               the -PLUS channel binding checked against this TLS session's tls-exporter
//   disconnect  plaintext, no AUTH; drops the connection (no reply) when it reads MAIL FROM
//   lost        plaintext, no AUTH; drops the connection without answering a message's end
//   refusing    plaintext, no AUTH; refuses every message at its end (554)
// and `ports.closed`, a port that refuses connections.

import { commonListeners, startSmtpServers as start } from "../e2e-common/smtp-server.mjs";

/** `{ key, cert, user, pass }` -> `{ ports, messages, events, connections, close() }`. */
export const startSmtpServers = (settings) =>
  start({
    ...settings,
    banner: "wasi-e2e",
    listeners: {
      ...commonListeners,
      scram: { auth: true, implicit: true, scram: true },
      disconnect: { dropAtMail: true },
      lost: { dropAtEnd: true },
      refusing: { refuseAtEnd: true },
    },
    closedPort: true,
  });
