#!/usr/bin/env bash
# bench/compare.sh [CAPTURE...] — netcase's capture analysis against the read+parse floor,
# tcptrace and tshark's expert analysis, in one run, with the measuring code of
# ../shared/bench (lib.sh: warm page cache, tools alternated round after round, best wall
# time, highest peak RSS, stdout to /dev/null).
#
# Four netcase modes are timed side by side:
#   netcase         pcap F --json              everything: TCP analysis, flows, rules, DNS/HTTP/TLS
#                                              transactions, the whole JSON document
#   netcase-tcp     pcap F --json --no-proto   TCP analysis (every tcp.analysis flag), flows,
#                                              capture rules, the JSON document without DNS/HTTP
#   netcase-rules   pcap F --no-proto          TCP analysis, flows and capture rules, text summary
#   netcase-events  pcap F --events            TCP analysis only, one JSON line per flagged frame
# and for each: packets/s as a share of the floor's, × tcptrace, × tshark, RSS / tshark's.
#
# Run from the root of the checkout after `cargo build --release`. Environment as lib.sh
# (BENCH_RUNS, NETCASE_BIN, NETCASE_BENCH_DIR...); captures default to bulk.pcap and
# many-flows.pcap in $NETCASE_BENCH_DIR/captures, made with make_captures.sh if missing.
set -euo pipefail
SHARED_BENCH=${SHARED_BENCH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" 2>/dev/null && pwd)}
[ -f "$SHARED_BENCH/lib.sh" ] || { echo "bench: ../shared/bench/lib.sh not found (set SHARED_BENCH)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$SHARED_BENCH/lib.sh"
export BENCH_NEED_TCPTRACE=1
bench_need
[ -x "$NETCASE_BIN" ] || { echo "no netcase binary at $NETCASE_BIN (cargo build --release)" >&2; exit 1; }

# The shared tool table, plus our two extra modes.
eval "$(declare -f bench_argv | sed '1s/^bench_argv/shared_bench_argv/')"
bench_argv() {
  case $1 in
    netcase-tcp) BENCH_ARGV=("$NETCASE_BIN" pcap "$2" --json --no-proto) ;;
    netcase-rules) BENCH_ARGV=("$NETCASE_BIN" pcap "$2" --no-proto) ;;
    netcase-events) BENCH_ARGV=("$NETCASE_BIN" pcap "$2" --events) ;;
    *) shared_bench_argv "$@" ;;
  esac
}

if [ $# -eq 0 ]; then
  CAPS=${NETCASE_BENCH_CAPTURES:-$NETCASE_BENCH_DIR/captures}
  bench_captures "$CAPS"
  set -- "$CAPS/bulk.pcap" "$CAPS/many-flows.pcap"
fi
bench_build_floor
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b <= 0) b = 0.0001; printf "%.3f", a / b }'; }
printf '%-18s %-15s %9s %12s %9s %8s %8s %8s %8s\n' file tool best_s packets/s rss_MiB floor× tcptrace× tshark× rss×
for f in "$@"; do
  n=$(bench_packets "$f")
  tools=(floor tshark-expert netcase netcase-tcp netcase-rules netcase-events)
  case $f in *.pcap) tools+=(tcptrace) ;; esac
  echo "# $f: $n packets; $BENCH_RUNS alternating rounds" >&2
  bench_series "$f" "${tools[@]}"
  for t in "${tools[@]}"; do
    # netcase exits 1 when it reports findings: a successful run
    case $t:${BAD_RC[$t]:-} in netcase*:1) continue ;; esac
    [ -z "${BAD_RC[$t]:-}" ] || { echo "bench: $t failed on $f (rc=${BAD_RC[$t]})" >&2; exit 1; }
  done
  for t in floor tcptrace tshark-expert netcase netcase-tcp netcase-rules netcase-events; do
    [ -n "${BEST_WALL[$t]:-}" ] || continue
    w=${BEST_WALL[$t]}
    line=$(printf '%-18s %-15s %9.4f %12s %9.1f' "$(basename "$f")" "$t" "$w" "$(bench_pps "$n" "$w")" \
      "$(awk -v k="${PEAK_RSS[$t]}" 'BEGIN{print k/1024}')")
    case $t in
      netcase*)
        tc=na; [ -n "${BEST_WALL[tcptrace]:-}" ] && tc=$(ratio "${BEST_WALL[tcptrace]}" "$w")
        line+=$(printf ' %8s %8s %8s %8s' "$(ratio "${BEST_WALL[floor]}" "$w")" "$tc" \
          "$(ratio "${BEST_WALL[tshark-expert]}" "$w")" "$(ratio "${PEAK_RSS[$t]}" "${PEAK_RSS[tshark-expert]}")") ;;
    esac
    echo "$line"
  done
  printf '%-18s rules cost: --no-proto / --events wall = %s\n' "$(basename "$f")" \
    "$(ratio "${BEST_WALL[netcase-rules]}" "${BEST_WALL[netcase-events]}")"
done
