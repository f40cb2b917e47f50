"""`alfia predict` and `alfia embed` score a chunk of stays at a time and write the run's embedding cache as they go:
the model never sees more than a chunk, and the answers are those of one pass over everything."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from alfia import inference
from alfia.cli import main
from tests.api.test_predictor import fitted, small_p12a  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def dev():
    return small_p12a()


def test_predict_and_embed_stream_in_chunks(fitted, dev, tmp_path, monkeypatch):  # noqa: F811
    run = fitted.path
    cohort = tmp_path / "stays.parquet"
    dev.df.drop(columns=["hospital_mortality", "split"]).to_parquet(cohort, index=False)
    whole = inference.predict_cohort(run, dev)[0]   # one chunk (84 stays < CHUNK)
    for cached in (run / "embeddings").glob("*.parquet"):
        cached.unlink()

    seen = []
    real = inference.scoring.predict_embed

    def spy(model, texts, *args, **kwargs):
        seen.append(len(texts))
        return real(model, texts, *args, **kwargs)

    monkeypatch.setattr(inference, "CHUNK", 10)
    monkeypatch.setattr(inference.scoring, "predict_embed", spy)
    assert main(["predict", str(run), str(cohort), "--schema", "physionet2012", "--out",
                 str(tmp_path / "p.parquet")]) == 0
    assert seen == [10] * 8 + [4]   # 84 stays, 10 at a time: the model never held more than a chunk
    streamed = pd.read_parquet(tmp_path / "p.parquet")
    assert streamed["stay_id"].tolist() == whole["stay_id"].tolist()
    np.testing.assert_allclose(streamed["probability"], whole["probability"], atol=1e-6)

    # the embedding cache was written a chunk (row group) at a time, in the cohort's row order
    (cache,) = (run / "embeddings").glob("*.parquet")
    assert pq.ParquetFile(cache).num_row_groups == 9
    seen.clear()
    assert main(["embed", str(run), str(cohort), "--schema", "physionet2012", "--out",
                 str(tmp_path / "e.parquet")]) == 0
    assert seen == []   # from the cache, copied a row group at a time
    embedded = pq.ParquetFile(tmp_path / "e.parquet")
    assert embedded.num_row_groups == 9 and embedded.metadata.num_rows == len(dev.df)
    table = embedded.read().to_pandas()
    assert table["stay_id"].tolist() == dev.df["stay_id"].tolist()
    assert not [c for c in table.columns if c.startswith("layer_mean_")]
    np.testing.assert_allclose(np.linalg.norm(table.filter(like="emb_"), axis=1), 1, atol=1e-5)
