#!/usr/bin/env bash
# Keeps a long-lived cargo target dir from growing without bound: every rebuild of a
# test or binary leaves a new NAME-HASH executable in deps/, and the old ones are never
# removed. This keeps the newest executable of each name and drops the incremental
# caches (they are rebuilt on demand). Dependency rlibs are left alone.
set -euo pipefail
target="${1:-${CARGO_TARGET_DIR:-$(dirname "$0")/../target}}"
for profile in debug release; do
  deps="$target/$profile/deps"
  [ -d "$deps" ] || continue
  # Executables named NAME-<16 hex>, newest first; keep the first of each NAME.
  find "$deps" -maxdepth 1 -type f -perm -u+x -regextype posix-extended \
    -regex '.*/[A-Za-z0-9_]+-[0-9a-f]{16}' -printf '%T@ %p\n' |
    sort -rn | awk '{ path = $2; name = substr(path, 1, length(path) - 17);
                      if (seen[name]++) print path }' |
    xargs -r rm -f
  rm -rf "$target/$profile/incremental"
done
