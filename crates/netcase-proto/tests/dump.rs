//! `DUMP=path cargo test -p netcase-proto --test dump -- --nocapture` prints what netcase
//! finds in a capture (a debugging aid; does nothing without DUMP).

mod common;

#[test]
fn dump() {
    let Some(p) = std::env::var_os("DUMP") else { return };
    let (out, frames) = common::run(std::path::Path::new(&p));
    println!("{frames} frames; {:?}", out.stats);
    for t in &out.dns {
        println!(
            "dns {:?} {} -> {} id {:#06x} {:?} {} rcode {:?} q {:?} r {:?} rtt {:?} answers {}",
            t.flavor,
            t.client,
            t.server,
            t.id,
            t.name,
            t.qtype,
            t.rcode,
            t.query_frames,
            t.response_frame,
            t.response_time_ns,
            t.answers.len()
        );
    }
    for t in &out.http {
        println!(
            "http conn {:?} #{} {:?} {:?} {:?} req {:?} resp {:?} (start {:?}) status {:?} body {} time {:?}",
            t.conn,
            t.seq_on_conn,
            t.client,
            t.method,
            t.uri,
            t.request_frame,
            t.response_frame,
            t.response_start_frame,
            t.status,
            t.resp_body_bytes,
            t.http_time_ns()
        );
    }
    for c in &out.conns {
        println!("conn {:?}", c);
    }
}
