"""The study's figures, each drawn from tables (or arrays) only, and saved as PNG and PDF.

One concern: drawing the study's figures (example images, results over replicates, the validation
gate, the primary contrasts, predictions, efficiency, embeddings, training curves) in one shared
style of colours, markers and orders.

Every function takes tables produced by the study (the tidy results table, its summary from
``alertlib.report.seeds``, per-run predictions, training curves, the benchmark table) or arrays (images,
triplets, embeddings), and returns a ``matplotlib.figure.Figure`` (a ``NotebookFigure`` of
``alertlib.report.display``). Figures are built without ``pyplot``, so they hold no global state and
work under any backend; in a notebook, show one as an image by making it the last expression of a
cell or with ``display(figure)``. ``save_figure`` writes ``<name>.png`` and ``<name>.pdf`` atomically
into ``figures/``.

Every number drawn or written in a figure comes from its input tables. Colours follow the
initialisation (``init_colour``) and markers the architecture (``arch_marker``), in the same order
(``alertlib.core.vocab.INIT_ORDER`` and ``ARCH_ORDER``) in every figure.

Tables of several runs are long tables: concatenate the per-run tables with their descriptors, e.g.
``pd.concat([frame.assign(arch=arch, init=init, seed=seed) for ...])``.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alertlib.core.files import atomic_path
from alertlib.core.paths import figures_dir
from alertlib.core.vocab import REFERENCE_ARCH, ordered_archs, ordered_inits
from alertlib.report import claims, confusion, contrasts, seeds, tables
from alertlib.report.display import NotebookFigure

# One colour per initialisation, the same in every figure.
INIT_COLOURS = {
    "scratch": "#7f7f7f",  # grey: no pre-training
    "synthetic": "#ff7f0e",  # orange: generic synthetic corpus (ImageNet's role offline)
    "imagenet": "#1f77b4",  # blue
    "galaxyzoo": "#9467bd",  # purple: Zoobot's public weights
    "galaxy_sim": "#2ca02c",  # green: our pre-training on the simulated Galaxy Zoo
    "galaxy_gz1": "#17becf",  # teal: our pre-training on real GZ1 images
    "checkpoint": "#8c564b",
}
_SPARE_COLOURS = ("#e377c2", "#bcbd22", "#d62728", "#393b31", "#637939", "#843c39", "#5254a3")
ARCH_MARKERS = {
    "btsbot_cnn": "s",
    "braai_vgg": "D",
    "resnet18": "o",
    "resnet50": "p",
    "convnext_pico": "^",
    "convnext_nano": "v",
    "efficientnet_b0": "P",
    "mobilenetv3_large_100": "X",
    "maxvit_tiny_rw_224": "*",
}
_SPARE_MARKERS = ("h", "<", ">", "8", "d", "H")
_LINESTYLES = ("-", "--", ":", "-.")
REFERENCE_COLOUR = "#000000"


def _stable_pick(name: str, choices: Sequence):
    """A choice that depends on the name only, so an unknown name looks the same in every figure."""
    return choices[zlib.crc32(str(name).encode()) % len(choices)]


def init_colour(init: str) -> str:
    """The colour of an initialisation (fixed for known names, stable for others)."""
    return INIT_COLOURS.get(str(init), _stable_pick(init, _SPARE_COLOURS))


def arch_marker(arch: str) -> str:
    """The marker of an architecture (a timm tag after '.' is ignored)."""
    text = str(arch)
    return ARCH_MARKERS.get(text, ARCH_MARKERS.get(text.split(".")[0], _stable_pick(text, _SPARE_MARKERS)))


def _group_colour(group_by: str, value) -> str:
    if group_by == "init":
        return init_colour(value)
    if group_by == "arch":
        return _stable_pick(value, (*INIT_COLOURS.values(), *_SPARE_COLOURS))
    return _stable_pick(value, _SPARE_COLOURS)


def _ordered(values, column: str) -> list:
    if column == "init":
        return ordered_inits(values)
    if column == "arch":
        return ordered_archs(values)
    return sorted(set(values), key=str)


def new_figure(nrows: int = 1, ncols: int = 1, panel_size: tuple[float, float] = (4.0, 3.2), **kwargs):
    """A figure (not registered with pyplot, shown as an image in notebooks) and its axes as a 2-D array."""
    figure = NotebookFigure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False, **kwargs)
    return figure, axes


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def save_figure(figure: Figure, name: str, out_dir: str | Path | None = None, dpi: int = 150) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.pdf`` atomically (a killed job leaves no partial file).

    Parameters
    ----------
    figure:
        The figure to save.
    name:
        File stem, e.g. ``"metric_by_arch_init"`` (a ``.png``/``.pdf`` suffix is dropped).
    out_dir:
        Folder; default ``alertlib.core.paths.figures_dir()`` (``$ALERTLIB_FIGURES`` or ``<repo>/figures``),
        read at call time.
    dpi:
        Resolution of the PNG.

    Returns
    -------
    list of Path
        The PNG and PDF paths.
    """
    stem = str(name)
    for suffix in (".png", ".pdf"):
        stem = stem.removesuffix(suffix)
    if not stem or Path(stem).name != stem:
        raise ValueError(f"figure name must be a plain file stem without folders, got {name!r}")
    folder = Path(out_dir) if out_dir is not None else figures_dir()
    written = []
    # Metadata without dates or versions, so that the same figure gives the same bytes.
    for file_format, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        path = folder / f"{stem}.{file_format}"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=file_format, dpi=dpi, metadata=metadata)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Images: galaxies and triplets
# --------------------------------------------------------------------------------------------


