//! `skb:kfree_skb`: every packet the kernel frees as dropped, with the reason and the
//! function that dropped it, aggregated by reason, location, protocol and layer.
//!
//! The sample carries no packet headers and no network namespace, so the aggregate says
//! *where* and *why* the host drops, not *whose* packets; reading headers needs BPF, which
//! netcase does without. The namespace's own counters for the same interval are read beside
//! the trace (see [`crate::counters`]).

use crate::counters::{self, CounterDelta};
use crate::error::Result;
use crate::format::{EventFormat, SymbolTable};
use crate::kallsyms::Kallsyms;
use crate::layer::{classify, Layer};
use crate::record::{common_type, Slot};
use crate::session::{Session, SessionOptions, SessionStats};
use crate::tracefs::Tracefs;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Decodes kfree_skb records of the running kernel (offsets and reason names from its
/// format file).
#[derive(Debug, Clone)]
pub struct KfreeSkbDecoder {
    id: u16,
    location: Slot,
    protocol: Option<Slot>,
    reason: Option<Slot>,
    reasons: SymbolTable,
}

/// One decoded drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropSample {
    /// Kernel address of the call that freed the packet.
    pub location: u64,
    /// `skb->protocol` (an ethertype, host order), 0 when unknown.
    pub protocol: u16,
    /// The `enum skb_drop_reason` value, when the kernel has the field (5.17+).
    pub reason: Option<u32>,
}

impl KfreeSkbDecoder {
    /// Builds the decoder from the `skb/kfree_skb` format.
    pub fn new(fmt: &EventFormat) -> Result<Self> {
        let ev = "skb/kfree_skb";
        Ok(KfreeSkbDecoder {
            id: fmt.id,
            location: Slot::required(fmt, ev, "location")?,
            protocol: Slot::optional(fmt, "protocol"),
            reason: Slot::optional(fmt, "reason"),
            reasons: fmt.symbols("reason"),
        })
    }

    /// The tracepoint id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The kernel's reason names.
    pub fn reasons(&self) -> &SymbolTable {
        &self.reasons
    }

    /// Decodes one raw record; `None` when it is another event's or truncated.
    pub fn decode(&self, raw: &[u8]) -> Option<DropSample> {
        if common_type(raw)? != self.id {
            return None;
        }
        Some(DropSample {
            location: self.location.uint(raw)?,
            protocol: self.protocol.and_then(|s| s.uint(raw)).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            reason: match self.reason {
                Some(s) => Some(u32::try_from(s.uint(raw)?).ok()?),
                None => None,
            },
        })
    }
}

/// A fixed-capacity count of drops by (reason, location, protocol).
#[derive(Debug, Clone)]
pub struct DropAggregator {
    table: HashMap<(Option<u32>, u64, u16), u64>,
    capacity: usize,
    total: u64,
    unkeyed: u64,
    undecoded: u64,
}

impl Default for DropAggregator {
    fn default() -> Self {
        Self::with_capacity(DropAggregator::DEFAULT_CAPACITY)
    }
}

impl DropAggregator {
    /// Distinct (reason, location, protocol) keys kept by default.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// An aggregator that keeps at most `capacity` distinct keys; drops with further keys are
    /// counted in the total and in `unkeyed`.
    pub fn with_capacity(capacity: usize) -> Self {
        DropAggregator {
            table: HashMap::with_capacity(capacity.min(4096)),
            capacity,
            total: 0,
            unkeyed: 0,
            undecoded: 0,
        }
    }

    /// Counts one drop.
    pub fn add(&mut self, s: DropSample) {
        self.total += 1;
        let key = (s.reason, s.location, s.protocol);
        if let Some(c) = self.table.get_mut(&key) {
            *c += 1;
        } else if self.table.len() < self.capacity {
            self.table.insert(key, 1);
        } else {
            self.unkeyed += 1;
        }
    }

    /// Counts a kfree_skb record that did not decode.
    pub fn add_undecoded(&mut self) {
        self.undecoded += 1;
    }

