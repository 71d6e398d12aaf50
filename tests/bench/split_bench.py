#!/usr/bin/python3
"""Split vs whole on this machine: one tidelane-router (tidal policy) with a gguf worker in the
PREFILL lane and one in the DECODE lane, both on the bundled guide model, asked the same
requests one at a time split (tidal) and whole on one node (round robin). Prints, as JSON, the
median and p90 time to first token and total time per request, the KV bytes moved per split
request, and whether every split answer equals the whole one.

Not run by CTest (it measures; docs/benchmarks/serving.md quotes a run).
Usage: split_bench.py BIN_DIR PROTO_DIR SOURCE_DIR [REQUESTS]
"""
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from harness import generate_stubs, start  # noqa: E402

BIN_DIR, PROTO_DIR, SOURCE_DIR = sys.argv[1:4]
REQUESTS = int(sys.argv[4]) if len(sys.argv) > 4 else 40
MODEL = os.path.join(SOURCE_DIR, "resources", "models", "tidelane-guide.gguf")
WORK = tempfile.mkdtemp(prefix="tidelane-split-bench-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2, monitor_pb2, monitor_pb2_grpc  # noqa: E402

PROMPT = ("Tell me how Tidelane routes a surge of users across many modest machines, what the "
          "tidal lanes are, and why every answer comes with a receipt. ") * 3


def main():
    token = secrets.token_hex(24)
    token_file = os.path.join(WORK, "token")
    with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(token + "\n")
    procs = []
    try:
        router, fields = start(
            [os.path.join(BIN_DIR, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file,
             "--data-dir", os.path.join(WORK, "data")], "tidelane-router ready")
        procs.append(router)
        for name, lane in (("prefill", "prefill"), ("decode", "decode")):
            p, _ = start([os.path.join(BIN_DIR, "tidelane-worker"), "--router", fields["grpc"],
                          "--auth-token-file", token_file, "--name", name, "--lane", lane,
                          "--engine", "gguf", "--model", MODEL, "--threads", "1",
                          "--identity-file", os.path.join(WORK, name + ".key")],
                         "tidelane-worker ready")
            procs.append(p)
        channel = grpc.insecure_channel(fields["grpc"])
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        monitor = monitor_pb2_grpc.MonitorServiceStub(channel)
        md = [("authorization", "Bearer " + token)]

        def ask(i):
            request = chat_pb2.ChatRequest(
                request_id="bench-" + secrets.token_hex(6),
                messages=[common_pb2.ChatMessage(role="user", content=PROMPT + str(i))],
                sampling=common_pb2.SamplingParams(max_tokens=32))
            t0 = time.perf_counter()
            ttft, tokens, stages = None, [], []
            for e in chat.Chat(request, metadata=md, timeout=120):
                if e.HasField("token"):
                    ttft = ttft if ttft is not None else time.perf_counter() - t0
                    tokens.append(e.token.text)
                if e.HasField("routed"):
                    stages.append(e.routed.stage)
            return ttft * 1000, (time.perf_counter() - t0) * 1000, tokens, stages

        def snapshot():
            for s in monitor.Watch(monitor_pb2.WatchRequest(interval_ms=50), metadata=md):
                return s

        def run(policy):
            monitor.SetPolicy(monitor_pb2.SetPolicyRequest(policy=policy), metadata=md)
            ask(-1)  # warm-up
            return [ask(i) for i in range(REQUESTS)]

        before = snapshot().counters
        split = run("tidal")
        after = snapshot().counters
        whole = run("round-robin")

        def summary(rows):
            ttft = sorted(r[0] for r in rows)
            total = sorted(r[1] for r in rows)
            return {"ttft_ms_p50": round(statistics.median(ttft), 2),
                    "ttft_ms_p90": round(ttft[int(0.9 * (len(ttft) - 1))], 2),
                    "total_ms_p50": round(statistics.median(total), 2),
                    "total_ms_p90": round(total[int(0.9 * (len(total) - 1))], 2)}
        handoffs = after.kv_handoffs - before.kv_handoffs
        print(json.dumps({
            "requests": REQUESTS, "max_tokens": 32, "model": "tidelane-guide.gguf",
            "split": summary(split), "whole": summary(whole),
            "split_requests_split": sum(1 for r in split if common_pb2.STAGE_DECODE in r[3]),
            "kv_handoffs": handoffs,
            "kv_bytes_per_handoff": (after.kv_bytes - before.kv_bytes) // max(1, handoffs),
            "answers_identical": all(s[2] == w[2] for s, w in zip(split, whole)),
        }, indent=2))
        channel.close()
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=15)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
