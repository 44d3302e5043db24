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

__all__ = ["Error", "Model", "Tokenizer", "load", "flops", "tokenizer"]


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


def load(run):
    """A run folder, or a model.safetensors file, as a Model."""
    return Model(_flopwise.Model(str(run)))


def flops(config, seq_len=None):
    """Exact FLOPs of a model config (a dict in the config file's form, or the path of a
    config JSON file): what `flopwise flops --json` prints."""
    if not isinstance(config, dict):
        with open(config) as f:
            config = _json.load(f)
    return _flopwise.flops(config, seq_len or 0)
