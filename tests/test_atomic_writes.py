"""Every file a command writes goes through a temporary path that is renamed into place (``alfia.io.atomic_path``
or a temporary folder), so an interrupted ``alfia train / baselines / boost / cohort / report`` never leaves a
half-written file under a name a later command reads. This scan fails when a new direct write appears."""

from __future__ import annotations

import re
from pathlib import Path

ALFIA = Path(__file__).resolve().parents[1] / "alfia"
WRITE = re.compile(r"\.to_parquet\(|\.write_text\(|\.write_bytes\(|\.to_csv\(|save_file\(|savefig\(|"
                   r"pq\.write_table\(|save_pretrained\(|\.to_json\(|\.to_html\(|open\([^)]*['\"][wa]b?['\"]")

# Writes that do not go through a temporary name, each with the reason it is safe.
ALLOWED = {
    ("model/alfia.py", 'self.backbone.save_pretrained(str(directory / "adapter"), safe_serialization=True)'):
        "ALFIA._write fills a temporary folder that save() renames into place",
    ("model/alfia.py", 'self.tokenizer.save_pretrained(str(directory / "tokenizer"))'): "same temporary folder",
    ("run_folder.py", 'with open(self.path / self.HISTORY, "a") as f:'):
        "one line per finished epoch; --resume rewrites history.jsonl up to the checkpoint's epoch",
    ("cohorts/table1.py", 'body = table.to_csv(index=False, lineterminator="\\n")'): "to a string",
    ("analysis/figures.py", 'fig.savefig(buf, format="png", dpi=self.dpi)'): "to an in-memory buffer",
    ("bench/paper.py", "BertModel(config).save_pretrained(folder)   # safetensors"):
        "the random backbone of `alfia bench --profile paper`, in the benchmark's temporary folder",
    ("bench/paper.py", "tokenizer.save_pretrained(folder)"): "same temporary folder",
}


def test_every_file_write_goes_through_a_temporary_name():
    direct = set()
    for path in ALFIA.rglob("*.py"):
        for line in path.read_text().splitlines():
            if WRITE.search(line) and "tmp" not in line:
                direct.add((path.relative_to(ALFIA).as_posix(), line.strip()))
    assert direct == set(ALLOWED), sorted(direct ^ set(ALLOWED))
