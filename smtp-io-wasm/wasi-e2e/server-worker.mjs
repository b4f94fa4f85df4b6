// The loopback SMTP servers in a worker thread (its own event loop keeps serving while the main
// thread is blocked inside a component call). Protocol with the parent:
//   parent -> worker: { key, cert, user, pass, token } once (workerData), then "state" or "close"
//   worker -> parent: { ports, nodePorts, featurePorts } when listening, then { messages,
//                     events, connections, node, features } for each "state" (each message's
//                     data as base64: a Buffer would arrive as a bare Uint8Array; `node`:
//                     nodemailer's counts and messages; `features`: feature-server.mjs's
//                     connections, their reads and commands, and messages)
import { parentPort, workerData } from "node:worker_threads";
import { startSmtpServers } from "./smtp-server.mjs";
import { startNodeServers } from "./node-server.mjs";
import { startFeatureServers } from "./feature-server.mjs";

const servers = await startSmtpServers(workerData);
const node = await startNodeServers(workerData);
const features = await startFeatureServers();
parentPort.postMessage({ ports: servers.ports, nodePorts: node.ports, featurePorts: features.ports });
parentPort.on("message", async (msg) => {
  if (msg === "state") {
    const messages = servers.messages.map((m) => ({ ...m, data: m.data.toString("base64") }));
    parentPort.postMessage({
      messages,
      events: servers.events,
      connections: { ...servers.connections },
      node: node.stats(),
      features: features.state(),
    });
  } else if (msg === "close") {
    await servers.close();
    await node.close();
    await features.close();
    parentPort.postMessage({ closed: true });
    parentPort.close();
  }
});
