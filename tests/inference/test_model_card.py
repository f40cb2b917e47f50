"""MODEL_CARD.md: written when a run finishes and when a predictor is saved, in the Hugging Face layout; its numbers
are metrics.json's (and each scored cohort's metrics file's); it names the code's licence and the data's apart; it
holds no stay id and no patient text; `alfia card RUN` writes it again with the cohorts scored since; the service's
/v1/model shows the same facts."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
import yaml

from alfia import ALFIAPredictor
from alfia.cli import main
from alfia.cohorts import Cohort, write_cohort
from alfia.cohorts.bundled import load_bundled
from tests.api.test_predictor import small_p12a

CARD = "MODEL_CARD.md"
# how the card names each metric in its tables (the test's own list: a renamed or dropped column fails)
SHOWN = {"AUPRC": "auprc", "AUROC": "auroc", "Sensitivity": "sensitivity", "Specificity": "specificity",
         "PPV": "ppv", "NPV": "npv", "Brier": "brier", "ECE": "ece", "O:E": "oe_ratio",
         "Calibration intercept": "calibration_intercept", "Calibration slope": "calibration_slope"}


@pytest.fixture(scope="module")
def dev() -> Cohort:
    return small_p12a()


@pytest.fixture(scope="module")
def fitted(dev, tiny_facade):
    return tiny_facade(dev, "card")


@pytest.fixture()
def run(fitted, tmp_path):
    """A copy of the trained run, free to change."""
    return shutil.copytree(fitted.path, tmp_path / "run")


def other_cohort(path, n: int = 30) -> str:
    """30 stays of set B (both outcomes) as a cohort file: a cohort the run never saw."""
    b = load_bundled("p12-b")
    df = pd.concat([b.df[b.df["hospital_mortality"] == 0].head(n - 8), b.df[b.df["hospital_mortality"] == 1].head(8)])
    write_cohort(Cohort(df=df.reset_index(drop=True), schema=b.schema, info=b.info), path)
    return str(path)


# -- reading a card ----------------------------------------------------------------------------------------------
def front_matter(card: str) -> dict:
    assert card.startswith("---\n"), "no YAML front matter"
    return yaml.safe_load(card.split("---\n", 2)[1])


def tables(card: str) -> list[list[dict]]:
    """Every markdown table of the card, as rows of {header: cell}."""
    found, lines = [], card.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows, j = [], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(dict(zip(header, [c.strip() for c in lines[j].strip("|").split("|")], strict=True)))
                j += 1
            found.append(rows)
    return found


def shown(entry: dict) -> str:
    """How a metric with its CI is printed: 3 decimals, "value (low–high)"."""
    if entry.get("value") is None:
        return "n/a"
    text = f"{entry['value']:.3f}"
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        text += f" ({entry['ci_low']:.3f}\u2013{entry['ci_high']:.3f})"
    return text


def check_numbers(card: str, cohorts: dict[str, dict]) -> int:
    """Every metric cell of every cohort's row, and every model-index value, equals its metrics file's (``cohorts``:
    the cohort's name in the card -> its evaluate-dict); returns how many numbers were checked."""
    checked = 0
    for table in tables(card):
        for row in table:
            if row.get("cohort") not in cohorts:
                continue
            metrics = cohorts[row["cohort"]]
            for header, cell in row.items():
                if header in SHOWN:
                    assert re.sub(r" \[\d+ failed\]$", "", cell) == shown(metrics[SHOWN[header]]), (row["cohort"],
                                                                                                     header)
                    checked += 1
                elif header == "n":
                    assert int(cell) == metrics["n"]
                elif header.startswith("deaths"):
                    assert cell == f"{metrics['n_pos']} ({100 * metrics['prevalence']:.1f}%)"
    seen = set()
    for result in front_matter(card)["model-index"][0]["results"]:
        name = result["dataset"]["name"]
        if name not in cohorts:
            continue
        seen.add(name)
        assert result["task"]["type"] == "text-classification"
        for metric in result["metrics"]:
            entry = cohorts[name][metric["type"]]
            assert metric["value"] == round(entry["value"], 4), (name, metric)
            if entry.get("ci_low") is not None:
                assert metric["name"].endswith(f"(95% CI {entry['ci_low']:.3f}-{entry['ci_high']:.3f})")
            checked += 1
    assert seen == set(cohorts), f"model-index lacks {set(cohorts) - seen}"
    return checked


def development(run) -> tuple[dict, dict[str, dict]]:
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    source = config["cohort"]["source"]
    return config, {f"{source}, val": metrics["val"], f"{source}, test": metrics["test"]}


# -- the tests ---------------------------------------------------------------------------------------------------
def test_training_writes_a_card_whose_numbers_are_metrics_json(fitted):
    card = (fitted.path / CARD).read_text()
    config, cohorts = development(fitted.path)
    meta = front_matter(card)
    # 11 metrics x 2 splits in the tables (ranking, at the threshold, calibration) and in the model-index
    assert check_numbers(card, cohorts) == 2 * 11 * 2
    assert meta["model-index"][0]["results"][1]["dataset"] == {"name": f"{config['cohort']['source']}, test",
                                                              "type": "physionet2012", "split": "test"}
    assert meta["datasets"] == ["physionet2012"] and "text-classification" in meta["tags"]
    assert config["task"]["name"] in meta["tags"]
    # the task comes from the run's task object, the threshold from threshold.json
    assert "death in hospital, predicted at 24 h from the first 24 h of the ICU stay" in card
    assert "`hospital_mortality`" in card and "[0 h, 24 h)" in card
    threshold = json.loads((fitted.path / "threshold.json").read_text())["threshold"]
    assert f"| alert threshold | {threshold:.3f} " in card
    for section in ("## Intended use", "## Out-of-scope use", "## Training data and task", "## Evaluation",
                    "### Subgroups", "### Calibration", "## Limitations", "## How to load and score",
                    "## Citations"):
        assert f"\n{section}\n" in card, section
    # the manifest, written after it, lists it
    assert CARD in json.loads((fitted.path / "manifest.json").read_text())["files"]


def test_a_changed_number_is_caught(fitted):
    card = (fitted.path / CARD).read_text()
    _, cohorts = development(fitted.path)
    auprc = cohorts[next(iter(cohorts))]["auprc"]
    wrong = {k: {**v, "auprc": {**auprc, "value": auprc["value"] + 0.01}} if k == next(iter(cohorts)) else v
             for k, v in cohorts.items()}
    with pytest.raises(AssertionError):
        check_numbers(card, wrong)


def test_the_card_names_the_code_licence_and_the_data_licence_apart(fitted, run):
    card = (fitted.path / CARD).read_text()
    meta = front_matter(card)
    assert meta["license"] == "mit" and meta["training_data_license"] == "ODC-By 1.0"
    assert "| licence of the code | MIT |" in card and "| licence of the training data | ODC-By 1.0 |" in card
    assert "Silva I, Moody G" in card   # the data's citation, as the cohort recorded it
    # a run that recorded no licence for its data says so
    config = json.loads((run / "config.json").read_text())
    del config["cohort"]["license"]
    (run / "config.json").write_text(json.dumps(config))
    assert main(["card", str(run)]) == 0
    meta = front_matter((run / CARD).read_text())
    assert meta["license"] == "mit"
    assert meta["training_data_license"] == "not recorded: see the data set's documentation"


def leaks(card: str, dev: Cohort, texts: list[str]) -> list[str]:
    """Stay ids (whole numbers of the card) and patient sentences (those of the cohort's texts with a number in
    them) found in the card."""
    numbers = set(re.findall(r"(?<![\w.])\d+(?![\w.])", card))
    found = sorted(numbers & {str(i) for i in dev.df["stay_id"]})
    sentences = {s.strip() for t in texts for s in re.split(r"(?<=[.;])\s+", t) if re.search(r"\d", s)}
    return found + [s for s in sentences if len(s) >= 12 and s in card]


def test_the_card_holds_no_stay_id_and_no_patient_text(fitted, dev):
    card = (fitted.path / CARD).read_text()
    texts = fitted.run.texts(dev)
    assert leaks(card, dev, texts) == []
    # the check finds them
    stay = str(dev.df["stay_id"].iloc[5])
    sentence = next(s for s in re.split(r"(?<=[.;])\s+", texts[3]) if re.search(r"\d", s) and len(s) >= 12)
    assert leaks(card + f"\nstay {stay}: {sentence}\n", dev, texts) == [stay, sentence.strip()]


def test_alfia_card_writes_it_again_with_every_scored_cohort(run, tmp_path, capsys):
    first = (run / CARD).read_text()
    (run / CARD).unlink()
    assert main(["card", str(run)]) == 0
    assert (run / CARD).read_text() == first   # the same files, the same card
    # a cohort scored outside the run folder joins with --scored; one scored into the run folder by itself
    cohort = other_cohort(tmp_path / "setb.parquet")
    assert main(["predict", str(run), cohort, "--out", str(tmp_path / "setb-scores.parquet")]) == 0
    assert main(["predict", str(run), cohort, "--out", str(run / "inside.parquet")]) == 0
    assert main(["card", str(run), "--scored", str(tmp_path / "setb-scores.parquet"), "--out",
                 str(tmp_path / "card.md")]) == 0
    card = (tmp_path / "card.md").read_text()
    scored = json.loads((tmp_path / "setb-scores.metrics.json").read_text())["metrics"]
    inside = json.loads((run / "inside.metrics.json").read_text())["metrics"]
    _, cohorts = development(run)
    assert check_numbers(card, {**cohorts, "setb-scores": scored, "inside": inside}) == 4 * 11 * 2
    assert "setb-scores" not in (run / CARD).read_text()   # --out: the run's own card is left as it was
    # a metrics file another run scored (another threshold) is refused, in one line
    other = json.loads((tmp_path / "setb-scores.metrics.json").read_text())
    (tmp_path / "foreign.metrics.json").write_text(json.dumps({**other, "threshold": other["threshold"] + 0.1}))
    capsys.readouterr()
    assert main(["card", str(run), "--scored", str(tmp_path / "foreign.metrics.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "another run scored it" in err and err.count("\n") == 1
    assert main(["card", str(tmp_path / "nowhere")]) == 1
    assert main(["card", str(run), "--out", str(tmp_path / "card.txt")]) == 1


def test_a_study_run_lists_the_study_external_cohorts(run, tmp_path):
    """`alfia study` scores its external cohort into the study folder, beside the run (alfia-run/)."""
    cohort = other_cohort(tmp_path / "b.parquet")
    study = tmp_path / "study"
    shutil.copytree(run, study / "alfia-run")
    assert main(["predict", str(study / "alfia-run"), cohort, "--out", str(study / "p12-b.predictions.parquet")]) == 0
    assert main(["card", str(study / "alfia-run")]) == 0
    card = (study / "alfia-run" / CARD).read_text()
    external = json.loads((study / "p12-b.metrics.json").read_text())["metrics"]
    _, cohorts = development(run)
    assert check_numbers(card, {**cohorts, "p12-b": external}) == 3 * 11 * 2
    assert "Scored beyond it on: p12-b" in card


def test_subgroups_come_from_the_report_of_this_run(run):
    threshold = json.loads((run / "threshold.json").read_text())["threshold"]
    groups = {"gender=Female": {"n": 14, "deaths": 4, "expected": 3.2,
                                "oe_ratio": {"value": 1.25, "ci_low": 0.5, "ci_high": 2.5},
                                "auroc": {"value": 0.71, "ci_low": 0.4, "ci_high": 0.95}}}
    (run / "figures").mkdir()
    (run / "figures" / "subgroups.json").write_text(json.dumps({"threshold": threshold, "n_boot": 20,
                                                                "groups": groups}))
    assert main(["card", str(run)]) == 0
    rows = [r for t in tables((run / CARD).read_text()) for r in t if r.get("group") == "gender=Female"]
    assert rows == [{"group": "gender=Female", "n": "14", "deaths": "4", "expected deaths": "3.2",
                     "O:E": "1.250 (0.500\u20132.500)", "AUROC": "0.710 (0.400\u20130.950)"}]
    # a report of an earlier training into the folder (another threshold) is left out
    (run / "figures" / "subgroups.json").write_text(json.dumps({"threshold": threshold + 0.1, "n_boot": 20,
                                                                "groups": groups}))
    assert main(["card", str(run)]) == 0
    card = (run / CARD).read_text()
    assert "gender=Female" not in card and "alfia report RUN" in card


def test_v1_model_and_the_card_share_one_source(run):
    from fastapi.testclient import TestClient

    from alfia.serving.app import create_app
    from alfia.serving.service import RiskService

    model = TestClient(create_app(RiskService.load(run))).get("/v1/model").json()
    card = (run / CARD).read_text()
    meta = front_matter(card)
    assert card.split("---\n", 2)[2].lstrip().startswith(f"# {model['name']}\n")
    assert meta["model-index"][0]["name"] == model["name"]
    assert model["task"]["name"] in meta["tags"] and model["task_title"] in card
    assert model["license"] == {"code": "MIT", "training_data": meta["training_data_license"]}
    test = next(r for r in meta["model-index"][0]["results"] if r["dataset"]["split"] == "test")
    auprc = next(m for m in test["metrics"] if m["type"] == "auprc")
    assert auprc["value"] == round(model["metrics"]["test"]["auprc"]["value"], 4)
    assert [e["cohort"] for e in model["evaluation"]] == [r["dataset"]["name"] for r in
                                                           meta["model-index"][0]["results"]]
    assert f"| fused layers | {', '.join(str(n) for n in model['fused_layers'])} |" in card
    assert model["limitations"] and all(line in card for line in model["limitations"])


def test_saving_a_predictor_writes_its_card(run, tmp_path):
    (run / CARD).unlink()
    predictor = ALFIAPredictor.load(run, device="cpu")
    saved = predictor.save(tmp_path / "saved")
    assert (saved / CARD).is_file() and not (run / CARD).exists()
    _, cohorts = development(run)
    assert check_numbers((saved / CARD).read_text(), cohorts) == 2 * 11 * 2
    assert predictor.save() == run and (run / CARD).read_text() == (saved / CARD).read_text()
