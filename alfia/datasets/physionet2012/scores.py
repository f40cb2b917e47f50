"""Severity scores of the PhysioNet 2012 cohort from the first 24 hours: SOFA (hourly, approximate), SAPS II and
OASIS (from the worst values, approximate) and the SIRS criteria; each table as in MIT-LCP mimic-code, and what the
challenge data lacks is documented in the schema's notes (``alfia.datasets.physionet2012.schema``).
"""

from __future__ import annotations

from bisect import bisect_right

from alfia.datasets.physionet2012.schema import ICU_TYPES

Series = dict[str, list[tuple[int, float]]]  # parameter -> [(minute, value)] in the window, cleaned


def sofa_respiration(pf: float, ventilated: bool) -> int:
    if pf < 100 and ventilated:
        return 4
    if pf < 200 and ventilated:
        return 3
    if pf < 300:
        return 2
    return 1 if pf < 400 else 0


def sofa_coagulation(platelets: float) -> int:
    return 4 if platelets < 20 else 3 if platelets < 50 else 2 if platelets < 100 else 1 if platelets < 150 else 0


def sofa_liver(bilirubin: float) -> int:
    return 4 if bilirubin >= 12 else 3 if bilirubin >= 6 else 2 if bilirubin >= 2 else 1 if bilirubin >= 1.2 else 0


def sofa_cardiovascular(map_: float) -> int:
    return 1 if map_ < 70 else 0  # vasopressor doses are not in the challenge data: at most 1


def sofa_cns(gcs: float) -> int:
    return 4 if gcs < 6 else 3 if gcs < 10 else 2 if gcs < 13 else 1 if gcs < 15 else 0


def sofa_renal_creatinine(creatinine: float) -> int:
    return 4 if creatinine >= 5 else 3 if creatinine >= 3.5 else 2 if creatinine >= 2 else 1 if creatinine >= 1.2 else 0


def sofa_renal_urine(ml_per_day: float) -> int:
    return 4 if ml_per_day < 200 else 3 if ml_per_day < 500 else 0


def sirs_score(temp_min=None, temp_max=None, hr_max=None, rr_max=None, paco2_min=None, wbc_min=None,
               wbc_max=None) -> int | None:
    """SIRS criteria (0-4) from worst values; missing values meet no criterion; None if all are missing."""
    vals = (temp_min, temp_max, hr_max, rr_max, paco2_min, wbc_min, wbc_max)
    if all(v is None for v in vals):
        return None
    temp = (temp_min is not None and temp_min < 36) or (temp_max is not None and temp_max > 38)
    hr = hr_max is not None and hr_max > 90
    resp = (rr_max is not None and rr_max > 20) or (paco2_min is not None and paco2_min < 32)
    wbc = (wbc_min is not None and wbc_min < 4) or (wbc_max is not None and wbc_max > 12)
    return int(temp) + int(hr) + int(resp) + int(wbc)


def sapsii_components(v: dict) -> dict[str, int | None]:
    """SAPS II points per component (Le Gall 1993, as in MIT-LCP mimic-code); None where unmeasured."""
    g = v.get
    pts: dict[str, int | None] = {}
    age = g("age")
    pts["age"] = None if age is None else (0 if age < 40 else 7 if age < 60 else 12 if age < 70 else
                                           15 if age < 75 else 16 if age < 80 else 18)
    lo, hi = g("hr_min"), g("hr_max")
    pts["hr"] = None if lo is None else (11 if lo < 40 else 7 if hi >= 160 else 4 if hi >= 120 else
                                         2 if lo < 70 else 0)
    lo, hi = g("sbp_min"), g("sbp_max")
    pts["sbp"] = None if lo is None else (13 if lo < 70 else 5 if lo < 100 else 2 if hi >= 200 else 0)
    hi = g("temp_max")
    pts["temp"] = None if hi is None else (3 if hi >= 39 else 0)
    pf = g("pf_vent_min")  # only PaO2/FiO2 while ventilated counts
    pts["pao2fio2"] = None if pf is None else (11 if pf < 100 else 9 if pf < 200 else 6)
    uo = g("urine_output")
    pts["urine"] = None if uo is None else (11 if uo < 500 else 4 if uo < 1000 else 0)
    hi = g("bun_max")
    pts["bun"] = None if hi is None else (0 if hi < 28 else 6 if hi < 84 else 10)
    lo, hi = g("wbc_min"), g("wbc_max")
    pts["wbc"] = None if lo is None else (12 if lo < 1 else 3 if hi >= 20 else 0)
    lo, hi = g("k_min"), g("k_max")
    pts["potassium"] = None if lo is None else (3 if lo < 3 else 3 if hi >= 5 else 0)
    lo, hi = g("na_min"), g("na_max")
    pts["sodium"] = None if lo is None else (5 if lo < 125 else 1 if hi >= 145 else 0)
    lo = g("hco3_min")
    pts["bicarbonate"] = None if lo is None else (6 if lo < 15 else 3 if lo < 20 else 0)
    hi = g("bilirubin_max")
    pts["bilirubin"] = None if hi is None else (0 if hi < 4 else 4 if hi < 6 else 9)
    lo = g("gcs_min")
    pts["gcs"] = None if lo is None else (26 if lo < 6 else 13 if lo < 9 else 7 if lo < 11 else 5 if lo < 14 else 0)
    return pts


