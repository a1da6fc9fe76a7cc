//! What a TLS handshake shows without decryption: the ClientHello's server name (SNI) and
//! ALPN list, the ServerHello's version, and when each side starts sending encrypted
//! application data — enough to split a slow HTTPS call into connect / TLS / first byte.
//!
//! Handshake time is measured from the ClientHello to the client's first application-data
//! record after the ServerHello (TLS 1.3: the record carrying the client's Finished; TLS 1.2:
//! the first request bytes, after the server's Finished). The first server application-data
//! record after that is taken as the first response byte (TLS 1.3 servers may send session
//! tickets first, which makes that an under-estimate).

use netcase_wire::Reader;
use serde::Serialize;

/// TLS facts of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// Frame that completed the ClientHello.
    pub client_hello_frame: Option<u64>,
    /// Its time, ns since the epoch.
    pub client_hello_ts_ns: Option<i64>,
    /// Server name indication.
    pub sni: Option<String>,
    /// ALPN protocols offered by the client.
    pub alpn: Vec<String>,
    /// The ClientHello's legacy version (0x0303 for TLS 1.2 and 1.3).
    pub client_version: Option<u16>,
    /// Frame of the first server handshake record (the ServerHello).
    pub server_hello_frame: Option<u64>,
    /// Its time.
    pub server_hello_ts_ns: Option<i64>,
    /// The version the server chose (supported_versions when present), e.g. 0x0304.
    pub version: Option<u16>,
    /// ALPN protocol the ServerHello selected (TLS 1.2; TLS 1.3 encrypts it).
    pub server_alpn: Option<String>,
    /// First client application-data record after the ServerHello.
    pub client_app_data_ts_ns: Option<i64>,
    /// First server application-data record after the client's first one.
    pub server_app_data_ts_ns: Option<i64>,
    /// Alert records seen (either side).
    pub alerts: u32,
}

impl TlsInfo {
    /// ClientHello to the client's first encrypted application record, ns.
    pub fn handshake_ns(&self) -> Option<i64> {
        Some(self.client_app_data_ts_ns? - self.client_hello_ts_ns?)
    }
    /// Human name of the negotiated version.
    pub fn version_name(&self) -> Option<&'static str> {
        Some(match self.version? {
            0x0300 => "SSL 3.0",
            0x0301 => "TLS 1.0",
            0x0302 => "TLS 1.1",
            0x0303 => "TLS 1.2",
            0x0304 => "TLS 1.3",
            _ => "unknown",
        })
    }
}

/// Does `b` start like a TLS handshake record (ClientHello)?
pub(crate) fn looks_like_client_hello(b: &[u8]) -> bool {
    matches!(b, [0x16, 0x03, 0..=4, _, _, 0x01, ..] | [0x16, 0x03, 0..=4])
}

const MAX_HELLO: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Walker {
    hdr: [u8; 5],
    hdr_len: u8,
    remaining: usize,
    rtype: u8,
    records: u32,
    /// Collects the first handshake message body (ClientHello / ServerHello).
    hello: Vec<u8>,
    hello_done: bool,
}

/// Per-connection TLS record walker (both directions).
#[derive(Debug, Default)]
pub(crate) struct TlsState {
    dirs: [Walker; 2],
    pub(crate) info: TlsInfo,
}

