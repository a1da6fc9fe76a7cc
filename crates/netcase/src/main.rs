//! netcase binary (being built).
fn main() {}
