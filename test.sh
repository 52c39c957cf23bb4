#!/usr/bin/env bash
# The test command: installs the outside programs the tests drive when they are missing (Debian
# packages, when root), then runs the whole suite. `dotnet test` alone works where they are present.
#   promtool (package prometheus): lints the /metrics exposition
#   haproxy: a real TCP proxy in front of KestrelTcp (send-proxy, send-proxy-v2, check-send-proxy)
#   openssl: s_client, a real TLS client (SNI, ALPN, client certificates, protocol pinning)
#   chromium: the headless browser Playwright drives for the dashboard's tests (browsers cannot be
#     downloaded here, so Playwright uses this one through its ExecutablePath; nothing is downloaded)
#   clang, llvm, zlib and the other architecture's cross linker: the deployment tests publish the server
#     Native AOT for both architectures, as the Docker image's build stage does (deploy/aot-toolchain.sh)
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x "${KESTRELTCP_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  echo "test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The packages' own services (a Prometheus server, an HAProxy on port 80) are not wanted here; only
  # the programs, which the tests start themselves on loopback ports.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus haproxy >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then service haproxy stop >/dev/null 2>&1 || true; fi
fi

build_arch=$(dpkg --print-architecture)
deploy/aot-toolchain.sh "$build_arch" "$build_arch"
deploy/aot-toolchain.sh "$([ "$build_arch" = arm64 ] && echo amd64 || echo arm64)" "$build_arch"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec dotnet test "$@"
