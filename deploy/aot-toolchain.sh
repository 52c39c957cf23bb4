#!/bin/sh
# The native toolchain a Native AOT publish links with, installed where it is missing (Debian or Ubuntu,
# as root): clang, llvm (objcopy strips the symbols) and zlib for the build machine, and, when the target
# architecture differs, the target's cross linker and zlib (docs: core/deploying/native-aot/cross-compile).
#   deploy/aot-toolchain.sh TARGETARCH [BUILDARCH]     (Docker's names: amd64, arm64)
# The Dockerfile runs it in its build stage (mcr.microsoft.com/dotnet/sdk:10.0-noble-aot has the first part
# already, so there it adds the cross part only, for a multi-architecture build); test.sh runs it for this
# machine's architecture and the other one before the tests publish both. Nothing is done when all is present.
set -eu

target=${1:?usage: aot-toolchain.sh TARGETARCH [BUILDARCH]}
build=${2:-$(dpkg --print-architecture)}

triple() {
  case $1 in
    amd64) echo x86-64-linux-gnu ;;
    arm64) echo aarch64-linux-gnu ;;
    *) echo "aot-toolchain.sh: $1 is not an architecture this server is published for (amd64, arm64)" >&2; exit 2 ;;
  esac
}

has_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

packages=""
command -v clang >/dev/null 2>&1 || packages="$packages clang"
command -v llvm-objcopy >/dev/null 2>&1 || command -v objcopy >/dev/null 2>&1 || packages="$packages llvm"
has_package "zlib1g-dev:$build" || has_package zlib1g-dev || packages="$packages zlib1g-dev"
if [ "$target" != "$build" ]; then
  cross=$(triple "$target")
  triple "$build" >/dev/null
  command -v "$cross-gcc" >/dev/null 2>&1 || packages="$packages gcc-$cross"
  has_package "zlib1g-dev:$target" || packages="$packages zlib1g-dev:$target"
fi

[ -z "$packages" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "aot-toolchain.sh: missing$packages; install them (apt-get install$packages) or run as root" >&2
  exit 1
fi

echo "aot-toolchain.sh: installing$packages" >&2
if [ "$target" != "$build" ] && ! dpkg --print-foreign-architectures | grep -qx "$target"; then
  . /etc/os-release
  if [ "${ID:-}" = ubuntu ] && [ -f /etc/apt/sources.list.d/ubuntu.sources ]; then
    # Ubuntu serves amd64 from archive.ubuntu.com and the other architectures from ports.ubuntu.com, so the
    # existing sources are pinned to the build machine's and the target's get their own (Debian needs neither).
    case $target in
      amd64) uris="http://archive.ubuntu.com/ubuntu/ http://security.ubuntu.com/ubuntu/" ;;
      *) uris="http://ports.ubuntu.com/ubuntu-ports/" ;;
    esac
    grep -q '^Architectures:' /etc/apt/sources.list.d/ubuntu.sources \
      || sed -i "/^Signed-By/a Architectures: $build" /etc/apt/sources.list.d/ubuntu.sources
    cat > "/etc/apt/sources.list.d/$target.sources" <<EOF
Types: deb
URIs: $uris
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates $VERSION_CODENAME-security
Components: main restricted universe
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
Architectures: $target
EOF
  fi
  dpkg --add-architecture "$target"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $packages >&2
