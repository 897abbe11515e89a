#!/bin/sh
# Idempotent set-up on Debian 12: system packages, npm packages, build. Fast when done before.
set -e
cd "$(dirname "$0")/.."
need=""
have() { command -v "$1" >/dev/null 2>&1; }
have bwrap || need="$need bubblewrap"
have cc || need="$need gcc libc6-dev"          # builds the pod prelude (native/podinit.c)
have g++ || need="$need g++"                    # node-gyp builds better-sqlite3 from source
have make || need="$need make"
have python3 || need="$need python3"
have setpriv || need="$need util-linux"
# Formats the pods' disk stage images as root (src/pod/stage.ts); without it the stage is memory.
[ -x /usr/sbin/mke2fs ] || [ -x /sbin/mke2fs ] || have mke2fs || need="$need e2fsprogs"
have curl || need="$need curl"               # the HTTP client the egress tests run inside pods
[ -e /etc/ssl/certs/ca-certificates.crt ] || need="$need ca-certificates"
# The dashboard's browser test (test/dashboard.test.ts) drives Debian's chromium headless through
# playwright-core, which never downloads a browser of its own.
[ -x /usr/bin/chromium ] || need="$need chromium"
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "clawpod setup: missing system packages:$need (install as root: apt-get install$need)" >&2
    exit 1
  fi
  echo "clawpod setup: installing$need" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# node-gyp must build against the installed Node's headers: nothing is downloaded here.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_version.h ]; then export npm_config_nodedir=/usr; fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.json
node scripts/bundle.mjs
sh scripts/build-native.sh
