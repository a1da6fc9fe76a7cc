//! One module per subcommand. Each has an `Args` (clap) and a `run` returning the exit code.

pub mod cases;
pub mod check;
pub mod drops;
pub mod lab;
pub mod pcap;
pub mod trace;