    /// Drops counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Builds the report: names reasons with `reasons`, locations with `syms`.
    pub fn report(&self, reasons: &SymbolTable, syms: &Kallsyms, duration: Duration) -> DropReport {
        let secs = duration.as_secs_f64();
        let rate = |c: u64| if secs > 0.0 { c as f64 / secs } else { 0.0 };
        let mut entries: Vec<DropEntry> = self
            .table
            .iter()
            .map(|(&(code, addr, proto), &count)| {
                let reason = reason_name(reasons, code);
                let loc = syms.resolve(addr);
                let layer = classify(&reason, &loc.symbol);
                DropEntry {
                    reason,
                    reason_code: code,
                    location: loc.to_string(),
                    symbol: loc.symbol,
                    protocol: ethertype_name(proto),
                    layer,
                    count,
                    per_s: rate(count),
                }
            })
            .collect();
        entries.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)).then_with(|| a.location.cmp(&b.location))
        });

        let group = |key: &dyn Fn(&DropEntry) -> String| -> Vec<(String, u64, &DropEntry)> {
            let mut m: BTreeMap<String, (u64, &DropEntry)> = BTreeMap::new();
            for e in &entries {
                let slot = m.entry(key(e)).or_insert((0, e));
                slot.0 += e.count;
            }
            let mut v: Vec<_> = m.into_iter().map(|(k, (c, top))| (k, c, top)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v
        };
        // `entries` is sorted by count, so the first entry seen for a key is its largest.
        let by_reason = group(&|e| e.reason.clone())
            .into_iter()
            .map(|(reason, count, top)| ReasonRow {
                reason,
                reason_code: top.reason_code,
                count,
                per_s: rate(count),
                layer: top.layer,
                top_location: top.location.clone(),
            })
            .collect();
        let by_location = group(&|e| e.location.clone())
            .into_iter()
            .map(|(location, count, top)| LocationRow {
                location,
                symbol: top.symbol.clone(),
                count,
                per_s: rate(count),
                layer: top.layer,
                top_reason: top.reason.clone(),
            })
            .collect();
        let by_protocol = group(&|e| e.protocol.clone())
            .into_iter()
            .map(|(protocol, count, _)| ProtocolRow { protocol, count })
            .collect();
        let mut layers: BTreeMap<Layer, u64> = BTreeMap::new();
        for e in &entries {
            *layers.entry(e.layer).or_default() += e.count;
        }
        let mut by_layer: Vec<LayerRow> =
            layers.into_iter().map(|(layer, count)| LayerRow { layer, count, per_s: rate(count) }).collect();
        by_layer.sort_by(|a, b| b.count.cmp(&a.count).then(a.layer.cmp(&b.layer)));

        DropReport {
            kernel: String::new(),
            duration_s: secs,
            total: self.total,
            per_s: rate(self.total),
            session: SessionStats::default(),
            unkeyed: self.unkeyed,
            undecoded: self.undecoded,
            reason_names: reasons.entries.len(),
            by_reason,
            by_location,
            by_protocol,
            by_layer,
            entries,
            netns: None,
            counters: Vec::new(),
            notes: Vec::new(),
        }
    }
}

fn reason_name(reasons: &SymbolTable, code: Option<u32>) -> String {
    match code {
        Some(c) => reasons.name(u64::from(c)).map_or_else(|| format!("REASON_{c}"), str::to_owned),
        None => "UNKNOWN".to_owned(),
    }
}

/// A short name for an ethertype (`skb->protocol`).
pub fn ethertype_name(p: u16) -> String {
    match p {
        0 => "none".to_owned(),
        0x0800 => "IPv4".to_owned(),
        0x86dd => "IPv6".to_owned(),
        0x0806 => "ARP".to_owned(),
        0x8100 => "802.1Q".to_owned(),
        0x88cc => "LLDP".to_owned(),
        0x0004 => "802.2".to_owned(),
        other => format!("{other:#06x}"),
    }
}

