"""Schema of the PhysioNet/CinC Challenge 2012 cohort, CW-24 style (see docs/physionet2012.md).

One row per ICU stay; every feature uses only measurements taken 0 <= t < 24 h after ICU admission
(``Time`` strictly before ``24:00``). Raw values outside the physiological ranges in ``CLEAN`` are treated
as missing before any feature is computed (never imputed); the schema's valid ranges are at least as wide.
"""

from __future__ import annotations

from alfia.cohorts.schema import Column, Schema

W = "first 24 h of the ICU stay (0 <= t < 24:00)"
ADMIT = "ICU admission (general descriptor at 00:00)"

ICU_TYPES = {1: "Coronary Care Unit", 2: "Cardiac Surgery Recovery Unit", 3: "Medical ICU", 4: "Surgical ICU"}

# Physiologically possible range of each raw parameter (inclusive); values outside are set to missing.
# -1 means missing everywhere in the challenge files. FiO2 given in percent (1 < v <= 100) is divided by 100.
CLEAN: dict[str, tuple[float, float]] = {
    "Age": (0, 120), "Height": (100, 250), "Weight": (20, 300),
    "GCS": (3, 15), "HR": (20, 300), "MAP": (20, 300), "NIMAP": (20, 300),
    "SysABP": (20, 300), "NISysABP": (20, 300), "Temp": (25, 45), "RespRate": (1, 100),
    "PaO2": (20, 700), "PaCO2": (5, 150), "FiO2": (0.21, 1.0), "pH": (6.5, 8.0),
    "Lactate": (0.1, 40), "BUN": (0, 300), "Creatinine": (0.1, 30), "HCO3": (1, 60),
    "WBC": (0, 600), "Platelets": (1, 2500), "Bilirubin": (0, 80), "Glucose": (10, 2000),
    "Na": (90, 200), "K": (1, 12), "Urine": (0, 10000), "MechVent": (0, 1),
}


def _c(name, kind, description, unit=None, valid=None, decimals=None, **kw) -> Column:
    return Column(name=name, kind=kind, description=description, unit=unit, valid=valid, decimals=decimals, **kw)


def _stats(prefix: str, what: str, unit: str | None, valid: tuple[float, float]) -> list[Column]:
    int_kind = "int"
    return [
        _c(f"{prefix}_first", int_kind, f"first {what} in the window", unit, valid, window=W),
        _c(f"{prefix}_last", int_kind, f"last {what} in the window", unit, valid, window=W),
        _c(f"{prefix}_min", int_kind, f"lowest {what} in the window", unit, valid, window=W),
        _c(f"{prefix}_max", int_kind, f"highest {what} in the window", unit, valid, window=W),
        _c(f"{prefix}_mean", "float", f"mean of the {what} values in the window", unit, valid, 1, window=W),
        _c(f"{prefix}_std", "float", f"population standard deviation (ddof=0; 0 for a single value) of the "
           f"{what} values in the window", unit, (0, valid[1] - valid[0]), 1, window=W),
    ]


