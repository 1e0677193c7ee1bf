#!/usr/bin/env bash
# Builds one benchmark in release mode, with the process it measures, and runs it. Run by hand, never by the tests;
# each prints its figures beside a baseline measured in the same run (see Benchmarks/README.md).
# Usage: Benchmarks/run.sh rpc|gate-evaluator|router|metrics|context-assembler|soak [the benchmark's options, e.g. --calls 200000]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

name=${1:-}
shift || true
case "$name" in
rpc)
    scripts/install-deps.sh
    mkdir -p Benchmarks/c/build
    cc -O2 -Wall -Werror -o Benchmarks/c/build/pingpong Benchmarks/c/pingpong.c
    swift build -c release --product rpc-benchmark
    exec .build/release/rpc-benchmark --pingpong Benchmarks/c/build/pingpong "$@"
    ;;
gate-evaluator | router)
    scripts/install-deps.sh
    swift build -c release --product "$name"
    swift build -c release --product "$name-benchmark"
    exec ".build/release/$name-benchmark" "$@"
    ;;
metrics)
    scripts/install-deps.sh
    swift build -c release --product metrics-collector
    swift build -c release --product metrics-benchmark
    exec .build/release/metrics-benchmark "$@"
    ;;
context-assembler)
    scripts/install-deps.sh
    for product in gate-evaluator router metrics-collector context-assembler context-assembler-benchmark; do
        swift build -c release --product "$product"
    done
    exec .build/release/context-assembler-benchmark "$@"
    ;;
soak)
    scripts/install-deps.sh
    swift build -c release
    exec .build/release/soak-benchmark "$@"
    ;;
*)
    echo "usage: Benchmarks/run.sh rpc|gate-evaluator|router|metrics|context-assembler|soak [options]" >&2
    exit 2
    ;;
esac
