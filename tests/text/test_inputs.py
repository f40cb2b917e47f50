"""One way to load an input: the facade and every command read a cohort through `load_input`, so they accept the
same things and refuse with the same words."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alfia import ALFIAPredictor
from alfia.cli import main
from alfia.cohorts import TEXT
from alfia.cohorts.bundled import load_bundled
from alfia.cohorts.synthetic import generate_synthetic
from alfia.errors import AlfiaError
from alfia.run_folder import RunFolder
from alfia.text.encoder import TextEncoder
from alfia.text.inputs import load_input


@pytest.fixture(scope="module")
def p12():
    cohort = load_bundled("p12-a")
    return cohort.__class__(df=cohort.df.head(200).reset_index(drop=True), schema=cohort.schema, info=cohort.info)


def test_a_plain_table_without_its_schema_is_refused_alike_by_the_facade_and_the_commands(p12, tmp_path, capsys):
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.Table.from_pandas(p12.df, preserve_index=False), plain)   # no ALFIA metadata
    with pytest.raises(AlfiaError) as info:
        load_input(str(plain))
    message = str(info.value)
    assert "names no schema in its metadata; pass --schema" in message
    with pytest.raises(AlfiaError) as by_facade:
        ALFIAPredictor(path=tmp_path / "run").fit(str(plain))
    assert str(by_facade.value) == message
    for command in (["train", str(plain), "--out", str(tmp_path / "run")],
                    ["baselines", str(plain), "--out", str(tmp_path / "b")],
                    ["table1", str(plain)]):
        assert main(command) == 1
        assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "run").exists() and not (tmp_path / "b").exists()
    assert load_input(str(plain), "physionet2012").schema.name == "physionet2012"   # --schema names it


def test_encoded_gives_the_texts_of_the_cohorts_own_train_split(p12):
    encoded = load_input(p12, encoded=True, style="numeric")
    expected = TextEncoder("physionet2012", style="numeric").fit(p12.df).encode(p12)
    assert encoded.df[TEXT].tolist() == expected.df[TEXT].tolist()
    assert load_input(encoded, encoded=True, style="banded") is encoded   # already encoded: kept as it is
    assert TEXT not in load_input(p12).df.columns


def test_a_run_reads_its_own_schema_and_maps_another_only_with_its_training_cohort(tmp_path):
    mimic = generate_synthetic("mimic-iv", n=200, seed=0)
    eicu = generate_synthetic("eicu", n=200, seed=1, id_offset=10_000)
    run = tmp_path / "run"
    run.mkdir()
    (run / RunFolder.ENCODER).write_text(json.dumps(TextEncoder("mimic-iv").fit(mimic.df).to_dict()))
    assert load_input(mimic, run=run) is mimic
    with pytest.raises(AlfiaError, match="the cohort is schema 'eicu', the run 'mimic-iv': pass the run's training "
                                         "cohort with --training-cohort"):
        load_input(eicu, run=run)
    with pytest.raises(AlfiaError, match="the training cohort is schema 'eicu', the run 'mimic-iv'"):
        load_input(eicu, run=run, training=eicu)
    mapped = load_input(eicu, run=run, training=mimic)
    assert mapped.schema.name == "mimic-iv" and "mapping" in mapped.info
    assert load_input(eicu, training=eicu) is eicu   # same schema: untouched
    assert load_input(None) is None
