"""Section 8, cost (Fig. 5c-d): inference milliseconds per stay and peak process memory, from the external
prediction run and the benchmark."""

from __future__ import annotations

from alfia.analysis.figures import COLOURS, new_figure
from alfia.analysis.report.inputs import Inputs, Table


def build(inp: Inputs) -> dict:
    entries = inp.cost()
    if not entries:
        return {"figure": None, "table": None, "bench": None}
    bench = inp.bench or {}
    names = list(entries)
    fig, axes = new_figure(10, 1.2 + 0.4 * len(names), ncols=2)
    axes[0, 0].barh(names, [entries[n]["ms_per_sample"] for n in names], color=COLOURS[0])
    axes[0, 0].set_xlabel("inference ms per stay")
    axes[0, 1].barh(names, [entries[n]["peak_rss_mb"] or 0 for n in names], color=COLOURS[1])
    axes[0, 1].set_xlabel("peak memory (MB, process RSS)")
    for a in axes[0]:
        a.invert_yaxis()
        a.tick_params(axis="y", labelsize=7)
    figure = inp.figs.figure("cost", fig, {"entries": entries, "bench": bench}, "Inference cost")
    rows = [[n, f"{e['ms_per_sample']:.2f}", "n/a" if e["peak_rss_mb"] is None else f"{e['peak_rss_mb']:.0f}"]
            for n, e in entries.items()]
    bench_table = Table(["bench key", "value"], [[k, v] for k, v in bench.items()
                                                 if isinstance(v, int | float | str)]) if bench else None
    return {"figure": figure, "table": Table(["what", "ms per stay", "peak memory (MB)"], rows),
            "bench": bench_table}
