#!/usr/bin/env bash
# The test command: installs the outside programs the tests drive when they are missing (Debian
# packages, when root), then runs the whole suite. `dotnet test` alone works where they are present.
#   promtool (package prometheus): lints the /metrics exposition
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  echo "test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The package's own Prometheus server is not wanted here; only its tools.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
fi

exec dotnet test "$@"
