"""What the Python layer adds to a forward pass: Model.logits(batch) (ids converted and
checked, the GIL released, the logits copied into a new NumPy array) against the same
inference forward through the C++ API alone (model_forward, timed inside the engine),
side by side in one process, interleaved, median of each. Target: logits within 5%.
The model is the quick-start shape (configs/quickstart.json: d=256, 4 layers) with
random weights; the time of a forward does not depend on their values.
    bench/python_overhead.sh            (builds, then runs this with PYTHONPATH=build/python)
Writes bench/results/python_overhead.json."""
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import flopwise
from flopwise import _flopwise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = [(1, 16), (1, 128), (16, 128), (64, 128)]
ROUNDS, REPS = 5, 20


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    with open(os.path.join(ROOT, "configs/quickstart.json")) as f:
        config = json.load(f)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as run:
        shapes = _flopwise.param_shapes(json.dumps(config))
        params = {n: (0.02 * rng.standard_normal(s)).astype(np.float32) for n, s in shapes}
        _flopwise.save_model(run, json.dumps(config), params, "bytes", 0)
        m = flopwise.load(run)
    rows = []
    for B, T in SHAPES:
        tokens = rng.integers(0, 256, size=(B, T))
        m.logits(tokens)  # activations made, caches warm
        py, cpp = [], []
        for _ in range(ROUNDS):
            for _ in range(REPS):
                t0 = time.perf_counter()
                m.logits(tokens)
                py.append(time.perf_counter() - t0)
            cpp += m._m._time_forward(tokens, REPS)
        p, c = statistics.median(py), statistics.median(cpp)
        rows.append({"batch": B, "seq_len": T, "python_ms": p * 1e3, "cpp_ms": c * 1e3, "ratio": p / c})
        print(f"| {B} x {T} | {p * 1e3:.3f} | {c * 1e3:.3f} | {p / c:.3f} |", flush=True)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = {"cpu": cpu_name(), "commit": commit, "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
           "model": "configs/quickstart.json (d=256, 4 layers, vocab 256), random weights",
           "what": "median seconds of Model.logits(batch) vs model_forward alone, interleaved, "
                   f"{ROUNDS} rounds x {REPS} calls", "rows": rows}
    path = os.path.normpath(os.path.join(ROOT, "bench/results/python_overhead.json"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"{out['cpu']}, commit {commit}: {path}", file=sys.stderr)


if __name__ == "__main__":
    print("| batch | Model.logits ms | C++ forward ms | ratio |\n|---|---:|---:|---:|")
    main()
