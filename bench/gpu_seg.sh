#!/usr/bin/env bash
# Issue 25's segmentation lever that needs a GPU: `melanoma seg train` (one network, `--hold-out 0.2`: the 150 official
# validation images and a held-out fifth of the training images are both scored) at larger inputs with longer
# schedules than the CPU default (128x96, 7 epochs). Each config is HEIGHTxWIDTH:EPOCHS; each run's metrics.json and
# its last lines go to $OUT. On the device machine: `bash bench/gpu_prepare.sh` here first, then
#   run(command="bash bench/gpu_seg.sh", carry=[".whl", "bench/_work/gpu-data"], timeout_s=540)
#   CONFIGS="96x128:7 144x192:20" bash bench/gpu_seg.sh --bs 32     # other configs; extra args go to `seg train`
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/gpu_env.sh || exit 1
DATA=${SEG_DATA:-bench/_work/gpu-data/isic-2017-seg-mini}
[ -d "$DATA" ] || DATA=../shared/data/isic-2017-seg-mini
OUTDIR=${OUT:-bench/_work/gpu-seg}; mkdir -p "$OUTDIR"
for c in ${CONFIGS:-96x128:7 144x192:20 192x256:20}; do
  hw=${c%%:*}; e=${c##*:}; h=${hw%x*}; w=${hw#*x}; name=gpu-seg-${w}x${h}-e$e
  echo "== $name"
  timeout "${STEP_S:-170}" "$PY" -m melanoma.cli seg train --data "$DATA" --name "$name" --models-dir bench/_work/gpu-models \
    --height "$h" --width "$w" --epochs "$e" --members 1 --hold-out 0.2 "$@" > "$OUTDIR/$name.log" 2>&1
  echo "rc $?"; grep -E '^seg (epoch|train)' "$OUTDIR/$name.log" | tail -n 4
  cp "bench/_work/gpu-models/$name/metrics.json" "$OUTDIR/$name.json" 2>/dev/null || true
done
