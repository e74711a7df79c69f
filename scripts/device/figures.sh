#!/usr/bin/env bash
# On a GPU machine: the GPU speed figures in one call, from the repository root:
#   bash scripts/device/figures.sh   (with .whl/ and .device/ copied beside it)
# after, here, `bash scripts/device/wheels.sh` (the wheels the GPU image lacks, into .whl/)
# and, for realistic finishing, a trained checkpoint copied to .device/checkpoint.ckpt.
# It installs those wheels and nuclei (no downloads) into the image's Python, then writes
# under $OUT: train-gpu.json (training img/s: plain PyTorch and Lightning eager, bf16-mixed,
# torch.compile, channels_last), predict-gpu.json (scripts/benchmark_predict.py: network,
# postprocessing and whole nuclei-predict Mpx/s, peak memory) and figures.log.
# FIGURES_DEVICE=cpu FIGURES_QUICK=1 NO_INSTALL=1 runs the same steps small, on a CPU, here.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/figures}
mkdir -p "$OUT"
exec > >(tee "$OUT/figures.log") 2>&1
PY=${PYTHON:-python3}
DEVICE=${FIGURES_DEVICE:-cuda}
export PYTHONUNBUFFERED=1

if [ -z "${NO_INSTALL:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
fi
"$PY" - <<'PY' || exit 1
import cv2, lightning, torch
import nuclei
print("torch", torch.__version__, "lightning", lightning.__version__, "opencv", cv2.__version__)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
if not hasattr(cv2, "IMWRITE_PNG_FILTER"):
    raise SystemExit(f"nuclei writes PNGs with OpenCV >= 4.11; this image has {cv2.__version__}")
PY

if [ -n "${FIGURES_QUICK:-}" ]; then
    train=(--base 8 --depth 2 --size 64 --batch 2 --steps 1 --warmup 1 --repeats 1
           --predict-size 128 --tile 64 --overlap 8 --predict-repeats 1)
    variants=(lightning_vs_plain lightning_bf16)
    predict=(--count 2 --size 256 --large-size 0)
else
    train=(--base 32 --depth 4 --size 256 --batch 32 --steps 30 --warmup 5 --repeats 4)
    variants=(lightning_vs_plain lightning_bf16 lightning_channels_last lightning_compiled
              predict_eager_vs_compiled)
    predict=(--count 64 --size 1024 --large-size 4096)
fi
checkpoint=()
[ -f .device/checkpoint.ckpt ] && checkpoint=(--ckpt .device/checkpoint.ckpt)

# The prediction figures first (the target: the whole pipeline >= 0.8x
# min(network, postprocessing)); each measurement of the training benchmark has its own
# limit, so that a slow compilation costs its own figure only.
status=0
timeout "${PREDICT_TIMEOUT:-300}" "$PY" scripts/benchmark_predict.py --device "$DEVICE" \
    "${predict[@]}" "${checkpoint[@]}" --workdir "${TMPDIR:-/tmp}/predict-bench" \
    --out "$OUT/predict-gpu.json" || status=1
timeout "${TRAIN_TIMEOUT:-210}" "$PY" scripts/benchmark.py --device "$DEVICE" "${train[@]}" \
    --variants "${variants[@]}" --worker-timeout 80 --out "$OUT/train-gpu.json" || status=1
exit $status
