"""The Python module's API: parameter views that copy nothing, the CLI's numbers and
error messages, tokenizers, FFF paths."""
import json
import subprocess

import numpy as np
import pytest

import flopwise
from conftest import FLOPWISE, run


def test_params_view_the_engine_buffer(runs):
    m = flopwise.load(runs["dense"])
    params = m.params
    assert list(params) == [n for n in params]  # checkpoint order
    # one flat buffer: each tensor starts where the previous one ends
    names = list(params)
    for a, b in zip(names, names[1:]):
        pa, pb = params[a], params[b]
        assert pa.__array_interface__["data"][0] + pa.nbytes == pb.__array_interface__["data"][0]
        assert not pa.flags.owndata
    # the same memory on every access, and a write is what the next forward uses
    assert np.shares_memory(m.params["final_norm.weight"], params["final_norm.weight"])
    tokens = np.arange(10)[None]
    before = m.logits(tokens)
    params["final_norm.weight"][...] *= 2
    after = m.logits(tokens)
    assert not np.allclose(before, after)
    params["final_norm.weight"][...] /= 2
    np.testing.assert_array_equal(m.logits(tokens), before)


def test_grads_view_and_loss(runs):
    m = flopwise.load(runs["dense"])
    tokens = np.random.default_rng(0).integers(0, 256, size=(2, 17))
    loss = m.loss(tokens)
    parts, grads = m.loss_and_grads(tokens)
    assert parts["loss"] == pytest.approx(loss, rel=1e-6)
    assert parts["scored"] == 2 * 16
    assert np.shares_memory(grads["embedding.weight"], m.grads["embedding.weight"])
    assert np.abs(grads["blocks.0.attn.qkv.weight"]).sum() > 0
    # the loss is the mean next-token cross-entropy of the logits
    logits = m.logits(tokens[:, :-1]).astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    expected = -np.take_along_axis(logp, tokens[:, 1:, None], -1).mean()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_config_and_flops_equal_the_cli(runs, tmp_path):
    m = flopwise.load(runs["mod"])
    assert m.config["model"]["d_model"] == 32 and m.config["mod"]["enabled"] is True
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(m.config))
    cli = json.loads(run("flops", "--config", str(cfg), "--json").stdout.strip().splitlines()[-1])
    assert flopwise.flops(m.config) == cli
    assert flopwise.flops(str(cfg)) == cli
    assert flopwise.flops(m.config, seq_len=16)["seq_len"] == 16


def test_errors_carry_the_cli_message(runs, tmp_path):
    with pytest.raises(flopwise.Error, match="checkpoint file not found"):
        flopwise.load(tmp_path / "missing")
    m = flopwise.load(runs["dense"])
    with pytest.raises(flopwise.Error, match=r"id 300 at \[0, 1\] is outside the vocabulary \[0, 256\)"):
        m.logits([[1, 300]])
    with pytest.raises(flopwise.Error, match="longer than model.max_seq_len = 32"):
        m.logits(np.zeros((1, 33), np.int64))
    with pytest.raises(flopwise.Error, match="at least 2 tokens"):
        m.loss([[5]])
    with pytest.raises(flopwise.Error, match="no Mixture-of-Depths"):
        m.routing([1, 2, 3])
    with pytest.raises(flopwise.Error, match="not 'fff'"):
        m.fff_paths([1, 2, 3])
    with pytest.raises(flopwise.Error, match="backward: call loss"):
        m._m.backward()
    with pytest.raises(flopwise.Error, match="model.d_model"):
        flopwise.flops({"model": {"d_model": 30, "n_heads": 4}})
    # and the CLI prints the same line
    r = subprocess.run([FLOPWISE, "eval", "--ckpt", str(tmp_path / "missing")], capture_output=True, text=True)
    assert "checkpoint file not found" in r.stderr and r.returncode != 0


def test_tokenizer_round_trip(runs):
    t = flopwise.load(runs["dense"]).tokenizer
    assert t.spec == "bytes" and t.vocab_size == 256
    text = "Grüße, jury — 1961.\n"
    ids = t.encode(text)
    assert ids.dtype == np.int32 and len(ids) == len(text.encode())
    assert t.decode(ids) == text
    assert t.decode_bytes(t.encode(b"\xff\xfe")) == b"\xff\xfe"
    assert flopwise.tokenizer("bytes").encode("ab").tolist() == [97, 98]


