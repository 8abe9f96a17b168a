"""End-to-end scoring speed: packets on disk to scores on disk, against decoding alone and inference alone.

Run: ``.venv/bin/python benchmarks/bench_score.py [FOLDER ...] [--min-alerts 20000] [--out CSV] [--quick]``

The packets (default: the shared data's ZTF Avro folders, ``ztf``, ``ztf-spark-snappy``,
``ztf-one-exposure-2018``, ``ztf-brokers``, corrupt files included) are listed several times over, until a
pass holds ``--min-alerts`` scorable alerts. In one run, one row per measurement:

- ``decode``: :func:`alertlib.io.packets.decode_packets` of the whole list with 1 worker (this
  process) and 2 worker processes, best of ``--rounds`` passes taken in turns;
- ``inference``: the inference step of ``alertlib score`` alone
  (:func:`alertlib.learn.scoring.score_chunk` on chunks of ``--batch-size`` decoded alerts, timed by
  :func:`alertlib.bench.timing.time_calls`, the median call counts) for each model of ``--models``
  (default ``btsbot_cnn`` and ``resnet18``, at the full 63x63 stamp; ``--crop 33`` for the models the
  ``default`` profile trains, which see the central 33x33 pixels), float32: torch ``eager`` and ``channels_last``
  (:func:`alertlib.learn.inference.prepare_scoring`), and onnxruntime on CPU
  (:mod:`alertlib.learn.export`); with the model's multiply-adds per alert and ``limit_fraction``,
  its FLOP/s over this CPU's own float32 matrix-product rate
  (:func:`alertlib.bench.timing.measure_matmul_ceiling`), which says how far any runtime could still
  go;
- ``pipeline``: :func:`alertlib.learn.scoring.score_inputs` of the whole list and the scores written
  to Parquet, with 1 and 2 workers, for each model of ``--pipeline-models`` (default ``btsbot_cnn``,
  BTS's production architecture), from the checkpoint (torch, the format and variant ``score``
  chooses itself, in ``variant``) and from its ONNX export.

The ratios the issue asks for are columns: ``pipeline_over_decode`` (a pipeline row's rate over
decoding alone with as many workers; the goal is 0.70 with 2 workers), ``pipeline_over_inference``
(over the inference step alone, in the runtime the pipeline used), and ``onnx_over_best_torch`` (an
onnxruntime row's rate over the faster torch variant of the same model); the script prints them.

The models are freshly initialised (``scratch``) and saved as fine-tuning saves them
(:func:`alertlib.learn.finetune.save_model`, ``model.pt``), then exported to ONNX
(:func:`alertlib.learn.export.export_onnx`): speed does not depend on the weights, so no training is
needed. Every row carries the machine stamp (:func:`alertlib.core.provenance.machine_stamp`), the
code version, the date and the 1-minute load; rows are added to ``--out`` (default
``data/benchmarks/score/<device>_<cpu>_<threads>t.csv``, named by
:func:`alertlib.bench.tables.default_table_name`). ``--quick`` runs it tiny (a test's few seconds).
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from alertlib.core.paths import packet_folders
from alertlib.core.vocab import STAMP_SIZE
from alertlib.io import packets

FOLDERS = ("ztf", "ztf-spark-snappy", "ztf-one-exposure-2018", "ztf-brokers")
MODELS = ("btsbot_cnn", "resnet18")
TORCH_VARIANTS = ("eager", "channels_last")
WORKERS = (1, 2)
PIPELINE_GOAL = 0.70


def save_scratch_model(arch: str, folder: Path, crop: int | None = None) -> tuple[Path, Path]:
    """A freshly initialised binary model of ``arch`` saved as fine-tuning saves one, and its ONNX export."""
    from alertlib.learn.export import export_onnx
    from alertlib.learn.finetune import full_config, save_model
    from alertlib.learn.models import create_model

    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "model.pt"
    model = create_model(arch, "scratch", num_outputs=1, input_size=crop)
    config = full_config({"data": str(folder), "arch": arch, "crop": crop, "seed": 0})
    save_model(checkpoint, model, config, {"run_id": f"bench-{arch}", "class_names": None, "pretrain_provenance": {}})
    return checkpoint, export_onnx(checkpoint, folder / "model.onnx")


def decode_rows(files: list[Path], alerts: int, rounds: int) -> list[dict]:
    """Decoding alone, the whole list, with each worker count of :data:`WORKERS` (best pass, in turns)."""
    best = dict.fromkeys(WORKERS, float("inf"))
    for _ in range(rounds):
        for workers in WORKERS:
            start = time.perf_counter()
            packets.decode_packets(files, workers=workers)
            best[workers] = min(best[workers], time.perf_counter() - start)
    return [
        {"stage": "decode", "workers": w, "alerts": alerts, "seconds": s, "alerts_per_s": alerts / s}
        for w, s in best.items()
    ]


def inference_rows(arch: str, checkpoint: Path, onnx: Path, triplets, batch_size: int, min_time_s: float) -> list:
    """The inference step alone on chunks of ``batch_size`` alerts: torch variants (float32) and onnxruntime."""
    import functools

    from alertlib.bench.timing import time_calls
    from alertlib.bench.zoo import model_params_and_macs
    from alertlib.learn.export import load_onnx, score_onnx
    from alertlib.learn.inference import load_model, prepare_scoring, score_prepared
    from alertlib.learn.models import model_cost
    from alertlib.learn.scoring import Scorer, score_chunk

    chunk = triplets[:batch_size]
    candidates = pd.DataFrame(index=range(len(chunk)))
    model = load_model(checkpoint)
    scorers = {("torch", v): prepare_scoring(model, batch_size, "float32", v) for v in TORCH_VARIANTS}
    scorers = {key: functools.partial(score_prepared, prepared) for key, prepared in scorers.items()}
    scorers["onnxruntime", ""] = functools.partial(score_onnx, load_onnx(onnx), batch_size=batch_size)
    crop = model.config.get("crop")
    macs = model_params_and_macs(arch)[1] if crop is None else model_cost(arch, crop)["macs"]  # at the crop's side
    rows = []
    for (runtime, variant), score in scorers.items():
        scorer = Scorer(model, score, str(checkpoint))
        timing = time_calls(lambda scorer=scorer: score_chunk(scorer, chunk, candidates), min_time_s=min_time_s)
        rate = len(chunk) / timing.median_s
        rows.append(
            {"stage": "inference", "model": arch, "runtime": runtime, "dtype": "float32", "variant": variant}
            | {"batch_size": len(chunk), "alerts": len(chunk) * timing.repeats, "seconds": timing.median_s}
            | {"alerts_per_s": rate, "macs": macs}
        )
    return rows


def pipeline_rows(arch: str, checkpoint: Path, onnx: Path, files: list[Path], folder: Path) -> list[dict]:
    """``score_inputs`` of the whole list, the scores written to Parquet, with each worker count, torch and ONNX."""
    from alertlib.core.files import write_table
    from alertlib.learn.inference import choose_inference
    from alertlib.learn.scoring import score_inputs

    torch_choice = choose_inference(arch, "cpu", "auto", 256, len(files))
    rows = []
    for runtime, model in (("torch", {"checkpoint": checkpoint}), ("onnxruntime", {"onnx": onnx})):
        for workers in WORKERS:
            start = time.perf_counter()
            scores, skipped = score_inputs(files, workers=workers, **model)
            write_table(folder / f"scores_{arch}_{runtime}_{workers}.parquet", scores)
            seconds = time.perf_counter() - start
            dtype, variant = torch_choice if runtime == "torch" else ("float32", "")
            rows.append(
                {"stage": "pipeline", "model": arch, "runtime": runtime, "dtype": dtype, "variant": variant}
                | {"workers": workers, "alerts": len(scores), "skipped": len(skipped), "seconds": seconds}
                | {"alerts_per_s": len(scores) / seconds}
            )
    return rows


def add_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """``pipeline_over_decode``, ``pipeline_over_inference`` and ``onnx_over_best_torch`` (see the docstring)."""
    table = table.copy()
    decode = table[table["stage"] == "decode"].set_index("workers")["alerts_per_s"]
    inference = table[table["stage"] == "inference"]
    pipeline = table["stage"] == "pipeline"
    table.loc[pipeline, "pipeline_over_decode"] = table.loc[pipeline, "alerts_per_s"] / table.loc[
        pipeline, "workers"
    ].map(decode)
    for index, row in table[pipeline].iterrows():
        same = inference[(inference["model"] == row["model"]) & (inference["runtime"] == row["runtime"])]
        same = same[same["variant"] == row["variant"]] if (same["variant"] == row["variant"]).any() else same
        table.loc[index, "pipeline_over_inference"] = row["alerts_per_s"] / same["alerts_per_s"].max()
    for _, rows in inference.groupby("model"):
        best_torch = rows.loc[rows["runtime"] == "torch", "alerts_per_s"].max()
        onnx = rows.index[rows["runtime"] == "onnxruntime"]
        table.loc[onnx, "onnx_over_best_torch"] = table.loc[onnx, "alerts_per_s"] / best_torch
    return table


def print_ratios(table: pd.DataFrame) -> None:
    """The ratios the issue asks for, one line each."""
    for _, row in table[table["stage"] == "pipeline"].iterrows():
        print(
            f"pipeline {row['model']} {row['runtime']} {int(row['workers'])} worker(s): {row['alerts_per_s']:.0f} alerts/s, "
            f"{row['pipeline_over_decode']:.2f} of decoding alone (goal {PIPELINE_GOAL} with 2), "
            f"{row['pipeline_over_inference']:.2f} of its inference alone"
        )
    for _, row in table[table["stage"] == "inference"].iterrows():
        ratio = (
            f", {row['onnx_over_best_torch']:.2f} of the best torch variant" if row["runtime"] == "onnxruntime" else ""
        )
        print(f"inference {row['model']} {row['runtime']} {row['variant']}: {row['alerts_per_s']:.0f} alerts/s{ratio}")


def stamped(table: pd.DataFrame, ceiling: dict, folders: list[Path], copies: int) -> pd.DataFrame:
    """The rows with ``limit_fraction``, the packets used, and the machine stamp of :mod:`alertlib.bench`."""
    from alertlib.bench.timing import limit_fraction
    from alertlib.core.provenance import code_version, machine_stamp, version_of

    table = table.assign(
        ceiling_flops=ceiling["flops"],
        limit_fraction=limit_fraction(table["macs"], table["alerts_per_s"], ceiling["flops"]),
        folders=" ".join(f.name for f in folders),
        copies=copies,
        onnxruntime_version=version_of("onnxruntime"),
        numba_version=version_of("numba"),
        load_avg_1m=round(os.getloadavg()[0], 2),
        code_version=code_version(),
        measured_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    return table.assign(**machine_stamp())


def _folders(given: list[str]) -> list[Path]:
    return packet_folders(given, FOLDERS)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="packet folders (default: the shared data's ZTF Avro folders)")
    parser.add_argument(
        "--out", help="CSV to add rows to (default data/benchmarks/score/<device>_<cpu>_<threads>t.csv)"
    )
    parser.add_argument("--min-alerts", type=int, default=20_000, help="scorable alerts in a pass of the list")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="models of the inference rows")
    parser.add_argument("--pipeline-models", nargs="+", default=["btsbot_cnn"], help="models of the pipeline rows")
    parser.add_argument("--batch-size", type=int, default=256, help="alerts per inference call (score's chunk)")
    parser.add_argument("--inference-seconds", type=float, default=3.0, help="least time of each inference row")
    parser.add_argument("--rounds", type=int, default=2, help="passes of each decode row, in turns")
    parser.add_argument("--crop", type=int, help="centre crop of the models' stamps (default: the whole 63x63)")
    parser.add_argument("--quick", action="store_true", help="tiny: 100 alerts, btsbot_cnn at crop 33, one pass")
    args = parser.parse_args(argv)
    if args.quick:
        args.min_alerts, args.models, args.pipeline_models = 100, ["btsbot_cnn"], ["btsbot_cnn"]
        args.batch_size, args.inference_seconds, args.rounds, args.crop = 16, 0.0, 1, 33
    return args


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from alertlib.bench.tables import default_table_name
    from alertlib.bench.timing import measure_matmul_ceiling

    args = _arguments(argv)
    folders = _folders(args.folders)
    files = packets.expand_paths(folders)
    decoded = packets.decode_packets(files)  # untimed: the file cache, the compiled kernels
    sample = decoded.datasets["ztf"].triplets
    scorable = sum(
        len(d.candidates) for d in decoded.datasets.values() if d.triplets.shape[1:3] == (STAMP_SIZE, STAMP_SIZE)
    )
    copies = -(-args.min_alerts // scorable)
    listed = files * copies
    print(f"{len(files)} files, {scorable} alerts to score, listed {copies} times: {scorable * copies}", flush=True)
    ceiling = measure_matmul_ceiling("cpu", "float32")
    rows = decode_rows(listed, scorable * copies, args.rounds)
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        for arch in dict.fromkeys([*args.models, *args.pipeline_models]):
            checkpoint, onnx = save_scratch_model(arch, Path(tmp) / arch, args.crop)
            rows += inference_rows(arch, checkpoint, onnx, sample, args.batch_size, args.inference_seconds)
            if arch in args.pipeline_models:
                rows += pipeline_rows(arch, checkpoint, onnx, listed, Path(tmp))
    table = stamped(add_ratios(pd.DataFrame(rows)), ceiling, folders, copies).assign(crop=args.crop or STAMP_SIZE)
    print_ratios(table)
    out = Path(args.out or Path("data/benchmarks/score") / default_table_name("cpu"))
    out.parent.mkdir(parents=True, exist_ok=True)
    written = pd.concat([pd.read_csv(out), table], ignore_index=True) if out.exists() else table
    written.to_csv(out, index=False)
    print(f"added {len(table)} rows to {out}")
    return table


if __name__ == "__main__":
    main()
