"""The prediction times of a MEDS cohort: from a label file (ACES / MEDS-DEV) or from a built-in task.

Every task gives one row per prediction: ``subject_id``, ``prediction_time``, the label, and the input window
``[start, end]`` (``start`` null: the whole history; ``end_inclusive``: whether data at ``end`` is used) and the
``anchor`` at which age is computed. Static rows (``time`` null) are inputs of every window.

- **Label files** (``--labels``): inputs are the events in ``[prediction_time - 24 h, prediction_time]`` (MEDS:
  data at or before the prediction time may be used); age at ``prediction_time - 24 h``.
- ``cw24-in-hospital`` (the paper's CW-24 on MEDS): trigger an ICU admission ``t``; inputs ``[t, t + 24 h)``,
  prediction at ``t + 24 h``; label 1 when ``MEDS_DEATH`` comes at or before the first hospital discharge after
  ``t``; only the first ICU admission of each hospital stay (since the last hospital admission), age >= 18 at
  ``t``; stays with no hospital discharge and no death after ``t`` (outcome unknown) or no birth date (age
  unknown) are left out.
- ``meds-dev-in-icu-first-24h`` (MEDS-DEV's ``mortality/in_icu/first_24h``): trigger every ICU admission ``t``;
  inputs the whole history up to ``t + 24 h`` inclusive; stays with an ICU admission, an ICU discharge or a death
  in the gap ``(t, t + 48 h]`` are left out; label 1 when the first ICU discharge or death after ``t + 48 h`` is
  a death; no ICU discharge and no death after the gap: left out (outcome unknown).

The code patterns (regular expressions, whole code) default to MIMIC-IV-MEDS's and match eICU-MEDS's too; pass
others with ``--code ROLE=REGEX``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from alfia.cohorts.task import CW24, YAIB_MORTALITY24, Task
from alfia.errors import AlfiaError

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class TaskCodes:
    """The code patterns the built-in tasks read (regular expressions matched against the whole code)."""

    icu_admission: str = r"ICU_ADMISSION//.*"
    icu_discharge: str = r"ICU_DISCHARGE//.*"
    hospital_admission: str = r"HOSPITAL_ADMISSION//.*"
    hospital_discharge: str = r"HOSPITAL_DISCHARGE//.*"
    death: str = r"MEDS_DEATH.*"
    birth: str = r"MEDS_BIRTH"

    @classmethod
    def parse(cls, overrides: list[str] | tuple[str, ...] = ()) -> TaskCodes:
        """``["icu_admission=ICU_IN//.*", ...]`` over the defaults."""
        names = [f.name for f in fields(cls)]
        codes = cls()
        for item in overrides:
            role, sep, pattern = item.partition("=")
            if not sep or role not in names:
                raise AlfiaError(f"--code {item!r}: write ROLE=REGEX with ROLE one of {', '.join(names)}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise AlfiaError(f"--code {role}: {pattern!r} is not a regular expression ({exc})") from None
            codes = replace(codes, **{role: pattern})
        return codes

    def roles(self) -> dict[str, re.Pattern]:
        return {f.name: re.compile(getattr(self, f.name)) for f in fields(self)}

    def outcome_patterns(self) -> list[re.Pattern]:
        """Codes that say how a stay ended: never a feature (a discharge location of DIED is the label)."""
        return [re.compile(p) for p in (self.death, self.icu_discharge, self.hospital_discharge)]


CW24_IN_HOSPITAL = Task(
    name="cw24-in-hospital",
    label=CW24.label,
    outcome="death in hospital",
    exclusions=("not the first ICU admission since the last hospital admission", "age < 18 years at ICU admission",
                "no birth date (age unknown)", "no hospital discharge and no death after ICU admission (outcome "
                "unknown)"),
    source="the ALFIA paper's CW-24 (section 3.1) on a MEDS dataset: trigger ICU_ADMISSION, label MEDS_DEATH at or "
           "before the next HOSPITAL_DISCHARGE",
)

MEDS_DEV_IN_ICU = Task(
    name="meds-dev-in-icu-first-24h",
    label=YAIB_MORTALITY24.label,
    outcome="death in the ICU",
    inputs="the whole history up to ICU admission + 24 h (inclusive)",
    exclusions=("an ICU admission, an ICU discharge or a death within (24 h, 48 h] of ICU admission",
                "no ICU discharge and no death after 48 h (outcome unknown)"),
    source="MEDS-DEV task mortality/in_icu/first_24h (github Medical-Event-Data-Standard/MEDS-DEV)",
)

BUILT_IN = {"cw24-in-hospital": CW24_IN_HOSPITAL, "meds-dev-in-icu-first-24h": MEDS_DEV_IN_ICU}


def labels_task(path: str) -> Task:
    """The task of a label file: its boolean label at each prediction time, from the 24 hours before it."""
    return Task(name=f"meds-labels:{path}", label="outcome", outcome="label 1 (boolean_value) of the label file",
                inputs="the 24 h before the prediction time (inclusive) and the static rows",
                source=f"MEDS label file(s) {path}")


def label_stays(labels: pd.DataFrame) -> pd.DataFrame:
    """Prediction rows of a label file (see :func:`alfia.datasets.meds.standard.read_labels`)."""
    t = labels["prediction_time"]
    return pd.DataFrame({"subject_id": labels["subject_id"].astype("int64"), "prediction_time": t,
                         "start": t - 24 * HOUR, "end": t, "end_inclusive": True, "anchor": t - 24 * HOUR,
                         "label": labels["boolean_value"].astype("int64")})


def task_stays(name: str, events: pd.DataFrame, codes: TaskCodes) -> tuple[pd.DataFrame, dict]:
    """Prediction rows of a built-in task from the role events (``subject_id``, ``time``, ``role``; timed rows),
    and the attrition: how many ICU admissions each step left out."""
    events = events.dropna(subset=["time"]).sort_values(["subject_id", "time"], kind="stable")
    if name == "cw24-in-hospital":
        return _cw24(events)
    if name == "meds-dev-in-icu-first-24h":
        return _meds_dev(events)
    raise AlfiaError(f"unknown MEDS task {name!r}; choose one of {', '.join(BUILT_IN)} or pass --labels")


def birth_times(events: pd.DataFrame) -> pd.Series:
    """The first MEDS_BIRTH time per subject."""
    births = events[events["role"] == "birth"].dropna(subset=["time"])
    return births.groupby("subject_id")["time"].min()


def _next_time(t: pd.DataFrame, targets: pd.DataFrame, *, after: str, strict: bool) -> pd.Series:
    """For each row of ``t`` (subject_id, ``after`` time), the first time in ``targets`` (subject_id, time) at or
    after (``strict``: after) it, per subject; NaT when none."""
    left = _probe(t, after)
    right = _targets(targets)
    if strict:  # merge_asof matches equal keys: move the probe a microsecond on
        left = left.assign(time=(left["time"] + pd.Timedelta(microseconds=1)).astype("datetime64[us]"))
    merged = pd.merge_asof(left, right, left_on="time", right_on="found", by="subject_id", direction="forward")
    return merged.set_index("index")["found"].reindex(t.index)


def _previous_time(t: pd.DataFrame, targets: pd.DataFrame, *, before: str) -> pd.Series:
    left, right = _probe(t, before), _targets(targets)
    merged = pd.merge_asof(left, right, left_on="time", right_on="found", by="subject_id", direction="backward")
    return merged.set_index("index")["found"].reindex(t.index)


def _probe(t: pd.DataFrame, column: str) -> pd.DataFrame:
    out = t[["subject_id", column]].rename(columns={column: "time"}).reset_index()
    return out.assign(time=out["time"].astype("datetime64[us]")).sort_values("time")


def _targets(targets: pd.DataFrame) -> pd.DataFrame:
    out = targets[["subject_id", "time"]].rename(columns={"time": "found"})
    return out.assign(found=out["found"].astype("datetime64[us]")).sort_values("found")


def _role(events: pd.DataFrame, role: str) -> pd.DataFrame:
    return events[events["role"] == role]


def _admissions(events: pd.DataFrame) -> pd.DataFrame:
    icu = _role(events, "icu_admission")[["subject_id", "time"]].drop_duplicates()
    return icu.rename(columns={"time": "t"}).reset_index(drop=True)


def _cw24(events: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    stays = _admissions(events)
    attrition = {"icu_admissions": int(len(stays))}
    # the first ICU admission since the last hospital admission (or since the start of the record)
    stays["hospital_admission"] = _previous_time(stays, _role(events, "hospital_admission"), before="t")
    key = stays["hospital_admission"].fillna(pd.Timestamp.min)
    stays = stays[stays["t"] == stays.groupby(["subject_id", key])["t"].transform("min")]
    attrition["not_first_icu_admission_of_hospital_stay"] = attrition["icu_admissions"] - int(len(stays))
    discharge = _next_time(stays, _role(events, "hospital_discharge"), after="t", strict=False)
    death = _next_time(stays, _role(events, "death"), after="t", strict=False)
    known = discharge.notna() | death.notna()
    attrition["outcome_unknown"] = int((~known).sum())
    stays = stays[known].assign(label=(death.notna() & (discharge.isna() | (death <= discharge)))[known])
    stays, attrition = _adults(stays, events, attrition)
    t = stays["t"]
    out = pd.DataFrame({"subject_id": stays["subject_id"], "prediction_time": t + 24 * HOUR, "start": t,
                        "end": t + 24 * HOUR, "end_inclusive": False, "anchor": t,
                        "label": stays["label"].astype("int64")})
    return out.reset_index(drop=True), attrition


def _adults(stays: pd.DataFrame, events: pd.DataFrame, attrition: dict) -> tuple[pd.DataFrame, dict]:
    birth = stays["subject_id"].map(birth_times(events))
    age = (stays["t"] - birth) / DAY / 365.25
    attrition["age_unknown"] = int(age.isna().sum())
    attrition["age_under_18"] = int((age < 18).sum())
    return stays[age.notna() & (age >= 18)], attrition


def _meds_dev(events: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    stays = _admissions(events)
    attrition = {"icu_admissions": int(len(stays))}
    gap_end = stays["t"] + 48 * HOUR
    ends = pd.concat([_role(events, r) for r in ("icu_discharge", "death")])
    in_gap = []
    for role_events in (_role(events, "icu_admission"), ends):
        nxt = _next_time(stays, role_events, after="t", strict=True)
        in_gap.append(nxt.notna() & (nxt <= gap_end))
    excluded = in_gap[0] | in_gap[1]
    attrition["event_in_gap_24h_to_48h"] = int(excluded.sum())
    stays = stays[~excluded]
    probe = stays.assign(gap_end=stays["t"] + 48 * HOUR)
    end = _next_time(probe, ends, after="gap_end", strict=True)
    death = _next_time(probe, _role(events, "death"), after="gap_end", strict=True)
    known = end.notna()
    attrition["outcome_unknown"] = int((~known).sum())
    stays = stays[known].assign(label=(death.notna() & (death == end))[known])
    t = stays["t"]
    out = pd.DataFrame({"subject_id": stays["subject_id"], "prediction_time": t + 24 * HOUR,
                        "start": pd.Series(pd.NaT, index=t.index, dtype=t.dtype), "end": t + 24 * HOUR,
                        "end_inclusive": True, "anchor": t, "label": stays["label"].astype("int64")})
    return out.reset_index(drop=True), attrition


def check_unique(stays: pd.DataFrame) -> None:
    """Two prediction rows of one subject at one time would be one stay twice."""
    dup = stays.duplicated(["subject_id", "prediction_time"])
    if dup.any():
        row = stays[dup].iloc[0]
        raise AlfiaError(f"subject {row['subject_id']} has two predictions at {row['prediction_time']}; a MEDS "
                         "cohort has one row per (subject_id, prediction_time)")


def assign_stay_ids(stays: pd.DataFrame) -> pd.DataFrame:
    """A unique integer ``stay_id`` per row, 1.. in (subject_id, prediction_time) order: stable for a dataset and
    task, whatever order the rows came in."""
    stays = stays.sort_values(["subject_id", "prediction_time"], kind="stable").reset_index(drop=True)
    return stays.assign(stay_id=np.arange(1, len(stays) + 1, dtype="int64"))
