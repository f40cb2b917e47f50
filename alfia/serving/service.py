"""The risk service's logic, independent of the web framework: a run loaded once, records written as texts by
the run's own encoder, risk bands at the run's validation-chosen threshold, occlusion explanations, the model
card.
"""

from __future__ import annotations

import bisect
import copy
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.evaluation import drift
from alfia.inference import Run
from alfia.model.card import card_facts, schema_facts
from alfia.run_folder import RunFolder
from alfia.serving.batching import MicroBatcher
from alfia.serving.scoring import DIGITS, Scored, Scorer
from alfia.text.stats import token_counts

TOP_WORDS = 10
log = logging.getLogger("alfia.serving")


@dataclass(frozen=True)
class Bands:
    """Risk bands by lower bound of the probability: a stay is in the last band whose bound it reaches."""

    names: tuple[str, ...]
    lowers: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.names or len(self.names) != len(self.lowers) or self.lowers[0] != 0 \
                or any(b <= a for a, b in zip(self.lowers, self.lowers[1:], strict=False)) or self.lowers[-1] > 1:
            raise AlfiaError("risk bands need increasing lower bounds in [0, 1], the first one 0, e.g. "
                             "'low=0,elevated=0.1,high=0.3'")

    @classmethod
    def default(cls, threshold: float) -> Bands:
        """low below half the threshold, elevated below it, high from the threshold on (the alert)."""
        return cls(("low", "elevated", "high"), (0.0, threshold / 2, threshold))

    @classmethod
    def parse(cls, spec: str) -> Bands:
        """'low=0,elevated=0.1,high=0.3'."""
        try:
            pairs = [part.split("=") for part in spec.split(",")]
            return cls(tuple(n.strip() for n, _ in pairs), tuple(float(v) for _, v in pairs))
        except ValueError:
            raise AlfiaError(f"cannot read the risk bands {spec!r}; write them as 'low=0,elevated=0.1,high=0.3'") \
                from None

    def of(self, probability: float) -> str:
        return self.names[bisect.bisect_right(self.lowers, probability) - 1]

    def to_dict(self) -> list[dict]:
        return [{"band": n, "from": lo} for n, lo in zip(self.names, self.lowers, strict=True)]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_stays: int = 64
    max_text_chars: int = 8_000


