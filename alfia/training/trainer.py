"""Joint training of LoRA adapters, Adaptive Layer Fusion and the Attentional Classifier Head (section 2.4).

Validation AUPRC and AUROC after every epoch, early stopping on validation AUPRC, the best epoch's weights
kept; the test split is read exactly once, after training, by ``finish_run``. After every epoch a checkpoint
(trainable weights, optimizer, schedule, random state) is written atomically, so that ``resume=True``
continues from the last completed epoch after any interruption, SIGKILL included.

Run folder::

    config.json        settings, versions, cohort checksum
    encoder.json       the text encoder (texts at inference are written exactly as in training)
    model/             the best epoch's ALFIA (LoRA adapter, fusion, head: safetensors + JSON)
    history.jsonl      one line per epoch: loss, validation AUPRC / AUROC, time
    checkpoint/        the last completed epoch, for --resume
    predictions.parquet, metrics.json, threshold.json   written by finish_run
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from alfia import __version__, manifest
from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import average_precision, roc_auc
from alfia.io import replace_folder, write_text_atomic
from alfia.model.alfia import ALFIA
from alfia.model.backbone import load_tokenizer
from alfia.model.readout import pooled_features
from alfia.model.serialization import library_versions
from alfia.training import distributed as dist
from alfia.training.batching import TokenizedTexts, bucketed_batches
from alfia.training.config import TrainConfig
from alfia.training.prefix_cache import PrefixCache

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_auprc: float
    val_auroc: float
    seconds: float


def cohort_checksum(cohort: Cohort) -> str:
    """SHA-256 of the rows the model sees (ids, labels, split, text): a run says which data made it."""
    cols = ["stay_id", "hospital_mortality", "split", "text"]
    digest = hashlib.sha256(pd.util.hash_pandas_object(cohort.df[cols], index=False).values.tobytes())
    return digest.hexdigest()


def _check_cohort(cohort: Cohort) -> None:
    if "text" not in cohort.df.columns:
        raise AlfiaError("the cohort has no text column; run `alfia encode` on it first")
    for split in ("train", "val"):
        y = cohort.df.loc[cohort.df["split"] == split, "hospital_mortality"]
        if len(y) == 0 or y.nunique() < 2:
            raise AlfiaError(f"the {split} split needs stays of both outcomes to train and select a model")


def _device(name: str | torch.device) -> torch.device:
    try:
        return torch.device(name)
    except (RuntimeError, TypeError):
        raise AlfiaError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None


def _set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


class Trainer:
    def __init__(self, cohort: Cohort, out: str | Path, config: TrainConfig, backbone: str | None = None,
                 progress: bool = True, device: str | torch.device | None = None):
        _check_cohort(cohort)
        self.cohort = cohort
        self.out = Path(out)
        if backbone is not None:  # the argument wins over the config's model.backbone
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, backbone=backbone))
        self.config = config
        self.progress = progress and dist.is_main()
        self.device = _device(device) if device is not None else dist.device()
        self.best_state: dict[str, torch.Tensor] | None = None

    # -- setup ----------------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.config
        _set_seed(c.seed)
        tokenizer = load_tokenizer(c.model.backbone)
        train, val = self.cohort.split("train"), self.cohort.split("val")
        _set_seed(c.seed)  # the same initial weights whatever the tokenizer did
        self.model = ALFIA(c.model, tokenizer=tokenizer).to(self.device)
        self.train_tokens = TokenizedTexts.from_texts(tokenizer, train["text"].tolist(), self.model.max_length)
        self.val_texts = val["text"].tolist()
        self.train_cache = self.val_cache = None
        if c.cache_prefix and self.model.num_frozen_layers > 0:
            self.train_cache = PrefixCache(self.model, self.train_tokens, c.eval_batch_size, self.progress,
                                           desc="caching frozen layers (train)")
            if dist.is_main():
                val_tokens = TokenizedTexts.from_texts(tokenizer, self.val_texts, self.model.max_length)
                self.val_cache = PrefixCache(self.model, val_tokens, c.eval_batch_size, self.progress,
                                             desc="caching frozen layers (validation)")
        self.y_train = torch.tensor(train["hospital_mortality"].to_numpy(), dtype=torch.float32)
        self.y_val = val["hospital_mortality"].to_numpy()
        n_pos = float(self.y_train.sum())
        # pos_weight = negatives / positives of the training split (section 2.4)
        self.pos_weight = torch.tensor((len(self.y_train) - n_pos) / n_pos, device=self.device) \
            if c.class_weight else None
        # the target: labels, or labels mixed with the teacher's out-of-fold probabilities (BCE is linear in it)
        self.target = self.y_train
        if c.distill > 0:
            from alfia.training.teacher import out_of_fold_teacher

            missing = [n for n in self.cohort.schema.feature_columns if n not in self.cohort.df.columns]
            if missing:
                raise AlfiaError(f"distillation needs the cohort's feature columns for its tabular teacher; "
                                 f"{len(missing)} are missing (e.g. {missing[0]}): train with distill=0")

            teacher = torch.tensor(out_of_fold_teacher(self.cohort, seed=c.seed), dtype=torch.float32)
            self.target = (1 - c.distill) * self.y_train + c.distill * teacher
        if self.model.readout is not None:
            self.model.readout.fit_start(self._train_pooled_features(), self.target.numpy())
        self.trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in self.trainable if "lora_" in n], "lr": c.lr},
                  {"params": [p for n, p in self.trainable if "lora_" not in n], "lr": c.head_lr or c.lr}]
        groups = [g for g in groups if g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=c.lr, weight_decay=c.weight_decay)
        world = dist.world_size()
        steps_per_epoch = math.ceil(len(self.train_tokens) / (c.batch_size * world))
        total = steps_per_epoch * c.epochs
        warmup = int(c.warmup_ratio * total)

        def linear(step: int) -> float:  # linear warm-up then linear decay to 0, as transformers' schedule
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total - step) / max(1, total - warmup))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear)
        self.ddp_model = dist.wrap(self.model)

    def _train_pooled_features(self) -> np.ndarray:
        """The readout's input features ``[N, N_f * H]`` of the training rows, from the model as built."""
        def collect(out):
            return pooled_features(out.layer_means.float()).cpu().numpy()

        if self.train_cache is not None:
            parts = self.train_cache.infer(self.model, self.config.eval_batch_size, collect)
        else:
            parts = self.model._infer(self.cohort.split("train")["text"].tolist(), self.config.eval_batch_size,
                                      collect)
        fusion = self.model.config.fusion
        features = np.zeros((len(self.train_tokens), fusion.num_fusion_layers * fusion.hidden_size))
        for idx, f in parts:
            features[idx] = f
        return features

    # -- one epoch ------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> float:
        c = self.config
        self.model.train()
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=self.pos_weight)
        world, rank = dist.world_size(), dist.rank()
        global_batch = c.batch_size * world
        # every rank draws the same global batches and takes its own slice of each
        batches = list(bucketed_batches(self.train_tokens.lengths, global_batch, shuffle=True,
                                        seed=c.seed * 1000 + epoch))
        total, seen = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not self.progress, leave=False)
        for rows in bar:
            mine = rows[rank::world]
            if len(mine) == 0:
                continue
            y = self.target[mine].to(self.device)
            with dist.autocast(self.config.bf16):
                if self.train_cache is not None:
                    prefix, mask = self.train_cache.collate(mine, self.device)
                    logits = self.ddp_model(None, mask, prefix=prefix).logits
                else:
                    ids, mask = self.train_tokens.collate(mine)
                    logits = self.ddp_model(ids.to(self.device), mask.to(self.device)).logits
            # each rank's mean, scaled so that the DDP average equals the global batch's mean
            loss = loss_fn(logits.float(), y) * (len(mine) * world / len(rows))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in self.trainable], c.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total += float(loss.detach()) * len(mine)
            seen += len(mine)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        return total / max(seen, 1)

    def _validate(self) -> tuple[float, float]:
        if self.val_cache is not None:
            p = self.val_cache.predict_proba(self.model, batch_size=self.config.eval_batch_size)
        else:
            p = self.model.predict_proba(self.val_texts, batch_size=self.config.eval_batch_size)
        return average_precision(self.y_val, p), roc_auc(self.y_val, p)

    # -- checkpoints ----------------------------------------------------------------------------
    def _save_checkpoint(self, epoch: int, best: float, bad_epochs: int) -> None:
        tmp = self.out / ".checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state = {f"param.{n}": p.detach().cpu().contiguous() for n, p in self.trainable}
        for i, s in enumerate(self.optimizer.state_dict()["state"].values()):
            for key, value in s.items():
                state[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        state["rng.torch"] = torch.get_rng_state()
        save_file(state, str(tmp / "state.safetensors"))
        meta = {"epoch": epoch, "best_val_auprc": best, "bad_epochs": bad_epochs,
                "scheduler": self.scheduler.state_dict(),
                "param_groups": [{k: v for k, v in g.items() if k != "params"}
                                 for g in self.optimizer.state_dict()["param_groups"]]}
        (tmp / "state.json").write_text(json.dumps(meta))
        replace_folder(tmp, self.out / "checkpoint")

    def _load_checkpoint(self) -> tuple[int, float, int]:
        folder = self.out / "checkpoint"
        if not (folder / "state.json").exists():
            if (self.out / ".checkpoint.old" / "state.json").exists():  # killed between the two renames
                os.replace(self.out / ".checkpoint.old", folder)
            else:
                return 0, -1.0, 0
        try:
            meta = json.loads((folder / "state.json").read_text())
            state = load_file(str(folder / "state.safetensors"))
        except Exception as exc:  # noqa: BLE001 - json, OS and safetensors errors: one line for the user
            raise AlfiaError(f"the checkpoint in {folder} is damaged ({type(exc).__name__}); delete that folder "
                             "to train from the start") from None
        with torch.no_grad():
            for n, p in self.trainable:
                p.copy_(state[f"param.{n}"])
        opt_state = self.optimizer.state_dict()
        params = [i for g in opt_state["param_groups"] for i in g["params"]]
        restored = {}
        for i, pid in enumerate(params):
            keys = [k for k in state if k.startswith(f"optim.{i}.")]
            if keys:
                restored[pid] = {k.split(".", 2)[2]: state[k] for k in keys}
        groups = [{**g, **saved} for g, saved in zip(opt_state["param_groups"], meta["param_groups"], strict=True)]
        self.optimizer.load_state_dict({"state": restored, "param_groups": groups})
        self.scheduler.load_state_dict(meta["scheduler"])
        torch.set_rng_state(state["rng.torch"])
        return meta["epoch"], meta["best_val_auprc"], meta["bad_epochs"]

    # -- the loop -------------------------------------------------------------------------------
    def _record(self, result: EpochResult, best: float, bad: int, results: list) -> tuple[float, int]:
        """Keep the epoch if validation AUPRC improved; write history and checkpoint (rank 0)."""
        results.append(result)
        if dist.is_main():
            improved = result.val_auprc > best
            if improved:
                best, bad = result.val_auprc, 0
                self._save_best()
                self.best_state = {n: p.detach().clone() for n, p in self.trainable}
            else:
                bad += 1
            trained = not math.isnan(result.train_loss)  # epoch 0 (the starting readout) has no training loss
            with open(self.out / "history.jsonl", "a") as f:
                row = {**result.__dict__, "train_loss": result.train_loss if trained else None, "best": improved}
                f.write(json.dumps(row) + "\n")
            loss = f"loss {result.train_loss:.4f}" if trained else "starting readout"
            logger.info(f"epoch {result.epoch}: {loss}, val AUPRC {result.val_auprc:.4f}, "
                        f"AUROC {result.val_auroc:.4f}{' (best)' if improved else ''} [{result.seconds:.0f} s]")
            self._save_checkpoint(result.epoch, best, bad)
        return best, bad

    def fit(self, resume: bool = False) -> list[EpochResult]:
        c = self.config
        if dist.is_main():
            if self.out.exists() and any(self.out.iterdir()) and not resume:
                raise AlfiaError(f"run folder {self.out} is not empty; choose a new --out or pass --resume")
            self.out.mkdir(parents=True, exist_ok=True)
        dist.barrier()
        self._build()
        start_epoch, best, bad = self._load_checkpoint() if resume else (0, -1.0, 0)
        history_path = self.out / "history.jsonl"
        if dist.is_main():
            self._write_config()
            history = _read_history(history_path)[:start_epoch]
            write_text_atomic(history_path, "".join(json.dumps(h) + "\n" for h in history))
        results = []
        if start_epoch == 0 and self.model.readout is not None:
            # epoch 0: the starting logistic-regression readout is a candidate like any epoch
            best, bad = self._record(EpochResult(0, float("nan"), *self._validate(), 0.0), best, bad, results)
        for epoch in range(start_epoch + 1, c.epochs + 1):
            if bad >= c.patience:
                break
            t0 = time.perf_counter()
            loss = self._train_epoch(epoch)
            auprc, auroc = self._validate() if dist.is_main() else (float("nan"), float("nan"))
            result = EpochResult(epoch, loss, auprc, auroc, round(time.perf_counter() - t0, 1))
            best, bad = self._record(result, best, bad, results)
            best, bad = dist.broadcast_pair(best, bad)
        dist.barrier()
        if self.best_state is not None:  # the model in memory becomes the best epoch's, as saved
            with torch.no_grad():
                for n, p in self.trainable:
                    p.copy_(self.best_state[n])
        return results

    def finish(self, n_boot: int = 1000) -> dict:
        """Predictions of every split, threshold and test metrics (``alfia.inference.finish_run``), reusing the
        frozen-layer caches of the train and validation rows."""
        from alfia.inference import finish_run

        caches = {k: v for k, v in (("train", self.train_cache), ("val", self.val_cache)) if v is not None}
        model = self.model if self.best_state is not None else None
        return finish_run(self.out, self.cohort, n_boot=n_boot, model=model, caches=caches)

    def _save_best(self) -> None:
        self.model.save(self.out / "model")  # written beside and renamed into place (alfia.io.replace_folder)

    def _write_config(self) -> None:
        encoder = self.cohort.info.get("text_encoder")
        if encoder is not None:
            write_text_atomic(self.out / "encoder.json", json.dumps(encoder, indent=2))
        config = {
            "train": self.config.to_dict(),
            "backbone": self.config.model.backbone,
            "cohort": {"schema": self.cohort.schema.name, "source": self.cohort.info.get("source"),
                       "checksum": cohort_checksum(self.cohort), "rows": len(self.cohort.df),
                       "synthetic": self.cohort.synthetic},
            "versions": {"alfia": __version__, **library_versions()},
            "world_size": dist.world_size(),
        }
        write_text_atomic(self.out / "config.json", json.dumps(config, indent=2))


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(cohort: Cohort, out: str | Path, config: TrainConfig, backbone: str | None = None,
          resume: bool = False, progress: bool = True, finish: bool = False, n_boot: int = 1000,
          device: str | torch.device | None = None) -> dict | None:
    """Train ALFIA on ``cohort`` (encoded) into the run folder ``out``. With ``finish``, rank 0 then predicts
    every split, chooses the threshold on validation and scores the test split once; returns those metrics.
    ``device``: e.g. "cpu" or "cuda:1" (default: the GPU of this process when there is one, else the CPU)."""
    dist.setup()
    started = manifest.now()
    try:
        trainer = Trainer(cohort, out, config, backbone=backbone, progress=progress, device=device)
        trainer.fit(resume=resume)
        metrics = trainer.finish(n_boot=n_boot) if finish and dist.is_main() else None
        if dist.is_main():  # last: the manifest lists the digest of every file written above
            manifest.write_manifest(out, started, backbone=backbone, cohort={"train": cohort_checksum(cohort)})
        return metrics
    finally:
        dist.teardown()
