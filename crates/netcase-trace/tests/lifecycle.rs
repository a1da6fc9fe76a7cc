//! The tracer detaches on every way out: normal return, panic, and a stop signal (root).

mod common;

use common::{can_trace, SERIAL};
use netcase_trace::{DropTraceOptions, DropTracer, StopOnSignals, TcpFilter, TcpTracer};
use std::time::{Duration, Instant};

/// Open perf event descriptors of this process.
fn perf_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("perf_event")))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn detaches_after_a_normal_run() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = perf_fds();
    let t = TcpTracer::open(TcpFilter::default(), Default::default()).expect("attach");
    assert!(perf_fds() > before, "events are open while tracing");
    let r = t.run(Some(Duration::from_millis(200)), &|| false).expect("run");
    assert!(r.duration_s >= 0.19);
    assert_eq!(perf_fds(), before);
}

#[test]
fn detaches_on_panic() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = perf_fds();
    let r = std::panic::catch_unwind(|| {
        let mut t = DropTracer::open(DropTraceOptions::default()).expect("attach");
        t.start().expect("start");
        assert!(perf_fds() > before);
        panic!("boom while tracing");
    });
    assert!(r.is_err());
    assert_eq!(perf_fds(), before);
}

#[test]
fn sigint_stops_the_trace_early() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let stop = StopOnSignals::install().expect("handler");
    let t = DropTracer::open(DropTraceOptions::default()).expect("attach");
    let pid = std::process::id().to_string();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::process::Command::new("kill").args(["-INT", &pid]).status();
    });
    let start = Instant::now();
    let r = t.run(Some(Duration::from_secs(20)), &|| stop.requested()).expect("run");
    killer.join().expect("killer");
    assert!(stop.requested());
    assert!(start.elapsed() < Duration::from_secs(5), "stopped after {:?}", start.elapsed());
    assert!(r.duration_s < 5.0);
}
