"""Encoder families: how ALFIA finds and runs the layers of each kind of HuggingFace encoder, and which of its
modules carry LoRA. One entry per family, keyed by ``config.model_type`` (in the spirit of peft's
``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``, which lacks several of these families).

ALFIA runs the backbone itself, layer by layer (:meth:`Family.hidden_states`), instead of calling the HF model with
``output_hidden_states=True``: it keeps only the hidden states it needs (the N_f fused layers, or the frozen
layers' cache) and can start from a cached state in the middle of the stack. Each family says

- where the layer list lives (``layers_path``) and how the embedding output H^(0) is made (:meth:`Family.embed`:
  ELECTRA and ALBERT project their embeddings to the hidden size, DeBERTa multiplies them by the mask);
- what one layer call needs besides the hidden states (:meth:`Family.context`: the attention mask in the form the
  attention implementation wants, MPNet's relative position bias, DeBERTa's relative embeddings, ModernBERT's
  rotary embeddings and its full/sliding-window masks);
- what HF does to the top layer's output before reporting it (:meth:`Family.finish`: Megatron-BERT's and
  ModernBERT's final LayerNorm), so that state L is HF's ``last_hidden_state``;
- its attention projections (``projections``: query, key, value, attention output, each a module path inside a
  layer) and the default LoRA targets (``lora_targets``, peft's suffix match). The targets reproduce what the
  paper's ``query,key,value,output.dense`` selects in BERT in every family: the four attention projections and
  the feed-forward output projection (BERT's ``output.dense`` matches both the attention and the FFN output).

Every family is padded on the right (positions count from the first token) and gets no ``token_type_ids``
(one segment per text: the embeddings' default of zeros, where a family has token types at all).
``tests/model/test_families.py`` checks, for a tiny random model of each family, that these states equal HF's own
``output_hidden_states`` and that LoRA lands on every layer's four projections.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from alfia.errors import AlfiaError, SettingError

logger = logging.getLogger(__name__)

BERT_PROJECTIONS = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                    "attention output": "attention.output.dense"}


def _bidirectional_mask(base: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor):
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=attention_mask)


class Family:
    """BERT and the encoders built like it: ``embeddings`` + ``encoder.layer``, a layer called with the hidden
    states and the attention mask."""

    name = "BERT"
    model_types: tuple[str, ...] = ("bert",)
    layers_path = "encoder.layer"
    projections = BERT_PROJECTIONS
    lora_targets: tuple[str, ...] = ("query", "key", "value", "output.dense")
    shares_layers = False   # ALBERT: one set of weights serves every layer

    def layers(self, base: nn.Module) -> Sequence[nn.Module]:
        """The module that computes layer i (0-based), for each of the ``num_hidden_layers`` layers."""
        try:
            return base.get_submodule(self.layers_path)
        except AttributeError:
            raise AlfiaError(f"this {self.name} backbone ({type(base).__name__}) has no {self.layers_path}; ALFIA "
                             f"expects {self.describe()}") from None

    def embed(self, base: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """H^(0), the input of the first layer."""
        return base.embeddings(input_ids=input_ids)

    def context(self, base: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        """What every layer call of one forward shares (computed once from the shapes and the padding mask)."""
        return {"mask": _bidirectional_mask(base, hidden, attention_mask)}

    def call_layer(self, layer: nn.Module, index: int, hidden: torch.Tensor, context: dict) -> torch.Tensor:
        # the hidden states go first and positionally: the layer's own gradient checkpointing expects them there
        out = layer(hidden, context["mask"])
        return out[0] if isinstance(out, tuple) else out

    def finish(self, base: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """HF's ``last_hidden_state`` from the top layer's output (most families: the output itself)."""
        return hidden

    def hidden_states(self, base: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int,
                      keep: set[int]) -> dict[int, torch.Tensor]:
        """From ``hidden`` = H^(start), run the layers up to the highest index of ``keep`` and return the states of
        ``keep`` (index l: the output of layer l, 1-based; the top one as HF reports it). Only those are kept."""
        stop = max(keep)
        layers = self.layers(base)
        context = self.context(base, hidden, attention_mask)
        states = {start: hidden} if start in keep else {}
        for index in range(start, stop):
            hidden = self.call_layer(layers[index], index, hidden, context)
            if index + 1 == len(layers):
                hidden = self.finish(base, hidden)
            if index + 1 in keep:
                states[index + 1] = hidden
        return states

    def lora_layers(self, num_layers: int, layers_to_transform: list[int] | None) -> list[int]:
        return list(range(num_layers)) if layers_to_transform is None else list(layers_to_transform)

    def describe(self) -> str:
        return f"{self.name} ({', '.join(f'{k} {v}' for k, v in self.projections.items())})"


class Roberta(Family):
    name = "RoBERTa"
    model_types = ("roberta", "xlm-roberta")


class Electra(Family):
    name = "ELECTRA"
    model_types = ("electra",)

    def embed(self, base, input_ids, attention_mask):
        hidden = base.embeddings(input_ids=input_ids)
        project = getattr(base, "embeddings_project", None)   # embedding_size != hidden_size
        return hidden if project is None else project(hidden)


class MegatronBert(Family):
    """Pre-LayerNorm BERT (GatorTron): the encoder's final LayerNorm makes the last hidden state."""

    name = "Megatron-BERT"
    model_types = ("megatron-bert",)

    def finish(self, base, hidden):
        return base.encoder.ln(hidden)


