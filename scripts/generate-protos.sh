#!/usr/bin/env bash
# Regenerates every piece of code that is generated from protos/ (all of it is committed):
#   - Swift messages, with protoc-gen-swift from the swift-protobuf version Package.swift resolves;
#   - Swift typed methods and clients (*.rpc.swift), with the project's own protoc-gen-baton (Tools/protoc-gen-baton);
#   - C, into Clients/c/generated, with protoc-c.
# Both plugins are built here in debug (seconds, after the first build). Where the Swift goes:
#   baton/rpc and grpc/health (the wire protocol's own messages)  -> Shared/BatonRPC/Generated
#   baton/testing (the runtime's test service)                    -> Shared/BatonTestKit/Generated
#   every other package (the services' APIs)                      -> Shared/BatonProto/Generated
# Needs Debian's protobuf-compiler and protobuf-c-compiler (scripts/install-deps.sh installs them).
# Usage: scripts/generate-protos.sh [--check]   (--check regenerates into a scratch folder and fails, naming the
#        files, when the committed code differs from what the generators make)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH="/opt/swift/usr/bin:$PATH"

for tool in protoc protoc-c; do
    command -v "$tool" >/dev/null || { echo "generate-protos: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done

check=false
[[ "${1:-}" == "--check" ]] && check=true

swift build --product protoc-gen-swift >/dev/null
swift build --product protoc-gen-baton >/dev/null
bin=$(swift build --show-bin-path)

root=.
if $check; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
fi
rpc_out=$root/Shared/BatonRPC/Generated
proto_out=$root/Shared/BatonProto/Generated
testing_out=$root/Shared/BatonTestKit/Generated
c_out=$root/Clients/c/generated
rm -rf "$rpc_out" "$proto_out" "$testing_out" "$c_out"
mkdir -p "$rpc_out" "$proto_out" "$testing_out" "$c_out"

mapfile -t wire < <(cd protos && find baton/rpc grpc -name '*.proto' | sort)
mapfile -t testing < <(cd protos && find baton/testing -name '*.proto' | sort)
mapfile -t services < <(cd protos && find baton -name '*.proto' -not -path 'baton/rpc/*' -not -path 'baton/testing/*' | sort)

# swift_protoc OUT IMPORTS PROTO...: messages and typed methods for PROTO..., into OUT; the typed methods import
# IMPORTS (modules joined by +).
swift_protoc() {
    local out imports
    out=$(realpath "$1")
    imports=$2
    shift 2
    (cd protos && protoc --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
        --plugin=protoc-gen-baton="$bin/protoc-gen-baton" \
        --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
        --swift_opt=FileNaming=PathToUnderscores --swift_out="$out" \
        --baton_opt="Imports=$imports" --baton_out="$out" "$@")
}
swift_protoc "$rpc_out" "" "${wire[@]}"
swift_protoc "$proto_out" "BatonRPC" "${services[@]}"
swift_protoc "$testing_out" "BatonRPC" "${testing[@]}"
# C: only what the C client speaks, the frame and health.
c_abs=$(realpath "$c_out")
(cd protos && protoc-c --c_out="$c_abs" baton/rpc/v1/frame.proto grpc/health/v1/health.proto)

if $check; then
    status=0
    for dir in Shared/BatonRPC/Generated Shared/BatonProto/Generated Shared/BatonTestKit/Generated Clients/c/generated
    do
        if ! diff -r -q "$dir" "$root/$dir"; then
            status=1
        fi
    done
    if ((status != 0)); then
        echo "generate-protos: the committed generated code differs from protos/; run scripts/generate-protos.sh" >&2
        exit 1
    fi
    echo "generate-protos: the committed generated code matches protos/"
else
    echo "generate-protos: wrote $(find "$rpc_out" "$proto_out" "$testing_out" -name '*.swift' | wc -l) Swift and" \
        "$(find "$c_out" -name '*.c' | wc -l) C files"
fi
