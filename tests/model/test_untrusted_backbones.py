"""Backbones are untrusted files: pickled weights are never read and a model's own Python code never runs."""

from __future__ import annotations

import json
import shutil

import pytest

from alfia.errors import AlfiaError
from alfia.model.backbone import load_backbone, load_tokenizer


def test_a_pickled_backbone_is_refused(tiny_bert_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "model.safetensors").unlink()
    torch.save(load_file(str(tiny_bert_dir / "model.safetensors")), folder / "pytorch_model.bin")
    with pytest.raises(AlfiaError, match="cannot load backbone") as info:
        load_backbone(folder)
    assert "\n" not in str(info.value)


def test_remote_code_is_never_trusted(tiny_bert_dir, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_bert_dir, folder)
    marker = tmp_path / "code-ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n"
                                    "from transformers import BertConfig as EvilConfig\n"
                                    "from transformers import BertModel as EvilModel\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        load_backbone(folder)
    except AlfiaError as exc:
        assert "\n" not in str(exc)
    load_tokenizer(folder)
    assert not marker.exists()