def oasis_components(v: dict) -> dict[str, int | None]:
    """OASIS points per component (Johnson 2013, as in MIT-LCP mimic-code); None where unmeasured."""
    g = v.get
    pts: dict[str, int | None] = {}
    age = g("age")
    pts["age"] = None if age is None else (0 if age < 24 else 3 if age <= 53 else 6 if age <= 77 else
                                           9 if age <= 89 else 7)
    gcs = g("gcs_min")
    pts["gcs"] = None if gcs is None else (10 if gcs <= 7 else 4 if gcs < 14 else 3 if gcs == 14 else 0)
    lo, hi = g("hr_min"), g("hr_max")
    pts["hr"] = None if lo is None else (6 if hi > 125 else 4 if lo < 33 else 3 if hi >= 107 else
                                         1 if hi >= 89 else 0)
    lo, hi = g("map_min"), g("map_max")
    pts["map"] = None if lo is None else (4 if lo < 20.65 else 3 if lo < 51 else 3 if hi > 143.44 else
                                          2 if lo < 61.33 else 0)
    lo, hi = g("rr_min"), g("resp_rate_max")
    pts["resp_rate"] = None if lo is None else (10 if lo < 6 else 9 if hi > 44 else 6 if hi > 30 else
                                                1 if hi > 22 else 1 if lo < 13 else 0)
    lo, hi = g("temp_min"), g("temp_max")
    if lo is None:
        pts["temp"] = None
    elif hi > 39.88:
        pts["temp"] = 6
    elif 33.22 <= lo <= 35.93 or 33.22 <= hi <= 35.93:
        pts["temp"] = 4
    elif lo < 33.22:
        pts["temp"] = 3
    elif 35.93 < lo <= 36.39 or 36.89 <= hi <= 39.88:
        pts["temp"] = 2
    else:
        pts["temp"] = 0
    uo = g("urine_output")
    pts["urine"] = None if uo is None else (10 if uo < 671.09 else 8 if uo > 6896.80 else 5 if uo <= 1426.99
                                            else 1 if uo <= 2544.14 else 0)
    pts["mech_vent"] = 9 if g("mech_vent") == 1 else 0
    icu = g("icu_type")
    # elective surgery is not in the data: the Cardiac Surgery Recovery Unit stands in for it
    pts["elective_surgery"] = None if icu is None else (0 if icu == ICU_TYPES[2] else 6)
    return pts


def total_points(pts: dict[str, int | None], exclude: tuple[str, ...]) -> int | None:
    """Sum of points (missing components score 0); None when no physiological component was measured."""
    if all(p is None for k, p in pts.items() if k not in exclude):
        return None
    return int(sum(p for p in pts.values() if p is not None))


def pf_ratios(series: Series) -> list[tuple[int, float, bool]]:
    """(minute, PaO2/FiO2, ventilated) for every PaO2 with a FiO2 charted at or before it."""
    fio2 = series.get("FiO2", [])
    f_times = [t for t, _ in fio2]
    vent_times = [t for t, v in series.get("MechVent", []) if v >= 1]
    out = []
    for t, pao2 in series.get("PaO2", []):
        k = bisect_right(f_times, t)
        if k == 0:
            continue
        ventilated = bool(vent_times) and vent_times[0] <= t
        out.append((t, pao2 / fio2[k - 1][1], ventilated))
    return out


def hourly_sofa(series: Series, pf_pairs: list[tuple[int, float, bool]] | None = None) -> list[int]:
    """Approximate SOFA for each hour from the first hour with any SOFA input measured to hour 23.

    Per hour each component scores its worst measurement of that hour, else carries its last score
    forward; a component not yet measured scores 0. Urine (a 24-h criterion) applies at hour 23 only,
    from the window's total. Empty when no SOFA input was measured in the window.
    """
    if pf_pairs is None:
        pf_pairs = pf_ratios(series)
    inputs = ("PaO2", "FiO2", "MechVent", "Platelets", "Bilirubin", "MAP", "NIMAP", "GCS", "Creatinine",
              "Urine")
    hours = [t // 60 for p in inputs for t, _ in series.get(p, [])]
    if not hours:
        return []
    start = min(hours)
    components: list[list[int | None]] = []

    def component(points: list[tuple[int, int]]) -> None:
        per_hour: list[int | None] = [None] * 24
        for t, s in points:
            h = t // 60
            per_hour[h] = s if per_hour[h] is None else max(per_hour[h], s)
        components.append(per_hour)

    component([(t, sofa_respiration(pf, vent)) for t, pf, vent in pf_pairs])
    component([(t, sofa_coagulation(v)) for t, v in series.get("Platelets", [])])
    component([(t, sofa_liver(v)) for t, v in series.get("Bilirubin", [])])
    component([(t, sofa_cardiovascular(v)) for p in ("MAP", "NIMAP") for t, v in series.get(p, [])])
    component([(t, sofa_cns(v)) for t, v in series.get("GCS", [])])
    component([(t, sofa_renal_creatinine(v)) for t, v in series.get("Creatinine", [])])
    totals = [0] * 24
    for per_hour in components:
        last = 0
        for h in range(24):
            if per_hour[h] is not None:
                last = per_hour[h]
            totals[h] += last
    urine = series.get("Urine")
    if urine:
        renal = components[-1]
        renal_23 = next((s for s in reversed(renal) if s is not None), 0)
        totals[23] += max(0, sofa_renal_urine(sum(v for _, v in urine)) - renal_23)
    return totals[start:]
