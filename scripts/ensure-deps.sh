#!/usr/bin/env bash
# Installs what gaxx's build, tests and quick start need, when missing: npm packages (npm ci),
# and the Debian packages the integration tests use (redis-server, openssh-server and -client,
# iproute2, util-linux; nftables, bubblewrap and sudo, which bootstrap finds on a fresh VM and the
# isolated test hosts borrow from this machine through their overlays). Says what to install
# when it cannot do it itself. chromium runs the dashboard's browser tests, prometheus brings
# promtool for the alert rules' tests. gcc and libc6-dev build the task launcher's spawn
# module (scripts/build-native.mjs; without them tasks are forked, more slowly).
# --bench: also what bench:fanout compares against (pssh's parallel-ssh).
set -euo pipefail
cd "$(dirname "$0")/.."

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "gaxx needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm packages: (re)install when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# Debian packages: binary -> package.
declare -A need=([redis-server]=redis-server [sshd]=openssh-server [ssh]=openssh-client [ssh-keyscan]=openssh-client
  [ip]=iproute2 [prlimit]=util-linux [unshare]=util-linux [nsenter]=util-linux [nft]=nftables [bwrap]=bubblewrap [sudo]=sudo
  [chromium]=chromium [promtool]=prometheus [cc]=gcc)
if [ "${1:-}" = "--bench" ]; then
  need+=([parallel-ssh]=pssh [ssh-keygen]=openssh-client)
fi
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${need[$bin]}")
done
[ -f /usr/include/sys/resource.h ] || compgen -G '/usr/include/*/sys/resource.h' >/dev/null || missing+=(libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-deps: installing Debian packages: $pkgs" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >&2
    # The package may start a system redis/sshd; gaxx starts its own on private sockets/ports.
  else
    echo "ensure-deps: missing Debian packages: $pkgs" >&2
    echo "install them with: sudo apt-get install -y $pkgs" >&2
    exit 1
  fi
fi
