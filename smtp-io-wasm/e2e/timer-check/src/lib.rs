//! What `check.mjs` runs in node: timers of `smtp_io_wasm` started and dropped before they fire,
//! as the client drops one each time a read or a write ends first.

use core::time::Duration;

use wasm_bindgen::prelude::wasm_bindgen;

/// Start `count` one-minute sleeps and drop each at once.
#[wasm_bindgen]
pub fn drop_sleeps(count: u32) {
    for _ in 0..count {
        drop(smtp_io_wasm::sleep(Duration::from_secs(60)));
    }
}