def test_fff_paths_follow_the_sign_of_lambda(runs):
    m = flopwise.load(runs["fff"])
    tokens = np.random.default_rng(5).integers(0, 256, size=(2, 12))
    paths = m.fff_paths(tokens)
    K, D = 2, 3
    assert len(paths) == 2 and paths[0].shape == (2, 12, K, D + 1)
    p = paths[0]
    assert (p[..., 0] == 0).all()  # every walk starts at the root
    # each next node is a child of the one before
    parent = p[..., :-1]
    assert np.isin(p[..., 1:] - 2 * parent, [1, 2]).all()
    # routed blocks mark the tokens they skipped
    mod = flopwise.load(runs["mod_fff"])
    routed = mod.fff_paths(tokens[:, :8])[1]
    sel = mod.routing(tokens[:, :8])[0]["selected"]
    assert ((routed[..., 0] == -1) == ~sel[..., None]).all()


SMALL_CONFIG = {"model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 32},
                "train": {"seq_len": 32, "batch_size": 4, "steps": 6, "eval_every": 0, "eval_tokens": 256}}


def test_train_equals_the_cli_and_stops_at_a_step_boundary(data_dir, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(SMALL_CONFIG))
    run("train", "--config", str(cfg), "--data", str(data_dir), "--out", str(tmp_path / "cli"))
    # on_step returning False stops with a checkpoint; resume finishes the same trajectory
    reports = []
    s = flopwise.train(SMALL_CONFIG, data_dir, tmp_path / "py", on_step=lambda r: reports.append(r) or r["step"] < 2)
    assert s["step"] == 2 and not s["finished"] and [r["step"] for r in reports] == [1, 2]
    assert reports[0]["steps"] == 6 and reports[0]["loss"] > 0 and reports[0]["val_loss"] is None
    assert flopwise.load(tmp_path / "py").step == 2
    s = flopwise.train(None, None, tmp_path / "py", resume=True)
    assert s["finished"] and s["step"] == 6 and s["val_loss"] is not None
    cli, py = flopwise.load(tmp_path / "cli"), flopwise.load(tmp_path / "py")
    for name, p in cli.params.items():
        assert np.array_equal(py.params[name], p), name


