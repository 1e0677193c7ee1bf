#!/usr/bin/env bash
# Installs what Baton needs beyond the Swift toolchain, from Debian's packages, only when something is missing:
# protoc and protoc-c (code generation), libprotobuf-c and pkg-config (the C client), make and a C compiler,
# libsqlite3-dev (GRDB uses the system SQLite) and tzdata (destinations' opening hours in their time zones).
# With --test, also what only the tests use: prometheus (for promtool, which checks the desk's /metrics text),
# and chromium, chromium-driver and python3-venv for the desk's browser tests (scripts/browser-test.sh).
# The Swift toolchain (6.1 or later) must already be on PATH or at /opt/swift/usr/bin; Debian does not package it.
set -euo pipefail

packages=(protobuf-compiler protobuf-c-compiler libprotobuf-c-dev pkg-config make gcc libc6-dev libsqlite3-dev tzdata)
[[ "${1:-}" == "--test" ]] && packages+=(prometheus chromium chromium-driver python3-venv)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "install-deps: swift is at /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "install-deps: no Swift toolchain found; install Swift 6.1 or later from swift.org" >&2
    fi
    exit 1
fi
