"""Clinical text for a YAIB mortality24 cohort (``yaib``): 48 hourly variables summarised so that the text still fits
the backbone (docs/yaib.md has the token counts and why each aggregate was kept or dropped).

Order: demographics and anthropometrics -> vital signs (lowest, highest, last) -> inspired oxygen (highest) and
urine output (24-hour total) -> labs by panel (blood gas, chemistry, liver, cardiac, blood count, coagulation): the
worst value where the severity scores use one (lowest pH, highest lactate ...), else the mean -> what was not
recorded. In the banded style a panel's typical values are named once after its other values ("typical: sodium,
chloride"), which keeps a text of a fully measured stay short. Labs are written without units (each column's unit
is in the schema). Rarely measured labs (:data:`RARE`) are written when measured and left out of the not-recorded
list when not: naming them for nearly every stay would say nothing and cost ~25 tokens a text.
"""

from __future__ import annotations

from alfia.datasets.yaib.schema import BY_NAME, URINE_TOTAL
from alfia.text.wording import article
from alfia.text.writer import Writer

VITALS = ("hr", "sbp", "dbp", "map", "resp", "o2sat", "temp")
# panel -> its labs with the aggregate the text shows: "min" (lowest), "max" (highest) or "mean"
PANELS = (
    ("blood gas", (("ph", "min"), ("pco2", "mean"), ("po2", "mean"), ("be", "min"), ("lact", "max"),
                   ("cai", "mean"), ("methb", "mean"))),
    ("chemistry", (("na", "mean"), ("k", "max"), ("cl", "mean"), ("bicar", "min"), ("bun", "max"),
                   ("crea", "max"), ("glu", "max"), ("ca", "min"), ("mg", "max"), ("phos", "max"),
                   ("crp", "mean"))),
    ("liver tests", (("alb", "min"), ("bili", "max"), ("bili_dir", "mean"), ("ast", "max"), ("alt", "max"),
                     ("alp", "mean"))),
    ("cardiac markers", (("ck", "mean"), ("ckmb", "mean"), ("tnt", "mean"))),
    ("blood count", (("hgb", "min"), ("wbc", "max"), ("plt", "min"), ("mcv", "mean"), ("mch", "mean"),
                     ("mchc", "mean"), ("neut", "mean"), ("lymph", "mean"), ("bnd", "mean"))),
    ("coagulation", (("inr_pt", "max"), ("ptt", "mean"), ("fgn", "mean"))),
)
# measured in under ~15% of the eICU demo's stays: written when measured, never listed as not recorded
RARE = frozenset({"cai", "methb", "crp", "bili_dir", "ck", "ckmb", "tnt", "bnd", "fgn"})
WORDS = {"min": "lowest", "max": "highest", "mean": ""}
TYPICAL = "typical"


def _demographics(w: Writer) -> str:
    sex = {"Female": "woman", "Male": "man"}.get(w.raw("sex"), "patient")
    age = w.num("age")
    if age is None:
        who = f"{sex} of unrecorded age"
    elif float(w.raw("age")) >= 90:  # ricu records every age above 89 as 90
        who = f"{sex} aged {age} or older"
    else:
        who = f"{age}-year-old {sex}"
    body = [p for p in (w.measure("height", "height"), w.measure("weight", "weight")) if p]
    return f"{article(who)} {who}" + (f", {', '.join(body)}." if body else ".")


def _vital(w: Writer, name: str) -> str | None:
    """"heart rate 62 to 110 bpm, last 80" (numeric) or "lowest heart rate low, highest high, last typical"."""
    return w.span_last(f"{name}_min", f"{name}_max", f"{name}_last", BY_NAME[name].words)


def _support(w: Writer) -> str:
    parts = [w.measure("fio2_max", "highest inspired oxygen"), w.measure(URINE_TOTAL, "urine output")]
    if w.missing and w.missing[-1] == "highest inspired oxygen":
        w.missing[-1] = "inspired oxygen"
    return w.sentence(parts)


def _panel(w: Writer, panel: str, labs: tuple[tuple[str, str], ...]) -> str:
    """One sentence per lab panel: "Chemistry: highest creatinine high; typical: sodium, chloride." (banded) or
    "Chemistry: sodium 139, highest creatinine 2.1." (numeric); a panel with nothing measured is not recorded."""
    shown, typical, missing = [], [], []
    for name, stat in labs:
        column, words = f"{name}_{stat}", BY_NAME[name].words
        label = f"{WORDS[stat]} {words}".strip()
        if not w.has(column):
            if name not in RARE:
                missing.append(words)
            continue
        if w.banded(column) and w.band(column) == TYPICAL:
            typical.append(label)
        else:
            shown.append(f"{label} {w.value(column, unit=False)}")
    if not shown and not typical:
        w.missing.append(panel)
        return ""
    w.missing.extend(missing)
    body = ", ".join(shown)
    if typical:
        body += ("; " if body else "") + f"{TYPICAL}: {', '.join(typical)}"
    return f"{panel[0].upper()}{panel[1:]}: {body}."


def describe(w: Writer) -> str:
    # the parts are written in text order, so that numbers and the not-recorded list follow the text
    body = [
        _demographics(w),
        "First 24 hours in the unit:",
        w.sentence([_vital(w, name) for name in VITALS], lead="vital signs: "),
        _support(w),
        *[_panel(w, panel, labs) for panel, labs in PANELS],
    ]
    return w.join(body + [w.missing_sentence()])
