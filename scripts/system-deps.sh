#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only when missing (CI runs on a fresh machine).
#
# Usage: scripts/system-deps.sh PROGRAM:PACKAGE ...   e.g. scripts/system-deps.sh faketime:faketime
# Idempotent and safe to run concurrently (flock). Needs root (CI and the sessions run as root).
set -euo pipefail

missing=()
for pair in "$@"; do
  program="${pair%%:*}" package="${pair#*:}"
  command -v "$program" >/dev/null 2>&1 || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "system-deps: installing ${missing[*]} from Debian" >&2
exec 9>/tmp/qlrf-apt.lock
flock 9
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
