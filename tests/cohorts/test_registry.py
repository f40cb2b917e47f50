"""The data-set registry. A data set registered from the user's own code (schema, template, builder, bundled tables)
is taken by every command: cohort -> encode -> train -> predict through the CLI, and load_cohort by its bundled
name. The data sets of alfia/datasets/ register themselves on the first lookup (tests/datasets/test_toy_package.py
adds one as a package)."""

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts import Cohort, read_cohort, write_cohort
from alfia.cohorts.registry import BuildOptions, cohort_names, load_cohort, register_dataset, unregister_dataset
from alfia.cohorts.schema import Column, Schema
from alfia.cohorts.splits import assign_splits
from alfia.errors import AlfiaError

TOY = Schema(name="toy-icu", description="a toy ICU data set", columns=(
    Column("age", "float", "age", unit="years", valid=(18, 110)),
    Column("lactate", "float", "highest lactate", unit="mmol/L", valid=(0, 30)),
    Column("sepsis", "binary", "sepsis on admission"),
))


def describe(w) -> str:  # the data set's text template
    sepsis = "with sepsis" if w.raw("sepsis") == 1 else "without sepsis"
    return w.join([w.sentence([f"the patient is {w.value('age')} old", sepsis]),
                   w.sentence([w.measure("lactate", "lactate")])])


def build(options: BuildOptions) -> Cohort:  # the data set's builder: here a generator, seeded by --seed
    rng = np.random.default_rng(options.seed)
    y = (rng.random(options.n) < 0.3).astype(int)
    df = pd.DataFrame({"stay_id": np.arange(1, options.n + 1), "hospital_mortality": y,
                       "age": rng.uniform(20, 90, options.n).round(),
                       "lactate": np.where(y == 1, rng.uniform(4, 10, options.n), rng.uniform(0.5, 2, options.n)),
                       "sepsis": y.astype(float)})
    df["split"] = assign_splits(df["stay_id"], df["hospital_mortality"])
    return Cohort(df=TOY.validate(df), schema=TOY, info={"source": "toy generator", "synthetic": True})


@pytest.fixture
def toy_dataset(tmp_path):
    bundled = tmp_path / "toy-small.parquet"
    register_dataset("toy-icu", schema=TOY, template=describe, builder=build, bundled={"toy-small": bundled},
                     source_help="nothing, toy-icu stays are generated")
    write_cohort(build(BuildOptions(n=40, seed=1)), bundled)  # after registration: the file names its schema
    yield
    unregister_dataset("toy-icu")


def test_a_registered_data_set_runs_encode_train_predict(toy_dataset, tmp_path, tiny_bert_dir):
    from alfia.cli import main

    cohort, encoded, run, out = (tmp_path / f for f in ("toy.parquet", "toy.text.parquet", "run", "pred.parquet"))
    assert {"toy-icu", "toy-small"} <= set(cohort_names())
    assert main(["cohort", "toy-icu", "--n", "120", "--seed", "3", "--out", str(cohort)]) == 0
    assert main(["encode", str(cohort), "--out", str(encoded), "--style", "numeric"]) == 0
    texts = read_cohort(encoded).df["text"]
    assert texts.str.startswith("The patient is").all() and texts.str.contains("Lactate").all()
    assert main(["train", str(encoded), "--out", str(run), "--backbone", str(tiny_bert_dir), "--epochs", "1",
                 "--batch-size", "16", "--max-length", "48", "--fusion-layers", "2", "--lora-r", "4"]) == 0
    # the bundled table of the data set is scored by its name, without its outcome being needed
    assert main(["predict", str(run), "toy-small", "--out", str(out)]) == 0
    pred = pd.read_parquet(out)
    assert pred["stay_id"].tolist() == load_cohort("toy-small").df["stay_id"].tolist()
    assert pred["probability"].between(0, 1).all()


def test_cohort_help_shows_every_data_set_and_what_its_source_is(toy_dataset, capsys):
    from alfia.cli import main
    from alfia.cohorts.registry import dataset_names, get_dataset

    with pytest.raises(SystemExit):
        main(["cohort", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert {"physionet2012", "mimic-iv", "eicu", "toy-icu"} <= set(dataset_names())
    for name in dataset_names():
        assert name in shown and " ".join(get_dataset(name).source_help.split()) in shown


def test_the_data_sets_register_themselves_on_the_first_lookup():
    """The registry imports alfia.datasets by name when it is first asked, never before (plugin discovery)."""
    import subprocess
    import sys

    code = ("import sys; import alfia.cohorts.registry as r; assert 'alfia.datasets' not in sys.modules; "
            "names = r.cohort_names(); assert 'alfia.datasets.physionet2012' in sys.modules; print(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'p12-a'" in out and "'synth-eicu'" in out and "'mimic-iv'" in out


def test_names_must_be_new_and_unknown_names_are_one_clear_error(toy_dataset):
    with pytest.raises(AlfiaError, match="already registered: toy-icu"):
        register_dataset("toy-icu", schema=TOY, template=describe)
    with pytest.raises(AlfiaError, match="already registered: p12-a"):
        register_dataset("other", schema=TOY, template=describe, bundled={"p12-a": "x.parquet"})
    with pytest.raises(AlfiaError, match="needs its schema and its text template"):
        register_dataset("other", schema=TOY)
    with pytest.raises(AlfiaError, match="does not exist"):
        load_cohort("toy-large")
    with pytest.raises(AlfiaError, match="is built from its source: run `alfia cohort toy-icu"):
        load_cohort("toy-icu")


def test_bundled_names_work_wherever_a_cohort_is_taken():
    import alfia

    assert alfia.load_cohort is load_cohort and alfia.register_dataset is register_dataset
    assert len(load_cohort("p12-a").df) == 4000
    with pytest.raises(AlfiaError, match="needs its schema"):
        load_cohort(pd.DataFrame({"stay_id": [1]}))
