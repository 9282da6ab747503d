#!/usr/bin/env bash
# Installs what Skiff's build and end-to-end tests need on Debian 12 / Ubuntu:
#   prosody (test XMPP server), python3-slixmpp and gajim (third-party test peers),
#   build-essential, pkg-config, ca-certificates, curl,
#   the desktop app's build libraries (WebKitGTK 4.1, libxdo, OpenSSL, appindicator,
#   librsvg) and what runs it headless in tests (Xvfb, xdotool, ImageMagick, D-Bus,
#   dunst as notification server, notify-send, xdg-open, WebKitWebDriver and
#   tauri-driver for the GUI tests, gnome-keyring as the Secret Service, a CJK font),
#   and Rust via rustup when `cargo` is missing.
#
# Idempotent: packages already installed are left alone, and `apt-get update`
# is skipped when nothing is missing. Run as root, or as a user with sudo.
# The system Prosody service that Debian's package may start is not used by
# the tests (they run their own Prosody on other ports, loopback only).
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    log "run this as root or install sudo" >&2
    exit 1
fi

PACKAGES=(
    prosody python3-slixmpp build-essential pkg-config ca-certificates curl
    # Jingle file-transfer test peer (tests/peers/gajim_peer.py; also needs xvfb, dbus)
    gajim
    # desktop app (src-tauri): build
    libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
    # desktop app: run headless, screenshots, notifications, opening files
    xvfb xauth imagemagick x11-utils xdotool dunst dbus dbus-x11 libnotify-bin xdg-utils
    # desktop app: GUI end-to-end tests over WebDriver (WebKitWebDriver)
    webkit2gtk-driver
    # desktop app: "Remember password" under a private Secret Service; a CJK font for
    # the 简体中文 UI (screenshots)
    gnome-keyring libsecret-tools fonts-wqy-microhei
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        continue
    fi
    missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    log "apt packages already installed: ${PACKAGES[*]}"
else
    log "installing apt packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    log "installed: ${missing[*]}"
fi

if command -v cargo >/dev/null 2>&1; then
    log "Rust already installed: $(cargo --version)"
elif [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
    log "Rust already installed in ${CARGO_HOME:-$HOME/.cargo}/bin (add it to PATH):" \
        "$("${CARGO_HOME:-$HOME/.cargo}/bin/cargo" --version)"
else
    log "installing Rust with rustup (stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --profile minimal --default-toolchain stable
    log "installed: $("${CARGO_HOME:-$HOME/.cargo}/bin/cargo" --version);" \
        "run: . \"${CARGO_HOME:-$HOME/.cargo}/env\""
fi

# tauri-driver: the WebDriver front of the desktop app's GUI tests (a cargo tool).
TAURI_DRIVER_VERSION=2.1.0
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ -x "$cargo_bin/tauri-driver" ] \
    && [ -f "${CARGO_HOME:-$HOME/.cargo}/.crates.toml" ] \
    && grep -q "tauri-driver $TAURI_DRIVER_VERSION" "${CARGO_HOME:-$HOME/.cargo}/.crates.toml"; then
    log "tauri-driver $TAURI_DRIVER_VERSION already installed"
else
    log "installing tauri-driver $TAURI_DRIVER_VERSION (cargo install, about a minute)"
    PATH="$cargo_bin:$PATH" cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked --quiet
fi

# Node.js 20+ and npm build and test the web UI (Vite 7 needs Node 20.19+).
node_major=$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
    log "installing nodejs and npm (found: ${node_major:-none})"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
    node_major=$(node --version | sed 's/^v\([0-9]*\).*/\1/')
    [ "$node_major" -ge 20 ] || { log "Node.js $(node --version) is too old for the web UI (Vite 7 needs 20.19+)" >&2; exit 1; }
else
    log "Node.js already installed: $(node --version)"
fi

# Sanity checks of what the tests run.
command -v prosody >/dev/null && command -v prosodyctl >/dev/null \
    || { log "prosody/prosodyctl not on PATH after install" >&2; exit 1; }
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null \
    || { log "/usr/bin/python3 cannot import slixmpp" >&2; exit 1; }
/usr/bin/python3 -c 'import gajim, nbxmpp' 2>/dev/null \
    || { log "/usr/bin/python3 cannot import gajim/nbxmpp" >&2; exit 1; }
log "ok: $(dpkg-query -W -f='prosody ${Version}' prosody), $(dpkg-query -W -f='python3-slixmpp ${Version}' python3-slixmpp), $(dpkg-query -W -f='gajim ${Version}' gajim)"
