"""Wording that every data set's text template shares (the templates live with their data sets, alfia/datasets/)."""

from __future__ import annotations

from alfia.text.writer import Writer


def article(phrase: str) -> str:
    """ "An 80-year-old", "A 67-year-old"."""
    return "An" if phrase.startswith(("8", "11", "18", "a", "e", "i", "o", "u", "A", "E", "I", "O", "U")) else "A"


def dynamic(w: Writer, prefix: str, short: str) -> str:
    """GCS / SOFA: the range, then first, last, mean and SD; "15 throughout" when it never changed."""
    name = w.abbr(short)
    lo, hi, first, last, mean, sd = (f"{prefix}_{s}" for s in ("min", "max", "first", "last", "mean", "std"))
    if not w.has(lo) and not w.has(hi):
        w.missing.append(name)
        return ""
    if not w.banded(lo) and w.has(sd) and float(w.raw(sd)) == 0 and w.rounded(lo) == w.rounded(hi):
        w.implied.append((sd, 0.0))
        same = [n for n in (hi, first, last, mean) if w.has(n)]
        return f"{name} {w.num(lo, *same)} throughout."
    head = w.span(lo, hi, name) or name
    details = [w.measure(first, "first"), w.measure(last, "last"), w.measure(mean, "mean"),
               f"{w.abbr('SD')} {w.value(sd)}" if w.has(sd) else None]
    return f"{head[0].upper()}{head[1:]} ({', '.join(d for d in details if d)})."


def cw24_text(w: Writer, demographics: str, admission: str, lifestyle: str,
              scores: tuple[tuple[str, str], ...]) -> str:
    """The CW-24 text (paper Figure 1b): demographics -> admission -> anthropometrics -> lifestyle -> first-day
    scores -> GCS and SOFA over the first 24 hours -> what was not recorded."""
    body = [
        demographics,
        admission,
        w.sentence([w.measure("height", "height"), w.measure("weight", "weight")]),
        lifestyle,
        w.sentence([w.measure(name, w.abbr(short)) for name, short in scores], lead="first-day scores: "),
        "First 24 hours in the unit:",
        dynamic(w, "gcs", "GCS"),
        dynamic(w, "sofa", "SOFA"),
    ]
    return w.join(body + [w.missing_sentence()])
