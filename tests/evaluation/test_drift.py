"""The training reference and the per-stay warnings (alfia.evaluation.drift), on small tables with known answers;
the refusal rule's JSON-schema pattern agrees with the word count on any text."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alfia.cohorts import Cohort, get_schema
from alfia.errors import AlfiaError
from alfia.evaluation import drift


class WordTokenizer:
    """One token per word, plus the two special tokens, like a BERT tokenizer on plain words."""

    def __call__(self, texts, **_kw):
        return {"input_ids": [[0] + [1] * len(t.split()) + [2] for t in texts]}


TEMPLATE = ("A {age}-year-old man admitted to the unit. First 24 hours: score {score}. Labs: lowest pH {ph}. "
            "Not recorded: {missing}.")


def cohort() -> tuple[Cohort, list[str]]:
    """Ten stays, every other variable missing: eight train rows (age 40..75, gender female/male, mech_vent 0/1,
    gcs_min missing in half of them) and two test rows, one aged 110 (outside the train split), one inside."""
    schema = get_schema("physionet2012")
    n = 10
    df = pd.DataFrame({name: [np.nan] * n for name in schema.feature_columns})
    df["stay_id"] = range(n)
    df["hospital_mortality"] = [0, 1] * 5
    df["split"] = ["train"] * 8 + ["test"] * 2
    df["age"] = [40, 45, 50, 55, 60, 65, 70, 75, 110, 50]
    df["gender"] = ["female", "male"] * 4 + ["male", "female"]
    df["mech_vent"] = [0, 1] * 4 + [1, 0]
    df["gcs_min"] = [3, np.nan, 9, np.nan, 12, np.nan, 15, np.nan, 7, 7]
    df["gender"] = df["gender"].astype(object)
    texts = [TEMPLATE.format(age=a, score=i, ph=7.3, missing="lactate" + " x" * (i % 8))
             for i, a in enumerate(df["age"])]
    return Cohort(df=df, schema=schema, info={"source": "test"}), texts


@pytest.fixture(scope="module")
def reference() -> dict:
    c, texts = cohort()
    return drift.build_reference(c, texts, WordTokenizer())


def test_reference_is_the_train_split(reference):
    c, texts = cohort()
    v = reference["variables"]
    assert v["age"] == {"kind": "float", "missing_share": 0.0, "min": 40.0, "max": 75.0}  # 110 is a test row
    assert v["gcs_min"] == {"kind": "int", "missing_share": 0.5, "min": 3.0, "max": 15.0}
    assert v["gender"] == {"kind": "category", "missing_share": 0.0, "values": ["female", "male"]}
    assert v["mech_vent"] == {"kind": "binary", "missing_share": 0.0, "values": [0, 1]}
    assert v["lactate_max"]["missing_share"] == 1.0 and "min" not in v["lactate_max"]
    assert reference["train_stays"] == 8 and set(v) == set(c.schema.feature_columns)
    per_stay = c.df[c.schema.feature_columns].isna().mean(axis=1)[:8]
    assert reference["missing_per_stay"]["max"] == round(per_stay.max(), 4)
    assert reference["missing_per_stay"]["p99"] == round(float(np.quantile(per_stay, 0.99)), 4)
    words = [len(t.split()) for t in texts[:8]]
    assert reference["text"]["words"] == {"min": min(words), "median": float(np.median(words)), "max": max(words)}
    assert reference["text"]["tokens"]["min"] == min(words) + 2
    assert reference["text"]["min_words"] == min((min(words) + 2) // 2, min(words))
    keys = [o["key"] for o in reference["text"]["template"]["openings"]]
    assert keys == ["a #", "first #", "labs lowest", "not recorded"]  # every sentence opening, numbers as '#'
    assert reference["text"]["template"]["found_p01"] == 4
    assert json.loads(json.dumps(reference)) == reference  # JSON as it is


def test_record_warnings_name_the_variables(reference):
    inside = {"age": 50, "gender": "male", "mech_vent": 1, "gcs_min": 9}
    assert drift.record_warnings(reference, inside) == []
    outside = {**inside, "age": 110.0, "gcs_min": 2}
    [w] = drift.record_warnings(reference, outside)
    assert w["kind"] == "outside_training_range"
    assert "age 110 (training 40 to 75)" in w["message"] and "gcs_min 2 (training 3 to 15)" in w["message"]
    assert "gender" not in w["message"]


def test_a_record_missing_more_than_the_training_stays_warns(reference):
    usual = reference["missing_per_stay"]["p99"]
    record = {"age": 50}
    [w] = drift.record_warnings(reference, record)
    n = len(reference["variables"])
    assert w["kind"] == "missing_variables" and f"{n - 1} of {n} variables not recorded" in w["message"]
    assert f"at most {usual:.0%}" in w["message"]
    # the variables named are those the training stays almost always had
    assert "gender" in w["message"] and "mech_vent" in w["message"] and "lactate_max" not in w["message"]


def test_text_warnings(reference):
    spread = reference["text"]["tokens"]
    assert drift.text_warnings(reference, spread["min"], 500) == []
    kinds = [w["kind"] for w in drift.text_warnings(reference, spread["max"] + 1, spread["max"])]
    assert kinds == ["token_count", "truncated"]
    _, texts = cohort()
    assert drift.text_warnings(reference, spread["min"], 500, free_text=texts[0]) == []
    [w] = drift.text_warnings(reference, spread["min"], 500, free_text="patient doing well, first day in the unit")
    assert w["kind"] == "template" and "0 of the template's 4" in w["message"] and "'Labs: lowest'" in w["message"]


def test_stay_warnings_and_their_columns(reference):
    c, texts = cohort()
    tokens = [len(t.split()) + 2 for t in texts]
    warned = drift.stay_warnings(reference, texts, tokens, 500, c.df)
    assert [sorted(w["kind"] for w in ws) for ws in warned[8:]] == [["outside_training_range"], []]
    columns = drift.warning_columns(warned, reference)
    assert columns["out_of_distribution"].tolist() == [drift.out_of_distribution(ws, reference) for ws in warned]
    assert columns["out_of_distribution"][8] and not columns["out_of_distribution"][9]
    assert columns["warnings"][9] == "" and columns["warnings"][8].startswith("outside_training_range: ")
    kinds = drift.kinds_of(columns["warnings"])
    assert kinds[8] == {"outside_training_range"} and kinds[9] == set()
    assert drift.count_kinds(kinds)["outside_training_range"] == 1


def test_without_a_reference_every_stay_says_so(reference):
    warned = drift.stay_warnings(None, ["a b c"], [600], 512, [{"age": 50}])
    assert [w["kind"] for w in warned[0]] == ["reference_unavailable", "truncated"]
    columns = drift.warning_columns(warned, None)
    assert columns["out_of_distribution"].isna().all()
    assert drift.min_words(None) == 1 and drift.min_words(reference) == reference["text"]["min_words"]


def test_a_damaged_reference_is_one_clear_error(tmp_path):
    assert drift.load_reference(tmp_path) is None
    (tmp_path / drift.REFERENCE_FILE).write_text('{"version": 99}')
    with pytest.raises(AlfiaError, match="reference.json"):
        drift.load_reference(tmp_path)
    (tmp_path / drift.REFERENCE_FILE).write_text("{not json")
    with pytest.raises(AlfiaError, match="reference.json"):
        drift.load_reference(tmp_path)


def test_a_reference_needs_train_rows_and_one_text_per_row():
    c, texts = cohort()
    with pytest.raises(AlfiaError, match="texts for"):
        drift.build_reference(c, texts[:-1], WordTokenizer())
    df = c.df.assign(split="test")
    with pytest.raises(AlfiaError, match="train"):
        drift.build_reference(Cohort(df=df, schema=c.schema, info={}), texts, WordTokenizer())


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n\r\x0b\x0c\u00a0a.\u200b\x00é")), max_size=60),
       st.integers(1, 6))
def test_the_refusal_pattern_is_the_word_count(text, n):
    assert (re.search(drift.words_pattern(n), text) is not None) == (drift.count_words(text) >= n)
