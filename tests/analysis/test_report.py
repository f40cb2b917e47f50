"""The study report from a tiny run: every section, image and number file; the page renders in Chromium."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.analysis.ablation import run_ablation
from alfia.analysis.report import SECTIONS, build_report
from alfia.cohorts import Cohort
from alfia.cohorts.bundled import load_bundled
from alfia.errors import AlfiaError
from alfia.evaluation import drift
from alfia.evaluation.metrics import format_ci
from alfia.inference import finish_run, predict_cohort
from alfia.model import scoring
from alfia.text.encoder import TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train

TINY = {"epochs": 2, "batch_size": 16, "lr": 5e-3, "head_lr": 5e-3, "patience": 3,
        "model": {"max_length": 48, "fusion": {"num_fusion_layers": 2}}}


def small_cohort() -> Cohort:
    """A stratified sample of the bundled set A (real features, so Table 1 and the subgroups have content)."""
    dev = load_bundled("p12-a")
    df = dev.df
    parts = [df[(df["split"] == s) & (df["hospital_mortality"] == y)].sample(n=n // (4 if y else 1), random_state=0)
             for s, n in (("train", 60), ("val", 20), ("test", 32)) for y in (0, 1)]
    df = pd.concat(parts).reset_index(drop=True)
    encoder = TextEncoder(dev.schema.name).fit(df)
    df["text"] = encoder.transform(df)
    return Cohort(df=df, schema=dev.schema, info={**dev.info, "text_encoder": encoder.to_dict()})


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_bert_dir):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    cohort = small_cohort()
    run = root / "alfia-run"
    train(cohort, run, make_config("quick", **TINY), backbone=str(tiny_bert_dir), progress=False)
    finish_run(run, cohort, n_boot=20)
    # baselines as the baselines engineer writes them
    preds = pd.read_parquet(run / "predictions.parquet")
    rng = np.random.default_rng(0)
    base = root / "baselines"
    base.mkdir()
    rows, models = [], {}
    from alfia.evaluation.metrics import evaluate

    for name, family, noise in (("XGBoost", "tabular", 0.3), ("ALFIA-boost", "alfia-derived", 0.2),
                                ("SOFA", "score", 0.6)):
        for where in ("val", "test"):
            t = preds[preds["split"] == where]
            p = np.clip(t["hospital_mortality"] * 0.5 + rng.random(len(t)) * noise + 0.1, 0, 1)
            rows.append(pd.DataFrame({"model": name, "where": where, "stay_id": t["stay_id"], "probability": p}))
            if where == "test":
                models[name] = {"family": family, "threshold": 0.5,
                                "test": evaluate(t["hospital_mortality"], p, threshold=0.5, n_boot=20),
                                "external": evaluate(t["hospital_mortality"], p, n_boot=20)}
    pd.concat(rows).to_parquet(base / "predictions.parquet", index=False)
    (base / "results.json").write_text(json.dumps({"models": models, "skipped": {"TabPFN": "not installed"}}))
    # the study's external outputs, as `alfia predict` writes them (with each stay's warnings)
    test = preds[preds["split"] == "test"]
    ext = root / "p12-b.predictions.parquet"
    test_rows = cohort.df[cohort.df["split"] == "test"].reset_index(drop=True)
    predict_cohort(run, Cohort(df=test_rows, schema=cohort.schema, info=cohort.info))[0].to_parquet(ext, index=False)
    (root / "p12-b.metrics.json").write_text(json.dumps(
        {"ms_per_sample": 3.5, "peak_rss_mb": 900.0, "rows": len(test), "threshold": 0.5,
         "metrics": evaluate(test["hospital_mortality"], test["probability"], n_boot=20)}))
    bench = root / "bench.json"
    bench.write_text(json.dumps({"reference_infer_ms_per_sample": 5.0, "alfia_infer_ms_per_sample": 4.0}))
    ablation = root / "ablation"
    run_ablation(cohort, ablation, backbones=[str(tiny_bert_dir)],
                 variants=["default", "random-init", "no-lora", "nf6", "mean-pool"], n_boot=20,
                 progress=False, speed_stays=4, **{**TINY, "epochs": 1})
    out = root / "page" / "report.html"
    with pytest.MonkeyPatch.context() as mp:
        # finishing the run cached the ALF embeddings of its whole cohort: the report must not embed them again
        def no_second_pass(*_a, **_k):
            raise AssertionError("the report recomputed ALF embeddings instead of reading the run's cache")

        for name in ("embed", "predict_embed", "predict_proba"):
            mp.setattr(scoring, name, no_second_pass)   # the ALFIA methods call these
        build_report(run, out, baselines=base, ablation=ablation, cohort=cohort, bench=bench, max_stays=40,
                     projection="pca", n_boot=20, classifier="mlp", progress=lambda *_: None)
    return {"root": root, "run": run, "out": out, "html": out.read_text(), "ablation": ablation}


def test_warnings_are_counted_per_cohort(built, tmp_path):
    numbers = json.loads((built["run"] / "figures" / "cohort-warnings.json").read_text())
    header, rows = numbers["header"], {r[0]: dict(zip(numbers["header"], r, strict=True)) for r in numbers["rows"]}
    assert list(rows) == ["train", "val", "test", "p12-b (external)"] and not numbers["not_shown"]
    preds = pd.read_parquet(built["run"] / "predictions.parquet")
    for split in ("train", "val", "test"):  # truncation as finish_run counted it
        part = preds[preds["split"] == split]
        assert rows[split]["stays"] == f"{len(part):,}"
        assert rows[split]["truncated"] == str(int(part["truncated"].sum()))
    # the train split is the reference: nothing of it lies outside its own range or token span
    assert rows["train"]["outside training range"] == rows["train"]["token count"] == "0"
    ext = pd.read_parquet(built["root"] / "p12-b.predictions.parquet")
    kinds = drift.kinds_of(ext["warnings"])
    counts = drift.count_kinds(kinds)
    assert rows["p12-b (external)"]["stays"] == str(len(ext))
    assert rows["p12-b (external)"]["out of distribution"] == str(int(ext["out_of_distribution"].sum()))
    for kind in drift.OUT_OF_DISTRIBUTION:
        assert rows["p12-b (external)"][kind.replace("_", " ")] == str(counts[kind])
    cohort = section(parse_html(rendered(built["out"], tmp_path)), "cohort")
    assert "Stays outside the training data" in cohort.text()
    shown = [[" ".join(td.text().split()) for td in tr.find_all("td")] for tr in cohort.find_all("tr")]
    assert [r for r in shown if r and r[0] == "p12-b (external)"] == [numbers["rows"][-1]]
    assert header[:3] == ["cohort", "stays", "out of distribution"]


def test_a_run_without_reference_says_why_its_warnings_are_not_counted(built, tmp_path):
    from types import SimpleNamespace

    from alfia.analysis.figures import FigureWriter
    from alfia.analysis.report.cohort import warnings_table
    from alfia.inference import Run

    run = tmp_path / "old-run"
    shutil.copytree(built["run"], run, ignore=shutil.ignore_patterns("reference.json", "embeddings", "figures"))
    external = {"predictions": pd.read_parquet(built["root"] / "p12-b.predictions.parquet").drop(columns="warnings"),
                "name": "p12-b"}
    inp = SimpleNamespace(run=run, cohort=small_cohort(), texts=None, loaded=Run.load(run), external=external,
                          figs=FigureWriter(tmp_path / "figures", []))
    table, why = warnings_table(inp)
    assert table is None and "no reference.json" in why and "p12-b" in why
    import html

    from alfia.analysis.report.inputs import Table
    from alfia.analysis.report.render import render

    page = render("cohort.html.j2", splits=Table(["split"], [["train"]]), has_cohort=False, warnings=table,
                  warnings_missing=why)
    assert "Not shown: the run's own splits (the run has no reference.json" in html.unescape(" ".join(page.split()))


def test_every_section_and_image_is_present(built):
    page = built["html"]
    for name in SECTIONS:
        assert f'<section id="{name}">' in page
    assert "Not shown" not in page, re.findall(r'Not shown[^<]*', page)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-name="([^"]+)"', page)
    names = {n for _, n in images}
    assert names >= {"cohort-token-lengths", "training-curves", "final-scores", "pr-roc", "bootstrap",
                     "calibration", "layer-weights", "latent-maps", "latent-measures", "latent-classifier", "cost"}
    for data, name in images:
        assert len(data) > 1000, name
        assert (built["run"] / "figures" / f"{name}.json").exists()
        assert (built["run"] / "figures" / f"{name}.png").exists()
        assert (built["out"].parent / "report-figures" / f"{name}.png").exists()
    assert "src=\"http" not in page and "<script" not in page  # offline, nothing to fetch
    for text in ("Baseline characteristics", "XGBoost", "ALFIA-boost", "TabPFN", "Brier", "net benefit",
                 "age band", "icu_type", "gender", "Sensitivity", "true positive", "false negative",
                 "scikit-learn MLPClassifier", "ms per stay", "reference", "mean-pool", "random-init"):
        assert text in page, text


def test_latent_section_has_all_fourteen_sets(built):
    data = json.loads((built["run"] / "figures" / "latent.json").read_text())
    sets = data["sets"]
    pooled = [f"backbone L{j} {p}" for j in (1, 2, 3, 4) for p in ("cls", "mean", "max")]
    assert list(sets) == ["raw tabular", *pooled, "ALF output"]
    for name, s in sets.items():
        assert len(s["xy"]) == data["n_test"] == len(data["labels"])
        assert set(s["measures"]) == {"centroid_distance", "nearest_negative", "within_pos", "within_neg",
                                      "separation_ratio", "silhouette"}
        assert 0 <= s["classifier"]["auprc"]["value"] <= 1
        assert name in built["html"]
    assert sets["backbone L4 cls"]["dim"] == 32 and sets["raw tabular"]["dim"] > 30


def test_numbers_files_match_the_run(built):
    figs = built["run"] / "figures"
    curves = json.loads((figs / "training-curves.json").read_text())
    history = [json.loads(x) for x in (built["run"] / "history.jsonl").read_text().splitlines()]
    assert curves["this run"]["val_auprc"] == [h["val_auprc"] for h in history]
    assert set(curves) >= {"default", "mean-pool", "random-init", "no-lora"}
    cal = json.loads((figs / "calibration.json").read_text())
    metrics = json.loads((built["run"] / "metrics.json").read_text())["test"]
    assert cal["calibration"]["brier"] == pytest.approx(metrics["brier"]["value"])
    lam = json.loads((figs / "layer-weights.json").read_text())
    assert len(lam["mean"]) == 2
    ablation = json.loads((built["ablation"] / "ablation.json").read_text())
    assert [r["name"] for r in ablation["runs"]] == ["default", "random-init", "no-lora", "mean-pool"]
    assert "nf6" in ablation["skipped"]
    assert not (built["ablation"] / "mean-pool" / "model").exists()
    assert (built["ablation"] / "mean-pool" / "predictions.parquet").exists()


def test_training_section_shows_the_ablation_tables(built):
    index = json.loads((built["ablation"] / "ablation.json").read_text())
    training = section(parse_html(built["html"]), "training")
    assert "Ablation: Validation, test and external metrics" in training.text()
    rows = {}
    for tr in training.find_all("tr"):
        cells = [" ".join(td.text().split()) for td in tr.find_all("td")]
        if cells:
            rows.setdefault(cells[0], []).append(cells)
    timed = [r for r in index["runs"] if "ms_per_stay" in r]
    assert [r["name"] for r in timed] == ["default", "random-init", "no-lora"]   # mean-pool keeps no model
    for r in timed:   # the cost table: the run's parameters and its back-to-back inference time
        cost = next(c for c in rows[r["name"]] if len(c) == 10)
        assert cost[-1] == str(r["ms_per_stay"]) and cost[2] == f"{r['parameters']['backbone'] / 1e3:.0f} k"
    validation = rows["validation"]
    assert [c[1] for c in validation] == [f"ALFIA ({r['name']})" for r in index["runs"]]
    assert validation[0][2] == format_ci(index["runs"][0]["metrics"]["val"]["auprc"])


def test_bad_inputs_are_one_line_errors(tmp_path, built):
    with pytest.raises(AlfiaError, match="not a finished run"):
        build_report(tmp_path, tmp_path / "r.html")
    with pytest.raises(AlfiaError, match=".html"):
        build_report(built["run"], tmp_path / "r.pdf")
    with pytest.raises(AlfiaError, match="results.json"):
        build_report(built["run"], tmp_path / "r.html", baselines=tmp_path)
    with pytest.raises(AlfiaError, match="unknown ablation variant"):
        run_ablation(small_cohort(), tmp_path / "a", variants=["bogus"])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_page_renders_in_headless_chromium(built, tmp_path):
    from PIL import Image

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
             "--v=0"]
    url = built["out"].resolve().as_uri()
    shot = tmp_path / "shot.png"
    r = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,3000", url], capture_output=True,
                       text=True, timeout=60)
    assert shot.exists(), r.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text and figures, not a blank page
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60)
    for name in SECTIONS:
        assert f'id="{name}"' in dom.stdout
    assert dom.stdout.count("<img") >= 11
    for log in (r.stderr, dom.stderr):
        assert "Uncaught" not in log and "ERROR:CONSOLE" not in log
    assert Path(shot).stat().st_size > 10_000


# ------------------------------------------------------------------ the page as a reader sees it (DOM checks)

class _Node:
    def __init__(self, tag: str, attrs: dict, parent=None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str, cls: str | None = None) -> list["_Node"]:
        out = []
        for c in self.children:
            if isinstance(c, _Node):
                if c.tag == tag and (cls is None or cls in c.attrs.get("class", "").split()):
                    out.append(c)
                out += c.find_all(tag, cls)
        return out

    def elements(self) -> list["_Node"]:
        return [c for c in self.children if isinstance(c, _Node)]


def parse_html(page: str) -> _Node:
    """A small DOM from the standard library's parser (void elements closed at once)."""
    from html.parser import HTMLParser

    void = {"img", "meta", "br", "hr", "input", "link"}
    root = _Node("root", {})

    class Builder(HTMLParser):
        node = root

        def handle_starttag(self, tag, attrs):
            child = _Node(tag, {k: v or "" for k, v in attrs}, self.node)
            self.node.children.append(child)
            if tag not in void:
                self.node = child

        def handle_endtag(self, tag):
            node = self.node
            while node is not root and node.tag != tag:
                node = node.parent
            if node is not root:
                self.node = node.parent

        def handle_data(self, data):
            self.node.children.append(data)

    Builder().feed(page)
    return root


