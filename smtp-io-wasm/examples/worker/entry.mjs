// The Worker's entry module: the Rust `fetch` (from the wasm-bindgen output in build/) as the
// default export's fetch handler. `env` carries the vars and secrets (see README.md).
import { fetch as handle } from "./build/index.js";

export default {
  async fetch(request, env, _ctx) {
    return handle(request, env);
  },
};
