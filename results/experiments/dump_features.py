"""Frozen backbone features for the readout experiments: per stay, the masked token mean of every hidden state
(embeddings + each layer) of the default backbone, for set A and set B in a text style (float16 .npy).

    python results/experiments/dump_features.py STYLE OUT_DIR
"""
import sys

import numpy as np
import torch

sys.path.insert(0, ".")
from alfia.cohorts.bundled import load_bundled  # noqa: E402
from alfia.model.backbone import load_backbone, load_tokenizer  # noqa: E402
from alfia.model.fusion import masked_mean  # noqa: E402
from alfia.text.encoder import TextEncoder  # noqa: E402

style, out = sys.argv[1], sys.argv[2]
dev, ext = load_bundled("p12-a"), load_bundled("p12-b")
enc = TextEncoder(dev.schema.name, style).fit(dev.df)
device = "cuda" if torch.cuda.is_available() else "cpu"
model, tok = load_backbone(None).to(device).eval(), load_tokenizer(None)
for name, cohort in (("a", dev), ("b", ext)):
    texts = enc.transform(cohort.df).tolist()
    feats = []
    with torch.inference_mode():
        for s in range(0, len(texts), 256):
            t = tok(texts[s:s + 256], padding=True, truncation=True, max_length=512, return_tensors="pt").to(device)
            hs = model(**t, output_hidden_states=True).hidden_states
            feats.append(masked_mean(torch.stack(hs), t["attention_mask"].bool().unsqueeze(0)).transpose(0, 1)
                         .half().cpu().numpy())
    np.save(f"{out}/{style}-{name}.npy", np.concatenate(feats))
    print(name, style, np.concatenate(feats).shape, flush=True)
