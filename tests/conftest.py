"""Tiny, randomly initialised BERT and RoBERTa backbones with tiny tokenizers, built offline in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

WORDS = ("the patient is a year old male female admitted to icu with sepsis heart rate blood pressure "
         "was low high normal respiratory failure on ventilation lactate creatinine gcs sofa score and "
         "emergency elective surgery medical unit").split()

TEXTS = [
    "the patient is a 67 year old male admitted to icu with sepsis",
    "female , heart rate high , blood pressure low",
    "respiratory failure on ventilation ; lactate 4.2 , creatinine high",
    "gcs 15",
    "emergency surgery , sofa score 9 and lactate high , admitted to the medical unit with respiratory failure",
]


def _bert(root: Path) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", ";", *WORDS, *"0123456789"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=48)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    model = BertModel(config).eval()
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def _roberta(root: Path) -> Path:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 5 + TEXTS, vocab_size=320, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    raw = root / "bpe"
    raw.mkdir(parents=True)
    bpe.save_model(str(raw))
    vocab = json.loads((raw / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (raw / "merges.txt").read_text().splitlines()[1:] if line]
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=48)
    torch.manual_seed(1)
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                           intermediate_size=96, max_position_embeddings=64 + 2, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2)
    model = RobertaModel(config).eval()
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root / "model"


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return _bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    return _roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(params=["bert", "roberta"])
def tiny_backbone_dir(request, tiny_bert_dir, tiny_roberta_dir) -> Path:
    return tiny_bert_dir if request.param == "bert" else tiny_roberta_dir


@pytest.fixture
def texts() -> list[str]:
    return list(TEXTS)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: thread start-up and contention cost more than the maths (10x on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
