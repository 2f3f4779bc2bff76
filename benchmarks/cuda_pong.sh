#!/usr/bin/env bash
# The Pong presets with device=cuda, in one pass that fits a short GPU lease (about 9 minutes):
#   1. bare update cost of the Atari networks on the GPU (benchmarks/update_cost.py --device cuda);
#   2. configs/dqn_pong_fast.yaml (Nature-style DQN, one game) for FAST_MIN minutes: steps/s;
#   3. configs/dqn_pong_hour.yaml (PQN, 32 games) for HOUR_MIN minutes through benchmarks/pong_hour.py:
#      steps/s, the learning curve, the final score on 30 fresh episodes and the exported agent.
#
#   OUT=/tmp/cuda_pong bash benchmarks/cuda_pong.sh
#
# Results go to $OUT (default /tmp/cuda_pong). The env threads follow the machine's cores.
set -uo pipefail
OUT=${OUT:-/tmp/cuda_pong}
FAST_MIN=${FAST_MIN:-1.5}
HOUR_MIN=${HOUR_MIN:-5}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-/tmp/cuda_pong_runs}
THREADS=$(( $(nproc) > 4 ? $(nproc) - 4 : 1 ))
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUNS"
rm -rf "$RUNS"/*

echo "== machine: $(nproc) cores, env threads $THREADS, device $DEVICE"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

echo "== 1. update cost"
$PY benchmarks/update_cost.py --device "$DEVICE" --reps 100 --json "$OUT/update_cost_$DEVICE.json" >/dev/null

echo "== 2. dqn_pong_fast for $FAST_MIN min"
$PY train.py --config configs/dqn_pong_fast.yaml device="$DEVICE" run_dir="$RUNS/fast" \
    time_limit_minutes="$FAST_MIN" eval.every_steps=1000000 log.every_steps=5000 log.quiet=true
cp "$RUNS/fast/summary.json" "$OUT/fast_summary_$DEVICE.json"

echo "== 3. dqn_pong_hour for $HOUR_MIN min"
$PY benchmarks/pong_hour.py --seed 0 --minutes "$HOUR_MIN" --runs "$RUNS/hour" --sb3-steps 0 \
    --json "$OUT/pong_hour_$DEVICE.json" --export "$OUT/pong_$DEVICE" \
    device="$DEVICE" env.env_threads="$THREADS" "$@"
echo "== done"
