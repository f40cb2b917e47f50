"""Tiny, randomly initialised backbones (BERT and RoBERTa, and one of each encoder family) with tiny tokenizers,
built offline in a temp dir; ALFIA's user cache ($ALFIA_HOME) in a temp dir too."""

from __future__ import annotations

import json
import os
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


def _family_config(model_type: str, vocab_size: int, pad: int):
    """A tiny config of each encoder family: 4 layers of hidden size 32 (3 for ALBERT's shared layer)."""
    import transformers as t

    size = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=64, pad_token_id=pad)
    if model_type == "xlm-roberta":
        return t.XLMRobertaConfig(**{**size, "max_position_embeddings": 66}, bos_token_id=2, eos_token_id=3)
    if model_type == "electra":   # embeddings smaller than the hidden size: projected before the first layer
        return t.ElectraConfig(**size, embedding_size=16)
    if model_type == "megatron-bert":
        return t.MegatronBertConfig(**size)
    if model_type == "distilbert":
        return t.DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=4, n_heads=4, hidden_dim=64,
                                  max_position_embeddings=64, pad_token_id=pad)
    if model_type == "deberta-v2":   # v3's relative attention, plus v2's convolution after the first layer
        return t.DebertaV2Config(**size, relative_attention=True, position_buckets=16, max_relative_positions=-1,
                                 pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
                                 position_biased_input=False, type_vocab_size=0, conv_kernel_size=3)
    if model_type == "mpnet":
        return t.MPNetConfig(**{**size, "max_position_embeddings": 66}, relative_attention_num_buckets=32)
    if model_type == "modernbert":   # layers 0 and 2 global, 1 and 3 with a sliding window shorter than the texts
        return t.ModernBertConfig(**size, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3,
                                  global_attn_every_n_layers=2, local_attention=8)
    if model_type == "albert":
        return t.AlbertConfig(**{**size, "num_hidden_layers": 3}, embedding_size=16)
    raise ValueError(model_type)


FAMILY_TYPES = ("xlm-roberta", "electra", "megatron-bert", "distilbert", "deberta-v2", "mpnet", "modernbert",
                "albert")


def _family(root: Path, model_type: str) -> Path:
    """A tiny random model of ``model_type`` with a WordPiece tokenizer whose padding id is the family's usual."""
    from transformers import AutoModel, BertTokenizer

    pad = 1 if model_type in ("xlm-roberta", "mpnet") else 0   # position ids count from the padding id
    specials = ["[UNK]", "[PAD]"] if pad == 1 else ["[PAD]", "[UNK]"]
    vocab = [*specials, "[CLS]", "[SEP]", "[MASK]", ",", ".", ";", *WORDS, *"0123456789"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=48)
    torch.manual_seed(0)
    model = AutoModel.from_config(_family_config(model_type, len(vocab), pad)).eval()
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_family_dirs(tmp_path_factory, tiny_bert_dir, tiny_roberta_dir) -> dict[str, Path]:
    """model_type -> folder of a tiny model, for BERT, RoBERTa and every other supported encoder family."""
    dirs = {"bert": tiny_bert_dir, "roberta": tiny_roberta_dir}
    for model_type in FAMILY_TYPES:
        dirs[model_type] = _family(tmp_path_factory.mktemp(f"tiny-{model_type}"), model_type)
    return dirs


@pytest.fixture(scope="session", autouse=True)
def _alfia_home(tmp_path_factory):
    """Installed backbones go to a temporary user cache, never to ~/.cache (subprocesses inherit it)."""
    previous = os.environ.get("ALFIA_HOME")
    os.environ["ALFIA_HOME"] = str(tmp_path_factory.mktemp("alfia-home"))
    yield
    if previous is None:
        os.environ.pop("ALFIA_HOME", None)
    else:
        os.environ["ALFIA_HOME"] = previous


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


@pytest.fixture(scope="module")
def tiny_facade(tiny_bert_dir, tmp_path_factory):
    """``tiny_facade(cohort, name)``: an ALFIAPredictor with the tiny BERT fitted on ``cohort`` (1 epoch, 20 bootstrap
    samples) in a new run folder: the facade's and the model card's tests."""
    from alfia import ALFIAPredictor
    from tests.api.test_predictor import TINY

    def fit(cohort, name: str):
        path = tmp_path_factory.mktemp(name) / "run"
        return ALFIAPredictor(schema="physionet2012", backbone=str(tiny_bert_dir), path=path, device="cpu",
                              **TINY).fit(cohort, progress=False, n_boot=20)

    return fit
