"""Figures of the study report: each one is a 200-dpi PNG (embedded in the page as base64 and written to disk)
plus a JSON file with the numbers it plots (and the labels of its legends), so that the report can be checked and
rebuilt without retraining."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from markupsafe import Markup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from alfia.io import atomic_path, write_text_atomic  # noqa: E402

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
SURVIVED, DIED = "#3b6fb6", "#f2b705"  # Fig. 6: blue survival, yellow mortality


def _clean(value):
    """JSON-safe: NaN/inf become null, numpy scalars and arrays plain Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class FigureWriter:
    """Saves figures and their numbers under ``data_dir`` (JSON, PNG) and extra PNG copies under ``png_dirs``."""

    def __init__(self, data_dir: Path, png_dirs: list[Path] | None = None, dpi: int = 200):
        self.data_dir = Path(data_dir)
        self.png_dirs = [Path(p) for p in (png_dirs or [])]
        self.dpi = dpi
        self.written: list[Path] = []

    def data(self, name: str, numbers: dict) -> Path:
        path = self.data_dir / f"{name}.json"
        write_text_atomic(path, json.dumps(_clean(numbers), indent=1))
        self.written.append(path)
        return path

    def figure(self, name: str, fig: Figure, numbers: dict, alt: str) -> Markup:
        """Write ``name``.png and ``name``.json; return the ``<figure>`` with the PNG inlined and the legend's
        labels written out in the caption (so that they are readable, and searchable, without the image)."""
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=self.dpi)
        png = buf.getvalue()
        for folder in [self.data_dir, *self.png_dirs]:
            with atomic_path(folder / f"{name}.png") as tmp:
                tmp.write_bytes(png)
            self.written.append(folder / f"{name}.png")
        legend = legend_labels(fig)
        self.data(name, {**numbers, "legend": legend})
        encoded = base64.b64encode(png).decode("ascii")
        key = f"; legend: {', '.join(legend)}" if legend else ""
        return Markup('<figure><img src="data:image/png;base64,{}" alt="{}" data-name="{}"><figcaption>{}{} '
                      '(numbers: <code>{}.json</code>)</figcaption></figure>').format(
            Markup(encoded), alt, name, alt, key, name)


def legend_labels(fig: Figure) -> list[str]:
    """The labels of every legend of ``fig``, once each, in order."""
    labels: list[str] = []
    for ax in fig.axes:
        legend = ax.get_legend()
        for text in legend.get_texts() if legend is not None else []:
            if text.get_text() not in labels:
                labels.append(text.get_text())
    return labels


def integer_ticks(ax) -> None:
    """Whole numbers only on the x axis (epochs)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def new_figure(width: float = 9, height: float = 3.6, ncols: int = 1, nrows: int = 1):
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes
