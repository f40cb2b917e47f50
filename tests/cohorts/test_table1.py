"""Table 1 on a small hand-made cohort with known means and counts, and on a synthetic one."""

import io

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts import Cohort
from alfia.cohorts.schema import Column, Schema
from alfia.cohorts.synthetic import generate_synthetic
from alfia.cohorts.table1 import SYNTHETIC_MARK, table1, to_markdown, write_table1
from alfia.errors import AlfiaError

TOY = Schema(
    name="toy",
    description="toy",
    columns=(
        Column("age", "float", "age", unit="years", valid=(0, 120)),
        Column("sex", "category", "sex", categories=("female", "male")),
        Column("smoker", "binary", "smoker"),
        Column("sirs", "int", "SIRS", valid=(0, 4)),
        Column("saps1", "float", "reference score", role="reference"),
    ),
)


def toy(synthetic=False):
    df = pd.DataFrame({
        "stay_id": [1, 2, 3, 4, 5, 6],
        "hospital_mortality": [0, 0, 0, 0, 1, 1],
        "age": [20.0, 30.0, 40.0, np.nan, 70.0, 90.0],
        "sex": ["female", "male", "male", None, "female", "female"],
        "smoker": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        "sirs": [0.0, 1.0, 1.0, 4.0, 4.0, 4.0],
        "saps1": [1.0] * 6,
        "split": ["train"] * 4 + ["test"] * 2,
    })
    return Cohort(TOY.validate(df), TOY, {"synthetic": synthetic})


def cell(t, characteristic, column, nth=0):
    rows = t[t["Characteristic"] == characteristic]
    return rows.iloc[nth][column]


def test_known_means_counts_and_headers():
    t = table1(toy())
    assert list(t.columns) == ["Characteristic", "Survived (N=4)", "Died (N=2)", "Overall (N=6)", "SMD"]
    assert cell(t, "Death in hospital, n (%)", "Overall (N=6)") == "2 (33.33%)"
    assert cell(t, "age (years)", "Survived (N=4)") == "30.00 ± 10.00"  # the missing age is excluded
    assert cell(t, "age (years)", "Died (N=2)") == f"80.00 ± {np.std([70, 90], ddof=1):.2f}"
    assert cell(t, "age (years)", "Overall (N=6)") == f"50.00 ± {np.std([20, 30, 40, 70, 90], ddof=1):.2f}"
    assert cell(t, "  Missing, n (%)", "Survived (N=4)") == "1 (25.00%)"
    assert cell(t, "  female", "Died (N=2)") == "2 (100.00%)"
    assert cell(t, "  male", "Survived (N=4)") == "2 (50.00%)"
    assert cell(t, "  Missing", "Overall (N=6)") == "1 (16.67%)"
    assert cell(t, "  Yes", "Overall (N=6)") == "2 (33.33%)"
    assert cell(t, "  No", "Survived (N=4)") == "3 (75.00%)"
    assert cell(t, "  4", "Died (N=2)") == "2 (100.00%)"  # a 0-4 score is shown per value, like SIRS
    assert cell(t, "  2", "Overall (N=6)") == "0 (0.00%)"
    assert not t["Characteristic"].str.contains("saps1").any()  # reference columns never appear
    # SMD Died vs Survived: (80 - 30) / sqrt((SD_died^2 + SD_survived^2) / 2), the missing age excluded
    pooled = np.sqrt((np.var([70, 90], ddof=1) + np.var([20, 30, 40], ddof=1)) / 2)
    assert float(cell(t, "age (years)", "SMD")) == pytest.approx(50 / pooled, abs=1e-3)
    # a binary feature: (p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2) with p1 = 1/2, p0 = 1/4
    expected = (0.5 - 0.25) / np.sqrt((0.25 + 0.25 * 0.75) / 2)
    assert float(cell(t, "smoker", "SMD")) == pytest.approx(expected, abs=1e-3)
    assert cell(t, "  Yes", "SMD") == ""  # one SMD per variable, on its own line
    assert "SYNTHETIC" not in t.attrs["title"]


def test_skewed_features_show_median_and_iqr():
    cohort = toy()
    cohort.df["age"] = [1.0, 1.0, 2.0, 1.0, 2.0, 100.0]  # one long right tail: skewness > 1
    t = table1(cohort)
    assert "Skewed numeric characteristics (|skewness| > 1), median [IQR]" in t["Characteristic"].tolist()
    assert cell(t, "age (years)", "Overall (N=6)") == "1.50 [1.00, 2.00]"
    assert cell(t, "age (years)", "Survived (N=4)") == "1.00 [1.00, 1.25]"


def test_split_and_errors():
    t = table1(toy(), split="test")
    assert "Overall (N=2)" in t.columns
    with pytest.raises(AlfiaError, match="unknown split"):
        table1(toy(), split="nope")
    with pytest.raises(AlfiaError, match="no rows"):
        table1(toy(), split="val")


def test_markdown_and_csv_files(tmp_path):
    t = table1(toy(synthetic=True))
    md = to_markdown(t)
    assert md.startswith(f"**{SYNTHETIC_MARK}")
    lines = md.splitlines()
    assert lines[2].startswith("| Characteristic") and set(lines[3]) <= {"|", "-", ":", " "}
    assert len({len(line) for line in lines[2:]}) == 1  # aligned columns
    write_table1(t, tmp_path / "t.md")
    assert (tmp_path / "t.md").read_text(encoding="utf-8") == md
    write_table1(t, tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.startswith(f"# {SYNTHETIC_MARK}")
    back = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False)
    assert back.columns.tolist() == t.columns.tolist() and back.values.tolist() == t.values.tolist()
    assert to_markdown(t, title="Custom").startswith("**Custom**\n\n| Characteristic")
    with pytest.raises(AlfiaError, match=r"\.csv or \.md"):
        write_table1(t, tmp_path / "t.xlsx")
    assert not (tmp_path / "t.xlsx").exists()


def test_synthetic_cohort_table_matches_the_paper_layout():
    c = generate_synthetic("mimic-iv", 2000, 0)
    t = table1(c)
    assert t.attrs["title"].startswith(SYNTHETIC_MARK)
    assert t.columns[2] == f"Died (N={round(2000 * 0.1084):,})"
    skewed = c.df["apsiii"].dropna().skew() > 1  # a right tail: median [IQR], else mean ± SD
    assert ("[" in cell(t, "apsiii (points)", t.columns[3])) == skewed
    assert cell(t, "apsiii (points)", t.columns[3]).count("±") == (0 if skewed else 1)
    for level in ("  Married", "  Medicare", "  EW EMER.", "  MICU"):
        assert (t["Characteristic"] == level).any()
    assert (t["Characteristic"] == "sirs (criteria)").any()
