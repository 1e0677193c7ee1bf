#!/usr/bin/env bash
# Runs every check Baton has, as CI does: installs what is missing, lints the hand-written Swift with
# swift-format, builds everything (services, tests, benchmark), builds the C client, and runs all tests
# (unit, real-socket and end-to-end tests that start the service executables and the C client).
# Usage: scripts/test.sh [extra arguments for swift test, e.g. --filter Framing]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

scripts/install-deps.sh

echo "== swift format lint (hand-written sources; generated code is excluded)"
swift format lint --strict --recursive Package.swift Shared/BatonRPC Shared/BatonRuntime \
    Shared/BatonTestKit/*.swift Services Tests Benchmarks

echo "== build"
swift build --build-tests
make -s -C Clients/c

echo "== test"
swift test --skip-build "$@"
