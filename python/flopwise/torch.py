"""The PyTorch twin of a flopwise model: the same computation, written with torch
operations, holding the same weights under the same names.

    import flopwise.torch as ft
    module = ft.from_run("runs/demo/mod")     # torch.nn.Module, weights copied
    logits, parts = module(tokens)            # tokens (B, T) int64
    ft.save(module, "runs/mine")              # a run folder flopwise loads

It is the engine's test oracle (python/tests): the engine's logits, losses and
gradients must equal autograd's through this module. What it computes, as the engine
does (docs/methods.md):
  - pre-norm blocks, RMSNorm (eps 1e-5), fused QKV, rotary embeddings on interleaved
    pairs (angle pos * 10000^(-2i/hd)), softmax attention (causal in a decoder), GELU
    (the exact, erf form), tied or untied output head;
  - Mixture-of-Depths routed blocks: r = x . w, top-k per row (ties to the earlier
    token), the block on the selected tokens with their own positions, y = x + g(r)(block
    - x); the router's BCE and the causal predictor's BCE (input detached) as auxiliary
    losses; and sampling's causal rule (forward(causal=True): a token is processed when
    its router's, or predictor's, logit is above the block's threshold);
  - fast feedforward trees (mlp = fff): per tree, root to leaf, lambda = x . w_in + b,
    out += GELU(lambda) w_out, right child when lambda > 0 (a constant for the gradient);
  - the leaf form (fff_leaf) in its hard (evaluation) form, and in training with
    fff.transpose_prob = 0 (its random transpositions are the engine's own stream);
  - encoders (bidirectional attention over full rows) with their heads.
"""
import json
import math
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from . import _flopwise

NORM_EPS = 1e-5
ROPE_THETA = 10000.0


def _rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * w


def _gelu(x):
    return F.gelu(x)  # erf form