class DistilBert(Family):
    name = "DistilBERT"
    model_types = ("distilbert",)
    layers_path = "transformer.layer"
    projections = {"query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
                   "attention output": "attention.out_lin"}
    lora_targets = ("q_lin", "k_lin", "v_lin", "out_lin", "ffn.lin2")


class DebertaV2(Family):
    """DeBERTa-v2 and -v3: relative position embeddings shared by all layers, a 4-D 0/1 mask, the embeddings
    multiplied by the padding mask, and (some v2 models) a convolution added to the first layer's output."""

    name = "DeBERTa-v2"
    model_types = ("deberta-v2",)
    projections = {"query": "attention.self.query_proj", "key": "attention.self.key_proj",
                   "value": "attention.self.value_proj", "attention output": "attention.output.dense"}
    lora_targets = ("query_proj", "key_proj", "value_proj", "output.dense")

    def embed(self, base, input_ids, attention_mask):
        return base.embeddings(input_ids=input_ids, mask=attention_mask)

    def context(self, base, hidden, attention_mask):
        encoder = base.encoder
        return {"mask": encoder.get_attention_mask(attention_mask), "input_mask": attention_mask,
                "relative_pos": encoder.get_rel_pos(hidden), "rel_embeddings": encoder.get_rel_embedding(),
                "conv": encoder.conv}

    def call_layer(self, layer, index, hidden, context):
        out, _ = layer(hidden, context["mask"], relative_pos=context["relative_pos"],
                       rel_embeddings=context["rel_embeddings"])
        if index == 0 and context["conv"] is not None:
            out = context["conv"](hidden, out, context["input_mask"])
        return out


class MPNet(Family):
    """MPNet: a relative position bias computed once per forward and added in every layer."""

    name = "MPNet"
    model_types = ("mpnet",)
    projections = {"query": "attention.attn.q", "key": "attention.attn.k", "value": "attention.attn.v",
                   "attention output": "attention.attn.o"}
    lora_targets = ("attn.q", "attn.k", "attn.v", "attn.o", "output.dense")

    def context(self, base, hidden, attention_mask):
        return {"mask": _bidirectional_mask(base, hidden, attention_mask),
                "position_bias": base.encoder.compute_position_bias(hidden)}

    def call_layer(self, layer, index, hidden, context):
        return layer(hidden, context["mask"], context["position_bias"])[0]


class ModernBert(Family):
    """ModernBERT: ``layers`` at the top level, rotary embeddings, global and sliding-window attention layers
    (each with its own mask), a final LayerNorm; query, key and value come from one fused projection."""

    name = "ModernBERT"
    model_types = ("modernbert",)
    layers_path = "layers"
    projections = {"query, key, value": "attn.Wqkv", "attention output": "attn.Wo"}
    lora_targets = ("Wqkv", "Wo")   # "Wo" matches the attention output and the MLP's output projection

    def embed(self, base, input_ids, attention_mask):
        return base.embeddings(input_ids=input_ids)

    def context(self, base, hidden, attention_mask):
        from transformers.masking_utils import create_bidirectional_sliding_window_mask

        masks = {"full_attention": _bidirectional_mask(base, hidden, attention_mask),
                 "sliding_attention": create_bidirectional_sliding_window_mask(
                     config=base.config, inputs_embeds=hidden, attention_mask=attention_mask)}
        position_ids = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        rotary = {kind: base.rotary_emb(hidden, position_ids, kind) for kind in set(base.config.layer_types)}
        return {"masks": masks, "rotary": rotary}

    def call_layer(self, layer, index, hidden, context):
        kind = layer.attention_type
        return layer(hidden, attention_mask=context["masks"][kind], position_embeddings=context["rotary"][kind])

    def finish(self, base, hidden):
        return base.final_norm(hidden)