def _display_image(image: np.ndarray) -> np.ndarray:
    """An image scaled to [0, 1] for display only (per-image 0.5-99.5 percentile stretch)."""
    image = np.nan_to_num(np.asarray(image, dtype=np.float64))
    low, high = np.percentile(image, [0.5, 99.5])
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def _channels_last(images: np.ndarray) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) with C in (1, 3) -> (N, H, W[, C])."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = np.moveaxis(images, 1, -1)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W); got shape {images.shape}")
    return images


def plot_galaxy_grid(
    images: np.ndarray,
    catalog: pd.DataFrame,
    question: str = "smooth-or-featured",
    schema_name: str = "gz_decals_dr5",
    vote_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    id_column: str | None = "id_str",
    n: int = 16,
    ncols: int = 4,
) -> Figure:
    """Example galaxies with their volunteers' vote fractions (or their catalog label).

    Parameters
    ----------
    images:
        Galaxy images, row-aligned with ``catalog``: (N, H, W), (N, H, W, 3) or (N, 3, H, W).
    catalog:
        One row per image. Vote counts in the galaxy-datasets format (``<question>-dr5_<answer>``).
    question:
        The decision-tree question whose answer fractions are shown (from ``schema_name``).
    vote_columns:
        Explicit vote-count (or fraction) columns to show instead of the schema's question.
    label_column:
        Show this column's value instead of vote fractions (hard-label catalogs such as GZ1).
    id_column:
        Shown above each image when present.
    n, ncols:
        The first ``n`` rows are shown (choose the rows before calling), ``ncols`` per row.
    """
    images = _channels_last(images)
    if len(images) != len(catalog):
        raise ValueError(f"{len(images)} images but {len(catalog)} catalog rows; they must be row-aligned")
    if label_column is None and vote_columns is None:
        from alertlib.io.schema import load_schema

        schema = load_schema(schema_name)
        vote_columns = schema.question(question).columns(schema.suffix)
        prefix = f"{question}{schema.suffix}_"
        title = f"vote fractions: {question}"
    else:
        prefix = ""
        title = f"{label_column}" if label_column is not None else "vote fractions"
    if label_column is None:
        missing = [c for c in vote_columns if c not in catalog.columns]
        if missing:
            raise ValueError(
                f"catalog lacks vote columns {missing}; pass vote_columns=[...] or label_column=... "
                f"(catalog columns: {list(catalog.columns)[:20]})"
            )
    count = min(n, len(images))
    nrows = max(1, math.ceil(count / ncols))
    figure, axes = new_figure(nrows, ncols, panel_size=(2.2, 2.9))
    for index, ax in enumerate(axes.ravel()):
        if index >= count:
            ax.set_axis_off()
            continue
        # Ticks and frame hidden but the axis kept, so that the caption (an x label) gets its room.
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        image = _display_image(images[index])
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, origin="lower")
        row = catalog.iloc[index]
        lines = []
        if label_column is not None:
            lines.append(f"{label_column}: {row[label_column]}")
        else:
            votes = row[list(vote_columns)].to_numpy(dtype=np.float64)
            total = votes.sum()
            for column, vote in zip(vote_columns, votes, strict=True):
                answer = column.removeprefix(prefix) if prefix else column
                fraction = vote / total if total > 0 else math.nan
                lines.append(f"{answer} {fraction:.2f}")
        ax.set_xlabel("\n".join(lines), fontsize=7)
        if id_column and id_column in catalog.columns:
            ax.set_title(str(row[id_column]), fontsize=7)
    figure.suptitle(title, fontsize=9)
    return figure


def _zscale(cutout: np.ndarray) -> tuple[float, float]:
    """Display limits of a cutout by the zscale algorithm (astropy), the astronomers' default."""
    from astropy.visualization import ZScaleInterval

    low, high = ZScaleInterval().get_limits(np.nan_to_num(np.asarray(cutout, dtype=np.float64)))
    return (float(low), float(high)) if high > low else (float(low), float(low) + 1.0)


def _class_name(label, class_names) -> str:
    if class_names is None:
        return str(label)
    if isinstance(class_names, Mapping):
        return str(class_names.get(label, label))
    return str(class_names[int(label)])


def plot_triplet_examples(
    triplets: np.ndarray,
    labels,
    class_names: Mapping | Sequence[str] | None = None,
    n_per_class: int = 3,
    scores=None,
    names=None,
    seed: int = 0,
    channel_names: Sequence[str] = ("science", "reference", "difference"),
) -> Figure:
    """Example alert triplets of each class: one row per class, ``n_per_class`` triplets per row.

    Parameters
    ----------
    triplets:
        (N, 63, 63, 3) as in the BTS release (channels science, reference, difference), or (N, 3, H, W).
    labels:
        (N,) class of each triplet (integers or names).
    class_names:
        Names for the labels (a mapping, or a sequence indexed by integer label).
    n_per_class:
        Triplets shown per class (fewer when a class has fewer).
    scores:
        Optional (N,) model scores, written above each triplet.
    names:
        Optional (N,) identifiers (e.g. objectId), written above each triplet.
    seed:
        Seed of the random choice of examples within each class.
    """
    triplets = np.asarray(triplets)
    if triplets.ndim == 4 and triplets.shape[1] == 3 and triplets.shape[-1] != 3:
        triplets = np.moveaxis(triplets, 1, -1)
    if triplets.ndim != 4 or triplets.shape[-1] != 3:
        raise ValueError(f"triplets must be (N, H, W, 3) or (N, 3, H, W); got {triplets.shape}")
    labels = np.asarray(labels)
    if len(labels) != len(triplets):
        raise ValueError(f"{len(labels)} labels for {len(triplets)} triplets")
    rng = np.random.default_rng(seed)
    classes = sorted(np.unique(labels).tolist(), key=str)
    chosen = {}
    for label in classes:
        members = np.flatnonzero(labels == label)
        chosen[label] = np.sort(rng.choice(members, size=min(n_per_class, len(members)), replace=False))
    ncols = 3 * n_per_class
    figure, axes = new_figure(len(classes), ncols, panel_size=(1.3, 1.5))
    for row_index, label in enumerate(classes):
        for slot in range(n_per_class):
            for channel in range(3):
                ax = axes[row_index, 3 * slot + channel]
                ax.set_xticks([])
                ax.set_yticks([])
                if slot >= len(chosen[label]):
                    ax.set_axis_off()
                    continue
                index = chosen[label][slot]
                cutout = triplets[index, :, :, channel]
                low, high = _zscale(cutout)
                ax.imshow(cutout, cmap="gray", vmin=low, vmax=high, origin="lower")
                if row_index == 0:
                    ax.set_xlabel(channel_names[channel], fontsize=7)
                    ax.xaxis.set_label_position("top")
                if channel == 0:
                    caption = [str(names[index])] if names is not None else []
                    if scores is not None:
                        caption.append(f"score {float(scores[index]):.3f}")
                    if caption:
                        ax.set_title("\n".join(caption), fontsize=6, loc="left")
            if slot == 0:
                axes[row_index, 0].set_ylabel(_class_name(label, class_names), fontsize=8)
    figure.suptitle("example triplets per class", fontsize=9)
    return figure


