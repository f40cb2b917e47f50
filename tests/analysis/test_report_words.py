"""The report's words and word grouping, from hand-made numbers: calibration and decision-curve verdicts, and
calibration slope, intercept and O:E judged by their intervals, and token attention summed into whole words and
phrases through the tokenizer's offsets."""

import numpy as np
import pytest

from alfia.analysis.report.examples import risk_bands, top_phrases, words_and_phrases
from alfia.analysis.report.verdicts import (
    calibration_fit_verdict,
    calibration_verdict,
    decision_verdict,
    subgroup_verdict,
)


def test_calibration_verdict_says_poorly_calibrated_above_ece_0_1():
    poor = calibration_verdict("ALFIA", 0.35, mean_predicted=0.55, observed_rate=0.14)
    assert "ALFIA is poorly calibrated (ECE 0.350 > 0.10)" in poor and "over-estimates risk" in poor
    assert "moderately calibrated" in calibration_verdict("ALFIA", 0.07, 0.14, 0.14)
    good = calibration_verdict("ALFIA", 0.02, 0.10, 0.14)
    assert "well calibrated" in good and "under-estimates risk" in good


def _fit(slope, intercept, oe, failed=0):
    def entry(v):
        return {"value": v[0], "ci_low": v[1], "ci_high": v[2]} if v is not None else {"value": None}

    return {"calibration_slope": {**entry(slope), "failed_resamples": failed},
            "calibration_intercept": {**entry(intercept), "failed_resamples": 0}, "oe_ratio": entry(oe)}


def test_calibration_fit_verdict_reads_each_number_by_its_interval():
    over = calibration_fit_verdict("ALFIA", "the internal test split", _fit((0.6, 0.5, 0.7), (0.4, 0.2, 0.6),
                                                                            (1.3, 1.1, 1.5)))
    assert over.startswith("ALFIA on the internal test split: calibration slope 0.600 (0.500–0.700): below 1")
    assert "over-confident: its predictions are too extreme" in over
    assert "its predictions are too low on average (they would need shifting up)" in over
    assert "O:E 1.300 (1.100–1.500): above 1, its 95% CI excluding 1, so more deaths were observed" in over
    assert "no clear miscalibration" not in over
    under = calibration_fit_verdict("M", "the external cohort", _fit((1.6, 1.2, 2.0), (-0.5, -0.7, -0.3),
                                                                    (0.7, 0.6, 0.8)))
    assert "under-confident: its predictions are too moderate" in under
    assert "too high on average (they would need shifting down)" in under and "fewer deaths were observed" in under
    fine = calibration_fit_verdict("M", "the test", _fit((0.9, 0.7, 1.1), (0.1, -0.1, 0.3), (1.05, 0.9, 1.2)))
    assert "its 95% CI includes 1, so no clear over- or under-confidence" in fine
    assert "its 95% CI includes 0, so no clear shift up or down" in fine
    assert "about as many deaths were observed as predicted" in fine
    assert "Every interval includes its ideal value: no clear miscalibration (which is not proof of none)." in fine
    assert "well calibrated" not in fine   # honest: an interval holding the ideal is not proof


def test_calibration_fit_verdict_without_interval_or_fit():
    uncertain = calibration_fit_verdict("M", "the test", _fit((0.8, None, None), (0.2, None, None), (1.2, None, None)))
    assert "below 1 (no interval, so uncertain), so over-confident" in uncertain
    assert "above 0 (no interval, so uncertain)" in uncertain and "Every interval" not in uncertain
    failed = calibration_fit_verdict("M", "the test", _fit(None, (0.2, 0.1, 0.3), (1.2, 1.1, 1.3), failed=200),
                                     n_boot=200)
    assert "its calibration slope could not be fitted (its predictions separate the outcomes)" in failed
    some = calibration_fit_verdict("M", "the test", _fit((0.9, 0.7, 1.1), (0.1, -0.1, 0.3), (1.0, 0.9, 1.1),
                                                         failed=7), n_boot=200)
    assert "(7 of 200 bootstrap fits failed and are left out of the interval)" in some