@dataclass
class RiskService:
    """``reference``: the train split's reference (:mod:`alfia.evaluation.drift`) that every answer's warnings
    and the refusal threshold come from; None for a run trained before it was kept (answers then say so);
    ``reference_source``: where it came from."""

    run: Run
    bands: Bands
    limits: Limits = field(default_factory=Limits)
    reference: dict | None = None
    reference_source: str | None = None
    max_batch: int = 32

    def __post_init__(self) -> None:
        _threshold(self.run)
        self.scorer = Scorer(self.run.model, batch_size=self.max_batch, calibrate=self.run.calibrator.transform)
        self.batcher = MicroBatcher(self.scorer.score, max_batch=self.max_batch)
        self.schema = self.run.encoder.schema if self.run.encoder is not None else None
        # the warnings count tokens while the batcher's thread tokenizes too: a fast tokenizer used from two
        # threads at once fails ("Already borrowed"), so they count with a copy of their own, one call at a time
        self._counter = copy.deepcopy(self.run.model.tokenizer)
        self._counting = threading.Lock()

    @classmethod
    def load(cls, folder: str | Path, bands: str | None = None, limits: Limits | None = None,
             training_cohort: Cohort | None = None, device: str | None = "auto",
             precision: str | None = None) -> RiskService:
        """``training_cohort``: for a run without reference.json, the cohort it was trained on, to build the
        reference from (the run's own reference.json is used whenever it exists)."""
        parsed = Bands.parse(bands) if bands else None  # a typo is reported before the model is loaded
        run = Run.load(folder, device, precision)
        reference, source = drift.load_reference(run.folder), RunFolder.REFERENCE
        if reference is None and training_cohort is not None:
            texts = run.texts(training_cohort)  # refuses a cohort of another schema
            reference = drift.build_reference(training_cohort, texts, run.model.tokenizer)
            source = "--training-cohort"
        elif training_cohort is not None:
            log.info("the run keeps its training reference (%s): --training-cohort is not needed", source)
        return cls(run, parsed or Bands.default(_threshold(run)), limits or Limits(), reference,
                   source if reference is not None else None)

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        """[min, max] of every numeric variable over the train split (the drift metrics' reference)."""
        variables = self.reference["variables"] if self.reference is not None else {}
        return {name: (v["min"], v["max"]) for name, v in variables.items() if "min" in v}

    @property
    def min_words(self) -> int:
        return drift.min_words(self.reference)

    @property
    def feature_columns(self) -> list[str]:
        return self.schema.feature_columns if self.schema is not None else []

    # -- texts ----------------------------------------------------------------------------------
    def text_of(self, record: dict) -> str:
        if self.run.encoder is None:
            raise AlfiaError("this run was trained on texts without a text encoder: send 'text', not 'record'")
        row = {name: record.get(name) for name in self.feature_columns}
        return self.run.encoder.describe_row(row)

    def occluded_texts(self, record: dict) -> list[tuple[str, str]]:
        """(variable, text with that variable not recorded) for every variable the record has."""
        out = []
        for name in self.feature_columns:
            if record.get(name) is not None:
                out.append((name, self.text_of({**record, name: None})))
        return out

    # -- answers --------------------------------------------------------------------------------
    def warnings(self, records: list[dict | None], texts: list[str]) -> list[list[dict]]:
        """Each stay's warnings: a record (None for a free text) is checked against the training variables, its
        text against the training texts (a free text against their template too)."""
        model = self.run.model
        with self._counting:
            tokens = token_counts(self._counter, texts)
        out = []
        for record, text, n in zip(records, texts, tokens, strict=True):
            free = record is None
            out += drift.stay_warnings(self.reference, [text], [n], model.max_length,
                                       None if free else [record], free_text=free)
        return out

    def result(self, stay_id, text: str, scored: Scored, warnings: list[dict]) -> dict:
        ranked = sorted(scored.words, key=lambda w: -w[1])[:TOP_WORDS]
        return {"stay_id": stay_id, "warnings": warnings,
                "out_of_distribution": drift.out_of_distribution(warnings, self.reference),
                "probability": scored.probability, "band": self.bands.of(scored.probability),
                "alert": scored.probability >= self.run.threshold, "layer_weights": list(scored.layer_weights),
                "top_words": [{"word": w, "weight": x} for w, x in ranked],
                "words": [{"word": w, "weight": x} for w, x in scored.words], "text": text}

    def explanation(self, record: dict, base: float, occluded: list[tuple[str, str]],
                    scored: list[Scored]) -> list[dict]:
        """Each variable's effect, largest first: the probability with it minus the probability without it."""
        effects = []
        for (name, _), s in zip(occluded, scored, strict=True):
            effects.append({"variable": name, "wording": self.schema[name].description, "value": record[name],
                            "effect": round(base - s.probability, DIGITS)})
        return sorted(effects, key=lambda e: (-abs(e["effect"]), e["variable"]))

    # -- model card -----------------------------------------------------------------------------
    def model_card(self) -> dict:
        """The run's model card (:func:`alfia.model.card.card_facts`: the facts MODEL_CARD.md shows too) with what
        this service adds: its risk bands, limits, training reference and refusal rules."""
        card = card_facts(self.run.folder, schema=self.schema)
        model = self.run.model
        n_f = model.config.fusion.num_fusion_layers
        card.update({
            "fused_layers": list(range(model.num_layers - n_f + 1, model.num_layers + 1)),
            "max_tokens": model.max_length,
            "threshold": {"value": self.run.threshold, "chosen_on": "validation split, best F1"},
            "bands": self.bands.to_dict(),
            "limits": {"max_body_bytes": self.limits.max_body_bytes, "max_stays": self.limits.max_stays,
                       "max_text_chars": self.limits.max_text_chars},
            "training_reference": self.reference_card(),
            "refusals": {
                "text_min_words": self.min_words,
                "text_min_tokens": self.min_words,
                "text_rule": "a text with fewer words is refused (422): half the tokens of the shortest training "
                             "text, at most its number of words; a word is at least one token, so a text with "
                             "fewer tokens is refused too" if self.reference is not None
                             else "no training reference: only empty texts are refused",
                "record_rule": "a record with no variable is refused (422)"},
        })
        return card

    def reference_card(self) -> dict | None:
        """What the warnings compare a stay with (without the per-variable details: /openapi.json and the
        schema give the fields)."""
        ref = self.reference
        if ref is None:
            return None
        return {"source": self.reference_source, "train_stays": ref["train_stays"],
                "text_tokens": ref["text"]["tokens"], "text_words": ref["text"]["words"],
                "missing_per_stay": ref["missing_per_stay"],
                "variable_ranges": {name: [lo, hi] for name, (lo, hi) in self.ranges.items()}}

    def schema_card(self) -> dict | None:
        return schema_facts(self.schema)


def _threshold(run: Run) -> float:
    if run.threshold is None:
        raise AlfiaError(f"run {run.folder} has no {RunFolder.THRESHOLD}: its training did not finish")
    return run.threshold