impl TlsState {
    /// Feeds in-order bytes from the client (`dir == 0`) or the server (`dir == 1`).
    /// Returns false once nothing more is to be learnt.
    pub(crate) fn feed(&mut self, dir: usize, mut data: &[u8], frame: u64, ts_ns: i64) -> bool {
        while !data.is_empty() {
            let Some(w) = self.dirs.get_mut(dir) else { return false };
            if w.remaining == 0 {
                // Record header.
                while w.hdr_len < 5 {
                    let Some((&b, rest)) = data.split_first() else { return true };
                    if let Some(slot) = w.hdr.get_mut(usize::from(w.hdr_len)) {
                        *slot = b;
                    }
                    w.hdr_len += 1;
                    data = rest;
                }
                w.hdr_len = 0;
                let [rtype, major, _minor, len_hi, len_lo] = w.hdr;
                w.rtype = rtype;
                w.remaining = usize::from(u16::from_be_bytes([len_hi, len_lo]));
                w.records = w.records.saturating_add(1);
                if !(20..=24).contains(&rtype) || major != 3 {
                    return false; // not TLS (any more)
                }
                self.record_start(dir, frame, ts_ns);
                if w_records(&self.dirs) > 64 {
                    return false;
                }
                if self.info.server_app_data_ts_ns.is_some() {
                    return false;
                }
                continue;
            }
            let (body, rest) = data.split_at_checked(w.remaining.min(data.len())).unwrap_or((data, &[]));
            w.remaining = w.remaining.saturating_sub(body.len());
            data = rest;
            if w.rtype == 22 && !w.hello_done {
                let room = MAX_HELLO.saturating_sub(w.hello.len());
                w.hello.extend_from_slice(body.get(..room.min(body.len())).unwrap_or(&[]));
                let need = match w.hello.get(1..4) {
                    Some(&[a, b, c]) => 4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)),
                    _ => usize::MAX,
                };
                if w.hello.len() >= need || w.hello.len() >= MAX_HELLO {
                    w.hello_done = true;
                    let hello = std::mem::take(&mut w.hello);
                    if dir == 0 {
                        self.info.client_hello_frame = Some(frame);
                        self.info.client_hello_ts_ns = Some(ts_ns);
                        parse_hello(&hello, true, &mut self.info);
                    } else {
                        parse_hello(&hello, false, &mut self.info);
                    }
                }
            }
        }
        true
    }

    fn record_start(&mut self, dir: usize, frame: u64, ts_ns: i64) {
        let rtype = self.dirs.get(dir).map_or(0, |w| w.rtype);
        let i = &mut self.info;
        if rtype == 21 {
            i.alerts += 1;
        }
        if dir == 1 && rtype == 22 && i.server_hello_frame.is_none() {
            i.server_hello_frame = Some(frame);
            i.server_hello_ts_ns = Some(ts_ns);
        }
        if rtype == 23 {
            if dir == 0 && i.server_hello_frame.is_some() && i.client_app_data_ts_ns.is_none() {
                i.client_app_data_ts_ns = Some(ts_ns);
            } else if dir == 1 && i.client_app_data_ts_ns.is_some() && i.server_app_data_ts_ns.is_none() {
                i.server_app_data_ts_ns = Some(ts_ns);
            }
        }
    }
}

fn w_records(d: &[Walker; 2]) -> u32 {
    d.iter().fold(0, |n, w| n.saturating_add(w.records))
}

/// Reads a ClientHello handshake message into `info`: its legacy version, the server name
/// (SNI) and the ALPN list. `msg` is the message as it stands after the 5-byte record header
/// (type 1, a 24-bit length, the body), possibly cut short. `None` when it is no ClientHello
/// or ends before its extensions do; what was read before that stays in `info`, as it does
/// for a capture. Never panics, whatever the bytes.
pub fn read_client_hello(msg: &[u8], info: &mut TlsInfo) -> Option<()> {
    parse_hello(msg, true, info)
}

/// Reads a ServerHello handshake message (type 2) into `info`: the version the server chose
/// (supported_versions when present) and its ALPN choice. Otherwise as
/// [`read_client_hello`].
pub fn read_server_hello(msg: &[u8], info: &mut TlsInfo) -> Option<()> {
    parse_hello(msg, false, info)
}

