"""Tables printed whole: redirected to a file, and in a terminal narrower than the table."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.table import Table

from nuclei.cli.console import print_table
from nuclei.cli.metrics_table import kinds_table, metrics_table, print_metrics

HEADERS = ["run", "optimizer.lr=0.001", "model.base_channels=32", "val/iou", "val/map", "epochs"]
ROWS = [
    ["outputs/train/multirun/2024-01-01_12-00-00/0", "0.001", "32", "0.834512", "0.412345", "6"],
    ["outputs/train/multirun/2024-01-01_12-00-00/1", "0.0003", "64", "0.812345", "0.398765", "6"],
]


def wide_table() -> Table:
    table = Table(title="Sweep summary: val/map (max), best first")
    for header in HEADERS:
        table.add_column(header)
    for row in ROWS:
        table.add_row(*row)
    return table


def printed(console: Console, table: Table) -> str:
    print_table(table, console)
    return console.file.getvalue()


def test_redirected_output_prints_every_header_and_value_whole_on_one_line() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=80)
    assert not console.is_terminal
    text = printed(console, wide_table())
    assert "…" not in text
    lines = text.splitlines()
    header_line = next(line for line in lines if "optimizer.lr=0.001" in line)
    assert all(header in header_line for header in HEADERS)  # one row, not wrapped
    for row in ROWS:
        assert any(all(value in line for value in row) for line in lines)
    assert console.width == 80  # the console is left as it was


def test_default_console_redirected_to_a_file_keeps_the_table_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_table(wide_table())  # Console() on pytest's captured (not a terminal) stdout
    text = capsys.readouterr().out
    assert "…" not in text
    for value in [*HEADERS, *ROWS[0], *ROWS[1]]:
        assert value in text


def column_texts(text: str) -> list[str]:
    """Each column's cells read top to bottom, joined (a folded value reads whole again)."""
    columns: list[str] = []
    for line in text.splitlines():
        cells = re.split("[│┃]", line)[1:-1]
        columns = columns or [""] * len(cells)
        for k, cell in enumerate(cells):
            columns[k] += cell.strip()
    return columns


def test_narrow_terminal_folds_values_instead_of_cutting_them() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=60, color_system=None)
    text = printed(console, wide_table())
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 60
    columns = column_texts(text)
    assert len(columns) == len(HEADERS)
    for k, header in enumerate(HEADERS):
        assert columns[k] == header + "".join(row[k] for row in ROWS)


def test_table_narrower_than_the_console_is_printed_as_rich_would() -> None:
    table = metrics_table({"val/iou": 0.8, "val/map": 0.4}, "small")
    ours = Console(file=io.StringIO(), width=100)
    rich_own = Console(file=io.StringIO(), width=100)
    print_table(table, ours)
    rich_own.print(table)
    assert ours.file.getvalue() == rich_own.file.getvalue()


def test_print_metrics_is_whole_when_redirected(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = {
        f"{stage}/{name}": 0.123456
        for stage in ("val", "test", "a_long_stage_name")
        for name in ("loss", "iou", "map", "count_error")
    }
    print_metrics(metrics, title="checkpoints/epoch012-val_map0.4123.ckpt: val split")
    text = capsys.readouterr().out
    assert "…" not in text and "a_long_stage_name" in text and "0.1235" in text


def test_the_kinds_table_has_a_row_per_kind_under_the_weighted_row_of_all_images() -> None:
    metrics = {
        "val/map": 0.5,
        "val/map_tissue": 0.2,
        "val/ap50_tissue": 0.3,
        "val/iou_tissue": 0.6,
        "val/images_tissue": 1.0,
        "val/map_fluorescence": 0.6,
        "val/ap50_fluorescence": 0.9,
        "val/iou_fluorescence": 0.8,
        "val/images_fluorescence": 3.0,
    }
    table = kinds_table(metrics, "val", "by kind")
    assert table is not None
    console = Console(file=io.StringIO(), force_terminal=False, width=120)
    lines = printed(console, table).splitlines()
    rows = [line.replace("│", " ").split() for line in lines if re.search(r"\([134]\)", line)]
    assert [row[0] for row in rows] == ["all", "fluorescence", "tissue"]
    # all: (3 * 0.6 + 0.2) / 4, (3 * 0.9 + 0.3) / 4, (3 * 0.8 + 0.6) / 4
    assert rows[0][2:] == ["0.5000", "0.7500", "0.7500"]
    assert rows[2][2:] == ["0.2000", "0.3000", "0.6000"]
    assert kinds_table({"val/map": 0.5}, "val", "by kind") is None
    assert kinds_table(metrics, "test", "by kind") is None
