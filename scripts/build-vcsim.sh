#!/usr/bin/env bash
# Build the vSphere simulator (tools/vcsim/main.go) into var/bin/vcsim, offline,
# from Debian's govmomi 0.24.2 sources (GOPATH mode, no module proxy).
#
# Usage: scripts/build-vcsim.sh [-f|--force]
#
# Idempotent: does nothing when var/bin/vcsim is newer than tools/vcsim/main.go.
# Installs golang-go, golang-github-vmware-govmomi-dev and
# golang-github-google-uuid-dev with apt-get only if `go` or the govmomi
# simulator sources are missing. Safe to run concurrently (flock).
# Env: GOCACHE (default var/cache/go-build), VCSIM_BIN (default var/bin/vcsim).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/tools/vcsim/main.go"
BIN="${VCSIM_BIN:-$ROOT/var/bin/vcsim}"
GOCODE=/usr/share/gocode
GOVMOMI_SIM="$GOCODE/src/github.com/vmware/govmomi/simulator"
UUID_PKG="$GOCODE/src/github.com/google/uuid"
PACKAGES=(golang-go golang-github-vmware-govmomi-dev golang-github-google-uuid-dev)

die() { echo "build-vcsim: ERROR: $*" >&2; exit 1; }
log() { echo "build-vcsim: $*" >&2; }

force=0
case "${1:-}" in
  -f|--force) force=1 ;;
  "") ;;
  *) die "unknown argument '$1' (usage: $0 [-f|--force])" ;;
esac

[[ -f "$SRC" ]] || die "missing $SRC"

up_to_date() { [[ $force -eq 0 && -x "$BIN" && "$BIN" -nt "$SRC" ]]; }

if up_to_date; then
  log "$BIN is up to date"
  exit 0
fi

mkdir -p "$(dirname "$BIN")"
# Serialise concurrent builds (e.g. several pytest-xdist workers).
exec 9>"$(dirname "$BIN")/.build-vcsim.lock"
command -v flock >/dev/null 2>&1 && flock 9
if up_to_date; then  # another process built it while we waited
  log "$BIN is up to date"
  exit 0
fi

have_toolchain() { command -v go >/dev/null 2>&1 && [[ -d "$GOVMOMI_SIM" && -d "$UUID_PKG" ]]; }

if ! have_toolchain; then
  if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    die "go or the govmomi sources are missing and we are not root and have no sudo; install: ${PACKAGES[*]}"
  fi
  log "installing ${PACKAGES[*]} (apt-get, ~470 MB)"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${PACKAGES[@]}"; then
    log "apt-get install failed; running apt-get update and retrying once"
    "${SUDO[@]}" apt-get update \
      && "${SUDO[@]}" apt-get install -y --no-install-recommends "${PACKAGES[@]}" \
      || die "apt-get could not install ${PACKAGES[*]}"
  fi
  have_toolchain || die "after apt-get install: 'go' or $GOVMOMI_SIM / $UUID_PKG still missing"
fi

TMP_GOPATH="$(mktemp -d "${TMPDIR:-/tmp}/vcsim-gopath.XXXXXX")"
TMP_BIN="$BIN.tmp.$$"
trap 'rm -rf "$TMP_GOPATH" "$TMP_BIN"' EXIT

export GOCACHE="${GOCACHE:-$ROOT/var/cache/go-build}"
log "building $BIN with $(go version | cut -d' ' -f3) and govmomi from $GOCODE"
start=$(date +%s)
# GOPATH mode: the main package may stay outside GOPATH; its imports resolve
# from /usr/share/gocode/src (Debian's -dev packages). The first, empty GOPATH
# entry is the writable one, so nothing is written under /usr/share.
if ! (cd "$ROOT" && GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$TMP_GOPATH:$GOCODE" \
      go build -o "$TMP_BIN" ./tools/vcsim); then
  die "go build failed (see the compiler output above)"
fi
mv -f "$TMP_BIN" "$BIN"
log "built $BIN ($(du -h "$BIN" | cut -f1)) in $(( $(date +%s) - start ))s"