/// Drops with one (reason, location, protocol).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DropEntry {
    /// The kernel's name of the reason (`SOCKET_RCVBUFF`); `REASON_<n>` when the format file
    /// does not name it, `UNKNOWN` on kernels without reasons.
    pub reason: String,
    /// The reason's number on this kernel (not stable across kernels).
    pub reason_code: Option<u32>,
    /// Function and offset (`__udp_queue_rcv_skb+0x1c9`).
    pub location: String,
    /// The function alone.
    pub symbol: String,
    /// Protocol of the packet (`IPv4`, `IPv6`, `ARP`, an ethertype).
    pub protocol: String,
    /// The layer it belongs to.
    pub layer: Layer,
    /// Drops.
    pub count: u64,
    /// Drops per second over the trace.
    pub per_s: f64,
}

/// Drops with one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonRow {
    /// The kernel's name of the reason.
    pub reason: String,
    /// Its number on this kernel.
    pub reason_code: Option<u32>,
    /// Drops.
    pub count: u64,
    /// Per second.
    pub per_s: f64,
    /// Layer of its largest location.
    pub layer: Layer,
    /// The location where most of them happened.
    pub top_location: String,
}

/// Drops at one location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationRow {
    /// Function and offset.
    pub location: String,
    /// Function.
    pub symbol: String,
    /// Drops.
    pub count: u64,
    /// Per second.
    pub per_s: f64,
    /// Layer (of its largest reason).
    pub layer: Layer,
    /// The reason most of them had.
    pub top_reason: String,
}

/// Drops of one protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolRow {
    /// Protocol name or ethertype.
    pub protocol: String,
    /// Drops.
    pub count: u64,
}

/// Drops in one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    /// The layer.
    pub layer: Layer,
    /// Drops.
    pub count: u64,
    /// Per second.
    pub per_s: f64,
}

/// What `netcase drops` saw: the kernel's drops over an interval, aggregated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DropReport {
    /// Kernel release.
    pub kernel: String,
    /// Seconds traced.
    pub duration_s: f64,
    /// Drops seen (host-wide).
    pub total: u64,
    /// Drops per second.
    pub per_s: f64,
    /// CPUs, samples read, samples lost (ring full), malformed records.
    pub session: SessionStats,
    /// Drops counted in `total` whose (reason, location, protocol) did not fit the table.
    pub unkeyed: u64,
    /// kfree_skb records too short to decode.
    pub undecoded: u64,
    /// How many reason names the running kernel's format file provided.
    pub reason_names: usize,
    /// By reason, largest first.
    pub by_reason: Vec<ReasonRow>,
    /// By location, largest first.
    pub by_location: Vec<LocationRow>,
    /// By protocol, largest first.
    pub by_protocol: Vec<ProtocolRow>,
    /// By layer, largest first.
    pub by_layer: Vec<LayerRow>,
    /// Every (reason, location, protocol), largest first.
    pub entries: Vec<DropEntry>,
    /// The namespace whose counters are shown (`None`: netcase's own).
    pub netns: Option<String>,
    /// Drop and error counters of that namespace that grew during the trace.
    pub counters: Vec<CounterDelta>,
    /// Things the reader should know (tracefs mounted, lost samples, hidden symbols).
    pub notes: Vec<String>,
}

impl DropReport {
    /// Drops with the reason `name` (all locations and protocols).
    pub fn reason_count(&self, name: &str) -> u64 {
        self.by_reason.iter().filter(|r| r.reason == name).map(|r| r.count).sum()
    }

    /// Drops with reason `name` in functions whose name starts with `symbol_prefix`.
    pub fn count_where(&self, reason: &str, symbol_prefix: &str) -> u64 {
        self.entries.iter().filter(|e| e.reason == reason && e.symbol.starts_with(symbol_prefix)).map(|e| e.count).sum()
    }

