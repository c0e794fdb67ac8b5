#!/bin/sh
# tools/install-deps.sh: installs, with apt-get, the Debian packages the build and the
# tests need, and only those that are missing. Idempotent; safe to run on every build.
set -eu
PKGS="build-essential cmake pkg-config re2c bison libjansson-dev libcurl4-openssl-dev \
libhiredis-dev check libevent-dev libssl-dev libedit-dev redis-server lua5.4 clang \
curl jq openssl python3"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
  exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
