#!/usr/bin/python3
"""A client that is not ours: Debian's python3-grpcio, with stubs generated here from the
.proto files by protoc and grpc_python_plugin, chats with a real tidelane-router and
tidelane-worker started as child processes on free loopback ports.

Usage: grpc_client_test.py BIN_DIR PROTO_DIR
"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest

BIN_DIR, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

WORK = tempfile.mkdtemp(prefix="tidelane-pytest-")
GEN = os.path.join(WORK, "gen")
os.makedirs(GEN)
protos = [os.path.join("tidelane", "v1", p) for p in
          ("common.proto", "chat.proto", "monitor.proto", "worker.proto", "registry.proto")]
subprocess.run(["protoc", "-I", PROTO_DIR, "--python_out", GEN, "--grpc_out", GEN,
                "--plugin=protoc-gen-grpc=" + shutil.which("grpc_python_plugin")] + protos,
               check=True)
sys.path.insert(0, GEN)

import grpc  # noqa: E402
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2  # noqa: E402


def start(args, ready_prefix):
    """Starts a daemon and returns (process, fields of its ready line)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith(ready_prefix):
        proc.kill()
        raise RuntimeError(f"{args[0]} did not become ready: {line!r}")
    fields = dict(kv.split("=", 1) for kv in line.split()[2:])
    return proc, fields


class RouterFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token = secrets.token_hex(24)
        token_file = os.path.join(WORK, "token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(cls.token + "\n")
        cls.router, fields = start(
            [os.path.join(BIN_DIR, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file,
             "--data-dir", os.path.join(WORK, "data")], "tidelane-router ready")
        cls.address = fields["grpc"]
        cls.worker, _ = start(
            [os.path.join(BIN_DIR, "tidelane-worker"), "--router", cls.address,
             "--auth-token-file", token_file, "--engine", "synthetic", "--profile", "high",
             "--name", "py-worker"], "tidelane-worker ready")
        cls.channel = grpc.insecure_channel(cls.address)
        cls.stub = chat_pb2_grpc.ChatServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for p in (cls.worker, cls.router):
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(WORK, ignore_errors=True)

    def request(self, text):
        return chat_pb2.ChatRequest(
            request_id="py-" + secrets.token_hex(4), user="python",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=16))

    def test_chat_streams_accepted_routed_tokens_done(self):
        events = list(self.stub.Chat(self.request("hello from python"),
                                     metadata=[("authorization", "Bearer " + self.token)]))
        kinds = [e.WhichOneof("event") for e in events]
        self.assertEqual(kinds[0], "accepted")
        self.assertEqual(kinds[1], "routed")
        self.assertEqual(events[1].routed.node, "py-worker")
        self.assertEqual(kinds[-1], "done")
        tokens = [e.token for e in events if e.HasField("token")]
        self.assertGreater(len(tokens), 0)
        self.assertEqual([t.index for t in tokens], list(range(len(tokens))))
        self.assertEqual(events[-1].done.usage.completion_tokens, len(tokens))
        self.assertGreater(events[-1].done.timings.ttft_ms, 0)

    def test_wrong_token_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.Chat(self.request("hi"), metadata=[("authorization", "Bearer nope")]))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_missing_token_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.ListModels(chat_pb2.ListModelsRequest())
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_list_models_names_the_synthetic_model(self):
        reply = self.stub.ListModels(chat_pb2.ListModelsRequest(),
                                     metadata=[("authorization", "Bearer " + self.token)])
        self.assertEqual([m.id for m in reply.models], ["tidelane-synthetic"])

    def test_empty_conversation_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.Chat(chat_pb2.ChatRequest(request_id="empty"),
                                metadata=[("authorization", "Bearer " + self.token)]))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    unittest.main(verbosity=2)
