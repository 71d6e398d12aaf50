#!/usr/bin/python3
"""Verifiable receipts end to end: a real tidelane-router and real tidelane-workers (child
processes, loopback gRPC) answer a chat; Done carries a receipt that verifies, also with an
independent Ed25519 implementation (python3-cryptography); GET /v1/receipts/{id} serves the
same receipt; tidelane-verify accepts it and rejects tampered copies; a worker killed
mid-answer shows up in the countersigned route; a worker given its key on stdin signs with it.

Usage: receipt_e2e_test.py BIN_DIR PROTO_DIR
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import generate_stubs, start  # noqa: E402

BIN_DIR, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

WORK = tempfile.mkdtemp(prefix="tidelane-receipt-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: E402
    Ed25519PrivateKey, Ed25519PublicKey)
from cryptography.hazmat.primitives.serialization import (  # noqa: E402
    Encoding, NoEncryption, PrivateFormat, PublicFormat)
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2  # noqa: E402

VERIFY = os.path.join(BIN_DIR, "tidelane-verify")


def canonical(value):
    """The canonical form the receipt library documents: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def netstring_sha256(strings):
    import hashlib
    return hashlib.sha256(b"".join(b"%d:%s" % (len(s), s) for s in strings)).hexdigest()


def verify_cli(doc, *args):
    path = os.path.join(WORK, "receipt-%s.json" % secrets.token_hex(4))
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return subprocess.run([VERIFY, path, *args], capture_output=True, text=True, timeout=30)


