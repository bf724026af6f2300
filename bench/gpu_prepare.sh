#!/usr/bin/env bash
# Run here, before a device call: what the offline device machine needs and cannot fetch, in ignored folders to name in
# the call's `carry` (64 MiB in all with the working tree; this is about 50):
#   .whl/                            the wheels of bench/gpu-wheels.txt for its Python (PYVER, default 3.12), ~22 MB
#   bench/_work/gpu-data/<seg mini>  a copy of ../shared/data/isic-2017-seg-mini (../shared does not travel), ~25 MB
#   bash bench/gpu_prepare.sh && # then: run(command="bash bench/gpu_seg.sh", carry=[".whl", "bench/_work/gpu-data"])
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl -r bench/gpu-wheels.txt
SEG=${SEG_DATA:-../shared/data/isic-2017-seg-mini}
if [ -d "$SEG" ]; then rm -rf bench/_work/gpu-data && mkdir -p bench/_work/gpu-data && cp -r "$SEG" bench/_work/gpu-data/; fi
du -sh .whl bench/_work/gpu-data 2>/dev/null || true
