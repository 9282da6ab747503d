#!/usr/bin/env bash
# Builds the desktop app's Debian package (release build):
#   $CARGO_TARGET_DIR/release/bundle/deb/Skiff_<version>_amd64.deb   (default target/)
# Needs what scripts/install-deps.sh installs. Usage: scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ] && . "${CARGO_HOME:-$HOME/.cargo}/env"

(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)

# The tauri CLI wants tauri.conf.json beside the app's crate; ours is at the root
# (where the Rust build reads it). Give the CLI a copy with its paths re-rooted at
# src-tauri/, for the length of the build.
conf=src-tauri/tauri.conf.json
trap 'rm -f "$conf"' EXIT
python3 - "$conf" <<'PY'
import json, sys
c = json.load(open("tauri.conf.json"))
c["build"]["frontendDist"] = "../" + c["build"]["frontendDist"]
c["bundle"]["icon"] = ["../" + p for p in c["bundle"]["icon"]]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
# A package ships a stripped binary (the release profile keeps line tables for
# backtraces in development builds).
CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
    TAURI_APP_PATH=src-tauri TAURI_FRONTEND_PATH=ui ui/node_modules/.bin/tauri build --bundles deb "$@"

target="${CARGO_TARGET_DIR:-target}"
deb=$(ls -t "$target"/release/bundle/deb/*.deb | head -n 1)
echo "package: $deb"
dpkg-deb --info "$deb" | sed -n '1,30p'
dpkg-deb --contents "$deb"
