"""``alertlib export``: a fine-tuned model (``model.pt``) as an ONNX file for deployment.

The batch dimension is dynamic; the preprocessing (layout, channels, stamp size and crop,
normalisation), the output (logits, and the activation to apply) and the checkpoint's provenance are
written into the model's metadata (see :mod:`alertlib.learn.export`). Score with it:
``alertlib score ALERTS --onnx model.onnx --out scores.parquet``.
"""

from __future__ import annotations

import argparse

DEFAULT_OPSET = 18  # alertlib.learn.export.DEFAULT_OPSET (not imported here, to keep --help fast)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a fine-tuned model (model.pt of a run)")
    parser.add_argument("--out", required=True, help="the ONNX file to write (e.g. model.onnx)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")


def run(args: argparse.Namespace) -> int:
    import json

    from alertlib.learn.export import export_onnx, load_onnx

    out = export_onnx(args.checkpoint, args.out, opset=args.opset)
    metadata = load_onnx(out).metadata
    classes = json.loads(metadata["class_names"])
    print(
        f"{metadata['arch']} ({metadata['init']}, run {metadata['run_id'] or '?'}) -> {out}: "
        f"input {metadata['input_layout']} float32, crop {metadata['crop'] or 'none'}, "
        f"output {metadata['output']} ({metadata['output_activation']}"
        f"{', classes ' + ', '.join(classes) if classes else ''}), opset {metadata['opset']}, "
        f"{out.stat().st_size / 1e6:.1f} MB"
    )
    return 0
