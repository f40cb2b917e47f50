"""Section 6, what the model learned (Fig. 6a): the layer weights lambda of the fused layers, and the token
attention beta of the example stays shown on whole words (darker = more weight), unless texts are left out."""

from __future__ import annotations

import numpy as np

from alfia.analysis.figures import COLOURS, new_figure
from alfia.analysis.report.examples import examples, highlighted
from alfia.analysis.report.inputs import Inputs


def _layer_weights(inp: Inputs):
    from alfia.inference import cached_embeddings, split_embeddings

    test_rows = np.flatnonzero(inp.cohort.df["split"].to_numpy() == "test")
    _, lam = split_embeddings(cached_embeddings(inp.loaded, inp.cohort).iloc[test_rows])
    n_f, n_layers = lam.shape[1], inp.loaded.model.num_layers
    names = [f"layer {j}" for j in range(n_layers - n_f + 1, n_layers + 1)]
    fig, axes = new_figure(10, 3.4, ncols=2)
    axes[0, 0].bar(names, lam.mean(0), color=COLOURS[0])
    axes[0, 0].set(ylabel="mean lambda", title="mean layer weight (test)")
    axes[0, 1].boxplot([lam[:, j] for j in range(n_f)], tick_labels=names, showfliers=False)
    axes[0, 1].set(ylabel="lambda", title="distribution over test stays")
    for a in axes[0]:
        a.grid(alpha=0.3)
    q = np.percentile(lam, [5, 25, 50, 75, 95], axis=0)
    top = names[int(np.argmax(lam.mean(0)))]
    figure = inp.figs.figure("layer-weights", fig, {"layers": names, "mean": lam.mean(0), "sd": lam.std(0),
                                                    "percentiles": {"5": q[0], "25": q[1], "50": q[2], "75": q[3],
                                                                    "95": q[4]}},
                             "Learned layer weights lambda")
    low = names[int(np.argmin(lam.mean(0)))]
    words = (f"{top} carries the largest mean weight ({lam.mean(0).max():.2f}) and {low} the smallest "
             f"({lam.mean(0).min():.2f}); across test stays the weights vary by at most "
             f"{float((q[4] - q[0]).max()):.2f} (5th to 95th percentile).")
    return figure, words


def build(inp: Inputs) -> dict:
    context = {"has_texts": inp.texts is not None, "include_texts": inp.options.include_texts,
               "layers": None, "layer_words": "", "stays": []}
    if inp.texts is None:
        return context
    context["layers"], context["layer_words"] = _layer_weights(inp)
    if inp.options.include_texts:
        stays = examples(inp)["stays"]
        context["stays"] = [{**s, "words": highlighted(s["words"])} for s in stays]
        inp.figs.data("token-attention", {"threshold": inp.threshold, "unit": "whole words (sum of their tokens)",
                                          "stays": [{k: s[k] for k in ("kind", "stay_id", "died", "probability",
                                                                        "words", "phrases")} for s in stays]})
    return context
