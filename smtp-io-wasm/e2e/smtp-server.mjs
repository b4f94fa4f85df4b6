// The loopback SMTP servers of the Worker's end-to-end test: the shared server of
// ../e2e-common/smtp-server.mjs (what every listener does, what it records) with its common
// listeners (plain, starttls, implicit, inject, silent, slowTls) and
//   disconnect  STARTTLS offered, no AUTH; drops the connection (no reply) when it reads MAIL FROM

import { commonListeners, startSmtpServers as start } from "../e2e-common/smtp-server.mjs";

/** `{ key, cert, user, pass }` -> `{ ports, messages, events, connections, close() }`. */
export const startSmtpServers = (settings) =>
  start({
    ...settings,
    banner: "e2e",
    listeners: { ...commonListeners, disconnect: { starttls: true, dropAtMail: true } },
  });
