#!/usr/bin/env bash
# make demo: run one container end to end on this host, then clean up.
#
# As root on Debian: installs runc and busybox-static if missing, starts
# berthd on a temporary root, state dir and socket, builds a busybox image
# archive with bin/berth-testimage, imports it with bin/ctr, runs a
# container that greets and shows where it runs, stops the daemon and
# removes everything it made (also on failure or Ctrl-C).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
BIN=$REPO/bin
IMAGE=docker.io/library/busybox:latest

if [ -t 1 ]; then
	say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
	say() { printf '==> %s\n' "$*"; }
fi
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: containers need mounts, namespaces and cgroups"

# --- prerequisites -----------------------------------------------------------
missing=()
command -v runc >/dev/null 2>&1 || missing+=(runc)
# The image's busybox must be static: the image has no libraries.
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for b in berthd ctr containerd-shim-berth-v2 berth-testimage; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make build (make demo does)"
done
# berthd finds the shim on PATH; ours first.
export PATH=$BIN:$PATH

# --- temp dirs and cleanup -----------------------------------------------------
WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
# Unix socket paths are short (108 bytes): state lives under /run.
STATE=$(mktemp -d /run/berth-demo.XXXXXX)
SOCK=$STATE/berth.sock
LOG=$WORK/berthd.log
DAEMON=

# unmount_under DIR: unmount every mount below DIR, deepest first.
unmount_under() {
	local dir=$1
	awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
		kill -TERM "$DAEMON"
		for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DAEMON" 2>/dev/null
		wait "$DAEMON" 2>/dev/null
	fi
	# Shims of this daemon (any a failed run left) carry its socket address.
	for pid in $(pgrep -f -- "-address $SOCK" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	# runc state of containers the shims did not get to delete.
	for r in $(find "$STATE" -maxdepth 4 -type d -name runc 2>/dev/null); do
		for c in $(runc --root "$r" list -q 2>/dev/null); do
			runc --root "$r" delete -f "$c" >/dev/null 2>&1
		done
	done
	unmount_under "$STATE"
	unmount_under "$WORK"
	if [ $rc -ne 0 ] && [ -f "$LOG" ]; then
		echo "--- last lines of the berthd log ($LOG) ---" >&2
		tail -n 30 "$LOG" >&2
	fi
	rm -rf "$STATE" "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctr() { "$BIN/ctr" --address "$SOCK" "$@"; }

# --- daemon ------------------------------------------------------------------
say "starting berthd (root $WORK/root, socket $SOCK)"
printf 'version = 2\n' >"$WORK/config.toml"
"$BIN/berthd" --config "$WORK/config.toml" --root "$WORK/root" --state "$STATE" \
	--address "$SOCK" --log-level warn >"$LOG" 2>&1 &
DAEMON=$!
for i in $(seq 100); do
	ctr version >/dev/null 2>&1 && break
	kill -0 "$DAEMON" 2>/dev/null || die "berthd exited at start"
	[ "$i" = 100 ] && die "berthd did not start serving in 10 s"
	sleep 0.1
done

# --- image -------------------------------------------------------------------
say "building a busybox image from the host's /bin/busybox"
"$BIN/berth-testimage" -o "$WORK/busybox.tar"
say "importing it"
ctr images import "$WORK/busybox.tar"
ctr images ls

# --- container -----------------------------------------------------------------
say "ctr run --rm --hostname berth-demo $IMAGE demo"
ctr run --rm --hostname berth-demo "$IMAGE" demo sh -c 'echo "Hello from Berth!"; echo hostname: $(hostname); echo "pid 1: $(cat /proc/1/comm)"; mount | head -5'

say "stopping berthd and cleaning up"
