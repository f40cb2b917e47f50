"""Saving and loading the model's parts: a JSON config (with library versions) and safetensors weights.

Every part (fusion module, classifier head, the whole ALFIA model) writes ``config.json`` -- ``{"kind": ...,
"config": {...}, "versions": {...}}`` -- and, where it has weights, ``model.safetensors``. Nothing is ever
pickled. Every problem reading a saved part is one :class:`~alfia.errors.AlfiaError` line.

A whole model folder also holds ``sha256.json``, written last: the SHA-256 of every other file in it. Loading
checks it first, so a file changed, truncated or swapped after saving is refused before any of it is read, and
its digest (:func:`folder_digest`) names exactly these weights in cache keys.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

import torch
from torch import nn

from alfia.errors import AlfiaError
from alfia.io import atomic_path, sha256_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DIGESTS_NAME = "sha256.json"
_KIND_NAMES = {"alfia.model": "ALFIA model", "alfia.fusion": "ALFIA fusion module",
               "alfia.head": "ALFIA classifier head", "alfia.readout": "ALFIA pooled readout"}


def _what(kind: str) -> str:
    return _KIND_NAMES.get(kind, kind)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that define the saved tensors (read from package metadata: no imports)."""
    import alfia

    versions = {"alfia": alfia.__version__, "torch": torch.__version__}
    for package in ("transformers", "peft", "safetensors"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_config(directory: str | os.PathLike, kind: str, config: dict) -> None:
    payload = {"kind": kind, "config": config, "versions": library_versions()}
    with atomic_path(Path(directory) / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_config(directory: str | os.PathLike, kind: str) -> dict:
    """Return the ``config`` dict saved by :func:`write_config` for a part of the given ``kind``."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise AlfiaError(f"{path} is missing; {Path(directory)} is not a saved {_what(kind)} (save it again)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlfiaError(f"{path} is not valid JSON ({exc}); the saved {_what(kind)} is corrupted, save it again") \
            from None
    if not isinstance(payload, dict) or payload.get("kind") != kind or not isinstance(payload.get("config"), dict):
        found = payload.get("kind") if isinstance(payload, dict) else None
        raise AlfiaError(f"{path} does not describe a saved {_what(kind)} (kind={found!r}); point at the right folder")
    return payload["config"]


def save_weights(directory: str | os.PathLike, module: nn.Module, name: str = WEIGHTS_NAME) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    with atomic_path(Path(directory) / name) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})


def load_weights(directory: str | os.PathLike, module: nn.Module, name: str = WEIGHTS_NAME) -> None:
    """Load ``name`` into ``module`` strictly (every tensor present, same shapes, nothing extra)."""
    from safetensors.torch import load_file

    path = Path(directory) / name
    if not path.is_file():
        raise AlfiaError(f"{path} is missing; the saved model is incomplete, save it again")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupted files
        raise AlfiaError(f"cannot read {path} ({type(exc).__name__}: {exc}); the file is corrupted, "
                         "save the model again") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    bad = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or extra or bad:
        detail = "; ".join(p for p in (f"missing {missing[:3]}" if missing else "",
                                       f"unexpected {extra[:3]}" if extra else "",
                                       f"wrong shape {bad[:3]}" if bad else "") if p)
        raise AlfiaError(f"{path} does not match its config.json ({detail}); save the model again")
    module.load_state_dict(state, strict=True)


def _folder_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.name != DIGESTS_NAME)


def write_digests(directory: str | os.PathLike) -> None:
    """Record the SHA-256 of every file under ``directory`` in ``sha256.json`` (call it after the last file)."""
    directory = Path(directory)
    digests = {name: sha256_file(directory / name) for name in _folder_files(directory)}
    with atomic_path(directory / DIGESTS_NAME) as tmp:
        tmp.write_text(json.dumps({"sha256": digests}, indent=2) + "\n", encoding="utf-8")


def verify_digests(directory: str | os.PathLike) -> None:
    """Refuse a folder whose files differ from those recorded by :func:`write_digests` (changed, truncated,
    missing or added): one AlfiaError line naming the first file that differs."""
    directory = Path(directory)
    path = directory / DIGESTS_NAME
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        if not isinstance(recorded, dict):
            raise TypeError("not a mapping")
    except FileNotFoundError:
        raise AlfiaError(f"{path} is missing: the model folder {directory} has no record of its weights' "
                         "digests (saved by an older ALFIA, or altered); train or save it again") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise AlfiaError(f"{path} is unreadable ({type(exc).__name__}); the model folder {directory} is damaged, "
                         "train or save it again") from None
    present = _folder_files(directory)
    for name in sorted(set(recorded) | set(present)):
        if name not in present:
            problem = "is missing"
        elif name not in recorded:
            problem = "was added after saving"
        elif sha256_file(directory / name) != recorded[name]:
            problem = "was changed after saving (its SHA-256 differs from the one recorded)"
        else:
            continue
        raise AlfiaError(f"{directory / name} {problem}; refusing the model folder {directory}: train or save it "
                         "again, or restore the original files")


def folder_digest(directory: str | os.PathLike) -> str:
    """One digest naming every file of a saved model folder (the SHA-256 of its ``sha256.json``)."""
    return sha256_file(Path(directory) / DIGESTS_NAME)


def code_version() -> str:
    """The ALFIA version plus a digest of the model code (``alfia/model/*.py``): part of every cache key, so that
    a code change that alters outputs also invalidates what earlier code cached."""
    import alfia

    digest = hashlib.sha256(alfia.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{alfia.__version__}+{digest.hexdigest()[:12]}"


class SavedModule:
    """Mixin for a module built from one typed config: ``save`` writes ``config.json`` (kind, config, library
    versions) and ``model.safetensors``; ``load`` rebuilds the module from them, strictly. A subclass sets
    ``config_kind`` and ``config_class`` (a dataclass with ``to_dict``/``from_dict``) and keeps ``self.config``."""

    config_kind: str
    config_class: type

    def save(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` (with library versions) and ``model.safetensors`` into ``directory``."""
        os.makedirs(directory, exist_ok=True)
        write_config(directory, self.config_kind, self.config.to_dict())
        save_weights(directory, self)

    @classmethod
    def load(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        config = cls.config_class.from_dict(read_config(directory, cls.config_kind), f"{directory}/{CONFIG_NAME}")
        module = cls(config)
        load_weights(directory, module)
        return module.to(map_location)
