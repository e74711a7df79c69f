"""Compare the runs of a sweep: ``nuclei-summarize SWEEP_DIR`` (or ``sweep=SWEEP_DIR``).

Reads every run of a Hydra multirun folder (its overrides, final metrics, the evaluations of
its best checkpoint and the TensorBoard curve of its objective, see :mod:`nuclei.runs.sweep`),
prints a table sorted by the objective (``val/iou`` unless the runs set ``objective.metric``),
and writes ``summary.csv``, ``summary.md`` and ``<objective>.png`` (e.g. ``val_iou.png``: the
curves of all runs, drawn with matplotlib) into ``output`` (null: the sweep folder).

Runs that differ only in ``seed`` or ``data.split.fold`` form groups
(:mod:`nuclei.runs.sweep_groups`): when a group has several runs it also prints and writes
each group's mean ± std and 95% interval (``groups.csv``, ``groups.md``,
``<metric>_groups.png``); ``compare=[A,B]`` (``--compare A B``) writes the paired difference
B - A over matching seeds and folds (``compare.json``, ``compare.md``). See
``conf/summarize.yaml`` (``nuclei-summarize --help``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig
from rich.table import Table

from nuclei.cli import summary_groups as shown
from nuclei.cli.app import App, command, user_errors
from nuclei.cli.console import print_table
from nuclei.cli.overrides import Vocabulary
from nuclei.data.kinds import ordered_kinds
from nuclei.runs.sweep import RunSummary, summarize
from nuclei.runs.sweep_groups import Comparison, Group, GroupError, compare, find_group, group_runs

#: Validation metrics shown after the objective (as ``val/<name>``), when runs recorded them.
METRIC_NAMES = ("loss", "acc", "iou", "dice", "map")
#: Metrics of each evaluation tag shown by default (as ``<tag>/<name>``).
EVAL_METRIC_NAMES = ("map", "iou")
#: Shown per image kind (as ``<stage>/<name>_<kind>``), for the kinds the runs recorded.
KIND_METRIC_NAMES = ("map",)
FACT_COLUMNS = ("epochs", "wall_time_s")
#: ``nuclei-summarize SWEEP --out DIR --no-progress --compare A B`` (argparse spellings) work.
SPELLINGS = Vocabulary(
    main_key="sweep",
    switches={"--no-progress": "progress_bar=false"},
    options={"--out": "output"},
    tuples={"--compare": ("compare", 2)},
)
APP = App(name="nuclei-summarize", config_name="summarize", words=SPELLINGS)


class NoRunsError(FileNotFoundError):
    """The folder given to ``nuclei-summarize`` does not exist or holds no run."""


def eval_tags(runs: Sequence[RunSummary]) -> list[str]:
    """Every evaluation tag of the runs (``test``, ``test.7f86fd5d``), sorted."""
    return sorted({tag for run in runs for tag in run.tags})


def kind_columns(runs: Sequence[RunSummary], stage: str) -> list[str]:
    """``<stage>/map_<kind>`` for every image kind some run recorded, in
    :func:`nuclei.data.kinds.ordered_kinds` order."""
    prefix = f"{stage}/images_"
    found = {
        key.removeprefix(prefix) for run in runs for key in run.metrics if key.startswith(prefix)
    }
    kinds = ordered_kinds(found)
    return [f"{stage}/{name}_{kind}" for kind in kinds for name in KIND_METRIC_NAMES]


def metric_columns(runs: Sequence[RunSummary], chosen: Sequence[str] | None = None) -> list[str]:
    """``chosen``, else the objective first, the other validation metrics, the validation map
    of each image kind, then the map and IoU of each evaluation tag that a run recorded, each
    followed by its map per image kind."""
    if chosen:
        return list(chosen)
    objective = runs[0].objective.metric if runs else None
    if not objective:
        return []
    others = [f"val/{name}" for name in METRIC_NAMES] + kind_columns(runs, "val")
    evaluated = [
        column
        for tag in eval_tags(runs)
        for column in (*(f"{tag}/{name}" for name in EVAL_METRIC_NAMES), *kind_columns(runs, tag))
    ]
    recorded = [key for key in evaluated if any(run.value(key) is not None for run in runs)]
    return [objective, *(m for m in [*others, *recorded] if m != objective)]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table_rows(
    runs: Sequence[RunSummary], metrics: Sequence[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (one row per run).

    The overrides column shows what differs between runs; overrides shared by all are left out.
    """
    metrics = metric_columns(runs, metrics)
    header = ["run", "overrides", *metrics, *FACT_COLUMNS]
    shared = set.intersection(*(set(run.overrides) for run in runs)) if len(runs) > 1 else set()
    rows = [
        [
            run.name,
            " ".join(o for o in run.overrides if o not in shared),
            *(_cell(run.value(k)) for k in (*metrics, *FACT_COLUMNS)),
        ]
        for run in runs
    ]
    return header, rows


def write_summary_csv(
    runs: Sequence[RunSummary], path: Path, metrics: Sequence[str] | None = None
) -> Path:
    """The table as CSV."""
    return shown.write_csv(*table_rows(runs, metrics), path)


def write_summary_markdown(
    runs: Sequence[RunSummary], path: Path, metrics: Sequence[str] | None = None
) -> Path:
    """The table as a Markdown table."""
    path.write_text("\n".join(shown.markdown_lines(*table_rows(runs, metrics))) + "\n")
    return path