# --------------------------------------------------------------------------------------------
# Results: metric by architecture and initialisation, data efficiency, completeness and purity
# --------------------------------------------------------------------------------------------


def _with_values(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of a summary that have a value to draw (the summary counts the others in ``n_non_finite``)."""
    return summary[summary["n_seeds"] > 0] if "n_seeds" in summary.columns else summary


def _full_summary(table: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """A summary table (``seeds.summarise_over_seeds``) from either a summary or a raw results table,
    with the combinations that have no value to draw."""
    if "mean" in table.columns and "ci_low" in table.columns:
        return table if metrics is None else table[table["metric"].isin(list(metrics))]
    if "value" in table.columns:
        return seeds.summarise_over_seeds(table, metrics)
    raise ValueError(
        "expected the results table (with 'value') or its summary from alertlib.report.seeds.summarise_over_seeds "
        f"(with 'mean', 'ci_low', 'ci_high'); got columns {list(table.columns)}"
    )


def _as_summary(table: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """The rows of the summary of ``table`` that have a value to draw."""
    return _with_values(_full_summary(table, metrics))


def _interval_words(summary: pd.DataFrame, confidence: float | None = None) -> str:
    """How a summary's intervals were computed, for an axis label: e.g. "95% t interval over replicates"."""
    methods = set(summary["interval_method"]) if "interval_method" in summary.columns else set()
    kind = (
        {"t": "t interval", "bootstrap": "bootstrap interval"}.get(methods.pop(), "interval")
        if len(methods) == 1
        else "interval"
    )
    return f"{confidence:.0%} {kind} over replicates" if confidence is not None else f"{kind} over replicates"


def _gate_counts(rows: pd.DataFrame) -> tuple[int, int]:
    """Runs that failed the validation gate, and all runs, in summary rows (0, 0 without the columns)."""
    if "n_failed_gate" not in rows.columns:
        return 0, 0
    failed = int(rows["n_failed_gate"].sum())
    return failed, failed + int(rows["n_seeds"].sum()) + int(rows.get("n_non_finite", pd.Series(dtype=int)).sum())


def _gate_note(rows: pd.DataFrame) -> str:
    """ " (k/n failed the gate)" for summary rows with gate failures, else ""."""
    failed, runs = _gate_counts(rows)
    return f" ({failed}/{runs} failed the gate)" if failed else ""


def _resolve(table: pd.DataFrame, metric: str) -> str:
    found = tables.resolve_metric(table, metric) if not table.empty else None
    if found is None:
        available = sorted(table["metric"].unique())[:20] if not table.empty else []
        raise ValueError(f"metric {metric!r} (or an alias) is not in the table; available: {available}")
    return found


def _errorbar(ax, x, rows: pd.DataFrame, **kwargs):
    """Means with asymmetric error bars from ci_low/ci_high."""
    means = rows["mean"].to_numpy(dtype=np.float64)
    errors = np.vstack([means - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - means])
    return ax.errorbar(x, means, yerr=np.clip(errors, 0.0, None), capsize=3, **kwargs)


def plot_metric_by_arch_init(
    table: pd.DataFrame,
    metric: str = "auc",
    task: str = "bts",
    train_fraction: float = 1.0,
    reference_arch: str = REFERENCE_ARCH,
    reference_init: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """The metric of each architecture x initialisation (mean and t interval over replicates), with
    the custom CNN as a horizontal reference line and band.

    Models with runs that failed the validation gate are marked "k/n failed the gate" beside their
    point (those runs are left out of the mean); models whose every run failed are named in the title.

    Parameters
    ----------
    table:
        The results table or its ``seeds.summarise_over_seeds`` summary.
    metric:
        Metric name (aliases of ``tables.METRIC_ALIASES`` accepted).
    reference_init:
        The CNN's initialisation drawn as the reference (default scratch, else its first).
    confidence:
        Only used in the axis label (the interval was computed by the summary).
    """
    full = _full_summary(table)
    metric = _resolve(_with_values(full), metric)
    selected = full[
        (full["task"] == task)
        & (full["metric"] == metric)
        & np.isclose(full["train_fraction"].astype(float), train_fraction)
    ]
    rows = _with_values(selected)
    if rows.empty:
        raise ValueError(f"no rows for task {task!r}, metric {metric!r}, train_fraction {train_fraction}")
    others = rows[rows["arch"] != reference_arch]
    archs = ordered_archs(others["arch"]) if not others.empty else []
    inits = ordered_inits(others["init"]) if not others.empty else []
    figure, axes = new_figure(1, 1, panel_size=(max(5.5, 1.6 * len(archs) + 2.5), 3.8))
    ax = axes[0, 0]
    width = 0.8 / max(1, len(inits))
    for position, init in enumerate(inits):
        part = others[others["init"] == init]
        x = np.array([archs.index(a) for a in part["arch"]]) + (position - (len(inits) - 1) / 2) * width
        _errorbar(ax, x, part, fmt="o", color=init_colour(init), label=init, markersize=6)
        for x_position, (_, row) in zip(x, part.iterrows(), strict=True):
            note = _gate_note(part.loc[[row.name]])
            if note:
                ax.annotate(
                    note.strip(" ()"),
                    (x_position, row["mean"]),
                    fontsize=6,
                    xytext=(4, -8),
                    textcoords="offset points",
                    color="#d62728",
                )
    _reference_line(ax, rows, reference_arch, reference_init, task, metric)
    ax.set_xticks(range(len(archs)), archs)
    ax.set_xlim(-0.6, max(0.6, len(archs) - 0.4))
    ax.set_ylabel(f"{metric} (mean, {_interval_words(rows, confidence)})")
    ax.set_title(f"{task}, training fraction {train_fraction:g}{_undrawn_note(selected)}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(axis="y", alpha=0.3)
    return figure


def _reference_line(ax, rows: pd.DataFrame, reference_arch: str, reference_init, task: str, metric: str) -> None:
    """The custom CNN's mean as a dashed line, its interval as a band (with its gate failures in the label)."""
    reference = rows[rows["arch"] == reference_arch]
    if reference.empty:
        warnings.warn(f"no {reference_arch} rows for {task}/{metric}: no reference line drawn", stacklevel=3)
        return
    chosen = seeds.reference_init_for(reference["init"], reference_init)
    if chosen is None:
        return
    ref = reference[reference["init"] == chosen]
    label = f"{reference_arch} ({chosen}), reference{_gate_note(ref)}"
    ax.axhline(ref["mean"].iloc[0], color=REFERENCE_COLOUR, linestyle="--", lw=1.2, label=label)
    ax.axhspan(ref["ci_low"].iloc[0], ref["ci_high"].iloc[0], color=REFERENCE_COLOUR, alpha=0.1, lw=0)


def _undrawn_note(summary: pd.DataFrame) -> str:
    """A title line naming the models not drawn because no run passed the gate with a value ("" if none)."""
    if "n_failed_gate" not in summary.columns:
        return ""
    empty = summary[(summary["n_seeds"] == 0) & (summary["n_failed_gate"] > 0)]
    names = [f"{row['arch']} ({row['init']}){_gate_note(empty.loc[[index]])}" for index, row in empty.iterrows()]
    return f"\nnot drawn, no usable run: {', '.join(names)}" if names else ""


def plot_data_efficiency(
    table: pd.DataFrame,
    metric: str = "auc",
    task: str = "bts",
    archs: Sequence[str] | None = None,
    inits: Sequence[str] | None = None,
) -> Figure:
    """The metric against the fraction of training sources, one line per (architecture, initialisation).

    Colour = initialisation, marker and line style = architecture; error bars are the t intervals
    over replicates. A model with runs that failed the validation gate says so in the legend
    ("k/n failed the gate", over all fractions). ``table`` is the results table or its summary.
    """
    summary = _as_summary(table)
    metric = _resolve(summary, metric)
    rows = summary[(summary["task"] == task) & (summary["metric"] == metric)]
    if archs is not None:
        rows = rows[rows["arch"].isin(archs)]
    if inits is not None:
        rows = rows[rows["init"].isin(inits)]
    if rows.empty:
        raise ValueError(f"no rows for task {task!r} and metric {metric!r}")
    figure, axes = new_figure(1, 1, panel_size=(5.5, 3.8))
    ax = axes[0, 0]
    arch_list = ordered_archs(rows["arch"])
    for arch_index, arch in enumerate(arch_list):
        for init in ordered_inits(rows.loc[rows["arch"] == arch, "init"]):
            part = rows[(rows["arch"] == arch) & (rows["init"] == init)].sort_values("train_fraction")
            _errorbar(
                ax,
                part["train_fraction"].to_numpy(dtype=np.float64),
                part,
                color=init_colour(init),
                marker=arch_marker(arch),
                linestyle=_LINESTYLES[arch_index % len(_LINESTYLES)],
                label=f"{arch} / {init}{_gate_note(part)}",
            )
    fractions = sorted(rows["train_fraction"].astype(float).unique())
    ax.set_xscale("log")
    ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("fraction of training sources")
    ax.set_ylabel(f"{metric} (mean, {_interval_words(rows)})")
    ax.set_title(f"{task}: data efficiency")
    ax.legend(fontsize=6, ncols=2)
    ax.grid(alpha=0.3)
    return figure


def plot_completeness_purity(
    table: pd.DataFrame,
    task: str = "bts",
    train_fraction: float = 1.0,
    archs: Sequence[str] | None = None,
    inits: Sequence[str] | None = None,
    quantities: Sequence[str] = tables.BINNED_QUANTITIES,
    policy: str | None = None,
) -> Figure:
    """Completeness and purity against peak magnitude, one panel per quantity.

    Parameters
    ----------
    table:
        The results table (or its summary) holding metrics named like
        ``bts_p1_completeness_17.00-17.25`` or ``completeness_17.00_17.25``
        (``tables.parse_binned_metric``). Points sit at the bin centres (side by side), the x ticks
        are the bin edges, vertical bars are the t intervals over replicates; a model with runs
        that failed the validation gate says so in the legend.
    policy:
        Source-level policy whose bins are drawn (``bts_p1``, ``bts_p2``, ``prod_p1``, ``prod_p2``).
        Default: the only one present, else ``bts_p1`` when present, else the first in sorted order.
    """
    binned = tables.binned_metrics(table, quantities)
    if binned.empty:
        raise ValueError(
            f"no binned metrics ([<policy>_]{'|'.join(quantities)}_<low>-<high>) in the table; "
            "alertlib.learn.metrics.policy_metrics writes them (names: alertlib.report.tables.binned_metric_name)"
        )
    policies = sorted(set(binned["policy"]))
    if policy is None:
        policy = policies[0] if len(policies) == 1 else ("bts_p1" if "bts_p1" in policies else policies[0])
    elif policy not in policies:
        raise ValueError(f"no binned metrics for policy {policy!r}; present: {policies}")
    binned = binned[binned["policy"] == policy]
    if "mean" not in binned.columns:
        # Raw results: summarise over replicates, then read the bins back from the metric names.
        binned = tables.binned_metrics(seeds.summarise_over_seeds(binned), quantities)
    summary = _with_values(binned)
    rows = summary[(summary["task"] == task) & np.isclose(summary["train_fraction"].astype(float), train_fraction)]
    if archs is not None:
        rows = rows[rows["arch"].isin(archs)]
    if inits is not None:
        rows = rows[rows["init"].isin(inits)]
    if rows.empty:
        raise ValueError(f"no binned metrics for task {task!r} and train_fraction {train_fraction}")
    present = [q for q in quantities if q in set(rows["quantity"])]
    figure, axes = new_figure(1, len(present), panel_size=(4.5, 3.6), sharex=True)
    combos = [
        (arch, init)
        for arch in ordered_archs(rows["arch"])
        for init in ordered_inits(rows.loc[rows["arch"] == arch, "init"])
    ]
    edges = sorted(set(rows["mag_low"]) | set(rows["mag_high"]))
    narrowest = float((rows["mag_high"] - rows["mag_low"]).min())
    for ax, quantity in zip(axes[0], present, strict=True):
        for offset_index, (arch, init) in enumerate(combos):
            part = rows[(rows["quantity"] == quantity) & (rows["arch"] == arch) & (rows["init"] == init)]
            part = part.sort_values("mag_center")
            # Side-by-side offsets within the bin keep overlapping error bars readable.
            shift = (offset_index - (len(combos) - 1) / 2) * 0.6 * narrowest / max(1, len(combos))
            _errorbar(
                ax,
                part["mag_center"].to_numpy(dtype=np.float64) + shift,
                part,
                color=init_colour(init),
                marker=arch_marker(arch),
                linestyle="-",
                lw=1,
                # Every bin of a model holds the same runs: the first row counts its gate failures.
                label=f"{arch} / {init}{_gate_note(part.iloc[:1])}",
            )
        ax.set_xticks(edges, [f"{edge:g}" for edge in edges], fontsize=7)
        ax.grid(axis="x", alpha=0.5)
        ax.grid(axis="y", alpha=0.2)
        ax.set_xlabel("peak magnitude (bin edges)")
        ax.set_ylabel(quantity)
        ax.set_title(f"{task}: {quantity} vs peak magnitude{f' ({policy})' if policy else ''}", fontsize=9)
    axes[0, -1].legend(fontsize=6)
    return figure


# --------------------------------------------------------------------------------------------
# The validation gate and the primary contrasts
# --------------------------------------------------------------------------------------------


def plot_gate(gate: pd.DataFrame) -> Figure:
    """The fraction of runs that failed the validation gate, per model: one panel per (task, training fraction).

    Parameters
    ----------
    gate:
        The table of ``alertlib.report.gate.gate_table``. Bars are coloured by initialisation and
        grouped by architecture; each is labelled "failed/runs".
    """
    tables.check_columns(
        gate, ("task", "arch", "init", "train_fraction", "runs", "failed", "failure_rate"), "gate table"
    )
    if gate.empty:
        raise ValueError("the gate table is empty: no runs to draw")
    panels = list(dict.fromkeys(zip(gate["task"], gate["train_fraction"].astype(float), strict=True)))
    models = gate[["arch", "init"]].drop_duplicates()
    figure, axes = new_figure(1, len(panels), panel_size=(max(4.0, 0.5 * len(models) + 1.5), 3.4), sharey=True)
    for ax, (task, fraction) in zip(axes[0], panels, strict=True):
        rows = gate[(gate["task"] == task) & np.isclose(gate["train_fraction"].astype(float), fraction)]
        labels = [f"{row['arch']}\n{row['init']}" for _, row in rows.iterrows()]
        x = np.arange(len(rows))
        ax.bar(x, rows["failure_rate"], color=[init_colour(init) for init in rows["init"]], width=0.7)
        for position, (_, row) in zip(x, rows.iterrows(), strict=True):
            ax.annotate(
                f"{int(row['failed'])}/{int(row['runs'])}",
                (position, row["failure_rate"]),
                ha="center",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.set_xticks(x, labels, fontsize=6, rotation=45, ha="right")
        ax.set_ylim(0.0, 1.1)
        ax.set_title(f"{task}, training fraction {fraction:g}", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("fraction of runs that failed the gate")
    return figure


def plot_primary_contrasts(primary: pd.DataFrame) -> Figure:
    """Each primary contrast's difference with its two intervals, and a zero line.

    Parameters
    ----------
    primary:
        The table of ``alertlib.report.claims.primary_contrasts``. Per contrast (one row each, top
        to bottom): the mean difference over replicates with Student's t interval (black, the
        headline) and, below it, the hierarchical bootstrap's difference and interval (grey, where
        computed); the Holm p-value is written beside the t interval.
    """
    tables.check_columns(
        primary,
        ("name", "metric", "difference", "ci_low", "ci_high", "boot_difference", "boot_low", "boot_high", "p_holm"),
        "primary contrasts table",
    )
    if primary.empty:
        raise ValueError("no primary contrasts to draw")
    figure, axes = new_figure(1, 1, panel_size=(6.5, 0.7 * len(primary) + 1.4))
    ax = axes[0, 0]
    y = np.arange(len(primary))[::-1].astype(float)
    for kind, offset, colour, columns in (
        ("t interval over replicates", 0.0, REFERENCE_COLOUR, ("difference", "ci_low", "ci_high")),
        ("hierarchical bootstrap", -0.25, "0.55", ("boot_difference", "boot_low", "boot_high")),
    ):
        centre, low, high = (primary[c].to_numpy(dtype=np.float64) for c in columns)
        errors = np.vstack([centre - low, high - centre])
        drawn = np.isfinite(centre)
        ax.errorbar(
            centre[drawn],
            y[drawn] + offset,
            xerr=np.clip(errors[:, drawn], 0.0, None),
            fmt="o" if offset == 0.0 else "s",
            color=colour,
            capsize=3,
            markersize=5,
            label=kind,
        )
    for position, (_, row) in zip(y, primary.iterrows(), strict=True):
        if np.isfinite(row["difference"]):
            ax.annotate(
                f"Holm p = {contrasts.format_p(row['p_holm'])}",
                (row["difference"], position),
                fontsize=6,
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
            )
    ax.axvline(0.0, color="0.4", lw=0.8, linestyle=":")
    ax.set_yticks(y, [f"{row['name']}\n({row['metric']})" for _, row in primary.iterrows()], fontsize=7)
    ax.set_ylim(y.min() - 0.7, y.max() + 0.7)
    ax.set_xlabel("difference, treatment - baseline")
    confidence = primary["confidence"].iloc[0] if "confidence" in primary.columns else None
    ax.set_title("primary contrasts" + (f" ({confidence:.0%} intervals)" if confidence is not None else ""), fontsize=9)
    ax.legend(fontsize=6, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return figure


# --------------------------------------------------------------------------------------------
# Predictions: ROC curves and confusion matrices
# --------------------------------------------------------------------------------------------


def _facets(table: pd.DataFrame, facet_by: str | None) -> list:
    if facet_by and facet_by in table.columns:
        return _ordered(table[facet_by], facet_by)
    return [None]


def plot_roc_curves(predictions: pd.DataFrame, group_by: str = "init", facet_by: str | None = "arch") -> Figure:
    """ROC curves of binary predictions: one panel per ``facet_by`` value, one colour per group,
    one thin line per seed; the legend gives each group's mean AUC over its seeds.

    Parameters
    ----------
    predictions:
        Long table with ``label`` (0/1) and ``score`` per alert, plus ``group_by`` / ``facet_by`` /
        ``seed`` columns when several runs are drawn.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    if confusion.is_multiclass(predictions):
        raise ValueError(
            "ROC curves are drawn for the binary task (label 0/1 and score); these predictions are "
            "multi-class: use plot_confusion_matrices"
        )
    tables.check_columns(predictions, ("label", "score"), "binary predictions table (ROC curves)")
    facets = _facets(predictions, facet_by)
    figure, axes = new_figure(1, len(facets), panel_size=(3.8, 3.6))
    for ax, facet in zip(axes[0], facets, strict=True):
        panel = predictions if facet is None else predictions[predictions[facet_by] == facet]
        groups = _ordered(panel[group_by], group_by) if group_by in panel.columns else [None]
        for group in groups:
            part = panel if group is None else panel[panel[group_by] == group]
            runs = part.groupby("seed") if "seed" in part.columns else [(None, part)]
            curves = []
            for seed_value, run in runs:
                if run["label"].nunique() < 2:
                    warnings.warn(f"ROC: {facet}/{group} seed {seed_value} has one class only; skipped", stacklevel=2)
                    continue
                false_positive, true_positive, _ = roc_curve(run["label"], run["score"])
                curves.append((false_positive, true_positive, roc_auc_score(run["label"], run["score"])))
            if not curves:
                continue
            mean_auc = float(np.mean([auc for _, _, auc in curves]))
            runs_text = f"{len(curves)} run" + ("s" if len(curves) > 1 else "")
            label = f"{'all' if group is None else group}: AUC {mean_auc:.3f} ({runs_text})"
            colour = _group_colour(group_by, group) if group is not None else "C0"
            for index, (false_positive, true_positive, _) in enumerate(curves):
                ax.plot(
                    false_positive, true_positive, color=colour, lw=1, alpha=0.8, label=label if index == 0 else None
                )
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, linestyle=":")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(str(facet) if facet is not None else "ROC")
        ax.legend(fontsize=6, loc="lower right")
    return figure


def plot_confusion_matrices(
    predictions: pd.DataFrame,
    group_by: str = "init",
    facet_by: str | None = None,
    threshold: float = 0.5,
    class_names: Mapping | Sequence[str] | None = None,
) -> Figure:
    """Row-normalised confusion matrices (true class x predicted class), one panel per group.

    Several seeds of a group are pooled (their counts summed) before normalising. Binary tables
    use ``label`` and ``score >= threshold``; multi-class tables (``alertlib.learn.finetune``: ``label``,
    ``predicted``, ``prob_<class>``) are read by ``confusion.true_and_predicted``. Each cell shows the
    row fraction and, in brackets, the count.
    """
    import seaborn

    groups = _ordered(predictions[group_by], group_by) if group_by in predictions.columns else [None]
    facets = _facets(predictions, facet_by)
    figure, axes = new_figure(len(facets), len(groups), panel_size=(3.0, 2.9))
    for row_index, facet in enumerate(facets):
        panel = predictions if facet is None else predictions[predictions[facet_by] == facet]
        for column_index, group in enumerate(groups):
            ax = axes[row_index, column_index]
            part = panel if group is None else panel[panel[group_by] == group]
            if part.empty:
                ax.set_axis_off()
                continue
            matrix = confusion.confusion_table(part, threshold=threshold, normalise=True)
            counts = confusion.confusion_table(part, threshold=threshold, normalise=False)
            names = [_class_name(c, class_names) for c in matrix.index]
            # Each cell: row fraction and, in brackets, the count (rows without examples stay blank).
            labels = matrix.map(lambda fraction: f"{fraction:.2f}") + counts.map(lambda count: f"\n({int(count)})")
            seaborn.heatmap(
                matrix,
                ax=ax,
                cmap="Blues",
                vmin=0.0,
                vmax=1.0,
                cbar=False,
                square=True,
                annot=labels,
                fmt="",
                annot_kws={"fontsize": 6},
            )
            ax.set_xticks(ax.get_xticks(), names, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(ax.get_yticks(), names, rotation=0, fontsize=7)
            title = " / ".join(str(v) for v in (facet, group) if v is not None)
            ax.set_title(title or "confusion matrix", fontsize=8)
            ax.set_xlabel("predicted", fontsize=7)
            ax.set_ylabel("true", fontsize=7)
    return figure


# --------------------------------------------------------------------------------------------
# Efficiency
# --------------------------------------------------------------------------------------------


def plot_speed_memory(
    benchmark: pd.DataFrame,
    reference_model: str = REFERENCE_ARCH,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    impl: str | None = "alertlib",
    variant: str | None = None,
) -> Figure:
    """Throughput and peak memory against parameter count, one row of panels per device.

    Rows are chosen by ``claims.select_benchmark_rows`` (same arguments: by default float32, the
    largest batch size, and each model's fastest variant). The custom CNN is drawn in black.
    """
    selected = claims.select_benchmark_rows(benchmark, device, dtype, batch_size, impl, variant)
    if selected.empty:
        raise ValueError("no benchmark rows left after choosing device/dtype/batch_size/impl/variant")
    devices = sorted(selected["device"].unique())
    figure, axes = new_figure(len(devices), 2, panel_size=(4.5, 3.6))
    for row_index, device_name in enumerate(devices):
        rows = selected[selected["device"] == device_name]
        for ax, column, label in (
            (axes[row_index, 0], "alerts_per_s", "throughput (alerts/s)"),
            (axes[row_index, 1], "peak_mem_mb", "peak memory (MB)"),
        ):
            for _, row in rows.iterrows():
                if not (np.isfinite(row["params"]) and np.isfinite(row[column])):
                    continue
                is_reference = row["model"] == reference_model
                ax.scatter(
                    row["params"],
                    row[column],
                    marker=arch_marker(row["model"]),
                    color=REFERENCE_COLOUR if is_reference else "C0",
                    s=45,
                    zorder=3,
                )
                ax.annotate(
                    str(row["model"]),
                    (row["params"], row[column]),
                    fontsize=6,
                    xytext=(4, 3),
                    textcoords="offset points",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.margins(0.2)  # room for the model names
            ax.set_xlabel("parameters")
            ax.set_ylabel(label)
            first = rows.iloc[0]
            ax.set_title(f"{device_name}, {first['dtype']}, batch {int(first['batch_size'])}", fontsize=8)
            ax.grid(alpha=0.3, which="both")
    return figure


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


def umap_available() -> bool:
    """Whether the optional ``umap-learn`` package is installed."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def embed_2d(
    embeddings: np.ndarray, method: str = "auto", seed: int = 0, perplexity: float = 30.0, tsne_max_iter: int = 1000
) -> np.ndarray:
    """A 2-D projection of embeddings (N, D): t-SNE (scikit-learn) or UMAP (when installed).

    Parameters
    ----------
    method:
        ``"tsne"``, ``"umap"`` (requires ``umap-learn``) or ``"auto"`` (UMAP when installed, else t-SNE).
    perplexity:
        t-SNE perplexity, lowered to (N - 1) / 3 for small N.
    tsne_max_iter:
        t-SNE optimisation steps (scikit-learn's default 1000; at least 250).

    Returns
    -------
    numpy.ndarray
        (N, 2) coordinates, seeded.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32).reshape(len(embeddings), -1)
    if len(embeddings) < 5:
        raise ValueError(f"need at least 5 embeddings for a 2-D projection, got {len(embeddings)}")
    chosen = ("umap" if umap_available() else "tsne") if method == "auto" else method
    if chosen == "umap":
        if not umap_available():
            raise ImportError("method='umap' needs the umap-learn package; use method='tsne' or install umap-learn")
        import umap

        return umap.UMAP(n_components=2, random_state=seed).fit_transform(embeddings)
    if chosen != "tsne":
        raise ValueError(f"method must be 'auto', 'tsne' or 'umap', got {method!r}")
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    # t-SNE on the leading principal components is the usual practice: faster and less noisy.
    if embeddings.shape[1] > 50:
        embeddings = PCA(n_components=50, random_state=seed).fit_transform(embeddings)
    perplexity = min(perplexity, (len(embeddings) - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=tsne_max_iter)
    return tsne.fit_transform(embeddings)


def plot_embeddings(
    embeddings_by_init: Mapping[str, np.ndarray],
    labels,
    class_names: Mapping | Sequence[str] | None = None,
    method: str = "auto",
    seed: int = 0,
    max_points: int = 2000,
    perplexity: float = 30.0,
    tsne_max_iter: int = 1000,
) -> Figure:
    """2-D maps of zero-shot embeddings, one panel per initialisation, points coloured by class.

    Parameters
    ----------
    embeddings_by_init:
        Initialisation name -> (N, D) embeddings of the same N alerts by that initialisation's
        encoder (before any fine-tuning).
    labels:
        (N,) class of each alert.
    method:
        See ``embed_2d``; the method used is named in each panel.
    max_points:
        A seeded random subset of at most this many alerts is projected (t-SNE is quadratic).
    perplexity, tsne_max_iter:
        Passed to ``embed_2d``.
    """
    labels = np.asarray(labels)
    inits = ordered_inits(embeddings_by_init)
    for init in inits:
        if len(embeddings_by_init[init]) != len(labels):
            raise ValueError(f"embeddings of {init} have {len(embeddings_by_init[init])} rows for {len(labels)} labels")
    rng = np.random.default_rng(seed)
    subset = np.sort(rng.choice(len(labels), size=min(max_points, len(labels)), replace=False))
    used = ("umap" if umap_available() else "tsne") if method == "auto" else method
    classes = sorted(np.unique(labels).tolist(), key=str)
    figure, axes = new_figure(1, len(inits), panel_size=(3.4, 3.4))
    for ax, init in zip(axes[0], inits, strict=True):
        coordinates = embed_2d(np.asarray(embeddings_by_init[init])[subset], used, seed, perplexity, tsne_max_iter)
        for class_index, label in enumerate(classes):
            mask = labels[subset] == label
            ax.scatter(
                coordinates[mask, 0],
                coordinates[mask, 1],
                s=6,
                alpha=0.7,
                color=f"C{class_index % 10}",
                label=_class_name(label, class_names),
            )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{init} ({'t-SNE' if used == 'tsne' else 'UMAP'})", fontsize=8, color=init_colour(init))
    axes[0, -1].legend(fontsize=6, markerscale=2)
    figure.suptitle(f"zero-shot embeddings of {len(subset)} alerts", fontsize=9)
    return figure


# --------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------


def plot_training_curves(curves: pd.DataFrame, group_by: str = "init", facet_by: str | None = "arch") -> Figure:
    """Training (solid) and validation (dashed) loss per epoch: one panel per ``facet_by`` value,
    one colour per group, one line per seed.

    Parameters
    ----------
    curves:
        Long table with ``epoch``, ``train_loss``, ``val_loss`` (the per-run CSV), plus
        ``group_by`` / ``facet_by`` / ``seed`` columns when several runs are drawn.
    """
    tables.check_columns(curves, ("epoch", "train_loss", "val_loss"), "training curves table")
    facets = _facets(curves, facet_by)
    figure, axes = new_figure(1, len(facets), panel_size=(4.0, 3.2))
    for ax, facet in zip(axes[0], facets, strict=True):
        panel = curves if facet is None else curves[curves[facet_by] == facet]
        groups = _ordered(panel[group_by], group_by) if group_by in panel.columns else [None]
        for group in groups:
            part = panel if group is None else panel[panel[group_by] == group]
            colour = _group_colour(group_by, group) if group is not None else "C0"
            runs = part.groupby("seed") if "seed" in part.columns else [(None, part)]
            for index, (_seed, run) in enumerate(runs):
                run = run.sort_values("epoch")
                label = str(group) if (index == 0 and group is not None) else None
                ax.plot(run["epoch"], run["train_loss"], color=colour, lw=1, label=label)
                ax.plot(run["epoch"], run["val_loss"], color=colour, lw=1, linestyle="--")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (solid: train, dashed: validation)")
        ax.set_title(str(facet) if facet is not None else "training curves", fontsize=8)
        if any(line.get_label() and not line.get_label().startswith("_") for line in ax.get_lines()):
            ax.legend(fontsize=6)
    return figure


# --------------------------------------------------------------------------------------------
# Realism: simulated and real triplets side by side
# --------------------------------------------------------------------------------------------

LOGARITHMIC_STATISTICS = frozenset(
    {"science_noise_to_level", "reference_noise_to_level", "difference_peak_snr", "reference_extent"}
)


def plot_calibration(simulated: pd.DataFrame, real: pd.DataFrame, columns: Sequence[str] | None = None) -> Figure:
    """Histograms of the realism statistics (:func:`alertlib.sky.realism.triplet_statistics`; pass
    ``alertlib.sky.realism.CALIBRATION_STATISTICS`` as ``columns``), simulated beside real (shared
    bins, densities); default: every numeric column the two tables share."""
    columns = list(columns or [c for c in simulated.select_dtypes("number").columns if c in real.columns])
    figure, axes = new_figure(1, len(columns), panel_size=(2.6, 2.4))
    for axis, column in zip(axes[0], columns, strict=True):
        logarithmic = column in LOGARITHMIC_STATISTICS
        values = [t[column].astype(float).to_numpy() for t in (simulated, real)]
        values = [v[np.isfinite(v) & ((v > 0) if logarithmic else True)] for v in values]
        low, high = np.percentile(np.concatenate(values), [1, 99])
        bins = np.geomspace(max(low, 1e-6), high, 25) if logarithmic else np.linspace(low, high, 25)
        for data, name in zip(values, ("simulated", "real ZTF"), strict=True):
            axis.hist(data, bins=bins, density=True, histtype="step", label=name)
        if logarithmic:
            axis.set_xscale("log")
        axis.set_title(column, fontsize=8)
    axes[0][0].legend(fontsize=7)
    return figure