    /// The growth of counter `name` during the trace (0 when it did not grow).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.iter().find(|c| c.name == name).map_or(0, |c| c.delta)
    }
}

/// Options of a drop trace.
#[derive(Debug, Clone, Default)]
pub struct DropTraceOptions {
    /// Read this namespace's counters beside the trace (the trace itself is host-wide).
    pub netns: Option<String>,
    /// Ring and tick settings.
    pub session: SessionOptions,
    /// Distinct (reason, location, protocol) keys kept; 0 means the default.
    pub capacity: usize,
}

/// An attached kfree_skb tracer. Samples collect from [`DropTracer::start`] on; dropping it
/// detaches.
pub struct DropTracer {
    session: Session,
    decoder: KfreeSkbDecoder,
    agg: DropAggregator,
    opts: DropTraceOptions,
    before: counters::Counters,
    started: bool,
    notes: Vec<String>,
}

impl DropTracer {
    /// Reads the kfree_skb format from tracefs (mounting it if needed) and opens the event
    /// on every CPU, disabled.
    pub fn open(opts: DropTraceOptions) -> Result<Self> {
        let mut notes = Vec::new();
        let fmt = {
            let tfs = Tracefs::open()?;
            notes.extend(tfs.note());
            tfs.format("skb", "kfree_skb")?
        };
        let decoder = KfreeSkbDecoder::new(&fmt)?;
        if decoder.reason.is_none() {
            notes.push(
                "this kernel's kfree_skb has no reason field (added in 5.17): drops are counted by location only"
                    .into(),
            );
        } else if decoder.reasons.is_empty() {
            notes.push("the kfree_skb format names no reasons: they are shown as REASON_<n>".into());
        }
        let session = Session::open(&[&fmt], opts.session)?;
        let cap = if opts.capacity == 0 { DropAggregator::DEFAULT_CAPACITY } else { opts.capacity };
        Ok(DropTracer {
            session,
            decoder,
            agg: DropAggregator::with_capacity(cap),
            before: counters::Counters::new(),
            started: false,
            opts,
            notes,
        })
    }

    /// The decoder (reason names of the running kernel).
    pub fn decoder(&self) -> &KfreeSkbDecoder {
        &self.decoder
    }

    /// Reads the counters and enables the event: drops count from now on.
    pub fn start(&mut self) -> Result<()> {
        if !self.started {
            self.before = counters::read_counters(self.opts.netns.as_deref())?;
            self.session.start()?;
            self.started = true;
        }
        Ok(())
    }

