#!/usr/bin/env bash
# Training on a Slurm cluster: one task per GPU, DDP through mmengine.
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [tools/train.py options ...]
# GPUS (total, default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5) and
# SRUN_ARGS tune the allocation.
set -euo pipefail
PARTITION=${1:?usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG [options]}
JOB_NAME=${2:?usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG [options]}
CONFIG=${3:?usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG [options]}
shift 3
GPUS=${GPUS:-8}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"${GPUS_PER_NODE:-8}" --ntasks="$GPUS" \
    --ntasks-per-node="${GPUS_PER_NODE:-8}" --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    python -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "$@"
