"""Synthetic CW-24 cohorts calibrated to the ALFIA paper's baseline tables (Table 1: MIMIC-IV, Table 2: eICU).

The rows are invented: they reproduce the published per-outcome means, SDs and category shares, and nothing
else about real patients. Use them to run and test the pipeline end to end without credentialed data; metrics
computed on them say nothing about patients. See docs/synthetic.md.

Each data set that has synthetic twins declares its targets with its registration (``synthetic=``: a dict, e.g.
``alfia/datasets/mimic_iv/synthetic.py``): ``table`` (where the numbers come from), ``rate`` (the death rate),
``numeric`` (column -> :class:`Numeric`), ``categories`` (column -> {value: (% survived, % died)}; binary columns
give the share of "Yes"), ``uncalibrated`` (column -> {value: share}, the same in both groups), ``missing``
(column -> MCAR share), ``loadings`` (column or score family -> copula loading), ``crossover`` (below) and,
optionally, ``admission_location`` (locations drawn by the kind of admission).

Model:

* the label is fixed first: ``round(n * rate)`` deaths at random positions;
* every numeric variable has, per outcome group, a discrete marginal on its value grid (a discretised,
  bounded normal, or a gamma for the excess over the lower bound or the deficit under the upper bound, e.g.
  ``15 - GCS``) whose mean and SD are fitted exactly to the table;
* a Gaussian copula couples them inside each outcome group: a latent severity ``z`` per stay loads on the
  severity scores, SIRS, age and the GCS/SOFA statistics, so the scores correlate as in real data and the
  class-conditional marginals still match the table; the loadings set how much independent evidence the
  scores give, i.e. how separable the classes are (tuned so a LightGBM lands in the paper's AUROC range);
* GCS/SOFA statistics are built to be consistent on every row: ``min`` and ``max`` come from the copula,
  ``first``/``last`` lie between them (an endpoint or a binomial position, with the mean position fitted to
  the table), ``mean = min + t (max - min)`` and ``std = r (max - min)`` with ``t``, ``r`` fitted so the
  group means match; a stay with ``min == max`` has ``mean == min`` and ``std == 0``;
* category shares are drawn per outcome group from the table; variables the tables do not report get
  documented, uncalibrated shares that are the same in both groups (so they carry no signal);
* overlap of the outcome groups (``crossover``, survived and died): this share of the stays of each group carries
  the numeric features of the other group's phenotype; the phenotype targets are un-mixed so the outcome groups
  match the table, and categories are drawn per outcome group with exact shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy import optimize, special

from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import get_dataset
from alfia.cohorts.schema import ID, SPLIT
from alfia.cohorts.splits import assign_splits
from alfia.errors import AlfiaError


@dataclass(frozen=True)
class Numeric:
    """A calibrated numeric variable: ``survived`` and ``died`` are the table's (mean, SD)."""

    family: str  # "normal", "gamma_lo" (excess over lo), "gamma_hi" (deficit under hi)
    lo: float
    hi: float
    survived: tuple[float, float]
    died: tuple[float, float]
    step: float = 1.0


def gcs_statistic(survived, died) -> Numeric:
    """A GCS statistic (3-15): a gamma for the deficit under 15."""
    return Numeric("gamma_hi", 3, 15, survived, died)


def sofa_statistic(survived, died) -> Numeric:
    """A SOFA statistic (0-24): a gamma for the excess over 0."""
    return Numeric("gamma_lo", 0, 24, survived, died)


STATS_DERIVED = ("first", "last", "mean", "std")


def _unmix(s: float, d: float, cross: tuple[float, float]) -> tuple[float, float]:
    """Solve ``s = (1-es) S + es D`` and ``d = ed S + (1-ed) D`` for the phenotype values (S, D)."""
    es, ed = cross
    det = (1 - es) * (1 - ed) - es * ed
    return ((1 - ed) * s - es * d) / det, ((1 - es) * d - ed * s) / det


def _phenotypes(spec: dict) -> dict[str, Numeric]:
    """Numeric targets per phenotype (0: survivor-like, 1: non-survivor-like)."""
    cross = spec["crossover"]
    numeric = {}
    for name, v in spec["numeric"].items():
        (ms, ss), (md, sd) = v.survived, v.died
        m0, m1 = _unmix(ms, md, cross)
        q0, q1 = _unmix(ss**2 + ms**2, sd**2 + md**2, cross)
        s0 = np.sqrt(max(q0 - m0**2, (0.5 * ss) ** 2))
        s1 = np.sqrt(max(q1 - m1**2, (0.5 * sd) ** 2))
        numeric[name] = Numeric(v.family, v.lo, v.hi, (float(m0), float(s0)), (float(m1), float(s1)), v.step)
    return numeric