def rendered(path: Path, tmp_path: Path) -> str:
    """The page's DOM as headless Chromium builds it when Chromium is installed, else the HTML file itself."""
    browser = _chromium()
    if browser is None:
        return path.read_text()
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'dom-profile'}", "--dump-dom",
                          path.resolve().as_uri()], capture_output=True, text=True, timeout=60)
    assert "<section" in dom.stdout, dom.stderr[-2000:]
    return dom.stdout


def section(root: _Node, name: str) -> _Node:
    return next(s for s in root.find_all("section") if s.attrs.get("id") == name)


def figure_by_name(root: _Node, name: str) -> _Node:
    return next(f for f in root.find_all("figure") if any(i.attrs.get("data-name") == name
                                                            for i in f.find_all("img")))


def test_the_page_opens_on_a_one_screen_summary(built, tmp_path):
    root = parse_html(rendered(built["out"], tmp_path))
    assert [s.attrs["id"] for s in root.find_all("section")] == list(SECTIONS)
    assert SECTIONS[0] == "summary"
    summary = section(root, "summary")
    words = " ".join(summary.text().split())
    metrics = json.loads((built["run"] / "metrics.json").read_text())["test"]
    models = json.loads((built["root"] / "baselines" / "results.json").read_text())["models"]
    independent = [m for m in models if models[m]["family"] != "alfia-derived"]
    best = max(independent, key=lambda m: models[m]["test"]["auprc"]["value"])
    assert f"best baseline ({best})" in words
    for key in ("auprc", "auroc", "brier", "ece"):
        assert format_ci(metrics[key]) in words and format_ci(models[best]["test"][key]) in words
    ece = metrics["ece"]["value"]
    assert ("ALFIA is poorly calibrated" in words) == (ece > 0.1)
    assert "Cost per stay: 3.5 ms" in words
    assert not summary.find_all("figure") and len(summary.find_all("tr")) <= 8  # one screen: no figure
    cohort = section(root, "cohort")
    tables = cohort.find_all("table", "table1")
    assert len(tables) == 1 and tables[0].parent.tag == "details"  # Table 1 collapsed after the summary
    assert "SMD" in tables[0].text() and "median [IQR]" in cohort.text()


