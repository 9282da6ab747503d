#!/usr/bin/env bash
# Runs the fuzz targets of the protocol core (skiff_proto::fuzzing, via fuzz/) with
# libFuzzer, one after another, for SECONDS each (default 600), on one core
# (-jobs=1, nice), seeded with fuzz/seeds/TARGET and fuzz/regressions/TARGET, the
# working corpus kept outside the repository in $SKIFF_FUZZ_DIR (default
# ~/.cache/skiff/fuzz). Prints per target: executions, exec/s, coverage (cov: and ft:
# of libFuzzer's last status line), corpus size, crashes. Crash inputs are copied to
# fuzz/regressions/TARGET/ (the property test of the normal suite replays them).
# Needs the nightly toolchain and cargo-fuzz (installed if missing).
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
all=(stream si bytestreams ibb oob disco dataforms upload roster stanza stream_error jid socks5 transfer negotiation hashes sm batch jingle jingle_session caps)
targets=("${@:-${all[@]}}")
work="${SKIFF_FUZZ_DIR:-$HOME/.cache/skiff/fuzz}"
# Inputs longer than this are cut (XML stanzas and input sequences fit well within).
declare -A max_len=([socks5]=1024 [transfer]=2048 [jingle_session]=2048 [jid]=3200 [negotiation]=8192)
[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ] && . "${CARGO_HOME:-$HOME/.cargo}/env"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd fuzz
mkdir -p "$work/logs"
# Release code with debug assertions and overflow checks (-a), AddressSanitizer.
nice -n 10 cargo +nightly fuzz build -O -a >"$work/logs/build.log" 2>&1 || { cat "$work/logs/build.log"; exit 1; }
printf '%-13s %11s %8s %7s %7s %7s %8s\n' target execs exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/artifacts/$t"
    log="$work/logs/$t.log"
    seeds=("seeds/$t")
    [ -d "regressions/$t" ] && seeds+=("regressions/$t")
    known="$work/logs/$t.known"
    find "$work/artifacts/$t" -type f | sort >"$known"
    # -jobs=1 runs the fuzzer in a child process whose log libFuzzer writes to
    # fuzz-0.log in the current directory: run it from the log directory.
    (cd "$work/logs" && nice -n 10 "$OLDPWD/target/x86_64-unknown-linux-gnu/release/$t" \
        "$work/$t" "${seeds[@]/#/$OLDPWD/}" \
        -max_total_time="$secs" -jobs=1 -workers=1 -max_len="${max_len[$t]:-16384}" -timeout=10 \
        -rss_limit_mb=2048 -dict="$OLDPWD/xml.dict" -artifact_prefix="$work/artifacts/$t/" \
        -print_final_stats=1 >"$log" 2>&1) || true
    [ -f "$work/logs/fuzz-0.log" ] && mv "$work/logs/fuzz-0.log" "$log.job"
    stats="$log.job"
    [ -f "$stats" ] || stats="$log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$stats" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$stats" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$stats" | tail -1 | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' "$stats" | tail -1 | grep -o '[0-9]*')
    corpus=$(find "$work/$t" -type f | wc -l)
    # New crash inputs (and slow or memory-hungry ones) of this run go to regressions/.
    new=$(find "$work/artifacts/$t" -type f | sort | comm -13 "$known" -)
    crashes=0
    for f in $new; do
        mkdir -p "regressions/$t"
        cp "$f" "regressions/$t/"
        crashes=$((crashes + 1))
    done
    printf '%-13s %11s %8s %7s %7s %7s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
done
echo "logs: $work/logs/"
