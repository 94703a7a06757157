"""Shared rendering: number formatting, markdown tables, matplotlib figures saved atomically.

Plots use matplotlib's object-oriented ``Figure`` with the Agg canvas (no pyplot, no global
backend state) and are saved to memory first, then written with ``write_bytes_atomic``. Used by
the eval report, ``compare``, the analysis reports and the demo report.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import write_bytes_atomic

__all__ = ["bar_chart", "fmt", "markdown_table", "new_figure", "save_figure"]


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return write_bytes_atomic(path, buffer.getvalue())


def bar_chart(
    path: Path, title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], Any]]
) -> Path:
    """Horizontal grouped bars: one group per label, one bar per series ``(name, values, xerr)``.

    An undefined value (None or NaN) gets no bar but an "n/a" mark in its series' colour, so an arm
    that could not be measured does not read as 0 (nor vanish and make the other look worse)."""
    import numpy as np

    figure = new_figure(7.0, max(2.5, 0.3 * len(labels) * max(1, len(series)) + 1.2))
    ax = figure.subplots()
    y = np.arange(len(labels))
    height = 0.8 / max(1, len(series))
    for i, (name, values, xerr) in enumerate(series):
        values = np.array([np.nan if v is None else v for v in values], dtype=float)
        offset = (i - (len(series) - 1) / 2) * height
        bars = ax.barh(y + offset, np.nan_to_num(values), height, xerr=xerr, label=name, capsize=2)
        colour = bars.patches[0].get_facecolor()
        for position, value in zip(y + offset, values, strict=True):
            if np.isnan(value):  # undefined (e.g. no valid sample) is not 0: say so where the bar would be
                ax.text(0, position, " n/a", va="center", ha="left", fontsize=7, color=colour)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return save_figure(figure, path)
