//! The per-segment path allocates nothing once a message is under way: body segments of an
//! upload (after a `100 Continue`) and of a download cost no allocation (completing a
//! transaction may: it moves to the output).

use netcase_proto::tcp_flags::{ACK, SYN};
use netcase_proto::ProtoTracker;
use netcase_testkit::counting::{allocations, serial, CountingAlloc};
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn body_segments_allocate_nothing() {
    let _g = serial();
    let mut t = ProtoTracker::new();
    let c: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let s: SocketAddr = "10.0.0.9:80".parse().unwrap();
    let (mut cs, mut ss, mut f) = (1000u32, 5000u32, 0u64);
    let chunk = [b'x'; 1000];
    const N: u32 = 5000;
    let mut send = |t: &mut ProtoTracker, from_client: bool, flags: u16, data: &[u8]| {
        f += 1;
        let (src, dst, seq, ack) = if from_client { (c, s, cs, ss) } else { (s, c, ss, cs) };
        t.tcp(f, f as i64 * 1000, src, dst, seq, ack, flags, data, data.len() as u32, None);
        let adv = data.len() as u32 + u32::from(flags & SYN != 0);
        if from_client {
            cs = cs.wrapping_add(adv);
        } else {
            ss = ss.wrapping_add(adv);
        }
    };
    send(&mut t, true, SYN, b"");
    send(&mut t, false, SYN | ACK, b"");
    send(&mut t, true, ACK, b"");
    let head = format!("PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", N * 1000);
    send(&mut t, true, ACK, head.as_bytes());
    send(&mut t, false, ACK, b"HTTP/1.1 100 Continue\r\n\r\n");
    send(&mut t, true, ACK, &chunk);
    // The count is process-wide and the test harness may allocate on its own thread now and
    // then: count per window of 1000 segments; a per-segment allocation shows in every one.
    let mut windows = Vec::with_capacity(16);
    let mut before = allocations();
    for i in 1..N {
        send(&mut t, true, ACK, &chunk);
        send(&mut t, false, ACK, b"");
        if i % 500 == 0 {
            windows.push(allocations() - before);
            before = allocations();
        }
    }
    check(&windows, "upload");
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", N * 1000);
    send(&mut t, false, ACK, head.as_bytes());
    send(&mut t, false, ACK, &chunk);
    windows.clear();
    let mut before = allocations();
    for i in 2..N {
        send(&mut t, false, ACK, &chunk);
        send(&mut t, true, ACK, b"");
        if i % 500 == 0 {
            windows.push(allocations() - before);
            before = allocations();
        }
    }
    check(&windows, "download");
    // The last one completes the transaction, which moves to the output (may allocate).
    send(&mut t, false, ACK, &chunk);
    let out = t.finish();
    assert_eq!(out.http.len(), 1);
    let h = &out.http[0];
    assert_eq!(
        (h.status, h.interim_responses(), h.req_body_bytes, h.resp_body_bytes),
        (Some(200), 1, 5_000_000, 5_000_000)
    );
}

fn check(windows: &[u64], what: &str) {
    assert!(windows.len() >= 8, "{what}: {windows:?}");
    assert!(
        windows.iter().filter(|&&w| w == 0).count() >= windows.len() - 2,
        "{what} body segments allocated: {windows:?}"
    );
}
