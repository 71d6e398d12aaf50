"""Shared by the Python tests: start a Tidelane daemon as a child process and read the ready
line it prints on stdout (e.g. "tidelane-router ready grpc=H:P http=H:P")."""
import os
import shutil
import subprocess
import sys

PROTOS = ("common.proto", "chat.proto", "monitor.proto", "worker.proto", "registry.proto")
# gRPC's published server-reflection protocol, which the daemons serve (a copy beside ours).
REFLECTION_PROTO = os.path.join("grpc", "reflection", "v1alpha", "reflection.proto")


def generate_stubs(proto_dir, work):
    """Generates Python messages and gRPC stubs from the project's .proto files with protoc and
    grpc_python_plugin (no Tidelane code) into WORK/gen, and puts them on sys.path."""
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", gen, "--grpc_out", gen,
                    "--plugin=protoc-gen-grpc=" + shutil.which("grpc_python_plugin")]
                   + [os.path.join("tidelane", "v1", p) for p in PROTOS], check=True)
    # Python would look for the reflection stubs inside the installed grpc package (the proto
    # package is grpc.reflection.v1alpha), so they are generated from a copy named
    # reflection_v1alpha.proto: same messages and service name, module reflection_v1alpha_pb2.
    flat = os.path.join(work, "reflection-proto")
    os.makedirs(flat, exist_ok=True)
    shutil.copy(os.path.join(proto_dir, REFLECTION_PROTO),
                os.path.join(flat, "reflection_v1alpha.proto"))
    subprocess.run(["protoc", "-I", flat, "--python_out", gen, "--grpc_out", gen,
                    "--plugin=protoc-gen-grpc=" + shutil.which("grpc_python_plugin"),
                    "reflection_v1alpha.proto"], check=True)
    sys.path.insert(0, gen)


def start(args, ready_prefix):
    """Starts a daemon and returns (process, fields of its ready line as a dict)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith(ready_prefix):
        proc.kill()
        raise RuntimeError(f"{args[0]} did not become ready: {line!r}")
    return proc, dict(kv.split("=", 1) for kv in line.split()[2:])


def start_router_and_worker(bin_dir, work, profile, name, worker_args=(), router_args=()):
    """Writes a fresh token to WORK/token (mode 0600), starts a router on free loopback ports
    (with router_args added) and one worker joined to it (synthetic unless worker_args say
    otherwise). Returns (token, router, worker, fields), where fields are the router's
    ready-line fields (grpc=, http=)."""
    import os
    import secrets
    token = secrets.token_hex(24)
    token_file = os.path.join(work, "token")
    with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(token + "\n")
    router, fields = start(
        [os.path.join(bin_dir, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
         "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file,
         "--data-dir", os.path.join(work, "data"), *router_args], "tidelane-router ready")
    try:
        worker, _ = start(
            [os.path.join(bin_dir, "tidelane-worker"), "--router", fields["grpc"],
             "--auth-token-file", token_file, "--profile", profile, "--name", name,
             *worker_args],
            "tidelane-worker ready")
    except Exception:
        router.kill()
        raise
    return token, router, worker, fields
