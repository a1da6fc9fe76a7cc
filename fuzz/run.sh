#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [PROTO_SECONDS] — runs the capture and wire fuzz targets for SECONDS
# (default 60) each, seeded with the shared capture corpus (../../shared/corpus, damaged files
# included), then the protocol targets (dns, http, tls) for PROTO_SECONDS (default SECONDS)
# each, seeded with the DNS, HTTP and TLS payloads of the test captures (seeds.py, with tshark).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
proto_secs=${2:-$secs}
export RUSTC_BOOTSTRAP=1
shared=../../shared/corpus
mkdir -p corpus/capture_reader corpus/capture_read_ahead corpus/wire_decode corpus/capture_artefacts
if [ -d "$shared" ]; then
  cp -n "$shared"/*.pcap "$shared"/*.pcapng "$shared"/damaged/*.pcap* corpus/capture_reader/ 2>/dev/null || true
  # the read-ahead target reads its first byte as the read size, the rest as the file
  for f in "$shared"/*.pcap "$shared"/*.pcapng "$shared"/damaged/*.pcap*; do
    [ -f "$f" ] || continue
    dst=corpus/capture_read_ahead/$(basename "$f")
    [ -e "$dst" ] || { printf '\x03' > "$dst"; cat "$f" >> "$dst"; }
  done
fi
for t in capture_reader capture_read_ahead wire_decode capture_artefacts; do
  echo "== $t for ${secs}s"
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 2>&1 | tail -n 4
done
mkdir -p corpus/dns corpus/http corpus/tls
if command -v tshark >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 && ! ls corpus/http/seed-* >/dev/null 2>&1; then
  caps=(../tests/data/*.pcap* ../crates/netcase-proto/tests/data/*.pcap)
  if [ -d "$shared" ]; then caps+=("$shared"/*.pcap "$shared"/*.pcapng); fi
  python3 seeds.py "${caps[@]}" || echo "seeds.py failed: the protocol targets start from scratch"
fi
for t in dns http tls; do
  echo "== $t for ${proto_secs}s"
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$proto_secs" -max_len=4096 -rss_limit_mb=2048 2>&1 | tail -n 4
done
