#!/bin/sh
# tools/install-deps.sh: installs, with apt-get, the Debian packages the build and the
# tests need, and only those that are missing; then the npm packages of the editor tests
# (tests/editors/package.json, into tests/editors/node_modules, which git ignores).
# Idempotent; safe to run on every build.
set -eu
cd "$(dirname "$0")/.."
# graphviz: tests/graph.sh renders flowc graph's DOT; vim: the Vim syntax and indent tests
PKGS="build-essential cmake pkg-config re2c bison libjansson-dev libcurl4-openssl-dev \
libhiredis-dev check libevent-dev libssl-dev libedit-dev libmimalloc-dev redis-server lua5.4 clang \
curl jq openssl python3 graphviz vim"
# node and npm: the VS Code grammar tests (Debian's, unless the machine has its own)
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi
if [ ! -f tests/editors/node_modules/.package-lock.json ] ||
   ! cmp -s tests/editors/package-lock.json tests/editors/node_modules/.flowlang-lock; then
  echo "install-deps: npm ci in tests/editors"
  if (cd tests/editors && npm ci --no-audit --no-fund --loglevel=error); then
    cp tests/editors/package-lock.json tests/editors/node_modules/.flowlang-lock
  else
    echo "install-deps: npm ci failed; the editors/vscode test will fail" >&2
  fi
fi
