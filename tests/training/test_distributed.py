"""Data-parallel training: 2 gloo processes at batch b reach the weights of 1 process at batch 2b."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from tests.training.test_trainer import quick, toy_cohort
from alfia.training.trainer import train
train(toy_cohort(n=96), sys.argv[1], quick(epochs=1, batch_size=int(sys.argv[3]), **{"model.fusion.dropout": 0.0,
      "model.head.dropout": 0.0, "model.lora.dropout": 0.0, "model.lora.layers": 1}), backbone=sys.argv[2],
      progress=False)
"""


def _weights(run):
    out = {}
    for part in ("fusion", "head"):
        out.update({f"{part}.{k}": v for k, v in load_file(str(run / "model" / part / "model.safetensors")).items()})
    out.update(load_file(str(run / "model" / "adapter" / "adapter_model.safetensors")))
    return out


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_gloo_processes_match_one_process_with_the_double_batch(tmp_path, tiny_bert_dir):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, "-c", SCRIPT, str(single), str(tiny_bert_dir), "8"], check=True, env=env)
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(script), str(ddp), str(tiny_bert_dir), "4"], check=True, env=env, timeout=300)
    a, b = _weights(single), _weights(ddp)
    assert a.keys() == b.keys() and len(a) > 10
    # Weights the output cannot depend on get gradients of pure rounding noise, which Adam turns into steps of
    # random sign: the token scorer's last bias (a shift of every token score, ignored by the softmax) and the
    # query/key projections of the head's attention over a length-1 sequence (its softmax is always 1).
    a.pop("fusion.token_scorer.4.bias"), b.pop("fusion.token_scorer.4.bias")
    for key in ("head.attention.in_proj_weight", "head.attention.in_proj_bias"):
        value_rows = slice(2 * a[key].shape[0] // 3, None)
        a[key], b[key] = a[key][value_rows], b[key][value_rows]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)
    # only rank 0 wrote: one history line per epoch, no stray files
    assert len((ddp / "history.jsonl").read_text().splitlines()) == 1
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
