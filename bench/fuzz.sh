#!/usr/bin/env bash
# Runs the fuzz targets of the protocol core (skiff_proto::fuzzing, via fuzz/) with
# libFuzzer, one after another, for SECONDS each (default 600), seeded with
# fuzz/seeds/TARGET and a working corpus kept in $SKIFF_FUZZ_DIR (default
# ~/.cache/skiff/fuzz). Prints per target: runs, runs/s, coverage, corpus, crashes.
# Crash inputs are copied to fuzz/regressions/TARGET/ (the property test in the normal
# suite replays them). Needs the nightly toolchain and cargo-fuzz (installed if missing).
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
all=(stream payloads jid socks5 receiver sender negotiation)
targets=("${@:-${all[@]}}")
work="${SKIFF_FUZZ_DIR:-$HOME/.cache/skiff/fuzz}"
[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ] && . "${CARGO_HOME:-$HOME/.cargo}/env"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
python3 fuzz/make_seeds.py
cd fuzz
cargo +nightly fuzz build -O >/dev/null
printf '%-12s %12s %9s %8s %8s %8s %7s\n' target runs runs/s cov ft corpus crashes
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/artifacts/$t"
    log="$work/$t.log"
    nice -n 10 cargo +nightly fuzz run -O "$t" "$work/$t" "seeds/$t" -- \
        -max_total_time="$secs" -jobs=1 -workers=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -dict=xml.dict -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || true
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(find "$work/$t" -type f | wc -l)
    crashes=$(find "$work/artifacts/$t" -type f | wc -l)
    if [ "$crashes" -gt 0 ]; then
        mkdir -p "regressions/$t"
        cp "$work/artifacts/$t"/* "regressions/$t/"
    fi
    printf '%-12s %12s %9s %8s %8s %8s %7s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
done
