#!/usr/bin/env bash
# The desk's browser tests: headless Chromium (Debian's chromium and chromium-driver, which
# scripts/install-deps.sh --test installs) driven over WebDriver by selenium, pinned in Tests/Browser/requirements.txt
# and installed from PyPI into a virtual environment under .build/. They start the supervisor and every process
# from .build/debug (build first: swift build), and write their screenshots to .build/test-output/browser/.
# Usage: scripts/browser-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/browser-venv
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import selenium" 2>/dev/null; then
    echo "browser-test: installing selenium into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r Tests/Browser/requirements.txt
fi
exec "$venv/bin/python" Tests/Browser/desk_test.py --bin .build/debug --out .build/test-output/browser
