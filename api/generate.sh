#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under api/.
#
#   bash api/generate.sh            # from the repository root (or anywhere)
#
# Environment:
#   PROTOC            protoc binary (default: protoc on PATH; we use 3.21.12)
#   BERTH_API_OUT     output root (default: the repository root). Generated
#                     files land in $BERTH_API_OUT/api/..., following each
#                     file's go_package. api/verify.sh points this at a temp dir.
#
# The plugins are installed, at the versions pinned below, into bin/tools
# (gitignored) with `go install`. The versions match go.mod so that the
# generated code and the runtime libraries agree; change both together.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12        # google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1     # google.golang.org/grpc/cmd/protoc-gen-go-grpc
PROTOC_GEN_GO_TTRPC_VERSION=v1.2.10   # github.com/containerd/ttrpc in go.mod
PROTOC_WANT_VERSION="libprotoc 3.21.12"

MODULE=github.com/berth-containers/berth

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

OUT=${BERTH_API_OUT:-$ROOT}
PROTOC=${PROTOC:-protoc}
TOOLS="$ROOT/bin/tools"

# install_tool BINARY PACKAGE MODULE VERSION: go install PACKAGE@VERSION into
# bin/tools unless the binary there was already built from MODULE@VERSION.
install_tool() {
	local bin=$1 pkg=$2 mod=$3 ver=$4
	if [[ -x "$TOOLS/$bin" ]] &&
		go version -m "$TOOLS/$bin" 2>/dev/null | awk -v m="$mod" -v v="$ver" \
			'($1 == "mod" || $1 == "dep") && $2 == m && $3 == v { ok = 1 } END { exit !ok }'; then
		return 0
	fi
	echo "installing $pkg@$ver into bin/tools" >&2
	GOBIN="$TOOLS" GOFLAGS= go install "$pkg@$ver"
}

mkdir -p "$TOOLS"
install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go \
	google.golang.org/protobuf "$PROTOC_GEN_GO_VERSION"
install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
install_tool protoc-gen-go-ttrpc github.com/containerd/ttrpc/cmd/protoc-gen-go-ttrpc \
	github.com/containerd/ttrpc "$PROTOC_GEN_GO_TTRPC_VERSION"

if ! command -v "$PROTOC" >/dev/null; then
	echo "generate.sh: $PROTOC not found (apt-get install protobuf-compiler)" >&2
	exit 1
fi
got=$("$PROTOC" --version)
if [[ "$got" != "$PROTOC_WANT_VERSION" ]]; then
	echo "generate.sh: warning: $got is not $PROTOC_WANT_VERSION; the version comment in generated files will differ" >&2
fi

# Import paths: our own protos import each other relative to the repository
# root ("api/types/mount.proto"), so -I . comes first. api/third_party holds
# google/rpc/status.proto, imported as "google/rpc/status.proto" (the path
# genproto registers it under); it is an import only, never generated.
# google/protobuf/*.proto come from protoc's own include directory.
INCLUDES=(-I . -I api/third_party)
if [[ -n "${PROTOC_INCLUDE:-}" ]]; then
	INCLUDES+=(-I "$PROTOC_INCLUDE")
elif [[ -f /usr/include/google/protobuf/any.proto ]]; then
	INCLUDES+=(-I /usr/include)
fi

export PATH="$TOOLS:$PATH"
GO_OPTS=(--go_out="$OUT" --go_opt=module="$MODULE")
GRPC_OPTS=(--go-grpc_out="$OUT" --go-grpc_opt=module="$MODULE")
TTRPC_OPTS=(--go-ttrpc_out="$OUT" --go-ttrpc_opt=module="$MODULE")

# Classify every proto under api/ (except third_party) by what it needs.
mapfile -t ALL < <(find api -name '*.proto' -not -path 'api/third_party/*' | LC_ALL=C sort)
messages=() grpc=() ttrpc=()
for f in "${ALL[@]}"; do
	case "$f" in
	api/services/ttrpc/* | api/runtime/task/*) ttrpc+=("$f") ;;
	api/services/*) grpc+=("$f") ;;
	*) messages+=("$f") ;;
	esac
done

# Remove what a previous run generated so that deleted protos leave nothing.
if [[ -d "$OUT/api" ]]; then
	find "$OUT/api" -name '*.pb.go' -delete
fi
mkdir -p "$OUT"

"$PROTOC" "${INCLUDES[@]}" "${GO_OPTS[@]}" "${messages[@]}"
"$PROTOC" "${INCLUDES[@]}" "${GO_OPTS[@]}" "${GRPC_OPTS[@]}" "${grpc[@]}"
"$PROTOC" "${INCLUDES[@]}" "${GO_OPTS[@]}" "${TTRPC_OPTS[@]}" "${ttrpc[@]}"

echo "generated Go for ${#ALL[@]} proto files into $OUT/api" >&2
