"""``alfia bench --profile paper``: ALFIA in the paper's setting, on a GPU (``benchmarks/gpu.sh``).

The model is the ``paper`` training profile's (LoRA r 16, alpha 16, dropout 0.05 on every layer, N_f 4, max length
512), on two backbones:

bert-large  a BERT-large-shaped encoder (24 layers, hidden 1,024, 16 heads, FFN 4,096, vocabulary 30,522, 512
            positions) with random weights (fixed seed), built from a config and saved to a temp folder with the
            packaged MiniLM's tokenizer (the same 30,522-token BERT WordPiece vocabulary): the shape of the paper's
            large backbones, nothing downloaded. Its weights mean nothing; the speed and memory do not depend on them.
minilm      the packaged all-MiniLM-L6-v2 (or ``--backbone``).

For each backbone and precision (fp32, tf32, bf16; ``--precision`` picks one; what the device cannot do is skipped
with the reason), plus bf16 with gradient checkpointing, each on a freshly built model:

infer       forward passes at batch 16 x 512 tokens (set-A texts joined and cut at 512 tokens), inference mode, the
            model's precision: ms/stay, and ``predict_proba`` (ALFIA's inference path: length-bucketed batches of
            16, each padded to its own longest text) on set-A texts at their own lengths (median ~215 tokens).
train       optimiser steps at batch 16 x 512 as the Trainer takes them (autocast, BCE with the class weight,
            gradient scaler for fp16, clipping at 1.0, AdamW over LoRA, fusion and head), after untimed warm-up
            steps: stays/s.
memory      ``torch.cuda.max_memory_allocated``, reset before each measurement (inference is measured first, on a
            model that has not trained: no gradients or optimiser state in its figure).
FLOPs       ``torch.utils.flop_counter`` on one training step and one inference batch; achieved TFLOP/s = FLOPs /
            time, and its share of the GPU's dense peak for the precision (:data:`GPU_PEAK_TFLOPS`). With gradient
            checkpointing the count includes the recomputed forward. (torch's counter has no formula for the CPU's
            fused attention kernel: on a CPU the attention's matmuls are not counted, ~8% at 512 tokens on BERT-large.)

trainer     ``alfia train``'s own loop (:func:`trainer_loop_rows`: ``train`` with the paper profile's mechanics, batch 4
            padded per batch, the DataLoader) on set-A stays of the paper's length, 2 epochs of 50 steps on the
            BERT-large shape, fp32 / TF32 / bf16 / fp16: stays/s of the warm epoch, the backward/forward ratio and
            the peak GPU memory: the benchmark's training figures.
cost        what the paper's setting costs (:func:`paper_cost`: BioLinkBERT-large on MIMIC-IV's training stays, the
            paper profile's epochs), from the measured backward/forward ratio and trainer-loop rate.

``--tiny`` swaps BERT-large for a tiny BERT shape and shrinks batch, tokens and steps: a smoke run of seconds.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alfia.bench.measure import (
    count_flops,
    gpu_peak_mb,
    machine_info,
    reset_gpu_peak,
    throughput,
    time_calls,
    torch_threads,
)
from alfia.bench.report import describe_cost, paper_markdown, rounded
from alfia.errors import AlfiaError

BERT_LARGE = {"num_hidden_layers": 24, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096}
# 4 layers, not fewer: the paper fuses the top 4 (N_f), and the tiny run keeps the paper's model
TINY_BERT = {"num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 256}
PRECISIONS = ("fp32", "tf32", "bf16")   # the sweep of --precision auto; bf16 once more with gradient checkpointing
PAPER_ANCHOR = ("the paper (Fig. 5c-d, RTX 4090): 3-9 ms/stay at inference, 1-3 GB of GPU memory at batch 16 x 512 "
                "tokens, depending on the backbone")


@dataclass(frozen=True)
class Sizes:
    batch_size: int = 16        # the paper's batch (inference and the memory figure)
    tokens: int = 512           # the paper's L_max
    warmup_steps: int = 3       # untimed training steps (and inference batches) first
    steps: int = 20             # timed training steps, and timed inference batches
    set_a_stays: int = 512      # set-A texts scored at their own lengths
    pool: int = 4               # distinct batches cycled through


FULL = Sizes()
TINY = Sizes(batch_size=2, tokens=32, warmup_steps=0, steps=1, set_a_stays=4, pool=2)

# Dense peak TFLOP/s by precision, from NVIDIA's datasheets; tensor-core figures printed "with sparsity" are halved.
# H100 SXM / PCIe / NVL: NVIDIA H100 Tensor Core GPU datasheet (2023); H200 SXM / NVL: NVIDIA H200 datasheet (2024);
# A100 (SXM and PCIe): NVIDIA A100 datasheet (2021); L4: NVIDIA L4 datasheet (2023); L40S: NVIDIA L40S datasheet
# (2023); RTX 4090: NVIDIA Ada GPU architecture whitepaper v2.1, Table 2 (tensor figures with FP32 accumulate, as
# torch computes); V100 SXM2 / PCIe: NVIDIA V100 datasheet (2020); T4: NVIDIA T4 datasheet (2019). V100 and T4
# have no TF32 or bf16 tensor cores. Patterns are matched, in order, against torch.cuda.get_device_name.
GPU_PEAK_TFLOPS: tuple[tuple[str, str, dict[str, float]], ...] = (
    (r"\bH100.*NVL", "H100 NVL", {"fp32": 60, "tf32": 418, "bf16": 835, "fp16": 835}),
    (r"\bH100.*PCIe", "H100 PCIe", {"fp32": 51, "tf32": 378, "bf16": 756, "fp16": 756}),
    (r"\bH100", "H100 SXM", {"fp32": 67, "tf32": 495, "bf16": 989, "fp16": 989}),
    (r"\bH200.*NVL", "H200 NVL", {"fp32": 60, "tf32": 418, "bf16": 835, "fp16": 835}),
    (r"\bH200", "H200 SXM", {"fp32": 67, "tf32": 495, "bf16": 989, "fp16": 989}),
    (r"\bA100", "A100", {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
    (r"L40S", "L40S", {"fp32": 91.6, "tf32": 183, "bf16": 362, "fp16": 362}),
    (r"\bL4\b", "L4", {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121}),
    (r"RTX 4090", "RTX 4090", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2}),
    (r"V100.*PCIE", "V100 PCIe", {"fp32": 14, "fp16": 112}),
    (r"V100", "V100 SXM2", {"fp32": 15.7, "fp16": 125}),
    (r"\bT4\b", "T4", {"fp32": 8.1, "fp16": 65}),
)


def gpu_peak(name: str | None) -> tuple[str, dict[str, float]] | None:
    """(the datasheet's name, dense peak TFLOP/s by precision) of a GPU named as torch names it; None if unknown."""
    for pattern, label, peaks in GPU_PEAK_TFLOPS:
        if name and re.search(pattern, name, re.IGNORECASE):
            return label, peaks
    return None


def set_a_texts(stays: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``stays`` set-A stays (a random sample) as banded texts, with their labels; the encoder is fitted on the
    training split."""
    from alfia.cohorts import Cohort
    from alfia.cohorts.bundled import load_bundled
    from alfia.cohorts.registry import default_study
    from alfia.text.encoder import TextEncoder

    cohort = load_bundled(default_study().development)   # PhysioNet 2012's set A, as its data set declares
    df = cohort.df
    sample = df.sample(n=min(stays, len(df)), random_state=seed).reset_index(drop=True)
    encoder = TextEncoder(cohort.schema, "banded").fit(df[df["split"] == "train"])
    encoded = encoder.encode(Cohort(df=sample, schema=cohort.schema, info=cohort.info)).df
    return encoded["text"].tolist(), encoded[cohort.label].to_numpy()


def full_batches(tokenizer, texts: list[str], labels: np.ndarray, sizes: Sizes) -> list[tuple]:
    """``sizes.pool`` batches of ``batch_size`` x ``tokens``: each row joins 4 set-A texts (~860 tokens) and is cut
    at ``tokens``, so that every row is real text to the end. (ids, mask, labels) on the CPU."""
    rows = sizes.batch_size * sizes.pool
    joined = [" ".join(texts[(4 * r + j) % len(texts)] for j in range(4)) for r in range(rows)]
    enc = tokenizer(joined, padding="max_length", truncation=True, max_length=sizes.tokens, return_tensors="pt")
    y = torch.tensor(labels[(4 * np.arange(rows)) % len(texts)], dtype=torch.float32)
    b = sizes.batch_size
    return [(enc["input_ids"][s:s + b], enc["attention_mask"][s:s + b], y[s:s + b]) for s in range(0, rows, b)]


def random_backbone(folder: Path, shape: dict, seed: int = 0) -> Path:
    """A BERT of ``shape`` with random weights (``seed``) and the packaged MiniLM's tokenizer, saved in ``folder``."""
    from transformers import BertConfig, BertModel

    from alfia.model.backbone import load_tokenizer

    tokenizer = load_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **shape)
    BertModel(config).save_pretrained(folder)   # safetensors
    tokenizer.save_pretrained(folder)
    return folder


def measure_row(folder: str, tokenizer, precision: str, checkpointing: bool, device: torch.device, sizes: Sizes,
            batches: list[tuple], texts: list[str], peaks: dict[str, float] | None) -> dict:
    """One row: a fresh paper-profile model on ``folder`` in ``precision``; inference first (fixed shape, then set-A
    lengths), then training."""
    from alfia.model.alfia import ALFIA
    from alfia.training.config import make_config

    torch.manual_seed(42)
    config = dataclasses.replace(make_config("paper").model, backbone=folder, max_length=sizes.tokens)
    model = ALFIA(config, tokenizer=tokenizer).to_runtime(device, precision)
    if checkpointing:
        model.enable_gradient_checkpointing()
    peak = (peaks or {}).get(model.precision.name)
    on_device = [(ids.to(device), mask.to(device), y.to(device)) for ids, mask, y in batches]
    b, row = sizes.batch_size, {}

    model.eval()
    with torch.inference_mode(), model.precision.autocast():
        def forward(k: int):
            ids, mask, _ = on_device[k % len(on_device)]
            return model(ids, mask).logits

        for k in range(sizes.warmup_steps):
            forward(k)
        flops = count_flops(lambda: forward(0))
        reset_gpu_peak(device)
        seconds = time_calls(device, forward, sizes.steps) / sizes.steps
    row["infer"] = {"ms_per_stay": 1000 * seconds / b, "flops_per_batch": flops, "peak_gpu_mb": gpu_peak_mb(device),
                    **throughput(flops, seconds, peak)}

    texts = texts[:sizes.set_a_stays]
    lengths = [len(x) for x in tokenizer(texts, truncation=True, max_length=model.max_length)["input_ids"]]
    model.predict_proba(texts[:b], batch_size=b)   # warm-up
    reset_gpu_peak(device)
    seconds = time_calls(device, lambda _: model.predict_proba(texts, batch_size=b), 1)
    row["set_a"] = {"ms_per_stay": 1000 * seconds / len(texts), "stays": len(texts),
                    "median_tokens": float(np.median(lengths)), "peak_gpu_mb": gpu_peak_mb(device)}

    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    scaler = model.precision.grad_scaler()
    every_y = torch.cat([y for _, _, y in batches])
    n_pos = max(float(every_y.sum()), 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(every_y) - n_pos) / n_pos, device=device))

    def step(k: int) -> None:
        ids, mask, y = on_device[k % len(on_device)]
        optimizer.zero_grad(set_to_none=True)
        with model.precision.autocast():
            loss = loss_fn(model(ids, mask).logits.float(), y)
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    for k in range(sizes.warmup_steps):
        step(k)
    flops = count_flops(lambda: step(0))
    reset_gpu_peak(device)
    seconds = time_calls(device, step, sizes.steps) / sizes.steps
    row["train"] = {"stays_per_s": b / seconds, "step_ms": 1000 * seconds, "flops_per_step": flops,
                    "peak_gpu_mb": gpu_peak_mb(device), **throughput(flops, seconds, peak)}
    row["trainable_params"] = sum(p.numel() for p in trainable)
    base = model.base_model()
    row["backbone_params"] = sum(p.numel() for p in base.parameters())
    row["shape"] = {k: getattr(base.config, k, None) for k in BERT_LARGE}
    return row


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_paper_bench(out: str | Path, *, device: str = "auto", precision: str = "auto", tiny: bool = False,
                    backbone: str | None = None, steps: int | None = None, threads: int | None = None,
                    log=None) -> dict:
    """Every (backbone, precision) row, written to ``out`` (.json) and a markdown table beside it."""
    from alfia.io import write_text_atomic
    from alfia.model.backbone import DEFAULT_BACKBONE, load_tokenizer
    from alfia.model.runtime import resolve_device, resolve_precision

    log = log or logging.getLogger("alfia").info
    started = time.perf_counter()
    device = resolve_device(device)
    if precision == "auto":
        runs = [(p, False) for p in PRECISIONS] + [("bf16", True)]
    else:
        resolve_precision(precision, device)   # one precision asked for: one this device cannot do is an error
        runs = [(precision, False)]
    sizes = TINY if tiny else FULL
    if steps is not None:
        sizes = dataclasses.replace(sizes, steps=steps)
    gpu = None
    if device.type == "cuda":
        torch.cuda.set_device(device)
        properties = torch.cuda.get_device_properties(device)
        known = gpu_peak(properties.name)
        gpu = {"name": properties.name, "capability": f"{properties.major}.{properties.minor}",
               "memory_gib": round(properties.total_memory / 2**30, 1), "cuda": torch.version.cuda,
               "datasheet_name": known[0] if known else None, "peak_tflops": known[1] if known else None}
    large_name = "tiny BERT shape" if tiny else "BERT-large shape"
    result: dict = {"profile": "paper", "tiny": tiny, "device": str(device), "gpu": gpu,
                    "sizes": dataclasses.asdict(sizes), "paper_anchor": PAPER_ANCHOR, "rows": []}
    tf32_before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)

    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="alfia-bench-paper-") as tmp:
        result["machine"] = machine_info()
        log(f"set-A texts ({sizes.set_a_stays} stays) and a random {large_name} backbone ...")
        texts, labels = set_a_texts(max(sizes.set_a_stays, 4 * sizes.batch_size))
        shape = TINY_BERT if tiny else BERT_LARGE
        backbones = [(f"{large_name} (random weights)", str(random_backbone(Path(tmp) / "bert", shape))),
                     (backbone or DEFAULT_BACKBONE, backbone or DEFAULT_BACKBONE)]
        for label, folder in backbones:
            tokenizer = load_tokenizer(folder)
            batches = full_batches(tokenizer, texts, labels, sizes)
            fill = float(torch.cat([mask for _, mask, _ in batches]).float().mean())
            for name, checkpointing in runs:
                row = {"backbone": label, "precision": name, "gradient_checkpointing": checkpointing,
                       "full_batch_fill": fill}
                what = f"{label}, {name}" + (" + gradient checkpointing" if checkpointing else "")
                log(f"{what} ...")
                try:
                    resolve_precision(name, device)   # before building a model it cannot run
                    row.update(measure_row(folder, tokenizer, name, checkpointing, device, sizes, batches, texts,
                                       gpu and gpu["peak_tflops"]))
                    row["status"] = "ok"
                    log(f"  train {row['train']['stays_per_s']:.1f} stays/s, inference "
                        f"{row['infer']['ms_per_stay']:.2f} ms/stay at {sizes.tokens} tokens, "
                        f"{row['set_a']['ms_per_stay']:.2f} at set-A lengths")
                except AlfiaError as exc:   # a precision this device cannot do
                    row.update(status="skipped", reason=str(exc))
                    log(f"  skipped: {exc}")
                except torch.cuda.OutOfMemoryError:
                    row.update(status="skipped", reason=f"out of GPU memory at batch {sizes.batch_size} x "
                               f"{sizes.tokens} tokens")
                    log(f"  skipped: {row['reason']}")
                _release(device)
                result["rows"].append(row)
        log(f"alfia train's own loop on the {large_name} backbone ...")
        result["trainer_loop"] = {"backbone": backbones[0][0], "rows": trainer_loop_rows(
            backbones[0][1], device, steps=3 if tiny else TRAINER_STEPS, val_stays=8 if tiny else TRAINER_VAL_STAYS,
            max_length=sizes.tokens if tiny else None, log=log)}
        result["paper_cost"] = paper_cost(result["trainer_loop"]["rows"], measured_on=backbones[0][0],
                                          paper_shape=not tiny)
        log(describe_cost(result["paper_cost"]))

    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32_before
    result["seconds"] = time.perf_counter() - started
    result = rounded(result)
    out = Path(out)
    write_text_atomic(out, json.dumps(result, indent=2))
    write_text_atomic(out.with_suffix(".md"), paper_markdown(result))
    return result


