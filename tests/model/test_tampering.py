"""A saved model folder records the SHA-256 of every file at save time; a tampered folder is refused at load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from alfia.errors import AlfiaError
from alfia.model import ALFIA, ALFIAConfig, FusionConfig, LoraSettings, serialization


@pytest.fixture(scope="module")
def saved(tiny_bert_dir, tmp_path_factory):
    torch.manual_seed(0)
    config = ALFIAConfig(backbone=str(tiny_bert_dir), fusion=FusionConfig(num_fusion_layers=2),
                         lora=LoraSettings(r=4, alpha=8), max_length=32)
    folder = tmp_path_factory.mktemp("tamper") / "model"
    ALFIA(config).save(folder)
    return folder


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # inside the last tensor's data: the file still parses, the weights differ
    path.write_bytes(bytes(data))


def _wrong_shape(path):
    state = load_file(str(path))
    name = next(iter(state))
    state[name] = torch.zeros(*[d + 1 for d in state[name].shape])
    save_file(state, str(path))


DAMAGE = {
    "changed bytes (same size)": lambda m: _flip_last_byte(m / "head" / "model.safetensors"),
    "truncated weights": lambda m: (m / "fusion" / "model.safetensors").write_bytes(
        (m / "fusion" / "model.safetensors").read_bytes()[:-64]),
    "wrong shape": lambda m: _wrong_shape(m / "head" / "model.safetensors"),
    "changed adapter": lambda m: _flip_last_byte(m / "adapter" / "adapter_model.safetensors"),
    "changed tokenizer": lambda m: (m / "tokenizer" / "tokenizer.json").write_text(
        (m / "tokenizer" / "tokenizer.json").read_text().replace("sepsis", "sepsys")),
    "changed config": lambda m: (m / "config.json").write_text(
        (m / "config.json").read_text().replace('"max_length": 32', '"max_length": 31')),
    "added file": lambda m: (m / "adapter" / "extra.bin").write_bytes(b"\x80\x04K\x01."),
    "digests removed": lambda m: (m / serialization.DIGESTS_NAME).unlink(),
    "digests garbled": lambda m: (m / serialization.DIGESTS_NAME).write_text("{"),
}


def test_untouched_folder_loads_and_records_every_file(saved):
    recorded = json.loads((saved / serialization.DIGESTS_NAME).read_text())["sha256"]
    assert {"config.json", "head/model.safetensors", "fusion/model.safetensors",
            "adapter/adapter_model.safetensors"} <= set(recorded)
    ALFIA.load(saved)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_tampered_model_folder_is_refused_with_one_clear_line(saved, tmp_path, damage):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    DAMAGE[damage](folder)
    with pytest.raises(AlfiaError) as info:
        ALFIA.load(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    assert ("refusing the model folder" in message or "sha256.json" in message), message


def test_a_folder_of_the_wrong_part_is_refused_naming_the_part_in_words(saved, tmp_path):
    """Every saved part (model, fusion, head, readout) has a name the refusals use, not its raw kind."""
    def parts(cls):
        return {cls, *(p for sub in cls.__subclasses__() for p in parts(sub))}

    kinds = {cls.config_kind for cls in parts(serialization.SavedModule) if hasattr(cls, "config_kind")}
    assert {"alfia.fusion", "alfia.head", "alfia.readout"} <= kinds
    for kind in kinds:
        with pytest.raises(AlfiaError, match="does not describe a saved ALFIA ") as exc:
            serialization.read_config(saved, kind)   # the model's folder, read as another part
        assert f"saved {kind} " not in str(exc.value)
