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

# Swift: the wire and service protos go to BatonProto; baton/testing (the runtime's test service) to BatonTestKit.
# C: only what the C client speaks, the frame and health.
swift_out=Shared/BatonProto/Generated
testing_out=Shared/BatonTestKit/Generated
c_out=Clients/c/generated
rm -rf "$swift_out" "$testing_out" "$c_out"
mkdir -p "$swift_out" "$testing_out" "$c_out"

mapfile -t protos < <(cd protos && find . -name '*.proto' -not -path './baton/testing/*' | sed 's|^\./||' | sort)
mapfile -t testing < <(cd protos && find baton/testing -name '*.proto' | sort)
swift_protoc() {
    local out=$1; shift
    (cd protos && protoc --plugin=protoc-gen-swift="../$plugin" \
        --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
        --swift_opt=FileNaming=PathToUnderscores --swift_out="../$out" "$@")
}
swift_protoc "$swift_out" "${protos[@]}"
swift_protoc "$testing_out" "${testing[@]}"
(cd protos && protoc-c --c_out="../$c_out" baton/rpc/v1/frame.proto grpc/health/v1/health.proto)
echo "generate-protos: wrote $(find "$swift_out" "$testing_out" -name '*.swift' | wc -l) Swift and" \
    "$(find "$c_out" -name '*.c' | wc -l) C files"
