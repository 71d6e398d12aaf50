#!/usr/bin/python3
"""PyTorch reference forward pass (float64) for the llama / qwen2 / phi3 models written by
make_random_model.py (or any W.npz with the same keys), used to check the Tidelane engine.

Written independently from the C++ engine (router/engine), plainly from the equations:
  RMSNorm   y = x / sqrt(mean(x^2) + eps) * w
  attention causal, GQA (kv head = q head // (heads / kv_heads)), scale 1/sqrt(head_dim),
            qwen2 adds biases to q, k, v; phi3 has a fused qkv matrix (rows q, k, v)
  RoPE      llama: interleaved pairs (x[2i], x[2i+1]); qwen2/phi3: NEOX pairs (x[i], x[i+d/2]);
            both rotate by angle pos * base^(-2i/d)
  FFN       down(silu(gate x) * up x); phi3's fused ffn_up holds gate rows then up rows
  output    final RMSNorm, then output.weight (or token_embd.weight when tied)

Usage:
  /usr/bin/python3 tests/tools/torch_forward.py --weights W.npz --tokens "1 5 9" --out L.f32
      writes logits for every position, float32 little-endian, n_tokens x vocab row-major
      (or a .npy file when --out ends in .npy)
  ... --generate 20      also greedy-decodes 20 tokens after the prompt and prints their ids
  ... --emulate-ggml     computes in float32 and rounds activations the way ggml's CPU
                         kernels do (f16/bf16/8-bit per weight type, f16 KV cache); used
                         only to measure how far a faithful engine may drift from the exact
                         reference, which sets the test tolerances.
"""
import argparse
import sys

import numpy as np
import torch


def load_weights(path):
    """Returns (weights dict name -> float64 tensor, hyper-parameter dict)."""
    z = np.load(path)
    hp = {k[3:]: z[k].item() for k in z.files if k.startswith("hp.")}
    weights = {k: torch.from_numpy(z[k].astype(np.float64)) for k in z.files if not k.startswith("hp.")}
    return weights, hp


# --- activation rounding used by --emulate-ggml --------------------------------------------

def _round_f16(x):
    return x.to(torch.float16).to(x.dtype)


def _round_bf16(x):
    return x.to(torch.bfloat16).to(x.dtype)


def _round_q8(x, block, f16_scale):
    """Per-block 8-bit quantisation with scale amax/127 (ggml Q8_0 / Q8_1 / Q8_K style)."""
    shape = x.shape
    xb = x.reshape(-1, block)
    d = xb.abs().amax(dim=1, keepdim=True) / 127.0
    if f16_scale:
        d = _round_f16(d)
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    return (torch.round(xb * inv).clamp(-127, 127) * d).reshape(shape)


def activation_rounding(weight_type):
    """How ggml's CPU matmul converts activations for a weight type (its vec_dot_type)."""
    if weight_type in ("f16",):
        return _round_f16
    if weight_type in ("bf16",):
        return _round_bf16
    if weight_type in ("q8_0", "q4_0", "q5_0", "q4_1", "q5_1"):
        return lambda x: _round_q8(x, 32, True)
    if weight_type in ("q4_k", "q5_k", "q6_k"):
        return lambda x: _round_q8(x, 256, False)
    return lambda x: x


# --- the model --------------------------------------------------------------------------------

