//! Any bytes as a frame of any link type: the decoder never panics and its lengths stay
//! within the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_wire::{decode, LinkType, Transport};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let link = match sel % 9 {
        0 => LinkType::Ethernet,
        1 => LinkType::LinuxSll,
        2 => LinkType::LinuxSll2,
        3 => LinkType::Raw,
        4 => LinkType::Null,
        5 => LinkType::Loop,
        6 => LinkType::Ipv4,
        7 => LinkType::Ipv6,
        _ => LinkType::Other(u32::from(sel)),
    };
    let p = decode(link, frame);
    match p.transport {
        Some(Transport::Tcp(t)) => assert!(t.payload.len() <= frame.len()),
        Some(Transport::Udp(u)) => assert!(u.payload.len() <= frame.len()),
        Some(Transport::Icmp(i)) => assert!(i.body.len() <= frame.len()),
        _ => {}
    }
});
