//! Zero-copy, panic-free decoding of the headers netcase reads from captures.
//!
//! [`decode`] takes one captured frame and its link type and returns a [`Packet`] that borrows
//! the frame: link-layer facts, the (outermost) IP header, and the transport header with its
//! payload. Nothing allocates and nothing panics, whatever the bytes: every read goes through
//! [`Reader`], which checks lengths. Oddities that are evidence (a bad window scale, a zero
//! IP total length from segmentation offload, a truncated payload) are kept, not rejected.
//!
//! Supported link types: Ethernet (with 802.1Q / 802.1ad / QinQ tags), Linux cooked capture
//! v1 and v2 (SLL, SLL2), raw IPv4/IPv6, BSD null/loopback. IPv4 with options and fragments,
//! IPv6 with extension headers, TCP with all options, UDP, ICMP and ICMPv6 (errors that quote
//! a TCP or UDP header keep the quoted addresses and ports so they can be tied to their flow).

#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used))]

pub mod checksum;
mod decode;
mod reader;
mod types;

pub use decode::decode;
pub use reader::Reader;
pub use types::*;
