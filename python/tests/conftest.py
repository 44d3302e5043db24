"""Shared fixtures: a small byte-level corpus and small trained runs of every model
kind, made with the flopwise program under this session's temporary folder (ctest
gives pytest --basetemp build/tests/tmp/<test>/)."""
import json
import os
import random
import subprocess

import pytest

FLOPWISE = os.environ.get("FLOPWISE_BIN", os.path.join(os.path.dirname(__file__), "../../build/flopwise"))

# --set overrides on a 2-layer, 32-wide model; every kind the twin covers
KINDS = {
    "dense": [],
    "untied": ["model.tie_embeddings=false"],
    "mlp_none": ["model.mlp=none"],
    "mod": ["mod.enabled=true", "mod.capacity=0.25"],
    "mod_sigmoid_predictor": ["mod.enabled=true", "mod.capacity=0.25", "mod.gate=sigmoid", "mod.causal=predictor"],
    "fff": ["model.mlp=fff", "fff.trees=2", "fff.depth=3"],
    "mod_fff": ["mod.enabled=true", "mod.capacity=0.5", "model.mlp=fff", "fff.trees=2", "fff.depth=2"],
    "fff_leaf": ["model.mlp=fff_leaf", "fff.trees=2", "fff.depth=2", "fff.leaf_width=4", "fff.transpose_prob=0"],
    "encoder": ["model.kind=encoder", "model.vocab_size=260", "model.mlp=fff", "fff.trees=2", "fff.depth=2"],
    "encoder_mod": ["model.kind=encoder", "model.vocab_size=260", "mod.enabled=true", "mod.capacity=0.25"],
}
# fine-tuned from the "encoder" run: kind → (head, task files' rows)
FINETUNED = {"sequence": "sequence", "tagging": "tagging"}

SMALL = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.max_seq_len=32", "train.seq_len=32",
         "train.batch_size=4", "train.steps=8", "train.eval_every=0", "train.eval_tokens=256", "train.lr=3e-3"]


def run(*args):
    r = subprocess.run([FLOPWISE, *args], capture_output=True, text=True, errors="replace")
    assert r.returncode == 0, f"flopwise {' '.join(args)} failed: {r.stderr}"
    return r


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A byte-level data folder from deterministic pseudo-English."""
    d = tmp_path_factory.mktemp("data")
    rng = random.Random(1)
    words = "the of and to a in that is was he for it with as his on be at by had this not are but from".split()
    text = ". ".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))).capitalize()
                     for _ in range(3000))
    (d / "text.txt").write_text(text)
    run("prepare", "--input", str(d / "text.txt"), "--out", str(d / "bytes"), "--val-fraction", "0.1")
    return d / "bytes"


@pytest.fixture(scope="session")
def runs(tmp_path_factory, data_dir):
    """kind → a run folder trained for a few steps (real, not initial, weights)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, sets in KINDS.items():
        args = ["train", "--data", str(data_dir), "--out", str(root / kind)]
        for s in SMALL + sets:
            args += ["--set", s]
        run(*args)
        out[kind] = root / kind
    # fine-tuned encoders: a sequence head and a tagging head on small JSONL tasks
    rng = random.Random(2)
    words = "red green blue cat dog sat ran".split()
    for head in FINETUNED:
        task = root / f"task_{head}"
        task.mkdir()
        for split, n in (("train", 24), ("val", 8)):
            rows = []
            for _ in range(n):
                ws = [rng.choice(words) for _ in range(rng.randint(2, 6))]
                if head == "sequence":
                    rows.append({"text": " ".join(ws), "label": "animal" if "cat" in ws or "dog" in ws else "other"})
                else:
                    rows.append({"tokens": ws, "tags": ["A" if w in ("cat", "dog") else "B" for w in ws]})
            (task / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        run("finetune", "--ckpt", str(out["encoder"]), "--task", str(task), "--out", str(root / head),
            "--epochs", "1", "--max-len", "16")
        out[head] = root / head
    return out
