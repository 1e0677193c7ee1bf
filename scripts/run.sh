#!/usr/bin/env bash
# Builds Baton (release) and runs it through the supervisor with the repository's Procfile, in the foreground:
# every process's output is prefixed with its name, crashed processes are restarted, and Ctrl-C (or SIGTERM)
# stops them all. Sockets go to $BATON_RUN_DIR (default var/run), databases to $BATON_DATA_DIR (default var/data).
# Usage: scripts/run.sh [supervisor options, e.g. --grace 5]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

scripts/install-deps.sh
echo "run: building (release; the first build takes a few minutes)"
swift build -c release
# In a fresh checkout, SwiftPM compiles swift-protobuf's SwiftProtobuf and SwiftProtobufPluginLibrary modules in its
# plugin-tools phase (their build files are written before every other module's), and the next build runs those two
# compiles once more, about a minute in release, before it settles. Building again here pays that on the first run,
# so that every later run with nothing changed starts in seconds; when nothing changed, this pass takes a second.
swift build -c release --quiet
make -s -C Clients/c
exec .build/release/supervisor --procfile Procfile "$@"