# -- the trainer's own loop (issue 30, item 3) ------------------------------------------------------------------------
TRAINER_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
TRAINER_STEPS = 50   # optimiser steps per epoch at the paper profile's batch 4 (TINY: 3)
TRAINER_VAL_STAYS = 32


def set_a_cohort(train_rows: int, val_rows: int, seed: int = 0):
    """An encoded cohort of set-A stays (the paper's text lengths): ``train_rows`` training and ``val_rows``
    validation stays, each split with stays of both outcomes (a quarter of them deaths)."""
    from alfia.cohorts import Cohort
    from alfia.cohorts.bundled import load_bundled
    from alfia.cohorts.registry import default_study
    from alfia.text.encoder import TextEncoder

    cohort = load_bundled(default_study().development)
    df = cohort.df
    y = df[cohort.label].to_numpy()
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    picked, splits, p, n = [], [], 0, 0
    for split, rows in (("train", train_rows), ("val", val_rows)):
        k = max(1, rows // 4)
        picked += [*pos[p:p + k], *neg[n:n + rows - k]]
        splits += [split] * rows
        p, n = p + k, n + rows - k
    sample = df.iloc[picked].reset_index(drop=True)
    sample["split"] = splits
    encoder = TextEncoder(cohort.schema, "banded").fit(df[df["split"] == "train"])
    return encoder.encode(Cohort(df=sample, schema=cohort.schema, info=cohort.info))


def trainer_loop_rows(backbone: str, device: torch.device, *, steps: int = TRAINER_STEPS,
                      val_stays: int = TRAINER_VAL_STAYS, max_length: int | None = None, log=None) -> list[dict]:
    """``alfia train``'s own loop (``train`` with the paper profile's mechanics: LoRA on every layer, batch 4 padded
    per batch, the DataLoader, class-weighted BCE, the gradient scaler for fp16) on set-A stays, two epochs of
    ``steps`` steps, for each precision the device computes (the others: skipped with the reason). The second
    (warm) epoch is timed from the run's history; the validation inside it is timed apart by scoring the same
    stays with the saved run, and subtracted. ``backward_over_forward``: (a training step - an inference forward
    of the same batch) / that forward, the backward and the optimiser step against the forward (None where the
    history's 0.1 s resolution cannot tell)."""
    from alfia.inference import Run
    from alfia.model.runtime import resolve_precision
    from alfia.run_folder import RunFolder
    from alfia.training.config import make_config
    from alfia.training.trainer import train

    log = log or logging.getLogger("alfia").info
    settings = {"epochs": 2, "patience": 5, "distill": 0.0, "calibration": "none", "model.readout": None}
    if max_length is not None:
        settings["model.max_length"] = max_length
    batch = make_config("paper").batch_size
    cohort = set_a_cohort(steps * batch, val_stays)
    train_texts = cohort.df.loc[cohort.df["split"] == "train", "text"].tolist()
    val_texts = cohort.df.loc[cohort.df["split"] == "val", "text"].tolist()
    rows = []
    for name in TRAINER_PRECISIONS:
        row: dict = {"precision": name, "batch_size": batch, "steps_per_epoch": steps, "train_stays": len(train_texts)}
        try:
            resolve_precision(name, device)
            config = make_config("paper", precision=name, **settings)
            with tempfile.TemporaryDirectory(prefix="alfia-bench-trainer-") as tmp:
                out = Path(tmp) / "run"
                reset_gpu_peak(device)
                train(cohort, out, config, backbone=backbone, progress=False, device=str(device))
                peak_mb = gpu_peak_mb(device)   # weights, LoRA gradients, AdamW state, activations at batch 4
                history = RunFolder(out).history()
                run = Run.load(out, device=str(device), precision=name)
                val_s = _timed(device, run.predict_proba, val_texts, batch_size=config.eval_batch_size)
                forward_s = _timed(device, run.predict_proba, train_texts, batch_size=batch)
            epoch_s = float(history[-1]["seconds"])
            loop_s = epoch_s - val_s
            measurable = loop_s > 0 and epoch_s >= 1.0
            row.update(status="ok", epochs=len(history), epoch_s=epoch_s, validation_s=val_s,
                       forward_s=forward_s, peak_gpu_mb=peak_mb, loop_s=loop_s if measurable else None,
                       stays_per_s=len(train_texts) / loop_s if measurable else None,
                       backward_over_forward=(loop_s - forward_s) / forward_s
                       if measurable and loop_s > forward_s else None)
            log(f"  trainer loop, {name}: {row['stays_per_s'] or float('nan'):.1f} stays/s, backward/forward "
                f"{row['backward_over_forward'] or float('nan'):.2f}")
        except AlfiaError as exc:   # a precision this device cannot do
            row.update(status="skipped", reason=str(exc))
            log(f"  trainer loop, {name}: skipped: {exc}")
        except torch.cuda.OutOfMemoryError:
            row.update(status="skipped", reason=f"out of GPU memory at batch {batch}")
            log(f"  trainer loop, {name}: skipped: {row['reason']}")
        _release(device)
        rows.append(row)
    return rows


# -- what the paper's setting costs, from the measured ratio (issue 30, item 3; docs/training.md) --------------------
# BioLinkBERT-large (the paper's best backbone: 24 layers, hidden 1,024, 335 M parameters, the BERT-large shape the
# trainer loop runs) on MIMIC-IV v3.1's 65,366 stays, 75% of them training stays (the bundled cohorts' split), at set
# A's median of ~215 tokens per stay (the same 24-hour template), for the paper profile's epochs (up to 25)
PAPER_SETTING = {"backbone": "BioLinkBERT-large", "parameters": 335e6, "tokens_per_stay": 215, "stays": 65_366,
                 "train_stays": 49_000}
ASSUMED_BACKWARD_OVER_FORWARD = 2.0   # the fixed estimate this replaces: forward + backward = 3x the forward
COST_PRECISION = "bf16"   # the headline estimate: auto's choice on a GPU with native bf16 (else the first measured)


def paper_cost(rows: list[dict], *, measured_on: str, paper_shape: bool = True) -> dict:
    """The paper's setting (:data:`PAPER_SETTING`, the paper profile's epochs) costed from :func:`trainer_loop_rows`'
    measurements: per precision with a measured ratio, a training stay is (1 + backward/forward) forwards of 2 x 335 M
    x 215 FLOPs (``pflop_per_epoch``, forward-equivalent FLOPs over the training stays), and an epoch takes the
    training stays / the trainer loop's measured stays/s (``hours_per_epoch``: batch 4 padded per batch, validation
    not included; only where the loop ran the BERT-large shape, ``paper_shape``). ``headline``: the bf16 estimate (else
    the first one); None when no ratio was measured (a run too short for the history's 0.1 s, or no precision ran).
    ``assumed``: the fixed 3x (backward = 2x forward) estimate it replaces, for comparison."""
    from alfia.training.config import make_config

    s, epochs = PAPER_SETTING, make_config("paper").epochs
    forward = 2 * s["parameters"] * s["tokens_per_stay"] / 1e12   # TFLOP per stay

    def pflop(ratio: float) -> float:
        return forward * (1 + ratio) * s["train_stays"] / 1e3

    estimates = []
    for row in rows:
        ratio = row.get("backward_over_forward")
        if row.get("status") != "ok" or ratio is None:
            continue
        hours = s["train_stays"] / row["stays_per_s"] / 3600 if paper_shape and row.get("stays_per_s") else None
        estimates.append({"precision": row["precision"], "backward_over_forward": ratio,
                          "train_tflop_per_stay": forward * (1 + ratio), "pflop_per_epoch": pflop(ratio),
                          "hours_per_epoch": hours, "hours_all_epochs": hours * epochs if hours else None})
    headline = next((e for e in estimates if e["precision"] == COST_PRECISION), estimates[0] if estimates else None)
    return {**s, "epochs": epochs, "forward_tflop_per_stay": forward, "measured_on": measured_on,
            "estimates": estimates, "headline": headline,
            "assumed": {"backward_over_forward": ASSUMED_BACKWARD_OVER_FORWARD,
                        "pflop_per_epoch": pflop(ASSUMED_BACKWARD_OVER_FORWARD)}}


def _timed(device: torch.device, action, *args, **kwargs) -> float:
    """Seconds ``action(*args, **kwargs)`` takes, the GPU's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    action(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0
