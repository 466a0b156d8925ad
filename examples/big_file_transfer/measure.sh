#!/usr/bin/env bash
# Measures big_file_transfer on loopback, for humans and release notes (not run by CI):
# a SIZE_MIB file (default 1024) is downloaded from a release-build server running as its own
# process, while the server's RSS is sampled from /proc; iperf3 measures the loopback limit in
# the same run. Downloads go to /dev/shm so the disk does not set the pace.
#
#   examples/big_file_transfer/measure.sh            # 1 GiB
#   SIZE_MIB=256 examples/big_file_transfer/measure.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZE_MIB=${SIZE_MIB:-1024}
PORT=${PORT:-18890}
IPERF_PORT=${IPERF_PORT:-18891}
TARGET=${CARGO_TARGET_DIR:-target}

echo "== building (release)"
cargo build --release --example big_file_transfer -q
BIN=$TARGET/release/examples/big_file_transfer

if ! command -v iperf3 >/dev/null; then
    echo "== installing iperf3"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
fi

WORK=$(mktemp -d)
OUT=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
SERVER_PID=
SAMPLER_PID=
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT

echo "== writing a ${SIZE_MIB} MiB file"
mkdir "$WORK/root"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/root/big.bin"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Samples the server's RSS every 20 ms until killed, keeping the maximum in $WORK/rss_max
# (written as it rises, so killing the sampler at any moment leaves a correct file).
sample_rss() {
    local max=0 v
    echo 0 >"$WORK/rss_max"
    while true; do
        v=$(rss_kib "$1" 2>/dev/null || echo 0)
        if [ "$v" -gt "$max" ]; then
            max=$v
            echo "$max" >"$WORK/rss_max"
        fi
        sleep 0.02
    done
}

# One download with the server's RSS sampled meanwhile; prints the client's summary line.
download() { # label, extra server flags
    local label=$1
    rm -f "$OUT/big.bin" "$OUT/big.bin.part"
    sample_rss "$SERVER_PID" &
    SAMPLER_PID=$!
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN" get big.bin --addr "127.0.0.1:$PORT" -o "$OUT/big.bin" -q | sed "s|^|   $label: |"
    t1=$(date +%s.%N)
    kill -TERM "$SAMPLER_PID"
    wait "$SAMPLER_PID" || true
    SAMPLER_PID=
    cmp -s "$OUT/big.bin" "$WORK/root/big.bin" || { echo "   $label: DOWNLOAD DIFFERS"; exit 1; }
    awk -v l="$label" -v a="$t0" -v b="$t1" -v m="$SIZE_MIB" -v r="$(cat "$WORK/rss_max")" \
        'BEGIN { printf "   %s: wall %.2f s, %.0f MiB/s; server RSS max during %s KiB\n", l, b - a, m / (b - a), r }'
}

# The server alone: the file requested over bash's /dev/tcp and thrown away by cat, so the
# client's file writing and verification do not count (the figure to set against iperf3).
raw() {
    local t0 t1
    sample_rss "$SERVER_PID" &
    SAMPLER_PID=$!
    t0=$(date +%s.%N)
    bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; echo "GET 0 big.bin" >&3; cat <&3 >/dev/null' _ "$PORT"
    t1=$(date +%s.%N)
    kill -TERM "$SAMPLER_PID"
    wait "$SAMPLER_PID" || true
    SAMPLER_PID=
    awk -v a="$t0" -v b="$t1" -v m="$SIZE_MIB" -v r="$(cat "$WORK/rss_max")" \
        'BEGIN { printf "   raw (cat >/dev/null): %.2f s, %.0f MiB/s = %.1f Gbit/s; server RSS max during %s KiB\n", b - a, m / (b - a), m * 8.388608e-3 / (b - a), r }'
}

serve() { # flags…
    "$BIN" serve --root "$WORK/root" --addr "127.0.0.1:$PORT" --threads 2 "$@" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server did not start"; cat "$WORK/server.log"; exit 1
}

stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

for mode in sendfile buffered; do
    flags=()
    [ "$mode" = buffered ] && flags=(--no-sendfile)
    echo "== server with $mode (${flags[*]:-default})"
    serve "${flags[@]}"
    echo "   server RSS before: $(rss_kib "$SERVER_PID") KiB"
    download "cold (server hashes the file first)"
    download "warm (checksum cached)"
    for _ in 1 2 3; do raw; done
    echo "   server RSS after: $(rss_kib "$SERVER_PID") KiB"
    stop_server
done

for flags in "" "-Z"; do
    echo "== iperf3 ${flags:-(write)}${flags:+ (sendfile)}, loopback, 5 s"
    iperf3 -s -1 -p "$IPERF_PORT" >/dev/null 2>&1 &
    IPERF_PID=$!
    sleep 0.5
    iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t 5 -f g $flags | awk '/receiver/ {print "   iperf3: " $(NF-2) " " $(NF-1)}'
    wait "$IPERF_PID" 2>/dev/null || true
done
