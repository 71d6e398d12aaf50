#!/usr/bin/python3
"""Prefill/decode split end to end: a real tidelane-router with the tidal policy and real
tidelane-workers (child processes, loopback gRPC), one in the PREFILL lane and others in the
DECODE lane, so every request is prefilled on one worker and decoded on another, its KV cache
streamed between them through the router.

- gguf workers on the bundled guide model (resources/models): a split answer is exactly the
  unsplit one (greedy, and seeded sampling), the monitor shows PREFILL, KV_TRANSFER and DECODE
  flows and counts the KV bytes, the ledger replays the answer, the receipt's route has both
  hops and verifies (tidelane-verify);
- synthetic workers: the tidal policy splits them, KV bytes of the profile's size are counted;
- a corrupt, truncated or foreign KV cache is refused with a clear status, never a crash;
- the decode worker killed mid-answer (kill -9): the answer completes on another worker with
  no token lost or repeated, and its receipt's route says so.

Usage: kv_split_test.py BIN_DIR PROTO_DIR SOURCE_DIR
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import generate_stubs, start  # noqa: E402

BIN_DIR, PROTO_DIR, SOURCE_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
MODEL = os.path.join(SOURCE_DIR, "resources", "models", "tidelane-guide.gguf")
WORK = tempfile.mkdtemp(prefix="tidelane-split-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from tidelane.v1 import (chat_pb2, chat_pb2_grpc, common_pb2, monitor_pb2,  # noqa: E402
                         monitor_pb2_grpc, worker_pb2, worker_pb2_grpc)
import reflection_v1alpha_pb2 as reflection_pb2  # noqa: E402
import reflection_v1alpha_pb2_grpc as reflection_pb2_grpc  # noqa: E402

LONG_PROMPT = ("Tell me how Tidelane routes a surge of users across many modest machines, "
               "what the tidal lanes are, and why every answer comes with a receipt. " * 3)


class Cluster:
    """A router and its workers, all child processes of this test."""

    def __init__(self, name, *router_args):
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir)
        self.token = secrets.token_hex(24)
        self.token_file = os.path.join(self.dir, "token")
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(self.token + "\n")
        self.router, fields = start(
            [os.path.join(BIN_DIR, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--auth-token-file", self.token_file,
             "--data-dir", os.path.join(self.dir, "data"), *router_args],
            "tidelane-router ready")
        self.grpc_address, self.http = fields["grpc"], fields["http"]
        self.channel = grpc.insecure_channel(self.grpc_address)
        self.chat_stub = chat_pb2_grpc.ChatServiceStub(self.channel)
        self.monitor = monitor_pb2_grpc.MonitorServiceStub(self.channel)
        self.workers = {}
        self.addresses = {}
        self.metadata = [("authorization", "Bearer " + self.token)]

    def add_worker(self, name, lane, *engine_args):
        proc, fields = start(
            [os.path.join(BIN_DIR, "tidelane-worker"), "--router", self.grpc_address,
             "--auth-token-file", self.token_file, "--name", name, "--lane", lane,
             "--identity-file", os.path.join(self.dir, name + ".key"), *engine_args],
            "tidelane-worker ready")
        self.workers[name] = proc
        self.addresses[name] = fields["listen"]
        return proc

    def worker_stub(self, name):
        return worker_pb2_grpc.WorkerServiceStub(grpc.insecure_channel(self.addresses[name]))

    def chat(self, text, max_tokens=24, temperature=0.0, seed=0, on_event=None):
        request = chat_pb2.ChatRequest(
            request_id="split-" + secrets.token_hex(6), user="split-test",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=max_tokens, temperature=temperature,
                                               seed=seed))
        events = []
        for e in self.chat_stub.Chat(request, metadata=self.metadata, timeout=120):
            events.append(e)
            if on_event:
                on_event(events)
        return request, events

    def set_policy(self, policy):
        self.monitor.SetPolicy(monitor_pb2.SetPolicyRequest(policy=policy),
                               metadata=self.metadata)

    def snapshot(self):
        for s in self.monitor.Watch(monitor_pb2.WatchRequest(interval_ms=50),
                                    metadata=self.metadata, timeout=30):
            return s

    def receipt_document(self, request_id):
        req = urllib.request.Request("http://%s/v1/receipts/%s" % (self.http, request_id))
        req.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def close(self):
        self.channel.close()
        for p in list(self.workers.values()) + [self.router]:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            p.stdout.close()


def tokens_of(events):
    tokens = [e.token for e in events if e.HasField("token")]
    return [t.index for t in tokens], [t.text for t in tokens]


def verify_cli(doc):
    path = os.path.join(WORK, "receipt-%s.json" % secrets.token_hex(4))
    with open(path, "w") as f:
        json.dump(doc, f)
    return subprocess.run([os.path.join(BIN_DIR, "tidelane-verify"), path],
                          capture_output=True, text=True, timeout=30)


class GgufSplit(unittest.TestCase):
    """Two gguf workers on the bundled guide model: one prefills, the other decodes."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster("gguf")
        gguf = ("--engine", "gguf", "--model", MODEL, "--threads", "1")
        cls.c.add_worker("pf", "prefill", *gguf)
        cls.c.add_worker("dc", "decode", *gguf)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def split_then_whole(self, **sampling):
        """The same conversation split (tidal policy) and whole on one node (round robin)."""
        c = self.c
        request, split = c.chat(LONG_PROMPT, **sampling)
        c.set_policy("round-robin")
        try:
            _, whole = c.chat(LONG_PROMPT, **sampling)
        finally:
            c.set_policy("tidal")
        return request, split, whole

    def test_greedy_split_answer_is_the_unsplit_answer(self):
        request, split, whole = self.split_then_whole(max_tokens=32)
        self.assertTrue(split[-1].HasField("done"), split[-1])
        self.assertTrue(whole[-1].HasField("done"), whole[-1])
        routed = [(e.routed.node, e.routed.stage) for e in split if e.HasField("routed")]
        self.assertEqual(routed, [("pf", common_pb2.STAGE_PREFILL),
                                  ("dc", common_pb2.STAGE_DECODE)])
        self.assertEqual([e.routed.stage for e in whole if e.HasField("routed")],
                         [common_pb2.STAGE_WHOLE])
        indices, texts = tokens_of(split)
        self.assertEqual(indices, list(range(len(texts))))
        self.assertGreater(len(texts), 2)
        self.assertEqual(texts, tokens_of(whole)[1])
        # And the same as the engine's own command-line tool, with no router at all.
        out = subprocess.run(
            [os.path.join(BIN_DIR, "tidelane-generate"), "--model", MODEL, "--prompt",
             LONG_PROMPT, "--chat", "--max-tokens", "32", "--temperature", "0", "--json",
             "--threads", "1"], check=True, capture_output=True, text=True)
        self.assertEqual("".join(texts), json.loads(out.stdout)["text"])

        # The ledger has every token: Resume of the finished request replays them.
        resumed = list(self.c.chat_stub.Resume(
            chat_pb2.ResumeRequest(request_id=request.request_id, from_index=0),
            metadata=self.c.metadata, timeout=30))
        self.assertEqual(tokens_of(resumed)[1], texts)

        # The receipt: the prefill hop handed off, the decode hop finished and signed.
        receipt = split[-1].done.receipt
        self.assertTrue(receipt.payload)
        payload = json.loads(receipt.payload)
        self.assertEqual(payload["route"], [
            {"node": "pf", "from_index": 0, "to_index": 1, "outcome": "handoff",
             "reason": "prefilled; KV cache handed to dc"},
            {"node": "dc", "from_index": 1, "to_index": len(texts), "outcome": "done"}])
        statement = payload["worker_statement"]
        self.assertEqual(statement["worker"]["name"], "dc")
        self.assertEqual(statement["resumed_from"]["index"], 1)
        self.assertEqual(statement["prompt"]["encoding"], "token-ids")
        r = verify_cli(self.c.receipt_document(request.request_id))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("VALID", r.stdout)

    def test_seeded_sampling_continues_exactly(self):
        _, split, whole = self.split_then_whole(max_tokens=32, temperature=0.9, seed=1234)
        self.assertIn(("dc", common_pb2.STAGE_DECODE),
                      [(e.routed.node, e.routed.stage) for e in split if e.HasField("routed")])
        self.assertEqual(tokens_of(split)[1], tokens_of(whole)[1])

    def test_monitor_shows_the_handoff_and_counts_kv_bytes(self):
        before = self.c.snapshot().counters
        request, events = self.c.chat("Where does my answer come from?", max_tokens=12)
        self.assertTrue(events[-1].HasField("done"), events[-1])
        snapshot = self.c.snapshot()
        flows = {}
        for f in snapshot.flows:
            flows.setdefault(f.request_id, []).append(f)
        # Flows carry the router's numeric request key; find the one with all three stages.
        split = [fs for fs in flows.values()
                 if [f.stage for f in fs][-3:] == [common_pb2.STAGE_PREFILL,
                                                   common_pb2.STAGE_KV_TRANSFER,
                                                   common_pb2.STAGE_DECODE]]
        self.assertTrue(split, snapshot.flows)
        prefill, kv, decode = split[-1][-3:]
        self.assertEqual(prefill.to_node, "pf")
        self.assertEqual((kv.from_node, kv.to_node), ("pf", "dc"))
        self.assertGreater(kv.kv_bytes, 0)
        self.assertEqual(decode.to_node, "dc")
        self.assertEqual(snapshot.counters.kv_handoffs, before.kv_handoffs + 1)
        self.assertGreater(snapshot.counters.kv_bytes, before.kv_bytes)

    def test_concurrent_split_requests_are_each_exact(self):
        prompts = ["What is a tidal lane?", "How does the router pick a node?",
                   "What is a receipt?", "Can I use my own model?"]
        results = {}
        lock = threading.Lock()

        def ask(p):
            _, events = self.c.chat(p, max_tokens=16)
            with lock:
                results.setdefault(p, []).append(tokens_of(events)[1])
        threads = [threading.Thread(target=ask, args=(p,)) for p in prompts * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in prompts:
            out = subprocess.run(
                [os.path.join(BIN_DIR, "tidelane-generate"), "--model", MODEL, "--prompt", p,
                 "--chat", "--max-tokens", "16", "--temperature", "0", "--json", "--threads",
                 "1"], check=True, capture_output=True, text=True)
            expected = json.loads(out.stdout)["text"]
            self.assertEqual(["".join(t) for t in results[p]], [expected, expected], p)

    def test_corrupt_foreign_and_truncated_kv_are_refused(self):
        c = self.c
        pf, dc = c.worker_stub("pf"), c.worker_stub("dc")
        request = worker_pb2.GenerateRequest(
            request_id="kv-probe-" + secrets.token_hex(4),
            messages=[common_pb2.ChatMessage(role="user", content=LONG_PROMPT)],
            sampling=common_pb2.SamplingParams(max_tokens=8))
        events = list(pf.PrefillKv(request, metadata=c.metadata, timeout=60))
        first = [e.token for e in events if e.HasField("token")]
        head = [e.head for e in events if e.HasField("head")][0]
        blob = b"".join(e.kv.data for e in events if e.HasField("kv"))
        self.assertEqual(len(blob), head.kv_bytes)
        self.assertEqual(head.format, "gguf")
        self.assertEqual([t.index for t in first], [0])

        def decode(blob, request_id=request.request_id, generated=None, announce=None,
                   fmt="gguf"):
            start = worker_pb2.DecodeStart(
                request=worker_pb2.GenerateRequest(
                    request_id=request_id, messages=request.messages,
                    sampling=request.sampling,
                    generated=[t.text for t in first] if generated is None else generated),
                head=worker_pb2.KvHead(kv_bytes=len(blob) if announce is None else announce,
                                       format=fmt),
                prefill_node="pf")

            def inputs():
                yield worker_pb2.DecodeInput(start=start)
                for at in range(0, len(blob), 1 << 20):
                    yield worker_pb2.DecodeInput(
                        kv=worker_pb2.KvChunk(offset=at, data=blob[at:at + (1 << 20)]))
            try:
                out = list(dc.DecodeKv(inputs(), metadata=c.metadata, timeout=60))
                return grpc.StatusCode.OK, out
            except grpc.RpcError as e:
                return e.code(), e.details()

        # The real cache continues the answer.
        code, out = decode(blob)
        self.assertEqual(code, grpc.StatusCode.OK, out)
        self.assertTrue(out[-1].HasField("done"))
        self.assertEqual(out[0].token.index, 1)

        flipped = bytearray(blob)
        flipped[len(flipped) // 2] ^= 0x55
        code, details = decode(bytes(flipped))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("checksum", details)

        code, details = decode(b"not a kv cache at all, just some bytes" * 4)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)

        code, details = decode(blob[: len(blob) // 2], announce=len(blob))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("ended at byte", details)

        code, details = decode(blob, request_id="someone-else")
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
        self.assertIn("someone-else", details)

        code, details = decode(blob, fmt="synthetic")
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)

        code, details = decode(blob, generated=["x", "y"])
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)

        # Both workers are still serving.
        _, events = c.chat("still there?", max_tokens=4)
        self.assertTrue(events[-1].HasField("done"), events[-1])
        self.assertIsNone(c.workers["dc"].poll())
        self.assertIsNone(c.workers["pf"].poll())


class SyntheticSplit(unittest.TestCase):
    """Synthetic workers: a high-tier prefill node and low-tier decode nodes."""

    def test_workers_answer_server_reflection(self):
        """Workers serve gRPC reflection for generic tools, like the router."""
        c = Cluster("reflection")
        try:
            c.add_worker("s-reflect", "decode", "--profile", "low", "--time-scale", "0")
            with grpc.insecure_channel(c.addresses["s-reflect"]) as channel:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)
                listed, schema = stub.ServerReflectionInfo(iter([
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol="tidelane.v1.WorkerService.Generate")]),
                    timeout=30)
            self.assertEqual(sorted(s.name for s in listed.list_services_response.service),
                             ["grpc.reflection.v1alpha.ServerReflection",
                              "tidelane.v1.WorkerService"])
            self.assertIn(b"tidelane/v1/worker.proto",
                          schema.file_descriptor_response.file_descriptor_proto[0])
        finally:
            c.close()

    def test_tidal_policy_splits_and_counts_kv_bytes(self):
        c = Cluster("synthetic")
        try:
            c.add_worker("s-prefill", "prefill", "--profile", "high", "--time-scale", "0")
            c.add_worker("s-decode-1", "decode", "--profile", "low", "--time-scale", "0")
            c.add_worker("s-decode-2", "decode", "--profile", "low", "--time-scale", "0")
            answers = []
            for i in range(6):
                _, events = c.chat(LONG_PROMPT + " (%d)" % i, max_tokens=40)
                self.assertTrue(events[-1].HasField("done"), events[-1])
                routed = [(e.routed.node, e.routed.stage) for e in events
                          if e.HasField("routed")]
                self.assertEqual(routed[0], ("s-prefill", common_pb2.STAGE_PREFILL))
                self.assertEqual(routed[1][1], common_pb2.STAGE_DECODE)
                self.assertIn(routed[1][0], ("s-decode-1", "s-decode-2"))
                answers.append(tokens_of(events))
            counters = c.snapshot().counters
            self.assertEqual(counters.kv_handoffs, 6)
            # The high profile's model holds 128 KiB a token.
            self.assertGreaterEqual(counters.kv_bytes, 6 * 80 * 128 * 1024)
            req = urllib.request.Request("http://%s/metrics" % c.http)
            req.add_header("Authorization", "Bearer " + c.token)
            with urllib.request.urlopen(req, timeout=30) as r:
                metrics = r.read().decode()
            self.assertIn("tidelane_kv_handoffs_total 6\n", metrics)
            self.assertIn("tidelane_kv_transfer_bytes_total %d\n" % counters.kv_bytes, metrics)
            # The answers are the ones a single node gives.
            c.set_policy("round-robin")
            for i, (indices, texts) in enumerate(answers):
                _, events = c.chat(LONG_PROMPT + " (%d)" % i, max_tokens=40)
                self.assertEqual([e.routed.stage for e in events if e.HasField("routed")],
                                 [common_pb2.STAGE_WHOLE])
                self.assertEqual(indices, list(range(len(texts))))
                self.assertEqual(tokens_of(events)[1], texts)
        finally:
            c.close()

    def test_min_prompt_tokens_keeps_short_prompts_whole(self):
        c = Cluster("short", "--split-min-prompt-tokens", "64")
        try:
            c.add_worker("m-prefill", "prefill", "--profile", "high", "--time-scale", "0")
            c.add_worker("m-decode", "decode", "--profile", "low", "--time-scale", "0")
            _, events = c.chat("hi", max_tokens=8)
            self.assertEqual([e.routed.stage for e in events if e.HasField("routed")],
                             [common_pb2.STAGE_WHOLE])
            _, events = c.chat(LONG_PROMPT, max_tokens=8)
            self.assertEqual([e.routed.stage for e in events if e.HasField("routed")],
                             [common_pb2.STAGE_PREFILL, common_pb2.STAGE_DECODE])
        finally:
            c.close()

    def decoder_lost_mid_answer(self, name, sig, *router_args):
        """Splits a long answer, sends `sig` to its decode worker after 3 decoded tokens and
        checks the answer completes elsewhere exactly; returns the redirect's reason."""
        c = Cluster(name, *router_args)
        try:
            c.add_worker("f-prefill", "prefill", "--profile", "high", "--time-scale", "0")
            # Slow decoders (the low profile's 80 ms a token), so the answer is mid-stream.
            c.add_worker("f-decode-1", "decode", "--profile", "low", "--time-scale", "1")
            c.add_worker("f-decode-2", "decode", "--profile", "low", "--time-scale", "1")
            lost = []

            def stop_decoder(events):
                if lost or not events[-1].HasField("token") or events[-1].token.index != 3:
                    return
                victim = [e.routed.node for e in events
                          if e.HasField("routed") and e.routed.stage == common_pb2.STAGE_DECODE][0]
                c.workers[victim].send_signal(sig)
                if sig == signal.SIGKILL:
                    c.workers[victim].wait(timeout=10)
                lost.append(victim)

            request, events = c.chat(LONG_PROMPT, max_tokens=40, on_event=stop_decoder)
            self.assertEqual(len(lost), 1)
            self.assertTrue(events[-1].HasField("done"), events[-1])
            indices, texts = tokens_of(events)
            self.assertEqual(indices, list(range(len(texts))), "no token lost or repeated")
            redirects = [e.redirected for e in events if e.HasField("redirected")]
            self.assertEqual(len(redirects), 1)
            self.assertEqual(redirects[0].from_node, lost[0])
            resume = redirects[0].resume_index
            self.assertGreaterEqual(resume, 4)

            # The same answer a single node gives.
            c.set_policy("round-robin")
            _, whole = c.chat(LONG_PROMPT, max_tokens=40)
            self.assertEqual(tokens_of(whole)[1], texts)

            route = json.loads(events[-1].done.receipt.payload)["route"]
            self.assertEqual([(h["node"], h["from_index"], h["to_index"], h["outcome"])
                              for h in route][:2],
                             [("f-prefill", 0, 1, "handoff"), (lost[0], 1, resume, "failed")])
            self.assertEqual(route[1]["reason"], redirects[0].reason)
            self.assertEqual(route[-1]["outcome"], "done")
            self.assertEqual(route[-1]["to_index"], len(texts))
            self.assertNotEqual(route[-1]["node"], lost[0])
            r = verify_cli(c.receipt_document(request.request_id))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            return redirects[0].reason
        finally:
            for p in c.workers.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGCONT)
            c.close()

    def test_decode_worker_killed_mid_answer(self):
        self.assertIn("decode failed", self.decoder_lost_mid_answer("failover", signal.SIGKILL))

    def test_decode_worker_frozen_mid_answer(self):
        """SIGSTOP: the worker's connections stay open and it just says nothing. Past the stall
        bound the router cancels the decode call and continues elsewhere at the next token."""
        reason = self.decoder_lost_mid_answer("frozen", signal.SIGSTOP,
                                              "--stall-timeout-ms", "1000")
        self.assertIn("went silent", reason)
        self.assertIn("1000 ms", reason)


