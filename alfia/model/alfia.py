"""The ALFIA model (paper Algorithm 1): backbone (+ LoRA) -> top N_f hidden states -> ALF -> ACH -> one logit.

One definition serves training (``forward``, or ``top_hidden_states`` + ``from_hidden_states`` when the lower
layers are cached) and inference; the loop that scores texts in batches (``predict_proba``, ``embed``: Algorithm
2, and the int8 CPU copy) is :mod:`alfia.model.scoring`.

A saved model is a folder::

    config.json          kind "alfia.model": the ALFIAConfig, the backbone's shape, library versions
    fusion/              config.json + model.safetensors of the ALF module
    head/                config.json + model.safetensors of the ACH module
    adapter/             the LoRA adapter as written by peft (adapter_config.json, adapter_model.safetensors)
    tokenizer/           the backbone's tokenizer

The backbone's base weights are not copied: ``config.json`` refers to it by name (the default MiniLM, a hub
name in the local cache) or by absolute directory, and records its type and shape, checked on load.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from alfia.codec import DROPOUT, Config, Interval, OneOf, setting
from alfia.errors import AlfiaError
from alfia.io import replace_folder
from alfia.model import scoring, serialization
from alfia.model.backbone import (
    ATTN_IMPLEMENTATIONS,
    BACKBONE_HELP,
    DEFAULT_BACKBONE,
    load_backbone,
    load_tokenizer,
)
from alfia.model.catalogue import named_backbone
from alfia.model.families import Family, family_of
from alfia.model.fusion import AdaptiveLayerFusion, FusionConfig, fusion_class
from alfia.model.head import AttentionalClassifierHead, HeadConfig
from alfia.model.lora import LoraSettings, apply_lora, freeze, lora_target_names, num_layers_of
from alfia.model.readout import PooledReadout, ReadoutConfig
from alfia.model.runtime import (
    WEIGHT_DTYPES,
    Precision,
    resolve_device,
    resolve_precision,
    use_device,
    weight_dtype,
)

_BACKBONE_INFO_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


def backbone_reference(name: str | os.PathLike | None) -> str:
    """What a saved model records as its backbone: a catalogue name (the default's when None; found in each
    machine's own install), an absolute directory, or a hub name."""
    named = named_backbone("default" if name is None else name)
    if named is not None:
        return named.name
    path = Path(name)
    return str(path.resolve()) if path.exists() else str(name)


@dataclass
class ALFIAConfig(Config):
    """Everything needed to rebuild an ALFIA model; ``lora=None`` freezes the backbone (fusion + head only).

    ``fusion.hidden_size`` / ``head.hidden_size`` may stay ``None``: they are taken from the backbone.
    ``max_length`` is the tokenizer's truncation length (L_max), capped by the tokenizer's own maximum; ``None``:
    the tokenizer's maximum, capped at 512 (batches are padded to their own longest text, so the headroom costs
    nothing). ``backbone_dropout``: the backbone's attention and hidden dropout (``None``: its own; 0 halves a CPU
    training step with LoRA). ``readout``: the optional pooled linear readout added to the head's logit
    (:mod:`alfia.model.readout`). ``dtype``: the backbone's weights (fp32, bf16 or fp16), whatever dtype its
    checkpoint was saved in; the fusion, head and readout keep fp32 weights (:mod:`alfia.model.runtime`).
    """

    backbone: str = setting(DEFAULT_BACKBONE, help=f"{BACKBONE_HELP} (default: the packaged {DEFAULT_BACKBONE})",
                            flag="--backbone")
    fusion: FusionConfig = setting(default_factory=FusionConfig, help="the Adaptive Layer Fusion module")
    head: HeadConfig = setting(default_factory=HeadConfig, help="the Attentional Classifier Head")
    lora: LoraSettings | None = setting(default_factory=LoraSettings, help="LoRA adapters (None: a frozen backbone)")
    max_length: int | None = setting(512, help="tokens per text (default: the profile's; quick: the backbone's "
                                     "maximum, capped at 512)", flag="--max-length", check=Interval(int, 2))
    attn_implementation: str = setting("auto", help="the backbone's attention: auto (SDPA where the family has it, "
                                       "else eager; default), sdpa or eager", flag="--attn-implementation",
                                       check=OneOf(ATTN_IMPLEMENTATIONS))
    readout: ReadoutConfig | None = setting(None, help="the pooled logistic-regression readout (None: none)")
    backbone_dropout: float | None = setting(None, help="the backbone's own attention and hidden dropout (unset: "
                                             "its own)", check=DROPOUT)
    dtype: str = setting("fp32", help="the backbone's weights in memory (default fp32, whatever dtype the checkpoint "
                         "was saved in)", flag="--dtype", check=OneOf(tuple(WEIGHT_DTYPES)))


class ALFIAOutput(NamedTuple):
    logits: torch.Tensor          # [B], one logit per text (P(death) = sigmoid(logit))
    embedding: torch.Tensor       # H_ALF_out, [B, H]
    layer_weights: torch.Tensor   # lambda, [B, N_f]
    token_weights: torch.Tensor   # beta, [B, T]
    layer_means: torch.Tensor | None = None   # s_j of eq. 2, [B, N_f, H] (the readout's input)


class ALFIA(nn.Module):
    """Backbone (optionally with LoRA) + :class:`AdaptiveLayerFusion` + :class:`AttentionalClassifierHead`.

    ``backbone`` / ``tokenizer`` may be passed already loaded (they must be what ``config.backbone`` names);
    otherwise they are loaded from local files. Attributes: ``backbone`` (a peft ``PeftModel`` with LoRA,
    else the frozen HF model), ``fusion``, ``head``, ``tokenizer``, ``config``.
    """

    config_kind = "alfia.model"

    def __init__(self, config: ALFIAConfig, *, backbone: nn.Module | None = None, tokenizer=None):
        super().__init__()
        config.validate("model.")
        config = dataclasses.replace(config, backbone=backbone_reference(config.backbone))
        dtype = weight_dtype(config.dtype)
        base = backbone.to(dtype) if backbone is not None else load_backbone(
            config.backbone, attn_implementation=config.attn_implementation, dtype=dtype)
        self.family: Family = family_of(base.config)
        num_layers, hidden = num_layers_of(base), int(base.config.hidden_size)
        if len(self.family.layers(base)) != num_layers:   # a variant of the family that ALFIA cannot run
            raise AlfiaError(f"backbone {config.backbone!r} has {len(self.family.layers(base))} layer modules "
                             f"where its config says {num_layers}; ALFIA expects {self.family.describe()}")
        if config.backbone_dropout is not None:  # attention and hidden dropout of the backbone (before LoRA)
            for module in base.modules():
                if isinstance(module, nn.Dropout):
                    module.p = config.backbone_dropout
        n_f = config.fusion.num_fusion_layers
        if not isinstance(n_f, int) or n_f < 1 or n_f > num_layers:
            raise AlfiaError(f"cannot fuse the top {n_f} layers: the backbone {config.backbone!r} has "
                             f"{num_layers} layers; set num_fusion_layers between 1 and {num_layers}")
        fusion_config, head_config = self._sized(config.fusion, hidden, "fusion"), \
            self._sized(config.head, hidden, "head")
        readout_config = None
        if config.readout is not None:
            readout_config = self._sized(config.readout, hidden, "readout")
            if readout_config.num_layers is None:
                readout_config = dataclasses.replace(readout_config, num_layers=n_f)
            elif readout_config.num_layers != n_f:
                raise AlfiaError(f"readout num_layers {readout_config.num_layers} does not match the "
                                 f"{n_f} fused layers; leave it unset")
        lora = config.lora
        if lora is not None and lora.target_modules is None:   # saved as resolved: the modules that carry LoRA
            lora = dataclasses.replace(lora, target_modules=self.family.lora_targets)
        config = dataclasses.replace(config, fusion=fusion_config, head=head_config, readout=readout_config,
                                     lora=lora)
        self.config = config
        self.backbone_info = {k: getattr(base.config, k, None) for k in _BACKBONE_INFO_KEYS}
        # built before LoRA touches the backbone, so that a bad head/fusion config fails without side effects
        fusion = fusion_class(fusion_config.kind)(fusion_config)   # ALF, or the ablation's mean pooling
        head = AttentionalClassifierHead(head_config)
        readout = None if readout_config is None else PooledReadout(readout_config)
        if readout is not None:  # the model starts at the readout: the head's share of the logit starts at 0
            nn.init.zeros_(head.output.weight)
            nn.init.zeros_(head.output.bias)
        if config.lora is not None:
            self.backbone = apply_lora(base, config.lora, self.family)
        else:
            self.backbone = freeze(base)
            self.backbone.eval()
        self.fusion = fusion
        self.head = head
        self.readout = readout
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.backbone)
        limit = getattr(self.tokenizer, "model_max_length", None)
        limit = limit if isinstance(limit, int) and limit > 1 else None
        if config.max_length is None:  # the tokenizer's maximum, capped at 512; saved as the number it resolved to
            self.config = dataclasses.replace(self.config, max_length=min(limit or 512, 512))
        self.max_length = min(self.config.max_length, limit) if limit else self.config.max_length
        self.precision = Precision()   # fp32 until the caller chooses (:meth:`to_runtime`)

    def to_runtime(self, device: str | torch.device | None = "auto", precision: str | None = "auto") -> ALFIA:
        """Move the model to ``device`` and compute in ``precision`` from now on (see :mod:`alfia.model.runtime`):
        inference, validation and training all autocast the same way."""
        device = use_device(resolve_device(device))
        self.precision = resolve_precision(precision, device).apply()
        return self.to(device)

    @property
    def backbone_dtype(self) -> torch.dtype:
        return weight_dtype(self.config.dtype)

    @staticmethod
    def _sized(part, hidden: int, what: str):
        if part.hidden_size is None:
            return dataclasses.replace(part, hidden_size=hidden)
        if part.hidden_size != hidden:
            raise AlfiaError(f"{what} hidden_size {part.hidden_size} does not match the backbone's {hidden}; "
                             "leave it unset")
        return part

    # -- structure ------------------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return int(self.backbone_info["num_hidden_layers"])

    @property
    def num_frozen_layers(self) -> int:
        """How many bottom layers carry no LoRA (their outputs do not change during training)."""
        lora = self.config.lora
        if lora is None:
            return self.num_layers
        return 0 if lora.layers is None else self.num_layers - lora.layers

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the backbone's activations during backward instead of keeping them (the backbone's own
        mechanism, non-reentrant so that gradients reach LoRA behind frozen embeddings): much less GPU memory for a
        large backbone with LoRA, about a third more compute."""
        base = self.base_model()
        if not getattr(base, "supports_gradient_checkpointing", False):
            raise AlfiaError(f"{type(base).__name__} does not support gradient checkpointing; train without it")
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def lora_modules(self) -> list[str]:
        """Backbone modules carrying LoRA adapters (empty without LoRA)."""
        return lora_target_names(self.backbone) if self.config.lora is not None else []

    def train(self, mode: bool = True) -> ALFIA:
        super().train(mode)
        if self.config.lora is None:   # a fully frozen backbone is a fixed feature extractor: no dropout
            self.backbone.eval()
        elif mode and self.num_frozen_layers:
            # the bottom layers without LoRA are a fixed feature extractor too (no dropout), so that their
            # outputs can be cached once per text: training from a cache is then the same computation
            base = self.base_model()
            base.embeddings.eval()
            for layer in self._layers()[:self.num_frozen_layers]:
                layer.eval()
        return self

    # -- frozen prefix (the bottom layers without LoRA never change during training) --------------------------
    def base_model(self) -> nn.Module:
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    def _layers(self) -> Sequence[nn.Module]:
        """The module of each backbone layer, bottom first."""
        return self.family.layers(self.base_model())

    def prefix_indices(self) -> list[int]:
        """Hidden-state indices (0 = embeddings) that a cache must hold: the input of the first trainable
        layer and every fused layer at or below it."""
        p = self.num_frozen_layers
        return sorted({p, *[j for j in self._fused_indices() if j <= p]})

    def _fused_indices(self) -> list[int]:
        return list(range(self.num_layers - self.config.fusion.num_fusion_layers + 1, self.num_layers + 1))

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      indices: set[int]) -> dict[int, torch.Tensor]:
        """The backbone's hidden states at ``indices`` (0: the embedding output H^(0); l: layer l's output; L: the
        backbone's ``last_hidden_state``), run layer by layer up to the highest index; only those are kept."""
        base = self.base_model()
        hidden = self.family.embed(base, input_ids, attention_mask)
        return self.family.hidden_states(base, hidden, attention_mask, 0, set(indices))

    @torch.no_grad()
    def frozen_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[int, torch.Tensor]:
        """The hidden states of :meth:`prefix_indices`, computed once by the frozen bottom layers."""
        base = self.base_model()
        modes = [(m, m.training) for m in base.modules()]   # restored one by one: base.train(True) would also
        base.eval()                                            # switch the frozen layers back to training mode
        try:
            return self.hidden_states(input_ids, attention_mask, set(self.prefix_indices()))
        finally:
            for module, mode in modes:
                module.training = mode

    def forward_from_prefix(self, prefix: dict[int, torch.Tensor], attention_mask: torch.Tensor) -> ALFIAOutput:
        """The same output as :meth:`forward`, from cached bottom-layer states: only the trainable top layers,
        the fusion and the head run."""
        p, fused = self.num_frozen_layers, self._fused_indices()
        states = dict(prefix)
        states.update(self.family.hidden_states(self.base_model(), prefix[p], attention_mask, p,
                                                {p, *[j for j in fused if j > p]}))
        return self.from_hidden_states([states[j] for j in fused], attention_mask)

    # -- forward --------------------------------------------------------------------------------------------
    def top_hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the backbone; return ``H^(L-N_f+1) .. H^(L)`` (lowest first), each ``[B, T, H]``."""
        fused = self._fused_indices()
        states = self.hidden_states(input_ids, attention_mask, set(fused))
        return tuple(states[j] for j in fused)

    def from_hidden_states(self, hidden_states: torch.Tensor | Sequence[torch.Tensor],
                           attention_mask: torch.Tensor) -> ALFIAOutput:
        """Fusion + head (+ readout) on the top N_f hidden states (live or cached). The states are read in the
        dtype of the fusion and head weights (fp32): a bf16 or fp16 backbone never meets fp32 weights in one matmul;
        under autocast the fusion's matmuls still run in the autocast dtype."""
        dtype = next(self.head.parameters()).dtype
        if isinstance(hidden_states, torch.Tensor):
            hidden_states = hidden_states.to(dtype)
        else:
            hidden_states = [h.to(dtype) for h in hidden_states]
        fused = self.fusion(hidden_states, attention_mask)
        logits = self.head(fused.embedding)
        layer_means = None
        if self.readout is not None:  # it reads eq. 2's layer means, which the fusion computed already
            layer_means = fused.layer_means
            logits = logits + self.readout(layer_means)
        return ALFIAOutput(logits, fused.embedding, fused.layer_weights, fused.token_weights, layer_means)

    def forward(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                prefix: dict[int, torch.Tensor] | None = None) -> ALFIAOutput:
        """From token ids, or from cached bottom-layer states (``prefix``, see :meth:`frozen_prefix`).

        Under autocast, the frozen bottom layers' states cross into the layers above in the autocast dtype, as a
        cache of them holds them (:mod:`alfia.training.prefix_cache`): from token ids or from a cache, one
        computation (validation scored from the cache and the test split scored live meet one threshold and one
        calibrator). Without autocast nothing is rounded."""
        if prefix is None and self.num_frozen_layers > 0 and torch.is_autocast_enabled(self.device.type):
            dtype = torch.get_autocast_dtype(self.device.type)
            states = self.hidden_states(input_ids, attention_mask, set(self.prefix_indices()))
            prefix = {j: h.to(dtype) for j, h in states.items()}
        if prefix is not None:
            return self.forward_from_prefix(prefix, attention_mask)
        return self.from_hidden_states(self.top_hidden_states(input_ids, attention_mask), attention_mask)

    # -- inference (Algorithm 2) ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise with dynamic padding (to the longest text of ``texts``), truncating at ``max_length``."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32, quantize: bool = False) -> np.ndarray:
        """P(in-hospital death) for each text, float64 ``[N]``, in the order of ``texts``; ``quantize``: the int8
        CPU copy (:func:`alfia.model.scoring.predict_proba`, where the scoring loop lives)."""
        return scoring.predict_proba(self, texts, batch_size, quantize)

    def embed(self, texts: Sequence[str], batch_size: int = 32,
              quantize: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Algorithm 2: L2-normalised ALF embeddings ``[N, H]`` and layer weights lambda ``[N, N_f]``
        (:func:`alfia.model.scoring.embed`)."""
        return scoring.embed(self, texts, batch_size, quantize)

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write the model folder (layout in the module docstring). The folder is written beside ``directory``
        and renamed into place; an existing ALFIA model folder there is replaced, anything else is refused."""
        directory = Path(directory)
        if directory.exists():
            if not directory.is_dir():
                raise AlfiaError(f"{directory} exists and is not a folder; choose another model folder")
            if any(directory.iterdir()):
                try:
                    serialization.read_config(directory, self.config_kind)
                except AlfiaError:
                    raise AlfiaError(f"{directory} is not empty and not a saved ALFIA model; refusing to "
                                     "overwrite it, choose a new folder") from None
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
        try:
            self._write(tmp)
            replace_folder(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, directory: Path) -> None:
        config = self.config.to_dict()
        config["backbone_info"] = self.backbone_info
        self.fusion.save(directory / "fusion")
        self.head.save(directory / "head")
        if self.readout is not None:
            self.readout.save(directory / "readout")
        if self.config.lora is not None:
            self.backbone.save_pretrained(str(directory / "adapter"), safe_serialization=True)
            # peft also writes a model card; the folder stays small and self-describing without it
            (directory / "adapter" / "README.md").unlink(missing_ok=True)
        self.tokenizer.save_pretrained(str(directory / "tokenizer"))
        serialization.write_config(directory, self.config_kind, config)
        serialization.write_digests(directory)   # last: marks the folder complete

    @classmethod
    def read_config(cls, directory: str | os.PathLike) -> tuple[ALFIAConfig, dict | None]:
        """The saved model's config and the backbone shape it recorded, without loading any weights."""
        data = dict(serialization.read_config(directory, cls.config_kind))
        saved_info = data.pop("backbone_info", None)
        return ALFIAConfig.from_dict(data, f"{Path(directory) / serialization.CONFIG_NAME}"), saved_info

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str | torch.device | None = "auto",
             precision: str | None = "auto", attn_implementation: str | None = None,
             max_length: int | None = None) -> ALFIA:
        """Rebuild a model saved by :meth:`save` (in eval mode); any missing or damaged part is an AlfiaError.
        ``device`` / ``precision``: where and how it computes (:mod:`alfia.model.runtime`; ``auto``: the GPU when
        there is one, else the CPU in fp32). ``attn_implementation`` / ``max_length`` override the saved settings
        (the benchmark's reference runs the same weights with eager attention, padded to 512 tokens)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise AlfiaError(f"model folder {directory} does not exist; pass the folder written by training")
        serialization.read_config(directory, cls.config_kind)  # "not a model folder" before "digests missing"
        serialization.verify_digests(directory)
        where = f"{directory / serialization.CONFIG_NAME}"
        config, saved_info = cls.read_config(directory)
        overrides = {k: v for k, v in (("attn_implementation", attn_implementation), ("max_length", max_length))
                     if v is not None}
        if overrides:
            config = dataclasses.replace(config, **overrides)
        required = ["fusion/config.json", "fusion/model.safetensors", "head/config.json", "head/model.safetensors",
                    "tokenizer"]
        if config.lora is not None:
            required += ["adapter/adapter_config.json", "adapter/adapter_model.safetensors"]
        if config.readout is not None:
            required += ["readout/config.json", "readout/model.safetensors"]
        for rel in required:
            if not (directory / rel).exists():
                raise AlfiaError(f"{directory / rel} is missing; the model folder {directory} is incomplete, "
                                 "save or train it again")
        parts = [("fusion", AdaptiveLayerFusion), ("head", AttentionalClassifierHead)]
        parts += [("readout", PooledReadout)] if config.readout is not None else []
        for part, sub in parts:
            saved = serialization.read_config(directory / part, sub.config_kind)
            saved = {**sub.config_class().to_dict(), **saved}   # a setting added since it was saved: its default
            if saved != getattr(config, part).to_dict():
                raise AlfiaError(f"{directory / part / serialization.CONFIG_NAME} disagrees with {where}; "
                                 "the model folder is inconsistent, save it again")
        tokenizer = _load_saved_tokenizer(directory / "tokenizer")
        backbone = load_backbone(config.backbone, attn_implementation=config.attn_implementation,
                                 dtype=weight_dtype(config.dtype))
        info = {k: getattr(backbone.config, k, None) for k in _BACKBONE_INFO_KEYS}
        if saved_info is not None and saved_info != info:
            raise AlfiaError(f"backbone {config.backbone!r} is not the one this model was trained on "
                             f"(saved {saved_info}, found {info}); restore that backbone")
        model = cls(config, backbone=backbone, tokenizer=tokenizer)
        model.load_trained_weights(directory)
        return model.to_runtime(device, precision).eval()

    def load_trained_weights(self, directory: str | os.PathLike) -> None:
        """The trained parts (fusion, head, readout, LoRA adapter) of the saved model in ``directory``, into this
        model of the same config, wherever it lives."""
        directory = Path(directory)
        serialization.load_weights(directory / "fusion", self.fusion)
        serialization.load_weights(directory / "head", self.head)
        if self.readout is not None:
            serialization.load_weights(directory / "readout", self.readout)
        if self.config.lora is not None:
            _load_adapter(self.backbone, directory / "adapter")


def _load_saved_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises several types for a damaged tokenizer folder
        raise AlfiaError(f"cannot load the tokenizer saved in {path} ({type(exc).__name__}); the model folder "
                         "is damaged, save it again") from None


def _load_adapter(peft_model, path: Path) -> None:
    """Load the LoRA weights strictly: exactly the adapter tensors this model has, with the same shapes."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    file = path / "adapter_model.safetensors"
    try:
        state = load_file(str(file))
    except Exception as exc:  # safetensors' own error types for truncated or corrupted files
        raise AlfiaError(f"cannot read {file} ({type(exc).__name__}: {exc}); the adapter is corrupted, "
                         "save the model again") from None
    expected = get_peft_model_state_dict(peft_model)
    bad = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if set(state) != set(expected) or bad:
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise AlfiaError(f"{file} does not match the model's LoRA settings (missing {missing[:2]}, unexpected "
                         f"{extra[:2]}, wrong shape {bad[:2]}); save the model again")
    set_peft_model_state_dict(peft_model, state)
