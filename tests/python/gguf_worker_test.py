#!/usr/bin/python3
"""A real model served end to end: tidelane-router with a tidelane-worker running the inference
engine on ../shared/models/aidreams260K.gguf (a small trained llama model), asked through the
OpenAI-compatible HTTP API by Python's own http.client. The answer must be exactly the greedy
continuation tidelane-generate prints for the same prompt, alone and with several requests
batched together on the worker.

Usage: gguf_worker_test.py BIN_DIR SHARED_DIR
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import start_router_and_worker  # noqa: E402

BIN_DIR, SHARED = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
MODEL = os.path.join(SHARED, "models", "aidreams260K.gguf")
WORK = tempfile.mkdtemp(prefix="tidelane-gguf-")
PROMPTS = ["Echoes of", "The nodes", "A gentle hum", "I sense"]


def generate(prompt, max_tokens):
    out = subprocess.run(
        [os.path.join(BIN_DIR, "tidelane-generate"), "--model", MODEL, "--prompt", prompt,
         "--max-tokens", str(max_tokens), "--temperature", "0", "--json", "--threads", "1"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class GgufWorker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token, cls.router, cls.worker, fields = start_router_and_worker(
            BIN_DIR, WORK, "low", "gguf-worker",
            worker_args=("--engine", "gguf", "--model", MODEL, "--threads", "1",
                         "--backend", "cpu"))
        cls.host, cls.port = fields["http"].rsplit(":", 1)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.worker, cls.router):
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(WORK, ignore_errors=True)

    def complete(self, prompt, max_tokens):
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=60)
        body = {"model": "aidreams260K", "max_tokens": max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": prompt}]}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                     headers={"Content-Type": "application/json",
                              "Authorization": "Bearer " + self.token})
        res = conn.getresponse()
        payload = json.loads(res.read().decode())
        conn.close()
        self.assertEqual(res.status, 200, payload)
        return payload

    def test_models_lists_the_gguf_model(self):
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer " + self.token})
        models = json.loads(conn.getresponse().read().decode())
        conn.close()
        self.assertIn("aidreams260K", [m["id"] for m in models["data"]])

    def test_answer_is_the_models_greedy_continuation(self):
        expected = generate(PROMPTS[0], 24)
        got = self.complete(PROMPTS[0], 24)
        self.assertEqual(got["choices"][0]["message"]["content"], expected["text"])
        self.assertEqual(got["usage"]["completion_tokens"], len(expected["tokens"]))
        self.assertEqual(got["usage"]["prompt_tokens"], len(expected["prompt_tokens"]))

    def test_concurrent_requests_are_batched_and_each_is_exact(self):
        expected = {p: generate(p, 20)["text"] for p in PROMPTS}
        results = {}

        def ask(p):
            answer = self.complete(p, 20)["choices"][0]["message"]["content"]
            with lock:
                results.setdefault(p, []).append(answer)
        lock = threading.Lock()
        threads = [threading.Thread(target=ask, args=(p,)) for p in PROMPTS * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, {p: [text, text] for p, text in expected.items()})


class WorkerBackendFlag(unittest.TestCase):
    """--backend picks where the gguf engine's products run; a name this build lacks fails at
    start (before any model load or router contact) with the backends it has."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="tidelane-backend-flag-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def run_worker(self, *args):
        token_file = os.path.join(self.work, "token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("x" * 48 + "\n")
        return subprocess.run(
            [os.path.join(BIN_DIR, "tidelane-worker"), "--router", "127.0.0.1:1",
             "--auth-token-file", token_file,
             "--identity-file", os.path.join(self.work, "identity"), *args],
            capture_output=True, text=True, timeout=60)

    def test_unknown_backend_fails_at_start_naming_the_available_ones(self):
        out = self.run_worker("--engine", "gguf", "--model", MODEL, "--backend", "nosuch")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("unknown --backend nosuch", out.stderr)
        self.assertRegex(out.stderr, r"available: cpu(, cuda)?\)")
        self.assertEqual(out.stdout, "")

    def test_backend_needs_the_gguf_engine(self):
        out = self.run_worker("--engine", "synthetic", "--backend", "cuda")
        self.assertEqual(out.returncode, 2, out.stderr)
        # (A build without CUDA refuses the name itself.)
        self.assertRegex(out.stderr, r"needs --engine gguf|unknown --backend cuda")


if __name__ == "__main__":
    unittest.main(verbosity=2)
