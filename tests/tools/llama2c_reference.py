#!/usr/bin/python3
"""A numpy implementation of the llama2.c forward pass (Karpathy's run.c) for checkpoints such as
shared/models/aidreams260K.bin, with greedy generation and tok512.bin decoding.

Written independently from the C++ engine (router/engine), following run.c's checkpoint format
and arithmetic (float32; RoPE on interleaved pairs with freq 10000^(-(i % head_size)/head_size);
RMSNorm eps 1e-5; SwiGLU w2(silu(w1 x) * w3 x)).

Usage:
  /usr/bin/python3 tests/tools/llama2c_reference.py --model ../shared/models/aidreams260K.bin \
      --tokenizer ../shared/models/tok512.bin --prompt-tokens "1" --steps 60
      prints the generated token ids on one line, then (with --tokenizer) the decoded text
  ... --to-npz W.npz   also writes the weights under llama.cpp tensor names for torch_forward.py
"""
import argparse
import struct
import sys

import numpy as np


def read_checkpoint(path):
    """Returns (config dict, weights dict) from a llama2.c .bin (legacy version 0 format)."""
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack_from("<7i", raw, 0)
    shared = vocab > 0              # negative vocab_size means a separate classifier follows
    vocab = abs(vocab)
    cfg = dict(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
               vocab_size=vocab, seq_len=seq_len, shared_classifier=shared, head_size=dim // n_heads)
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        arr = data[pos:pos + n].reshape(shape).astype(np.float32)
        pos += n
        return arr

    hs, kv_dim = cfg["head_size"], n_kv_heads * (dim // n_heads)
    # run.c memory_map_weights order; every matrix is (out, in) row-major (matmul W @ x).
    w = {"token_embedding_table": take(vocab, dim), "rms_att_weight": take(n_layers, dim),
         "wq": take(n_layers, n_heads * hs, dim), "wk": take(n_layers, kv_dim, dim),
         "wv": take(n_layers, kv_dim, dim), "wo": take(n_layers, dim, n_heads * hs),
         "rms_ffn_weight": take(n_layers, dim), "w1": take(n_layers, hidden, dim),
         "w2": take(n_layers, dim, hidden), "w3": take(n_layers, hidden, dim),
         "rms_final_weight": take(dim)}
    pos += 2 * (seq_len * hs // 2)   # skip the legacy freq_cis_real and freq_cis_imag tables
    w["wcls"] = w["token_embedding_table"] if shared else take(vocab, dim)
    if pos != data.size:
        raise ValueError(f"{path}: {data.size - pos} floats left over; not a llama2.c v0 checkpoint?")
    return cfg, w


def rmsnorm(x, weight):
    ss = np.float32(np.mean(x * x, dtype=np.float32)) + np.float32(1e-5)
    return (weight * (x / np.sqrt(ss))).astype(np.float32)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


class Llama2C:
    """Token-at-a-time forward with a KV cache, as run.c's forward(transformer, token, pos)."""

    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        L, S = cfg["n_layers"], cfg["seq_len"]
        kv_dim = cfg["n_kv_heads"] * cfg["head_size"]
        self.key_cache = np.zeros((L, S, kv_dim), np.float32)
        self.value_cache = np.zeros((L, S, kv_dim), np.float32)

    def rope(self, vec, pos):
        """run.c: for each even i, rotate (vec[i], vec[i+1]) by pos * 10000^(-(i % hs)/hs)."""
        hs = self.cfg["head_size"]
        i = np.arange(0, vec.size, 2)
        freq = 1.0 / np.power(np.float32(10000.0), (i % hs).astype(np.float32) / np.float32(hs))
        val = np.float32(pos) * freq.astype(np.float32)
        c, s = np.cos(val).astype(np.float32), np.sin(val).astype(np.float32)
        v0, v1 = vec[0::2].copy(), vec[1::2].copy()
        vec[0::2] = v0 * c - v1 * s
        vec[1::2] = v0 * s + v1 * c

    def forward(self, token, pos):
        cfg, w = self.cfg, self.w
        hs, nh = cfg["head_size"], cfg["n_heads"]
        kv_mul = nh // cfg["n_kv_heads"]
        x = w["token_embedding_table"][token].copy()
        for l in range(cfg["n_layers"]):
            xb = rmsnorm(x, w["rms_att_weight"][l])
            q = w["wq"][l] @ xb
            k = w["wk"][l] @ xb
            v = w["wv"][l] @ xb
            self.rope(q, pos)
            self.rope(k, pos)
            self.key_cache[l, pos] = k
            self.value_cache[l, pos] = v
            att_out = np.zeros(nh * hs, np.float32)
            for h in range(nh):
                kvh = h // kv_mul
                keys = self.key_cache[l, :pos + 1, kvh * hs:(kvh + 1) * hs]
                scores = keys @ q[h * hs:(h + 1) * hs] / np.sqrt(np.float32(hs))
                att = softmax(scores.astype(np.float32))
                att_out[h * hs:(h + 1) * hs] = att @ self.value_cache[l, :pos + 1, kvh * hs:(kvh + 1) * hs]
            x = x + w["wo"][l] @ att_out
            xb = rmsnorm(x, w["rms_ffn_weight"][l])
            h1 = w["w1"][l] @ xb
            h3 = w["w3"][l] @ xb
            x = x + w["w2"][l] @ ((h1 / (1.0 + np.exp(-h1))) * h3).astype(np.float32)
        x = rmsnorm(x, w["rms_final_weight"])
        return w["wcls"] @ x

    def generate(self, prompt, steps):
        """Feeds the prompt, then greedily appends `steps` tokens (argmax, no early stop).
        Returns the generated ids only."""
        if not prompt:
            raise ValueError("need at least one prompt token")
        out = []
        token = prompt[0]
        for pos in range(len(prompt) + steps - 1):
            if pos >= self.cfg["seq_len"]:
                break
            logits = self.forward(token, pos)
            if pos + 1 < len(prompt):
                token = prompt[pos + 1]
            else:
                token = int(np.argmax(logits))
                out.append(token)
        return out


def read_tokenizer(path, vocab_size):
    """llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score,
    int32 length, bytes."""
    raw = open(path, "rb").read()
    pos = 4
    pieces, scores = [], []
    for _ in range(vocab_size):
        score, n = struct.unpack_from("<fi", raw, pos)
        pos += 8
        pieces.append(raw[pos:pos + n])
        scores.append(score)
        pos += n
    return pieces, scores


def decode(pieces, tokens, prev=1):
    """run.c decode(): drop the leading space after BOS; "<0xXX>" pieces are raw bytes."""
    out = bytearray()
    for t in tokens:
        piece = pieces[t]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        out += piece
        prev = t
    return out.decode("utf-8", errors="replace")


def to_npz(cfg, w, path):
    """Writes the checkpoint as torch_forward.py weights (llama.cpp names, arch llama; llama2.c
    already uses the interleaved RoPE pairs of llama.cpp's llama, so no permutation)."""
    out = {"token_embd.weight": w["token_embedding_table"], "output_norm.weight": w["rms_final_weight"],
           "output.weight": w["wcls"]}
    names = {"rms_att_weight": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
             "wo": "attn_output", "rms_ffn_weight": "ffn_norm", "w1": "ffn_gate", "w2": "ffn_down",
             "w3": "ffn_up"}
    for l in range(cfg["n_layers"]):
        for src, dst in names.items():
            out[f"blk.{l}.{dst}.weight"] = w[src][l]
    hp = dict(arch="llama", type="f32", dim=cfg["dim"], n_layers=cfg["n_layers"], n_heads=cfg["n_heads"],
              n_kv_heads=cfg["n_kv_heads"], ff=cfg["hidden_dim"], vocab=cfg["vocab_size"],
              ctx=cfg["seq_len"], head_dim=cfg["head_size"], rms_eps=1e-5, rope_base=10000.0, tied=False)
    out.update({"hp." + k: np.array(v) for k, v in hp.items()})
    np.savez(path, **out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--tokenizer")
    p.add_argument("--prompt-tokens", default="1")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--to-npz")
    args = p.parse_args(argv)
    cfg, w = read_checkpoint(args.model)
    if args.to_npz:
        to_npz(cfg, w, args.to_npz)
    prompt = [int(t) for t in args.prompt_tokens.replace(",", " ").split()]
    ids = Llama2C(cfg, w).generate(prompt, args.steps)
    print(" ".join(map(str, ids)))
    if args.tokenizer:
        pieces, _ = read_tokenizer(args.tokenizer, cfg["vocab_size"])
        print(decode(pieces, ids, prev=prompt[-1]))


if __name__ == "__main__":
    sys.exit(main())