class Albert(Family):
    """ALBERT: embeddings projected to the hidden size; the layers share their weights (by default one layer
    group serves all ``num_hidden_layers`` layers), so LoRA goes on every layer or none."""

    name = "ALBERT"
    model_types = ("albert",)
    layers_path = "encoder.albert_layer_groups"
    projections = {"query": "albert_layers.0.attention.query", "key": "albert_layers.0.attention.key",
                   "value": "albert_layers.0.attention.value", "attention output": "albert_layers.0.attention.dense"}
    lora_targets = ("query", "key", "value", "attention.dense", "ffn_output")
    shares_layers = True

    def layers(self, base):
        config, groups = base.config, base.encoder.albert_layer_groups
        if config.inner_group_num != 1:   # HF would then report a hidden state per inner layer, not per layer
            raise AlfiaError(f"ALBERT with inner_group_num {config.inner_group_num} is not supported (ALFIA "
                             "fuses one hidden state per layer); use a model with inner_group_num 1")
        per_group = config.num_hidden_layers / config.num_hidden_groups
        return [groups[int(i / per_group)] for i in range(config.num_hidden_layers)]

    def embed(self, base, input_ids, attention_mask):
        return base.encoder.embedding_hidden_mapping_in(base.embeddings(input_ids=input_ids))


FAMILIES: tuple[Family, ...] = (Family(), Roberta(), Electra(), MegatronBert(), DistilBert(), DebertaV2(), MPNet(),
                                ModernBert(), Albert())
BY_MODEL_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def family_of(config) -> Family:
    """The family of a backbone config (``config.model_type``); an unknown type is one clear error."""
    model_type = getattr(config, "model_type", None)
    family = BY_MODEL_TYPE.get(model_type)
    if family is None:
        raise AlfiaError(f"backbone model type {model_type!r} is not a supported encoder family; ALFIA runs "
                         f"{', '.join(sorted(BY_MODEL_TYPE))} (docs/model.md)")
    return family


def resolve_attention(config, requested: str) -> str:
    """``auto``: SDPA where the family's HF model has it, else eager (logged); ``sdpa`` where it has none is an
    error."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    supports_sdpa = bool(getattr(MODEL_MAPPING[type(config)], "_supports_sdpa", False))
    family = family_of(config).name
    if requested == "auto":
        if not supports_sdpa:
            logger.info(f"{family} has no SDPA attention in transformers: using eager attention")
        return "sdpa" if supports_sdpa else "eager"
    if requested == "sdpa" and not supports_sdpa:
        raise AlfiaError(f"{family} has no SDPA attention in transformers; use attention implementation "
                         "eager (or auto)")
    return requested


def check_lora_coverage(base: nn.Module, family: Family, targets: Sequence[str], layer_indices: list[int]) -> None:
    """Every adapted layer must carry LoRA on all of its attention projections; otherwise one line that names what
    was found (a family variant whose projections live elsewhere, or targets that miss some of them)."""
    layers = family.layers(base)
    for index in layer_indices:
        found, missing = [], []
        for label, path in family.projections.items():
            try:
                module = layers[index].get_submodule(path)
            except AttributeError:
                raise AlfiaError(f"layer {index} of this {family.name} backbone has no {path}; ALFIA expects "
                                 f"{family.describe()}") from None
            (found if hasattr(module, "lora_A") else missing).append(label)
        if missing:
            raise SettingError("model.lora.target_modules",
                               f"{','.join(targets)} puts LoRA on {', '.join(found) or 'none'} of layer {index}'s "
                               f"attention projections but not on {', '.join(missing)} ({family.describe()}); name "
                               f"all of them, or leave it unset for {','.join(family.lora_targets)}")
