"""flopwise from Python, as one would use it in a notebook: load the demo's
Mixture-of-Depths run, see which words its routers send through their blocks, continue
a prompt, and plot validation loss against training FLOPs for the demo's three models.

    ./scripts/demo.sh --quick                      # makes runs/demo/{dense,mod,mod_fff}
    PYTHONPATH=build/python /usr/bin/python3 examples/notebook.py [runs/demo] [OUT.png]
"""
import json
import os
import sys

import numpy as np

import flopwise

demo = sys.argv[1] if len(sys.argv) > 1 else "runs/demo"
chart = sys.argv[2] if len(sys.argv) > 2 else os.path.join(demo, "loss_vs_flops.png")

# --- a run, its config and its parameters (NumPy views of the engine's buffers) -------
m = flopwise.load(os.path.join(demo, "mod"))
mc = m.config["model"]
print(f"MoD run: {m.num_params:,} parameters, d={mc['d_model']}, {mc['n_layers']} layers, "
      f"capacity {m.config['mod']['capacity']}, trained {m.step} steps")
print("router of block 1: |w| =", float(np.linalg.norm(m.params["blocks.1.router.weight"])))

# --- which words each routed block processes --------------------------------------------
text = ("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
        "election produced no evidence that any irregularities took place.")
ids = m.tokenizer.encode(text)[: mc["max_seq_len"]]
pieces = [m.tokenizer.decode([t]) for t in ids]
for r in m.routing(ids):
    picked = r["selected"][0]
    marked = "".join(f"[{p}]" if s else p for p, s in zip(pieces, picked))
    print(f"block {r['layer']}: top-k processes {int(picked.sum())} of {len(ids)} tokens, [in brackets]:\n  {marked}")
    print(f"  the causal rule sampling uses agrees with top-k on {np.mean(r['causal'][0] == picked):.0%} of them")

# --- sampling, streamed --------------------------------------------------------------------
print("continuation:", repr(m.complete("The jury said", 60, seed=1)))

# --- loss against training FLOPs, from each run's metrics ----------------------------------
import matplotlib  # noqa: E402  (only the chart needs it)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(6, 4))
for name in ("dense", "mod", "mod_fff"):
    path = os.path.join(demo, name, "metrics.jsonl")
    if not os.path.exists(path):
        continue
    rows = [json.loads(line) for line in open(path)]
    pts = [(r["flops"], r["val_loss"]) for r in rows if "val_loss" in r]
    ax.plot(*zip(*pts), marker="o", label=name)
ax.set_xscale("log")
ax.set_xlabel("training FLOPs")
ax.set_ylabel("validation loss (nats per token)")
ax.legend()
fig.tight_layout()
fig.savefig(chart, dpi=120)
print("chart:", chart)