    /// Traces until `duration` has passed since [`DropTracer::start`] or `stop()` is true,
    /// then detaches and reports.
    pub fn run(mut self, duration: Option<Duration>, stop: &dyn Fn() -> bool) -> Result<DropReport> {
        self.start()?;
        let (decoder, agg) = (&self.decoder, &mut self.agg);
        let elapsed = self.session.run(duration, stop, &mut |s| match decoder.decode(s.raw) {
            Some(d) => agg.add(d),
            None => agg.add_undecoded(),
        })?;
        let after = counters::read_counters(self.opts.netns.as_deref())?;
        let stats = self.session.stats();
        drop(self.session);
        let syms = Kallsyms::parse(&std::fs::read_to_string("/proc/kallsyms").unwrap_or_default());
        let mut r = self.agg.report(&self.decoder.reasons, &syms, elapsed);
        r.kernel = crate::session::kernel_release();
        r.session = stats;
        r.netns = self.opts.netns.clone();
        r.counters = counters::drop_deltas(&self.before, &after);
        r.notes = self.notes;
        if syms.hidden() || syms.is_empty() {
            r.notes.push("kernel addresses are hidden (kernel.kptr_restrict): locations are not named".into());
        }
        if stats.lost > 0 {
            r.notes.push(format!(
                "{} samples were lost because the rings were full: counts are lower bounds (raise --ring-pages)",
                stats.lost
            ));
        }
        if r.unkeyed > 0 {
            r.notes.push(format!("{} drops did not fit the aggregation table and count only in the total", r.unkeyed));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KFREE: &str = include_str!("../tests/data/6.18/kfree_skb.format");
    const SYMS: &str = "ffffffff81f282d0 T nf_hook_slow\nffffffff82045f90 T __udp4_lib_rcv\nffffffff820449f0 t udp_queue_rcv_one_skb\n";

    fn record(id: u16, location: u64, protocol: u16, reason: u32) -> Vec<u8> {
        let mut r = vec![0u8; 40];
        r[0..2].copy_from_slice(&id.to_ne_bytes());
        r[16..24].copy_from_slice(&location.to_ne_bytes());
        r[32..34].copy_from_slice(&protocol.to_ne_bytes());
        r[36..40].copy_from_slice(&reason.to_ne_bytes());
        r
    }

    #[test]
    fn decodes_recorded_layout() {
        let fmt = EventFormat::parse("skb/kfree_skb", KFREE).unwrap();
        let d = KfreeSkbDecoder::new(&fmt).unwrap();
        let rec = record(2310, 0xffff_ffff_8204_4a10, 0x0800, 6);
        assert_eq!(
            d.decode(&rec),
            Some(DropSample { location: 0xffff_ffff_8204_4a10, protocol: 0x0800, reason: Some(6) })
        );
        assert_eq!(d.decode(&rec[..39]), None);
        assert_eq!(d.decode(&record(7, 0, 0, 0)), None);
    }

    #[test]
    fn aggregates_by_reason_location_protocol_layer() {
        let fmt = EventFormat::parse("skb/kfree_skb", KFREE).unwrap();
        let d = KfreeSkbDecoder::new(&fmt).unwrap();
        let syms = Kallsyms::parse(SYMS);
        let mut agg = DropAggregator::default();
        for _ in 0..30 {
            agg.add(d.decode(&record(2310, 0xffff_ffff_8204_4a10, 0x0800, 6)).unwrap());
        }
        for _ in 0..10 {
            agg.add(d.decode(&record(2310, 0xffff_ffff_81f2_836a, 0x0800, 12)).unwrap());
        }
        agg.add(d.decode(&record(2310, 0xffff_ffff_8204_6000, 0x86dd, 3)).unwrap());
        agg.add(d.decode(&record(2310, 0x10, 0, 999)).unwrap());
        let r = agg.report(d.reasons(), &syms, Duration::from_secs(2));
        assert_eq!(r.total, 42);
        assert_eq!(r.per_s, 21.0);
        assert_eq!(r.by_reason[0].reason, "SOCKET_RCVBUFF");
        assert_eq!(r.by_reason[0].layer, Layer::Udp);
        assert_eq!(r.by_reason[0].top_location, "udp_queue_rcv_one_skb+0x20");
        assert_eq!(r.reason_count("NETFILTER_DROP"), 10);
        assert_eq!(r.count_where("NO_SOCKET", "__udp4"), 1);
        assert_eq!(r.reason_count("REASON_999"), 1);
        assert_eq!(r.by_location[1].location, "nf_hook_slow+0x9a");
        assert_eq!(r.by_layer[0].layer, Layer::Udp);
        assert_eq!(r.by_layer[0].count, 31);
        assert_eq!(r.by_layer[1].layer, Layer::Netfilter);
        assert_eq!(r.by_protocol[0], ProtocolRow { protocol: "IPv4".into(), count: 40 });
    }

    #[test]
    fn table_is_bounded() {
        let mut agg = DropAggregator::with_capacity(2);
        for loc in 0..10 {
            agg.add(DropSample { location: loc, protocol: 0, reason: Some(2) });
        }
        let r = agg.report(&SymbolTable::default(), &Kallsyms::default(), Duration::ZERO);
        assert_eq!((r.total, r.unkeyed, r.entries.len()), (10, 8, 2));
        assert_eq!(r.per_s, 0.0);
    }
}
