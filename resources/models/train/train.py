#!/usr/bin/python3
"""Trains the Tidelane guide: a small llama-architecture model (RMSNorm, RoPE in the llama /
GGUF interleaved-pair convention, causal attention with optional GQA, SwiGLU, tied
embeddings) on the guide corpus with the chat template applied. CPU only, reproducible under
--seed (torch.manual_seed, a seeded batch order, 2 threads). Loss is on the assistant's tokens
(and its closing <|end|>) only.

Usage:
    /usr/bin/python3 resources/models/train/train.py --data resources/models/train/data \
        --steps 1500 --out resources/models/train/data/guide.pt --log resources/models/train/train.log
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tidelane_vocab as tv  # noqa: E402

DEFAULT_HP = dict(dim=256, n_layers=4, n_heads=4, n_kv_heads=4, ff=704, ctx=512,
                  rms_eps=1e-5, rope_base=10000.0)


class Linear(nn.Linear):
    """y = x W^T, computed as a 1x1 convolution: Debian's torch uses the reference BLAS for
    matmul (~5 GFLOPS here) but oneDNN for convolutions (~60 GFLOPS). Same maths."""

    def forward(self, x):
        shape = x.shape
        y = F.conv2d(x.reshape(-1, shape[-1], 1, 1), self.weight[:, :, None, None])
        return y.reshape(*shape[:-1], self.weight.shape[0])


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(hd, ctx, base):
    i = torch.arange(hd // 2, dtype=torch.float64)
    theta = torch.arange(ctx, dtype=torch.float64)[:, None] * base ** (-2.0 * i / hd)
    return torch.cos(theta).float(), torch.sin(theta).float()


def apply_rope(x, cos, sin):
    """x: (B, H, T, hd); rotates interleaved pairs (x[2i], x[2i+1]) as llama.cpp's LLAMA rope."""
    a, b = x[..., 0::2], x[..., 1::2]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    return torch.stack([ra, rb], dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, hp):
        super().__init__()
        d, hd = hp["dim"], hp["dim"] // hp["n_heads"]
        self.nh, self.nkv, self.hd = hp["n_heads"], hp["n_kv_heads"], hd
        self.attn_norm = RMSNorm(d, hp["rms_eps"])
        self.wq = Linear(d, self.nh * hd, bias=False)
        self.wk = Linear(d, self.nkv * hd, bias=False)
        self.wv = Linear(d, self.nkv * hd, bias=False)
        self.wo = Linear(self.nh * hd, d, bias=False)
        self.ffn_norm = RMSNorm(d, hp["rms_eps"])
        self.w_gate = Linear(d, hp["ff"], bias=False)
        self.w_up = Linear(d, hp["ff"], bias=False)
        self.w_down = Linear(hp["ff"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.nkv != self.nh:
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.wo((att @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd))
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Llama(nn.Module):
    def __init__(self, hp):
        super().__init__()
        self.hp = hp
        self.tok = nn.Embedding(hp["vocab"], hp["dim"])
        self.blocks = nn.ModuleList(Block(hp) for _ in range(hp["n_layers"]))
        self.norm = RMSNorm(hp["dim"], hp["rms_eps"])
        cos, sin = rope_tables(hp["dim"] // hp["n_heads"], hp["ctx"], hp["rope_base"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * hp["n_layers"]) if name.endswith(("wo.weight", "w_down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.tok(ids)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        h = self.norm(x)
        logits = F.conv2d(h.reshape(-1, h.shape[-1], 1, 1), self.tok.weight[:, :, None, None])
        return logits.reshape(*h.shape[:-1], -1)   # tied output: h @ tok.weight^T

    @torch.no_grad()
    def greedy(self, ids, max_new, stop):
        ids = list(ids)
        out = []
        for _ in range(max_new):
            nxt = int(self(torch.tensor([ids[-self.hp["ctx"]:]]))[0, -1].argmax())
            if nxt in stop:
                break
            out.append(nxt)
            ids.append(nxt)
        return out


def load_examples(data_dir, enc, ctx):
    ex = []
    with open(os.path.join(data_dir, "train.jsonl")) as f:
        for line in f:
            ids, mask = enc.encode_chat(json.loads(line)["messages"])
            if len(ids) <= ctx:
                ex.append((ids, mask))
    return ex


def batches(examples, tokens_per_batch, rng):
    """Length-bucketed batches (sorted within shuffled chunks) of about tokens_per_batch."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    chunk = 2048
    out = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(examples[i][0]))
        cur, longest = [], 0
        for i in part:
            n = len(examples[i][0])
            if cur and max(longest, n) * (len(cur) + 1) > tokens_per_batch:
                out.append(cur)
                cur, longest = [], 0
            cur.append(i)
            longest = max(longest, n)
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


def collate(examples, idx):
    T = max(len(examples[i][0]) for i in idx)
    x = torch.zeros(len(idx), T - 1, dtype=torch.long)
    y = torch.full((len(idx), T - 1), -100, dtype=torch.long)
    for r, i in enumerate(idx):
        ids, mask = examples[i]
        x[r, :len(ids) - 1] = torch.tensor(ids[:-1])
        tgt = torch.tensor(ids[1:])
        m = torch.tensor(mask[1:], dtype=torch.bool)
        y[r, :len(ids) - 1] = torch.where(m, tgt, torch.full_like(tgt, -100))
    return x, y


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="directory with train.jsonl, heldout.jsonl, vocab.json")
    p.add_argument("--out", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--tokens-per-batch", type=int, default=4096)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--threads", type=int, default=2)
    for k, v in DEFAULT_HP.items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    vocab = json.load(open(os.path.join(args.data, "vocab.json")))
    enc = tv.Encoder(vocab)
    hp = {k: getattr(args, k) for k in DEFAULT_HP}
    hp["vocab"] = len(vocab["tokens"])
    examples = load_examples(args.data, enc, hp["ctx"])
    heldout = [json.loads(l) for l in open(os.path.join(args.data, "heldout.jsonl"))]
    model = Llama(hp)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    log = open(args.log, "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    say(f"# train.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    say(f"# hp {json.dumps(hp)} params {n_params} examples {len(examples)} seed {args.seed} torch {torch.__version__}")
    queue = []
    t0 = time.time()
    ema = None
    for step in range(1, args.steps + 1):
        if not queue:
            queue = batches(examples, args.tokens_per_batch, rng)
        x, y = collate(examples, queue.pop())
        lr = args.lr * min(1.0, step / args.warmup)
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, hp["vocab"]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 25 == 0 or step == 1:
            say(f"step {step} loss {loss.item():.4f} ema {ema:.4f} lr {lr:.2e} elapsed {time.time() - t0:.0f}s")
        if step % 500 == 0 or step == args.steps:
            torch.save({"hp": hp, "model": model.state_dict(), "step": step}, args.out)
    model.eval()
    for h in heldout:
        ids, _ = enc.encode_chat([{"role": "user", "content": h["question"]}], add_generation_prompt=True)
        ans = enc.decode(model.greedy(ids, 80, {tv.END, tv.EOS}))
        say(f"heldout [{h['topic']}] {h['question']!r} -> {ans!r}")
    say(f"# done: {args.steps} steps, final ema loss {ema:.4f}, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
