"""alfia.codec: Config's to_dict / from_dict / validate, the declared constraints (Interval, OneOf), numbers checked
as numbers.Integral / numbers.Real, and one generated test: every declared setting of every config, given a value
outside its constraint, is refused with one line naming its path."""

from __future__ import annotations

import copy
import dataclasses
import json
import typing

import numpy as np
import pytest

from alfia.codec import (
    Config,
    Interval,
    OneOf,
    config_from_dict,
    flatten,
    is_integral,
    is_real,
    nested_dataclass,
    plain,
    settings_of,
)
from alfia.errors import AlfiaError, SettingError
from alfia.model.alfia import ALFIAConfig
from alfia.model.fusion import FusionConfig
from alfia.model.head import HeadConfig
from alfia.model.lora import LoraSettings
from alfia.model.readout import ReadoutConfig
from alfia.training.config import TrainConfig, make_config

CONFIGS = (TrainConfig, ALFIAConfig, FusionConfig, HeadConfig, LoraSettings, ReadoutConfig)
# settings without a declared constraint, each for a reason; a new setting must declare one or be named here
UNCONSTRAINED = {
    "ALFIAConfig.backbone": "a HuggingFace name or a folder: checked where it is loaded",
    "TrainConfig.profile": "written by make_config from the registry's name",
    "TrainConfig.cache_dir": "a folder: refused with one line where the cache's file cannot be written there",
    "LoraSettings.target_modules": "checked by LoraSettings.check (a non-empty list of names)",
}


def all_on(cls):
    """A config of ``cls`` with every optional part on (LoRA, readout ...), so that every setting is checked."""
    return _parts_on(cls())


def _parts_on(config):
    for f in dataclasses.fields(config):
        nested = nested_dataclass(_hint(type(config), f.name))
        if nested is not None:
            setattr(config, f.name, _parts_on(getattr(config, f.name) or nested()))
    return config


def _hint(cls, name):
    return typing.get_type_hints(cls)[name]


def _owner(cls, path: str):
    """The config class that declares the setting at ``path``, and the field's name there."""
    *parents, name = path.split(".")
    for part in parents:
        cls = nested_dataclass(_hint(cls, part))
    return cls, name


def outside(check, kind) -> list:
    """Values outside a declared constraint: beyond each bound, of the wrong kind, a bool for a number."""
    if isinstance(check, OneOf):
        return ["no-such-choice"]
    values = []
    if check.low is not None:
        values.append(check.low if check.closed in ("right", "neither") else check.low - (1 if check.kind is int
                                                                                            else 0.5))
    if check.high is not None:
        values.append(check.high if check.closed in ("left", "neither") else check.high + 1)
    values += [1.5, True] if check.kind is int else ["0.1", True]
    return values


def cases():
    for cls in CONFIGS:
        for path, f, kind in settings_of(cls):
            check = f.metadata.get("check")
            if check is not None:
                for value in outside(check, kind):
                    yield pytest.param(cls, path, value, id=f"{cls.__name__}:{path}={value!r}")


def set_path(config, path: str, value) -> None:
    *parents, name = path.split(".")
    for part in parents:
        config = getattr(config, part)
    setattr(config, name, value)


@pytest.mark.parametrize("cls, path, value", list(cases()))
def test_every_declared_setting_refuses_a_value_outside_its_constraint(cls, path, value):
    config = copy.deepcopy(all_on(cls))
    config.validate()   # every part on, every default inside its constraint
    set_path(config, path, value)
    with pytest.raises(SettingError) as exc:
        config.validate()
    assert exc.value.field == path and str(exc.value).startswith(f"{path} must ")
    assert "\n" not in str(exc.value) and repr(value) in str(exc.value)


def test_the_generated_cases_cover_every_setting_of_every_config():
    covered = {(cls, path) for p in cases() for cls, path, _ in [p.values]}
    for cls in CONFIGS:
        for path, f, kind in settings_of(cls):
            owner, name = _owner(cls, path)
            if nested_dataclass(_hint(owner, name)) is not None:
                continue  # a part: its own settings are the cases
            if f.metadata.get("check") is None:
                assert kind is bool or f"{owner.__name__}.{name}" in UNCONSTRAINED, \
                    f"{owner.__name__}.{name} declares no constraint (setting(..., check=...))"
            else:
                assert (cls, path) in covered


@pytest.mark.parametrize("path, value", [(path, v) for path, f, kind in settings_of(TrainConfig)
                                         if isinstance(f.metadata.get("check"), Interval)
                                         for v in outside(f.metadata["check"], kind)[:1]
                                         if f.metadata["check"].low is not None])
def test_make_config_refuses_a_value_out_of_range_by_its_path(path, value):
    with pytest.raises(SettingError) as exc:
        make_config("paper", **{"model.readout": {}, path: value})
    assert exc.value.field == path and "\n" not in str(exc.value)


def test_unconstrained_settings_are_still_refused():
    config = all_on(LoraSettings)
    config.target_modules = ()
    with pytest.raises(SettingError, match="^target_modules must be a non-empty list"):
        config.validate()
    for cls, name in ((TrainConfig, "class_weight"), (FusionConfig, "use_gating"), (TrainConfig, "profile")):
        with pytest.raises(AlfiaError, match=rf"{cls.__name__}\.{name} = 3 has the wrong type") as exc:
            config_from_dict(cls, {**cls().to_dict(), name: 3}, "test settings")
        assert "\n" not in str(exc.value)


