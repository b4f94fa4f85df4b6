// The loopback SMTP servers in a worker thread (its own event loop keeps serving while the main
// thread is blocked inside a component call). Protocol with the parent:
//   parent -> worker: { key, cert, user, pass } once (workerData), then "state" or "close"
//   worker -> parent: { ports } when listening, then { messages, events } for each "state"
import { parentPort, workerData } from "node:worker_threads";
import { startSmtpServers } from "./smtp-server.mjs";

const servers = await startSmtpServers(workerData);
parentPort.postMessage({ ports: servers.ports });
parentPort.on("message", async (msg) => {
  if (msg === "state") {
    parentPort.postMessage({ messages: servers.messages, events: servers.events });
  } else if (msg === "close") {
    await servers.close();
    parentPort.postMessage({ closed: true });
    parentPort.close();
  }
});
