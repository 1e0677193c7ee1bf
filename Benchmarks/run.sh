#!/usr/bin/env bash
# Builds the RPC benchmark (release) and the C floor, then prints latency and throughput for both and their
# ratios. Run by hand, never by the tests; takes about a minute after the build.
# Usage: Benchmarks/run.sh [rpc-benchmark options, e.g. --sequential 20000 --calls 200000]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh
mkdir -p Benchmarks/c/build
cc -O2 -Wall -Werror -o Benchmarks/c/build/pingpong Benchmarks/c/pingpong.c
swift build -c release --product rpc-benchmark
.build/release/rpc-benchmark --pingpong Benchmarks/c/build/pingpong "$@"