/// Parses a ClientHello (`client`) or ServerHello handshake message into `info`.
fn parse_hello(msg: &[u8], client: bool, info: &mut TlsInfo) -> Option<()> {
    let mut c = Reader::new(msg);
    let htype = c.u8()?;
    c.skip(3)?;
    if (client && htype != 1) || (!client && htype != 2) {
        return None;
    }
    let legacy = c.u16_be()?;
    c.skip(32)?; // random
    c.u8_prefixed()?; // session id
    if client {
        info.client_version = Some(legacy);
        c.u16_be_prefixed()?; // cipher suites
        c.u8_prefixed()?; // compression methods
    } else {
        info.version = Some(legacy);
        c.u16_be()?; // cipher suite
        c.u8()?; // compression
    }
    let mut ext = Reader::new(c.u16_be_prefixed()?);
    while !ext.is_empty() {
        let et = ext.u16_be()?;
        let mut body = Reader::new(ext.u16_be_prefixed()?);
        match et {
            0 if client => {
                let mut list = Reader::new(body.u16_be_prefixed()?);
                while !list.is_empty() {
                    let kind = list.u8()?;
                    let name = list.u16_be_prefixed()?;
                    if kind == 0 && info.sni.is_none() {
                        info.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            16 => {
                let mut list = Reader::new(body.u16_be_prefixed()?);
                while !list.is_empty() {
                    let p = String::from_utf8_lossy(list.u8_prefixed()?).into_owned();
                    if client {
                        info.alpn.push(p);
                    } else {
                        info.server_alpn = Some(p);
                    }
                }
            }
            43 if !client => {
                info.version = Some(body.u16_be()?);
            }
            _ => {}
        }
    }
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ClientHello record with SNI and ALPN.
    pub(crate) fn client_hello(sni: &str, alpn: &[&str]) -> Vec<u8> {
        let mut ext = Vec::new();
        let mut sn = vec![0u8];
        sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        sn.extend_from_slice(sni.as_bytes());
        ext.extend_from_slice(&0u16.to_be_bytes());
        ext.extend_from_slice(&((sn.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sn);
        let mut al = Vec::new();
        for a in alpn {
            al.push(a.len() as u8);
            al.extend_from_slice(a.as_bytes());
        }
        ext.extend_from_slice(&16u16.to_be_bytes());
        ext.extend_from_slice(&((al.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(al.len() as u16).to_be_bytes());
        ext.extend_from_slice(&al);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn hello_parsers_keep_the_fields_read_before_a_cut() {
        let rec = client_hello("a.example", &["h2"]);
        let msg = &rec[5..];
        let mut info = TlsInfo::default();
        assert_eq!(read_client_hello(msg, &mut info), Some(()));
        assert_eq!((info.sni.as_deref(), info.alpn.as_slice()), (Some("a.example"), &["h2".to_string()][..]));
        // Cut by one byte: the extensions block no longer fits its length, so none is read;
        // the version before it stays.
        let mut info = TlsInfo::default();
        assert_eq!(read_client_hello(&msg[..msg.len() - 1], &mut info), None);
        assert_eq!((info.client_version, info.sni.as_deref()), (Some(0x0303), None));
        // Not a ServerHello.
        assert_eq!(read_server_hello(msg, &mut TlsInfo::default()), None);
        // A ServerHello with supported_versions (TLS 1.3).
        let mut sh = vec![2, 0, 0, 0, 3, 3];
        sh.extend_from_slice(&[0; 32]);
        sh.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 3, 4]);
        let mut info = TlsInfo::default();
        assert_eq!(read_server_hello(&sh, &mut info), Some(()));
        assert_eq!(info.version_name(), Some("TLS 1.3"));
    }

    #[test]
    fn reads_sni_and_alpn_across_segments() {
        let rec = client_hello("api.example.com", &["h2", "http/1.1"]);
        assert!(looks_like_client_hello(&rec));
        let mut t = TlsState::default();
        let (a, b) = rec.split_at(20);
        assert!(t.feed(0, a, 4, 10));
        assert!(t.feed(0, b, 5, 11));
        assert_eq!(t.info.sni.as_deref(), Some("api.example.com"));
        assert_eq!(t.info.alpn, vec!["h2", "http/1.1"]);
        assert_eq!(t.info.client_hello_frame, Some(5));
        t.feed(1, &[0x16, 3, 3, 0, 1, 2], 6, 20);
        t.feed(0, &[0x17, 3, 3, 0, 1, 0], 7, 30);
        t.feed(1, &[0x17, 3, 3, 0, 1, 0], 8, 40);
        assert_eq!(t.info.handshake_ns(), Some(19));
        assert_eq!(t.info.server_app_data_ts_ns, Some(40));
    }
}
