#!/usr/bin/env bash
# make bench: Berth against Debian's containerd on this host, side by side.
#
# Needs root, the binaries in bin/ (make bench builds them first),
# containerd, runc, busybox-static and docker-registry. Both daemons (and
# the registry the pull benchmark serves from on 127.0.0.1) run on
# temporary roots and sockets and are stopped and removed at the end. A few
# minutes with the defaults; tune with BENCH_ROUNDS (5),
# BENCH_IMPORT_ROUNDS (2), BENCH_PULL_ROUNDS (2; 0 skips the pull),
# BENCH_RUNS (3 ctr run --rm per round), BENCH_CONCURRENT (20),
# BENCH_CONTAINERS (1000), BENCH_IMAGE_MB (200),
# BENCH_KEEP=1 (keep temp dirs and logs), BENCH_JSON=FILE (raw samples).
# Extra arguments go to the harness (integration/bench; -h lists them).
set -euo pipefail

cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (containers need mounts, namespaces and cgroups)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-bench-bin.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
${GO:-go} build -buildvcs=false -o "$tmp/bench" ./integration/bench
"$tmp/bench" -bin "$PWD/bin" "$@"
