#!/usr/bin/env bash
# The GPU efficiency benchmark in one command (about 12 minutes on one H100; see data/benchmarks/README.md).
#
# Three stages, most important first; each writes its own table, so a stage that fails or is cut
# short loses nothing of the others, and an interrupted stage resumes from its journal when run again:
#   goal     ConvNeXt-pico and -nano, the custom CNN and ResNet-18 at 63x63, bfloat16 and float32,
#            eager and channels_last, batch 1 to 16384, ours and btsbot's classes side by side
#   compile  torch.compile (channels_last) of ConvNeXt-pico and ResNet-18 in bfloat16 at large batches
#   others   the rest of the study's models (braai, ResNet-50, EfficientNet-B0, MobileNetV3, and
#            MaxViT-tiny at 224 with btsbot's MaxViT beside it), batch 1 to 1024
# then merges them into one table named cuda_<gpu>.csv, in $OUT (if set) or data/benchmarks/, and
# prints whether ConvNeXt-pico reaches 200,000 alerts/s and how each model compares with the custom CNN.
# Each stage measures the GPU's own matrix-product rate (the limit) at its start and end.
#
# Needs: python3 with torch (CUDA), timm, pandas, pyyaml, scipy, tqdm; alertlib is used from this checkout.
# btsbot's classes come from its architectures.py: the installed package, $ALERTLIB_BTSBOT_ARCHITECTURES,
# or .venv/lib/python3.11/site-packages/btsbot/architectures.py carried along with the checkout.
#
# Settings from the environment:
#   STAGES="goal others"        which stages (default: goal compile others)
#   MIN_TIME_S=0.2              minimum timed seconds per (model, variant, batch size)
#   BATCH_SIZES / OTHER_BATCH_SIZES / COMPILE_BATCH_SIZES   the batch sizes of each stage
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
STAGES=${STAGES:-"goal compile others"}
MIN_TIME_S=${MIN_TIME_S:-0.2}
BATCH_SIZES=${BATCH_SIZES:-"1 16 64 256 1024 4096 16384"}
COMPILE_BATCH_SIZES=${COMPILE_BATCH_SIZES:-"4096 16384"}
OTHER_BATCH_SIZES=${OTHER_BATCH_SIZES:-"1 16 64 256 1024"}
CEILING_SIZES=${CEILING_SIZES:-"8192"}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
carried=.venv/lib/python3.11/site-packages/btsbot/architectures.py
if [ -z "${ALERTLIB_BTSBOT_ARCHITECTURES:-}" ] && [ -f "$carried" ]; then
  export ALERTLIB_BTSBOT_ARCHITECTURES="$PWD/$carried"
fi
IMPLS="alertlib btsbot"
if ! "$PY" -c "from alertlib.bench.zoo import btsbot_architectures_file as f; f()" 2>/dev/null; then
  echo "btsbot's architectures.py not found: measuring alertlib only (see the header of this script)" >&2
  IMPLS="alertlib"
fi

OUT_DIR=${OUT:-data/benchmarks}
mkdir -p "$OUT_DIR"
NAME=$("$PY" -c "from alertlib.bench.tables import default_table_name; print(default_table_name('$DEVICE'))") || exit 1
TABLE=${TABLE:-$OUT_DIR/$NAME}
STAGE_DIR=${STAGE_DIR:-$OUT_DIR}

"$PY" -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__,
'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0))" || exit 1

failed=0
stage() {  # stage NAME ARGS...: one `alertlib benchmark` run into $STAGE_DIR/stage_NAME.csv
  local name=$1; shift
  case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
  echo "=== stage $name ($(date +%T))"
  # shellcheck disable=SC2086  # the lists are meant to split into words
  "$PY" -m alertlib benchmark --profile paper --device "$DEVICE" --min-repeats 10 --max-repeats 50 \
    --min-time-s "$MIN_TIME_S" --ceiling-sizes $CEILING_SIZES --out "$STAGE_DIR/stage_$name.csv" "$@" || failed=1
}
# shellcheck disable=SC2086
stage goal --models convnext_pico convnext_nano btsbot_cnn resnet18 --impls $IMPLS \
  --dtypes bfloat16 float32 --variants eager channels_last --batch-sizes $BATCH_SIZES
# shellcheck disable=SC2086
stage compile --models convnext_pico resnet18 --impls alertlib --dtypes bfloat16 \
  --variants compile_channels_last --batch-sizes $COMPILE_BATCH_SIZES --compile-batch-sizes $COMPILE_BATCH_SIZES
# shellcheck disable=SC2086
stage others --models braai_vgg resnet50 efficientnet_b0 mobilenetv3_small_100 maxvit_tiny_rw_224 --impls $IMPLS \
  --dtypes bfloat16 float32 --variants eager channels_last --batch-sizes $OTHER_BATCH_SIZES

"$PY" - "$TABLE" "$STAGE_DIR" <<'EOF' || failed=1
import sys
from pathlib import Path

import pandas as pd

from alertlib.core.files import write_table
from alertlib.bench.tables import compare_implementations
from alertlib.report.efficiency import custom_cnn_ratios, custom_cnn_verdicts, night_report

table_path, stage_dir = Path(sys.argv[1]), Path(sys.argv[2])
stages = sorted(stage_dir.glob("stage_*.csv"))
if not stages:
    sys.exit("no stage wrote a table")
table = pd.concat([pd.read_csv(path).assign(stage=path.stem[len("stage_"):]) for path in stages], ignore_index=True)
write_table(table_path, table)
print(f"merged {len(table)} rows from {[p.name for p in stages]} into {table_path}")
print(night_report(table))
# Every stage measured batch 1024, so the custom-CNN comparison is drawn there (fastest variant of each).
common = 1024 if (table["batch_size"] == 1024).any() else None
for dtype in sorted(table["dtype"].unique()):
    for sentence in custom_cnn_verdicts(custom_cnn_ratios(table, batch_size=common, dtype=dtype)):
        print(sentence)
paired = compare_implementations(table)
if len(paired):
    summary = paired.groupby(["model", "dtype", "variant"])["speed_ratio"].agg(["min", "median", "max"])
    print("ours / btsbot alerts per second:\n" + summary.round(2).to_string())
EOF
echo "table: $TABLE"
exit "$failed"
