#!/usr/bin/env bash
# GPU figures for the README's sizing table, in one run (under 8 minutes on one GPU): sets up a venv with the CUDA
# build of torch from PyPI (the `device` machine starts bare), then `python bench/gpu.py --real`.
#   bash bench/gpu.sh            # results in bench/_work/gpu.json (copied to $OUT when set)
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi: the figures will be CPU ones"
test -x .venv-gpu/bin/python || python3 -m venv .venv-gpu
.venv-gpu/bin/python -m pip install -q --upgrade pip
.venv-gpu/bin/python -m pip install -q -e ".[all]" psutil
.venv-gpu/bin/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
timeout 420 .venv-gpu/bin/python bench/gpu.py --real "$@" || echo "bench/gpu.py stopped (rc $?): partial results above"
if [ -n "${OUT:-}" ]; then cp bench/_work/gpu.json "$OUT/" 2>/dev/null || true; fi
