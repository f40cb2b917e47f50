"""Example test stays: the model's token attention beta regrouped into whole words and clinical phrases (word
pieces merged through the tokenizer's character offsets, special tokens dropped), and a card per stay with its
risk, its risk band and the phrases that drove it.

A word is a whitespace-separated piece of the original text ("56-year-old", "low,"): its weight is the sum of the
beta of its tokens. A phrase is a run of words between ", ", "; ", ": ", ". " or a line break ("heart rate low"):
its weight is the sum of its words'. Words after the model's length limit were not read and weigh nothing.
Risk bands are quantiles of the test split's predicted risks (ALFIA's probabilities are not calibrated risks, so
bands by rank are more honest than fixed cut-offs), each with its observed death rate.
"""

from __future__ import annotations

import re

import numpy as np

from alfia.analysis.report.inputs import Inputs

PHRASE_END = re.compile(r"[,;:.](?=\s|$)|\n")
BANDS = (("low", 0.0, 0.5), ("medium", 0.5, 0.9), ("high", 0.9, 1.0))  # quantiles of the test risks
KINDS = (("true positive", 2), ("true negative", 1), ("false positive", 2), ("false negative", 2))
TOP_PHRASES = 3


def words_and_phrases(text: str, offsets, special, beta) -> tuple[list[dict], list[dict]]:
    """Whole words and phrases of ``text`` with the summed attention of their tokens.

    ``offsets``: (start, end) characters of each token; ``special``: 1 for [CLS]/[SEP]/<s>... (dropped);
    ``beta``: each token's weight. Returns ``words`` [{"text", "start", "weight", "read"}] in text order and
    ``phrases`` [{"text", "weight"}] in text order.
    """
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    owner = np.full(len(text) + 1, -1)
    for i, (s, e) in enumerate(spans):
        owner[s:e] = i
    weight = np.zeros(len(spans))
    read = np.zeros(len(spans), dtype=bool)
    for (s, e), sp, b in zip(offsets, special, beta, strict=True):
        if sp or e <= s:
            continue
        hit = owner[s:e]
        hit = hit[hit >= 0]
        if len(hit):  # a token belongs to the word holding its first non-space character
            weight[hit[0]] += float(b)
            read[hit[0]] = True
    words = [{"text": text[s:e], "start": s, "weight": float(w), "read": bool(r)}
             for (s, e), w, r in zip(spans, weight, read, strict=True)]
    bounds = [0, *[m.end() for m in PHRASE_END.finditer(text)], len(text) + 1]
    phrases = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        members = [w for w in words if lo <= w["start"] < hi]
        if members:
            phrase = " ".join(w["text"] for w in members).rstrip(",;:.")
            phrases.append({"text": phrase, "weight": sum(w["weight"] for w in members)})
    return words, phrases


def top_phrases(phrases: list[dict], k: int = TOP_PHRASES) -> list[dict]:
    total = sum(p["weight"] for p in phrases) or 1.0
    ranked = sorted(phrases, key=lambda p: -p["weight"])[:k]
    return [{"text": p["text"], "share": p["weight"] / total} for p in ranked if p["weight"] > 0]


def risk_bands(probabilities: np.ndarray, died: np.ndarray) -> list[dict]:
    """The bands' probability cut-offs (test quantiles) and observed death rates."""
    out = []
    for name, q_lo, q_hi in BANDS:
        lo, hi = np.quantile(probabilities, [q_lo, q_hi])
        sel = (probabilities >= lo) & ((probabilities < hi) if q_hi < 1 else (probabilities <= hi))
        out.append({"name": name, "low": float(lo), "high": float(hi), "n": int(sel.sum()),
                    "death_rate": float(died[sel].mean()) if sel.any() else None,
                    "quantiles": f"{q_lo:.0%}–{q_hi:.0%}"})
    return out


def band_of(p: float, bands: list[dict]) -> dict:
    return next((b for b in reversed(bands) if p >= b["low"]), bands[0])


def _picks(y, label, prob, threshold) -> list[tuple[str, int]]:
    """The most confident stays of each outcome/decision kind (true/false positives and negatives)."""
    picks = []
    for kind, k in KINDS:
        sel = {"true positive": (y == 1) & (label == 1), "true negative": (y == 0) & (label == 0),
               "false positive": (y == 0) & (label == 1), "false negative": (y == 1) & (label == 0)}[kind]
        rows = np.flatnonzero(sel)
        rows = rows[np.argsort(-np.abs(prob[rows] - threshold))][:k]
        picks += [(kind, int(r)) for r in rows]
    return picks


def _attention(model, text: str) -> tuple[list[dict], list[dict]]:
    import torch

    enc = model.tokenizer(text, truncation=True, max_length=model.max_length, return_offsets_mapping=True,
                          return_special_tokens_mask=True, return_tensors="pt")
    with torch.inference_mode():
        beta = model(enc["input_ids"], enc["attention_mask"]).token_weights[0].float().numpy()
    return words_and_phrases(text, enc["offset_mapping"][0].tolist(), enc["special_tokens_mask"][0].tolist(), beta)


def examples(inp: Inputs) -> dict:
    """The example stays (computed once): ``{"bands", "stays": [...]}``; each stay has its kind, risk, band,
    outcome and, when texts are included, its stay id, words and top phrases."""
    if "examples" in inp.cache:
        return inp.cache["examples"]
    t = inp.test
    prob_all = t["probability"].to_numpy()
    bands = risk_bands(prob_all, t[inp.label].to_numpy().astype(int))
    df = inp.cohort.df
    test_rows = np.flatnonzero(df["split"].to_numpy() == "test")
    pred = inp.predictions.set_index("stay_id")
    ids = df["stay_id"].to_numpy()[test_rows]
    y = pred.loc[ids, inp.label].to_numpy().astype(int)
    label = pred.loc[ids, "label"].to_numpy().astype(int)
    prob = pred.loc[ids, "probability"].to_numpy()
    threshold = inp.threshold if inp.threshold is not None else 0.5
    model = inp.loaded.model
    model.eval()
    stays = []
    for kind, r in _picks(y, label, prob, threshold):
        p = float(prob[r])
        stay = {"kind": kind, "died": int(y[r]), "probability": p, "band": band_of(p, bands)["name"],
                "band_death_rate": band_of(p, bands)["death_rate"], "above_threshold": p >= threshold,
                "rank": float((prob_all < p).mean())}
        if inp.options.include_texts:
            words, phrases = _attention(model, inp.texts[int(test_rows[r])])
            stay.update(stay_id=int(ids[r]), words=words, phrases=top_phrases(phrases))
        stays.append(stay)
    inp.cache["examples"] = {"bands": bands, "threshold": threshold, "stays": stays}
    return inp.cache["examples"]


def highlighted(words: list[dict]) -> list[dict]:
    """Each word with its highlight strength (its weight over the heaviest word's) for the template."""
    top = max((w["weight"] for w in words), default=0.0) or 1.0
    return [{**w, "alpha": round(w["weight"] / top, 2)} for w in words]
