"""The toy clinical text, written with ALFIA's shared wording."""

from alfia.text.wording import article
from alfia.text.writer import Writer


def describe(w: Writer) -> str:
    age = w.num("age")
    who = f"{age}-year-old patient" if age is not None else "patient of unrecorded age"
    sepsis = "with sepsis" if w.raw("sepsis") == 1 else "without sepsis"
    return w.join([f"{article(who)} {who} {sepsis}.", w.sentence([w.measure("lactate", "lactate"),
                                                                  w.measure("toy_score", "severity score")]),
                   w.missing_sentence()])
