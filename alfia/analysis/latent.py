"""Latent space of the test split (paper section 3.4, Fig. 6b-k): raw tabular features, CLS / mean / max pooling
of the frozen pre-trained backbone's last four layers (twelve sets from ONE backbone pass), and the trained
run's ALF output.

Separation measures (on L2-normalised rows, Euclidean distance):

- ``centroid_distance``: distance between the two class centroids (higher is better);
- ``nearest_negative``: mean over positives of the distance to the nearest negative (higher is better);
- ``within_pos`` / ``within_neg``: mean pairwise distance within each class (lower is better);
- ``separation_ratio``: centroid distance / mean within-class distance, the latter being the average of
  ``within_pos`` and ``within_neg`` (higher is better);
- ``silhouette``: silhouette score with the outcome as the cluster label (higher is better).

One downstream classifier, the same for every embedding (AutoGluon's NN_TORCH when ``autogluon`` is importable,
else scikit-learn's ``MLPClassifier`` with fixed settings after standardisation), is fitted on a sample of the
train split and scored on the test split with bootstrap CIs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import evaluate

POOLINGS = ("cls", "mean", "max")
LAST_LAYERS = 4


# --------------------------------------------------------------------------------------- separation measures

def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _mean_pairwise(x: np.ndarray) -> float:
    """Mean Euclidean distance over distinct pairs (i < j)."""
    n = len(x)
    if n < 2:
        return float("nan")
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    d = np.sqrt(d2)
    return float(d[np.triu_indices(n, 1)].mean())


def separation_measures(x: np.ndarray, y: np.ndarray, normalise: bool = True) -> dict[str, float]:
    """The measures of the module docstring for embedding rows ``x`` and labels ``y`` (both classes needed)."""
    from sklearn.metrics import silhouette_score

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) != 2:
        raise AlfiaError("separation measures need stays of both outcomes")
    x = l2_normalise(x) if normalise else np.asarray(x, dtype=np.float64)
    pos, neg = x[y == 1], x[y == 0]
    centroid = float(np.linalg.norm(pos.mean(0) - neg.mean(0)))
    sq_p, sq_n = (pos * pos).sum(1), (neg * neg).sum(1)
    cross = np.sqrt(np.maximum(sq_p[:, None] + sq_n[None, :] - 2 * pos @ neg.T, 0.0))
    within_pos, within_neg = _mean_pairwise(pos), _mean_pairwise(neg)
    within = np.nanmean([within_pos, within_neg])
    return {"centroid_distance": centroid, "nearest_negative": float(cross.min(1).mean()),
            "within_pos": within_pos, "within_neg": within_neg,
            "separation_ratio": float(centroid / within) if within > 0 else float("nan"),
            "silhouette": float(silhouette_score(x, y, metric="euclidean")) if len(x) > 2 else float("nan")}


# --------------------------------------------------------------------------------------- the embeddings

def tabular_matrix(cohort: Cohort) -> tuple[np.ndarray, list[str]]:
    """Feature columns of the schema: numeric imputed with train medians and standardised (train mean/SD),
    categories and binaries one-hot encoded with "missing" as a level of its own; everything fitted on train.
    Returns the matrix for every row of the cohort and the column names."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = cohort.df
    features = [c for c in cohort.schema.columns if c.role == "feature" and c.name in df.columns]
    numeric = [c.name for c in features if c.kind in ("float", "int")]
    levels = [c.name for c in features if c.kind in ("category", "binary")]
    if not numeric and not levels:
        raise AlfiaError("the cohort has none of its schema's feature columns: the tabular embedding needs them")
    frame = df[numeric + levels].copy()
    for name in levels:  # strings for the one-hot encoder; a missing value is its own level
        frame[name] = [("missing" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
                       for v in frame[name]]
    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                           StandardScaler()), numeric))
    if levels:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), levels))
    transformer = ColumnTransformer(parts)
    train = (df["split"] == "train").to_numpy()
    transformer.fit(frame[train])
    return np.asarray(transformer.transform(frame), dtype=np.float32), list(transformer.get_feature_names_out())