def test_words_beside_the_calibration_and_decision_curves(built, tmp_path):
    root = parse_html(rendered(built["out"], tmp_path))
    clinical = section(root, "clinical")
    children = clinical.elements()
    figure = figure_by_name(clinical, "calibration")
    after = children[children.index(figure) + 1:]
    readings = [" ".join(e.text().split()) for e in after[:2]]
    assert all(e.attrs.get("class") == "verdict" for e in after[:2])
    numbers = json.loads((built["run"] / "figures" / "calibration.json").read_text())
    ece = numbers["calibration"]["ece"]
    quality = "poorly" if ece > 0.1 else "moderately" if ece > 0.05 else "well"
    assert readings[0].startswith(f"Reading: ALFIA is {quality} calibrated (ECE {ece:.3f}")
    dca = numbers["decision_curve"]
    helps = [m > max(a, 0) + 1e-3 for m, a in zip(dca["model"], dca["treat_all"], strict=True)]
    assert ("sits at or below treat-all or treat-none" in readings[1]) == (not any(helps))
    # baselines drawn on both curves, named in the legend
    assert {"ALFIA", "XGBoost", "ALFIA-boost"} <= set(numbers["models"])
    caption = " ".join(figure.find_all("figcaption")[0].text().split())
    assert "XGBoost (ECE" in caption and "treat all" in caption
    assert "net benefit is higher than ALFIA's" in clinical.text()
    subgroups = " ".join(clinical.text().split())
    assert "Reading: AUROC ranges from" in subgroups
    # the calibration slope, intercept and O:E per cohort, read in words (the run's own test numbers)
    test = json.loads((built["run"] / "metrics.json").read_text())["test"]
    assert "Calibration slope, intercept and O:E" in subgroups
    assert f"Reading: ALFIA on the internal test split: calibration slope {format_ci(test['calibration_slope'])}" \
        in subgroups
    assert "Reading: ALFIA on the external cohort p12-b:" in subgroups
    assert "lowess" in caption and "95% band" in caption


