"""The main job (`make study`): the whole study on the bundled real cohort, stage by stage, each timed.

Set A (PhysioNet 2012) is the development cohort with its train/val/test split; set B is the external
validation cohort, encoded with set A's text encoder and scored on all rows.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

from alfia.cohorts import Cohort, write_cohort
from alfia.cohorts.bundled import load_bundled
from alfia.cohorts.table1 import table1, to_markdown
from alfia.io import write_text_atomic
from alfia.text.encoder import DEFAULT_STYLE, TextEncoder


class StageClock:
    """Prints and records the wall time of each stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        print(f"== {name}: {self.seconds[name]:.1f} s", flush=True)

    def markdown(self) -> str:
        rows = [f"| {name} | {sec:.1f} |" for name, sec in self.seconds.items()]
        total = sum(self.seconds.values())
        return "\n".join(["| stage | seconds |", "| --- | ---: |", *rows, f"| **total** | **{total:.1f}** |"])


def encode_cohort(cohort: Cohort, encoder: TextEncoder) -> Cohort:
    df = cohort.df.copy()
    df["text"] = encoder.transform(df)
    return Cohort(df=df, schema=cohort.schema, info={**cohort.info, "text_encoder": encoder.to_dict()})


def run_study(out: str | Path, style: str | None = None) -> Path:
    style = style or DEFAULT_STYLE
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock()
    summary: list[str] = ["# ALFIA study on PhysioNet/CinC 2012 (development: set A; external: set B)", ""]

    with clock.stage("cohorts"):
        dev, ext = load_bundled("p12-a"), load_bundled("p12-b")
        write_cohort(dev, out / "p12-a.parquet")
        write_cohort(ext, out / "p12-b.parquet")

    with clock.stage("encode"):
        encoder = TextEncoder(dev.schema.name, style=style).fit(dev.df)
        dev_text, ext_text = encode_cohort(dev, encoder), encode_cohort(ext, encoder)
        encoder.save(out / "encoder.json")
        write_cohort(dev_text, out / "p12-a.encoded.parquet")
        write_cohort(ext_text, out / "p12-b.encoded.parquet")

    with clock.stage("table1"):
        table = to_markdown(table1(dev), title="Table 1: set A, baseline characteristics by hospital mortality")
        print(table)
        write_text_atomic(out / "table1.md", table + "\n")
        summary += [table, ""]

    summary += ["## Stage times", "", clock.markdown(), ""]
    write_text_atomic(out / "summary.md", "\n".join(summary))
    write_text_atomic(out / "timings.json", json.dumps(clock.seconds, indent=2))
    print(clock.markdown())
    print(f"study summary: {out / 'summary.md'}")
    return out / "summary.md"
