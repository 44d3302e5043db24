"""How much of each fast feedforward tree a trained model uses: over the first rows of
a corpus's validation text, per block, the share of leaves any token reaches and the
effective number of leaves (the exponential of the entropy of the leaf each token
reaches, as a share of all leaves: 100% when tokens spread evenly), averaged over a
block's trees. A tree whose tokens crowd into a few leaves trains and runs as a much
smaller MLP than its size says.
    PYTHONPATH=build/python /usr/bin/python3 bench/fff_leaf_usage.py DATA_DIR RUN [RUN ...]
Rows are as in pretraining: an encoder's begin with [CLS] (the vocabulary's third-last
id), then 127 tokens of text; a decoder's are 128 tokens of text. Prints one JSON line
per run."""
import json
import math
import sys

import numpy as np

import flopwise


def usage(run, text, rows=64, length=128):
    m = flopwise.load(run)
    cfg = m.config
    ids = m.tokenizer.encode(text)
    encoder = cfg["model"]["kind"] == "encoder"
    body = length - 1 if encoder else length
    batch = np.array([ids[i * body:(i + 1) * body] for i in range(rows)], dtype=np.int32)
    if encoder:
        cls = cfg["model"]["vocab_size"] - 3
        batch = np.concatenate([np.full((rows, 1), cls, dtype=np.int32), batch], axis=1)
    depth = cfg["fff"]["depth"]
    leaves = 2 ** depth
    layers = []
    for paths in m.fff_paths(batch):  # per block: (B, T, K, D+1) heap indices, -1 where skipped
        reached, effective = [], []
        for k in range(paths.shape[2]):
            leaf = paths[:, :, k, depth].ravel()
            leaf = leaf[leaf >= 0] - (leaves - 1)  # heap index of the deepest level -> 0..leaves-1
            counts = np.bincount(leaf, minlength=leaves)
            p = counts[counts > 0] / counts.sum()
            reached.append((counts > 0).sum() / leaves)
            effective.append(math.exp(-(p * np.log(p)).sum()) / leaves)
        layers.append({"leaves_reached": float(np.mean(reached)), "effective_leaves": float(np.mean(effective))})
    return {"run": run, "trees": cfg["fff"]["trees"], "depth": depth, "tokens": int(batch.size), "layers": layers,
            "leaves_reached": float(np.mean([l["leaves_reached"] for l in layers])),
            "effective_leaves": float(np.mean([l["effective_leaves"] for l in layers]))}


def main():
    data, runs = sys.argv[1], sys.argv[2:]
    with open(f"{data}/val.txt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    for run in runs:
        print(json.dumps(usage(run, text)), flush=True)


if __name__ == "__main__":
    main()
