// What test.mjs and interop.mjs share to call the component (transpiled by jco) through its WIT
// interface.
import path from "node:path";
import { filesystem } from "@bytecodealliance/preview2-shim";

/** Call something that returns a WIT `result`: { ok } or { err } (the thrown payload); for a
 * send's `send-failure`, { err, fate }: its error, and what became of the message. */
export function call(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e && e.payload !== undefined) return failure(e.payload);
    throw e;
  }
}

/** A payload as `call` gives it: a send-failure's error and fate apart. */
export function failure(payload) {
  if (payload && payload.fate !== undefined && payload.error !== undefined) {
    return { err: payload.error, fate: payload.fate };
  }
  return { err: payload };
}

/** JSON that shows a WIT value's bigints (as `<n>n`). */
export const json = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x));

/** Per-message options that ask for nothing. */
export const NO_OPTIONS = { requireTls: false, acceptPartial: false };

/** An input-stream over a file, made by the same preview2 shim the component runs on. */
export function fileStream(file) {
  filesystem._setPreopens({ "/files": path.dirname(file) });
  const [[dir]] = filesystem.preopens.getDirectories();
  return dir.openAt({ symlinkFollow: false }, path.basename(file), {}, { read: true }).readViaStream(0n);
}
