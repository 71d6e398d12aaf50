#!/usr/bin/python3
"""Exports the trained guide checkpoint to GGUF with the project's writer
(tests/tools/gguf_writer.py), tokenizer and chat template included, and picks the
quantisation: it writes F32 (the reference), Q8_0 and F16 candidates, asks the held-out
questions through tidelane-generate --chat with greedy decoding, and keeps the smallest
candidate whose answers are identical to F32's (Q8_0 first, then F16). Writes the SHA-256
beside the model.

Usage:
    /usr/bin/python3 resources/models/train/export_gguf.py --checkpoint resources/models/train/data/guide.pt \
        --data resources/models/train/data --bin build/release/bin --out resources/models/tidelane-guide.gguf
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
sys.path.insert(0, HERE)
import gguf_writer as gw  # noqa: E402
import tidelane_vocab as tv  # noqa: E402

NAME = "Tidelane Guide"
MAX_TOKENS = 80

_BLOCK_NAMES = {
    "attn_norm.weight": "attn_norm.weight", "wq.weight": "attn_q.weight", "wk.weight": "attn_k.weight",
    "wv.weight": "attn_v.weight", "wo.weight": "attn_output.weight", "ffn_norm.weight": "ffn_norm.weight",
    "w_gate.weight": "ffn_gate.weight", "w_up.weight": "ffn_up.weight", "w_down.weight": "ffn_down.weight",
}


def gguf_tensors(state, hp):
    """(GGUF name, float32 numpy (out, in) or (n,)) in llama.cpp order; output tied to token_embd."""
    out = [("token_embd.weight", state["tok.weight"])]
    for i in range(hp["n_layers"]):
        for ours, theirs in _BLOCK_NAMES.items():
            out.append((f"blk.{i}.{theirs}", state[f"blocks.{i}.{ours}"]))
    out.append(("output_norm.weight", state["norm.weight"]))
    return [(n, t.detach().float().numpy().astype(np.float32)) for n, t in out]


def write(path, state, hp, vocab, qtype):
    w = gw.GGUFWriter()
    a = "llama"
    w.add_string("general.architecture", a)
    w.add_string("general.name", NAME)
    w.add_string("general.description",
                 "Tidelane's bundled guide: a small llama-architecture model trained by the project on its own "
                 "CC0 corpus to explain Tidelane and answer small talk.")
    w.add_string("general.license", "CC0-1.0")
    w.add_uint32("general.file_type", {"f32": 0, "f16": 1, "q8_0": 7}[qtype])
    w.add_transformer_hparams(a, hp, hp["dim"] // hp["n_heads"])
    w.add_uint32(f"{a}.vocab_size", len(vocab["tokens"]))
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", gw.STRING, vocab["tokens"])
    w.add_array("tokenizer.ggml.scores", gw.FLOAT32, vocab["scores"])
    w.add_array("tokenizer.ggml.token_type", gw.INT32, vocab["types"])
    w.add_uint32("tokenizer.ggml.unknown_token_id", tv.UNK)
    w.add_uint32("tokenizer.ggml.bos_token_id", tv.BOS)
    w.add_uint32("tokenizer.ggml.eos_token_id", tv.EOS)
    w.add_uint32("tokenizer.ggml.eot_token_id", tv.END)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_bool("tokenizer.ggml.add_space_prefix", True)
    w.add_string("tokenizer.chat_template", vocab["chat_template"])
    n = 0
    for name, arr in gguf_tensors(state, hp):
        w.add_tensor(name, arr, "f32" if arr.ndim == 1 else qtype)
        n += arr.size
    w.write(path)
    return n


def answers(bin_dir, model, questions):
    out = []
    for q in questions:
        r = subprocess.run([os.path.join(bin_dir, "tidelane-generate"), "--model", model, "--chat", "--prompt", q,
                            "--temperature", "0", "--max-tokens", str(MAX_TOKENS), "--threads", "1", "--json"],
                           capture_output=True, text=True, check=True)
        out.append(json.loads(r.stdout))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="directory with vocab.json and heldout.jsonl")
    p.add_argument("--bin", required=True, help="directory with tidelane-generate")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    ck = torch.load(args.checkpoint, map_location="cpu")
    hp, state = ck["hp"], ck["model"]
    vocab = json.load(open(os.path.join(args.data, "vocab.json")))
    heldout = [json.loads(l) for l in open(os.path.join(args.data, "heldout.jsonl"))]
    questions = [h["question"] for h in heldout]
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for qtype in ("f32", "q8_0", "f16"):
            path = os.path.join(tmp, f"guide-{qtype}.gguf")
            n_params = write(path, state, hp, vocab, qtype)
            res = answers(args.bin, path, questions)
            results[qtype] = (path, [r["tokens"] for r in res],
                              [r["text"] for r in res])
            print(f"{qtype}: {os.path.getsize(path)} bytes")
        chosen = None
        for qtype in ("q8_0", "f16"):
            same = sum(a == b for a, b in zip(results[qtype][1], results["f32"][1]))
            print(f"{qtype}: {same}/{len(questions)} held-out greedy answers identical to f32")
            if chosen is None and same == len(questions):
                chosen = qtype
        if chosen is None:
            chosen = "f16"
            print("neither matched f32 on every question; keeping f16 (closest to f32)")
        with open(results[chosen][0], "rb") as src, open(args.out, "wb") as dst:
            dst.write(src.read())
    digest = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    with open(args.out + ".sha256", "w") as f:
        f.write(f"{digest}  {os.path.basename(args.out)}\n")
    print(f"wrote {args.out}: {chosen}, {n_params} parameters, {os.path.getsize(args.out)} bytes, sha256 {digest}")
    for q, a in zip(questions, results["f32"][2]):
        print(f"  {q!r} -> {a!r}")


if __name__ == "__main__":
    main()
