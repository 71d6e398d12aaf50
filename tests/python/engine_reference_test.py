#!/usr/bin/python3
"""Checks the Tidelane inference engine (tidelane-generate) against independent Python references:

  (0) the references themselves: gguf_writer's quantizer/container self-test, and llama2.c's
      numpy forward (llama2c_reference.py) against the PyTorch forward (torch_forward.py) on
      aidreams260K, which must agree on 60 greedy tokens; also that aidreams260K.gguf holds
      exactly the .bin's weights;
  (a) random llama / qwen2 / phi3 models in all 11 tensor types: logits for every prompt
      position from `tidelane-generate --logits-out` against torch_forward.py (float64), with
      an F32 and with an F16 KV cache (--kv-type);
  (b) aidreams260K.gguf greedy generation against llama2c_reference.py, with both KV types.

The references are written independently from the C++ engine (router/engine).

Usage: /usr/bin/python3 tests/python/engine_reference_test.py BIN_DIR SHARED_DIR TMP_DIR
  BIN_DIR holds tidelane-generate; SHARED_DIR is ../shared; TMP_DIR a scratch directory.
Exit status: 0 pass, 1 failure, 77 skipped (tidelane-generate not built; (0) still ran).

The tidelane-generate contract this test relies on:
  tidelane-generate --model M.gguf --prompt-tokens "1 5 9" --max-tokens 0 --logits-out L.f32 --threads 2
      evaluates the prompt ids verbatim (no BOS added) and writes float32 little-endian logits
      for every prompt position: n_prompt x n_vocab, row-major; exit status 0.
  (both also with --kv-type f32|f16, the KV cache's element type)
  tidelane-generate --model M.gguf --prompt-tokens "1 5 9" --max-tokens 40 --temperature 0 --json
      greedy decoding; stdout is one JSON object whose "tokens" array holds the generated ids
      only (not the prompt), at most 40; it may stop early at the model's EOS token (and may or
      may not include that EOS id in "tokens").
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, TOOLS)
import gguf_writer as gw  # noqa: E402
import llama2c_reference as l2c  # noqa: E402
import make_random_model as mrm  # noqa: E402
import torch_forward as tf  # noqa: E402

PY = sys.executable or "/usr/bin/python3"
PROMPT = [1, 5, 9, 300, 42, 7, 100, 77, 311, 259, 400, 3]

# Tolerances on max|engine - ref| / max|ref| over all positions and vocab entries.
#
# The reference uses exactly the dequantized weights stored in the file, so weight quantisation
# error does not count; what remains is how the engine rounds *activations*. ggml's CPU kernels
# (which a fast engine will resemble) convert activations to the weight's "vec_dot" type before
# each matmul: f16 for F16, bf16 for BF16, 8-bit blocks (Q8_0/Q8_1 of 32, Q8_K of 256) for
# every quantised type; llama.cpp also keeps the KV cache in f16. torch_forward.py
# --emulate-ggml does just that in float32; over 3 archs x 4 seeds x 12-token prompts with the
# default shapes it gave these worst relative errors against the exact float64 pass:
#     f32 4.8e-4 (all from the f16 KV cache; f32 KV gives ~2e-6)   f16 9.1e-4   bf16 5.4e-3
#     q8_0 2.2e-2  q4_0 2.6e-2  q4_1 1.9e-2  q5_0 2.3e-2  q5_1 2.2e-2
#     q4_k 2.7e-2  q5_k 3.0e-2  q6_k 2.9e-2
# (8-bit activations cost ~0.5% per matmul, 8 matmuls per layer, 2 layers.) The limits below
# are ~2-4x those; a real layout or indexing bug (wrong nibble, scale or RoPE pair) moves logits
# by tens of percent, far above them.
TOLERANCE_F32_KV = {
    "f32": 2e-3, "f16": 3e-3, "bf16": 2e-2,
    "q8_0": 6e-2, "q4_0": 6e-2, "q4_1": 6e-2, "q5_0": 6e-2, "q5_1": 6e-2,
    "q4_k": 7e-2, "q5_k": 7e-2, "q6_k": 7e-2,
}
# With the F16 KV cache (the engine's default) every stored key and value is rounded to half:
# relative error <= u = 2^-11 = 4.9e-4 per element. A score q.k then moves by <= u * sum|q_i k_i|
# (~u |q.k| / sqrt(head_dim) with random signs), so the softmax weights move by about u
# relative, and the attention output by about u of its size (the values' own errors average out
# in the weighted sum); residual adds and O(1)-gain matmuls carry that to the logits. Measured
# (torch_forward in float64 with only K and V rounded to f16, against the exact pass; 3 archs x
# 11 types x 5 seeds, this prompt): 1.7e-4 .. 6.2e-4 relative, at most 1.27u. The engine with
# the F16 cache, against the exact reference, over the same 165 models:
#   f32 4.3e-4  f16 5.3e-4  bf16 4.8e-4
#     (float activations: the cache rounding is all of the error; F32 cache ~6e-7)
#   q8_0 2.1e-2  q4_0 2.6e-2  q4_k 3.2e-2  q5_k 3.0e-2  q6_k 3.2e-2
#     (8-bit activations dominate; the cache rounding moves them by up to +-6e-3, since a
#      nudged activation can land in the next quantisation step; F32 cache 2.2e-2 .. 3.5e-2)
#   q4_1, q5_0, q5_1 had float activations (4.4e-4 .. 4.6e-4) until they got 8-bit kernels
#     too (2026-11-26); one CTest run since, 3 archs, both caches: q4_1 2.1e-2, q5_0 1.9e-2,
#     q5_1 1.5e-2, in line with the emulation's 1.9e-2 .. 2.3e-2 above.
# The limits: 2e-3 (4u, 3.2x the worst measured) for F32 and 3e-3 for F16 weights; the others
# keep their F32-cache limits, which stay >= 2x the worst measured (those of the 8-bit-activation
# types were set with ggml's f16 cache in the emulation above).
TOLERANCE_F16_KV = {
    "f32": 2e-3, "f16": 3e-3, "bf16": 2e-2,
    "q8_0": 6e-2, "q4_0": 6e-2, "q4_1": 6e-2, "q5_0": 6e-2, "q5_1": 6e-2,
    "q4_k": 7e-2, "q5_k": 7e-2, "q6_k": 7e-2,
}
TOLERANCE = {"f32": TOLERANCE_F32_KV, "f16": TOLERANCE_F16_KV}
KV_TYPES = ("f32", "f16")
# The arch x type matrix also varies tying and the seed so more layouts get exercised.
TIED = {"llama": False, "qwen2": True, "phi3": False}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL", msg, flush=True)


def run(cmd, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# --- (0) the references ---------------------------------------------------------------------

def check_references(shared, tmp):
    t0 = time.time()
    r = run([PY, os.path.join(TOOLS, "gguf_writer.py"), "--self-test"])
    if r.returncode != 0:
        fail("gguf_writer.py --self-test:\n" + r.stdout + r.stderr)

    bin_path = os.path.join(shared, "models", "aidreams260K.bin")
    tok_path = os.path.join(shared, "models", "tok512.bin")
    npz = os.path.join(tmp, "aidreams260K.npz")
    r1 = run([PY, os.path.join(TOOLS, "llama2c_reference.py"), "--model", bin_path, "--tokenizer", tok_path,
              "--prompt-tokens", "1", "--steps", "60", "--to-npz", npz])
    if r1.returncode != 0:
        fail("llama2c_reference.py: " + r1.stderr)
        return
    r2 = run([PY, os.path.join(TOOLS, "torch_forward.py"), "--weights", npz, "--tokens", "1", "--generate", "60"])
    ids_np = r1.stdout.splitlines()[0].split()
    ids_torch = r2.stdout.split()
    if r2.returncode != 0 or ids_np != ids_torch or len(ids_np) != 60:
        fail(f"llama2.c numpy vs torch greedy tokens differ:\n  numpy {ids_np}\n  torch {ids_torch}\n{r2.stderr}")
    else:
        print(f"ok references agree on 60 greedy aidreams tokens: {r1.stdout.splitlines()[1][:70]!r}...")

    # The GGUF must be the same weights as the .bin (so (b) tests the engine, not the converter).
    _, tensors = gw.read_gguf(os.path.join(shared, "models", "aidreams260K.gguf"))
    z = np.load(npz)
    names = {k for k in z.files if not k.startswith("hp.")}
    if names != set(tensors) or any(not np.array_equal(tensors[k]["data"], z[k]) for k in names):
        fail("aidreams260K.gguf tensors differ from aidreams260K.bin")
    print(f"ok reference self-checks in {time.time() - t0:.1f}s", flush=True)


# --- (a) random models, logits of every position ---------------------------------------------

def compare_logits(label, engine, ref, tol):
    """Relative max error, plus argmax agreement wherever the reference's top-2 gap is wider than
    twice the allowed error (closer calls may legitimately flip)."""
    scale = float(np.abs(ref).max())
    rel = float(np.abs(engine - ref).max()) / scale
    top2 = np.sort(ref, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * tol * scale
    agree = engine.argmax(axis=1) == ref.argmax(axis=1)
    ok = rel <= tol and bool(agree[decided].all()) and np.isfinite(engine).all()
    print(f"{'ok' if ok else 'FAIL'} {label}: max rel err {rel:.2e} (tol {tol:.0e}), "
          f"argmax {int(agree[decided].sum())}/{int(decided.sum())} decided positions", flush=True)
    if not ok:
        failures.append(f"{label}: rel err {rel:.2e}, argmax mismatches at "
                        f"{np.nonzero(decided & ~agree)[0].tolist()}")


def check_random_models(binary, tmp):
    prompt = " ".join(map(str, PROMPT))
    for ai, arch in enumerate(mrm.ARCHS):
        for ti, qtype in enumerate(gw.TYPES):
            label = f"{arch}/{qtype}"
            model = os.path.join(tmp, f"{arch}-{qtype}.gguf")
            weights = os.path.join(tmp, f"{arch}-{qtype}.npz")
            logits_path = os.path.join(tmp, f"{arch}-{qtype}.f32")
            argv = ["--arch", arch, "--type", qtype, "--seed", str(100 * ai + ti), "--out", model,
                    "--weights-out", weights, "--tied" if TIED[arch] else "--no-tied"]
            hp, _ = mrm.build(mrm.parse_args(argv))
            w, hpz = tf.load_weights(weights)
            ref = tf.Reference(w, hpz).forward(PROMPT).numpy()
            for kv in KV_TYPES:
                if os.path.exists(logits_path):
                    os.remove(logits_path)
                r = run([binary, "--model", model, "--prompt-tokens", prompt, "--max-tokens", "0",
                         "--logits-out", logits_path, "--threads", "2", "--kv-type", kv])
                if r.returncode != 0 or not os.path.exists(logits_path):
                    fail(f"{label} kv {kv}: tidelane-generate exit {r.returncode}: {r.stderr.strip()[-400:]}")
                    continue
                got = np.fromfile(logits_path, dtype="<f4")
                if got.size != len(PROMPT) * hp["vocab"]:
                    fail(f"{label} kv {kv}: logits file has {got.size} floats, expected {len(PROMPT)} x {hp['vocab']}")
                    continue
                compare_logits(f"{label} kv {kv}", got.reshape(len(PROMPT), hp["vocab"]).astype(np.float64),
                               ref, TOLERANCE[kv][qtype])


# --- (b) aidreams greedy generation ------------------------------------------------------------

AIDREAMS_PROMPTS = [
    [1],                          # BOS only
    [1, 319, 459, 355],           # BOS + the model's own opening
    [1, 260, 275, 429, 339, 67],  # BOS + an arbitrary mix
    [319, 459, 355, 260],         # no BOS: ids are used verbatim
]


def parse_json_stdout(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            if line.strip().startswith("{"):
                return json.loads(line)
        raise


def check_aidreams(binary, shared):
    gguf = os.path.join(shared, "models", "aidreams260K.gguf")
    meta, _ = gw.read_gguf(gguf, load_tensors=False)
    eos = meta.get("tokenizer.ggml.eos_token_id", 2)
    cfg, w = l2c.read_checkpoint(os.path.join(shared, "models", "aidreams260K.bin"))
    n = 40
    # The default KV type (F16) and F32 by name.
    for prompt, kv in [(p, kv) for p in AIDREAMS_PROMPTS for kv in (None, "f32")]:
        want = l2c.Llama2C(cfg, w).generate(prompt, n)
        r = run([binary, "--model", gguf, "--prompt-tokens", " ".join(map(str, prompt)),
                 "--max-tokens", str(n), "--temperature", "0", "--json"]
                + (["--kv-type", kv] if kv else []))
        label = f"aidreams prompt {prompt} kv {kv or 'default'}"
        if r.returncode != 0:
            fail(f"{label}: tidelane-generate exit {r.returncode}: {r.stderr.strip()[-400:]}")
            continue
        try:
            got = [int(t) for t in parse_json_stdout(r.stdout)["tokens"]]
        except (ValueError, KeyError, TypeError) as e:
            fail(f"{label}: no JSON 'tokens' in stdout ({e}): {r.stdout[-300:]!r}")
            continue
        if got and got[-1] == eos and got[:-1] == want[:len(got) - 1]:
            got = got[:-1]        # stopped on EOS and reported it
        stopped_at_eos = len(got) < n and len(got) < len(want) and want[len(got)] == eos
        ok = got == want[:len(got)] and (len(got) == n or stopped_at_eos)
        print(f"{'ok' if ok else 'FAIL'} {label}: {len(got)} tokens" + ("" if ok else f"\n  engine {got}\n  ref    {want}"),
              flush=True)
        if not ok:
            failures.append(f"{label}: greedy tokens differ")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    bin_dir, shared, tmp = (os.path.abspath(a) for a in sys.argv[1:])
    os.makedirs(tmp, exist_ok=True)
    torch.set_num_threads(2)
    t0 = time.time()
    check_references(shared, tmp)
    binary = os.path.join(bin_dir, "tidelane-generate")
    if not os.access(binary, os.X_OK):
        if failures:
            print(f"{len(failures)} reference check(s) FAILED")
            return 1
        print(f"SKIP: {binary} not found or not executable; engine comparisons not run "
              "(reference self-checks passed)")
        return 77
    check_random_models(binary, tmp)
    check_aidreams(binary, shared)
    print(f"{'FAILED' if failures else 'PASSED'}: {len(failures)} failure(s) in {time.time() - t0:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
