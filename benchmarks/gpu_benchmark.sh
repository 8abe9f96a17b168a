#!/usr/bin/env bash
# The GPU efficiency benchmark in one command (about 3 minutes on one H100; see data/benchmarks/README.md).
#
# Measures ConvNeXt-pico (63x63 alerts) in bfloat16 and float32 at batch sizes up to 16384, with the custom
# CNN and ResNet-18 beside it and btsbot's own classes (um_cnn, ConvNeXt) side by side, plus the GPU's own
# matrix-product rate (the limit), then prints whether ConvNeXt-pico reaches 200,000 alerts/s.
# Writes the table to $OUT (if set) or data/benchmarks/, named cuda_<gpu>.csv.
#
# Needs: python3 with torch (CUDA), timm, pandas, pyyaml, scipy, tqdm; alertlib is used from this checkout.
# btsbot's classes come from its architectures.py: the installed package, $ALERTLIB_BTSBOT_ARCHITECTURES,
# or .venv/lib/python3.11/site-packages/btsbot/architectures.py carried along with the checkout.
#
# Every setting can be changed from the environment, e.g.
#   WITH_COMPILE=1 benchmarks/gpu_benchmark.sh        # also torch.compile (adds minutes of compilation)
#   MODELS="convnext_pico maxvit_tiny_rw_224" BATCH_SIZES="1 256 1024" benchmarks/gpu_benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-"convnext_pico btsbot_cnn resnet18"}
DTYPES=${DTYPES:-"bfloat16 float32"}
VARIANTS=${VARIANTS:-"eager channels_last"}
BATCH_SIZES=${BATCH_SIZES:-"1 256 1024 4096 16384"}
MIN_TIME_S=${MIN_TIME_S:-0.3}
CEILING_SIZES=${CEILING_SIZES:-"8192"}
if [ "${WITH_COMPILE:-0}" = "1" ]; then VARIANTS="$VARIANTS compile_channels_last"; fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
carried=.venv/lib/python3.11/site-packages/btsbot/architectures.py
if [ -z "${ALERTLIB_BTSBOT_ARCHITECTURES:-}" ] && [ -f "$carried" ]; then
  export ALERTLIB_BTSBOT_ARCHITECTURES="$PWD/$carried"
fi
IMPLS="alertlib btsbot"
if ! "$PY" -c "from alertlib.profiling import btsbot_architectures_file as f; f()" 2>/dev/null; then
  echo "btsbot's architectures.py not found: measuring alertlib only (see the header of this script)" >&2
  IMPLS="alertlib"
fi

OUT_DIR=${OUT:-data/benchmarks}
mkdir -p "$OUT_DIR"
NAME=$("$PY" -c "from alertlib.profiling import default_table_name; print(default_table_name('$DEVICE'))")
TABLE="$OUT_DIR/$NAME"

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
# shellcheck disable=SC2086  # the lists are meant to split into words
"$PY" -m alertlib benchmark --profile paper --device "$DEVICE" --models $MODELS --impls $IMPLS \
  --dtypes $DTYPES --variants $VARIANTS --batch-sizes $BATCH_SIZES --compile-batch-sizes $BATCH_SIZES \
  --min-repeats 10 --max-repeats 50 --min-time-s "$MIN_TIME_S" --ceiling-sizes $CEILING_SIZES --out "$TABLE" || status=$?
"$PY" -c "
import pandas as pd
from alertlib.profiling import night_report
print(night_report(pd.read_csv('$TABLE')))
"
echo "table: $TABLE"
exit "${status:-0}"
