"""Small MEDS 0.4 datasets for the MEDS reader's tests: ``write_meds`` (any long events frame) and ``yaib_to_meds``
(the bundled YAIB eICU demo as a MEDS dataset in MIMIC-IV-MEDS's codes, with a label file).

A helper module, no tests in it. The arrow types are MEDS's exactly (``subject_id`` int64, ``time`` timestamp[us],
``code`` string, ``numeric_value`` float32, ``text_value`` large_string).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
DATA_SCHEMA = pa.schema([("subject_id", pa.int64()), ("time", pa.timestamp("us")), ("code", pa.string()),
                         ("numeric_value", pa.float32()), ("text_value", pa.large_string())])
CODES_SCHEMA = pa.schema([("code", pa.string()), ("description", pa.string()),
                          ("parent_codes", pa.list_(pa.string()))])
SPLITS_SCHEMA = pa.schema([("subject_id", pa.int64()), ("split", pa.string())])
LABEL_SCHEMA = pa.schema([("subject_id", pa.int64()), ("prediction_time", pa.timestamp("us")),
                          ("boolean_value", pa.bool_())])
DATASET_JSON = {"dataset_name": "alfia-test-fixture", "dataset_version": "1",
                "etl_name": "tests.datasets.meds_fixtures", "etl_version": "1", "meds_version": "0.4.1",
                "created_at": "2025-01-01T00:00:00+00:00"}

YAIB_BASE = pd.Timestamp("2100-01-01 00:00:00")  # the first stay's ICU admission; stay k's is k days later
ICU_UNIT = "Medical Intensive Care Unit (MICU)"
SPLIT_NAMES = {"train": "train", "val": "tuning", "test": "held_out"}
SEX_CODES = {"Female": "GENDER//F", "Male": "GENDER//M"}


def meds_concepts_path() -> Path:
    """The shipped MIMIC-IV-MEDS -> YAIB concept map (alfia/datasets/meds/data/mimic_iv_meds_yaib_concepts.csv)."""
    return REPO / "alfia" / "datasets" / "meds" / "data" / "mimic_iv_meds_yaib_concepts.csv"


def read_map_rows(path: Path | None = None) -> list[dict]:
    """The concept map's rows as dicts (strings; empty cells "")."""
    with open(path or meds_concepts_path(), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def first_codes(path: Path | None = None) -> dict[str, tuple[str, float, float]]:
    """Per concept, the first row's concrete code (its ``example``, checked to fullmatch the row's pattern) and the
    row's scale and shift."""
    out: dict[str, tuple[str, float, float]] = {}
    for row in read_map_rows(path):
        if row["concept"] in out:
            continue
        code = row["example"]
        assert re.fullmatch(row["code"], code), f"{code!r} does not fullmatch {row['code']!r}"
        out[row["concept"]] = (code, float(row["scale"] or 1), float(row["shift"] or 0))
    return out


def _data_table(events: pd.DataFrame) -> pa.Table:
    n = len(events)
    time = pd.to_datetime(events["time"]).astype("datetime64[us]")
    value = pd.to_numeric(events["numeric_value"], errors="coerce").astype("float32") if "numeric_value" in events \
        else pd.Series(np.nan, index=events.index, dtype="float32")
    text = events["text_value"] if "text_value" in events else pd.Series([None] * n, index=events.index, dtype=object)
    return pa.table({
        "subject_id": pa.array(events["subject_id"].to_numpy("int64"), pa.int64()),
        "time": pa.array(time.to_numpy(), pa.timestamp("us"), mask=time.isna().to_numpy()),
        "code": pa.array(events["code"].astype(str).tolist(), pa.string()),
        "numeric_value": pa.array(value.to_numpy(), pa.float32(), mask=value.isna().to_numpy()),
        "text_value": pa.array([None if pd.isna(x) else str(x) for x in text], pa.large_string()),
    }, schema=DATA_SCHEMA)


def write_meds(root, events: pd.DataFrame, *, codes: dict[str, str] | None = None,
               splits: pd.DataFrame | None = None, shards: int = 1, dataset_json: dict | None = None) -> dict:
    """Write a MEDS 0.4 dataset from a long ``events`` frame (``subject_id``, ``time`` (NaT: a static row), ``code``,
    ``numeric_value``[, ``text_value``]) into ``root``.

    Rows are sorted by subject, then time (static rows first), keeping the frame's order among equal times; the
    subjects are cut into ``shards`` contiguous groups, ``data/{k}.parquet``. ``codes`` gives descriptions
    (codes.parquet lists every code of the events and of ``codes``; parent_codes null); ``splits`` (``subject_id``,
    ``split``) defaults to every 10th subject held out, every 10th (offset 1) tuning, the rest train;
    ``dataset_json`` is merged over a fixed dataset.json. Returns the paths and counts.
    """
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    ev = events.reset_index(drop=True)
    time = pd.to_datetime(ev["time"])
    key = time.astype("datetime64[us]").astype("int64").where(time.notna(), np.iinfo(np.int64).min)
    ev = ev.iloc[np.lexsort((np.arange(len(ev)), key.to_numpy(), ev["subject_id"].to_numpy("int64")))]
    subjects = np.unique(ev["subject_id"].to_numpy("int64"))
    groups = [g for g in np.array_split(subjects, max(1, min(shards, len(subjects)))) if len(g)]
    files = []
    for k, group in enumerate(groups):
        path = root / "data" / f"{k}.parquet"
        pq.write_table(_data_table(ev[ev["subject_id"].isin(group)]), path)
        files.append(path)

    descriptions = dict.fromkeys(sorted(set(ev["code"].astype(str))))
    descriptions.update(codes or {})
    pq.write_table(pa.table({"code": list(descriptions), "description": list(descriptions.values()),
                             "parent_codes": [None] * len(descriptions)}, schema=CODES_SCHEMA),
                   root / "metadata" / "codes.parquet")
    if splits is None:
        rank = np.arange(len(subjects)) % 10
        splits = pd.DataFrame({"subject_id": subjects,
                               "split": np.where(rank == 0, "held_out", np.where(rank == 1, "tuning", "train"))})
    pq.write_table(pa.table({"subject_id": pa.array(splits["subject_id"].to_numpy("int64"), pa.int64()),
                             "split": pa.array(splits["split"].astype(str).tolist(), pa.string())},
                            schema=SPLITS_SCHEMA), root / "metadata" / "subject_splits.parquet")
    (root / "metadata" / "dataset.json").write_text(json.dumps({**DATASET_JSON, **(dataset_json or {})}, indent=2))
    return {"root": root, "data": files, "codes": root / "metadata" / "codes.parquet",
            "splits": root / "metadata" / "subject_splits.parquet", "dataset_json": root / "metadata" / "dataset.json",
            "subjects": len(subjects), "events": len(ev), "shards": len(files)}


def yaib_to_meds(root, *, demo: str = "eicu_demo") -> dict:
    """The bundled YAIB demo cohort ``demo`` (alfia/datasets/yaib/data/DEMO) as a MEDS dataset in ``root``.

    subject_id = stay_id; stay k (in stay_id order) is admitted to the ICU at 2100-01-01 + k days. ricu's hourly
    value of hour h (the mean of [h, h + 1 h) after ICU admission, times floored) becomes one event at admission
    + h + 1 h, the END of its hour: a value of 23:00-23:59 is known at 24:00, not before. This is the
    leakage-safe conversion; every hour is converted, the 24:00-24:59 row (at + 25 h) included. Each concept is
    coded with the first concrete code the shipped concept map gives it (its ``example``, checked against its
    pattern), the value converted back into that code's unit (``(value - shift) / scale``; numeric_value is
    float32). Static rows (time null): ``GENDER//F|M``, height and weight (the map's first height and weight
    codes). Timed rows: ``MEDS_BIRTH`` at admission - age x 365.25 days (age at admission computes back exactly);
    ``HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM`` 2 h before the ICU admission, ``ICU_ADMISSION//...`` at it,
    ``ICU_DISCHARGE//...`` and ``HOSPITAL_DISCHARGE//HOME`` (``//DIED`` and ``MEDS_DEATH`` for label 1) at
    admission + 48 h, so that death in hospital is YAIB's label (ICU death) here. Splits: ALFIA's own splits of the
    cohort (bundled ``yaib-eicu-demo``: train -> train, val -> tuning, test -> held_out; other demos: every 10th
    stay held out, every 10th (offset 1) tuning). Labels: ``labels/labels.parquet`` (prediction_time = admission +
    24 h, boolean_value = label).

    Returns ``{"root", "data", "labels", "codes", "subjects", "events", "hourly_events", "hourly_by_concept",
    "deaths"}`` (``codes``: concept -> code used).
    """
    root = Path(root)
    folder = REPO / "alfia" / "datasets" / "yaib" / "data" / demo
    sta = pd.read_parquet(folder / "sta.parquet").sort_values("stay_id").reset_index(drop=True)
    dyn = pd.read_parquet(folder / "dyn.parquet")
    outc = pd.read_parquet(folder / "outc.parquet").set_index("stay_id")["label"]
    first = first_codes()
    stays = sta["stay_id"].to_numpy("int64")
    admit = pd.Series(YAIB_BASE + pd.to_timedelta(np.arange(len(stays)), unit="D"), index=stays)
    label = outc.reindex(stays).fillna(0).astype(int)

    # hourly values: one event at the end of each hour
    concepts = [c for c in dyn.columns if c not in ("stay_id", "time")]
    long = dyn.melt(id_vars=["stay_id", "time"], value_vars=concepts, var_name="concept", value_name="value")
    long = long.dropna(subset=["value"])
    long = long[long["stay_id"].isin(stays)]
    code_of = {c: first[c][0] for c in concepts}
    scale = long["concept"].map({c: first[c][1] for c in concepts})
    shift = long["concept"].map({c: first[c][2] for c in concepts})
    hourly = pd.DataFrame({
        "subject_id": long["stay_id"].to_numpy("int64"),
        "time": admit.reindex(long["stay_id"].to_numpy()).to_numpy() + pd.to_timedelta(long["time"]).to_numpy()
        + np.timedelta64(1, "h"),
        "code": long["concept"].map(code_of).to_numpy(),
        "numeric_value": ((long["value"] - shift) / scale).to_numpy(),
    })

    rows = []
    sex = sta["sex"].map(SEX_CODES)
    has = sex.notna().to_numpy()
    rows.append(pd.DataFrame({"subject_id": stays[has], "time": pd.NaT, "code": sex[has].to_numpy(),
                              "numeric_value": np.nan}))
    for concept in ("height", "weight"):
        code, sc, sh = first[concept]
        has = sta[concept].notna().to_numpy()
        rows.append(pd.DataFrame({"subject_id": stays[has], "time": pd.NaT, "code": code,
                                  "numeric_value": ((sta[concept] - sh) / sc).to_numpy()[has]}))
    has = sta["age"].notna().to_numpy()
    birth = admit.to_numpy()[has] - pd.to_timedelta(sta["age"].to_numpy()[has] * 365.25, unit="D").to_numpy()
    rows.append(pd.DataFrame({"subject_id": stays[has], "time": birth, "code": "MEDS_BIRTH", "numeric_value": np.nan}))
    end = admit + pd.Timedelta(hours=48)
    died = label.to_numpy() == 1
    for times, code, who in (
            (admit - pd.Timedelta(hours=2), "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", slice(None)),
            (admit, f"ICU_ADMISSION//{ICU_UNIT}", slice(None)),
            (end, f"ICU_DISCHARGE//{ICU_UNIT}", slice(None)),
            (end, "MEDS_DEATH", died),
            (end, "HOSPITAL_DISCHARGE//DIED", died),
            (end, "HOSPITAL_DISCHARGE//HOME", ~died)):
        rows.append(pd.DataFrame({"subject_id": stays[who], "time": times.to_numpy()[who], "code": code,
                                  "numeric_value": np.nan}))
    rows.append(hourly)
    events = pd.concat(rows, ignore_index=True)

    words = {row["concept"]: row["description"] for row in read_map_rows()}
    descriptions = {code: words[concept] for concept, (code, _, _) in first.items()}
    descriptions.update({"GENDER//F": "sex: female", "GENDER//M": "sex: male"})
    if demo == "eicu_demo":
        from alfia.cohorts.registry import load_bundled

        own = load_bundled("yaib-eicu-demo").df[["stay_id", "split"]]
        splits = pd.DataFrame({"subject_id": own["stay_id"].to_numpy("int64"),
                               "split": own["split"].map(SPLIT_NAMES).to_numpy()})
    else:
        rank = np.arange(len(stays)) % 10
        splits = pd.DataFrame({"subject_id": stays,
                               "split": np.where(rank == 0, "held_out", np.where(rank == 1, "tuning", "train"))})
    written = write_meds(root, events, codes=descriptions, splits=splits,
                         dataset_json={"dataset_name": f"yaib-{demo}-as-meds"})

    labels = root / "labels" / "labels.parquet"
    labels.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "subject_id": pa.array(stays, pa.int64()),
        "prediction_time": pa.array((admit + pd.Timedelta(hours=24)).to_numpy().astype("datetime64[us]"),
                                    pa.timestamp("us")),
        "boolean_value": pa.array(died, pa.bool_())}, schema=LABEL_SCHEMA), labels)
    return {"root": root, "data": written["data"], "labels": labels, "codes": {c: v[0] for c, v in first.items()},
            "subjects": len(stays), "events": written["events"], "hourly_events": len(hourly),
            "hourly_by_concept": long.groupby("concept").size().to_dict(), "deaths": int(died.sum())}
