#!/usr/bin/env bash
# Builds Baton (release) and runs every process in the Procfile in the background, each line of output prefixed
# with its name, until Ctrl-C or SIGTERM, which stops them all. Sockets go to $BATON_RUN_DIR (default var/run),
# databases to $BATON_DATA_DIR (default var/data). Until the supervisor exists, this script is how Baton runs.
# Usage: scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

scripts/install-deps.sh
echo "run: building (release; the first build takes a few minutes)"
swift build -c release
make -s -C Clients/c

run_dir=${BATON_RUN_DIR:-var/run}
pids=()
stop() {
    trap - INT TERM EXIT
    echo "run: stopping"
    ((${#pids[@]} > 0)) && kill -TERM "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null || true
    exit 0
}
trap stop INT TERM EXIT

names=()
while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    name=${line%%:*}
    command=${line#*:}
    names+=("$name")
    prefix=$(printf '%-18s|' "$name")
    # $! is the process itself (sh execs it), so stop() signals the process, not a wrapper.
    /bin/sh -c "exec $command" > >(sed -u "s/^/$prefix /") 2>&1 &
    pids+=($!)
done < Procfile

for name in "${names[@]}"; do
    for _ in $(seq 1 100); do
        Clients/c/build/baton-health "$run_dir/$name.sock" >/dev/null 2>&1 && break
        sleep 0.1
    done
    printf 'run: %-18s %s\n' "$name" "$(Clients/c/build/baton-health "$run_dir/$name.sock" 2>&1)"
done
echo "run: Baton is up; sockets in $run_dir. Ctrl-C stops it."
wait
