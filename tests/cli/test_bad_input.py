"""Every command given bad input: non-zero exit, one line on stderr, no traceback, no output file."""

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alfia.cohorts import write_cohort
from alfia.cohorts.bundled import load_bundled

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "physionet2012"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alfia.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def small_cohort():
    cohort = load_bundled("p12-a")
    cohort.df = cohort.df.head(40).copy()
    return cohort


def _plain(df: pd.DataFrame, path: Path) -> Path:
    """A parquet table that claims the physionet2012 schema, with whatever columns ``df`` has."""
    from alfia.cohorts.io import META_KEY

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({META_KEY: b'{"schema": "physionet2012"}'})
    pq.write_table(table, path)
    return path


def make_missing_file(tmp, cohort):
    return ["encode", str(tmp / "nope.parquet")]


def make_unreadable(tmp, cohort):
    (tmp / "bad.parquet").write_bytes(b"this is not parquet")
    return ["encode", str(tmp / "bad.parquet")]


def make_empty(tmp, cohort):
    return ["encode", str(_plain(cohort.df.iloc[:0], tmp / "empty.parquet"))]


def make_missing_columns(tmp, cohort):
    return ["encode", str(_plain(cohort.df.drop(columns=["lactate_max", "gcs_min"]), tmp / "cols.parquet"))]


def make_bad_label(tmp, cohort):
    return ["encode", str(_plain(cohort.df.assign(hospital_mortality=2), tmp / "label.parquet"))]


def make_duplicates(tmp, cohort):
    return ["encode", str(_plain(cohort.df.assign(stay_id=1), tmp / "dup.parquet"))]


def make_unknown_schema(tmp, cohort):
    path = tmp / "ok.parquet"
    write_cohort(cohort, path)
    return ["encode", str(path), "--schema", "mimic-v"]


def make_unknown_cohort(tmp, cohort):
    return ["cohort", "p12-z"]


def make_malformed_raw(tmp, cohort):
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is absent: the PhysioNet 2012 data set is needed for this test")
    raw = tmp / "set-a"
    raw.mkdir()
    with tarfile.open(SHARED / "set-a.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".txt")][:3]
        for m in members:
            (raw / Path(m.name).name).write_bytes(tar.extractfile(m).read())
    victim = sorted(raw.iterdir())[1]
    victim.write_text(victim.read_text() + "05:3x,HR,87\n")
    shutil.copy(SHARED / "Outcomes-a.txt", tmp / "Outcomes-a.txt")
    return ["cohort", "physionet2012", "--source", str(raw), "--outcomes", str(tmp / "Outcomes-a.txt")]


BAD_DATA, USAGE = 1, 2  # exit statuses: bad data, a wrong command line

CASES = {
    "missing file": (make_missing_file, "does not exist", BAD_DATA),
    "unreadable table": (make_unreadable, "cannot read", BAD_DATA),
    "empty table": (make_empty, "empty", BAD_DATA),
    "missing columns": (make_missing_columns, "missing columns gcs_min, lactate_max", BAD_DATA),
    "label not 0/1": (make_bad_label, "must be 0 or 1", BAD_DATA),
    "duplicate stay ids": (make_duplicates, "duplicate stay_id", BAD_DATA),
    "unknown schema": (make_unknown_schema, "unknown schema 'mimic-v'", BAD_DATA),
    "unknown cohort": (make_unknown_cohort, "unknown cohort 'p12-z'", USAGE),
    "malformed raw rows": (make_malformed_raw, "05:3x", BAD_DATA),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_line(case, tmp_path, small_cohort):
    make, message, status = CASES[case]
    out = tmp_path / "out" / "result.parquet"
    args = make(tmp_path, small_cohort) + ["--out", str(out)]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    # progress bars (tqdm, on stderr) may precede the error; everything else must be the one error line
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert message in lines[0], lines[0]
    assert not out.exists() and not any(p.name.startswith(".result") for p in (tmp_path / "out").glob("*")) \
        if (tmp_path / "out").exists() else True


def test_an_existing_output_survives_a_failed_command(tmp_path, small_cohort):
    out = tmp_path / "keep.parquet"
    out.write_bytes(b"precious")
    result = run_cli("encode", str(tmp_path / "missing.parquet"), "--out", str(out), cwd=tmp_path)
    assert result.returncode == BAD_DATA and out.read_bytes() == b"precious"


def test_usage_errors_exit_2_and_bad_data_exits_1(tmp_path, capsys):
    from alfia.cli import main
    from alfia.errors import AlfiaError
    from alfia.training.config import make_config

    with pytest.raises(SystemExit) as exc:  # argparse's own usage errors
        main(["train", "x.parquet", "--out", str(tmp_path / "run"), "--profile", "fast"])
    assert exc.value.code == USAGE
    assert main(["encode", "p12-a", "--out", str(tmp_path / "e.parquet"), "--style", "numeric",
                 "--encoder", str(tmp_path)]) == USAGE  # flags that exclude each other
    assert main(["table1", str(tmp_path / "missing.parquet")]) == BAD_DATA
    # the library names the setting, the command line its flag
    with pytest.raises(AlfiaError, match=r"^model\.max_length must be at least 8 tokens to train, got 4$"):
        make_config("quick", **{"model.max_length": 4})
    assert main(["train", "p12-a", "--out", str(tmp_path / "run"), "--max-length", "4"]) == USAGE
    assert "error: --max-length must be at least 8 tokens" in capsys.readouterr().err
    assert not (tmp_path / "e.parquet").exists()
