#!/usr/bin/env bash
# Headless chromium for the browser tests (tests/browser): Debian's package, installed with
# apt-get when missing and running as root, as scripts/postgres installs PostgreSQL. Playwright
# drives it through its executable; Playwright's own browser downloads are never needed.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "browser.sh: installing chromium with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "browser.sh: chromium is missing; install it (Debian: apt-get install chromium), or the browser tests skip (and fail in CI)" >&2
[[ -z ${CI:-} ]]