def test_latent_space_maps_have_a_legend(built, tmp_path):
    root = parse_html(rendered(built["out"], tmp_path))
    labels = json.loads((built["run"] / "figures" / "latent.json").read_text())["labels"]
    died, survived = sum(labels), len(labels) - sum(labels)
    legend = [f"died (n={died})", f"survived (n={survived})"]
    assert json.loads((built["run"] / "figures" / "latent-maps.json").read_text())["legend"] == legend
    caption = figure_by_name(section(root, "latent"), "latent-maps").find_all("figcaption")[0].text()
    assert f"legend: {', '.join(legend)}" in caption


def test_figures_are_200_dpi(built):
    from PIL import Image

    with Image.open(built["run"] / "figures" / "calibration.png") as im:
        assert im.info["dpi"] == pytest.approx((200, 200), abs=0.5)


def test_per_patient_cards(built, tmp_path):
    root = parse_html(rendered(built["out"], tmp_path))
    cards = section(root, "patients").find_all("div", "patient-card")
    preds = pd.read_parquet(built["run"] / "predictions.parquet").set_index("stay_id")
    texts = small_cohort().df.set_index("stay_id")["text"]
    kinds = set()
    for card in cards:
        words = " ".join(card.text().split())
        heading = card.find_all("h4")[0].text()
        kinds.add(heading.split(" — ")[0])
        stay = int(re.search(r"stay (\d+)", heading).group(1))
        assert f"Predicted risk {100 * preds.loc[stay, 'probability']:.1f}%" in words
        assert re.search(r"Band: (low|medium|high) \(\d+% of this band died\)", words), words
        assert ("died in hospital" in words) == bool(preds.loc[stay, "hospital_mortality"])
        phrases = [re.match(r"“(.*)” \(\d+% of attention\)", " ".join(li.text().split())).group(1)
                   for li in card.find_all("li")]
        assert phrases and all(p in " ".join(texts.loc[stay].split()) for p in phrases)
    assert len(cards) >= 2 and kinds <= {"True positive", "True negative", "False positive", "False negative"}