class PrefillFailover(unittest.TestCase):
    def test_prefill_worker_killed_before_the_first_token(self):
        c = Cluster("prefill-failover")
        try:
            # A slow prefill (the low profile's 250 tokens/s) and a quick decoder.
            c.add_worker("p-prefill", "prefill", "--profile", "low", "--time-scale", "1")
            c.add_worker("p-decode", "decode", "--profile", "low", "--time-scale", "0")
            killed = []

            def kill_prefill(events):
                e = events[-1]
                if killed or not e.HasField("routed") or e.routed.stage != common_pb2.STAGE_PREFILL:
                    return
                c.workers["p-prefill"].send_signal(signal.SIGKILL)
                c.workers["p-prefill"].wait(timeout=10)
                killed.append(e.routed.node)

            request, events = c.chat(LONG_PROMPT, max_tokens=30, on_event=kill_prefill)
            self.assertEqual(killed, ["p-prefill"])
            self.assertTrue(events[-1].HasField("done"), events[-1])
            redirects = [e.redirected for e in events if e.HasField("redirected")]
            self.assertEqual([(r.from_node, r.to_node, r.resume_index) for r in redirects],
                             [("p-prefill", "p-decode", 0)])
            indices, texts = tokens_of(events)
            self.assertEqual(indices, list(range(len(texts))))
            # With no prefill node left, the decode node takes the request whole.
            route = json.loads(events[-1].done.receipt.payload)["route"]
            self.assertEqual([(h["node"], h["from_index"], h["to_index"], h["outcome"])
                              for h in route],
                             [("p-prefill", 0, 0, "failed"), ("p-decode", 0, len(texts), "done")])
            r = verify_cli(c.receipt_document(request.request_id))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            c.close()


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
