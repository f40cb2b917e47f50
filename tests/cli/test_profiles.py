"""One profile registry, one flag: ``--profile`` chooses the settings of train, baselines, boost, ablate, bench and
study; the old spellings (``--preset``, ``--setting``) still work for one release and say so on stderr; the
LoRA flags beside ``--no-lora`` come from the LoRA settings themselves."""

import argparse
import json
from pathlib import Path

import pytest

import alfia.analysis.ablation as ablation
import alfia.baselines.tabular as tabular
from alfia.cli import build_parser, main
from alfia.cli.options import setting_flags
from alfia.cohorts import ID, SPLIT, write_cohort
from alfia.cohorts.bundled import load_bundled
from alfia.training.config import PROFILES, make_config

DEPRECATED = "is deprecated and will be removed in the next release; use --profile"


@pytest.fixture
def captured_baselines(monkeypatch):
    """run_baselines replaced by a recorder: the command's parsing and loading run as they are."""
    calls = []

    def fake(dev, out, external=None, profile="quick", **kwargs):
        calls.append({"profile": profile, "budget": tabular.budget_of(profile), **kwargs})
        return {"models": {}, "skipped": {}}

    monkeypatch.setattr(tabular, "run_baselines", fake)
    return calls


@pytest.mark.parametrize("flags, profile", [([], "quick"), (["--profile", "paper"], "paper"),
                                            (["--profile", "ablation"], "ablation")])
def test_baselines_take_the_profile(captured_baselines, flags, profile, tmp_path, capsys):
    assert main(["baselines", "p12-a", "--out", str(tmp_path / "b"), *flags]) == 0
    assert captured_baselines[-1]["profile"] == profile
    assert captured_baselines[-1]["budget"] == PROFILES[profile].baselines
    assert DEPRECATED not in capsys.readouterr().err


def test_baselines_old_preset_flag_works_with_one_deprecation_line(captured_baselines, tmp_path, capsys):
    assert main(["baselines", "p12-a", "--out", str(tmp_path / "b"), "--preset", "paper"]) == 0
    assert captured_baselines[-1]["profile"] == "paper"
    err = capsys.readouterr().err
    assert err.count(DEPRECATED) == 1
    assert f"warning: --preset {DEPRECATED}" in err.splitlines()


def test_old_flags_refuse_what_the_new_one_refuses(capsys):
    for command in (["baselines", "p12-a", "--out", "o", "--preset", "fast"],
                    ["ablate", "c.parquet", "--out", "o", "--setting", "fast"]):
        with pytest.raises(SystemExit) as exc:
            main(command)
        assert exc.value.code == 2 and "invalid choice: 'fast'" in capsys.readouterr().err


@pytest.fixture
def captured_ablation(monkeypatch, tmp_path):
    calls = []

    def fake(cohort, out, **kwargs):
        calls.append(kwargs)
        md = Path(out) / "ablation.md"
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text("| table |\n")
        return md.with_suffix(".json")

    monkeypatch.setattr(ablation, "run_ablation", fake)
    cohort = load_bundled("p12-a")
    small = cohort.df.groupby(SPLIT, group_keys=False).head(30).sort_values(ID)
    path = tmp_path / "small.parquet"
    write_cohort(type(cohort)(df=small.assign(text="a text"), schema=cohort.schema, info=cohort.info,
                              task=cohort.task), path)
    return calls, path


@pytest.mark.parametrize("flags, profile", [([], "ablation"), (["--profile", "quick"], "quick"),
                                            (["--profile", "paper"], "paper")])
def test_ablate_takes_the_profile(captured_ablation, flags, profile, tmp_path, capsys):
    calls, cohort = captured_ablation
    assert main(["ablate", str(cohort), "--out", str(tmp_path / "a"), *flags]) == 0
    assert calls[-1]["profile"] == profile
    assert DEPRECATED not in capsys.readouterr().err


def test_ablate_old_setting_flag_works_with_one_deprecation_line(captured_ablation, tmp_path, capsys):
    calls, cohort = captured_ablation
    assert main(["ablate", str(cohort), "--out", str(tmp_path / "a"), "--setting", "quick"]) == 0
    assert calls[-1]["profile"] == "quick"
    assert capsys.readouterr().err.count(f"warning: --setting {DEPRECATED}") == 1


def test_the_ablation_profile_is_the_ablation_budget_over_quick():
    """The ablation's budget, now a profile of the registry, gives exactly the settings it gave as
    ABLATION_BASE over the quick profile (only the profile's name differs)."""
    old_base = {"model.lora": {"layers": 1, "dropout": 0.0}, "model.readout": None, "head_lr": 3e-4,
                "distill": 0.0, "class_weight": True, "calibration": "none"}
    for extra in ({}, {"model.lora": None}, {"model.fusion.num_fusion_layers": 2, "epochs": 3}):
        new = make_config("ablation", **extra).to_dict()
        old = make_config("quick", **{**old_base, **extra}).to_dict()
        assert (new.pop("profile"), old.pop("profile")) == ("ablation", "quick")
        assert new == old
    assert make_config("ablation").model.lora.layers == 1 and make_config("ablation").model.readout is None


def test_bench_measures_the_quick_or_paper_profile(tmp_path, capsys):
    assert main(["bench", "--out", str(tmp_path / "b.json"), "--profile", "ablation"]) == 2
    assert "alfia bench measures the quick or paper profile" in capsys.readouterr().err


def test_train_accepts_every_profile_and_lists_them_in_its_help(capsys):
    for name in PROFILES:
        assert build_parser().parse_args(["train", "c.parquet", "--out", "r", "--profile", name]).profile == name
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(name in shown for name in PROFILES)


@pytest.mark.parametrize("part, flag", [(part, flag) for part in ("lora", "readout")
                                        for path, flag in setting_flags().items()
                                        if path.startswith(f"model.{part}.")])
def test_every_flag_of_an_optional_part_is_refused_beside_turning_it_off(part, flag, tmp_path, capsys):
    value = {"--lora-layers": "2", "--lora-targets": "query,value", "--lora-dropout": "0.1",
             "--readout-c": "0.5"}.get(flag, "8")
    off = "--no-lora" if part == "lora" else "--no-readout"
    assert main(["train", "p12-a", "--out", str(tmp_path / "run"), off, flag, value]) == 2
    assert f"{off} with {flag}: give one or the other" in capsys.readouterr().err


def test_the_lora_flags_are_the_lora_settings():
    from alfia.codec import settings_of
    from alfia.model.lora import LoraSettings

    declared = {f.metadata["flag"] for _, f, _ in settings_of(LoraSettings) if f.metadata.get("flag")}
    derived = {flag for path, flag in setting_flags().items() if path.startswith("model.lora.")}
    assert derived == declared >= {"--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets", "--lora-layers"}


def test_deprecated_flag_action_stores_under_the_new_name(capsys):
    from alfia.cli.options import add_profile

    p = argparse.ArgumentParser()
    add_profile(p, "--old", default="quick")
    assert p.parse_args(["--old", "paper"]).profile == "paper"
    assert p.parse_args([]).profile == "quick"
    assert capsys.readouterr().err.count("--old is deprecated") == 1
    assert json.dumps(vars(p.parse_args(["--profile", "ablation"]))) == '{"profile": "ablation"}'
