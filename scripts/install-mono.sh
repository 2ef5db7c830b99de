#!/usr/bin/env bash
# Installs the Mono C# compiler (mcs) and runtime (mono) used to build and test the C# binding
# (bindings/csharp). Debian packages only, without recommends: mcs, the runtime and the
# System / System.Core assemblies the binding compiles against. Idempotent: does nothing when
# both `mcs` and `mono` are already on PATH.
set -euo pipefail

if command -v mcs >/dev/null 2>&1 && command -v mono >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-mono.sh: apt-get not found; install mono (mcs + runtime) by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  mono-mcs mono-runtime libmono-system-core4.0-cil >/dev/null

command -v mcs >/dev/null && command -v mono >/dev/null
echo "install-mono.sh: $(mono --version | head -n 1)"