def test_token_attention_is_shown_on_whole_words(built, tmp_path):
    root = parse_html(rendered(built["out"], tmp_path))
    blocks = section(root, "learned").find_all("div", "attention")
    assert blocks
    for block in blocks:
        shown = block.text()
        assert "[CLS]" not in shown and "[SEP]" not in shown and "##" not in shown
    data = json.loads((built["run"] / "figures" / "token-attention.json").read_text())
    texts = small_cohort().df.set_index("stay_id")["text"]
    for stay in data["stays"]:
        assert [w["text"] for w in stay["words"]] == texts.loc[stay["stay_id"]].split()
        assert 0 < sum(w["weight"] for w in stay["words"]) <= 1 + 1e-6
    assert "show patient texts by design" in root.text()
    assert root.text().count("Phrases with the most attention: “") == len(blocks)


def test_no_texts_leaves_every_text_and_stay_id_out(built, tmp_path):
    import shutil as sh

    from alfia.analysis.report.examples import PHRASE_END

    figures = tmp_path / "figures"
    figures.mkdir()
    sh.copy(built["run"] / "figures" / "latent.json", figures / "latent.json")  # the cached latent analysis
    cohort = small_cohort()
    out = build_report(built["run"], tmp_path / "private.html", baselines=built["root"] / "baselines",
                       cohort=cohort, max_stays=40, projection="pca", n_boot=20, classifier="mlp",
                       figures_dir=figures, include_texts=False, progress=lambda *_: None)
    page = rendered(out, tmp_path)
    visible = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # digits inside images are no ids
    for stay_id in cohort.df["stay_id"]:
        assert not re.search(rf"\b{stay_id}\b", visible), stay_id
    phrases = {p.strip() for text in cohort.df["text"] for p in PHRASE_END.split(text) if len(p.strip()) >= 25}
    assert phrases
    leaked = [p for p in phrases if p in visible]
    assert not leaked, leaked[:3]
    root = parse_html(page)
    assert len(section(root, "patients").find_all("div", "patient-card")) >= 2  # the cards stay, without text
    assert "Phrases left out (--no-texts)" in root.text() and "no patient text and no stay id" in root.text()
    for path in figures.glob("*.json"):
        data = path.read_text()
        assert '"stay_id' not in data and not any(p in data for p in phrases), path.name


