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
