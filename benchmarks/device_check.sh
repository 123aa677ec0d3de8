#!/usr/bin/env bash
# One pass over what needs an accelerator, sized for ~8 minutes on one H100/H200:
#   1. the attention kernels of the platform against the XLA reference (values, gradients) and
#      their forward+backward time at the 1.3B shape (cuDNN at two max_segments);
#   2. benchmarks/model_throughput.py (the real train step: packed rows, dropout, AdamW,
#      accumulation) for the 125M, 350M and 1.3B presets at context 2048 in bf16, a few dozen
#      timed steps each after compilation, then the 1.3B step again with the opt-in XLA GPU flags;
#   3. the 1.3B preset for 100 steps: the loss must fall, and the measured peak memory must lie
#      within 10% of the memory planner's figure for the same step.
# Run from anywhere:  bash benchmarks/device_check.sh [--tiny] [--dry-run]
#   --tiny     the same steps with the tiny preset at context 128 (a CPU smoke test);
#   --dry-run  print the commands only.
# Figures go to $OUT (default outputs/device_check): one JSON per step and summary.txt.
# The device has JAX, flax, optax, orbax and PyTorch but no package registry: the small wheels
# mmlaws also needs are installed from .whl/ (benchmarks/fetch_wheels.sh fills it here).
set -uo pipefail
cd "$(dirname "$0")/.."
TINY=0; DRY=0
for arg in "$@"; do
  case "$arg" in
    --tiny) TINY=1 ;;
    --dry-run) DRY=1 ;;
    *) echo "device_check: unknown argument $arg (use --tiny, --dry-run)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-outputs/device_check}
PY=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
: > "$OUT/summary.txt"

run() {  # run (or print) one step; its output goes to the console and to $OUT/<name>.log
  local name=$1; shift
  echo "+ $*"
  if [ "$DRY" = 1 ]; then return 0; fi
  if "$@" 2>&1 | tee "$OUT/$name.log"; then
    tail -n 1 "$OUT/$name.log" >> "$OUT/summary.txt"
  else
    echo "device_check: $name FAILED (see $OUT/$name.log)" | tee -a "$OUT/summary.txt"
  fi
}

if [ "$DRY" = 0 ] && compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install --quiet --no-index --no-deps --find-links .whl tqdm gin-config \
    || echo "device_check: could not install the wheels of .whl/ (continuing)"
fi

if [ "$TINY" = 1 ]; then
  PRESETS=("tiny 8 none"); LOSS_PRESET=tiny; LOSS_BATCH=8; LOSS_LR=3e-3
  COMMON=(--layout tiny --context 128 --doc_len 16 96 --dtype float32 --warmup 2)
  STEPS=3; LOSS_STEPS=40; ATTN=(--tiny)
else  # rows per step and remat: 'cheapest' is the memory planner's pick on this device
  PRESETS=("125M 16 none" "350M 8 none" "1.3B 8 cheapest"); LOSS_PRESET=1.3B; LOSS_BATCH=8
  LOSS_LR=2e-4; COMMON=(--context 2048 --dtype bfloat16 --warmup 3)
  STEPS=30; LOSS_STEPS=100; ATTN=()
fi

run devices "$PY" -c "import jax; print('devices:', jax.devices(), jax.devices()[0].device_kind)"
run attention "$PY" benchmarks/attention_check.py "${ATTN[@]}"
for spec in "${PRESETS[@]}"; do
  set -- $spec
  run "throughput_$1" "$PY" benchmarks/model_throughput.py --preset "$1" --batch "$2" \
    --remat "$3" --steps "$STEPS" "${COMMON[@]}" --json "$OUT/throughput_$1.json"
  REMAT=$3
done
run "throughput_${LOSS_PRESET}_xla_flags" "$PY" benchmarks/model_throughput.py \
  --preset "$LOSS_PRESET" --batch "$LOSS_BATCH" --remat "$REMAT" --steps "$STEPS" \
  "${COMMON[@]}" --gpu_xla_flags --json "$OUT/throughput_${LOSS_PRESET}_xla_flags.json"
run "loss_${LOSS_PRESET}" "$PY" benchmarks/model_throughput.py --preset "$LOSS_PRESET" \
  --batch "$LOSS_BATCH" --remat "$REMAT" --steps "$LOSS_STEPS" "${COMMON[@]}" \
  --lr "$LOSS_LR" --lr_warmup 10 --json "$OUT/loss_${LOSS_PRESET}.json"
run verdict "$PY" - "$OUT/loss_${LOSS_PRESET}.json" <<'PYEOF'
import json, sys
out = json.load(open(sys.argv[1]))
losses = out["losses"]
first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
falls = last < first - 0.5
memory = (None if not out["peak_bytes"] else out["peak_bytes"] / out["planned_bytes"])
fits = memory is not None and 0.9 <= memory <= 1.1
print(f"loss {first:.3f} -> {last:.3f} over {len(losses)} steps: "
      f"{'falls' if falls else 'DOES NOT FALL'}; peak memory / planned: "
      + ("n/a (no device memory statistics here)" if memory is None else
         f"{memory:.3f} ({'within' if fits else 'NOT within'} 10%)"))
print(f"device check: {'PASS' if falls and (fits or memory is None) else 'FAIL'}")
PYEOF
if [ "$DRY" = 0 ]; then echo "--- summary ($OUT/summary.txt)"; cat "$OUT/summary.txt"; fi
