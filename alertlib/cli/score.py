"""``alertlib score``: score alert packets or a release-layout folder with a fine-tuned model.

Writes one row per alert (``--out``, Parquet or CSV by suffix) and ``skipped.csv`` beside it; see
:mod:`alertlib.learn.scoring`. The model is a checkpoint (``--checkpoint model.pt``) or its ONNX export
(``--onnx model.onnx``, from ``alertlib export``). ``--workers`` processes decode the packets while
this one scores those already decoded; a bar follows the packet files, and a last line gives the
alerts scored, the alerts skipped and the end-to-end rate (packets read to scores written).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="packet files or folders, or folders in the BTS release layout")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a fine-tuned model (model.pt of a run, or the study's checkpoints/)")
    model.add_argument("--onnx", help="the same model exported by `alertlib export` (scored with onnxruntime on CPU)")
    parser.add_argument("--out", required=True, help="scores file (.parquet or .csv); skipped.csv is written beside it")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes decoding packets while this one scores (default: one per core; 1 decodes in this process)",
    )


def run(args: argparse.Namespace) -> int:
    import time

    from alertlib.core.files import write_table
    from alertlib.learn.scoring import score_inputs

    start = time.perf_counter()
    scores, skipped = score_inputs(args.inputs, args.checkpoint, workers=args.workers, progress=True, onnx=args.onnx)
    out = Path(args.out)
    write_table(out, scores)
    write_table(out.parent / "skipped.csv", skipped)
    seconds = time.perf_counter() - start
    print(
        f"{len(scores)} alerts scored, {len(skipped)} skipped ({out.parent / 'skipped.csv'}), {len(scores) / seconds:.0f} alerts/s -> {out}"
    )
    return 0
