"""Where the statistics of ``alertlib.report`` now live, for callers not yet moved to them.

Results tables and metric names: ``alertlib.report.tables``; confusion tables:
``alertlib.report.confusion``; statistics over seeds: ``alertlib.report.seeds``; benchmark ratios,
the headline table and its verdicts: ``alertlib.report.claims``.
"""

from alertlib.report.claims import (  # noqa: F401
    CLAIM_ACCURACY,
    CLAIM_GENERIC,
    CLAIM_MEMORY,
    CLAIM_PRETRAINING,
    CLAIM_SPEED,
    HEADLINE_COLUMNS,
    HEADLINE_SUMMARY_COLUMNS,
    POOLED_SCOPE,
    efficiency_ratios,
    headline_table,
    select_benchmark_rows,
    verdict,
    verdicts,
)
from alertlib.report.confusion import (  # noqa: F401
    CLASS_SCORE_PREFIXES,
    PREDICTED_CLASS_COLUMNS,
    TRUE_CLASS_COLUMNS,
    confusion_table,
    is_multiclass,
    true_and_predicted,
)
from alertlib.report.seeds import (  # noqa: F401
    COMPARISON_KEYS,
    PAIRED_COLUMNS,
    SUMMARY_KEYS,
    architecture_differences,
    bootstrap_mean_interval,
    paired_differences,
    per_seed_values,
    reference_init_for,
    summarise_over_seeds,
)
from alertlib.report.tables import (  # noqa: F401
    BINNED_QUANTITIES,
    LOWER_IS_BETTER_WORDS,
    METRIC_ALIASES,
    RUN_DESCRIPTORS,
    BinnedMetric,
    binned_metric_name,
    binned_metrics,
    check_columns,
    higher_is_better,
    load_per_run_tables,
    parse_binned_metric,
    resolve_metric,
    sort_table,
)