def _rope(x, pos):
    """x (B, H, T, hd), pos (B, T): rotate interleaved pairs by pos * theta^(-2i/hd)."""
    hd = x.shape[-1]
    i = torch.arange(hd // 2, dtype=torch.float64)
    ang = pos.to(torch.float64)[:, None, :, None] * ROPE_THETA ** (-2.0 * i / hd)  # (B, 1, T, hd/2)
    c, s = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


class Twin(nn.Module):
    """A flopwise model as a torch.nn.Module. Parameters are named as in the
    checkpoint ("blocks.0.attn.qkv.weight", ...) with '.' replaced by '__' (torch
    forbids dots in parameter names); state() and load_state() use the checkpoint's."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        m = config["model"]
        self.m = m
        self.C, self.H, self.L = m["d_model"], m["n_heads"], m["n_layers"]
        self.encoder = m.get("kind", "decoder") == "encoder"
        mod = config.get("mod", {})
        self.mod = mod if mod.get("enabled", False) else None
        self.mlp_kind = m.get("mlp", "dense")
        shapes = _flopwise.param_shapes(json.dumps(config))
        self.names = [n for n, _ in shapes]
        for name, shape in shapes:
            self.register_parameter(name.replace(".", "__"), nn.Parameter(torch.zeros(shape)))
        fff = config.get("fff", {})
        self.fff = fff
        self.fff_K = fff.get("trees", 1)
        self.fff_D = _flopwise.mlp_depth(json.dumps(config)) if self.mlp_kind in ("fff", "fff_leaf") else 0
        self.leaf_width = fff.get("leaf_width", 32)
        self.thresholds = [0.0] * self.L  # causal routing's, per layer (from_run: the run's calibrated ones)

    def p(self, name):
        return getattr(self, name.replace(".", "__"))

    def state(self):
        """name → float32 NumPy array, in the checkpoint's order and names."""
        return {n: self.p(n).detach().cpu().numpy().astype(np.float32) for n in self.names}

    def load_state(self, params):
        with torch.no_grad():
            for n in self.names:
                self.p(n).copy_(torch.as_tensor(np.asarray(params[n]), dtype=torch.float32))

    # --- the pieces -------------------------------------------------------------
    def _attention(self, pre, x, pos):
        B, T, C = x.shape
        H, hd = self.H, C // self.H
        qkv = _rms_norm(x, self.p(pre + "attn_norm.weight")) @ self.p(pre + "attn.qkv.weight").T
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in qkv.split(C, dim=-1))
        q, k = _rope(q, pos), _rope(k, pos)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        if not self.encoder:  # causal: in position order, which routed blocks keep
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)
            att = att.masked_fill(mask, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        return y @ self.p(pre + "attn.out.weight").T

    def _fff(self, pre, x, train):
        K, D, C = self.fff_K, self.fff_D, x.shape[-1]
        N = (2 << D) - 1
        w_in = self.p(pre + "mlp.fff.w_in").view(K, N, C)
        b_in = self.p(pre + "mlp.fff.b_in").view(K, N)
        w_out = self.p(pre + "mlp.fff.w_out").view(K, N, C)
        xs = x.reshape(-1, C)
        y = torch.zeros_like(xs)
        for k in range(K):
            n = torch.zeros(xs.shape[0], dtype=torch.long)
            for _ in range(D + 1):
                lam = (xs * w_in[k, n]).sum(-1) + b_in[k, n]
                y = y + _gelu(lam)[:, None] * w_out[k, n]
                n = torch.where(lam.detach() > 0, 2 * n + 2, 2 * n + 1)
        return y.view_as(x)

    def _fff_leaf(self, pre, x, train):
        K, D, C, l = self.fff_K, self.fff_D, x.shape[-1], self.leaf_width
        R, Lv = (1 << D) - 1, 1 << D
        r_w = self.p(pre + "mlp.fff_leaf.router.weight").view(K, R, C)
        r_b = self.p(pre + "mlp.fff_leaf.router.bias").view(K, R)
        w1 = self.p(pre + "mlp.fff_leaf.w1").view(K, Lv, l, C)
        b1 = self.p(pre + "mlp.fff_leaf.b1").view(K, Lv, l)
        w2 = self.p(pre + "mlp.fff_leaf.w2").view(K, Lv, l, C)
        b2 = self.p(pre + "mlp.fff_leaf.b2").view(K, Lv, C)
        xs = x.reshape(-1, C)
        M = xs.shape[0]
        y = torch.zeros_like(xs)
        aux = x.new_zeros(())
        for k in range(K):
            if not train:  # hard: descend by sigma > 0.5, one leaf
                n = torch.zeros(M, dtype=torch.long)
                for _ in range(D):
                    z = (xs * r_w[k, n]).sum(-1) + r_b[k, n]
                    n = torch.where(z > 0, 2 * n + 2, 2 * n + 1)
                leaf = n - R
                h = _gelu((xs[:, None, :] * w1[k, leaf]).sum(-1) + b1[k, leaf])  # (M, l)
                y = y + (h[:, :, None] * w2[k, leaf]).sum(1) + b2[k, leaf]
                continue
            # soft: each leaf weighted by the product of its path's router probabilities
            probs = torch.sigmoid(xs @ r_w[k].T + r_b[k])  # (M, R): probability of the right child
            prob = torch.ones(M, 1)
            for level in range(D):
                first = (1 << level) - 1
                pr = probs[:, first:first + (1 << level)]
                prob = torch.stack([prob * (1 - pr), prob * pr], dim=-1).flatten(1)
            # (torch 1.13's einsum backward read uninitialised memory here: plain products instead)
            h = _gelu(xs @ w1[k].reshape(Lv * l, C).T + b1[k].reshape(-1)).view(M, Lv, l)
            out = torch.bmm(h.transpose(0, 1), w2[k]).transpose(0, 1) + b2[k]  # (M, Lv, C)
            y = y + (prob[:, :, None] * out).sum(1)
            ent = -(probs * torch.log(probs.clamp_min(1e-30)) + (1 - probs) * torch.log((1 - probs).clamp_min(1e-30)))
            aux = aux + ent.mean() / K
        return y.view_as(x), aux

    def _block(self, l, x, pos, train):
        pre = f"blocks.{l}."
        h = x + self._attention(pre, x, pos)
        aux = x.new_zeros(())
        if self.mlp_kind == "none":
            return h, aux
        n = _rms_norm(h, self.p(pre + "mlp_norm.weight"))
        if self.mlp_kind == "dense":
            out = _gelu(n @ self.p(pre + "mlp.fc.weight").T) @ self.p(pre + "mlp.proj.weight").T
        elif self.mlp_kind == "fff":
            out = self._fff(pre, n, train)
        else:
            out, ent = self._fff_leaf(pre, n, train)
            aux = aux + self.fff.get("hardening", 1.0) * ent
        return h + out, aux

    def _predictor(self, pre, x):
        hid = x.detach() @ self.p(pre + "predictor.fc.weight").T + self.p(pre + "predictor.fc.bias")
        return (F.silu(hid) @ self.p(pre + "predictor.out.weight").T + self.p(pre + "predictor.out.bias"))[..., 0]

    def _routed(self, l, x, pos, train, causal=False):
        """Top-k routing (training, and the engine's full-sequence forward), or with
        causal=True the rule sampling uses: a token is processed when its decider's
        logit (the predictor's with mod.causal = predictor, else the router's) is above
        the block's threshold (self.thresholds: the run's calibrated ones, else 0)."""
        pre = f"blocks.{l}."
        B, T, C = x.shape
        mod = self.mod
        remedy = mod.get("causal", "both")
        r = x @ self.p(pre + "router.weight")  # (B, T)
        if causal:
            decider = self._predictor(pre, x) if remedy == "predictor" else r
            chosen = (decider > self.thresholds[l]).detach()
            y = x.clone()
            for b in range(B):  # each row processes its own number of tokens
                idx = chosen[b].nonzero()[:, 0]
                if len(idx) == 0:
                    continue
                xs = x[b, idx][None]
                ys, _ = self._block(l, xs, pos[b, idx][None], train)
                g = r[b, idx] if mod.get("gate", "raw") == "raw" else torch.sigmoid(r[b, idx])
                y[b, idx] = xs[0] + g[:, None] * (ys[0] - xs[0])
            return y, x.new_zeros(())
        k = max(1, int(math.floor(mod.get("capacity", 0.125) * T + 0.5)))
        # top-k, ties to the earlier token, back into position order
        order = torch.from_numpy(np.argsort(-r.detach().numpy(), axis=1, kind="stable")[:, :k].copy())
        idx = order.sort(dim=1).values  # (B, k)
        selected = torch.zeros(B, T)
        selected.scatter_(1, idx, 1.0)
        xs = x.gather(1, idx[:, :, None].expand(B, k, C))
        ys, aux = self._block(l, xs, pos.gather(1, idx), train)
        rs = r.gather(1, idx)
        gate = mod.get("gate", "raw")
        g = rs if gate == "raw" else torch.sigmoid(rs)
        y = x.scatter_add(1, idx[:, :, None].expand(B, k, C), g[:, :, None] * (ys - xs))
        if remedy in ("router_bce", "both"):
            aux = aux + mod.get("bce_weight", 0.01) * F.binary_cross_entropy_with_logits(r, selected)
        if remedy in ("predictor", "both"):
            z = self._predictor(pre, x)
            aux = aux + mod.get("predictor_weight", 1.0) * F.binary_cross_entropy_with_logits(z, selected)
        return y, aux

    def _routed_layer(self, l):
        return self.mod is not None and l % self.mod.get("every", 2) == self.mod.get("every", 2) - 1

    def forward(self, tokens, targets=None, train=False, causal=False):
        """tokens (B, T) → (logits (B, T, V or labels), {"loss", "aux_loss",
        "objective"} when targets (B, T) are given: mean cross-entropy over the
        targets ≥ 0, and the auxiliary losses the engine adds in training).
        causal=True routes Mixture-of-Depths blocks token by token, as sampling does
        (so logits at each position equal what decoding computes there)."""
        tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if tokens.dim() == 1:
            tokens = tokens[None]
        B, T = tokens.shape
        x = self.p("embedding.weight")[tokens]
        pos = torch.arange(T)[None].expand(B, T)
        aux = x.new_zeros(())
        for l in range(self.L):
            if self._routed_layer(l):
                x, a = self._routed(l, x, pos, train, causal)
            else:
                x, a = self._block(l, x, pos, train)
            aux = aux + a
        lnf = _rms_norm(x, self.p("final_norm.weight"))
        head = self.m.get("head", "lm")
        if head != "lm":
            logits = lnf @ self.p("classifier.weight").T + self.p("classifier.bias")
        elif self.m.get("tie_embeddings", True):
            logits = lnf @ self.p("embedding.weight").T
        else:
            logits = lnf @ self.p("lm_head.weight").T
        if targets is None:
            return logits, None
        targets = torch.as_tensor(np.asarray(targets), dtype=torch.long).view(B, T)
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=-1)
        return logits, {"loss": loss, "aux_loss": aux, "objective": loss + aux}


def from_config(config):
    """A twin of a config (dict, the config file's form) with zero weights."""
    return Twin(json.loads(_flopwise.resolved_config(json.dumps(config))))


def from_run(run):
    """A run folder (or model.safetensors) as a twin holding its weights."""
    native = _flopwise.Model(str(run))
    twin = Twin(json.loads(native.config_json))
    twin.load_state(native.params())
    twin.thresholds = list(native.causal_thresholds)
    twin.tokenizer_spec = native.tokenizer_spec
    return twin


def save(module, run, tokenizer="bytes", step=0):
    """Write the twin as a run folder flopwise loads (config.json and model.safetensors)."""
    os.makedirs(run, exist_ok=True)
    spec = getattr(module, "tokenizer_spec", tokenizer)
    _flopwise.save_model(str(run), json.dumps(module.config), module.state(), spec, step)
