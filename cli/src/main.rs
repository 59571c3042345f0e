//! The `ollmlx` binary.
fn main() {}
