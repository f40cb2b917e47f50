"""The synthetic generator: calibration to the paper's Tables 1-2, row consistency, a realistic (not trivial)
signal for a fixed LightGBM, determinism and schema validity."""

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts import read_cohort, write_cohort
from alfia.cohorts.registry import get_dataset
from alfia.cohorts.synthetic import generate_synthetic
from alfia.errors import AlfiaError

N = 20_000
SEED = 7


@pytest.fixture(scope="module", params=["mimic-iv", "eicu"])
def cohort(request):
    return generate_synthetic(request.param, N, SEED)


@pytest.fixture(scope="module")
def mimic():
    return generate_synthetic("mimic-iv", N, SEED)


def test_targets_spot_check_against_the_paper():
    # typed again from the paper so a typo in the targets cannot hide behind the calibration tests
    m, e = get_dataset("mimic-iv").load_synthetic(), get_dataset("eicu").load_synthetic()
    assert m["numeric"]["apsiii"].died == (65.53, 26.95)
    assert m["numeric"]["gcs_max"].survived == (14.88, 0.59)
    assert m["numeric"]["sofa_std"].died == (1.28, 1.01)
    assert m["categories"]["insurance"]["Medicare"] == (51.38, 63.75)
    assert m["categories"]["sirs"]["4"] == (12.57, 27.86)
    assert e["numeric"]["apache_iv"].survived == (51.02, 22.63)
    assert e["numeric"]["gcs_last"].died == (9.40, 4.64)
    assert e["categories"]["region"]["Northeast"] == (7.08, 9.50)
    assert e["categories"]["smoker"]["Unknown"] == (81.52, 82.66)
    assert (m["rate"], e["rate"]) == (0.1084, 0.0877)


def test_mortality_ids_info_and_splits(cohort):
    df = cohort.df
    rate = get_dataset(cohort.schema.name).load_synthetic()["rate"]
    assert df["hospital_mortality"].sum() == round(N * rate)
    assert df["stay_id"].tolist() == list(range(1, N + 1))
    assert cohort.synthetic and cohort.info["source"].startswith("synthetic, calibrated to the ALFIA paper's Table")
    shares = df["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.75, abs=0.002)
    assert shares["val"] == pytest.approx(0.125, abs=0.002)
    assert list(df.columns) == cohort.schema.required_columns()


def test_numeric_means_match_the_table_per_outcome(cohort):
    df, spec = cohort.df, get_dataset(cohort.schema.name).load_synthetic()
    worst = 0.0
    for name, v in spec["numeric"].items():
        for group, (mean, sd) in ((0, v.survived), (1, v.died)):
            x = df.loc[df["hospital_mortality"] == group, name].dropna()
            dev = abs(x.mean() - mean) / sd
            worst = max(worst, dev)
            assert dev < 0.1, f"{name} group {group}: {x.mean():.3f} vs {mean} (SD {sd})"
            assert 0.6 < x.std() / sd < 1.5, f"{name} group {group}: SD {x.std():.3f} vs {sd}"
    assert worst > 0  # the check ran


def test_category_shares_match_the_table_per_outcome(cohort):
    df, spec, schema = cohort.df, get_dataset(cohort.schema.name).load_synthetic(), cohort.schema
    for name, shares in spec["categories"].items():
        kind = schema[name].kind
        for group in (0, 1):
            x = df.loc[df["hospital_mortality"] == group, name]
            total = 100.0 if kind == "binary" else sum(s[group] for s in shares.values())
            for key, s in shares.items():
                value = 1.0 if kind == "binary" else (float(key) if kind == "int" else key)
                observed = 100 * (x == value).mean()
                assert abs(observed - 100 * s[group] / total) < 2, f"{name}={key} group {group}: {observed:.2f}%"


def test_every_row_is_consistent(cohort):
    df = cohort.df
    for score, lo, hi in (("gcs", 3, 15), ("sofa", 0, 24)):
        mn, mx = df[f"{score}_min"], df[f"{score}_max"]
        for stat in ("min", "max", "first", "last"):
            x = df[f"{score}_{stat}"]
            assert x.notna().all() and (x == np.round(x)).all() and x.between(lo, hi).all()
        for stat in ("first", "last", "mean"):
            assert (mn <= df[f"{score}_{stat}"]).all() and (df[f"{score}_{stat}"] <= mx).all(), stat
        std = df[f"{score}_std"]
        assert (std >= 0).all()
        assert (std[mn == mx] == 0).all() and (df.loc[mn == mx, f"{score}_mean"] == mn[mn == mx]).all()
        assert (std[mn < mx] > 0).all()
        assert (std <= (mx - mn) / np.sqrt(2) + 0.01).all()
    if "sirs" in df:
        assert set(df["sirs"].unique()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    # severity scores correlate with each other and with SOFA, as in real data
    score = "apsiii" if "apsiii" in df else "apache_iv"
    assert df[[score, "sapsii"]].corr().iloc[0, 1] > 0.5
    assert df[[score, "sofa_max"]].corr().iloc[0, 1] > 0.3
    assert df[[score, "gcs_min"]].corr().iloc[0, 1] < -0.1


def test_lightgbm_finds_realistic_not_trivial_signal(mimic):
    lightgbm = pytest.importorskip("lightgbm")
    from sklearn.metrics import roc_auc_score

    df, schema = mimic.df, mimic.schema
    X = df[schema.feature_columns].copy()
    for col in schema.columns:
        if col.kind == "category" and col.role == "feature":
            X[col.name] = pd.Categorical(X[col.name], categories=col.categories)
    train, test = (df["split"] == "train").values, (df["split"] == "test").values
    model = lightgbm.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=31, random_state=42,
                                    verbose=-1)
    model.fit(X[train], df.loc[train, "hospital_mortality"])
    auroc = roc_auc_score(df.loc[test, "hospital_mortality"], model.predict_proba(X[test])[:, 1])
    assert 0.85 <= auroc <= 0.93, auroc


def test_deterministic_and_seed_dependent():
    a = generate_synthetic("eicu", 500, 3)
    b = generate_synthetic("eicu", 500, 3)
    c = generate_synthetic("eicu", 500, 4)
    pd.testing.assert_frame_equal(a.df, b.df)
    assert not a.df["apache_iv"].equals(c.df["apache_iv"])


def test_small_cohorts_offsets_and_round_trip(tmp_path):
    for n in (1, 2, 9):
        c = generate_synthetic("mimic-iv", n, 0, id_offset=100)
        assert c.df["stay_id"].tolist() == list(range(101, 101 + n))
    c = generate_synthetic("mimic-iv", 300, 1)
    back = read_cohort(write_cohort(c, tmp_path / "syn.parquet"))
    assert back.synthetic and back.schema.name == "mimic-iv"
    pd.testing.assert_frame_equal(back.df, c.df)


def test_bad_arguments_raise_one_line_errors():
    with pytest.raises(AlfiaError, match="no synthetic generator|unknown schema"):
        generate_synthetic("nope", 10, 0)
    with pytest.raises(AlfiaError, match="at least 1"):
        generate_synthetic("eicu", 0, 0)
