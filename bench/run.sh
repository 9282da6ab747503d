#!/usr/bin/env bash
# Runs the benchmark (release build): every route of Skiff side by side with a raw TCP
# copy, a raw relay through the same proxy65, and slixmpp, against a throw-away Prosody
# on 127.0.0.1. Options go to skiff-bench, e.g.:
#   bench/run.sh                                   # 10 MiB, 200 MiB, 1 GiB, one round
#   bench/run.sh --sizes 10M,200M --rounds 3 --write docs/benchmarks-table.md
# Needs what scripts/install-deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ] && . "${CARGO_HOME:-$HOME/.cargo}/env"
cargo build --release --locked -p skiff-cli -p skiff-tests --bin skiff --bin skiff-bench
exec "${CARGO_TARGET_DIR:-target}/release/skiff-bench" "$@"
