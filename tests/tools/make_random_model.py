#!/usr/bin/python3
"""Writes a random-weight llama / qwen2 / phi3 model as GGUF v3 (llama.cpp tensor and metadata
names), plus the dequantized float32 weights exactly as stored (W.npz) for the Python reference
(torch_forward.py).

Written independently from the C++ engine (router/engine); the file layout comes from the GGUF
spec and llama.cpp's naming conventions.

Examples:
    /usr/bin/python3 tests/tools/make_random_model.py --arch qwen2 --type q4_k --out M.gguf --weights-out W.npz
    /usr/bin/python3 tests/tools/make_random_model.py --preset bench100m --type q4_k --out bench.gguf

W.npz holds one float32 array per GGUF tensor name (numpy shape (out, in), i.e. GGUF dims
reversed) and the hyper-parameters under "hp.<name>" (arch, type, dim, n_layers, n_heads,
n_kv_heads, ff, vocab, ctx, head_dim, rms_eps, rope_base, tied).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

ARCHS = ("llama", "qwen2", "phi3")
ROPE_BASE = {"llama": 10000.0, "qwen2": 1000000.0, "phi3": 10000.0}
RMS_EPS = 1e-5
PRESETS = {
    # ~100M parameters: 12 layers x 6.3M + 24.6M for the (tied) token_embd; --no-tied adds
    # another 24.6M for output.weight.
    "bench100m": dict(arch="llama", dim=768, layers=12, heads=12, kv_heads=4, ff=2048,
                      vocab=32000, ctx=2048, tied=True),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=ARCHS, default="llama")
    p.add_argument("--type", default="f32", choices=list(gw.TYPES), help="type of the 2-D weights")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--ff", type=int, default=512)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tied", dest="tied", action="store_true", default=None,
                   help="no output.weight; logits use token_embd.weight")
    p.add_argument("--no-tied", dest="tied", action="store_false")
    p.add_argument("--preset", choices=list(PRESETS))
    p.add_argument("--name", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--weights-out", default=None)
    args = p.parse_args(argv)
    if args.preset:
        # A preset fills in shapes; an explicit --tied/--no-tied still wins.
        for k, v in PRESETS[args.preset].items():
            if k == "tied" and args.tied is not None:
                continue
            setattr(args, k, v)
    if args.tied is None:
        args.tied = False
    return args


def hparams(args):
    if args.dim % args.heads or args.heads % args.kv_heads:
        raise SystemExit("dim must be a multiple of heads, heads a multiple of kv-heads")
    head_dim = args.dim // args.heads
    if head_dim % 2:
        raise SystemExit("head_dim must be even for RoPE")
    if args.vocab < 3 + 256 + 1:
        raise SystemExit("vocab must be >= 260 (<unk>, <s>, </s>, 256 byte tokens, one more)")
    return dict(arch=args.arch, type=args.type, dim=args.dim, n_layers=args.layers,
                n_heads=args.heads, n_kv_heads=args.kv_heads, ff=args.ff, vocab=args.vocab,
                ctx=args.ctx, head_dim=head_dim, rms_eps=RMS_EPS, rope_base=ROPE_BASE[args.arch],
                tied=bool(args.tied))


def random_weights(hp, seed):
    """Returns an ordered list of (GGUF tensor name, float32 array (out, in) or (n,)).

    Scales: matrices ~ N(0, 1/fan_in) so every projection keeps activations O(1) (for dim 768
    that is ~0.036, the usual 0.02-ish). With unit-scale q and k the attention scores have a
    standard deviation of about 1: softmax is far from uniform (uniform weights would hide RoPE
    and mask errors) but not one-hot (which would make tiny rounding differences flip it).
    The output projection gets 2x so logits have std ~2 and top logits stand apart.
    Embeddings are N(0, 1); norm weights 1 +- 0.1; biases +- 0.1."""
    rng = np.random.default_rng(seed)
    d, ff, hd = hp["dim"], hp["ff"], hp["head_dim"]
    q_dim, kv_dim = hp["n_heads"] * hd, hp["n_kv_heads"] * hd

    def mat(rows, cols, gain=1.0):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * (gain / np.sqrt(cols))).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.uniform(-1, 1, n)).astype(np.float32)

    def bias(n):
        return (0.1 * rng.uniform(-1, 1, n)).astype(np.float32)

    out = [("token_embd.weight", rng.standard_normal((hp["vocab"], d), dtype=np.float32))]
    for i in range(hp["n_layers"]):
        b = f"blk.{i}."
        out.append((b + "attn_norm.weight", norm(d)))
        if hp["arch"] == "phi3":
            wq, wk, wv = mat(q_dim, d), mat(kv_dim, d), mat(kv_dim, d)
            out.append((b + "attn_qkv.weight", np.concatenate([wq, wk, wv], axis=0)))
        else:
            out += [(b + "attn_q.weight", mat(q_dim, d)), (b + "attn_k.weight", mat(kv_dim, d)),
                    (b + "attn_v.weight", mat(kv_dim, d))]
            if hp["arch"] == "qwen2":
                out += [(b + "attn_q.bias", bias(q_dim)), (b + "attn_k.bias", bias(kv_dim)),
                        (b + "attn_v.bias", bias(kv_dim))]
        out.append((b + "attn_output.weight", mat(d, q_dim)))
        out.append((b + "ffn_norm.weight", norm(d)))
        if hp["arch"] == "phi3":
            # Fused: first ff rows are the gate, the next ff rows the up projection.
            out.append((b + "ffn_up.weight", np.concatenate([mat(ff, d), mat(ff, d)], axis=0)))
        else:
            out += [(b + "ffn_gate.weight", mat(ff, d)), (b + "ffn_up.weight", mat(ff, d))]
        out.append((b + "ffn_down.weight", mat(d, ff)))
    out.append(("output_norm.weight", norm(d)))
    if not hp["tied"]:
        out.append(("output.weight", mat(hp["vocab"], d, 2.0)))
    else:
        # Tied: the embedding doubles as the classifier, scale it like output.weight would be.
        out[0] = ("token_embd.weight", out[0][1] * np.float32(2.0 / np.sqrt(d)))
    return out


def add_metadata(w, hp, name):
    a = hp["arch"]
    w.add_string("general.architecture", a)
    w.add_string("general.name", name)
    w.add_transformer_hparams(a, hp, hp["head_dim"])
    add_tokenizer(w, hp["vocab"])


def add_tokenizer(w, vocab):
    """A SentencePiece-style ("llama") vocabulary so loaders accept the file: <unk>, <s>, </s>,
    the 256 byte tokens, then filler pieces. Scores decrease so merges are well-defined."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(vocab - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (vocab - 259)
    scores = [0.0] * 259 + [-float(i) for i in range(1, vocab - 259 + 1)]
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", gw.STRING, tokens)
    w.add_array("tokenizer.ggml.scores", gw.FLOAT32, scores)
    w.add_array("tokenizer.ggml.token_type", gw.INT32, types)
    w.add_uint32("tokenizer.ggml.unknown_token_id", 0)
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_string("tokenizer.chat_template",
                 "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def tensor_type(name, array, qtype):
    """1-D tensors (norms, biases) stay F32 as in llama.cpp; matrices take the chosen type."""
    return "f32" if array.ndim == 1 else qtype


def build(args):
    hp = hparams(args)
    _, _, blk, _ = gw.type_info(args.type)
    for n in (hp["dim"], hp["ff"], hp["n_heads"] * hp["head_dim"]):
        if n % blk:
            raise SystemExit(f"--type {args.type} needs row lengths that are multiples of {blk}; got {n}")
    w = gw.GGUFWriter()
    add_metadata(w, hp, args.name or f"tidelane-random-{hp['arch']}-{args.type}")
    stored = {}
    n_params = 0
    for name, arr in random_weights(hp, args.seed):
        qt = tensor_type(name, arr, args.type)
        raw = w.add_tensor(name, arr, qt)
        n_params += arr.size
        if args.weights_out:
            stored[name] = gw.dequantize(qt, raw, arr.size).reshape(arr.shape)
    w.write(args.out)
    if args.weights_out:
        for k, v in hp.items():
            stored["hp." + k] = np.array(v)
        np.savez(args.weights_out, **stored)
    return hp, n_params


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    hp, n_params = build(args)
    print(f"wrote {args.out}: {hp['arch']} {args.type} dim={hp['dim']} layers={hp['n_layers']} "
          f"heads={hp['n_heads']}/{hp['n_kv_heads']} ff={hp['ff']} vocab={hp['vocab']} "
          f"tied={hp['tied']} params={n_params / 1e6:.1f}M in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
