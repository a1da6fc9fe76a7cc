#!/usr/bin/env python3
"""fuzz/seeds.py CAPTURE... — seeds for the dns, http and tls fuzz targets from real
payloads, written to corpus/{dns,http,tls}/ (existing files are kept).

Needs tshark. Each TCP stream that carries HTTP, TLS or DNS becomes one script in the
format of fuzz_targets/common/mod.rs: a mode byte (1: handshake first), then every data
segment in capture order, each preceded by its direction (0xFF 0x00 client, 0xFF 0x01
server), 0xFF doubled; cut at 4 KiB. DNS messages over UDP and TLS handshake records are
also written as they are (the targets hand the raw bytes to the parsers too).
"""
import hashlib
import os
import subprocess
import sys

MAX = 4096
STREAMS_PER_CAPTURE = 12
MESSAGES_PER_CAPTURE = 40


def tshark(cap, display_filter, *fields):
    cmd = ["tshark", "-n", "-r", cap, "-Y", display_filter, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def write(kind, data):
    if not data:
        return
    d = os.path.join("corpus", kind)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16])
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)


def script(segments):
    """segments: [(from_client, bytes)] -> a script of at most MAX bytes."""
    out = bytearray([0x01])
    for from_client, payload in segments:
        out += bytes([0xFF, 0x00 if from_client else 0x01])
        for b in payload:
            out += b"\xff\xff" if b == 0xFF else bytes([b])
        if len(out) >= MAX:
            return bytes(out[:MAX])
    return bytes(out)


FIELDS = ["tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "tcp.dstport", "tcp.payload", "udp.payload",
          "http.request", "tls.handshake.type", "dns.id"]


def main(caps):
    for cap in caps:
        # One pass: every TCP segment with data and every DNS-over-UDP message.
        rows = tshark(cap, "tcp.len > 0 || (dns && udp)", *FIELDS)
        starts = {}  # stream -> (kind, client (addr, port) or None)
        segs = {}
        messages = {"dns": 0, "tls": 0}
        for row in rows:
            row += [""] * (len(FIELDS) - len(row))
            stream, ip4, ip6, sport, dport, tcp_payload, udp_payload, http_req, tls_hs, dns_id = row
            if udp_payload and dns_id:
                if messages["dns"] < MESSAGES_PER_CAPTURE:
                    write("dns", bytes.fromhex(udp_payload.replace(":", ""))[:MAX])
                    messages["dns"] += 1
                continue
            if not stream or not tcp_payload:
                continue
            payload = bytes.fromhex(tcp_payload.replace(":", ""))
            src = (ip4 or ip6, sport)
            if stream not in starts and len(starts) < 3 * STREAMS_PER_CAPTURE:
                # A request or a ClientHello comes from the client; DNS: the side not on port 53.
                if http_req:
                    starts[stream] = ("http", src)
                elif tls_hs == "1":
                    starts[stream] = ("tls", src)
                elif dns_id:
                    starts[stream] = ("dns", None)
                if stream in starts:
                    segs[stream] = []
            if tls_hs in ("1", "2") and messages["tls"] < MESSAGES_PER_CAPTURE:
                write("tls", payload[:MAX])
                messages["tls"] += 1
            if stream in segs:
                client = starts[stream][1]
                from_client = src == client if client else sport != "53"
                segs[stream].append((from_client, payload))
        per_kind = {}
        for stream, v in segs.items():
            kind = starts[stream][0]
            per_kind[kind] = per_kind.get(kind, 0) + 1
            if per_kind[kind] <= STREAMS_PER_CAPTURE:
                write(kind, script(v))


if __name__ == "__main__":
    main(sys.argv[1:])
