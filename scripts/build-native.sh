#!/bin/sh
# Builds the pod prelude (native/podinit.c) and the in-pod proxy forwarder (native/fwd.c). Needs a C compiler (scripts/setup.sh installs one).
set -e
cd "$(dirname "$0")/.."
mkdir -p build
for tool in podinit fwd; do
  if [ ! -x "build/clawpod-$tool" ] || [ "native/$tool.c" -nt "build/clawpod-$tool" ]; then
    cc -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong -o "build/clawpod-$tool.tmp" "native/$tool.c"
    mv "build/clawpod-$tool.tmp" "build/clawpod-$tool"
  fi
done
