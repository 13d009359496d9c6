#!/usr/bin/env bash
# The GPU checks of issue 22 in one go, for a session that is lent a GPU (about 10 minutes on
# one H100/H200). Run from the repository root on the GPU machine, with the release binaries
# built here (carry them: `fairtat`, `fairtat-bench`) and Fashion-MNIST at its Debian path:
#
#   bench/gpu_check.sh [BIN_DIR] [OUT_DIR]
#
# 1. PRN-18 PGD-10 AT step, fairtat and PyTorch on the same GPU, fp32 and bf16, batch 128 and
#    512 (fairtat-bench; the reference reports torch.cuda.max_memory_allocated too);
# 2. bf16 fidelity: the quick Fashion-MNIST presets of PGD-AT and FAIR-TAT, seeds 0-3, fp32 and
#    bf16, then bench/fidelity.py's table (every column's 4-seed mean, bf16 minus fp32);
# 3. eval.batch_size = auto: AutoAttack (standard) on 1,000 test images of the first PGD-AT
#    checkpoint at batch 256 and at auto (1,024 for SmallCNN), seconds per stage and whether
#    every class came out equal;
# 4. cuDNN's autotuner: step 1 again with --cudnn-benchmark on both sides;
# 4b. autocast_scope: step 1 again with --autocast-per-forward on both sides (a bf16 region per
#    forward instead of one per step: what casting the weights in every forward costs a GPU);
# 5. fidelity20: the same presets trained 20 epochs, seeds 0-1 (on the CPU, bf16 FAIR-TAT's
#    worst class fell behind fp32's in the last 10 of 20 epochs; BENCHMARKS.md).
#
# STEPS picks steps (default "bench fidelity autoattack", about 9 minutes on an H200; "cudnn
# fidelity20" another 8; "autocast_scope" about 1); autoattack needs a fidelity run's
# checkpoint. DEV=cpu AA_SUBSET=50 STEPS=autoattack tries step 3 on a CPU.
set -euo pipefail
STEPS=${STEPS:-bench fidelity autoattack}
DEV=${DEV:-cuda:0}
PY=${PY:-python3}  # a python with torch (`make bench` passes the venv's)
AA_SUBSET=${AA_SUBSET:-1000}
want() { [[ " $STEPS " == *" $1 "* ]]; }
BIN=${1:-target/release}
OUT=${2:-${OUT:-/tmp/gpu-check}}
mkdir -p "$OUT"
TORCH_LIB=$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt" || true

step() {  # step [extra fairtat-bench flags]: PRN-18 at batch 128 and 512, fp32 and bf16
  for batch in 128 512; do
    for precision in fp32 bf16; do
      "$BIN/fairtat-bench" --device "$DEV" --batch "$batch" --precision "$precision" \
        --only prn18 --python "$PY" --reference bench/pytorch_reference.py "$@" \
        | tee -a "$OUT/bench.txt"
    done
  done
}
if want bench; then
  step
  "$PY" bench/pytorch_reference.py prn18 --device cuda --batch 128 | tee -a "$OUT/bench.txt"
fi

if want autocast_scope; then
  step --autocast-per-forward
fi

fidelity() {  # fidelity OUT_SUBDIR "SEEDS" [extra --set values]: both presets, both precisions
  local dir=$1 seeds=$2
  shift 2
  for preset in at fairtat; do
    for seed in $seeds; do
      for precision in fp32 bf16; do
        "$BIN/fairtat" train --config "configs/fmnist-quick-$preset.toml" --seed "$seed" \
          --device "$DEV" --set "train.precision=\"$precision\"" "$@" \
          --out "$OUT/$dir/$preset-$precision" >"$OUT/train-$dir-$preset-$precision-$seed.log" 2>&1
      done
    done
  done
  "$PY" bench/fidelity.py "$OUT/$dir" | tee "$OUT/$dir.txt"
}
if want fidelity; then
  fidelity runs "0 1 2 3"
fi
if want fidelity20; then
  fidelity runs20 "0 1" --set train.epochs=20
fi

if want autoattack; then
  CKPT=$(ls -d "$OUT"/runs/at-fp32/*/ | head -n 1)checkpoints/last.safetensors
  for batch in 256 auto; do
    "$BIN/fairtat" eval --checkpoint "$CKPT" --suite standard --subset "$AA_SUBSET" --device "$DEV" \
      --batch-size "$batch" --out "$OUT/aa-$batch" >"$OUT/aa-$batch.log" 2>&1
  done
  python3 - "$OUT" <<'PY' | tee "$OUT/autoattack.txt"
import json, sys
runs = {b: json.load(open(f"{sys.argv[1]}/aa-{b}/eval.json")) for b in ("256", "auto")}
for b, r in runs.items():
    stages = ", ".join(f"{s['stage']} {s.get('seconds', float('nan')):.1f}" for s in r["autoattack"])
    print(f"batch {b}: {r['seconds']:.1f} s ({stages})")
acc = {b: [e["confusion"] for e in r["evals"]] for b, r in runs.items()}
print("per-class results equal:", acc["256"] == acc["auto"])
PY
fi

if want cudnn; then
  step --cudnn-benchmark
fi