def test_decision_verdict_names_the_ranges():
    pt = np.round(np.arange(0.05, 0.51, 0.05), 2)
    treat_all = 0.14 - 0.86 * pt / (1 - pt)
    # at or below treat-all everywhere: the verdict must say so
    below = decision_verdict("ALFIA", pt, treat_all - 0.01, treat_all)
    assert "at or below treat-all or treat-none" in below
    # above both between 10% and 20% only
    model = np.where((pt >= 0.1) & (pt <= 0.2), np.maximum(treat_all, 0) + 0.02, treat_all)
    words = decision_verdict("ALFIA", pt, model, treat_all)
    assert "above both treat-all and treat-none at threshold probabilities 10%–20%" in words
    assert "at or below treat-all at 5%, 25%–50%" in words


def test_subgroup_verdict_flags_an_interval_that_excludes_the_overall_auroc():
    groups = {"sex=female": {"auroc": {"value": 0.6, "ci_low": 0.55, "ci_high": 0.65}},
              "sex=male": {"auroc": {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9}}, "age band=<50": {}}
    words = subgroup_verdict(groups, {"value": 0.75})
    assert "0.600 (0.550–0.650) (sex=female) to 0.800 (0.700–0.900) (sex=male)" in words
    assert "the intervals of sex=female exclude the overall AUROC 0.750" in words
    assert "1 group(s) with a single outcome" in words


def test_word_pieces_merge_into_whole_words_and_phrases(tiny_bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    text = "A 67-year-old Male admitted to ICU with sepsis, heart rate high; lactate 4.2."
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[:2] == ["[CLS]", "a"] and tokens.count("year") == 1  # what the page must not show
    beta = np.arange(1, len(tokens) + 1, dtype=float)
    beta /= beta.sum()
    words, phrases = words_and_phrases(text, enc["offset_mapping"], enc["special_tokens_mask"], beta)
    assert [w["text"] for w in words] == text.split()  # original case, hyphenated words whole, no [CLS]/[SEP]
    pieces = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if 2 <= s < 13 and e > s]  # "67-year-old"
    assert words[1]["weight"] == pytest.approx(beta[pieces].sum())
    special = np.asarray(enc["special_tokens_mask"], dtype=bool)
    assert sum(w["weight"] for w in words) == pytest.approx(beta[~special].sum())
    assert [p["text"] for p in phrases] == ["A 67-year-old Male admitted to ICU with sepsis", "heart rate high",
                                            "lactate 4.2"]
    assert sum(p["weight"] for p in phrases) == pytest.approx(beta[~special].sum())
    top = top_phrases(phrases, k=2)
    assert top[0]["text"] == max(phrases, key=lambda p: p["weight"])["text"]
    assert top[0]["share"] == pytest.approx(max(p["weight"] for p in phrases) / beta[~special].sum())
    assert len(top) == 2 and 0 < top[1]["share"] < top[0]["share"] < 1


def test_words_after_the_length_limit_are_marked_unread(tiny_bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    text = "heart rate high, blood pressure low, lactate high"
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True, truncation=True,
                    max_length=5)
    words, _ = words_and_phrases(text, enc["offset_mapping"], enc["special_tokens_mask"],
                                 np.full(5, 0.2))
    assert [w["read"] for w in words] == [True] * 3 + [False] * 5  # [CLS] heart rate high [SEP]


def test_risk_bands_are_test_quantiles_with_their_death_rates():
    p = np.linspace(0, 1, 101)
    died = (p > 0.9).astype(int)
    bands = risk_bands(p, died)
    assert [b["name"] for b in bands] == ["low", "medium", "high"]
    assert [b["n"] for b in bands] == [50, 40, 11]
    assert bands[2]["death_rate"] == pytest.approx(10 / 11) and bands[0]["death_rate"] == 0


def test_epoch_ticks_are_whole_numbers():
    from alfia.analysis.figures import integer_ticks, new_figure

    fig, axes = new_figure()
    axes[0, 0].plot([1, 2, 3], [0.2, 0.3, 0.25])
    integer_ticks(axes[0, 0])
    fig.canvas.draw()
    ticks = [t for t in axes[0, 0].get_xticks() if 1 <= t <= 3]
    assert ticks == [1, 2, 3]
