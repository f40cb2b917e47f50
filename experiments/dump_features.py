"""Frozen backbone features for the readout experiments (experiments/readout_lr.py): per stay, the masked token
mean of every hidden state (embeddings + each layer) of the default backbone, for set A and set B in a text style
(float16 .npy, OUT_DIR/STYLE-a.npy and OUT_DIR/STYLE-b.npy). On a GPU when there is one.

    .venv/bin/python experiments/dump_features.py STYLE OUT_DIR
"""

import sys

import numpy as np
import torch

from alfia.model.backbone import load_backbone, load_tokenizer
from alfia.model.fusion import masked_mean
from alfia.text.encoder import TextEncoder
from alfia.text.inputs import load_input


def main() -> None:
    style, out = sys.argv[1], sys.argv[2]
    dev, ext = load_input("p12-a"), load_input("p12-b")
    enc = TextEncoder(dev.schema.name, style).fit(dev.df)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = load_backbone(None).to(device).eval(), load_tokenizer(None)
    for name, cohort in (("a", dev), ("b", ext)):
        texts = enc.transform(cohort.df).tolist()
        feats = []
        with torch.inference_mode():
            for s in range(0, len(texts), 256):
                t = tok(texts[s:s + 256], padding=True, truncation=True, max_length=512,
                        return_tensors="pt").to(device)
                hs = model(**t, output_hidden_states=True).hidden_states
                feats.append(masked_mean(torch.stack(hs), t["attention_mask"].bool().unsqueeze(0)).transpose(0, 1)
                             .half().cpu().numpy())
        np.save(f"{out}/{style}-{name}.npy", np.concatenate(feats))
        print(name, style, np.concatenate(feats).shape, flush=True)


if __name__ == "__main__":
    main()
