#!/usr/bin/env bash
# Runs Skiff. On a desktop (DISPLAY or WAYLAND_DISPLAY set) and without arguments it
# opens the desktop app, which starts a local demo server with a demo contact when no
# account is remembered (SKIFF_NO_DEMO=1 turns that off).
# With an account (SKIFF_JID and SKIFF_PASSWORD set, or --jid), it runs the `skiff`
# command line with the arguments given (default: `roster`). Without a display, it
# starts the demo Prosody (accounts alice, bob, carol), brings bob online, shows
# alice's contacts and sends bob a file, all with the command line.
# Installs what it needs first. Usage: scripts/run.sh [skiff arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh >/dev/null
[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ] && . "${CARGO_HOME:-$HOME/.cargo}/env"

if [ $# -eq 0 ] && [ -z "${SKIFF_JID:-}" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
    (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build >/dev/null)
    cargo build --quiet --locked -p skiff-desktop
    target_dir=$(cargo metadata --format-version 1 --no-deps | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    exec "$target_dir/debug/skiff-desktop"
fi
cargo build --quiet --locked -p skiff-cli -p skiff-devserver --bin skiff --bin skiff-devserver
target_dir=$(cargo metadata --format-version 1 --no-deps | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
skiff="$target_dir/debug/skiff"

if [ -n "${SKIFF_JID:-}" ] || [[ " $* " == *" --jid "* ]]; then
    [ $# -eq 0 ] && set -- roster
    exec "$skiff" "$@"
fi

demo_dir="${XDG_DATA_HOME:-$HOME/.local/share}/skiff-demo"
mkdir -p "$demo_dir"
info=$(mktemp)
"$target_dir/debug/skiff-devserver" --dir "$demo_dir" >"$info" 2>"$demo_dir/devserver.log" &
server_pid=$!
bob_pid=""
cleanup() {
    [ -n "$bob_pid" ] && kill "$bob_pid" 2>/dev/null || true
    kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -f "$info"
}
trap cleanup EXIT
for _ in $(seq 100); do
    [ -s "$info" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$demo_dir/devserver.log" >&2; exit 1; }
    sleep 0.2
done
read -r port ca < <(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["c2s_port"], d["ca_file"])' "$info")
common=(--server "127.0.0.1:$port" --ca-file "$ca")
echo "Demo server on 127.0.0.1:$port (accounts alice, bob, carol; passwords NAME-demo)."
bob_dir="$demo_dir/bob"
SKIFF_PASSWORD=bob-demo "$skiff" --jid bob@localhost --resource laptop "${common[@]}" \
    --data-dir "$bob_dir" --streamhost-addr 127.0.0.1 receive --dir "$bob_dir/Downloads" --accept contacts >/dev/null 2>&1 &
bob_pid=$!
sleep 1.5
alice=(env SKIFF_PASSWORD=alice-demo "$skiff" --jid alice@localhost "${common[@]}" --data-dir "$demo_dir/alice" --streamhost-addr 127.0.0.1)
if [ $# -gt 0 ]; then
    "${alice[@]}" "$@"
    exit
fi
echo "alice's contacts:"
"${alice[@]}" roster
echo
echo "alice sends README.md to bob:"
"${alice[@]}" send bob@localhost README.md
echo
echo "bob's history:"
"$skiff" --data-dir "$bob_dir" history --limit 5
