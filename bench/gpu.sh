#!/usr/bin/env bash
# GPU figures for the README's sizing table, in one run (under 8 minutes on one GPU): `python bench/gpu.py --real`
# with the environment bench/gpu_env.sh sets up (offline on the device machine, from the wheels in .whl/).
#   bash bench/gpu.sh            # results in bench/_work/gpu.json (copied to $OUT when set)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/gpu_env.sh
timeout 420 "$PY" bench/gpu.py --real "$@" || echo "bench/gpu.py stopped (rc $?): partial results above"
if [ -n "${OUT:-}" ]; then cp bench/_work/gpu.json "$OUT/" 2>/dev/null || true; fi