def test_cli_no_texts_flag_reaches_the_report(built, monkeypatch, tmp_path):
    import argparse

    import alfia.analysis.report as report
    from alfia.cli.analysis import add_commands

    seen = {}
    monkeypatch.setattr(report, "build_report", lambda *a, **k: seen.update(k) or tmp_path / "r.html")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    for argv, expected in ((["report", str(built["run"]), "--no-texts"], False), (["report", str(built["run"])], True)):
        args = parser.parse_args(argv)
        args.func(args)
        assert seen["include_texts"] is expected


def test_raw_and_calibrated_probabilities_both_drawn(tmp_path):
    from alfia.analysis.figures import FigureWriter
    from alfia.analysis.report import clinical
    from alfia.analysis.report.inputs import Inputs, Options
    from alfia.evaluation.metrics import evaluate

    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(int)
    raw = np.clip(0.5 + 0.3 * y + rng.normal(0, 0.1, 200), 0.01, 0.99)  # over-estimates the risk
    calibrated = np.clip(0.05 + 0.7 * y + rng.normal(0, 0.05, 200), 0.01, 0.99)
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"stay_id": range(200), "split": "test", "hospital_mortality": y, "probability": calibrated,
                  "p_raw": raw, "label": (calibrated > 0.5).astype(int)}).to_parquet(run / "predictions.parquet")
    (run / "metrics.json").write_text(json.dumps({"test": evaluate(y, calibrated, threshold=0.5, n_boot=10)}))
    inp = Inputs(run, FigureWriter(tmp_path / "figs"), Options(n_boot=10))
    context = clinical.build(inp)
    models = json.loads((tmp_path / "figs" / "calibration.json").read_text())["models"]
    assert list(models) == ["ALFIA (raw)", "ALFIA"]
    words = context["calibration_words"]
    # the verdict on the probability shown (calibrated) first, then on the raw one
    assert len(words) == 2 and words[0].startswith("ALFIA is ")
    assert words[1].startswith("ALFIA (raw) is poorly calibrated")
    assert "over-estimates" in words[1]
    assert models["ALFIA (raw)"]["calibration"]["ece"] > models["ALFIA"]["calibration"]["ece"]


