#!/usr/bin/env bash
# Regenerates every piece of code that is generated from protos/:
#   - Swift, into Shared/BatonProto/Generated (committed), with protoc-gen-swift built from the
#     swift-protobuf version Package.swift resolves (built once, in .build-protoc-gen-swift/);
#   - C, into Clients/c/generated (committed), with protoc-c.
# Needs Debian's protobuf-compiler and protobuf-c-compiler (scripts/install-deps.sh installs them).
# Usage: scripts/generate-protos.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in protoc protoc-c; do
    command -v "$tool" >/dev/null || { echo "generate-protos: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done

plugin=.build-protoc-gen-swift/release/protoc-gen-swift
if [[ ! -x "$plugin" ]]; then
    echo "generate-protos: building protoc-gen-swift (once; takes a minute or more)"
    swift package resolve
    swift build -c release --package-path .build/checkouts/swift-protobuf \
        --scratch-path "$PWD/.build-protoc-gen-swift" --product protoc-gen-swift
fi

swift_out=Shared/BatonProto/Generated
c_out=Clients/c/generated
rm -rf "$swift_out" "$c_out"
mkdir -p "$swift_out" "$c_out"

mapfile -t protos < <(cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)
(cd protos && protoc --plugin=protoc-gen-swift="../$plugin" \
    --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true --swift_opt=FileNaming=PathToUnderscores \
    --swift_out="../$swift_out" "${protos[@]}")
(cd protos && protoc-c --c_out="../$c_out" "${protos[@]}")
echo "generate-protos: wrote $(find "$swift_out" -name '*.swift' | wc -l) Swift and $(find "$c_out" -name '*.c' | wc -l) C files"
