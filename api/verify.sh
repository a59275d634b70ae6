#!/usr/bin/env bash
# Checks that the committed generated Go under api/ is exactly what
# api/generate.sh produces from the committed .proto files. Generates into a
# temporary directory (the work tree is not touched) and fails with a diff.
#
#   bash api/verify.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

BERTH_API_OUT="$TMP" bash api/generate.sh

list() { (cd "$1" && find api -name '*.pb.go' 2>/dev/null | LC_ALL=C sort); }

status=0
while read -r f; do
	if [[ ! -f "$ROOT/$f" ]]; then
		echo "verify.sh: $f is generated but not committed" >&2
		status=1
	elif [[ ! -f "$TMP/$f" ]]; then
		echo "verify.sh: $f is committed but no longer generated" >&2
		status=1
	elif ! diff -u "$ROOT/$f" "$TMP/$f" --label "committed/$f" --label "generated/$f"; then
		status=1
	fi
done < <({ list "$ROOT"; list "$TMP"; } | LC_ALL=C sort -u)

if [[ $status -ne 0 ]]; then
	echo "verify.sh: generated code is out of date; run: bash api/generate.sh" >&2
	exit 1
fi
echo "verify.sh: generated code is up to date" >&2