def _calibration_run(tmp_path):
    """A run folder, baselines (a tabular model and a severity score) and external metrics on real stays of set A,
    with outcomes drawn from known risks: ALFIA over-confident (logit doubled), XGBoost shifted (predictions too
    low), SOFA a score (points, not probabilities)."""
    from scipy.special import expit, logit

    from alfia.baselines.scores import evaluate_score
    from alfia.evaluation.metrics import evaluate

    cohort = load_bundled("p12-a")
    test = cohort.df[cohort.df["split"] == "test"].head(600)
    n = len(test)
    rng = np.random.default_rng(1)
    risk = expit(rng.normal(-1.6, 1.0, n))
    y = (rng.random(n) < risk).astype(int)
    alfia, xgb = expit(2 * logit(risk)), expit(logit(risk) - 1)
    sofa = np.clip(risk + rng.normal(0, 0.05, n), 0, 1)
    run = tmp_path / "run"
    run.mkdir()
    ids = test["stay_id"].to_numpy()
    pd.DataFrame({"stay_id": ids, "split": "test", "hospital_mortality": y, "probability": alfia,
                  "label": (alfia > 0.5).astype(int)}).to_parquet(run / "predictions.parquet")
    (run / "metrics.json").write_text(json.dumps({"test": evaluate(y, alfia, threshold=0.5, n_boot=100)}))
    base = tmp_path / "baselines"
    base.mkdir()
    (base / "results.json").write_text(json.dumps({"models": {
        "XGBoost": {"family": "tabular", "test": evaluate(y, xgb, n_boot=100)},
        "SOFA": {"family": "score", "test": evaluate_score(y, sofa, n_boot=100)}}}))
    pd.concat([pd.DataFrame({"model": name, "where": "test", "stay_id": ids, "probability": p})
               for name, p in (("XGBoost", xgb), ("SOFA", sofa))]).to_parquet(base / "predictions.parquet")
    ext = tmp_path / "p12-b.predictions.parquet"
    pd.DataFrame({"stay_id": ids, "probability": risk}).to_parquet(ext)
    (tmp_path / "p12-b.metrics.json").write_text(json.dumps({"metrics": evaluate(y, risk, n_boot=100)}))
    return run, base, ext, cohort, y, {"ALFIA": alfia, "XGBoost": xgb, "SOFA": sofa}


