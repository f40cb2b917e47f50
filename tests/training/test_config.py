"""One config tree: the model's config nested in the training settings, set by name, path or nested dict."""

import pytest

from alfia.errors import AlfiaError, SettingError
from alfia.model.alfia import ALFIAConfig
from alfia.model.lora import LoraSettings
from alfia.training.config import PROFILES, TrainConfig, make_config


def test_profiles_nest_the_model_config():
    quick, paper = make_config("quick"), make_config("paper")
    assert isinstance(quick.model, ALFIAConfig) and isinstance(paper.model, ALFIAConfig)
    assert quick.model.lora is None and quick.model.readout.C == 0.3 and quick.model.max_length is None
    assert quick.model.backbone_dropout == 0.0 and quick.profile == "quick"
    assert paper.model.lora == LoraSettings() and paper.model.readout is None and paper.model.max_length == 512
    assert paper.model.fusion.num_fusion_layers == 4 and paper.model.fusion.dropout == paper.model.head.dropout == 0.1


def test_a_path_a_nested_dict_and_a_config_object_say_the_same():
    dotted = make_config("paper", epochs=3, **{"model.lora.r": 8, "model.fusion.num_fusion_layers": 2})
    nested = make_config("paper", epochs=3, model={"lora": {"r": 8}, "fusion": {"num_fusion_layers": 2}})
    assert dotted == nested and dotted.model.lora.r == 8 and dotted.model.lora.alpha == 16
    whole = make_config("paper", epochs=3, model=dotted.model)
    assert whole == dotted


def test_optional_parts_turn_on_and_off():
    quick = make_config("quick", **{"model.lora.layers": 1})  # a LoRA setting turns LoRA on, with its defaults
    assert quick.model.lora == LoraSettings(layers=1)
    assert make_config("quick", **{"model.lora": {}}).model.lora == LoraSettings()
    assert make_config("paper", **{"model.lora": None}).model.lora is None
    assert make_config("paper", **{"model.lora.layers": None}).model.lora.layers is None  # None is a value
    assert make_config("paper", **{"model.readout.C": 0.1}).model.readout.C == 0.1
    assert make_config("quick", **{"model.readout": {}}).model.readout.C == 0.3  # already on: unchanged
    # the profiles themselves are not changed by what a caller asked
    assert PROFILES["quick"].settings["model"]["lora"] is None and make_config("quick").model.lora is None


def test_settings_round_trip_through_their_dict():
    config = make_config("quick", epochs=1, **{"model.lora.r": 4, "model.max_length": 64})
    data = config.to_dict()
    assert data["model"]["lora"]["r"] == 4 and data["epochs"] == 1
    assert TrainConfig.from_dict(data) == config


@pytest.mark.parametrize(("overrides", "field"), [
    ({"epochs": 0}, "epochs"),
    ({"model.max_length": 4}, "model.max_length"),
    ({"model.fusion.num_fusion_layers": 0}, "model.fusion.num_fusion_layers"),
    ({"model.lora.r": 0}, "model.lora.r"),
    ({"model.readout.C": 0.0}, "model.readout.C"),
    ({"distill": 2.0}, "distill"),
])
def test_range_errors_name_the_setting_by_its_path(overrides, field):
    with pytest.raises(SettingError) as exc:
        make_config("quick", **overrides)
    assert exc.value.field == field and str(exc.value).startswith(field + " ")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model.foo": 1}, "unknown training setting 'model.foo'"),
    ({"fusion_layers": 2}, "unknown training setting 'fusion_layers'"),
    ({"epochs.x": 2}, "epochs has no parts"),
    ({"epochs": "3"}, "TrainConfig.epochs = '3' has the wrong type"),
    ({"model.lora.r": 2.5}, "LoraSettings.r = 2.5 has the wrong type"),
])
def test_unknown_or_mistyped_settings_are_one_clear_error(overrides, message):
    with pytest.raises(AlfiaError, match=message.replace(".", r"\.").replace("(", r"\(")):
        make_config("quick", **overrides)