def test_train_interrupted_keeps_a_checkpoint(data_dir, tmp_path):
    import os
    import signal

    def interrupt(r):  # Ctrl-C during step 3: seen at its boundary
        if r["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        flopwise.train(SMALL_CONFIG, data_dir, tmp_path / "a", on_step=interrupt)
    assert flopwise.load(tmp_path / "a").step == 3

    def fail(r):
        raise ValueError("from the callback")

    with pytest.raises(ValueError, match="from the callback"):
        flopwise.train(SMALL_CONFIG, data_dir, tmp_path / "b", on_step=fail)
    assert flopwise.load(tmp_path / "b").step == 1
    with pytest.raises(flopwise.Error, match="train.steps"):
        flopwise.train({"train": {"steps": 0}}, data_dir, tmp_path / "c")


def test_generate_equals_cli_sample(runs, tmp_path):
    m = flopwise.load(runs["mod"])
    for seed in (0, 5):
        trace = tmp_path / f"trace{seed}.jsonl"
        run("sample", "--ckpt", str(runs["mod"]), "--prompt", "The jury", "--tokens", "12", "--seed", str(seed),
            "--trace", str(trace))
        lines = [json.loads(x) for x in trace.read_text().splitlines()]
        # the trace holds the tokens fed: all sampled ones but the last
        expected = [x["token"] for x in lines if x["pos"] >= len("The jury")]
        got = list(m.generate("The jury", 12, seed=seed))
        assert len(got) == 12 and len(expected) == 11
        assert [t for _, t in got][:11] == expected and all(r == 0 for r, _ in got)
    # several prompts side by side: each continues as it would alone
    both = list(m.generate(["The jury", "He said"], 12, seed=5))
    alone = [t for _, t in m.generate("He said", 12, seed=5 + 1)]  # row i draws from seed + i
    assert [t for r, t in both if r == 1] == alone
    with pytest.raises(flopwise.Error, match="empty prompt"):
        list(m.generate([[]], 3))
    # a bf16 KV cache: the tokens of `sample --kv-cache bf16` (with this seed they leave the
    # fp32 cache's at the 13th token on the machine this was written on)
    trace = tmp_path / "trace_kv.jsonl"
    run("sample", "--ckpt", str(runs["mod"]), "--prompt", "The jury", "--tokens", "20", "--seed", "5", "--kv-cache",
        "bf16", "--trace", str(trace))
    expected = [x["token"] for x in map(json.loads, trace.read_text().splitlines()) if x["pos"] >= len("The jury")]
    assert [t for _, t in m.generate("The jury", 20, seed=5, kv_cache="bf16")][:19] == expected
    with pytest.raises(flopwise.Error, match="kv_cache 'fp16' is not 'fp32' or 'bf16'"):
        list(m.generate("The jury", 3, kv_cache="fp16"))


def test_fit_and_plan_equal_the_cli(tmp_path):
    import pathlib
    csv = pathlib.Path(__file__).parents[2] / "bench/results/scaling/runs.csv"
    cli = json.loads(run("fit", "--runs", str(csv), "--variant", "dense", "--isoflop", "--json").stdout.splitlines()[-1])
    py = flopwise.fit(csv, variant="dense", isoflop=True)
    for key in ("a", "b", "E", "A", "B", "alpha", "beta"):
        assert py["approach3"][key] == pytest.approx(cli["approach3"][key], rel=1e-12), key
        assert py["grid"][key] == pytest.approx(cli["grid"][key], rel=1e-12), key
    records = [{"params": n, "tokens": d, "flops": 6 * n * d, "loss": 1.7 + 400 / n ** 0.34 + 410 / d ** 0.28}
               for n in (1e6, 3e6, 1e7, 3e7, 1e8) for d in (1e8, 3e8, 1e9, 3e9)]
    law = flopwise.fit(records)["approach3"]
    assert law["alpha"] == pytest.approx(0.34, rel=0.02) and law["beta"] == pytest.approx(0.28, rel=0.02)
    cli = json.loads(run("plan", "--flops", "1e18", "--json").stdout.splitlines()[-1])
    py = flopwise.plan(flops=1e18)
    assert py["variants"] == cli["variants"] and py["n_opt"] == cli["n_opt"]
    with pytest.raises(flopwise.Error, match="variant 'moe'"):
        flopwise.plan(flops=1e18, variant="moe")


def test_type_stubs_name_every_public_function():
    import inspect
    import pathlib
    from flopwise import _flopwise
    pkg = pathlib.Path(flopwise.__file__).parent
    stub = (pkg / "__init__.pyi").read_text()
    for name in flopwise.__all__:
        assert f"def {name}(" in stub or f"class {name}" in stub or f"import Error as {name}" in stub, name
    for name, member in inspect.getmembers(flopwise.Model):
        if not name.startswith("_"):
            assert f"def {name}(" in stub, f"Model.{name}"
    native = (pkg / "_flopwise.pyi").read_text()
    for name in dir(_flopwise):
        if not name.startswith("__"):
            assert f"def {name}(" in native or f"class {name}" in native, name
    for name in dir(_flopwise.Model):
        if not name.startswith("__"):
            assert f"def {name}(" in native, f"_flopwise.Model.{name}"


def test_notebook_example_runs(runs, tmp_path):
    import os
    import pathlib
    import sys
    example = pathlib.Path(__file__).parents[2] / "examples/notebook.py"
    chart = tmp_path / "chart.png"
    r = subprocess.run([sys.executable, str(example), str(runs["mod"].parent), str(chart)], capture_output=True,
                       text=True, errors="replace", env=dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl")))
    assert r.returncode == 0, r.stderr
    assert "block 1: top-k processes 8 of" in r.stdout and "continuation:" in r.stdout
    assert chart.stat().st_size > 1000


def test_training_releases_the_gil(data_dir, tmp_path):
    import threading
    import time
    ticks, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        before = ticks[0]
        cfg = dict(SMALL_CONFIG, train=dict(SMALL_CONFIG["train"], steps=40))
        flopwise.train(cfg, data_dir, tmp_path / "run")
        during = ticks[0] - before
    finally:
        stop.set()
        t.join()
    # holding the GIL for the whole call would leave the counter still (a few ticks at most)
    assert during > 20, during
