//! Ethernet/IPv4/TCP frames between [`CLIENT`] and [`SERVER`], built from [`Seg`]ments.

/// The TCP flag bits the segments use, as `netcase_wire` defines them.
pub use netcase_wire::tcp_flags::{ACK, FIN, PSH, RST, SYN};

/// The client's IPv4 address.
pub const CLIENT: [u8; 4] = [10, 0, 0, 1];
/// The server's IPv4 address.
pub const SERVER: [u8; 4] = [10, 0, 0, 2];
/// The client's MAC address in frames from [`frame_bytes_with_macs`].
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// The server's MAC address in frames from [`frame_bytes_with_macs`].
pub const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// One TCP segment of a test connection.
#[derive(Clone, Copy)]
pub struct Seg {
    /// Sent by the client (else by the server).
    pub from_client: bool,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// TCP flags ([`SYN`], [`ACK`], ...).
    pub flags: u16,
    /// Advertised window (unscaled).
    pub win: u16,
    /// Payload length; the payload is that many `a` bytes.
    pub len: u32,
    /// Window-scale option (kind 3), if any.
    pub wscale: Option<u8>,
    /// One SACK block (left, right), if any.
    pub sack: Option<(u32, u32)>,
    /// Capture time in microseconds.
    pub t_us: i64,
}

/// A segment with window 1000 and no options.
pub fn seg(from_client: bool, seq: u32, ack: u32, flags: u16, len: u32, t_us: i64) -> Seg {
    Seg { from_client, seq, ack, flags, win: 1000, len, wscale: None, sack: None, t_us }
}

/// The Ethernet/IPv4/TCP frame of `s` between [`CLIENT`]`:cport` and [`SERVER`]`:sport`,
/// with all-zero MAC addresses and zero checksums.
pub fn frame_bytes(s: &Seg, cport: u16, sport: u16) -> Vec<u8> {
    let mut opts = Vec::new();
    if let Some(ws) = s.wscale {
        opts.extend_from_slice(&[1, 3, 3, ws]);
    }
    if let Some((l, r)) = s.sack {
        opts.extend_from_slice(&[1, 1, 5, 10]);
        opts.extend_from_slice(&l.to_be_bytes());
        opts.extend_from_slice(&r.to_be_bytes());
    }
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let thl = 20 + opts.len();
    let total = 20 + thl + s.len as usize;
    let (src, dst, sp, dp) =
        if s.from_client { (CLIENT, SERVER, cport, sport) } else { (SERVER, CLIENT, sport, cport) };
    let mut f = vec![0u8; 14];
    f[12] = 0x08;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    f.extend_from_slice(&s.seq.to_be_bytes());
    f.extend_from_slice(&s.ack.to_be_bytes());
    f.extend_from_slice(&((((thl / 4) as u16) << 12) | s.flags).to_be_bytes());
    f.extend_from_slice(&s.win.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&opts);
    f.resize(f.len() + s.len as usize, 0x61);
    f
}

/// [`frame_bytes`] with [`CLIENT_MAC`] and [`SERVER_MAC`] as the Ethernet addresses.
pub fn frame_bytes_with_macs(s: &Seg, cport: u16, sport: u16) -> Vec<u8> {
    let mut f = frame_bytes(s, cport, sport);
    let (src, dst) = if s.from_client { (CLIENT_MAC, SERVER_MAC) } else { (SERVER_MAC, CLIENT_MAC) };
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_and_addresses() {
        let s = Seg { wscale: Some(7), sack: Some((5, 9)), ..seg(false, 1, 2, SYN | ACK, 3, 0) };
        let f = frame_bytes_with_macs(&s, 40000, 80);
        // 14 Ethernet + 20 IPv4 + 20 TCP + 16 options (4 wscale, 12 SACK) + 3 payload.
        assert_eq!(f.len(), 73);
        assert_eq!(&f[0..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 59);
        assert_eq!((&f[26..30], &f[30..34]), (&SERVER[..], &CLIENT[..]));
        assert_eq!((u16::from_be_bytes([f[34], f[35]]), u16::from_be_bytes([f[36], f[37]])), (80, 40000));
        assert_eq!(f[46] >> 4, 9);
        assert_eq!(&f[70..], b"aaa");
        assert_eq!(&frame_bytes(&s, 40000, 80)[12..], &f[12..]);
    }
}