_END_SHARE = 0.6  # share of stays whose first/last value is an endpoint (min or max) of the day


def _grid(v: Numeric) -> np.ndarray:
    return v.lo + v.step * np.arange(int(round((v.hi - v.lo) / v.step)) + 1)


def _pmf(v: Numeric, grid: np.ndarray, a: float, b: float) -> np.ndarray:
    """Discrete pmf on ``grid``; for gammas the mass beyond the far bound piles on it (e.g. GCS 3)."""
    if v.family == "normal":
        w = np.exp(-0.5 * ((grid - a) / b) ** 2)
        return w / w.sum()
    x = grid - v.lo if v.family == "gamma_lo" else v.hi - grid
    order = np.argsort(x)
    xs = x[order]
    edges = np.concatenate([[0.0], (xs[:-1] + xs[1:]) / 2, [np.inf]])
    cdf = special.gammainc(a, edges / b)
    cdf[-1] = 1.0
    p = np.empty_like(grid)
    p[order] = np.diff(cdf)
    return np.clip(p, 0, None) / max(p.sum(), 1e-300)


@cache
def _fit(v: Numeric, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit the family's two parameters so the pmf's mean and SD equal the table's; return (grid, cdf)."""
    mean, sd = v.died if group else v.survived
    grid = _grid(v)

    def moments(params):
        a, b = (params[0], np.exp(params[1])) if v.family == "normal" else np.exp(params)
        p = _pmf(v, grid, a, b)
        m = float(p @ grid)
        return p, m, float(np.sqrt(max(p @ (grid - m) ** 2, 0.0)))

    def resid(params):
        _, m, s = moments(params)
        return [(m - mean) / sd, (s - sd) / sd]

    if v.family == "normal":
        x0 = [mean, np.log(sd)]
    else:
        excess = max(mean - v.lo if v.family == "gamma_lo" else v.hi - mean, 1e-3)
        x0 = [np.log((excess / sd) ** 2), np.log(sd**2 / excess)]
    sol = optimize.least_squares(resid, x0, xtol=1e-12, ftol=1e-12, gtol=1e-12)
    p, m, s = moments(sol.x)
    if abs(m - mean) > 0.02 * sd or abs(s - sd) > 0.05 * sd:
        raise RuntimeError(f"cannot fit {v} (group {group}): mean {m:.3f}, sd {s:.3f}")
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return grid, cdf


def _quantile(v: Numeric, y: np.ndarray, u: np.ndarray) -> np.ndarray:
    out = np.empty(len(u))
    for group in (0, 1):
        rows = y == group
        grid, cdf = _fit(v, group)
        idx = np.minimum(np.searchsorted(cdf, u[rows], side="left"), len(grid) - 1)
        out[rows] = grid[idx]
    return out


def _exact(rng: np.random.Generator, shares: dict, size: int) -> np.ndarray:
    """``size`` values with counts as close as possible to ``shares`` (largest remainder), shuffled."""
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    want = p / p.sum() * size
    counts = np.floor(want).astype(int)
    counts[np.argsort(counts - want, kind="stable")[: size - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.array(keys, dtype=object), counts))


def _pick(rng: np.random.Generator, shares: dict, size: int) -> np.ndarray:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    idx = rng.choice(len(keys), size=size, p=p / p.sum())
    return np.array(keys, dtype=object)[idx]


@cache
def _fit_range(anchor: Numeric, other: Numeric, group: int, down: bool) -> np.ndarray:
    """The cdf of the day's range ``R = max - min`` (0 .. hi - lo), independent of the anchor statistic.

    ``other = clip(anchor - R)`` (``down``: GCS, anchored at its max) or ``clip(anchor + R)`` (SOFA, anchored
    at its min); R's discretised gamma is fitted so that ``other``'s pmf, computed exactly by convolution,
    has the table's mean (and, as far as the family allows, its SD).
    """
    grid, cdf_a = _fit(anchor, group)
    p_a = np.diff(np.concatenate([[0.0], cdf_a]))
    mean, sd = other.died if group else other.survived
    r_spec = Numeric("gamma_lo", 0, anchor.hi - anchor.lo, (1.0, 1.0), (1.0, 1.0))
    r_grid = _grid(r_spec)
    values = np.clip(grid[:, None] + (-r_grid if down else r_grid)[None, :], anchor.lo, anchor.hi)

    def moments(params):
        p_r = _pmf(r_spec, r_grid, *np.exp(params))
        joint = p_a[:, None] * p_r[None, :]
        m = float((joint * values).sum())
        return p_r, m, float(np.sqrt(max((joint * (values - m) ** 2).sum(), 0.0)))

    def resid(params):
        _, m, s = moments(params)
        return [10 * (m - mean) / sd, (s - sd) / sd]

    a_mean = float(p_a @ grid)
    excess = max(abs(a_mean - mean), 0.05)
    sol = optimize.least_squares(resid, [np.log(0.5), np.log(2 * excess)], xtol=1e-12, ftol=1e-12, gtol=1e-12)
    p_r, m, _ = moments(sol.x)
    if abs(m - mean) > 0.02 * sd:
        raise RuntimeError(f"cannot fit the range of {other} (group {group}): mean {m:.3f}")
    cdf = np.cumsum(p_r)
    return cdf / cdf[-1]


def _dynamic(score: str, num: dict, y: np.ndarray, g: np.ndarray, rng: np.random.Generator) -> dict:
    """The six statistics of one score, consistent on every row; ``g`` is the family's copula factor.

    GCS is anchored at its max (mostly 15), SOFA at its min; the other extreme is the anchor -/+ the range.
    """
    n = len(y)
    down = score == "gcs"
    anchor, other = ("max", "min") if down else ("min", "max")
    a_var, o_var = num[f"{score}_{anchor}"], num[f"{score}_{other}"]
    a = _quantile(a_var, y, special.ndtr(-g if down else g))  # higher severity: lower GCS, higher SOFA
    u = rng.random(n)
    width = np.empty(n)
    for group in (0, 1):
        rows = y == group
        cdf = _fit_range(a_var, o_var, group, down)
        width[rows] = np.minimum(np.searchsorted(cdf, u[rows]), len(cdf) - 1)
    b = np.clip(a - width if down else a + width, a_var.lo, a_var.hi)
    mn, mx = (b, a) if down else (a, b)
    rng_ = mx - mn
    target = {s: np.where(y == 1, num[f"{score}_{s}"].died[0], num[f"{score}_{s}"].survived[0])
              for s in ("max", "min", *STATS_DERIVED)}
    span = np.maximum(target["max"] - target["min"], 1e-9)

    out = {"max": mx, "min": mn}
    for s in ("first", "last"):
        p = np.clip((target[s] - target["min"]) / span, 0.0, 1.0)
        end = rng.random(n) < _END_SHARE
        pos = np.where(end, rng.random(n) < p, 0).astype(float) * rng_
        pos = np.where(end, pos, rng.binomial(rng_.astype(np.int64), p))
        out[s] = mn + pos

    # mean = min + t * range, t = lam * (mean position of first and last) + (1 - lam) * Beta
    k = target["mean"] - target["min"]
    a = (target["first"] + target["last"]) / 2 - target["min"]
    mu_b = np.full(n, 0.5)
    lam = np.zeros(n)
    for group in (0, 1):
        rows = y == group
        if not rows.any():
            continue
        kk, aa, ss = k[rows][0], a[rows][0], span[rows][0]
        for lm in (0.5, 0.4, 0.3, 0.2, 0.1, 0.0):
            mb = (kk - lm * aa) / ((1 - lm) * ss)
            if 0.05 <= mb <= 0.95:
                break
        lam[rows], mu_b[rows] = lm, np.clip(mb, 0.02, 0.98)
    kappa = 4.0
    t_base = np.divide((out["first"] - mn) + (out["last"] - mn), 2 * rng_, out=np.zeros(n), where=rng_ > 0)
    t = lam * t_base + (1 - lam) * rng.beta(kappa * mu_b, kappa * (1 - mu_b))
    out["mean"] = np.round(mn + t * rng_, 2)

    # std = r * range, r in [0.05, 0.05 + 0.657] (0.707: the largest std/range, two values)
    mu_r = np.clip((target["std"] / span - 0.05) / 0.657, 0.02, 0.98)
    r = 0.05 + 0.657 * rng.beta(3 * mu_r, 3 * (1 - mu_r))
    out["std"] = np.round(r * rng_, 2)
    return out


def generate_synthetic(schema_name: str, n: int, seed: int = 0, *, id_offset: int = 0) -> Cohort:
    """A synthetic cohort of ``n`` stays (ids ``id_offset + 1 .. id_offset + n``), calibrated to the paper.

    Deterministic for a given ``(schema_name, n, seed)``. The fixed stratified split is assigned as for a
    real cohort. Its metrics say nothing about patients.
    """
    dataset = get_dataset(schema_name)
    spec = dataset.load_synthetic()
    schema = dataset.load_schema()
    if n < 1:
        raise AlfiaError(f"a synthetic cohort needs at least 1 stay, got n={n}")
    rng = np.random.Generator(np.random.PCG64(seed))  # every draw below, in this order, makes the cohort

    y = np.zeros(n, dtype=np.int64)
    y[: int(round(n * spec["rate"]))] = 1
    y = rng.permutation(y)
    # the phenotype whose features a stay carries: its outcome group, or for a fixed share the other one
    pheno = y.copy()
    for group, share in zip((0, 1), spec["crossover"], strict=True):
        rows = np.flatnonzero(y == group)
        pheno[rng.choice(rows, size=int(round(share * len(rows))), replace=False)] = 1 - group
    factor = _Factors(rng, spec["loadings"], n)
    cols = _numeric_columns(rng, _phenotypes(spec), pheno, factor)
    cols.update(_category_columns(rng, schema, spec["categories"], y, factor))
    for name, shares in spec["uncalibrated"].items():
        cols[name] = _pick(rng, shares, n)
    if "admission_location" in spec:
        cols["admission_location"] = _admission_location(rng, spec["admission_location"], cols["admission_type"])
    for name, share in spec["missing"].items():
        cols[name] = np.where(rng.random(n) < share, np.nan, cols[name])

    df = pd.DataFrame({ID: np.arange(id_offset + 1, id_offset + n + 1, dtype=np.int64), schema.task.label: y})
    for c in schema.columns:
        df[c.name] = cols[c.name]
    df[SPLIT] = assign_splits(df[ID], y)
    info = {"source": f"synthetic, calibrated to the ALFIA paper's {spec['table']}", "synthetic": True,
            "seed": seed}
    return Cohort(df=schema.validate(df, where=f"synthetic {schema_name} cohort"), schema=schema, info=info)


class _Factors:
    """A feature's copula factor: its loading on the stay's latent severity ``z`` plus its own noise."""

    def __init__(self, rng: np.random.Generator, loadings: dict[str, float], n: int):
        self.rng, self.loadings, self.n = rng, loadings, n
        self.z = rng.standard_normal(n)  # latent severity inside the phenotype

    def __call__(self, name: str) -> np.ndarray:
        ell = self.loadings.get(name, 0.0)
        return ell * self.z + np.sqrt(1 - ell * ell) * self.rng.standard_normal(self.n)


def _numeric_columns(rng: np.random.Generator, numeric: dict[str, Numeric], pheno: np.ndarray,
                     factor: _Factors) -> dict[str, np.ndarray]:
    """Each numeric feature at its phenotype's quantiles; GCS and SOFA with their first/min/max/trend."""
    cols = {name: _quantile(v, pheno, special.ndtr(factor(name))) for name, v in numeric.items()
            if not name.startswith(("gcs_", "sofa_"))}
    for score in ("gcs", "sofa"):
        for stat, values in _dynamic(score, numeric, pheno, factor(score), rng).items():
            cols[f"{score}_{stat}"] = values
    return cols


def _category_columns(rng: np.random.Generator, schema, categories: dict, y: np.ndarray,
                      factor: _Factors) -> dict[str, np.ndarray]:
    """Categories at exact shares per outcome group; an ordinal score (SIRS) ranked by its copula factor."""
    u_int = {name: factor(name) for name in categories if schema[name].kind == "int"}
    cols = {}
    for name, shares in categories.items():
        col = schema[name]
        values = np.empty(len(y), dtype=object)
        for group in (0, 1):
            rows = y == group
            groups = {k: s[group] for k, s in shares.items()}
            if col.kind == "int":  # an ordinal score (SIRS): exact shares, ranked by its copula factor
                keys = np.array([float(k) for k in groups])
                p = np.array(list(groups.values()), dtype=float)
                want = p / p.sum() * rows.sum()
                counts = np.floor(want).astype(int)
                counts[np.argsort(counts - want, kind="stable")[: rows.sum() - counts.sum()]] += 1
                ranked = np.empty(rows.sum())
                ranked[np.argsort(u_int[name][rows], kind="stable")] = np.repeat(keys, counts)
                values[rows] = ranked
                continue
            # other categories: exact shares per outcome group, independent of everything else
            if col.kind == "binary":
                groups = {1.0: groups["Yes"], 0.0: 100 - groups["Yes"]}
            values[rows] = _exact(rng, groups, int(rows.sum()))
        cols[name] = values
    return cols


def _admission_location(rng: np.random.Generator, spec: dict, admission_type: np.ndarray) -> np.ndarray:
    """Where a stay came from, drawn by its kind of admission (planned, emergency, other)."""
    planned, emergency = spec["planned"], spec["emergency"]
    kind = np.where(np.isin(admission_type, list(planned[0])), "planned",
                    np.where(np.isin(admission_type, list(emergency[0])), "emergency", "other"))
    loc = np.empty(len(admission_type), dtype=object)
    for k, (_, shares) in spec.items():
        rows = kind == k
        loc[rows] = _pick(rng, shares, int(rows.sum()))
    return loc
