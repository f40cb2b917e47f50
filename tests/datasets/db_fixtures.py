"""Schema-true fixture databases for the database cohort builders: a few hand-made patients per table, with the
real MIMIC-IV / mimic-code / eICU table and column names and types, written to DuckDB or to PostgreSQL.

``PostgresServer`` starts a throw-away cluster (initdb + pg_ctl, trust auth, loopback port, temp dir); as root
it runs the server binaries as the ``postgres`` user through ``runuser``/``su``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

T0 = datetime(2150, 3, 1, 10, 30)  # the first patient's ICU admission (MIMIC-style shifted dates)


def h(hours: float, base: datetime = T0) -> datetime:
    return base + timedelta(hours=hours)


# ----------------------------------------------------------------------------------------------------------------
# MIMIC-IV (hosp/icu v3.1 columns) and mimic-code derived concepts (the columns the builder reads plus the others)
# ----------------------------------------------------------------------------------------------------------------
MIMIC_TABLES: dict[str, list[tuple[str, str]]] = {
    "mimiciv_hosp.patients": [
        ("subject_id", "INTEGER"), ("gender", "CHAR(1)"), ("anchor_age", "SMALLINT"), ("anchor_year", "SMALLINT"),
        ("anchor_year_group", "VARCHAR(20)"), ("dod", "DATE")],
    "mimiciv_hosp.admissions": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("admittime", "TIMESTAMP"), ("dischtime", "TIMESTAMP"),
        ("deathtime", "TIMESTAMP"), ("admission_type", "VARCHAR(40)"), ("admit_provider_id", "VARCHAR(10)"),
        ("admission_location", "VARCHAR(60)"), ("discharge_location", "VARCHAR(60)"),
        ("insurance", "VARCHAR(255)"), ("language", "VARCHAR(25)"), ("marital_status", "VARCHAR(30)"),
        ("race", "VARCHAR(80)"), ("edregtime", "TIMESTAMP"), ("edouttime", "TIMESTAMP"),
        ("hospital_expire_flag", "SMALLINT")],
    "mimiciv_hosp.diagnoses_icd": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("seq_num", "INTEGER"), ("icd_code", "CHAR(7)"),
        ("icd_version", "SMALLINT")],
    "mimiciv_icu.icustays": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"),
        ("first_careunit", "VARCHAR(255)"), ("last_careunit", "VARCHAR(255)"), ("intime", "TIMESTAMP"),
        ("outtime", "TIMESTAMP"), ("los", "DOUBLE PRECISION")],
    "mimiciv_derived.age": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("admittime", "TIMESTAMP"), ("anchor_age", "SMALLINT"),
        ("anchor_year", "SMALLINT"), ("age", "BIGINT")],
    "mimiciv_derived.first_day_height": [("subject_id", "INTEGER"), ("stay_id", "INTEGER"), ("height", "NUMERIC")],
    "mimiciv_derived.first_day_weight": [
        ("subject_id", "INTEGER"), ("stay_id", "INTEGER"), ("weight_admit", "DOUBLE PRECISION"),
        ("weight", "DOUBLE PRECISION"), ("weight_min", "DOUBLE PRECISION"), ("weight_max", "DOUBLE PRECISION")],
    "mimiciv_derived.apsiii": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"), ("apsiii", "INTEGER"),
        ("apsiii_prob", "DOUBLE PRECISION")],
    "mimiciv_derived.sapsii": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"), ("starttime", "TIMESTAMP"),
        ("endtime", "TIMESTAMP"), ("sapsii", "INTEGER"), ("sapsii_prob", "DOUBLE PRECISION")],
    "mimiciv_derived.sirs": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"), ("sirs", "INTEGER")],
    "mimiciv_derived.lods": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"), ("lods", "INTEGER")],
    "mimiciv_derived.meld": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"),
        ("meld_initial", "DOUBLE PRECISION"), ("meld", "DOUBLE PRECISION")],
    "mimiciv_derived.oasis": [
        ("subject_id", "INTEGER"), ("hadm_id", "INTEGER"), ("stay_id", "INTEGER"), ("starttime", "TIMESTAMP"),
        ("endtime", "TIMESTAMP"), ("oasis", "INTEGER"), ("oasis_prob", "DOUBLE PRECISION")],
    "mimiciv_derived.gcs": [
        ("subject_id", "INTEGER"), ("stay_id", "INTEGER"), ("charttime", "TIMESTAMP"), ("gcs", "DOUBLE PRECISION"),
        ("gcs_motor", "DOUBLE PRECISION"), ("gcs_verbal", "DOUBLE PRECISION"), ("gcs_eyes", "DOUBLE PRECISION"),
        ("gcs_unable", "INTEGER")],
    "mimiciv_derived.sofa": [
        ("stay_id", "INTEGER"), ("hr", "BIGINT"), ("starttime", "TIMESTAMP"), ("endtime", "TIMESTAMP"),
        ("respiration_24hours", "INTEGER"), ("coagulation_24hours", "INTEGER"), ("liver_24hours", "INTEGER"),
        ("cardiovascular_24hours", "INTEGER"), ("cns_24hours", "INTEGER"), ("renal_24hours", "INTEGER"),
        ("sofa_24hours", "INTEGER")],
}

# Expected cohort (stay_id -> label): 301 (subject 1), 302 (subject 2's first stay), 304 (subject 4's first ICU
# admission), 305 (subject 5, sparse data). Excluded: 312 (second ICU stay, same admission), 322 (subject 2's
# later admission), 303 (17 years old).
MIMIC_EXPECTED = {301: 0, 302: 1, 304: 0, 305: 1}


def mimic_rows(crowd: int = 0) -> dict[str, list[dict]]:
    """The hand-made patients below; ``crowd`` more plain adult stays (every third one died, sicker scores)
    make a cohort large enough to train on, with both outcomes in every split."""
    rows: dict[str, list[dict]] = {t: [] for t in MIMIC_TABLES}

    def patient(sid, gender, anchor_age, anchor_year=2150):
        rows["mimiciv_hosp.patients"].append(dict(subject_id=sid, gender=gender, anchor_age=anchor_age,
                                                  anchor_year=anchor_year, anchor_year_group="2011 - 2013"))

    def admission(sid, hadm, admit, died, **kw):
        base = dict(subject_id=sid, hadm_id=hadm, admittime=admit, dischtime=admit + timedelta(days=9),
                    admission_type="EW EMER.", admission_location="EMERGENCY ROOM", discharge_location="HOME",
                    insurance="Medicare", language="English", marital_status="MARRIED", race="WHITE",
                    hospital_expire_flag=died)
        base.update(kw)
        rows["mimiciv_hosp.admissions"].append(base)
        rows["mimiciv_derived.age"].append(dict(subject_id=sid, hadm_id=hadm, admittime=admit,
                                                anchor_age=None, age=None))

    def stay(sid, hadm, stay_id, intime, unit="Medical Intensive Care Unit (MICU)"):
        rows["mimiciv_icu.icustays"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, first_careunit=unit,
                                                 last_careunit=unit, intime=intime,
                                                 outtime=intime + timedelta(days=3), los=3.0))

    def scores(sid, hadm, stay_id, intime, apsiii, sapsii, sirs, lods, meld, oasis, height, weight):
        rows["mimiciv_derived.apsiii"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, apsiii=apsiii))
        rows["mimiciv_derived.sapsii"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, sapsii=sapsii,
                                                   starttime=intime, endtime=intime + timedelta(hours=24)))
        rows["mimiciv_derived.sirs"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, sirs=sirs))
        rows["mimiciv_derived.lods"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, lods=lods))
        rows["mimiciv_derived.meld"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, meld=meld,
                                                 meld_initial=meld))
        rows["mimiciv_derived.oasis"].append(dict(subject_id=sid, hadm_id=hadm, stay_id=stay_id, oasis=oasis,
                                                  starttime=intime, endtime=intime + timedelta(hours=24)))
        rows["mimiciv_derived.first_day_height"].append(dict(subject_id=sid, stay_id=stay_id, height=height))
        rows["mimiciv_derived.first_day_weight"].append(dict(subject_id=sid, stay_id=stay_id, weight=weight,
                                                             weight_admit=weight))

    def gcs(sid, stay_id, at, value):
        rows["mimiciv_derived.gcs"].append(dict(subject_id=sid, stay_id=stay_id, charttime=at, gcs=value))

    def sofa(stay_id, intime, values, start_hr=0):
        base = intime.replace(minute=0) + timedelta(hours=1)  # mimic-code's hour clock: intime rounded up
        for i, v in enumerate(values):
            hr = start_hr + i
            end = base + timedelta(hours=hr)
            rows["mimiciv_derived.sofa"].append(dict(stay_id=stay_id, hr=hr, starttime=end - timedelta(hours=1),
                                                     endtime=end, sofa_24hours=v))

    # subject 1: one admission, one stay; GCS inside the window and a GCS of 3 at hour 25 (must change nothing)
    patient(1, "F", 70)
    admission(1, 201, h(-5), 0, marital_status="WIDOWED", race="BLACK/CAPE VERDEAN", insurance="Private")
    stay(1, 201, 301, T0)
    scores(1, 201, 301, T0, 40, 30, 2, 4, 11.0, 28, 165.1, 70.25)
    for at, v in ((-2, 9), (0.5, 13), (6, 14), (6, 12), (23.9, 15), (24, 3), (25, 3)):
        gcs(1, 301, h(at), v)
    sofa(301, T0, [1, 2, 2, 3] + [4] * 22 + [9] * 4)  # hr 0..29: ends at 11:00 + hr h
    rows["mimiciv_hosp.diagnoses_icd"] += [
        dict(subject_id=1, hadm_id=201, seq_num=1, icd_code="F17210", icd_version=10),
        dict(subject_id=1, hadm_id=201, seq_num=2, icd_code="F1010", icd_version=10)]

    # subject 2: two stays in the first ICU admission, and a later admission with another stay
    t2 = datetime(2160, 7, 4, 8, 0)
    patient(2, "M", 80, 2160)
    admission(2, 202, t2 - timedelta(hours=2), 1, marital_status=None, race="HISPANIC/LATINO - PUERTO RICAN",
              insurance="No charge", language="Spanish", admission_type="URGENT",
              admission_location="TRANSFER FROM HOSPITAL")
    admission(2, 222, t2 + timedelta(days=60), 0)
    stay(2, 202, 302, t2, unit="Cardiac Vascular Intensive Care Unit (CVICU)")
    stay(2, 202, 312, t2 + timedelta(days=4))
    stay(2, 222, 322, t2 + timedelta(days=60, hours=1))
    scores(2, 202, 302, t2, 70, 50, 4, 8, 25.0, 40, 180.0, 95.0)
    gcs(2, 302, t2 + timedelta(hours=1), 7)
    gcs(2, 312, t2 + timedelta(days=4, hours=1), 3)
    sofa(302, t2, [6, 8, 10])
    sofa(312, t2 + timedelta(days=4), [12, 12])
    rows["mimiciv_hosp.diagnoses_icd"].append(dict(subject_id=2, hadm_id=222, seq_num=1, icd_code="3051",
                                                   icd_version=9))  # later admission: must not count

    # subject 3: 17 years old at the ICU admission -> excluded
    t3 = datetime(2170, 1, 1, 12, 0)
    patient(3, "F", 17, 2170)
    admission(3, 203, t3, 0)
    stay(3, 203, 303, t3)
    gcs(3, 303, t3 + timedelta(hours=2), 15)

    # subject 4: a first admission without ICU stay, then an admission with one
    t4 = datetime(2140, 5, 5, 23, 15)
    patient(4, "M", 45, 2139)
    admission(4, 204, t4 - timedelta(days=200), 0)
    admission(4, 214, t4 - timedelta(hours=30), 0, race="ASIAN - CHINESE", language="?", insurance=None,
              marital_status="SINGLE", admission_type="ELECTIVE", admission_location=None)
    stay(4, 214, 304, t4, unit="Neuro Stepdown")
    scores(4, 214, 304, t4, 20, 18, 1, 0, 6.4, 15, 300.0, 61.0)  # height 300 cm: out of range -> missing
    gcs(4, 304, t4 + timedelta(minutes=10), 15)
    rows["mimiciv_hosp.diagnoses_icd"].append(dict(subject_id=4, hadm_id=214, seq_num=1, icd_code="30500",
                                                   icd_version=9))

    # subject 5: sparse data (no scores, no GCS, no SOFA rows, unknown race), age 95 -> capped at 91
    t5 = datetime(2180, 9, 9, 0, 0)
    patient(5, "F", 91, 2176)
    admission(5, 205, t5, 1, race="UNABLE TO OBTAIN", marital_status="", language=None)
    stay(5, 205, 305, t5, unit="Surgical Intensive Care Unit (SICU)")

    for i in range(crowd):
        sid, died, t = 1000 + i, int(i % 3 == 0), datetime(2150, 1, 1, 8, 0) + timedelta(days=i)
        patient(sid, "MF"[i % 2], 30 + (i * 7) % 60)
        admission(sid, 10000 + sid, t - timedelta(hours=3), died)
        stay(sid, 10000 + sid, 20000 + sid, t)
        sick = 25 * died + (i * 11) % 30
        scores(sid, 10000 + sid, 20000 + sid, t, 30 + sick, 20 + sick, 1 + died, 2 + died, 8.0 + i % 10,
               15 + sick // 2, 150.0 + i % 40, 55.0 + (i * 3) % 50)
        gcs(sid, 20000 + sid, t + timedelta(hours=2), 15 - 6 * died - i % 3)
        sofa(20000 + sid, t, [2 + 5 * died + i % 4] * 6)

    # age (mimic-code: anchor_age + admission year - anchor_year)
    patients = {p["subject_id"]: p for p in rows["mimiciv_hosp.patients"]}
    for a in rows["mimiciv_derived.age"]:
        p = patients[a["subject_id"]]
        a["anchor_age"], a["anchor_year"] = p["anchor_age"], p["anchor_year"]
        a["age"] = p["anchor_age"] + a["admittime"].year - p["anchor_year"]
    return rows


# ----------------------------------------------------------------------------------------------------------------
# eICU-CRD v2.0 (schema eicu_crd, as eicu-code's PostgreSQL build names it)
# ----------------------------------------------------------------------------------------------------------------
# Columns, types and NOT NULL constraints exactly as eicu-code's build-db/postgres/postgres_create_tables.sql
# (github.com/MIT-LCP/eicu-code, eICU-CRD v2.0); tests/datasets/test_eicu_demo.py checks the real demo CSVs'
# headers against them and loads the demo tables with these definitions.
EICU_TABLES: dict[str, list[tuple[str, str]]] = {
    "eicu_crd.patient": [
        ("patientunitstayid", "INTEGER"), ("patienthealthsystemstayid", "INTEGER"), ("gender", "VARCHAR(25)"),
        ("age", "VARCHAR(10)"), ("ethnicity", "VARCHAR(50)"), ("hospitalid", "INTEGER"), ("wardid", "INTEGER"),
        ("apacheadmissiondx", "VARCHAR(1000)"), ("admissionheight", "NUMERIC(10,2)"),
        ("hospitaladmittime24", "VARCHAR(8)"), ("hospitaladmitoffset", "INTEGER"),
        ("hospitaladmitsource", "VARCHAR(30)"), ("hospitaldischargeyear", "SMALLINT"),
        ("hospitaldischargetime24", "VARCHAR(8)"), ("hospitaldischargeoffset", "INTEGER"),
        ("hospitaldischargelocation", "VARCHAR(100)"), ("hospitaldischargestatus", "VARCHAR(10)"),
        ("unittype", "VARCHAR(50)"), ("unitadmittime24", "VARCHAR(8)"), ("unitadmitsource", "VARCHAR(100)"),
        ("unitvisitnumber", "INTEGER"), ("unitstaytype", "VARCHAR(15)"), ("admissionweight", "NUMERIC(10,2)"),
        ("dischargeweight", "NUMERIC(10,2)"), ("unitdischargetime24", "VARCHAR(8)"),
        ("unitdischargeoffset", "INTEGER"), ("unitdischargelocation", "VARCHAR(100)"),
        ("unitdischargestatus", "VARCHAR(10)"), ("uniquepid", "VARCHAR(10)")],
    "eicu_crd.hospital": [
        ("hospitalid", "INTEGER NOT NULL"), ("numbedscategory", "VARCHAR(32)"), ("teachingstatus", "BOOLEAN"),
        ("region", "VARCHAR(64)")],
    "eicu_crd.apachepatientresult": [
        ("apachepatientresultsid", "INTEGER NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("physicianspeciality", "VARCHAR(50)"), ("physicianinterventioncategory", "VARCHAR(50)"),
        ("acutephysiologyscore", "INTEGER"), ("apachescore", "INTEGER"), ("apacheversion", "VARCHAR(5) NOT NULL"),
        ("predictedicumortality", "VARCHAR(50)"), ("actualicumortality", "VARCHAR(50)"),
        ("predictediculos", "DOUBLE PRECISION"), ("actualiculos", "DOUBLE PRECISION"),
        ("predictedhospitalmortality", "VARCHAR(50)"), ("actualhospitalmortality", "VARCHAR(50)"),
        ("predictedhospitallos", "DOUBLE PRECISION"), ("actualhospitallos", "DOUBLE PRECISION"),
        ("preopmi", "INTEGER"), ("preopcardiaccath", "INTEGER"), ("ptcawithin24h", "INTEGER"),
        ("unabridgedunitlos", "DOUBLE PRECISION"), ("unabridgedhosplos", "DOUBLE PRECISION"),
        ("actualventdays", "DOUBLE PRECISION"), ("predventdays", "DOUBLE PRECISION"),
        ("unabridgedactualventdays", "DOUBLE PRECISION")],
    "eicu_crd.apacheapsvar": [
        ("apacheapsvarid", "INTEGER"), ("patientunitstayid", "INTEGER"), ("intubated", "SMALLINT"),
        ("vent", "SMALLINT"), ("dialysis", "SMALLINT"), ("eyes", "SMALLINT"), ("motor", "SMALLINT"),
        ("verbal", "SMALLINT"), ("meds", "SMALLINT"), ("urine", "DOUBLE PRECISION"), ("wbc", "DOUBLE PRECISION"),
        ("temperature", "DOUBLE PRECISION"), ("respiratoryrate", "DOUBLE PRECISION"), ("sodium", "DOUBLE PRECISION"),
        ("heartrate", "DOUBLE PRECISION"), ("meanbp", "DOUBLE PRECISION"), ("ph", "DOUBLE PRECISION"),
        ("hematocrit", "DOUBLE PRECISION"), ("creatinine", "DOUBLE PRECISION"), ("albumin", "DOUBLE PRECISION"),
        ("pao2", "DOUBLE PRECISION"), ("pco2", "DOUBLE PRECISION"), ("bun", "DOUBLE PRECISION"),
        ("glucose", "DOUBLE PRECISION"), ("bilirubin", "DOUBLE PRECISION"), ("fio2", "DOUBLE PRECISION")],
    "eicu_crd.apachepredvar": [
        ("apachepredvarid", "INTEGER"), ("patientunitstayid", "INTEGER"), ("sicuday", "SMALLINT"),
        ("saps3day1", "SMALLINT"), ("saps3today", "SMALLINT"), ("saps3yesterday", "SMALLINT"), ("gender", "SMALLINT"),
        ("teachtype", "SMALLINT"), ("region", "SMALLINT"), ("bedcount", "SMALLINT"), ("admitsource", "SMALLINT"),
        ("graftcount", "SMALLINT"), ("meds", "SMALLINT"), ("verbal", "SMALLINT"), ("motor", "SMALLINT"),
        ("eyes", "SMALLINT"), ("age", "SMALLINT"), ("admitdiagnosis", "VARCHAR(11)"), ("thrombolytics", "SMALLINT"),
        ("diedinhospital", "SMALLINT"), ("aids", "SMALLINT"), ("hepaticfailure", "SMALLINT"),
        ("lymphoma", "SMALLINT"), ("metastaticcancer", "SMALLINT"), ("leukemia", "SMALLINT"),
        ("immunosuppression", "SMALLINT"), ("cirrhosis", "SMALLINT"), ("electivesurgery", "SMALLINT"),
        ("activetx", "SMALLINT"), ("readmit", "SMALLINT"), ("ima", "SMALLINT"), ("midur", "SMALLINT"),
        ("ventday1", "SMALLINT"), ("oobventday1", "SMALLINT"), ("oobintubday1", "SMALLINT"), ("diabetes", "SMALLINT"),
        ("managementsystem", "SMALLINT"), ("var03hspxlos", "DOUBLE PRECISION"), ("pao2", "DOUBLE PRECISION"),
        ("fio2", "DOUBLE PRECISION"), ("ejectfx", "DOUBLE PRECISION"), ("creatinine", "DOUBLE PRECISION"),
        ("dischargelocation", "SMALLINT"), ("visitnumber", "SMALLINT"), ("amilocation", "SMALLINT"),
        ("day1meds", "SMALLINT"), ("day1verbal", "SMALLINT"), ("day1motor", "SMALLINT"), ("day1eyes", "SMALLINT"),
        ("day1pao2", "DOUBLE PRECISION"), ("day1fio2", "DOUBLE PRECISION")],
    "eicu_crd.pasthistory": [
        ("pasthistoryid", "INTEGER NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("pasthistoryoffset", "INTEGER NOT NULL"), ("pasthistoryenteredoffset", "INTEGER NOT NULL"),
        ("pasthistorynotetype", "VARCHAR(40)"), ("pasthistorypath", "VARCHAR(255) NOT NULL"),
        ("pasthistoryvalue", "VARCHAR(100)"), ("pasthistoryvaluetext", "VARCHAR(255)")],
    "eicu_crd.diagnosis": [
        ("diagnosisid", "INTEGER NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("activeupondischarge", "VARCHAR(64)"), ("diagnosisoffset", "INTEGER NOT NULL"),
        ("diagnosisstring", "VARCHAR(200) NOT NULL"), ("icd9code", "VARCHAR(100)"),
        ("diagnosispriority", "VARCHAR(10) NOT NULL")],
    "eicu_crd.nursecharting": [
        ("nursingchartid", "BIGINT NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("nursingchartoffset", "INTEGER NOT NULL"), ("nursingchartentryoffset", "INTEGER NOT NULL"),
        ("nursingchartcelltypecat", "VARCHAR(255) NOT NULL"), ("nursingchartcelltypevallabel", "VARCHAR(255)"),
        ("nursingchartcelltypevalname", "VARCHAR(255)"), ("nursingchartvalue", "VARCHAR(255)")],
    "eicu_crd.lab": [
        ("labid", "INTEGER NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("labresultoffset", "INTEGER NOT NULL"), ("labtypeid", "NUMERIC(3,0) NOT NULL"), ("labname", "VARCHAR(256)"),
        ("labresult", "NUMERIC(11,4)"), ("labresulttext", "VARCHAR(255)"), ("labmeasurenamesystem", "VARCHAR(255)"),
        ("labmeasurenameinterface", "VARCHAR(255)"), ("labresultrevisedoffset", "INTEGER")],
    "eicu_crd.vitalperiodic": [
        ("vitalperiodicid", "BIGINT"), ("patientunitstayid", "INTEGER"), ("observationoffset", "INTEGER"),
        ("temperature", "NUMERIC(11,4)"), ("sao2", "INTEGER"), ("heartrate", "INTEGER"), ("respiration", "INTEGER"),
        ("cvp", "INTEGER"), ("etco2", "INTEGER"), ("systemicsystolic", "INTEGER"), ("systemicdiastolic", "INTEGER"),
        ("systemicmean", "INTEGER"), ("pasystolic", "INTEGER"), ("padiastolic", "INTEGER"), ("pamean", "INTEGER"),
        ("st1", "DOUBLE PRECISION"), ("st2", "DOUBLE PRECISION"), ("st3", "DOUBLE PRECISION"), ("icp", "INTEGER")],
    "eicu_crd.vitalaperiodic": [
        ("vitalaperiodicid", "INTEGER NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("observationoffset", "INTEGER NOT NULL"), ("noninvasivesystolic", "DOUBLE PRECISION"),
        ("noninvasivediastolic", "DOUBLE PRECISION"), ("noninvasivemean", "DOUBLE PRECISION"),
        ("paop", "DOUBLE PRECISION"), ("cardiacoutput", "DOUBLE PRECISION"), ("cardiacinput", "DOUBLE PRECISION"),
        ("svr", "DOUBLE PRECISION"), ("svri", "DOUBLE PRECISION"), ("pvr", "DOUBLE PRECISION"),
        ("pvri", "DOUBLE PRECISION")],
    "eicu_crd.intakeoutput": [
        ("intakeoutputid", "INTEGER NOT NULL"), ("patientunitstayid", "INTEGER NOT NULL"),
        ("intakeoutputoffset", "INTEGER NOT NULL"), ("intaketotal", "NUMERIC(12,4)"),
        ("outputtotal", "NUMERIC(12,4)"), ("dialysistotal", "NUMERIC(12,4)"), ("nettotal", "NUMERIC(12,4)"),
        ("intakeoutputentryoffset", "INTEGER NOT NULL"), ("cellpath", "VARCHAR(500)"), ("celllabel", "VARCHAR(255)"),
        ("cellvaluenumeric", "NUMERIC(12,4) NOT NULL"), ("cellvaluetext", "VARCHAR(255) NOT NULL")],
}

# Expected cohort: 1001 (first unit stay of hospital stay 11), 1002 (age '> 89'), 1004 (sparse).
# Excluded: 1011 (second unit stay of hospital stay 11), 1003 (age 17), 1005 (no discharge status), 1006 (no age).
EICU_EXPECTED = {1001: 1, 1002: 0, 1004: 0}


def eicu_rows(crowd: int = 0) -> dict[str, list[dict]]:
    """The hand-made stays below; ``crowd`` more plain adult stays as in :func:`mimic_rows`."""
    rows: dict[str, list[dict]] = {t: [] for t in EICU_TABLES}
    rows["eicu_crd.hospital"] += [dict(hospitalid=1, numbedscategory="100 - 249", teachingstatus=True,
                                       region="Midwest"),
                                  dict(hospitalid=2, numbedscategory="<100", teachingstatus=False, region=None)]

    def patient(uid, hsid, age, status, hadmoff=-60, visit=1, hospital=1, **kw):
        base = dict(patientunitstayid=uid, patienthealthsystemstayid=hsid, gender="Female", age=age,
                    ethnicity="Caucasian", hospitalid=hospital, wardid=10, admissionheight=170.2,
                    hospitaladmitoffset=hadmoff, hospitaladmitsource="Emergency Department",
                    hospitaldischargeyear=2014, hospitaldischargeoffset=5000, hospitaldischargestatus=status,
                    unittype="Med-Surg ICU", unitadmitsource="Emergency Department", unitvisitnumber=visit,
                    unitstaytype="admit", admissionweight=80.5, unitdischargeoffset=3000, uniquepid=f"00-{hsid}")
        base.update(kw)
        rows["eicu_crd.patient"].append(base)

    def gcs(uid, offset, value, label="Glasgow coma score", name="GCS Total"):
        rows["eicu_crd.nursecharting"].append(dict(
            nursingchartid=len(rows["eicu_crd.nursecharting"]) + 1, patientunitstayid=uid,
            nursingchartoffset=offset, nursingchartentryoffset=offset, nursingchartcelltypecat="Scores",
            nursingchartcelltypevallabel=label, nursingchartcelltypevalname=name, nursingchartvalue=value))

    def lab(uid, offset, name, value):
        rows["eicu_crd.lab"].append(dict(labid=len(rows["eicu_crd.lab"]) + 1, patientunitstayid=uid,
                                         labresultoffset=offset, labtypeid=1, labname=name, labresult=value,
                                         labresulttext=None if value is None else str(value),
                                         labresultrevisedoffset=offset))

    def vital(uid, offset, **kw):
        rows["eicu_crd.vitalperiodic"].append(dict(vitalperiodicid=len(rows["eicu_crd.vitalperiodic"]) + 1,
                                                   patientunitstayid=uid, observationoffset=offset, **kw))

    def nibp(uid, offset, systolic, mean, diastolic):
        rows["eicu_crd.vitalaperiodic"].append(dict(
            vitalaperiodicid=len(rows["eicu_crd.vitalaperiodic"]) + 1, patientunitstayid=uid,
            observationoffset=offset, noninvasivesystolic=systolic, noninvasivemean=mean,
            noninvasivediastolic=diastolic))

    def history(uid, offset, path):
        rows["eicu_crd.pasthistory"].append(dict(
            pasthistoryid=len(rows["eicu_crd.pasthistory"]) + 1, patientunitstayid=uid, pasthistoryoffset=offset,
            pasthistoryenteredoffset=offset, pasthistorynotetype="Admission", pasthistorypath=path,
            pasthistoryvalue=path.rsplit("/", 1)[-1], pasthistoryvaluetext=path.rsplit("/", 1)[-1]))

    def diagnosis(uid, offset, text):
        rows["eicu_crd.diagnosis"].append(dict(
            diagnosisid=len(rows["eicu_crd.diagnosis"]) + 1, patientunitstayid=uid, activeupondischarge="True",
            diagnosisoffset=offset, diagnosisstring=text, icd9code=None, diagnosispriority="Other"))

    def apache(uid, score, aps):
        for version in ("IV", "IVa"):
            rows["eicu_crd.apachepatientresult"].append(dict(
                apachepatientresultsid=len(rows["eicu_crd.apachepatientresult"]) + 1, patientunitstayid=uid,
                acutephysiologyscore=aps, apachescore=score if version == "IV" else score + 5,
                apacheversion=version, actualhospitalmortality="EXPIRED"))

    # 1001: first unit stay of hospital stay 11; died
    patient(1001, 11, "67", "Expired", hadmoff=-120, gender="Male", ethnicity="African American",
            unittype="MICU", admissionheight=182.0, admissionweight=91.0)
    apache(1001, 77, 60)
    rows["eicu_crd.apacheapsvar"].append(dict(
        apacheapsvarid=1, patientunitstayid=1001, intubated=1, vent=1, dialysis=0, eyes=2, motor=5, verbal=1,
        meds=0, urine=450.0, wbc=22.0, temperature=38.9, respiratoryrate=30.0, sodium=131.0, heartrate=125.0,
        meanbp=62.0, ph=7.21, hematocrit=30.0, creatinine=2.4, albumin=2.1, pao2=68.0, pco2=50.0, bun=45.0,
        glucose=210.0, bilirubin=2.5, fio2=60.0))
    # electivesurgery is NULL, as in eICU for a non-operative admission
    rows["eicu_crd.apachepredvar"].append(dict(apachepredvarid=1, patientunitstayid=1001, age=67,
                                               electivesurgery=None, aids=0, lymphoma=0, metastaticcancer=1,
                                               leukemia=0, diedinhospital=1))
    for off, v in ((-30, "14"), (10, "11"), (300, "9"), (300, "10"), (1439, "8"), (1440, "3"), (1500, "3")):
        gcs(1001, off, v)
    gcs(1001, 400, "Unable to score due to medication")
    for off, name, v in ((30, "platelets x 1000", 140.0), (30, "total bilirubin", 2.5), (30, "creatinine", 2.4),
                         (200, "creatinine", 3.6), (60, "paO2", 68.0), (60, "FiO2", 60.0),
                         (60, "BUN", 45.0), (60, "WBC x 1000", 22.0), (60, "potassium", 5.6),
                         (60, "sodium", 131.0), (60, "bicarbonate", 14.0),
                         (1600, "platelets x 1000", 15.0), (45, "platelets x 1000", 0.0)):  # 0: an artefact
        lab(1001, off, name, v)
    for off, kw in ((5, dict(heartrate=125, systemicsystolic=85, systemicmean=62, temperature=38.9,
                             respiration=30)),
                    (600, dict(heartrate=110, systemicsystolic=95, systemicmean=68, temperature=38.0)),
                    (1800, dict(heartrate=180, systemicsystolic=50, systemicmean=30))):
        vital(1001, off, **kw)
    nibp(1001, 120, 0.0, 0.0, 0.0)  # the real table holds non-invasive pressures of 0 (artefacts): never selected
    nibp(1001, 240, 90.0, 65.0, 52.0)
    rows["eicu_crd.intakeoutput"].append(dict(intakeoutputid=1, patientunitstayid=1001, intakeoutputoffset=600,
                                              outputtotal=450.0, cellpath="flowsheet|Flowsheet Cell Labels|I&O|"
                                              "Output (ml)|Urine", celllabel="Urine", cellvaluenumeric=450.0,
                                              intakeoutputentryoffset=600, cellvaluetext="450"))
    history(1001, 20, "notes/Progress Notes/Past History/Organ Systems/Neurologic/Alcohol Abuse/alcohol abuse")
    history(1001, 20, "notes/Progress Notes/Past History/Past History Obtain Options/Tobacco Use/current smoker")
    diagnosis(1001, 100, "gastrointestinal|abdominal/ general|obesity|morbid")
    # after 24 h: must not count
    diagnosis(1001, 2000, "neurologic|altered mental status / pain|drug withdrawal syndrome|narcotic")
    # 1011: second unit stay of the same hospital stay -> excluded
    patient(1011, 11, "67", "Expired", hadmoff=-4000, visit=2, gender="Male")
    gcs(1011, 30, "3")
    # 1002: '> 89', hospital 2 (no region), alive
    patient(1002, 12, "> 89", "Alive", hospital=2, gender="", ethnicity="", unittype="Neuro ICU",
            admissionheight=40.0, admissionweight=55.0)
    apache(1002, -1, -1)
    gcs(1002, 15, "15")
    gcs(1002, 20, "14", label="Score (Glasgow Coma Scale)", name="Value")
    lab(1002, 100, "platelets x 1000", 90.0)
    # no time (lab, nursecharting, pasthistory and diagnosis offsets are NOT NULL in eICU, vitalperiodic's is not):
    # never selected (the leakage check refuses it if it were)
    vital(1002, None, heartrate=30)
    diagnosis(1002, 50, "neurologic|altered mental status / pain|drug withdrawal syndrome|narcotic")
    # 1003: 17 years old -> excluded
    patient(1003, 13, "17", "Alive")
    # 1004: sparse data; alcohol withdrawal, which eICU files under drug withdrawal: alcohol abuse, not drug abuse
    patient(1004, 14, "45", "Alive", gender="Other", ethnicity="Native American", unittype="CTICU",
            admissionheight=None, admissionweight=None)
    diagnosis(1004, 30, "neurologic|altered mental status / pain|drug withdrawal syndrome|alcohol")
    # 1005: no hospital discharge status -> excluded (outcome unknown); 1006: no age (both '' as in eicu-code's
    # PostgreSQL build of the real CSVs, where they are quoted empty strings) -> excluded
    patient(1005, 15, "50", "")
    patient(1006, 16, "", "Alive")
    for i in range(crowd):
        uid, died = 5000 + i, int(i % 3 == 0)
        sick = 25 * died + (i * 11) % 30
        patient(uid, 100 + i, str(30 + (i * 7) % 60), "Expired" if died else "Alive", gender="MF"[i % 2],
                admissionweight=55.0 + (i * 3) % 50)
        apache(uid, 40 + 2 * sick, 30 + sick)
        gcs(uid, 60, str(15 - 6 * died - i % 3))
        lab(uid, 90, "creatinine", 0.8 + died + (i % 5) / 10)
        vital(uid, 30, heartrate=80 + sick, systemicmean=80 - sick // 2)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# writers
# ----------------------------------------------------------------------------------------------------------------
def _ddl(tables):
    schemas = sorted({name.split(".")[0] for name in tables})
    out = [f"CREATE SCHEMA IF NOT EXISTS {s}" for s in schemas]
    for name, cols in tables.items():
        out.append(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in cols)})")
    return out


def write_duckdb(path: str | Path, tables, rows, skip: tuple[str, ...] = ()) -> Path:
    import duckdb

    tables = {k: v for k, v in tables.items() if k not in skip}
    con = duckdb.connect(str(path))
    try:
        for stmt in _ddl(tables):
            con.execute(stmt)
        for name, cols in tables.items():
            names = [c for c, _ in cols]
            data = [[r.get(c) for c in names] for r in rows.get(name, [])]
            if data:
                con.executemany(f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                data)
    finally:
        con.close()
    return Path(path)


def write_postgres(url: str, tables, rows, skip: tuple[str, ...] = ()) -> str:
    import psycopg

    tables = {k: v for k, v in tables.items() if k not in skip}
    with psycopg.connect(url, autocommit=True) as con, con.cursor() as cur:
        for stmt in _ddl(tables):
            cur.execute(stmt)
        for name, cols in tables.items():
            names = [c for c, _ in cols]
            data = [[r.get(c) for c in names] for r in rows.get(name, [])]
            if data:
                cur.executemany(f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                                data)
    return url


def execute(db: str, sql: str) -> None:
    """Run one statement on a fixture database (DuckDB path or PostgreSQL URL), for tests that alter a fixture."""
    if str(db).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as con:
            con.execute(sql)
    else:
        import duckdb

        con = duckdb.connect(str(db))
        try:
            con.execute(sql)
        finally:
            con.close()


# ----------------------------------------------------------------------------------------------------------------
# a throw-away PostgreSQL cluster
# ----------------------------------------------------------------------------------------------------------------
def find_pg_bin() -> Path | None:
    """The directory with initdb/pg_ctl/postgres (PATH first, then Debian's /usr/lib/postgresql/N/bin)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``with PostgresServer() as url:`` a fresh cluster on 127.0.0.1, removed afterwards.

    Raises ``RuntimeError`` with a message when it cannot start (the tests turn that into a skip).
    """

    def __init__(self):
        self.bin = find_pg_bin()
        self.tmp: Path | None = None
        self.user_prefix: list[str] = []

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.user_prefix, *args], capture_output=True, text=True, timeout=120)

    def __enter__(self) -> str:
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                               "install Debian's `postgresql` package")
        self.tmp = Path(tempfile.mkdtemp(prefix="alfia-pg-"))
        data, sock = self.tmp / "data", self.tmp / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run the server") from None
            runner = shutil.which("runuser")
            self.user_prefix = [runner, "-u", "postgres", "--"] if runner else None
            if self.user_prefix is None:
                raise RuntimeError("running as root and `runuser` is absent")
            os.chmod(self.tmp, 0o755)
            os.chown(sock, pw.pw_uid, pw.pw_gid)
            (self.tmp / "log").touch()
            os.chown(self.tmp / "log", pw.pw_uid, pw.pw_gid)
            data.mkdir()
            os.chown(data, pw.pw_uid, pw.pw_gid)
        port = _free_port()
        r = self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--no-sync")
        if r.returncode:
            self._cleanup()
            raise RuntimeError(f"initdb failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c jit=off"
        r = self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.tmp / "log"), "-w",
                      "-t", "60", "start")
        if r.returncode:
            log = (self.tmp / "log").read_text(errors="replace") if (self.tmp / "log").exists() else ""
            self._cleanup()
            raise RuntimeError(f"pg_ctl start failed: {(log or r.stderr).strip().splitlines()[-1:]}")
        self.data = data
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._wait()
        return self.url

    def _wait(self) -> None:
        import psycopg

        for _ in range(100):
            with contextlib.suppress(Exception), psycopg.connect(self.url, connect_timeout=2):
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not accept connections")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        if self.tmp is not None and (self.tmp / "data" / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.tmp / "data"), "-m", "immediate", "-w", "stop")
        self._cleanup()


# ----------------------------------------------------------------------------------------------------------------
# Helpers of the database builder tests (their pytest fixtures are in tests/datasets/conftest.py)
# ----------------------------------------------------------------------------------------------------------------
BACKENDS = ["duckdb", "postgresql"]
_counter = iter(range(10**6))


def make_db(backend, request, tmp_path, tables, rows, skip=()):
    """A fixture database in DuckDB (a file) or PostgreSQL (a fresh database on the session's server)."""
    if backend == "duckdb":
        return str(write_duckdb(tmp_path / "db.duckdb", tables, rows, skip=skip))
    server = request.getfixturevalue("pg_server")
    url = server.create_database(f"alfia_test_{next(_counter)}")
    return write_postgres(url, tables, rows, skip=skip)


def same(a, b) -> None:
    """Frames equal up to the missing-category marker (None in memory, NaN after a parquet round trip)."""
    import pandas as pd

    def norm(df):
        return df.astype(object).where(df.notna(), None)
    pd.testing.assert_frame_equal(norm(a), norm(b))


def row(cohort, stay_id):
    df = cohort.df.set_index("stay_id")
    return df.loc[stay_id]