def plot_curves(runs: Sequence[RunSummary], path: Path, size: tuple[int, int] = (900, 560)) -> Path:
    """Plot every run's objective against the training step, with a legend, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    dpi = 100
    figure, axes = plt.subplots(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    _, rows = table_rows(runs)
    for run, row in zip(runs, rows, strict=True):
        steps = [step for step, _ in run.curve]
        values = [value for _, value in run.curve]
        axes.plot(steps, values, marker="o", markersize=3, label=f"{run.name} {row[1]}"[:48])
    axes.set_xlabel("training step")
    tag = runs[0].objective.metric if runs else ""
    axes.set_ylabel(tag)
    axes.set_title(f"{tag} of every run")
    axes.grid(alpha=0.3)
    if runs:
        axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> None:
    """Print a table, whole even in a file or a narrow terminal; text columns to the left."""
    table = Table(title=title)
    for column in header:
        left = column in ("run", "overrides", "group", "metric")
        table.add_column(column, justify="left" if left else "right")
    for row in rows:
        table.add_row(*row)
    print_table(table)


def print_runs(
    runs: Sequence[RunSummary], title: str, metrics: Sequence[str] | None = None
) -> None:
    """Print the comparison table, whole even in a file or a narrow terminal."""
    print_rows(*table_rows(runs, metrics), title=title)


def comparisons(
    groups: Sequence[Group], pair: Sequence[str], metrics: Sequence[str], confidence: float
) -> list[Comparison]:
    """B - A of each metric that both groups recorded, ``pair`` = (A, B)."""
    if len(pair) != 2:
        raise GroupError(f"compare takes two groups, A and B; got {list(pair)}")
    first, second = (find_group(groups, str(name)) for name in pair)
    common = [m for m in metrics if first.values(m) and second.values(m)]
    if not common:
        raise GroupError(f"{first.label!r} and {second.label!r} share none of {list(metrics)}")
    return [compare(groups, first.label, second.label, m, confidence) for m in common]


def write_groups(
    groups: Sequence[Group],
    metrics: Sequence[str],
    out: Path,
    legend: Sequence[str],
    confidence: float,
) -> list[Path]:
    """Print the groups table; write groups.csv, groups.md and one error-bar plot per
    metric, of the metrics that a run recorded."""
    metrics = shown.recorded(groups, metrics)
    header, rows = shown.group_table(groups, metrics, confidence)
    title = (
        f"{len(groups)} groups (runs differing only in seed or data.split.fold): "
        f"mean ± std [{confidence:.0%} interval]"
    )
    print_rows(header, rows, title=title)
    written = [
        shown.write_groups_csv(groups, metrics, out / "groups.csv", confidence),
        shown.write_groups_markdown(title, header, rows, legend, out / "groups.md"),
    ]
    for metric in metrics:
        plot = out / f"{metric.replace('/', '_')}_groups.png"
        written.append(shown.plot_groups(groups, metric, plot, confidence))
    return written


def summarize_sweep(
    sweep: Path,
    output: Path | None = None,
    metrics: Sequence[str] | None = None,
    compare_groups: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> list[Path]:
    """Print the tables of the sweep's runs (and groups, and a comparison of two groups) and
    write their files; returns the files written. A folder that does not exist or holds no
    run is a :class:`NoRunsError`, raised before anything is written."""
    if not sweep.is_dir():
        raise NoRunsError(f"{sweep}: no such folder")
    runs = summarize(sweep)
    if not runs:
        raise NoRunsError(
            f"{sweep}: no runs found (no run folder with saved overrides below it); give a "
            "multirun folder (hydra.sweep.dir), e.g. outputs/train-multirun/<time>"
        )
    columns = metric_columns(runs, metrics)
    groups = group_runs(runs)
    compared = comparisons(groups, compare_groups, columns, confidence) if compare_groups else []
    out = output or sweep
    out.mkdir(parents=True, exist_ok=True)
    objective = runs[0].objective
    print_runs(runs, title=f"{len(runs)} runs of {sweep}, by {objective.metric}", metrics=columns)
    written = [
        write_summary_csv(runs, out / "summary.csv", columns),
        write_summary_markdown(runs, out / "summary.md", columns),
        plot_curves(runs, out / f"{objective.metric.replace('/', '_')}.png"),
    ]
    legend = shown.tag_legend(runs)
    if any(len(group.runs) > 1 for group in groups):
        written += write_groups(groups, columns, out, legend, confidence)
    if compared:
        title = f"B - A, paired by seed and fold: A = {compared[0].a}, B = {compared[0].b}"
        print_rows(*shown.comparison_table(compared), title=title)
        written += shown.write_comparison(compared, out)
    if legend:
        print("Evaluation tags (metrics of the best checkpoint's *.eval.json):")
        print("\n".join(f"  {line}" for line in legend))
    for path in written:
        print(f"wrote {path}")
    return written


def _strings(value: Any) -> list[str] | None:
    """A list option as strings (a single value as a list of one); None when unset."""
    if value is None:
        return None
    items = value if isinstance(value, ListConfig | list | tuple) else [value]
    return [str(item) for item in items]


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="summarize")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors(APP.name, GroupError):
        output = Path(cfg.output).expanduser() if cfg.output else None
        summarize_sweep(
            Path(cfg.sweep).expanduser(),
            output,
            metrics=_strings(cfg.get("metrics")),
            compare_groups=_strings(cfg.get("compare")),
            confidence=float(cfg.get("confidence", 0.95)),
        )


main = command(APP, _hydra_main, "exit status 2 when the folder holds no runs.")


if __name__ == "__main__":
    main()
