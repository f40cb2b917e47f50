"""Joint training of LoRA adapters, Adaptive Layer Fusion and the Attentional Classifier Head (section 2.4).

Validation AUPRC and AUROC after every epoch, early stopping on validation AUPRC, the best epoch's weights
kept; the test split is read exactly once, after training, by ``finish_run``. After every epoch a checkpoint
(:mod:`alfia.training.checkpoint`: trainable weights, the best epoch's, optimizer, schedule, every rank's CPU and
CUDA random states) is written atomically, so that ``resume=True`` continues from the last completed epoch
after any interruption, SIGKILL included.

One device and one precision for the whole run (:mod:`alfia.model.runtime`): training, validation and the final
scoring. Under ``torchrun`` every rank owns a fixed shard of the rows, takes part in every collective of every step
(:func:`alfia.training.batching.epoch_plan`), scores its shard of validation and of the final pass, and rank 0
decides early stopping, writes every file and broadcasts what the others need; only rank 0 reads the checkpoint, so
the run folder need not be on a file system the nodes share.

The run folder's files: :mod:`alfia.run_folder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing as mp
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from alfia import __version__, manifest
from alfia import distributed as dist
from alfia.cohorts import SPLIT, Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import average_precision, roc_auc
from alfia.model import scoring
from alfia.model.alfia import ALFIA
from alfia.model.backbone import backbone_identity, load_tokenizer
from alfia.model.readout import pooled_features
from alfia.model.runtime import resolve_device, resolve_precision, unscaled_fp16, use_device
from alfia.model.serialization import library_versions
from alfia.model.tokens import TokenizedTexts
from alfia.run_folder import RunFolder
from alfia.training.batching import epoch_plan, shard
from alfia.training.checkpoint import Checkpoint, Progress, random_states
from alfia.training.config import TrainConfig
from alfia.training.prefix_cache import PrefixCache, default_budget

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_auprc: float
    val_auroc: float
    seconds: float


def check_cohort(cohort: Cohort) -> None:
    if "text" not in cohort.df.columns:
        raise AlfiaError("the cohort has no text column; run `alfia encode` on it first")
    for split in ("train", "val"):
        y = cohort.df.loc[cohort.df[SPLIT] == split, cohort.label]
        if len(y) == 0 or y.nunique() < 2:
            raise AlfiaError(f"the {split} split needs stays of both outcomes to train and select a model")
        if len(y) < dist.world_size():
            raise AlfiaError(f"the {split} split has {len(y)} stays for {dist.world_size()} processes; train with "
                             "fewer processes")


def _training_device(name: str | torch.device | None) -> torch.device:
    """The run's device, made the process's current one (alone on ``cuda:1``, nothing is opened on GPU 0); under
    torchrun each rank keeps to the GPU of its LOCAL_RANK."""
    device = resolve_device(name)
    if dist.world_size() > 1 and device.type == "cuda" and device != dist.device():
        raise AlfiaError(f"under torchrun every process trains on the GPU of its LOCAL_RANK ({dist.device()}), "
                         f"not {device}; leave --device at auto (or cuda)")
    return use_device(device)


def _set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _on_main(action):
    """``action()`` on rank 0 alone; its AlfiaError is raised on every rank (never one rank failing while the
    others wait in a collective). Returns rank 0's result on every rank."""
    result, error = None, None
    if dist.is_main():
        try:
            result = action()
        except AlfiaError as exc:
            error = str(exc)
    result, error = dist.broadcast((result, error))
    if error is not None:
        raise AlfiaError(error)
    return result


