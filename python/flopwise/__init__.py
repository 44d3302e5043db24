"""flopwise from Python.

    import flopwise
    m = flopwise.load("runs/demo/mod")        # a run folder (or its model.safetensors)
    m.config["model"]["d_model"]               # the run's config, as a dict
    m.params["blocks.0.qkv.weight"]            # NumPy arrays viewing the engine's buffers
    ids = m.tokenizer.encode("The jury said")
    m.logits(ids)                              # (1, T, V)
    m.loss(ids)                                # mean next-token loss, nats
    m.routing(ids)                             # Mixture-of-Depths: per routed block
    flopwise.flops({"model": {"d_model": 256}})

The engine is C++ (the native module `_flopwise`); errors raise flopwise.Error with the
message the command line prints. The PyTorch twin of a model is flopwise.torch.
"""
import json as _json

import numpy as _np

from . import _flopwise
from ._flopwise import Error

__all__ = ["Error", "Model", "Tokenizer", "load", "flops", "tokenizer", "train", "fit", "plan"]


class Tokenizer:
    """Text to token ids and back; exact on bytes (decode_bytes(encode(s)) == s)."""

    def __init__(self, native):
        self._t = native

    @property
    def spec(self):
        """The tokenizer's name: "bytes", "gpt2:DIR" or "spm:MODEL"."""
        return self._t.spec

    @property
    def vocab_size(self):
        return self._t.vocab_size

    def encode(self, text):
        """str (UTF-8) or bytes → int32 array of ids."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        return self._t.encode(text)

    def decode_bytes(self, ids):
        return self._t.decode_bytes(_np.asarray(ids))

    def decode(self, ids):
        """ids → str; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def tokenizer(spec):
    """A tokenizer by name: "bytes", "gpt2", "gpt2:DIR" or "spm:MODEL"."""
    return Tokenizer(_flopwise.make_tokenizer(spec))


class Model:
    """A trained flopwise model (flopwise.load). Batches are (B, T) integer arrays, or
    one sequence (T,), or a str, which the run's tokenizer encodes."""

    def __init__(self, native):
        self._m = native
        self.config = _json.loads(native.config_json)
        self._params = None
        self._grads = None
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self._m.tokenizer)
        return self._tokenizer

    @property
    def step(self):
        """The training step the checkpoint was written at."""
        return self._m.step

    @property
    def num_params(self):
        return self._m.num_params

    @property
    def params(self):
        """name → float32 array viewing the engine's parameter buffer (no copy; writes
        take effect at the next forward)."""
        if self._params is None:
            self._params = self._m.params()
        return self._params

    @property
    def grads(self):
        """name → float32 array viewing the engine's gradient buffer, which backward()
        fills."""
        if self._grads is None:
            self._grads = self._m.grads()
        return self._grads

    def _ids(self, tokens):
        if isinstance(tokens, (str, bytes)):
            return self.tokenizer.encode(tokens)
        return _np.asarray(tokens)

    def logits(self, tokens):
        """(B, T) inputs → (B, T, V) logits (a fine-tuned encoder: its classifier's)."""
        return self._m.logits(self._ids(tokens))

    def loss(self, tokens, targets=None):
        """Mean cross-entropy in nats. Decoders: (B, T+1) tokens, each position
        predicting the next. Encoders: (B, T) inputs and (B, T) targets, -1 where a
        position is not scored."""
        t = None if targets is None else _np.asarray(targets)
        return self._m.loss(self._ids(tokens), t)["loss"]

    def loss_and_grads(self, tokens, targets=None, seed=0):
        """The training forward and backward of one batch: returns the objective's
        parts ({"loss", "aux_loss", "objective", "scored"}) and self.grads, which now
        hold d objective / d parameter (Mixture-of-Depths' router and predictor losses
        are in aux_loss; seed draws fff_leaf's transpositions)."""
        t = None if targets is None else _np.asarray(targets)
        parts = self._m.loss(self._ids(tokens), t, True, seed)
        self._m.backward()
        return parts, self.grads

    def routing(self, tokens):
        """Mixture-of-Depths, per routed block on this batch: {"layer", "router" (B, T)
        logits, "selected" (B, T) top-k, "predictor" (B, T) logits or None,
        "threshold", "causal" (B, T): what sampling would decide on these block inputs}."""
        return self._m.routing(self._ids(tokens))

    def fff_paths(self, tokens):
        """Fast feedforward trees, per block: (B, T, K, D+1) the neuron each token visits
        at each level of each tree (heap index within its tree), -1 where a routed block
        skipped the token."""
        return self._m.fff_paths(self._ids(tokens))


    def generate(self, prompts, max_tokens=100, temperature=0.8, top_k=0, top_p=0.95, seed=0, kv_cache="fp32"):
        """Samples max_tokens after each prompt (a str, an array of ids, or a list of
        either; several are decoded side by side), yielding (prompt index, token id) as
        each token comes. temperature 0 is greedy. The same seed gives the same tokens
        as `flopwise sample --seed` (whose defaults these are); kv_cache "bf16" keeps
        the KV cache in bf16, as `sample --kv-cache bf16`."""
        single = (isinstance(prompts, (str, bytes)) or (isinstance(prompts, _np.ndarray) and prompts.ndim == 1)
                  or (len(prompts) > 0 and isinstance(prompts[0], (int, _np.integer))))
        rows = [prompts] if single else list(prompts)
        ids = [self._ids(p).astype(_np.int64).tolist() for p in rows]
        if max_tokens < 0:
            raise Error(f"generate: max_tokens must be >= 0, not {max_tokens}")
        if max_tokens == 0:
            return
        # one position per step, on this thread (each step releases the GIL)
        sampler = _flopwise.Sampler(self._m, ids, temperature, top_k, top_p, seed, kv_cache)
        for _ in range(max_tokens):
            yield from enumerate(sampler.next())

    def complete(self, prompt, max_tokens=100, **sampling):
        """The text sampled after one prompt (generate's options)."""
        return self.tokenizer.decode([t for _, t in self.generate(prompt, max_tokens, **sampling)])


