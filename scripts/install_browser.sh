#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/view, driven over the DevTools pipe: no
# chromium-driver needed): Debian's chromium, installed with apt-get
# only when no Chromium is on PATH. Idempotent and quiet: prints one line either way. Needs root
# (CI runs as root) or sudo; SVPO_CHROMIUM names another binary to use instead.
set -euo pipefail

for name in "${SVPO_CHROMIUM:-}" chromium chromium-browser google-chrome; do
    if [ -n "$name" ] && command -v "$name" >/dev/null 2>&1; then
        echo "browser: $("$name" --version 2>/dev/null | head -n 1) ($(command -v "$name"))"
        exit 0
    fi
done

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install_browser.sh: need root or sudo to apt-get install chromium" >&2; exit 1; }
    SUDO="sudo"
fi
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "install_browser.sh: apt-get install chromium failed" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
echo "browser: $(chromium --version 2>/dev/null | head -n 1) installed in $(( $(date +%s) - start )) s"
