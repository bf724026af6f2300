# Sourced by bench/gpu.sh and bench/gpu_seg.sh: sets PY to a Python that imports melanoma with a CUDA torch.
# - The lent device machine (see bench/README.md, "GPU runs") is offline: its image's python3 has torch, torchvision,
#   timm, numpy, pandas, scikit-learn, ... but not fastai and the rest of bench/gpu-wheels.txt, which travel as wheels in
#   .whl/ (made here by `bash bench/gpu_prepare.sh`, named in the call's `carry`); they go to /tmp/site, and melanoma
#   is imported from the checkout (PYTHONPATH), so nothing is fetched there.
# - Elsewhere (no .whl/): a venv .venv-gpu with the package and its CUDA torch from PyPI.
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi: the figures will be CPU ones"
if [ -d .whl ]; then
  PY=${PY:-python3}
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
else
  test -x .venv-gpu/bin/python || python3 -m venv .venv-gpu
  .venv-gpu/bin/python -m pip install -q --upgrade pip
  .venv-gpu/bin/python -m pip install -q -e ".[all]" psutil
  PY=.venv-gpu/bin/python
fi
export PYTHONUNBUFFERED=1
"$PY" -c "import torch, melanoma; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