# -- numbers ---------------------------------------------------------------------------------------------------
def test_numpy_numbers_are_numbers_and_bools_are_not():
    assert is_integral(3) and is_integral(np.int64(3)) and is_integral(np.uint8(3))
    assert not is_integral(True) and not is_integral(np.bool_(True)) and not is_integral(3.0)
    assert is_real(0.1) and is_real(3) and is_real(np.float32(0.5)) and is_real(np.int64(3))
    assert not is_real(True) and not is_real("0.1") and not is_real(None)
    positive = Interval(int, 1)
    assert positive.problem(np.int64(3)) is None and positive.problem(np.int64(0)) == "must be at least 1, got 0"
    assert positive.problem(True) == "must be a whole number, got True"
    assert Interval(float, 0, 1).problem(np.float64(0.5)) is None
    assert Interval(float, 0, 1).problem(False) == "must be a number, got False"


def test_numpy_numbers_are_accepted_and_kept_as_plain_python_numbers():
    config = make_config("quick", epochs=np.int64(3), lr=np.float64(0.001), **{"model.lora.r": np.int32(4)})
    assert (config.epochs, config.lr, config.model.lora.r) == (3, 0.001, 4)
    assert type(config.epochs) is int and type(config.lr) is float and type(config.model.lora.r) is int
    json.dumps(config.to_dict())   # the run's config.json
    lora = LoraSettings(r=np.int64(8), dropout=np.float32(0.25))
    assert lora.validate().to_dict()["r"] == 8 and type(lora.to_dict()["r"]) is int
    assert type(lora.to_dict()["dropout"]) is float
    with pytest.raises(AlfiaError, match=r"TrainConfig\.epochs = True has the wrong type"):
        make_config("quick", epochs=True)
    with pytest.raises(AlfiaError, match=r"TrainConfig\.lr = True has the wrong type"):
        make_config("quick", lr=True)
    with pytest.raises(AlfiaError, match=r"TrainConfig\.epochs = 2\.5 has the wrong type"):
        make_config("quick", epochs=2.5)
    assert plain((np.int64(1), 2.5, "x")) == (1, 2.5, "x") and plain(None) is None and plain(True) is True
    assert make_config("quick", lr=1).lr == 1 and type(make_config("quick", lr=1).lr) is int  # as before


# -- to_dict / from_dict -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CONFIGS)
def test_to_dict_and_from_dict_round_trip(cls):
    config = all_on(cls)
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data   # JSON-ready: nested configs as dicts, tuples as lists
    assert cls.from_dict(data) == config
    assert cls.from_dict(json.loads(json.dumps(data))) == config


def test_from_dict_refuses_unknown_missing_and_wrong_fields_in_one_line():
    data = LoraSettings().to_dict()
    for bad, message in (({**data, "rank": 4}, "unknown LoraSettings field(s) rank; it was written by another "
                                               "ALFIA version, save it again"),
                         ({k: v for k, v in data.items() if k != "r"}, None),
                         ({**data, "r": "16"}, "LoraSettings.r = '16' has the wrong type"),
                         ({**data, "target_modules": ["q", 3]}, "LoraSettings.target_modules"),
                         ("not a dict", "LoraSettings must be an object, got str")):
        try:
            result = LoraSettings.from_dict(bad, "lora.json")
        except AlfiaError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("lora.json: ")
            assert message is None or message in str(exc)
        else:   # a missing field with a default takes the default
            assert message is None and result == LoraSettings()
    with pytest.raises(AlfiaError, match=r"incomplete"):
        config_from_dict(_Required, {}, "required.json")
    nested = TrainConfig().to_dict()
    nested["model"]["fusion"]["num_heads"] = "4"
    with pytest.raises(AlfiaError, match=r"\[model\] \[fusion\]: FusionConfig\.num_heads = '4' has the wrong type"):
        TrainConfig.from_dict(nested, "config.json")


@dataclasses.dataclass
class _Required(Config):
    name: str


def test_optional_parts_none_and_nested_dicts():
    data = TrainConfig().to_dict()
    data["model"]["lora"] = None
    assert TrainConfig.from_dict(data).model.lora is None
    assert TrainConfig.from_dict(data).to_dict()["model"]["lora"] is None


# -- constraints ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check, described", [
    (Interval(int, 1), "at least 1"), (Interval(float, 0, closed="neither"), "positive"),
    (Interval(float, 0), "zero or more"), (Interval(float, 0, 1), "in [0, 1]"),
    (Interval(float, 0, 1, closed="left"), "in [0, 1)"), (Interval(float, 0, 1, closed="right"), "in (0, 1]"),
    (Interval(float, None, 5), "at most 5"), (Interval(float, None, 5, closed="neither"), "below 5"),
    (Interval(float, 2, closed="right"), "above 2")])
def test_interval_describes_itself_and_checks_both_ends(check, described):
    assert check.describe() == described
    for value, inside in ((check.low, check.closed in ("both", "left")), (check.high, check.closed in ("both",
                                                                                                        "right"))):
        if value is not None:
            assert (check.problem(value) is None) == inside
            assert (check.problem(value) or "").endswith("" if inside else f"must be {described}, got {value!r}")


def test_one_of():
    check = OneOf(("a", "b"))
    assert check.problem("a") is None and check.problem("c") == "must be one of a, b, got 'c'"


def test_settings_of_walks_nested_configs_and_flatten_names_paths():
    paths = [path for path, _, _ in settings_of(TrainConfig)]
    assert "model.lora.r" in paths and "model.fusion.num_fusion_layers" in paths and "epochs" in paths
    assert paths.index("model") < paths.index("model.lora") < paths.index("model.lora.r")
    kinds = {path: kind for path, _, kind in settings_of(TrainConfig)}
    assert kinds["model.lora.layers"] is int and kinds["model.lora"] is LoraSettings and kinds["lr"] is float
    assert flatten({"model": {"lora": {"r": 8}, "max_length": None}, "epochs": 2}) == {
        "model.lora.r": 8, "model.max_length": None, "epochs": 2}
