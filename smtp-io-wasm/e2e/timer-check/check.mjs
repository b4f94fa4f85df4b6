// A Workers timer dropped before it fires must keep nothing alive: the client starts and drops
// one for nearly every read and write, so a few hundred bytes kept each time would fill the
// isolate's memory within some thousands of messages.
//
// Usage: node --expose-gc check.mjs DIR   (DIR: wasm-bindgen --target nodejs output)
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const timers = require(path.resolve(process.argv[2], "smtp_timer_check.js"));

const ROUND = 100_000;
const settle = () => new Promise((resolve) => setImmediate(resolve));

async function heapAfter(round) {
  timers.drop_sleeps(ROUND);
  // What a dropped timer settles runs as microtasks; then collect.
  await settle();
  await settle();
  global.gc();
  await settle();
  const used = process.memoryUsage().heapUsed;
  console.log(`after ${(round + 1) * ROUND} dropped timers: heap ${(used / 1e6).toFixed(1)} MB`);
  return used;
}

if (typeof global.gc !== "function") {
  console.error("run with node --expose-gc");
  process.exit(2);
}
const first = await heapAfter(0);
let last = first;
for (let round = 1; round < 4; round++) last = await heapAfter(round);
// Kept alive, 300,000 more timers would hold well over 100 MB; released, the heap stays flat.
const grown = (last - first) / 1e6;
if (grown > 20) {
  console.error(`FAILED: the heap grew by ${grown.toFixed(1)} MB over ${3 * ROUND} dropped timers`);
  process.exit(1);
}
console.log(`ok: the heap grew by ${grown.toFixed(1)} MB over ${3 * ROUND} dropped timers`);
