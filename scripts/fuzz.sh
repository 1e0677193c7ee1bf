#!/usr/bin/env bash
# Fuzzes one of Baton's inputs with libFuzzer and AddressSanitizer for SECONDS seconds: builds the harnesses (release) in
# Fuzz/BatonFuzz with -sanitize=fuzzer,address in their own build folder (.build-fuzz, a second build of the
# package), then runs the one named, starting from its seed corpus in Fuzz/corpus/TARGET. New inputs it finds go to
# .build-fuzz/corpus/TARGET, crashes to .build-fuzz/crashes/TARGET; the corpus in the repository is left alone.
# Usage: scripts/fuzz.sh TARGET SECONDS     (TARGET: frames, workflows, destinations, procfile, dotenv,
#                                            supervisor-yaml, json; or all, each for SECONDS)
# BATON_FUZZ_CONFIGURATION=debug builds the harnesses unoptimized (in .build-fuzz-debug): they build in about half
# the time and run slower, which suits CI's ten seconds each; by hand, keep the default, release.
# Exit status: 0 no crash, 1 a crash (its input is saved and named), 2 wrong usage.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

targets=(frames workflows destinations procfile dotenv supervisor-yaml json)
target=${1:-}
seconds=${2:-}
if [[ -z "$target" || ! "$seconds" =~ ^[0-9]+$ ]] || [[ "$target" != all && ! " ${targets[*]} " =~ " $target " ]]; then
    echo "usage: scripts/fuzz.sh TARGET SECONDS   (TARGET: ${targets[*]}, or all)" >&2
    exit 2
fi
[[ "$target" == all ]] && selected=("${targets[@]}") || selected=("$target")

configuration=${BATON_FUZZ_CONFIGURATION:-release}
if [[ "$configuration" != release && "$configuration" != debug ]]; then
    echo "fuzz: BATON_FUZZ_CONFIGURATION is '$configuration'; expected release or debug" >&2
    exit 2
fi
scratch=.build-fuzz
[[ "$configuration" == debug ]] && scratch=.build-fuzz-debug
echo "fuzz: building the harnesses ($configuration) with -sanitize=fuzzer,address ($scratch)"
swift build -c "$configuration" --product baton-fuzz --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DBATON_FUZZING >/dev/null
fuzzer=$scratch/$configuration/baton-fuzz

status=0
for name in "${selected[@]}"; do
    corpus=$scratch/corpus/$name
    crashes=$scratch/crashes/$name
    mkdir -p "$corpus" "$crashes"
    echo "fuzz: $name for ${seconds}s"
    if ! BATON_FUZZ_HARNESS=$name "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$crashes/" -print_final_stats=1 "$corpus" "Fuzz/corpus/$name" 2>"$crashes/log"; then
        echo "fuzz: $name CRASHED; input and log in $crashes" >&2
        tail -30 "$crashes/log" >&2
        status=1
        continue
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$crashes/log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz: $name: $runs executions, no crash"
done
exit $status
