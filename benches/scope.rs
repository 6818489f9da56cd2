//! Scope engine benchmark (to be written).
fn main() {}
