"""Shared by the Python tests: start a Tidelane daemon as a child process and read the ready
line it prints on stdout (e.g. "tidelane-router ready grpc=H:P http=H:P")."""
import subprocess


def start(args, ready_prefix):
    """Starts a daemon and returns (process, fields of its ready line as a dict)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith(ready_prefix):
        proc.kill()
        raise RuntimeError(f"{args[0]} did not become ready: {line!r}")
    return proc, dict(kv.split("=", 1) for kv in line.split()[2:])