def load(run):
    """A run folder, or a model.safetensors file, as a Model."""
    return Model(_flopwise.Model(str(run)))


def flops(config, seq_len=None):
    """Exact FLOPs of a model config (a dict in the config file's form, or the path of a
    config JSON file): what `flopwise flops --json` prints."""
    return _flopwise.flops(_json.dumps(_config_dict(config)), seq_len or 0)


def _config_dict(config):
    if isinstance(config, dict):
        return config
    with open(config) as f:
        return _json.load(f)


def train(config, data, out, on_step=None, resume=False, verbose=False):
    """Trains a run exactly as `flopwise train` does (the same config form and run
    folder): config a dict or config file path (ignored with resume=True, which
    continues the run in `out`), data a folder with train.bin and val.bin.
    on_step(report) is called after every step with {"step", "steps", "loss", "lr",
    "val_loss", "train_seconds"}; returning False stops the run there with a checkpoint
    (continue with resume=True). Ctrl-C stops at the next step boundary, with a
    checkpoint, and then raises KeyboardInterrupt. The engine runs without the GIL.
    Returns the summary: {"step", "finished", "train_loss", "val_loss", "tokens_per_s",
    "mfu", "train_flops_per_token", "precision"}."""
    cfg = "{}" if resume else _json.dumps(_config_dict(config))
    return _flopwise.train(cfg, "" if data is None else str(data), str(out), on_step, resume, verbose)


def fit(runs, params="params", variant=None, bootstrap=0, isoflop=False, seed=0):
    """Scaling-law fits of training runs, as `flopwise fit --runs --json` reports them:
    Approach 3 (L = E + A/N^alpha + B/D^beta; a, b the exponents of N_opt and D_opt),
    the isoFLOP-grid fit, with bootstrap 90% intervals, and with isoflop=True the
    per-budget parabolas (Approach 2). runs: a sweep's runs.csv path (params picks the
    column: "params" or "params_without_embeddings"; variant picks rows), or a list of
    dicts with params, tokens, flops and loss."""
    if isinstance(runs, (str, bytes)) or hasattr(runs, "__fspath__"):
        j = _flopwise.fit_csv(str(runs), params, variant or "", bootstrap, isoflop, seed)
    else:
        recs = [[float(r["params"]), float(r["tokens"]), float(r["flops"]), float(r["loss"])] for r in runs]
        j = _flopwise.fit_records(recs, bootstrap, isoflop, seed)
    return _json.loads(j)


def plan(flops=None, hours=None, law="epoch", variant=None, fit="approach3", config=None, mfu=0.85):
    """A compute-optimal plan for a training budget, as `flopwise plan --json` reports
    it: flops (or hours of this machine at its measured fp32 peak x mfu), a law
    ("epoch", "hoffmann", "hoffmann-tex", a `fit --json` file or a sweep's fit.json),
    the variant (dense or mod; None: both) and the base config (vocabulary, sequence,
    batch) as a dict or file."""
    cfg = _json.dumps(_config_dict(config) if config is not None else {})
    return _json.loads(_flopwise.plan(flops or 0.0, hours or 0.0, law, fit, variant or "", cfg, mfu))

