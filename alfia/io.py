"""Small file helpers shared by every command: atomic writes, so a failed command leaves no partial file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from alfia.errors import AlfiaError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed onto ``path``, on
    error removed.

    What the user already had at ``path`` stays untouched until the new file is complete: a command killed at
    any moment (SIGKILL included) leaves either the old file or the new one, never a half-written one under that
    name. A write that fails for lack of space or permission is one AlfiaError line.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AlfiaError(f"cannot write {path} ({exc.strerror or exc}); choose another location") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
    except OSError as exc:
        raise AlfiaError(f"cannot write {path} ({exc.strerror or type(exc).__name__}); free some space or choose "
                         "another location -- what was there before is kept") from None
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Make the new file's bytes durable before it replaces the old one (a power cut then leaves either)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def previous_folder(final: str | os.PathLike) -> Path:
    """Where :func:`replace_folder` keeps the previous ``final`` while it renames the new one into place
    (``.<name>.old`` beside it): after a kill between the two renames, the complete copy is there."""
    final = Path(final)
    return final.parent / f".{final.name}.old"


def replace_folder(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Replace the folder ``final`` by the complete folder ``tmp`` (beside it) with renames only: a kill at any
    moment leaves a complete ``final`` or a complete :func:`previous_folder` beside it, never a half-written
    ``final``. Model folders and training checkpoints are written this way."""
    import shutil

    tmp, final = Path(tmp), Path(final)
    old = previous_folder(final)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def metrics_path(predictions: str | Path) -> Path:
    """Where the metrics of a predictions file lie, beside it: ``NAME.predictions.parquet`` (the study's
    ``p12-b.predictions.parquet``), ``NAME.parquet`` or ``NAME.csv`` -> ``NAME.metrics.json``."""
    path = Path(predictions)
    stem = path.name.removesuffix(".parquet").removesuffix(".csv").removesuffix(".predictions")
    return path.with_name(f"{stem}.metrics.json")
