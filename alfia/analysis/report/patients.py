"""Section 5, example patients: one card per kind of decision (true/false positive/negative) with the stay's
risk, its band (and the band's observed death rate) and the phrases of its text that drew the most attention."""

from __future__ import annotations

from alfia.analysis.report.examples import examples
from alfia.analysis.report.inputs import Inputs, Table


def build(inp: Inputs) -> dict:
    if inp.cohort is None or inp.texts is None:
        return {"cards": None, "band_table": None, "threshold": None}
    ex = examples(inp)
    cards, seen = [], set()
    for stay in ex["stays"]:
        if stay["kind"] not in seen:  # the most confident stay of each kind
            seen.add(stay["kind"])
            cards.append(stay)
    inp.figs.data("patient-cards", {"bands": ex["bands"], "threshold": ex["threshold"],
                                    "cards": [{k: v for k, v in c.items() if k != "words"} for c in cards]})
    band_table = Table(["band", "test quantiles", "predicted risk", "stays", "observed death rate"],
                       [[b["name"], b["quantiles"], f"{b['low']:.1%}–{b['high']:.1%}", b["n"],
                         "n/a" if b["death_rate"] is None else f"{b['death_rate']:.1%}"] for b in ex["bands"]])
    return {"cards": cards, "band_table": band_table, "threshold": ex["threshold"]}