def test_the_command_line_maps_flags_to_paths_and_errors_back_to_flags(tmp_path, capsys):
    from alfia.cli import main

    run = str(tmp_path / "run")
    assert main(["train", "p12-a", "--out", run, "--readout-c", "0"]) == 2
    assert "error: --readout-c must be positive" in capsys.readouterr().err
    assert main(["train", "p12-a", "--out", run, "--no-lora", "--lora-r", "8"]) == 2
    assert "--no-lora with --lora-r" in capsys.readouterr().err
    assert main(["train", "p12-a", "--out", run, "--no-readout", "--readout-c", "1"]) == 2
    assert "--no-readout with --readout-c" in capsys.readouterr().err
    assert main(["train", "p12-a", "--out", run, "--lora-dropout", "1.5"]) == 2
    assert "error: --lora-dropout must be in [0, 1)" in capsys.readouterr().err
    assert main(["train", "p12-a", "--out", run, "--grad-accum", "0"]) == 2   # the settings check the range
    assert "error: --grad-accum must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:   # argparse's own usage error: not a size at all
        main(["train", "p12-a", "--out", run, "--cache-budget", "lots"])
    assert exc.value.code == 2 and "not a size" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_flags_become_the_settings_they_name():
    import argparse

    from alfia.cli import build_parser
    from alfia.cli.train import _train_overrides

    def settings(*flags):
        args = build_parser().parse_args(["train", "x.parquet", "--out", "run", *flags])
        assert isinstance(args, argparse.Namespace)
        return make_config(args.profile, **_train_overrides(args))

    quick = settings()
    assert quick == make_config("quick")
    lora = settings("--lora-r", "8", "--lora-layers", "2", "--fusion-layers", "3", "--max-length", "64")
    assert lora.model.lora == LoraSettings(r=8, layers=2)
    assert lora.model.fusion.num_fusion_layers == 3 and lora.model.max_length == 64
    assert settings("--profile", "paper", "--lora-layers", "all").model.lora.layers is None
    assert settings("--profile", "paper", "--no-lora").model.lora is None
    assert settings("--no-readout").model.readout is None
    assert settings("--profile", "paper", "--readout").model.readout.C == 0.3
    scale = settings("--profile", "paper", "--lora-alpha", "32", "--lora-dropout", "0.1", "--grad-accum", "4",
                     "--gradient-checkpointing", "--eval-batch-size", "64", "--weight-decay", "0", "--warmup", "0.2",
                     "--dtype", "bf16", "--precision", "fp32", "--cache-budget", "1.5G")
    assert (scale.model.lora.alpha, scale.model.lora.dropout, scale.grad_accum, scale.gradient_checkpointing) == \
        (32, 0.1, 4, True)
    assert (scale.eval_batch_size, scale.weight_decay, scale.warmup_ratio) == (64, 0, 0.2)
    assert (scale.model.dtype, scale.precision, scale.cache_budget) == ("bf16", "fp32", int(1.5 * 2**30))
    assert settings("--bf16").precision == "bf16" and settings().precision == "auto"
    assert settings("--lora-alpha", "8").model.lora.alpha == 8   # a LoRA flag turns LoRA on


def test_every_command_names_the_flag_of_a_setting_the_library_refused(capsys):
    import argparse

    from alfia.bench.quick import run_bench
    from alfia.cli.options import EXIT_USAGE, flag_of, run_command

    assert (flag_of("model.lora.r"), flag_of("reference_steps"), flag_of("model.head.dropout")) == \
        ("--lora-r", "--reference-steps", "model.head.dropout")
    assert (flag_of("model.lora.alpha"), flag_of("warmup_ratio"), flag_of("model.dtype")) == \
        ("--lora-alpha", "--warmup", "--dtype")

    def bench(_args):
        run_bench("unused.json", stays=100, reference_steps=0)

    assert run_command(bench, argparse.Namespace()) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == "error: --reference-steps must be a positive integer, got 0"
    with pytest.raises(SettingError, match="^reference_steps must be a positive integer"):  # from Python
        run_bench("unused.json", stays=100, reference_steps=0)
