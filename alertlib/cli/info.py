"""``alertlib info``: versions, device, offline mode, and the real data and weight files found."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    from alertlib.study.info import collect

    facts = collect()
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    device = facts["device"]
    lines = [
        f"alertlib {facts['alertlib']} (code {facts['code_version']})",
        "versions:  " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
        f"cpu:       {device['cpu_model']}, {device['cpu_threads']} torch threads",
        "gpu:       " + (", ".join(device["gpus"]) if device["gpus"] else "none (CUDA not available)"),
        f"hf hub:    {facts['huggingface_hub']}",
        f"data/:     {facts['paths']['data']}",
        f"figures/:  {facts['paths']['figures']}",
        f"weights:   {facts['paths']['weights']} ({len(facts['weight_files'])} weight files)",
    ]
    lines += [f"           {p}" for p in facts["weight_files"]]
    shared = facts["paths"]["shared_data"]
    lines.append(f"real data: {shared or 'not found (set ALERTLIB_SHARED_DATA or place ../shared/data)'}")
    for name, path in facts["real_data"].items():
        lines.append(f"           {name:26s} {'found' if path else 'missing'}")
    print("\n".join(lines))
    return 0
