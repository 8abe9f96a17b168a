#!/usr/bin/env bash
# Training throughput on one GPU in one command (under 8 minutes on one H100 or H200; see data/benchmarks/README.md).
#
# For each model (ConvNeXt-pico, the custom CNN and ResNet-18 at 63x63, MaxViT-tiny at 224), training
# alerts per second through alertlib.learn.training.fit (benchmarks/bench_training.py --mode fit) on
# both data paths: "loader" (TripletDataset in a DataLoader: CPU workers, pinned memory) and "device"
# (the release held in GPU memory, augmented there in batches); bfloat16 autocast, channels_last,
# torch.compile. The first epoch compiles and warms up, the second is timed, the third is profiled
# for the GPU's busy fraction (CUDA kernel time over wall time). One process per model, each under
# a time limit, so a model that fails or runs long loses only its own rows; the tables merge into
# training/<device>_<chip>.csv in $OUT (if set) or data/benchmarks/, and the script prints whether
# ConvNeXt-pico at 63 px on the device path reaches 50,000 alerts/s with the GPU busy at least 90%.
#
# Needs: python3 with torch (CUDA), timm, lightning, pandas, psutil; alertlib is used from this checkout.
# Without a GPU it runs on the CPU (tests/test_device_data.py runs it so, at toy size).
#
# Settings from the environment:
#   MODELS="convnext_pico btsbot_cnn"   which models, in this order (default: all four, the goal's first)
#   ALERTS=65536 MAXVIT_ALERTS=8192      training alerts per epoch (MaxViT trains about 10x slower)
#   BATCH_SIZE=1024  EPOCHS=3  WORKERS=<cores - 2>  COMPILE=1  MODEL_TIMEOUT_S=110
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
MODELS=${MODELS:-"convnext_pico btsbot_cnn resnet18 maxvit_tiny_rw_224"}
ALERTS=${ALERTS:-65536}
MAXVIT_ALERTS=${MAXVIT_ALERTS:-8192}
VAL_ALERTS=${VAL_ALERTS:-4096}
BATCH_SIZE=${BATCH_SIZE:-1024}
EPOCHS=${EPOCHS:-3}
CORES=$(nproc)
WORKERS=${WORKERS:-$((CORES > 3 ? CORES - 2 : 1))}
COMPILE=${COMPILE:-1}
MODEL_TIMEOUT_S=${MODEL_TIMEOUT_S:-110}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
OUT_DIR=${OUT:-data/benchmarks}/training
STAGE_DIR=$(mktemp -d)
mkdir -p "$OUT_DIR"
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')") || exit 1
NAME=$("$PY" -c "from alertlib.bench.tables import default_table_name; print(default_table_name('$DEVICE'))") || exit 1
TABLE=${TABLE:-$OUT_DIR/$NAME}
"$PY" -c "import torch; print('torch', torch.__version__, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0))"

compile_flag=""
[ "$COMPILE" = 1 ] && compile_flag="--compile"
failed=0
for model in $MODELS; do
  alerts=$ALERTS
  [ "$model" = maxvit_tiny_rw_224 ] && alerts=$MAXVIT_ALERTS
  echo "=== $model ($(date +%T))"
  # shellcheck disable=SC2086  # compile_flag is empty or one word
  timeout -k 10 "$MODEL_TIMEOUT_S" "$PY" benchmarks/bench_training.py --mode fit --models "$model" \
    --data-paths device loader --alerts "$alerts" --val-alerts "$VAL_ALERTS" --epochs "$EPOCHS" \
    --batch-size "$BATCH_SIZE" --num-workers "$WORKERS" --channels-last $compile_flag --threads 4 \
    --out "$STAGE_DIR/stage_$model.csv" || { echo "$model: failed or cut at ${MODEL_TIMEOUT_S}s" >&2; failed=1; }
done

"$PY" - "$TABLE" "$STAGE_DIR" <<'EOF' || failed=1
import sys
from pathlib import Path

import pandas as pd

from alertlib.core.files import write_table

table_path, stage_dir = Path(sys.argv[1]), Path(sys.argv[2])
stages = sorted(stage_dir.glob("stage_*.csv"))
if not stages:
    sys.exit("no model wrote a table")
table = pd.concat([pd.read_csv(path) for path in stages], ignore_index=True)
write_table(table_path, table)
print(f"merged {len(table)} rows into {table_path}")
columns = ["model", "data_path", "alerts_per_s", "busy_fraction", "first_epoch_s", "status"]
print(table[columns].round(3).to_string(index=False))
goal = table[(table["model"] == "convnext_pico") & (table["data_path"] == "device") & (table["status"] == "ok")]
if len(goal):
    rate, busy = float(goal["alerts_per_s"].iloc[0]), float(goal["busy_fraction"].iloc[0])
    verdict = "reaches" if rate >= 50_000 and busy >= 0.9 else "does not reach"
    print(f"ConvNeXt-pico, device path: {rate:,.0f} alerts/s, GPU busy {busy:.0%}: {verdict} the goal (50,000, 90%)")
EOF
rm -rf "$STAGE_DIR"
echo "table: $TABLE"
exit "$failed"
