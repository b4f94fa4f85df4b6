// The Worker's entry module: the Rust `fetch` (from the wasm-bindgen output in build/) as the
// default export's fetch handler.
import { fetch as handle } from "./build/index.js";

export default {
  async fetch(request, _env, _ctx) {
    return handle(request);
  },
};