@torch.no_grad()
def pooled_embeddings(backbone, tokenizer, texts: list[str], max_length: int, batch_size: int = 32,
                      layers: int = LAST_LAYERS) -> dict[str, np.ndarray]:
    """CLS, mean and max pooling of each of the backbone's last ``layers`` layers, from ONE forward pass.
    Keys ``"L{j} {pooling}"`` (j counted from the bottom, 1-based), each ``[N, H]`` float32."""
    backbone.eval()
    n_layers = int(backbone.config.num_hidden_layers)
    picked = list(range(n_layers - layers + 1, n_layers + 1))
    out = {f"L{j} {p}": [] for j in picked for p in POOLINGS}
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        hidden = backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                          output_hidden_states=True, return_dict=True).hidden_states
        mask = enc["attention_mask"].bool().unsqueeze(-1)
        for j in picked:
            h = hidden[j].float()
            out[f"L{j} cls"].append(h[:, 0].numpy())
            out[f"L{j} mean"].append(((h * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
            out[f"L{j} max"].append(h.masked_fill(~mask, float("-inf")).amax(1).numpy())
    result = {}
    inverse = np.argsort(order)
    for key, chunks in out.items():
        result[key] = np.concatenate(chunks)[inverse].astype(np.float32)
    return result


# --------------------------------------------------------------------------------------- downstream classifier

CLASSIFIERS = ("auto", "autogluon", "mlp")


def resolve_classifier(choice: str = "auto") -> str:
    """``auto``: AutoGluon's NN_TORCH when autogluon.tabular is importable, else the scikit-learn MLP."""
    if choice not in CLASSIFIERS:
        raise AlfiaError(f"unknown downstream classifier {choice!r}; choose one of {', '.join(CLASSIFIERS)}")
    has_ag = importlib.util.find_spec("autogluon") is not None and \
        importlib.util.find_spec("autogluon.tabular") is not None
    if choice == "autogluon" and not has_ag:
        raise AlfiaError("autogluon.tabular is not installed; use --classifier mlp or install autogluon.tabular")
    if choice == "auto":
        return "autogluon" if has_ag else "mlp"
    return choice


def classifier_name(choice: str = "auto") -> str:
    if resolve_classifier(choice) == "autogluon":
        return "AutoGluon NN_TORCH (default hyper-parameters, 30 s limit per embedding)"
    return ("scikit-learn MLPClassifier (standardised input, one hidden layer of 128 ReLU units, Adam, "
            "early stopping on 10% of the train sample, max 200 iterations, random_state 0)")


def downstream_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0,
                      classifier: str = "auto") -> np.ndarray:
    """Test-split probabilities of the fixed downstream classifier fitted on the train rows."""
    if resolve_classifier(classifier) == "autogluon":
        import tempfile

        from autogluon.tabular import TabularPredictor

        cols = [f"f{i}" for i in range(x_train.shape[1])]
        train = pd.DataFrame(x_train, columns=cols).assign(label=y_train)
        with tempfile.TemporaryDirectory() as tmp:
            predictor = TabularPredictor(label="label", eval_metric="average_precision", path=tmp,
                                         verbosity=0).fit(train, hyperparameters={"NN_TORCH": {}},
                                                          time_limit=30)
            proba = predictor.predict_proba(pd.DataFrame(x_test, columns=cols))
            return proba[proba.columns[-1]].to_numpy()
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,), early_stopping=True,
                                                          max_iter=200, random_state=seed))
    model.fit(x_train, y_train)
    return model.predict_proba(x_test)[:, 1]


# --------------------------------------------------------------------------------------- projection

def project_2d(x: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    x = l2_normalise(x)
    if method == "umap":
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), min_dist=0.1,
                                random_state=seed, n_jobs=1)
            return reducer.fit_transform(x).astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    raise AlfiaError(f"unknown projection {method!r}; use umap or pca")


# --------------------------------------------------------------------------------------- the whole analysis

def _sample(rows: np.ndarray, y: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of ``rows``, stratified by outcome, in their original order."""
    if limit is None or len(rows) <= limit:
        return rows
    keep = []
    for cls in (0, 1):
        members = rows[y[rows] == cls]
        k = max(1, round(limit * len(members) / len(rows)))
        keep.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def latent_key(run_folder: Path, cohort: Cohort, max_stays: int | None, projection: str,
               classifier: str = "auto") -> str:
    from alfia.inference import model_key

    # the model's weight digests and the code version: retraining or resuming into the same folder changes the key
    parts = [cohort.checksum() if "text" in cohort.df.columns else str(len(cohort.df)),
             model_key(run_folder) or "no saved model", str(max_stays), projection, classifier_name(classifier)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def latent_analysis(run, cohort: Cohort, texts: list[str], max_stays: int | None = 1000, projection: str = "umap",
                    n_boot: int = 200, seed: int = 0, classifier: str = "auto", progress=print) -> dict:
    """Every embedding set of the test split: 2-D projection, separation measures and downstream classifier
    scores. ``run`` is an :class:`alfia.inference.Run`; ``texts`` the run's texts for every cohort row."""
    from alfia.inference import cached_embeddings, split_embeddings
    from alfia.model.backbone import load_backbone

    resolve_classifier(classifier)
    df = cohort.df
    y_all = df[cohort.label].to_numpy().astype(int)
    rng = np.random.default_rng(seed)
    split = df["split"].to_numpy()
    train_rows = _sample(np.flatnonzero(split == "train"), y_all, max_stays, rng)
    test_rows = _sample(np.flatnonzero(split == "test"), y_all, max_stays, rng)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        if len(np.unique(y_all[rows])) < 2:
            raise AlfiaError(f"the {name} split needs stays of both outcomes for the latent-space analysis")
    rows = np.concatenate([train_rows, test_rows])
    sets: dict[str, np.ndarray] = {}
    tab, _ = tabular_matrix(cohort)
    sets["raw tabular"] = tab[rows]
    progress(f"latent space: frozen backbone over {len(rows)} stays (one pass, 12 pooled sets)")
    backbone = load_backbone(run.model.config.backbone)
    picked = [texts[i] for i in rows]
    pooled = pooled_embeddings(backbone, run.model.tokenizer, picked, run.model.max_length)
    del backbone
    sets.update({f"backbone {k}": v for k, v in pooled.items()})
    sets["ALF output"], _ = split_embeddings(cached_embeddings(run, cohort).iloc[rows])
    n_train = len(train_rows)
    y_train, y_test = y_all[train_rows], y_all[test_rows]
    results = {}
    for name, x in sets.items():
        x_train, x_test = x[:n_train], x[n_train:]
        p = downstream_scores(x_train, y_train, x_test, seed=seed, classifier=classifier)
        m = evaluate(y_test, p, n_boot=n_boot)
        coords = project_2d(x_test, projection, seed)
        results[name] = {"dim": int(x.shape[1]), "measures": separation_measures(x_test, y_test),
                         "classifier": {k: m[k] for k in ("auprc", "auroc")},
                         "xy": np.round(coords, 4).tolist()}
        progress(f"latent space: {name}: AUPRC {m['auprc']['value']:.3f}")
    return {"projection": projection, "classifier": classifier_name(classifier), "n_train": int(n_train),
            "n_test": int(len(test_rows)), "labels": y_test.tolist(),
            "stay_ids": df["stay_id"].to_numpy()[test_rows].tolist(), "sets": results}


def load_cached(path: Path, key: str) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("key") == key else None
