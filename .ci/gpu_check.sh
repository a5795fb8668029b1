#!/usr/bin/env bash
# The checks that need a GPU, as one prepared script for a session that is lent a GPU machine
# (the `device` tool runs a command there over a copy of the working tree; CI never has a GPU).
#
#   1. the CUDA tests (skipped everywhere else): forward passes against the CPU, fused batch norm,
#      reorg, Detector's automatic fp16;
#   2. `bench model` and `bench train` on the GPU: the speed-ups of fusing, channels-last, bf16/fp16,
#      and each variant's fraction of the measured conv throughput;
#   3. chapter 9's GPU recipe through the command line (full width, amp auto, 3,000 updates,
#      validation every 10 epochs), then the test mAP of its best checkpoint.
#
# It runs with the machine's own python3 (PyTorch with CUDA; the library needs only torch, numpy,
# Pillow, tqdm and scikit-learn) and the repository on PYTHONPATH. BCCD comes from $YOLOV2_DATA:
# before the call, copy ../shared/data/bccd (8 MB) and ../shared/data/README.md into .gpu-data/,
# which .gitignore ignores, and carry it:
#     mkdir -p .gpu-data && cp -r ../shared/data/bccd ../shared/data/README.md .gpu-data/
#     run(command="bash .ci/gpu_check.sh", carry=[".gpu-data"], timeout_s=600)
# Results go to $OUT, or ./gpu-check outside the device tool: gpu-check.log (everything printed),
# bench-model.json, bench-train.json, train-history.json and test-map.json (the device tool brings
# back at most 8 files).
# GPU_CHECK_DEVICE (default cuda), GPU_CHECK_UPDATES (3000) and GPU_CHECK_QUICK=1 (tiny benchmarks)
# let the script itself be tried on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export YOLOV2_DATA="${YOLOV2_DATA:-$PWD/.gpu-data}"
PY="${PYTHON:-python3}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
UPDATES="${GPU_CHECK_UPDATES:-3000}"
OUT_DIR="${OUT:-$PWD/gpu-check}"
mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/gpu-check.log") 2>&1

if [[ ! -f "$YOLOV2_DATA/bccd/bccd_boxes.csv" ]]; then
    echo "gpu_check: no BCCD under YOLOV2_DATA=$YOLOV2_DATA (copy ../shared/data/bccd into .gpu-data/ and carry it)" >&2
    exit 2
fi
"$PY" - "$DEVICE" <<'EOF'
import sys, torch
from yolov2_lib.detect import cuda_supports_bf16
from yolov2_lib.runtime import hardware
device = torch.device(sys.argv[1])
if device.type == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device here")
print(f"torch {torch.__version__}; {hardware(device)}; native CUDA bf16: {cuda_supports_bf16()}")
EOF

step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }

if [[ "$DEVICE" == cuda* ]]; then
    step "CUDA tests"
    "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_darknet.py tests/test_detect.py tests/test_model.py \
        tests/test_passthrough.py -k "gpu or cuda"
fi

if [[ "${GPU_CHECK_QUICK:-0}" == 1 ]]; then
    model_args=(--batch 1 --repeats 1 --warmup 0 --width 0.125 --size 64)
    train_args=(--batch 1 --repeats 1 --warmup 0 --width 0.125 --size 64 --allocator default)
else
    model_args=(--batch 1 8 32 --repeats 20 --warmup 5)
    train_args=(--batch 16 --repeats 10 --warmup 3)
fi
step "bench model"
"$PY" -m yolov2_lib.bench model --device "$DEVICE" "${model_args[@]}" --json "$OUT_DIR/bench-model.json"
step "bench train"
"$PY" -m yolov2_lib.bench train --device "$DEVICE" "${train_args[@]}" --json "$OUT_DIR/bench-train.json"

step "chapter 9's GPU recipe: $UPDATES updates"
width=1.0; eval_every=10; sizes=320,352,384,416; workers=4
if [[ "${GPU_CHECK_QUICK:-0}" == 1 ]]; then width=0.0625; eval_every=0; sizes=320; workers=1; fi
rm -rf "$OUT_DIR/run"
"$PY" -m yolov2_lib.cli train --dataset bccd --width "$width" --amp auto --device "$DEVICE" --sizes "$sizes" \
    --batch-size 16 --lr 0.01 --burn-in 30 --steps 0.8,0.95 --grad-clip 10 --ema-decay 0.999 \
    --max-iterations "$UPDATES" --eval-every "$eval_every" --workers "$workers" --out "$OUT_DIR/run" --no-progress
"$PY" -m yolov2_lib.cli eval "$OUT_DIR/run/best.pt" --dataset bccd --split test --device "$DEVICE" \
    --no-progress --json "$OUT_DIR/test-map.json"
mv "$OUT_DIR/run/history.json" "$OUT_DIR/train-history.json"
rm -rf "$OUT_DIR/run"  # the checkpoints (about 200 MB each at full width) do not come back
echo; echo "gpu_check: done; results in $OUT_DIR"
