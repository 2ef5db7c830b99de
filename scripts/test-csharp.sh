#!/usr/bin/env bash
# Builds and tests the C# binding (bindings/csharp) under Mono: `make test-csharp`.
#  1. installs mcs + mono if missing (scripts/install-mono.sh);
#  2. compiles PatchCore.dll (C# 7, no Span: the netstandard2.0 surface), the tests and the
#     example into build/csharp/, plus a second PatchCore.dll with PATCHCORE_SPAN (Mono's
#     corlib has Span<T>) into build/csharp/span/ to test the Span overloads;
#  3. puts libpatchcore.so.0 and libonnxruntime.so.1 next to the assemblies (Mono resolves
#     DllImport("patchcore") through PatchCore.dll.config's dllmap to libpatchcore.so.0 in
#     the assembly's folder);
#  4. runs the tests (exit code non-zero on any failure) and the example on the golden images.
# Needs build/lib from `make lib` (or PATCHCORE_LIBDIR pointing at a folder holding
# libpatchcore.so.0 and libonnxruntime.so.1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/bindings/csharp
LIBDIR=${PATCHCORE_LIBDIR:-$ROOT/build/lib}
OUT=$ROOT/build/csharp
GOLDEN=$ROOT/testdata/golden

bash "$ROOT/scripts/install-mono.sh"

for f in libpatchcore.so.0 libonnxruntime.so.1; do
  if [ ! -e "$LIBDIR/$f" ]; then
    echo "test-csharp: $LIBDIR/$f is missing; run 'make lib' first" >&2
    exit 1
  fi
done

rm -rf "$OUT"
mkdir -p "$OUT/span" "$OUT/example-train" "$OUT/example-out"

MCS=(mcs -nologo -warnaserror+ -r:System.dll -r:System.Core.dll)
echo "== compiling with $(mcs --version)"
"${MCS[@]}" -target:library -unsafe -langversion:7 -doc:"$OUT/PatchCore.xml" \
  -out:"$OUT/PatchCore.dll" "$SRC"/src/*.cs
"${MCS[@]}" -target:exe -langversion:7 -r:"$OUT/PatchCore.dll" \
  -out:"$OUT/PatchCoreTests.exe" "$SRC/tests/PatchCoreTests.cs"
"${MCS[@]}" -target:exe -langversion:7 -r:"$OUT/PatchCore.dll" \
  -out:"$OUT/PatchCoreExample.exe" "$SRC/examples/Console/Program.cs"
"${MCS[@]}" -target:library -unsafe -langversion:7.2 -define:PATCHCORE_SPAN \
  -out:"$OUT/span/PatchCore.dll" "$SRC"/src/*.cs
"${MCS[@]}" -target:exe -langversion:7.2 -define:PATCHCORE_SPAN -r:"$OUT/span/PatchCore.dll" \
  -out:"$OUT/span/PatchCoreTests.exe" "$SRC/tests/PatchCoreTests.cs"

for dir in "$OUT" "$OUT/span"; do
  cp "$SRC/PatchCore.dll.config" "$dir/"
  # libpatchcore finds libonnxruntime.so.1 next to itself, so both go in each folder.
  ln -sf "$(readlink -f "$LIBDIR/libpatchcore.so.0")" "$dir/libpatchcore.so.0"
  ln -sf "$(readlink -f "$LIBDIR/libonnxruntime.so.1")" "$dir/libonnxruntime.so.1"
done

echo "== tests (C# 7 build)"
(cd "$OUT" && mono --debug PatchCoreTests.exe --golden "$GOLDEN")

echo "== Span overloads (PATCHCORE_SPAN build)"
(cd "$OUT/span" && mono --debug PatchCoreTests.exe --golden "$GOLDEN" Span)

echo "== example"
cp "$GOLDEN"/mnv2/png/train_good_00[01].png "$OUT/example-train/"
(cd "$OUT" && mono --debug PatchCoreExample.exe \
  --backbone "$GOLDEN/mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx" \
  --layers block_6_expand_relu,block_10_expand_relu --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 \
  --sampler identity --out "$OUT/example-out" "$OUT/example-train" \
  "$GOLDEN/mnv2/png/test_good_001.png" "$GOLDEN/mnv2/png/test_stain_000.png")
for name in test_good_001 test_stain_000; do
  ppm=$OUT/example-out/${name}_heatmap.ppm
  # P6 header + 224 x 224 RGB pixels
  if [ "$(head -c 2 "$ppm")" != "P6" ] || [ "$(stat -c %s "$ppm")" -ne $((15 + 224 * 224 * 3)) ]; then
    echo "test-csharp: the example wrote no valid heat map $ppm" >&2
    exit 1
  fi
done
echo "test-csharp: all passed"
