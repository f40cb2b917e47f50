"""The training checkpoint: the last completed epoch of a run, for ``resume=True``.

One folder, :attr:`RunFolder.checkpoint <alfia.run_folder.RunFolder.checkpoint>`::

    state.safetensors    param.<name> (trainable weights), best.<name> (the best epoch's), optim.<i>.<key>
                         (AdamW's state per parameter), rng.<cpu|cuda>.<rank> (every rank's random states)
    state.json           epoch, best validation AUPRC, epochs without improvement, world size, the schedule's,
                         the gradient scaler's and the optimiser's parameter groups' state

It is written into :attr:`RunFolder.checkpoint_tmp` and renamed into place (:func:`alfia.io.replace_folder`), so a
kill at any moment (SIGKILL included) leaves the previous checkpoint or the new one; one killed between the two
renames is found in :attr:`RunFolder.checkpoint_old`. Only rank 0 writes and reads it; the trainer shares what it
read with every rank.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import torch
from safetensors.torch import load_file, save_file

from alfia.errors import AlfiaError
from alfia.io import replace_folder
from alfia.run_folder import RunFolder

TENSORS = "state.safetensors"
META = "state.json"


def random_states(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's CPU random state (and its GPU's, on a GPU)."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


@dataclass
class Progress:
    """Where training stands after an epoch: the early-stopping state a checkpoint restores."""

    epoch: int = 0
    best_val_auprc: float = -1.0
    bad_epochs: int = 0


@dataclass
class Checkpoint:
    """What a checkpoint saves and restores: the trainable parameters (``(name, parameter)``), the optimiser, its
    schedule and gradient scaler of one run folder, for ``world`` processes."""

    run: RunFolder
    trainable: list[tuple[str, torch.nn.Parameter]]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    world: int

    def save(self, progress: Progress, best_state: dict[str, torch.Tensor] | None,
             rank_states: list[dict[str, torch.Tensor]]) -> None:
        """Write the checkpoint (rank 0): the weights now, ``best_state`` (the best epoch's weights), the
        optimiser, and ``rank_states`` (:func:`random_states` of every rank, in rank order)."""
        tmp = self.run.checkpoint_tmp
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state = {f"param.{n}": p.detach().cpu().contiguous() for n, p in self.trainable}
        state.update({f"best.{n}": p.cpu().contiguous() for n, p in (best_state or {}).items()})
        for i, s in enumerate(self.optimizer.state_dict()["state"].values()):
            for key, value in s.items():
                state[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        for r, states in enumerate(rank_states):
            state.update({f"rng.{kind}.{r}": value for kind, value in states.items()})
        save_file(state, str(tmp / TENSORS))
        meta = {"epoch": progress.epoch, "best_val_auprc": progress.best_val_auprc,
                "bad_epochs": progress.bad_epochs, "world_size": self.world,
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "param_groups": [{k: v for k, v in g.items() if k != "params"}
                                 for g in self.optimizer.state_dict()["param_groups"]]}
        (tmp / META).write_text(json.dumps(meta))
        replace_folder(tmp, self.run.checkpoint)

    def read(self) -> tuple[dict, dict] | None:
        """(tensors, meta) of the last checkpoint (rank 0 reads it), or None when there is none."""
        folder = self.run.checkpoint
        if not (folder / META).exists():
            if (self.run.checkpoint_old / META).exists():  # killed between the two renames
                os.replace(self.run.checkpoint_old, folder)
            else:
                return None
        try:
            meta = json.loads((folder / META).read_text())
            state = load_file(str(folder / TENSORS))
        except Exception as exc:  # noqa: BLE001 - json, OS and safetensors errors: one line for the user
            raise AlfiaError(f"the checkpoint in {folder} is damaged ({type(exc).__name__}); delete that folder "
                             "to train from the start") from None
        if meta.get("world_size", 1) != self.world:
            raise AlfiaError(f"the checkpoint in {folder} was written by {meta.get('world_size', 1)} process(es), "
                             f"this run has {self.world}; resume with the same number of processes")
        return state, meta

    def restore(self, checkpoint: tuple[dict, dict], rank: int,
                device: torch.device) -> tuple[Progress, dict[str, torch.Tensor] | None]:
        """Put a :meth:`read` checkpoint back: the weights, the optimiser, its schedule and scaler, and this rank's
        random states. Returns where training stood and the best epoch's weights on ``device`` (None in a
        checkpoint written before 0.2)."""
        state, meta = checkpoint
        with torch.no_grad():
            for n, p in self.trainable:
                p.copy_(state[f"param.{n}"])
        best_state = None
        if f"best.{self.trainable[0][0]}" in state:
            best_state = {n: state[f"best.{n}"].to(device) for n, _ in self.trainable}
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
        if self.scaler and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        rng = state.get(f"rng.cpu.{rank}", state.get("rng.torch"))   # rng.torch: checkpoints before 0.2
        torch.set_rng_state(rng)
        if device.type == "cuda" and f"rng.cuda.{rank}" in state:
            torch.cuda.set_rng_state(state[f"rng.cuda.{rank}"], device)
        return Progress(meta["epoch"], meta["best_val_auprc"], meta["bad_epochs"]), best_state
