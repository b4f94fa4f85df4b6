//! smtp-send: placeholder, being written.
fn main() {}
