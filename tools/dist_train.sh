#!/usr/bin/env bash
# Distributed training with torchrun (DDP through mmengine).
#   tools/dist_train.sh NUM_PROCS CONFIG [tools/train.py options ...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
NPROC=${1:?usage: tools/dist_train.sh NUM_PROCS CONFIG [options]}
CONFIG=${2:?usage: tools/dist_train.sh NUM_PROCS CONFIG [options]}
shift 2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
