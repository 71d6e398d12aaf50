#!/usr/bin/python3
"""The tide in a live router, seen from clients that are not ours (python3-grpcio): a burst of
long prompts with one-token answers moves high-tier workers into the prefill lane (the monitor
shows it, and each moved worker is told over its registry stream and says so in its log); the
operator's drain and its lifting reach the worker; a policy without lanes sends the moved
workers back to the mixed lane; a router that stops ends its workers' streams with its reason.

Usage: tide_test.py BIN_DIR PROTO_DIR
"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import generate_stubs  # noqa: E402

BIN_DIR, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

WORK = tempfile.mkdtemp(prefix="tidelane-tide-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2  # noqa: E402
from tidelane.v1 import monitor_pb2, monitor_pb2_grpc  # noqa: E402

WORKERS = ("tide-a", "tide-b", "tide-c")


def start(args, ready_prefix, log):
    """Starts a daemon with its log in LOG; returns (process, fields of its ready line)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith(ready_prefix):
        proc.kill()
        raise RuntimeError(f"{args[0]} did not become ready: {line!r}")
    return proc, dict(kv.split("=", 1) for kv in line.split()[2:])


def read(path):
    with open(path) as f:
        return f.read()


class Tide(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token = secrets.token_hex(24)
        token_file = os.path.join(WORK, "token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(cls.token + "\n")
        cls.router, fields = start(
            [os.path.join(BIN_DIR, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file,
             "--data-dir", os.path.join(WORK, "data"), "--policy", "tidal", "--tide"],
            "tidelane-router ready", os.path.join(WORK, "router.log"))
        cls.workers = {}
        for name in WORKERS:
            cls.workers[name], _ = start(
                [os.path.join(BIN_DIR, "tidelane-worker"), "--router", fields["grpc"],
                 "--auth-token-file", token_file, "--profile", "high", "--time-scale", "0",
                 "--name", name, "--identity-file", os.path.join(WORK, name + ".key")],
                "tidelane-worker ready", cls.log(name))
        cls.http = fields["http"]
        cls.channel = grpc.insecure_channel(fields["grpc"])
        cls.auth = [("authorization", "Bearer " + cls.token)]
        cls.chat = chat_pb2_grpc.ChatServiceStub(cls.channel)
        cls.monitor = monitor_pb2_grpc.MonitorServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for p in (*cls.workers.values(), cls.router):
            p.terminate()
            p.wait(timeout=30)
            p.stdout.close()
        shutil.rmtree(WORK, ignore_errors=True)

    @staticmethod
    def log(name):
        return os.path.join(WORK, name + ".log")

    def lanes(self):
        watch = self.monitor.Watch(monitor_pb2.WatchRequest(interval_ms=100),
                                   metadata=self.auth, timeout=10)
        snapshot = next(watch)
        watch.cancel()
        return {n.name: n.lane for n in snapshot.nodes}

    def wait_for(self, what, check, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.1)
        self.fail("timed out waiting for " + what)

    def ask(self, text, max_tokens):
        request = chat_pb2.ChatRequest(
            request_id="tide-" + secrets.token_hex(4), user="python",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=max_tokens))
        events = list(self.chat.Chat(request, metadata=self.auth, timeout=30))
        self.assertEqual(events[-1].WhichOneof("event"), "done")
        return events

    def test_1_a_prefill_heavy_burst_moves_workers_into_the_prefill_lane(self):
        self.assertEqual(set(self.lanes().values()), {common_pb2.LANE_MIXED})
        prompt = "Summarise this long document please. " * 400
        for _ in range(12):
            self.ask(prompt, 1)
        moved = self.wait_for(
            "two workers in the prefill lane",
            lambda: [n for n, lane in self.lanes().items() if lane == common_pb2.LANE_PREFILL]
            if list(self.lanes().values()).count(common_pb2.LANE_PREFILL) == 2 else None)
        # The controller keeps one of the high tier mixed, and tells each moved worker.
        for name in WORKERS:
            said = "now serves the prefill lane" in read(self.log(name))
            self.assertEqual(said, name in moved, name)
        # The monitor and /metrics count them.
        watch = self.monitor.Watch(monitor_pb2.WatchRequest(interval_ms=100), metadata=self.auth,
                                   timeout=10)
        self.assertEqual(next(watch).counters.lane_moves, 2)
        watch.cancel()
        request = urllib.request.Request("http://%s/metrics" % self.http,
                                         headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(request, timeout=10) as reply:
            self.assertIn("tidelane_lane_moves_total 2\n", reply.read().decode())
        # Answers still come, whole, while the lanes are split.
        events = self.ask("and a short question", 8)
        self.assertEqual(len([e for e in events if e.HasField("token")]), 8)

    def test_2_the_operators_drain_and_its_lifting_reach_the_worker(self):
        set_state = lambda state: self.monitor.SetNodeState(  # noqa: E731
            monitor_pb2.SetNodeStateRequest(node="tide-c", state=state), metadata=self.auth,
            timeout=10)
        set_state(monitor_pb2.NODE_STATE_DRAINING)
        self.wait_for("the drain in tide-c's log",
                      lambda: "drained by the operator" in read(self.log("tide-c")))
        set_state(monitor_pb2.NODE_STATE_READY)
        self.wait_for("the lifting in tide-c's log",
                      lambda: "lifted the drain" in read(self.log("tide-c")))

    def test_3_a_policy_without_lanes_sends_workers_back_to_mixed(self):
        self.monitor.SetPolicy(monitor_pb2.SetPolicyRequest(policy="tidal-no-lanes"),
                               metadata=self.auth, timeout=10)
        self.wait_for("every worker mixed again",
                      lambda: set(self.lanes().values()) == {common_pb2.LANE_MIXED})
        moved_back = [n for n in WORKERS if "now serves the mixed lane" in read(self.log(n))]
        self.assertEqual(len(moved_back), 2)

    def test_4_a_stopping_router_ends_the_workers_streams_with_its_reason(self):
        self.router.terminate()
        self.assertEqual(self.router.wait(timeout=30), 0)
        # The router ended each registry stream itself (not gRPC's shutdown deadline cancelling
        # it), and each worker heard why before it went back to reconnecting.
        for name in WORKERS:
            self.wait_for(name + " hearing the router stop",
                          lambda: "the router is shutting down" in read(self.log(name)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
