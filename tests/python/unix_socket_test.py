#!/usr/bin/python3
"""A router and workers on one machine over Unix-domain sockets (--grpc-listen unix:PATH,
--listen unix:PATH), driven by a client that is not ours (Debian's python3-grpcio): chat
works end to end, the sockets are private to their user, a socket another daemon serves on is
never taken over, one left by a killed daemon is, a daemon removes its socket when it exits,
and bad socket paths get a clear error before anything starts.

Usage: unix_socket_test.py BIN_DIR PROTO_DIR
"""
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import generate_stubs, start  # noqa: E402

BIN_DIR, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

WORK = tempfile.mkdtemp(prefix="tidelane-unix-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2  # noqa: E402

ROUTER = os.path.join(BIN_DIR, "tidelane-router")
WORKER = os.path.join(BIN_DIR, "tidelane-worker")


def fail_fast(args):
    """Runs a daemon that must refuse to start; returns (exit code, stderr)."""
    proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)
    return proc.returncode, proc.stderr


class UnixSockets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token = secrets.token_hex(24)
        cls.token_file = os.path.join(WORK, "token")
        with open(os.open(cls.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(cls.token + "\n")
        cls.router_sock = os.path.join(WORK, "router.sock")
        cls.worker_sock = os.path.join(WORK, "worker.sock")
        # A relative path, as a user might type it: the router dials the worker from its own
        # working folder, so the address must come back absolute.
        cls.router, fields = start(
            [ROUTER, "--grpc-listen", "unix:" + os.path.relpath(cls.router_sock),
             "--http-listen", "127.0.0.1:0", "--auth-token-file", cls.token_file,
             "--data-dir", os.path.join(WORK, "data")], "tidelane-router ready")
        cls.address = fields["grpc"]
        cls.worker = cls.start_worker("unix-worker")
        cls.channel = grpc.insecure_channel(cls.address)
        cls.stub = chat_pb2_grpc.ChatServiceStub(cls.channel)

    @classmethod
    def start_worker(cls, name):
        worker, fields = start(
            [WORKER, "--router", cls.address, "--auth-token-file", cls.token_file,
             "--profile", "high", "--time-scale", "0", "--name", name,
             "--identity-file", os.path.join(WORK, name + ".key"),
             "--listen", "unix:" + cls.worker_sock], "tidelane-worker ready")
        cls.worker_address = fields["listen"]
        return worker

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for p in (cls.worker, cls.router):
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        shutil.rmtree(WORK, ignore_errors=True)

    def chat(self, text):
        request = chat_pb2.ChatRequest(
            request_id="unix-" + secrets.token_hex(4), user="python",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=12))
        return list(self.stub.Chat(request, metadata=[("authorization", "Bearer " + self.token)],
                                   timeout=30))

    def assert_answered(self, events, node):
        kinds = [e.WhichOneof("event") for e in events]
        self.assertEqual(kinds[0], "accepted")
        self.assertEqual(events[1].routed.node, node)
        self.assertEqual(kinds[-1], "done")
        tokens = [e.token.index for e in events if e.HasField("token")]
        self.assertEqual(tokens, list(range(12)))
        self.assertTrue(events[-1].done.HasField("receipt"))

    def test_1_addresses_are_absolute_unix_paths(self):
        self.assertEqual(self.address, "unix:" + self.router_sock)
        self.assertEqual(self.worker_address, "unix:" + self.worker_sock)

    def test_2_chat_over_unix_sockets_end_to_end(self):
        self.assert_answered(self.chat("hello over a unix socket"), "unix-worker")

    def test_3_sockets_are_private_to_their_user(self):
        for path in (self.router_sock, self.worker_sock):
            st = os.stat(path)
            self.assertTrue(stat.S_ISSOCK(st.st_mode), path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, path)

    def test_4_wrong_token_is_refused_over_a_socket_too(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.ListModels(chat_pb2.ListModelsRequest(),
                                 metadata=[("authorization", "Bearer nope")])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_5_a_served_socket_is_not_taken_over(self):
        code, err = fail_fast(
            [ROUTER, "--grpc-listen", self.address, "--http-listen", "127.0.0.1:0",
             "--auth-token-file", self.token_file, "--data-dir", os.path.join(WORK, "data2")])
        self.assertEqual(code, 2)
        self.assertIn("another process is serving on that socket", err)
        self.assertFalse(os.path.exists(os.path.join(WORK, "data2")),
                         "the refused router must not have touched its data folder")
        code, err = fail_fast(
            [WORKER, "--router", self.address, "--auth-token-file", self.token_file,
             "--identity-file", os.path.join(WORK, "w2.key"), "--listen", self.worker_address])
        self.assertEqual(code, 2)
        self.assertIn("another process is serving on that socket", err)
        # Both daemons still serve on their sockets.
        self.assert_answered(self.chat("still there?"), "unix-worker")

    def test_6_a_killed_workers_socket_is_taken_over_and_the_new_one_serves(self):
        cls = type(self)
        cls.worker.send_signal(signal.SIGKILL)
        cls.worker.wait(timeout=10)
        cls.worker.stdout.close()
        self.assertTrue(os.path.exists(self.worker_sock), "kill -9 leaves the socket file")
        cls.worker = cls.start_worker("unix-worker-2")
        # A request that lands on the dead registration is redirected: either way the answer
        # is whole and comes from the new worker.
        events = self.chat("after the restart")
        self.assertEqual(events[-1].WhichOneof("event"), "done")
        self.assertEqual([e.token.index for e in events if e.HasField("token")], list(range(12)))
        nodes = [e.routed.node if e.HasField("routed") else e.redirected.to_node
                 for e in events if e.HasField("routed") or e.HasField("redirected")]
        self.assertEqual(nodes[-1], "unix-worker-2")

    def test_7_daemons_remove_their_socket_when_they_exit(self):
        cls = type(self)
        cls.worker.terminate()
        self.assertEqual(cls.worker.wait(timeout=40), 0)
        self.assertFalse(os.path.exists(self.worker_sock))
        cls.router.terminate()
        self.assertEqual(cls.router.wait(timeout=20), 0)
        self.assertFalse(os.path.exists(self.router_sock))


class BadSocketPaths(unittest.TestCase):
    """Each refused before the daemon does anything else, with the path and the reason."""

    def router(self, listen, *extra):
        return fail_fast([ROUTER, "--grpc-listen", listen, "--http-listen", "127.0.0.1:0",
                          "--auth-token-file", os.path.join(WORK, "token"),
                          "--data-dir", os.path.join(WORK, "bad-data"), *extra])

    def test_too_long(self):
        path = os.path.join(WORK, "s" * 120)
        code, err = self.router("unix:" + path)
        self.assertEqual(code, 2)
        self.assertIn("may have at most 107", err)

    def test_missing_folder(self):
        code, err = self.router("unix:" + os.path.join(WORK, "no-such-folder", "r.sock"))
        self.assertEqual(code, 2)
        self.assertIn("does not exist", err)

    def test_a_file_in_the_way_is_kept(self):
        path = os.path.join(WORK, "notes.txt")
        with open(path, "w") as f:
            f.write("mine\n")
        code, err = self.router("unix:" + path)
        self.assertEqual(code, 2)
        self.assertIn("not a socket", err)
        with open(path) as f:
            self.assertEqual(f.read(), "mine\n")

    def test_authority_form_is_refused(self):
        code, err = self.router("unix://host/r.sock")
        self.assertEqual(code, 2)
        self.assertIn("unix:///ABSOLUTE/PATH", err)

    def test_tls_over_a_socket_is_refused(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                        "-days", "2", "-subj", "/CN=localhost"],
                       cwd=WORK, check=True, capture_output=True)
        os.chmod(os.path.join(WORK, "k.pem"), 0o600)
        tls = ["--tls-cert", os.path.join(WORK, "c.pem"), "--tls-key", os.path.join(WORK, "k.pem")]
        code, err = self.router("unix:" + os.path.join(WORK, "tls.sock"), *tls)
        self.assertEqual(code, 2)
        self.assertIn("is a Unix socket", err)
        # The worker refuses it the same way (mutual TLS: it needs the CA as well).
        code, err = fail_fast([WORKER, "--router", "127.0.0.1:1", "--auth-token-file",
                               os.path.join(WORK, "token"), "--name", "tls-worker",
                               "--listen", "unix:" + os.path.join(WORK, "tls-w.sock"), *tls,
                               "--tls-ca", os.path.join(WORK, "c.pem")])
        self.assertEqual(code, 2)
        self.assertIn("is a Unix socket", err)
        self.assertFalse(os.path.exists(os.path.join(WORK, "tls-w.sock")))


if __name__ == "__main__":
    with open(os.open(os.path.join(WORK, "token"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(secrets.token_hex(24) + "\n")
    unittest.main(verbosity=2)
