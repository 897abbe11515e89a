#!/bin/sh
# Builds the pod prelude (native/podinit.c). Needs a C compiler (scripts/setup.sh installs one).
set -e
cd "$(dirname "$0")/.."
mkdir -p build
if [ ! -x build/clawpod-podinit ] || [ native/podinit.c -nt build/clawpod-podinit ]; then
  cc -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong -o build/clawpod-podinit.tmp native/podinit.c
  mv build/clawpod-podinit.tmp build/clawpod-podinit
fi
