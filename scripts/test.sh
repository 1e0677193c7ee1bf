#!/usr/bin/env bash
# Runs every check Baton has, as CI does: installs what is missing, lints the hand-written Swift with
# swift-format, checks that the committed generated code is what protos/ generates, builds everything (services,
# tests, benchmarks), builds the C client, and runs all tests (unit, real-socket and end-to-end tests that start
# the service executables and the C client), then the desk's browser tests in headless Chromium.
# Usage: scripts/test.sh [extra arguments for swift test, e.g. --filter Framing; with any, no browser tests]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

scripts/install-deps.sh --test

echo "== swift format lint (every hand-written source; generated code is excluded)"
mapfile -t sources < <(find Shared Services Clients Tools Tests Benchmarks Fuzz -name '*.swift' -not -path '*/Generated/*' | sort)
swift format lint --strict Package.swift "${sources[@]}"

echo "== generated code matches protos/"
scripts/generate-protos.sh --check

echo "== build"
swift build --build-tests
make -s -C Clients/c

echo "== test"
swift test --skip-build "$@"

if (($# == 0)); then
    echo "== browser tests (the desk in headless Chromium)"
    scripts/browser-test.sh
fi
