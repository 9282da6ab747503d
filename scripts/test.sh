#!/usr/bin/env bash
# Runs every test of Skiff: unit tests of the protocol core, the engine's tests,
# and the end-to-end tests against a real Prosody on loopback.
# Installs what it needs first (apt packages, Rust). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ] && . "${CARGO_HOME:-$HOME/.cargo}/env"

echo "== web UI: unit tests and build (the desktop shell embeds ui/dist)"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run build)

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
# The end-to-end tests run the `skiff` binary (e.g. to kill it with SIGKILL).
cargo build --workspace --bins --locked
cargo test --workspace --locked