class Receipts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token = secrets.token_hex(24)
        cls.token_file = os.path.join(WORK, "token")
        with open(os.open(cls.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(cls.token + "\n")
        cls.router, fields = start(
            [os.path.join(BIN_DIR, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--auth-token-file", cls.token_file,
             "--data-dir", os.path.join(WORK, "data")], "tidelane-router ready")
        cls.grpc_address, cls.http = fields["grpc"], fields["http"]
        cls.workers = {}
        cls.channel = grpc.insecure_channel(cls.grpc_address)
        cls.stub = chat_pb2_grpc.ChatServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for p in list(cls.workers.values()) + [cls.router]:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
            p.stdout.close()
        shutil.rmtree(WORK, ignore_errors=True)

    @classmethod
    def start_worker(cls, name, *extra, stdin_key=None):
        args = [os.path.join(BIN_DIR, "tidelane-worker"), "--router", cls.grpc_address,
                "--auth-token-file", cls.token_file, "--name", name, *extra]
        if stdin_key is None:
            proc, _ = start(args + ["--identity-file", os.path.join(WORK, name + ".key")],
                            "tidelane-worker ready")
        else:
            proc = subprocess.Popen(args + ["--identity-stdin"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            proc.stdin.write(stdin_key)
            proc.stdin.close()
            line = proc.stdout.readline()
            if not line.startswith("tidelane-worker ready"):
                proc.kill()
                raise RuntimeError("worker did not become ready: %r" % line)
        cls.workers[name] = proc
        return proc

    def stop_workers(self):
        for name, p in list(self.workers.items()):
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
            p.stdout.close()
            del self.workers[name]

    def chat(self, text, max_tokens=24, on_token=None):
        request = chat_pb2.ChatRequest(
            request_id="rcpt-" + secrets.token_hex(4), user="receipts",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=max_tokens))
        events = []
        for e in self.stub.Chat(request, metadata=[("authorization", "Bearer " + self.token)]):
            events.append(e)
            if on_token and e.HasField("token"):
                on_token(events)
        return request, events

    def get(self, path, token=True):
        req = urllib.request.Request("http://" + self.http + path)
        if token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def check_independently(self, receipt, request, tokens):
        """Checks the receipt with code that is not ours: python3-cryptography's Ed25519."""
        payload = json.loads(receipt.payload)
        self.assertEqual(canonical(payload), receipt.payload, "payload is canonical")
        statement = payload["worker_statement"]
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(receipt.worker_public_key)).verify(
            receipt.worker_signature, canonical(statement))
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(receipt.router_public_key)).verify(
            receipt.router_signature, receipt.payload)
        self.assertEqual(payload["request_id"], request.request_id)
        self.assertEqual(payload["output"]["tokens"], len(tokens))
        self.assertEqual(payload["output"]["sha256"],
                         netstring_sha256([t.encode() for t in tokens]))
        parts = []
        for m in request.messages:
            parts += [m.role.encode(), m.content.encode()]
        self.assertEqual(payload["prompt"]["messages_sha256"], netstring_sha256(parts))
        return payload

    def test_1_done_carries_a_receipt_served_and_verified_offline(self):
        self.start_worker("rw-a", "--profile", "high", "--time-scale", "0")
        try:
            request, events = self.chat("tell me about receipts")
            done = events[-1]
            self.assertTrue(done.HasField("done"), events[-1])
            receipt = done.done.receipt
            self.assertTrue(receipt.payload, "Done carries a receipt")
            tokens = [e.token.text for e in events if e.HasField("token")]
            payload = self.check_independently(receipt, request, tokens)
            statement = payload["worker_statement"]
            self.assertEqual(statement["worker"]["name"], "rw-a")
            self.assertEqual(statement["model"]["kind"], "synthetic")
            self.assertEqual(statement["prompt"]["encoding"], "messages")
            self.assertEqual(payload["route"], [{"node": "rw-a", "from_index": 0,
                                                 "to_index": len(tokens), "outcome": "done"}])

            # The router serves the same receipt over HTTP, as JSON tidelane-verify reads.
            status, doc = self.get("/v1/receipts/" + request.request_id)
            self.assertEqual(status, 200)
            self.assertEqual(canonical(doc["payload"]), receipt.payload)
            self.assertEqual(doc["worker_signature"], receipt.worker_signature.hex())
            self.assertEqual(doc["router_public_key"], receipt.router_public_key)

            ok = verify_cli(doc)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn("VALID", ok.stdout)
            self.assertIn("rw-a", ok.stdout)
            answer = os.path.join(WORK, "answer.txt")
            with open(answer, "w") as f:
                f.write("".join(tokens))
            pinned = verify_cli(doc, "--worker-key", receipt.worker_public_key,
                                "--router-key", receipt.router_public_key, "--answer", answer)
            self.assertEqual(pinned.returncode, 0, pinned.stderr)

            # Tampered copies are rejected, naming the check that failed.
            for path, check in ((("payload", "output", "tokens"), "router-signature"),
                                (("payload", "worker_statement", "model", "sha256"),
                                 "worker-signature"),
                                (("payload", "accepted_at_ms"), "router-signature")):
                bad = json.loads(json.dumps(doc))
                at = bad
                for k in path[:-1]:
                    at = at[k]
                old = at[path[-1]]
                at[path[-1]] = old + 1 if isinstance(old, int) else ("0" if old[0] != "0" else "1") + old[1:]
                r = verify_cli(bad)
                self.assertEqual(r.returncode, 1, (path, r.stdout, r.stderr))
                self.assertIn(check, r.stderr)
            bad = json.loads(json.dumps(doc))
            bad["router_signature"] = ("00" if bad["router_signature"][:2] != "00" else "11") + \
                bad["router_signature"][2:]
            self.assertEqual(verify_cli(bad).returncode, 1)
            wrong_key = Ed25519PrivateKey.generate().public_key().public_bytes(
                Encoding.Raw, PublicFormat.Raw).hex()
            self.assertEqual(verify_cli(doc, "--router-key", wrong_key).returncode, 1)
            self.assertEqual(verify_cli("not json").returncode, 2)
            self.assertEqual(verify_cli({"object": "something else"}).returncode, 2)

            # Resume of a finished request replays its Done with the stored receipt.
            resumed = list(self.stub.Resume(
                chat_pb2.ResumeRequest(request_id=request.request_id, from_index=0),
                metadata=[("authorization", "Bearer " + self.token)]))
            self.assertEqual(resumed[-1].done.receipt.payload, receipt.payload)

            # An OpenAI client's answer says where its receipt is (an extension field).
            body = json.dumps({"model": "tidelane-synthetic", "max_tokens": 8,
                               "messages": [{"role": "user", "content": "hi over http"}]})
            post = urllib.request.Request("http://" + self.http + "/v1/chat/completions",
                                          data=body.encode(), method="POST")
            post.add_header("Authorization", "Bearer " + self.token)
            post.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(post, timeout=30) as r:
                completion = json.loads(r.read())
            self.assertEqual(completion["tidelane_receipt"], "/v1/receipts/" + completion["id"])
            status, http_doc = self.get("/v1/receipts/" + completion["id"])
            self.assertEqual(status, 200)
            answer_http = os.path.join(WORK, "answer-http.txt")
            with open(answer_http, "w") as f:
                f.write(completion["choices"][0]["message"]["content"])
            r = verify_cli(http_doc, "--answer", answer_http)
            self.assertEqual(r.returncode, 0, r.stderr)

            # Unknown ids get an OpenAI-style 404; no token, 401.
            status, err = self.get("/v1/receipts/no-such-request")
            self.assertEqual(status, 404)
            self.assertEqual(err["error"]["code"], "receipt_not_found")
            status, _ = self.get("/v1/receipts/" + request.request_id, token=False)
            self.assertEqual(status, 401)
        finally:
            self.stop_workers()

    def test_2_failover_route_is_countersigned(self):
        # Two slow workers; the one that starts the answer is killed after its first token.
        self.start_worker("rw-slow-1", "--profile", "low", "--time-scale", "1")
        self.start_worker("rw-slow-2", "--profile", "low", "--time-scale", "1")
        killed = []

        def kill_first(events):
            if killed:
                return
            routed = [e.routed.node for e in events if e.HasField("routed")]
            victim = routed[0]
            self.workers[victim].send_signal(signal.SIGKILL)
            self.workers[victim].wait(timeout=10)
            killed.append(victim)

        try:
            request, events = self.chat("a long answer please, about tides and lanes",
                                        max_tokens=40, on_token=kill_first)
            self.assertTrue(events[-1].HasField("done"), events[-1])
            redirects = [e.redirected for e in events if e.HasField("redirected")]
            self.assertEqual(len(redirects), 1)
            tokens = [e.token.text for e in events if e.HasField("token")]
            receipt = events[-1].done.receipt
            payload = self.check_independently(receipt, request, tokens)
            route = payload["route"]
            self.assertEqual(len(route), 2, route)
            self.assertEqual(route[0]["node"], killed[0])
            self.assertEqual(route[0]["outcome"], "failed")
            self.assertEqual(route[0]["from_index"], 0)
            self.assertEqual(route[0]["to_index"], redirects[0].resume_index)
            self.assertIn("reason", route[0])
            self.assertEqual(route[1]["node"], redirects[0].to_node)
            self.assertEqual(route[1]["from_index"], redirects[0].resume_index)
            self.assertEqual(route[1]["to_index"], len(tokens))
            statement = payload["worker_statement"]
            self.assertEqual(statement["worker"]["name"], redirects[0].to_node)
            self.assertEqual(statement["resumed_from"]["index"], redirects[0].resume_index)
            status, doc = self.get("/v1/receipts/" + request.request_id)
            self.assertEqual(status, 200)
            r = verify_cli(doc)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("route 2: " + redirects[0].to_node, r.stdout)
        finally:
            self.stop_workers()

    def test_3_identity_from_stdin(self):
        seed = Ed25519PrivateKey.generate()
        raw = seed.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        expected = seed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.start_worker("rw-stdin", "--profile", "high", "--time-scale", "0",
                          stdin_key="tidelane-ed25519-seed-v1 " + raw.hex() + "\n")
        try:
            _, events = self.chat("hello")
            receipt = events[-1].done.receipt
            self.assertEqual(receipt.worker_public_key, expected)
            doc_status, doc = self.get("/v1/receipts/" + events[-1].request_id)
            self.assertEqual(doc_status, 200)
            r = verify_cli(doc, "--worker-key", expected)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            self.stop_workers()

    def test_4_exposed_identity_file_is_refused(self):
        path = os.path.join(WORK, "exposed.key")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), "w") as f:
            f.write("tidelane-ed25519-seed-v1 " + "ab" * 32 + "\n")
        os.chmod(path, 0o644)
        r = subprocess.run(
            [os.path.join(BIN_DIR, "tidelane-worker"), "--router", self.grpc_address,
             "--auth-token-file", self.token_file, "--identity-file", path],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("chmod 600", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
