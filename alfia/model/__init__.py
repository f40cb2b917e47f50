"""The ALFIA model: backbone (+ LoRA), Adaptive Layer Fusion, Attentional Classifier Head (paper 2.3)."""

from alfia.model.alfia import ALFIA, ALFIAConfig, ALFIAOutput
from alfia.model.backbone import DEFAULT_BACKBONE, load_backbone, load_tokenizer, resolve_backbone
from alfia.model.families import FAMILIES, Family, family_of
from alfia.model.fusion import AdaptiveLayerFusion, FusionConfig, FusionOutput, masked_mean, masked_softmax
from alfia.model.head import AttentionalClassifierHead, HeadConfig
from alfia.model.lora import LoraSettings, apply_lora, lora_target_names

__all__ = [
    "ALFIA", "ALFIAConfig", "ALFIAOutput", "AdaptiveLayerFusion", "AttentionalClassifierHead",
    "DEFAULT_BACKBONE", "FAMILIES", "Family", "FusionConfig", "FusionOutput", "HeadConfig", "LoraSettings",
    "apply_lora", "family_of", "load_backbone", "load_tokenizer", "lora_target_names", "masked_mean", "masked_softmax",
    "resolve_backbone",
]