class Trainer:
    def __init__(self, cohort: Cohort, out: str | Path, config: TrainConfig, backbone: str | None = None,
                 progress: bool = True, device: str | torch.device | None = None, save_model: bool = True):
        """``save_model=False``: the best epoch's weights are kept in memory only, no ``model/`` is written (the
        ablation's mean-pool variant); everything else, checkpoints included, is as with a saved model."""
        check_cohort(cohort)
        self.cohort = cohort
        self.out = Path(out)
        self.run = RunFolder(out)
        if backbone is not None:  # the argument wins over the config's model.backbone
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, backbone=backbone))
        self.config = config
        self.progress = progress and dist.is_main()
        self.device = _training_device(device)
        precision = resolve_precision(config.precision, self.device).name
        if unscaled_fp16(config.model.dtype, precision):   # the config refuses fp32|tf32; auto is fp32 on a CPU
            raise AlfiaError(f"--dtype fp16 trains fp16 weights without a gradient scaler under precision {precision} "
                             f"({config.precision} on {self.device}): LoRA gradients can underflow silently; use "
                             "--dtype bf16 (or fp32), or --precision fp16 on a GPU")
        self.world, self.rank = dist.world_size(), dist.rank()
        self.save_model = save_model
        self.best_state: dict[str, torch.Tensor] | None = None
        self.train_cache = self.val_cache = None

    # -- setup: one step per job, in this order (every random draw of a run happens in the same place) ----------
    def _build(self) -> None:
        c = self.config
        _set_seed(c.seed)
        tokenizer = load_tokenizer(c.model.backbone)
        _set_seed(c.seed)  # the same initial weights whatever the tokenizer did
        self._build_model(tokenizer)
        self._build_inputs(tokenizer)
        self._build_targets()
        self._build_optimiser()

    def _build_model(self, tokenizer) -> None:
        """The model on the run's device and precision (gradient checkpointing when asked)."""
        c = self.config
        self.model = ALFIA(c.model, tokenizer=tokenizer).to_runtime(self.device, c.precision)
        if c.gradient_checkpointing:
            self.model.enable_gradient_checkpointing()

    def _build_inputs(self, tokenizer) -> None:
        """The training rows' tokens, the validation texts, this rank's rows of each, and the frozen-layer caches."""
        c = self.config
        train, val = self.cohort.split("train"), self.cohort.split("val")
        self.train_tokens = TokenizedTexts.from_texts(tokenizer, train["text"].tolist(), self.model.max_length)
        self.val_texts = val["text"].tolist()
        self.my_train = shard(len(train), self.rank, self.world)   # the rows this rank trains on and caches
        self.my_val = shard(len(val), self.rank, self.world)       # the rows this rank validates
        if c.cache_prefix and self.model.num_frozen_layers > 0:
            # one budget for the run: the validation cache gets what the training cache left in memory
            budget = default_budget() if c.cache_budget is None else c.cache_budget
            # a cache over its budget is a file: on node-local scratch when asked (--cache-dir), else in the run
            folder = Path(c.cache_dir).expanduser() if c.cache_dir else self.run.tmp
            cache = dict(batch_size=c.eval_batch_size, progress=self.progress, folder=folder)
            self.train_cache = PrefixCache(self.model, self.train_tokens, rows=self.my_train,
                                           desc="caching frozen layers (train)", budget=budget, **cache)
            val_tokens = TokenizedTexts.from_texts(tokenizer, self.val_texts, self.model.max_length)
            self.val_cache = PrefixCache(self.model, val_tokens, rows=self.my_val,
                                         desc="caching frozen layers (validation)",
                                         budget=budget - self.train_cache.bytes_in_memory, **cache)

    def _build_targets(self) -> None:
        """Labels, the class weight, the training target (labels or mixed with the teacher's out-of-fold
        probabilities) and the readout's starting fit on that target."""
        c = self.config
        self.y_train = torch.tensor(self.cohort.split("train")[self.cohort.label].to_numpy(), dtype=torch.float32)
        self.y_val = self.cohort.split("val")[self.cohort.label].to_numpy()
        n_pos = float(self.y_train.sum())
        # pos_weight = negatives / positives of the training split (our choice: the paper names BCE only)
        self.pos_weight = torch.tensor((len(self.y_train) - n_pos) / n_pos, device=self.device) \
            if c.class_weight else None
        # the target: labels, or labels mixed with the teacher's out-of-fold probabilities (BCE is linear in it)
        self.target = self.y_train
        if c.distill > 0:
            teacher = torch.tensor(_on_main(self._teacher), dtype=torch.float32)
            self.target = (1 - c.distill) * self.y_train + c.distill * teacher
        if self.model.readout is not None:
            self._fit_readout_start()

    def _build_optimiser(self) -> None:
        """AdamW over the trainable parameters (LoRA at ``lr``, the rest at ``head_lr``), the gradient scaler, the
        linear schedule, the DDP wrapper and the checkpoint of all of them."""
        c = self.config
        self.trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in self.trainable if "lora_" in n], "lr": c.lr},
                  {"params": [p for n, p in self.trainable if "lora_" not in n], "lr": c.head_lr or c.lr}]
        groups = [g for g in groups if g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=c.lr, weight_decay=c.weight_decay)
        self.scaler = self.model.precision.grad_scaler()
        total = len(self._plan(1)) * c.epochs   # optimiser steps: every epoch has as many
        warmup = int(c.warmup_ratio * total)

        def linear(step: int) -> float:  # linear warm-up then linear decay to 0, as transformers' schedule
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total - step) / max(1, total - warmup))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear)
        self.ddp_model = dist.wrap(self.model, self.device)
        self.checkpoint = Checkpoint(self.run, self.trainable, self.optimizer, self.scheduler, self.scaler,
                                     self.world)

    def _teacher(self) -> np.ndarray:
        from alfia.training.teacher import out_of_fold_teacher

        missing = [n for n in self.cohort.schema.feature_columns if n not in self.cohort.df.columns]
        if missing:
            raise AlfiaError(f"distillation needs the cohort's feature columns for its tabular teacher; "
                             f"{len(missing)} are missing (e.g. {missing[0]}): train with distill=0")
        return out_of_fold_teacher(self.cohort, seed=self.config.seed)

    def _fit_readout_start(self) -> None:
        """The readout's starting fit on the training rows' pooled features (at most READOUT_START_ROWS of them, a
        fixed random sample, so that its memory does not grow with the cohort): each rank computes its shard's,
        rank 0 fits, every rank takes rank 0's weights."""
        def collect(out):
            return pooled_features(out.layer_means.float()).cpu().numpy()

        n = len(self.train_tokens)
        chosen = np.arange(n) if n <= READOUT_START_ROWS else np.sort(
            np.random.Generator(np.random.PCG64(self.config.seed)).choice(n, READOUT_START_ROWS, replace=False))
        mine = chosen[chosen % self.world == self.rank]   # the rows of the sample this rank owns
        gathered = dist.gather(self._score(mine, collect, self.train_cache,
                                           self.cohort.split("train")["text"].tolist()))

        def fit():
            fusion = self.model.config.fusion
            features = np.zeros((len(chosen), fusion.num_fusion_layers * fusion.hidden_size))
            for rows, values in gathered:
                features[np.searchsorted(chosen, rows)] = values
            gathered.clear()
            self.model.readout.fit_start(features, self.target.numpy()[chosen])
            return {k: v.cpu() for k, v in self.model.readout.state_dict().items()}

        self.model.readout.load_state_dict(_on_main(fit))

    def _plan(self, epoch: int):
        c = self.config
        return epoch_plan(self.train_tokens.lengths, c.batch_size, self.world, c.grad_accum,
                          seed=c.seed * 1000 + epoch)

    # -- scoring a shard ------------------------------------------------------------------------
    def _score(self, rows: np.ndarray, collect, cache: PrefixCache | None, texts: list[str], on_batch=None):
        """``(rows, collect(outputs) stacked in the order of rows)`` for rows of one split: from the split's cache
        when there is one, else from the texts; eval mode, the run's precision."""
        if cache is not None:
            parts = cache.infer(self.model, self.config.eval_batch_size, collect, rows=rows, on_batch=on_batch)
        else:
            parts = scoring.score(self.model, [texts[i] for i in rows], self.config.eval_batch_size, collect,
                                  on_batch=on_batch)
        values = None
        for local, value in parts:
            if values is None:
                values = np.zeros((len(rows), *value.shape[1:]), dtype=value.dtype)
            values[local] = value
        return rows, values

    # -- one epoch ------------------------------------------------------------------------------
    def _loader(self, batches: list[np.ndarray]) -> torch.utils.data.DataLoader:
        """This rank's batches (arrays of rows) as CPU inputs: the cache's padded states or token ids. On a GPU,
        worker processes prepare the next batches in pinned memory while the current one runs."""
        cuda = self.device.type == "cuda"
        source = self.train_cache.padded if self.train_cache is not None else self.train_tokens.collate
        workers = LOADER_WORKERS if cuda and "fork" in mp.get_all_start_methods() else 0
        # its own generator: a DataLoader otherwise draws its workers' seed from the global RNG, which would move
        # every later dropout mask (and a run would no longer reproduce its earlier self)
        return torch.utils.data.DataLoader(_Rows(source), batch_size=None, sampler=batches, num_workers=workers,
                                           pin_memory=cuda, multiprocessing_context="fork" if workers else None,
                                           generator=torch.Generator())

    def _inputs(self, batch) -> tuple[torch.Tensor | None, torch.Tensor, dict | None]:
        """(input_ids or None, mask, prefix or None) of a loaded batch on the device, copied without blocking."""
        if self.train_cache is not None:
            prefix, mask = self.train_cache.to_prefix(*batch, self.device)
            return None, mask, prefix
        ids, mask = (t.to(self.device, non_blocking=True) for t in batch)
        return ids, mask, None

    def _train_epoch(self, epoch: int) -> float:
        c = self.config
        self.model.train()
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=self.pos_weight)
        plan = self._plan(epoch)
        # a rank without rows in a micro-step still runs one row at weight 0: every rank joins the gradient
        # all-reduce of every step (DDP would otherwise hang or abort)
        local = [ranks[self.rank] if len(ranks[self.rank]) else self.my_train[:1]
                 for step in plan for ranks in step.micro]
        batches = iter(self._loader(local))
        total = torch.zeros((), dtype=torch.float64, device=self.device)   # summed on the device: no sync per step
        seen = 0
        bar = tqdm(plan, desc=f"epoch {epoch}", unit="step", disable=not self.progress, leave=False)
        for number, step in enumerate(bar, 1):
            self.optimizer.zero_grad(set_to_none=True)
            for m, ranks in enumerate(step.micro):
                mine = ranks[self.rank]
                rows = mine if len(mine) else self.my_train[:1]
                ids, mask, prefix = self._inputs(next(batches))
                with self._sync(m == len(step.micro) - 1), self.model.precision.autocast():
                    logits = self.ddp_model(ids, mask, prefix=prefix).logits
                    batch_loss = loss_fn(logits.float(), self.target[rows].to(self.device, non_blocking=True))
                    # this rank's mean, scaled so that DDP's average over ranks is the mean over the step's rows
                    loss = batch_loss * (len(mine) * self.world / step.rows)
                    (self.scaler.scale(loss) if self.scaler else loss).backward()
                total += batch_loss.detach().double() * len(mine)
                seen += len(mine)
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for _, p in self.trainable], c.grad_clip)
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.scheduler.step()
            if number % 25 == 0 or number == len(plan):   # the loss on the bar: a host sync every 25 steps only
                bar.set_postfix(loss=f"{float(total) / max(seen, 1):.4f}")
        total_loss, rows = dist.all_sum([float(total), seen], self.device)
        return total_loss / max(rows, 1)

    def _sync(self, last_micro_step: bool):
        """DDP all-reduces gradients on the last micro-step of an optimiser step only."""
        if self.world > 1 and not last_micro_step:
            return self.ddp_model.no_sync()
        return contextlib.nullcontext()

    def _validate(self) -> tuple[float, float]:
        """Validation AUPRC and AUROC: every rank scores its shard, rank 0 computes (NaN on the other ranks)."""
        bar = tqdm(total=len(self.my_val), desc="validation", unit="stay", disable=not self.progress, leave=False)
        with bar:
            shards = dist.gather(self._score(self.my_val, scoring.probability, self.val_cache, self.val_texts,
                                             bar.update))
        if not dist.is_main():
            return float("nan"), float("nan")
        p = np.zeros(len(self.y_val))
        for rows, probs in shards:
            p[rows] = probs
        return average_precision(self.y_val, p), roc_auc(self.y_val, p)

    # -- checkpoints (alfia.training.checkpoint) ---------------------------------------------------------------
    def _load_checkpoint(self) -> tuple[int, float, int]:
        checkpoint = _on_main(self.checkpoint.read)   # every rank gets rank 0's copy: no shared file system needed
        if checkpoint is None:
            return 0, -1.0, 0
        progress, best_state = self.checkpoint.restore(checkpoint, self.rank, self.device)
        if best_state is not None:
            self.best_state = best_state
        return progress.epoch, progress.best_val_auprc, progress.bad_epochs

    # -- the loop -------------------------------------------------------------------------------
    def _record(self, result: EpochResult, best: float, bad: int, results: list) -> tuple[float, int]:
        """Rank 0 decides whether the epoch improved validation AUPRC; every rank keeps the best weights; rank 0
        writes the model, the history line and the checkpoint (with every rank's random state)."""
        results.append(result)
        improved = result.val_auprc > best
        improved, best, bad = dist.broadcast((improved, result.val_auprc if improved else best,
                                              0 if improved else bad + 1))
        if improved:
            self.best_state = {n: p.detach().clone() for n, p in self.trainable}
        rank_states = dist.gather(random_states(self.device))
        if dist.is_main():
            if improved and self.save_model:
                self._save_best()
            trained = not math.isnan(result.train_loss)  # epoch 0 (the starting readout) has no training loss
            self.run.append_history({**result.__dict__, "train_loss": result.train_loss if trained else None,
                                     "best": improved})
            loss = f"loss {result.train_loss:.4f}" if trained else "starting readout"
            logger.info(f"epoch {result.epoch}: {loss}, val AUPRC {result.val_auprc:.4f}, "
                        f"AUROC {result.val_auroc:.4f}{' (best)' if improved else ''} [{result.seconds:.0f} s]")
            self.checkpoint.save(Progress(result.epoch, best, bad), self.best_state, rank_states)
        return best, bad

    def _start(self, resume: bool) -> None:
        if self.out.exists() and any(self.out.iterdir()) and not resume:
            raise AlfiaError(f"run folder {self.out} is not empty; choose a new --out or pass --resume")
        self.out.mkdir(parents=True, exist_ok=True)

    def fit(self, resume: bool = False) -> list[EpochResult]:
        c = self.config
        _on_main(lambda: self._start(resume))
        self._build()
        start_epoch, best, bad = self._load_checkpoint() if resume else (0, -1.0, 0)
        if dist.is_main():
            self._write_config()
            self.run.write_history(self.run.history()[:start_epoch])
        results = []
        if start_epoch == 0 and self.model.readout is not None:
            # epoch 0: the starting logistic-regression readout is a candidate like any epoch
            best, bad = self._record(EpochResult(0, float("nan"), *self._validate(), 0.0), best, bad, results)
        for epoch in range(start_epoch + 1, c.epochs + 1):
            if bad >= c.patience:
                break
            t0 = time.perf_counter()
            loss = self._train_epoch(epoch)
            auprc, auroc = self._validate()
            result = EpochResult(epoch, loss, auprc, auroc, round(time.perf_counter() - t0, 1))
            best, bad = self._record(result, best, bad, results)
        if self.best_state is None:   # a checkpoint written before 0.2 had no best weights: the saved model has
            # them; rank 0 looks at its own disk and every rank takes its answer (the other nodes' disks need not
            # hold the run folder: each rank deciding from its own would leave rank 0 alone in the broadcast)
            self.best_state = _on_main(self._saved_best_state)
        if self.best_state is not None:  # the model in memory becomes the best epoch's, as saved
            with torch.no_grad():
                for n, p in self.trainable:
                    p.copy_(self.best_state[n].to(p.device))
        return results

    def _saved_best_state(self) -> dict[str, torch.Tensor] | None:
        """The trainable weights of the saved best model (read on rank 0, into a copy of them); None without one."""
        if not self.run.model.is_dir():
            return None
        now = {n: p.detach().clone() for n, p in self.trainable}
        self.model.load_trained_weights(self.run.model)
        best = {n: p.detach().cpu().clone() for n, p in self.trainable}
        with torch.no_grad():
            for n, p in self.trainable:
                p.copy_(now[n])
        return best

    def finish(self, n_boot: int = 1000) -> dict | None:
        """Predictions of every split, threshold and test metrics (``alfia.inference.finish_run``) by the best
        model on the training device, reusing the frozen-layer caches of the train and validation rows; every rank
        scores its shard, rank 0 writes and returns the metrics (None on the other ranks)."""
        from alfia.inference import finish_run

        caches = {k: v for k, v in (("train", self.train_cache), ("val", self.val_cache)) if v is not None}
        return finish_run(self.out, self.cohort, n_boot=n_boot, model=self.model, caches=caches,
                          batch_size=self.config.eval_batch_size, progress=self.progress)

    def close(self) -> None:
        """Free the frozen-layer caches and remove the run's temporary folder."""
        for cache in (self.train_cache, self.val_cache):
            if cache is not None:
                cache.close()
        shutil.rmtree(self.run.tmp, ignore_errors=True)

    def _save_best(self) -> None:
        self.model.save(self.run.model)  # written beside and renamed into place (alfia.io.replace_folder)

    def _write_config(self) -> None:
        encoder = self.cohort.info.get("text_encoder")
        if encoder is not None:
            self.run.write_json(RunFolder.ENCODER, encoder)
        config = {
            "train": self.config.to_dict(),
            "backbone": self.config.model.backbone,
            "task": self.cohort.task.to_dict(),
            "cohort": {"schema": self.cohort.schema.name, "source": self.cohort.info.get("source"),
                       "checksum": self.cohort.checksum(), "rows": len(self.cohort.df),
                       "synthetic": self.cohort.synthetic, "license": self.cohort.info.get("license"),
                       "citation": self.cohort.info.get("citation")},   # the model card names them
            "versions": {"alfia": __version__, **library_versions()},
            "world_size": self.world,
            "runtime": self.runtime(),
        }
        self.run.write_json(RunFolder.CONFIG, config)

    def runtime(self) -> dict:
        """Where and how the run computed (written into config.json and the manifest)."""
        c = self.config
        return {"device": str(self.device), "precision": self.model.precision.name, "weights": c.model.dtype,
                "world_size": self.world, "effective_batch": c.batch_size * c.grad_accum * self.world,
                "gradient_checkpointing": c.gradient_checkpointing}


