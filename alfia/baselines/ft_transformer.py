"""FT-Transformer (Gorishniy et al., 2021) as an AutoGluon model, through the maintained reference implementation
``rtdl_revisiting_models``.

AutoGluon's own FT-Transformer lives in ``autogluon.multimodal``, which pins an older pandas and pulls in
torchvision (neither fits beside the project's pins). This class puts the reference model behind AutoGluon's model
interface, so that the zoo fits, ensembles and scores it exactly like every other model: same train rows, the
validation rows for early stopping, same time limits.

Inputs: numeric features standardised (median-imputed on the train rows, plus a 0/1 missing flag for each feature
with missing values in training, because in ICU data "not measured" is informative); categorical features as
embeddings, with index 0 for an unseen or missing level. Binary classification only (the zoo's task).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from autogluon.core.models import AbstractModel


class FTTransformerModel(AbstractModel):
    """AutoGluon model wrapping ``rtdl_revisiting_models.FTTransformer`` with its default configuration."""

    seed_name = "seed"   # AutoGluon's seed (0 unless a run passes another) reaches the model as this parameter

    def _set_default_params(self) -> None:
        # n_blocks picks the paper's default configuration of that depth (d_block, heads, dropouts); the optimiser
        # is the reference AdamW (lr 1e-4, weight decay 1e-5, none on embeddings and normalisation).
        for key, value in dict(n_blocks=3, batch_size=256, max_epochs=200, patience=16, seed=0).items():
            self._set_default_param_value(key, value)

    def _get_default_auxiliary_params(self) -> dict:
        params = super()._get_default_auxiliary_params()
        params["valid_raw_types"] = ["int", "float", "category"]
        return params

    # -- inputs -----------------------------------------------------------------------------------------------------
    def _preprocess(self, X: pd.DataFrame, is_train: bool = False, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        X = super()._preprocess(X, **kwargs)
        if is_train:
            self._cat = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
            self._num = [c for c in X.columns if c not in self._cat]
            num = X[self._num].astype("float64")
            self._fill = num.median().fillna(0.0)
            self._flags = [c for c in self._num if num[c].isna().any()]
            filled = num.fillna(self._fill)
            self._mean = filled.mean()
            self._std = filled.std().fillna(1.0).replace(0.0, 1.0)
            self._levels = {c: list(X[c].cat.categories) for c in self._cat}
        num = X[self._num].astype("float64")
        cont = ((num.fillna(self._fill) - self._mean) / self._std).to_numpy(np.float32)
        cont = np.concatenate([cont, num[self._flags].isna().to_numpy(np.float32)], axis=1)
        cats = [pd.Categorical(X[c], categories=self._levels[c]).codes.astype(np.int64) + 1 for c in self._cat]
        cat = np.stack(cats, axis=1) if cats else np.zeros((len(X), 0), dtype=np.int64)
        return cont, cat

    # -- fit / predict ---------------------------------------------------------------------------------------------
    def _fit(self, X: pd.DataFrame, y: pd.Series, X_val: pd.DataFrame | None = None, y_val: pd.Series | None = None,
             time_limit: float | None = None, num_cpus: int = 1, **kwargs) -> None:
        from rtdl_revisiting_models import FTTransformer

        from alfia.evaluation.metrics import average_precision

        if self.problem_type != "binary":
            raise ValueError(f"FTTransformerModel handles binary classification only, not {self.problem_type}")
        start = time.time()
        params = self._get_model_params()
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(num_cpus)))
        try:
            torch.manual_seed(params["seed"])
            cont, cat = self.preprocess(X, is_train=True)
            target = torch.as_tensor(np.asarray(y), dtype=torch.float32)
            if X_val is None:  # no tuning data: hold out a tenth of the train rows for early stopping
                rng = np.random.default_rng(params["seed"])
                held = rng.random(len(target)) < 0.1
                val = (cont[held], cat[held], target.numpy()[held])
                cont, cat, target = cont[~held], cat[~held], target[~held]
            else:
                val = (*self.preprocess(X_val), np.asarray(y_val))
            # validation rows of one outcome rank nothing: a constant score keeps the first epoch's weights
            scored = len(np.unique(val[2])) == 2
            self.model = FTTransformer(n_cont_features=cont.shape[1],
                                       cat_cardinalities=[len(self._levels[c]) + 1 for c in self._cat], d_out=1,
                                       **FTTransformer.get_default_kwargs(params["n_blocks"]))
            optimiser = self.model.make_default_optimizer()
            loss_fn = torch.nn.BCEWithLogitsLoss()
            cont_t, cat_t = torch.as_tensor(cont), torch.as_tensor(cat)
            best, best_state, since_best = -1.0, None, 0
            for _epoch in range(params["max_epochs"]):
                epoch_start = time.time()
                self.model.train()
                for idx in torch.randperm(len(target)).split(params["batch_size"]):
                    optimiser.zero_grad()
                    logits = self.model(cont_t[idx], cat_t[idx] if cat_t.shape[1] else None).squeeze(-1)
                    loss_fn(logits, target[idx]).backward()
                    optimiser.step()
                score = average_precision(val[2], self._proba(val[0], val[1])) if scored else 0.0
                if score > best:
                    best, since_best = score, 0
                    best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                else:
                    since_best += 1
                elapsed = time.time() - start
                if since_best >= params["patience"] or (
                        time_limit is not None and elapsed + (time.time() - epoch_start) > time_limit):
                    break
            if best_state is not None:
                self.model.load_state_dict(best_state)
        finally:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def _proba(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        self.model.eval()
        out = []
        for start in range(0, len(cont), 1024):
            c = torch.as_tensor(cat[start:start + 1024]) if cat.shape[1] else None
            out.append(torch.sigmoid(self.model(torch.as_tensor(cont[start:start + 1024]), c).squeeze(-1)).numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _predict_proba(self, X: pd.DataFrame, **kwargs) -> np.ndarray:
        cont, cat = self.preprocess(X, **kwargs)
        return self._convert_proba_to_unified_form(self._proba(cont, cat))
