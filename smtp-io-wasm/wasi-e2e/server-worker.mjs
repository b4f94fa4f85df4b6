// The loopback SMTP servers in a worker thread (its own event loop keeps serving while the main
// thread is blocked inside a component call). Protocol with the parent:
//   parent -> worker: { key, cert, user, pass } once (workerData), then "state" or "close"
//   worker -> parent: { ports } when listening, then { messages, events } for each "state"
//                     (each message's data as base64: a Buffer would arrive as a bare Uint8Array)
import { parentPort, workerData } from "node:worker_threads";
import { startSmtpServers } from "./smtp-server.mjs";

const servers = await startSmtpServers(workerData);
parentPort.postMessage({ ports: servers.ports });
parentPort.on("message", async (msg) => {
  if (msg === "state") {
    const messages = servers.messages.map((m) => ({ ...m, data: m.data.toString("base64") }));
    parentPort.postMessage({ messages, events: servers.events });
  } else if (msg === "close") {
    await servers.close();
    parentPort.postMessage({ closed: true });
    parentPort.close();
  }
});