LOADER_WORKERS = 2   # processes preparing batches on a GPU run (the CPU gains nothing from them)
READOUT_START_ROWS = 10_000   # the readout's starting logistic regression reads at most this many training rows


class _Rows(torch.utils.data.Dataset):
    """A map from an array of rows to their collated CPU inputs (the DataLoader's sampler yields the arrays)."""

    def __init__(self, collate):
        self.collate = collate

    def __getitem__(self, rows: np.ndarray):
        return self.collate(rows)


def train(cohort: Cohort, out: str | Path, config: TrainConfig, backbone: str | None = None,
          resume: bool = False, progress: bool = True, finish: bool = False, n_boot: int = 1000,
          device: str | torch.device | None = None, mlflow: str | None = None) -> dict | None:
    """Train ALFIA on ``cohort`` (encoded) into the run folder ``out``. With ``finish``, the best model then
    predicts every split, the threshold is chosen on validation and the test split scored once; returns those
    metrics (on rank 0; None on the other ranks). ``device``: auto (default: this process's GPU when there is one,
    else the CPU), cpu, cuda or cuda:N; the precision is the config's (``config.precision``). ``mlflow``: a
    tracking URI the finished run is logged to (else ``ALFIA_MLFLOW_URI`` when set: alfia.manifest)."""
    dist.setup(device)   # the backend follows the run's device: gloo for --device cpu, also on a GPU machine
    started = manifest.now()
    trainer = None
    try:
        trainer = Trainer(cohort, out, config, backbone=backbone, progress=progress, device=device)
        trainer.fit(resume=resume)
        metrics = trainer.finish(n_boot=n_boot) if finish else None
        trainer.close()
        dist.barrier()
        if dist.is_main():  # last: the manifest lists the digest of every file written above
            manifest.write_manifest(out, started, backbone=backbone_identity(backbone),
                                    cohort={"train": cohort.checksum()},
                                    extra={"runtime": trainer.runtime(), "task": cohort.task.to_dict()},
                                    mlflow=mlflow)
        return metrics
    finally:
        if trainer is not None:
            trainer.close()
        dist.teardown()