COLUMNS: list[Column] = [
    # --- static descriptors ---
    _c("age", "float", "age at ICU admission (the challenge caps ages at 90)", "years", CLEAN["Age"], 0,
       window=ADMIT),
    _c("gender", "category", "sex recorded at ICU admission", categories=("female", "male"), window=ADMIT),
    _c("height", "float", "height at ICU admission; values outside 100-250 cm are missing", "cm",
       CLEAN["Height"], 0, window=ADMIT),
    _c("weight", "float", "admission weight (descriptor at 00:00), else the first Weight measurement in the "
       "window; values outside 20-300 kg are missing", "kg", CLEAN["Weight"], 1, window=W),
    _c("bmi", "float", "body-mass index weight / (height/100)^2 when both are known; values outside 10-80 "
       "are missing", "kg/m2", (10, 80), 1, window=W),
    _c("icu_type", "category", "type of the admitting ICU", categories=tuple(ICU_TYPES.values()),
       window=ADMIT),
    # --- dynamic assessments ---
    *_stats("gcs", "Glasgow Coma Scale score", "points", (3, 15)),
    *_stats("sofa", "hourly approximate SOFA score (see notes)", "points", (0, 24)),
    # --- severity scores computed in the window ---
    _c("sirs", "int", "SIRS criteria met at any time in the window (temperature, heart rate, respiratory "
       "rate or PaCO2, WBC; bands unavailable)", "criteria", (0, 4), window=W, label="SIRS"),
    _c("sapsii_approx", "int", "approximate SAPS II from the worst values in the window (no chronic "
       "diseases, no admission type)", "points", (0, 163), window=W, label="SAPS II (approx.)"),
    _c("oasis_approx", "int", "approximate OASIS from the worst values in the window (no pre-ICU length "
       "of stay; elective surgery approximated by the Cardiac Surgery Recovery Unit)", "points", (0, 75),
       window=W, label="OASIS (approx.)"),
    # --- vitals ---
    _c("hr_max", "float", "highest heart rate", "bpm", CLEAN["HR"], 0, window=W),
    _c("hr_min", "float", "lowest heart rate", "bpm", CLEAN["HR"], 0, window=W),
    _c("map_min", "float", "lowest mean arterial pressure (invasive MAP or non-invasive NIMAP)", "mmHg",
       CLEAN["MAP"], 0, window=W),
    _c("temp_max", "float", "highest body temperature", "°C", CLEAN["Temp"], 1, window=W),
    _c("temp_min", "float", "lowest body temperature", "°C", CLEAN["Temp"], 1, window=W),
    _c("resp_rate_max", "float", "highest respiratory rate", "breaths/min", CLEAN["RespRate"], 0, window=W),
    _c("urine_output", "float", "total urine output: sum of all Urine records in the window", "mL",
       (0, 240000), 0, window=W),
    _c("mech_vent", "binary", "mechanical ventilation charted at any time in the window (1) or never (0)",
       window=W),
    _c("pf_ratio_min", "float", "lowest PaO2/FiO2 ratio (each PaO2 with the latest FiO2 charted at or "
       "before it)", "mmHg", (20, 3334), 0, window=W),
    # --- labs ---
    _c("lactate_max", "float", "highest lactate", "mmol/L", CLEAN["Lactate"], 1, window=W),
    _c("ph_min", "float", "lowest arterial pH", None, CLEAN["pH"], 2, window=W),
    _c("hco3_min", "float", "lowest serum bicarbonate", "mmol/L", CLEAN["HCO3"], 0, window=W),
    _c("bun_max", "float", "highest blood urea nitrogen", "mg/dL", CLEAN["BUN"], 0, window=W),
    _c("creatinine_max", "float", "highest serum creatinine", "mg/dL", CLEAN["Creatinine"], 1, window=W),
    _c("wbc_max", "float", "highest white blood cell count", "K/uL", CLEAN["WBC"], 1, window=W),
    _c("platelets_min", "float", "lowest platelet count", "K/uL", CLEAN["Platelets"], 0, window=W),
    _c("bilirubin_max", "float", "highest total bilirubin", "mg/dL", CLEAN["Bilirubin"], 1, window=W),
    _c("glucose_max", "float", "highest serum glucose", "mg/dL", CLEAN["Glucose"], 0, window=W),
    # --- reference only (never a model input, never in a text) ---
    _c("ref_saps1", "float", "SAPS-I supplied by the challenge's Outcomes file (for comparison only)",
       "points", (0, 100), 0, role="reference", window="as supplied by the challenge", label="SAPS-I (challenge)"),
    _c("ref_sofa", "float", "SOFA supplied by the challenge's Outcomes file (for comparison only)",
       "points", (0, 24), 0, role="reference", window="as supplied by the challenge", label="SOFA (challenge)"),
]

NOTES: tuple[str, ...] = (
    "Window: only measurements with 0 <= Time < 24:00 after ICU admission are used; -1 means missing.",
    "Raw values outside physiological ranges (alfia.datasets.physionet2012.schema.CLEAN) are missing; "
    "nothing is imputed.",
    "SOFA is an hourly approximation: cardiovascular scores 1 for MAP < 70 only (vasopressor doses are "
    "absent); each component's score is carried forward within the window; components never measured "
    "score 0; the urine criterion uses the window's total urine and applies at hour 23 only.",
    "SAPS II lacks chronic diseases and admission type (scored 0); OASIS lacks pre-ICU length of stay "
    "(scored 0) and uses the Cardiac Surgery Recovery Unit as a stand-in for elective surgery.",
    "Missing score components score 0 (standard practice); a score is missing when none of its "
    "physiological components was measured.",
)

SCHEMA = Schema(
    name="physionet2012",
    description="PhysioNet/CinC Challenge 2012, one row per ICU stay, CW-24 style features from the first 24 h",
    columns=tuple(COLUMNS),
    notes=NOTES,
)