class Reference:
    def __init__(self, weights, hp, emulate_ggml=False):
        self.hp = hp
        self.dtype = torch.float32 if emulate_ggml else torch.float64
        self.w = {k: v.to(self.dtype) for k, v in weights.items()}
        self.emulate = emulate_ggml
        self.neox = hp["arch"] != "llama"   # RoPE pairs: (i, i + d/2) instead of (2i, 2i + 1)
        self.round_act = activation_rounding(hp.get("type", "f32")) if emulate_ggml else (lambda x: x)

    def linear(self, name, x):
        """x @ W^T for a stored (out, in) matrix; activations rounded like ggml if emulating."""
        return self.round_act(x) @ self.w[name].T

    def rms_norm(self, x, name):
        return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + self.hp["rms_eps"]) * self.w[name]

    def rope(self, x, positions):
        """x: (n, heads, head_dim); rotates pairs by pos * base^(-2i/head_dim)."""
        hd = x.shape[-1]
        i = torch.arange(hd // 2, dtype=torch.float64)
        theta = positions.to(torch.float64)[:, None] * self.hp["rope_base"] ** (-2.0 * i / hd)
        cos = torch.cos(theta)[:, None, :].to(x.dtype)
        sin = torch.sin(theta)[:, None, :].to(x.dtype)
        if self.neox:
            a, b = x[..., : hd // 2], x[..., hd // 2:]  # NEOX halves
        else:
            a, b = x[..., 0::2], x[..., 1::2]          # interleaved pairs
        ra, rb = a * cos - b * sin, a * sin + b * cos
        if self.neox:
            return torch.cat([ra, rb], dim=-1)
        return torch.stack([ra, rb], dim=-1).reshape(x.shape)

    def qkv(self, x, layer):
        hp, b = self.hp, f"blk.{layer}."
        q_dim, kv_dim = hp["n_heads"] * hp["head_dim"], hp["n_kv_heads"] * hp["head_dim"]
        if hp["arch"] == "phi3":
            fused = self.linear(b + "attn_qkv.weight", x)
            return fused[:, :q_dim], fused[:, q_dim:q_dim + kv_dim], fused[:, q_dim + kv_dim:]
        q, k, v = (self.linear(b + f"attn_{n}.weight", x) for n in "qkv")
        if hp["arch"] == "qwen2":
            q, k, v = q + self.w[b + "attn_q.bias"], k + self.w[b + "attn_k.bias"], v + self.w[b + "attn_v.bias"]
        return q, k, v

    def attention(self, x, layer, positions):
        hp = self.hp
        n, hd, nh, nkv = x.shape[0], hp["head_dim"], hp["n_heads"], hp["n_kv_heads"]
        q, k, v = self.qkv(x, layer)
        q = self.rope(q.reshape(n, nh, hd), positions)
        k = self.rope(k.reshape(n, nkv, hd), positions)
        v = v.reshape(n, nkv, hd)
        if self.emulate:                               # llama.cpp keeps the KV cache in f16
            k, v = _round_f16(k), _round_f16(v)
        group = nh // nkv
        k = k.repeat_interleave(group, dim=1)          # q head h uses kv head h // group
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        out = torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v).reshape(n, nh * hd)
        return self.linear(f"blk.{layer}.attn_output.weight", out)

    def ffn(self, x, layer):
        b = f"blk.{layer}."
        if self.hp["arch"] == "phi3":
            gate_up = self.linear(b + "ffn_up.weight", x)
            gate, up = gate_up[:, : self.hp["ff"]], gate_up[:, self.hp["ff"]:]
        else:
            gate, up = self.linear(b + "ffn_gate.weight", x), self.linear(b + "ffn_up.weight", x)
        return self.linear(b + "ffn_down.weight", torch.nn.functional.silu(gate) * up)

    def forward(self, tokens):
        """Logits (n_tokens, vocab) for every position of `tokens` (one causal sequence)."""
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        positions = torch.arange(len(tokens))
        x = self.w["token_embd.weight"][tokens]
        for layer in range(self.hp["n_layers"]):
            x = x + self.attention(self.rms_norm(x, f"blk.{layer}.attn_norm.weight"), layer, positions)
            x = x + self.ffn(self.rms_norm(x, f"blk.{layer}.ffn_norm.weight"), layer)
        x = self.rms_norm(x, "output_norm.weight")
        head = "token_embd.weight" if self.hp.get("tied") or "output.weight" not in self.w else "output.weight"
        return self.linear(head, x).to(torch.float64)

    def greedy(self, prompt, n_new):
        """Greedy decoding by re-running the whole sequence each step (simple, not fast)."""
        seq = list(prompt)
        for _ in range(n_new):
            seq.append(int(torch.argmax(self.forward(seq)[-1])))
        return seq[len(prompt):]


def write_logits(path, logits):
    arr = np.ascontiguousarray(logits.numpy().astype("<f4"))
    if path.endswith(".npy"):
        np.save(path, arr)
    else:
        arr.tofile(path)


def parse_tokens(text):
    return [int(t) for t in text.replace(",", " ").split()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--tokens", required=True, help='prompt token ids, e.g. "1 5 9"')
    p.add_argument("--out", help="logits file (.f32 raw float32 LE, or .npy)")
    p.add_argument("--generate", type=int, default=0, help="greedy-decode this many tokens and print them")
    p.add_argument("--emulate-ggml", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    weights, hp = load_weights(args.weights)
    ref = Reference(weights, hp, emulate_ggml=args.emulate_ggml)
    tokens = parse_tokens(args.tokens)
    if args.out:
        write_logits(args.out, ref.forward(tokens))
    if args.generate:
        print(" ".join(str(t) for t in ref.greedy(tokens, args.generate)))


if __name__ == "__main__":
    sys.exit(main())
