"""CPU fine-tuning throughput of resnet18 at 63x63, batch 64: eager, channels_last, torch.compile.

Times full training steps (forward, BCE loss, backward, AdamW step) on random L2-normalised
triplets, in one process, so the ratios between variants are comparable even on a shared machine.
Run: .venv/bin/python benchmarks/bench_training.py [--steps 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from alertlib.learn.models import create_model


def alerts_per_second(variant: str, steps: int, warmup: int, batch_size: int = 64) -> float:
    torch.manual_seed(0)
    model = create_model("resnet18", channels_last=variant != "eager").train()
    step_model = torch.compile(model) if variant == "compile" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    images = torch.randn(batch_size, 3, 63, 63) / 63.0
    if variant != "eager":
        images = images.contiguous(memory_format=torch.channels_last)
    labels = (torch.rand(batch_size) < 0.5).float()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(step_model(images).squeeze(-1), labels)
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates = {v: alerts_per_second(v, args.steps, args.warmup) for v in ("eager", "channels_last", "compile")}
    result = {
        "alerts_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio_to_eager": {k: round(v / rates["eager"], 2) for k, v in rates.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