def test_calibration_section_shows_the_smoothed_curve_and_the_three_numbers_per_cohort_in_words(tmp_path):
    from alfia.analysis.figures import FigureWriter
    from alfia.analysis.report import clinical, performance, summary
    from alfia.analysis.report.inputs import Inputs, Options
    from alfia.analysis.report.render import render

    run, base, ext, cohort, y, probs = _calibration_run(tmp_path)
    inp = Inputs(run, FigureWriter(tmp_path / "figs"), Options(n_boot=30), cohort=cohort, baselines_dir=base,
                 external_path=ext)
    context = clinical.build(inp)
    stored = json.loads((run / "metrics.json").read_text())["test"]
    external = json.loads((tmp_path / "p12-b.metrics.json").read_text())["metrics"]
    xgb = json.loads((base / "results.json").read_text())["models"]["XGBoost"]["test"]
    keys = ("oe_ratio", "calibration_intercept", "calibration_slope")
    # the table: every model with probabilities per cohort, the stored (leaderboard) numbers; no row for the score
    rows = {(r[0], r[1]): r for r in context["fit_table"].rows}
    assert set(rows) == {("ALFIA", "internal test split"), ("XGBoost", "internal test split"),
                         ("ALFIA", "external cohort p12-b")}
    for key, metrics in ((("ALFIA", "internal test split"), stored), (("XGBoost", "internal test split"), xgb),
                         (("ALFIA", "external cohort p12-b"), external)):
        assert rows[key][2:5] == [format_ci(metrics[k]) for k in keys]
    # in words, read by the intervals: ALFIA over-confident, its external (true-risk) predictions not clearly off
    words = " ".join(context["fit_words"])
    assert "ALFIA on the internal test split: calibration slope" in words
    assert "so over-confident: its predictions are too extreme" in context["fit_words"][0]
    assert stored["calibration_slope"]["ci_high"] < 1
    assert "ALFIA on the external cohort p12-b:" in context["fit_words"][1]
    assert "over-confident" not in context["fit_words"][1]
    # the smoothed curve with its band beside the binned one, for models with probabilities only
    numbers = json.loads((tmp_path / "figs" / "calibration.json").read_text())
    assert numbers["models"]["SOFA"]["smoothed"] is None
    for name in ("ALFIA", "XGBoost"):
        smoothed = numbers["models"][name]["smoothed"]
        assert smoothed["n_boot"] == 30 and len(smoothed["observed"]) == len(smoothed["ci_low"]) == 50
        assert numbers["models"][name]["calibration"]["calibration_slope"] == pytest.approx(
            stored["calibration_slope"]["value"] if name == "ALFIA" else xgb["calibration_slope"]["value"])
    # over-confident: the smoothed curve crosses the diagonal, above it at the lowest predictions (low risks too
    # low) and below it at the highest (high risks too high)
    alfia_curve = numbers["models"]["ALFIA"]["smoothed"]
    assert alfia_curve["observed"][0] > alfia_curve["predicted"][0] + 0.02
    assert alfia_curve["observed"][-1] < alfia_curve["predicted"][-1] - 0.02
    legend = numbers["legend"]
    assert any(label.startswith("ALFIA (slope ") for label in legend)
    assert "ALFIA: 95% band, 30 bootstrap resamples" in legend
    assert not any(label.startswith("SOFA (slope") for label in legend)
    # the rendered section: the table's heading, the numbers and the words
    page = " ".join(render("clinical.html.j2", **context).split())
    assert "Calibration slope, intercept and O:E" in page and "calibration slope (1 ideal)" in page
    assert "so over-confident: its predictions are too extreme" in page
    assert format_ci(stored["oe_ratio"]) in page
    # subgroups: O:E per group, observed deaths over the sum of the predictions
    groups = json.loads((tmp_path / "figs" / "subgroups.json").read_text())["groups"]
    test = pd.read_parquet(run / "predictions.parquet").merge(cohort.df[["stay_id", "gender"]], on="stay_id")
    for level, part in test.groupby("gender"):
        group = groups[f"gender={level}"]
        assert group["oe_ratio"]["value"] == pytest.approx(part["hospital_mortality"].sum() / part["probability"].sum())
        assert group["expected"] == pytest.approx(part["probability"].sum())
    assert context["subgroups"].header[4:6] == ["expected deaths", "O:E"]
    # the report's leaderboard: the three per model, n/a for the score; the summary reads ALFIA's per cohort
    board = performance.build(inp)["board"]
    by_model = {r[1]: dict(zip(board.header, r, strict=True)) for r in board.rows}
    assert by_model["XGBoost"]["calibration slope"] == format_ci(xgb["calibration_slope"])
    assert [by_model["SOFA"][h] for h in ("O:E", "calibration intercept", "calibration slope")] == ["n/a"] * 3
    points = " ".join(summary.build(inp)["points"])
    assert "ALFIA on the internal test split: calibration slope" in points and "ALFIA on the external cohort" in points
