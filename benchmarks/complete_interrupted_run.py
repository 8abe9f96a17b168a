"""Make a table of an `alertlib benchmark` run that was cut short, from its journal.

A run attaches its ceilings and machine stamp at its end; when it is killed before (a lent GPU's
time ran out, say) only `<out>.partial.jsonl` is left. This completes those rows with the ceilings and
stamp of a complete table measured on the same machine in the same session
(`alertlib.bench.runner.table_from_journal`), marks the jobs it never reached as not measured, and says
so in every row's `note`. Pass the interrupted run's own benchmark arguments after `--`:

    python benchmarks/complete_interrupted_run.py --journal stage_others.csv.partial.jsonl \\
        --reference stage_goal.csv stage_compile.csv --out stage_others.csv --measured-at 2026-11-26T12:23:15+0000 \\
        -- --profile paper --device cuda --models braai_vgg ... --batch-sizes 1 16 64 256 1024
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from alertlib.bench.runner import table_from_journal
from alertlib.cli.benchmark import add_arguments, settings_from_args
from alertlib.core.files import write_table


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    own, benchmark_argv = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journal", required=True, help="the interrupted run's <out>.partial.jsonl")
    parser.add_argument("--reference", nargs="+", required=True, help="complete tables of the same machine")
    parser.add_argument("--out", required=True, help="the table to write (.csv or .parquet)")
    parser.add_argument("--measured-at", default=None, help="when the interrupted run measured (from its log)")
    args = parser.parse_args(own)
    benchmark = argparse.ArgumentParser()
    add_arguments(benchmark)
    settings = settings_from_args(benchmark.parse_args(benchmark_argv))
    reference = pd.concat([pd.read_csv(path) for path in args.reference], ignore_index=True)
    table = table_from_journal(settings, args.journal, reference, measured_at=args.measured_at)
    write_table(args.out, table)
    counts = table["status"].value_counts().to_dict()
    print(f"wrote {len(table)} rows to {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
