#!/bin/sh
# Builds the pod prelude (native/podinit.c; its disk stage: native/stage.c), the in-pod proxy
# forwarder (native/fwd.c), the live pod executor (native/podexec.c), the warm pod's resident
# (native/podwait.c), the apply helper
# (native/wsapply.c) and an interactive pod's terminal (native/pty.c on the host, native/podtty.c
# in the pod), and the Node addon that spawns the prelude (native/spawn.c). Needs a C compiler
# (scripts/setup.sh installs one).
set -e
cd "$(dirname "$0")/.."
mkdir -p build
CFLAGS="-O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong"
build() {  # build NAME SOURCES...: rebuild when any source is newer than the binary
  out="build/clawpod-$1"; shift
  stale=0
  [ -x "$out" ] || stale=1
  for src in "$@" native/*.h; do [ "$src" -nt "$out" ] && stale=1; done
  if [ "$stale" = 1 ]; then
    cc $CFLAGS -o "$out.tmp.$$" "$@"
    mv -f "$out.tmp.$$" "$out"
  fi
}
build podinit native/podinit.c native/changeset.c native/sweep.c native/fds.c native/stage.c
build fwd native/fwd.c
build podexec native/podexec.c
build podwait native/podwait.c
build wsapply native/wsapply.c
build pty native/pty.c
build podtty native/podtty.c
# The prelude's spawner, a Node addon (src/pod/spawn.ts): against the running Node's own headers.
node_inc="$(dirname "$(dirname "$(node -p process.execPath)")")/include/node"
[ -f "$node_inc/node_api.h" ] || node_inc="${npm_config_nodedir:-/usr}/include/node"
if [ ! -f "$node_inc/node_api.h" ]; then
  echo "clawpod build: Node's headers (node_api.h) are not in $node_inc; install Node with its headers" >&2
  exit 1
fi
if [ ! -f build/clawpod-spawn.node ] || [ native/spawn.c -nt build/clawpod-spawn.node ]; then
  cc $CFLAGS -fPIC -shared -I"$node_inc" -o "build/clawpod-spawn.node.tmp.$$" native/spawn.c
  mv -f "build/clawpod-spawn.node.tmp.$$" build/clawpod-spawn.node
fi
