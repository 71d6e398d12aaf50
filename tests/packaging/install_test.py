#!/usr/bin/python3
"""The .deb packages, end to end, on this machine.

Builds `tidelane` and `tidelane-server` with cpack from an already-built tree, checks their
control fields and contents, validates the desktop entry, AppStream metainfo and systemd
units, installs both with dpkg, starts the router and worker as their units would (through
systemd where it runs; otherwise each unit's ExecStart with its EnvironmentFile, user and
StateDirectory, as systemd would), chats through the OpenAI-compatible HTTP API with the
token made at install, then purges both and checks that nothing is left: files, /etc/tidelane,
/var/lib/tidelane, the tidelane user and group, the units' enablement links.

Needs root (or passwordless sudo): exits 77 (CTest's skip code) otherwise.
Usage: install_test.py --build-dir BUILD [--cpack CPACK] [--keep-debs DIR]
"""
import argparse
import grp
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

SKIP = 77
PACKAGES = ("tidelane", "tidelane-server")
UNITS = ("tidelane-router", "tidelane-worker")
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
CONFDIR = "/etc/tidelane"
STATEDIR = "/var/lib/tidelane"
# Left while our packages are installed, so that a run killed before its clean-up (CTest's
# timeout kills outright) is cleaned up by the next run instead of blocking it.
MARKER = "/var/tmp/tidelane-packaging-test.installed"
BUDGET_S = 240  # CTest's TIMEOUT is 300: leave time to clean up before being killed

START = time.monotonic()


class Failure(Exception):
    pass


def remaining():
    return max(5.0, BUDGET_S - (time.monotonic() - START))


def log(msg):
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


def run(cmd, check=True, timeout=None, cleanup=False, **kw):
    # Clean-up steps get their own time even when the test's budget is spent.
    timeout = timeout if cleanup else min(timeout or remaining(), remaining())
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise Failure(f"`{shlex.join(cmd)}` exited {res.returncode}:\n{res.stdout}{res.stderr}")
    return res


# A signal that arrives while dpkg runs is acted on once dpkg is done: a dpkg killed half-way
# leaves the package database in a state only a person should repair.
_dpkg_running = False
_pending_signal = None


def on_signal(signum, _frame):
    global _pending_signal
    if _dpkg_running:
        _pending_signal = signum
        return
    raise Failure(f"interrupted by signal {signum}")


def run_dpkg(args, check=True, timeout=None, cleanup=False):
    global _dpkg_running
    _dpkg_running = True
    try:
        return run(args, check=check, timeout=timeout, cleanup=cleanup,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    finally:
        _dpkg_running = False
        if _pending_signal is not None:
            raise Failure(f"interrupted by signal {_pending_signal}")


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def installed(pkg):
    res = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], check=False)
    return res.returncode == 0 and res.stdout.strip() not in ("", "not-installed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def children_of(ppid):
    """{pid: argv} of the processes whose parent is ppid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != ppid:
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, IndexError, ValueError):
            continue
    return found


def systemd_running():
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


# --- unit files, read the way systemd reads them -------------------------------------------

def parse_unit(path):
    sections, current = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def parse_env_file(path):
    env = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            key, sep, value = line.partition("=")
            expect(sep, f"{path}: not KEY=VALUE: {line!r}")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[key.strip()] = value
    return env


def expand_exec(line, env):
    """systemd's ExecStart= expansion: %-specifiers, ${VAR} as one word, $VAR split on spaces."""
    line = line.replace("%%", "\0").replace("%H", socket.gethostname()).replace("\0", "%")
    expect("%" not in line, f"ExecStart uses a specifier this test does not emulate: {line}")
    words = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:  # a lone $VAR becomes zero or more words
            words += env.get(m.group(1), "").split()
            continue
        words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda v: env.get(v.group(1), ""), word))
    return words


class UnitProcess:
    """One unit's ExecStart run as systemd would run it, for machines without systemd."""

    def __init__(self, name, unit_path, work):
        self.name = name
        service = parse_unit(unit_path)["Service"]
        self.user = service["User"][-1]
        self.group = service.get("Group", [self.user])[-1]
        env = {}
        for f in service.get("EnvironmentFile", []):
            env.update(parse_env_file(f.lstrip("-")))
        exec_start = service["ExecStart"]
        expect(len(exec_start) == 1, f"{unit_path}: one ExecStart expected")
        self.argv = expand_exec(exec_start[0], env)
        self.umask = int(service.get("UMask", ["0022"])[-1], 8)
        pw = pwd.getpwnam(self.user)
        self.env = {**env, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": pw.pw_dir,
                    "USER": self.user, "LOGNAME": self.user, "SHELL": pw.pw_shell, "LANG": "C.UTF-8"}
        # StateDirectory=: systemd creates /var/lib/NAME owned by the unit's user.
        for state in service.get("StateDirectory", []):
            mode = int(service.get("StateDirectoryMode", ["0755"])[-1], 8)
            for d in state.split():
                path = os.path.join("/var/lib", d)
                os.makedirs(path, exist_ok=True)
                os.chown(path, pw.pw_uid, grp.getgrnam(self.group).gr_gid)
                os.chmod(path, mode)
        self.out_path = os.path.join(work, f"{name}.stdout")
        self.err_path = os.path.join(work, f"{name}.stderr")
        self.proc = None

    def start(self):
        log(f"starting {self.name} as {self.user}: {shlex.join(self.argv)}")
        # setpriv switches user like systemd's User=/Group=; `timeout` ends the daemon even if
        # this test is killed before its clean-up.
        cmd = ["timeout", "-k", "10", f"{int(remaining()) + 20}",
               "setpriv", f"--reuid={self.user}", f"--regid={self.group}", "--init-groups",
               "--no-new-privs", "--"] + self.argv
        umask = self.umask
        self.proc = subprocess.Popen(cmd, stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"),
                                     env=self.env, cwd="/", start_new_session=True,
                                     preexec_fn=lambda: os.umask(umask))

    def daemon_pid(self):
        """The daemon's own pid (the grandchild under timeout and setpriv's exec)."""
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self.proc.pid:  # ppid
                        return int(entry)
                except (OSError, IndexError, ValueError):
                    continue
        return None

    def output(self):
        text = ""
        for p in (self.out_path, self.err_path):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    text += f"--- {os.path.basename(p)}\n{f.read()[-4000:]}"
        return text

    def stop(self, timeout=50):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        # What `systemctl stop` does: SIGTERM to the daemon (not to `timeout`, which would send
        # it a second one and report the signal instead of the daemon's exit status).
        pid = self.daemon_pid()
        if pid is None:
            raise Failure(f"{self.name}: its daemon process is gone\n{self.output()}")
        os.kill(pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise Failure(f"{self.name} did not stop within {timeout} s of SIGTERM\n{self.output()}")


# --- HTTP ---------------------------------------------------------------------------------

def http_call(port, method, path, token=None, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        res = conn.getresponse()
        return res.status, res.read().decode(errors="replace")
    finally:
        conn.close()


# --- the test -----------------------------------------------------------------------------

class InstallTest:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="tidelane-pkg-test-")
        os.chmod(self.work, 0o755)
        self.processes = []
        self.debs = {}
        self.we_installed = False
        self.files = {}  # package -> paths it installed (dpkg -L)
        self.app_children = []

    # 1. build the packages
    def build_debs(self):
        config = os.path.join(self.args.build_dir, "CPackConfig.cmake")
        expect(os.path.isfile(config), f"{config} not found: configure the build tree first")
        out = os.path.join(self.work, "debs")
        log(f"cpack -G DEB from {self.args.build_dir}")
        res = run([self.args.cpack, "-G", "DEB", "--config", config, "-B", out], check=False, timeout=150)
        expect(res.returncode == 0, f"cpack failed (is the tree built? `ninja -C {self.args.build_dir}`):\n"
                                    f"{res.stdout[-6000:]}{res.stderr[-6000:]}")
        for name in os.listdir(out):
            if name.endswith(".deb"):
                pkg = run(["dpkg-deb", "-f", os.path.join(out, name), "Package"]).stdout.strip()
                self.debs[pkg] = os.path.join(out, name)
        expect(set(self.debs) == set(PACKAGES), f"cpack made {sorted(self.debs)}, expected {list(PACKAGES)}")
        if self.args.keep_debs:
            os.makedirs(self.args.keep_debs, exist_ok=True)
            for path in self.debs.values():
                shutil.copy2(path, self.args.keep_debs)

    # 2. control fields and contents
    def check_debs(self):
        fields = {}
        for pkg, path in self.debs.items():
            info = run(["dpkg-deb", "-I", path]).stdout
            log(f"{pkg}: {os.path.basename(path)}, {os.path.getsize(path) // 1024} KiB")
            fields[pkg] = {k: run(["dpkg-deb", "-f", path, k]).stdout.strip()
                           for k in ("Version", "Depends", "Section", "Maintainer", "Description", "Architecture")}
            for k in ("Version", "Depends", "Section", "Maintainer", "Description"):
                expect(fields[pkg][k], f"{pkg}: empty {k} field\n{info}")
            expect(fields[pkg]["Architecture"] == run(["dpkg", "--print-architecture"]).stdout.strip(),
                   f"{pkg}: Architecture {fields[pkg]['Architecture']}")
        version = fields["tidelane"]["Version"]
        app_deps = fields["tidelane"]["Depends"]
        for dep in ("libc6", "libstdc++6", "libqt6widgets6", "libqt6sql6", "libqt6sql6-sqlite",
                    "libgrpc++1.51", "libprotobuf32", "libsqlite3-0"):
            expect(re.search(rf"(^|[ ,]){re.escape(dep)}([ ,(]|$)", app_deps),
                   f"tidelane: Depends lacks {dep} (shlibdeps?): {app_deps}")
        server_deps = fields["tidelane-server"]["Depends"]
        expect(f"tidelane (= {version})" in server_deps,
               f"tidelane-server must depend on tidelane (= {version}): {server_deps}")
        for dep in ("adduser", "init-system-helpers", "libc6"):
            expect(dep in server_deps, f"tidelane-server: Depends lacks {dep}: {server_deps}")
        expect("libqt6" not in server_deps, f"tidelane-server's own binaries need no Qt: {server_deps}")

        def contents(pkg):
            listing = run(["dpkg-deb", "-c", self.debs[pkg]]).stdout.splitlines()
            return {line.split()[-1].lstrip(".") if "->" not in line else line.split()[-3].lstrip("."): line
                    for line in listing}

        app = contents("tidelane")
        for path in ("/usr/bin/tidelane", "/usr/bin/tidelane-router", "/usr/bin/tidelane-worker",
                     "/usr/share/tidelane/models/tidelane-guide.gguf",
                     "/usr/share/applications/io.tidelane.Tidelane.desktop",
                     "/usr/share/icons/hicolor/scalable/apps/io.tidelane.Tidelane.svg",
                     "/usr/share/metainfo/io.tidelane.Tidelane.metainfo.xml"):
            expect(path in app, f"tidelane lacks {path}; it has:\n" + "\n".join(sorted(app)))
        if shutil.which("rsvg-convert"):
            expect("/usr/share/icons/hicolor/256x256/apps/io.tidelane.Tidelane.png" in app,
                   "tidelane lacks the 256x256 PNG icon although rsvg-convert is installed")
        server = contents("tidelane-server")
        for path in ("/usr/lib/systemd/system/tidelane-router.service",
                     "/usr/lib/systemd/system/tidelane-worker.service",
                     "/etc/tidelane/tidelane.env", "/usr/bin/tidelane-surge", "/usr/bin/tidelane-generate"):
            expect(path in server, f"tidelane-server lacks {path}; it has:\n" + "\n".join(sorted(server)))
        overlap = {p for p in set(app) & set(server) if not p.endswith("/")}
        expect(not overlap, f"both packages ship {sorted(overlap)}")
        for line in list(app.values()) + list(server.values()):
            expect(" root/root " in line, f"file not owned by root in the package: {line}")
            expect(not re.match(r"^[-d].......w", line), f"world-writable in the package: {line}")
        # Maintainer scripts and the conffile.
        info = run(["dpkg-deb", "-I", self.debs["tidelane-server"]]).stdout
        for script in ("postinst", "prerm", "postrm", "conffiles"):
            expect(re.search(rf"\b{script}\b", info), f"tidelane-server has no {script}:\n{info}")
        ctrl = os.path.join(self.work, "server-control")
        run(["dpkg-deb", "-e", self.debs["tidelane-server"], ctrl])
        with open(os.path.join(ctrl, "conffiles")) as f:
            expect(f.read().split() == ["/etc/tidelane/tidelane.env"], "conffiles should list tidelane.env")
        for script in ("postinst", "prerm", "postrm"):
            expect(os.stat(os.path.join(ctrl, script)).st_mode & 0o111, f"{script} is not executable")
            run(["sh", "-n", os.path.join(ctrl, script)])
        self.version = version

    # 3. desktop entry, AppStream metainfo, units
    def validate_metadata(self):
        root = os.path.join(self.work, "app-root")
        run(["dpkg-deb", "-x", self.debs["tidelane"], root])
        desktop = os.path.join(root, "usr/share/applications/io.tidelane.Tidelane.desktop")
        metainfo = os.path.join(root, "usr/share/metainfo/io.tidelane.Tidelane.metainfo.xml")
        for tool, pkg in (("desktop-file-validate", "desktop-file-utils"), ("appstreamcli", "appstream")):
            expect(shutil.which(tool), f"{tool} not found: install {pkg} (scripts/bootstrap does)")
        res = run(["desktop-file-validate", desktop], check=False)
        expect(res.returncode == 0 and "error" not in res.stdout.lower(),
               f"desktop-file-validate: {res.stdout}{res.stderr}")
        res = run(["appstreamcli", "validate", "--no-net", "--explain", metainfo], check=False)
        expect(res.returncode == 0, f"appstreamcli validate --no-net failed:\n{res.stdout}{res.stderr}")
        with open(metainfo) as f:
            text = f.read()
        expect(f'release version="{self.version.rsplit("-", 1)[0]}"' in text,
               "metainfo's release is not the package version")
        log("desktop entry and AppStream metainfo validate")

    def verify_units(self):
        if not shutil.which("systemd-analyze"):
            log("systemd-analyze not installed: units not verified")
            return
        for unit in UNITS:
            path = self.unit_path(unit)
            res = run(["systemd-analyze", "verify", path], check=False)
            # Complaints about other units on this machine are not ours to fail on.
            ours = [l for l in (res.stdout + res.stderr).splitlines() if "tidelane" in l]
            expect(res.returncode == 0 or not ours, f"systemd-analyze verify {path}:\n{res.stdout}{res.stderr}")
            expect(not ours, f"systemd-analyze verify {path}:\n" + "\n".join(ours))
        log("systemd-analyze verify: no complaints about the tidelane units")
        res = run(["systemd-analyze", "security", "--offline=yes", "--threshold=50",
                   *[self.unit_path(u) for u in UNITS]], check=False)
        log(f"systemd-analyze security --offline: rc={res.returncode} "
            + " ".join(l.strip() for l in res.stdout.splitlines() if "Overall exposure" in l))
        expect(res.returncode == 0, f"units' exposure over 5.0:\n{res.stdout[-3000:]}{res.stderr[-2000:]}")

    @staticmethod
    def unit_path(unit):
        for d in UNIT_DIRS:
            p = os.path.join(d, unit + ".service")
            if os.path.isfile(p):
                return p
        raise Failure(f"{unit}.service is not installed in {UNIT_DIRS}")

    # 4. install
    def preflight(self):
        leftovers = [p for p in PACKAGES if installed(p)]
        if leftovers and os.path.exists(MARKER):
            log(f"purging {leftovers} left installed by an earlier run of this test that was killed")
            run_dpkg(["dpkg", "--purge", *reversed(PACKAGES)], check=False)
            leftovers = [p for p in PACKAGES if installed(p)]
        expect(not leftovers,
               f"{leftovers} already installed on this machine and not by this test: it would remove "
               f"them. Purge them first: dpkg --purge tidelane-server tidelane")
        expect(not user_exists("tidelane") and not os.path.exists(STATEDIR) and not os.path.exists(CONFDIR),
               "a tidelane user, /var/lib/tidelane or /etc/tidelane exists already; this test needs a "
               "machine without them")

    def install(self):
        with open(MARKER, "w") as f:
            f.write(f"tidelane packaging test, pid {os.getpid()}\n")
        self.we_installed = True
        log("dpkg -i tidelane tidelane-server")
        run_dpkg(["dpkg", "-i", self.debs["tidelane"], self.debs["tidelane-server"]])
        for pkg in PACKAGES:
            expect(installed(pkg), f"{pkg} is not installed after dpkg -i")
            self.files[pkg] = run(["dpkg", "-L", pkg]).stdout.split()
        pw = pwd.getpwnam("tidelane")
        expect(pw.pw_uid < 1000, f"tidelane is not a system user (uid {pw.pw_uid})")
        expect(pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"), f"tidelane's shell is {pw.pw_shell}")
        token = os.path.join(CONFDIR, "token")
        st = os.stat(token)
        expect(stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == pw.pw_uid,
               f"{token}: mode {oct(stat.S_IMODE(st.st_mode))} uid {st.st_uid}, expected 0600 tidelane")
        with open(token) as f:
            self.token = f.read().strip()
        expect(re.fullmatch(r"[0-9a-f]{64}", self.token), "the install-time token is not 32 random bytes in hex")
        st = os.stat(STATEDIR)
        expect(stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == pw.pw_uid,
               f"{STATEDIR}: mode {oct(stat.S_IMODE(st.st_mode))} uid {st.st_uid}")
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "tidelane-server"]).stdout
        expect("/etc/tidelane/tidelane.env" in conffiles, f"dpkg lists no conffile: {conffiles!r}")

    # 5. start, chat, stop
    def configure_ports(self):
        # As an administrator would: unique ports in the conffile, so parallel tests never clash.
        self.grpc_port, self.http_port = free_port(), free_port()
        env_path = os.path.join(CONFDIR, "tidelane.env")
        with open(env_path) as f:
            text = f.read()
        for key, value in (("TIDELANE_GRPC_LISTEN", f"127.0.0.1:{self.grpc_port}"),
                           ("TIDELANE_HTTP_LISTEN", f"127.0.0.1:{self.http_port}"),
                           ("TIDELANE_ROUTER", f"127.0.0.1:{self.grpc_port}"),
                           ("TIDELANE_WORKER_ARGS", "--threads 2")):
            text, n = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
            expect(n == 1, f"{env_path} has no {key}= line")
        with open(env_path, "w") as f:
            f.write(text)

    def reinstall_keeps_settings(self):
        """An upgrade (here: the same version again) keeps the edited conffile and the token."""
        env_path = os.path.join(CONFDIR, "tidelane.env")
        with open(env_path) as f:
            before = f.read()
        log("dpkg -i tidelane-server again: the edited settings and the token must stay")
        run_dpkg(["dpkg", "-i", "--force-confdef", "--force-confold", self.debs["tidelane-server"]])
        with open(env_path) as f:
            expect(f.read() == before, f"reinstalling replaced the edited {env_path}")
        with open(os.path.join(CONFDIR, "token")) as f:
            expect(f.read().strip() == self.token, "reinstalling changed the token")

    def start_services(self):
        if systemd_running():
            log("systemd runs here: restarting the installed units")
            run(["systemctl", "daemon-reload"])
            run(["systemctl", "restart", *(u + ".service" for u in UNITS)])
            return
        log("no systemd here: running the units' ExecStart lines as they would run")
        for unit in UNITS:
            p = UnitProcess(unit, self.unit_path(unit), self.work)
            self.processes.append(p)
            p.start()

    def diagnostics(self):
        if systemd_running():
            return run(["journalctl", "--no-pager", "-n", "60", "-u", "tidelane-router", "-u",
                        "tidelane-worker"], check=False).stdout
        return "\n".join(p.output() for p in self.processes)

    def wait_ready(self, deadline_s=90):
        deadline = time.monotonic() + min(deadline_s, remaining())
        last = ""
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.proc.poll() is not None:
                    raise Failure(f"{p.name} exited with {p.proc.returncode}\n{self.diagnostics()}")
            try:
                status, body = http_call(self.http_port, "GET", "/v1/models", self.token, timeout=5)
                last = f"{status} {body[:300]}"
                if status == 200:
                    models = [m["id"] for m in json.loads(body).get("data", [])]
                    if models:
                        log(f"router up on :{self.http_port}, worker serves {models}")
                        return models[0]
            except (OSError, ValueError) as e:
                last = repr(e)
            time.sleep(0.2)
        raise Failure(f"no worker registered within {deadline_s} s (last /v1/models: {last})\n{self.diagnostics()}")

    def chat(self, model):
        status, body = http_call(self.http_port, "POST", "/v1/chat/completions", None,
                                 {"model": model, "messages": [{"role": "user", "content": "hi"}]})
        expect(status == 401, f"a request without the token got {status}, expected 401: {body[:300]}")
        question = "What is Tidelane?"
        status, body = http_call(self.http_port, "POST", "/v1/chat/completions", self.token,
                                 {"model": model, "max_tokens": 96, "temperature": 0,
                                  "messages": [{"role": "user", "content": question}]}, timeout=remaining())
        expect(status == 200, f"chat completion: HTTP {status}: {body[:1000]}\n{self.diagnostics()}")
        answer = json.loads(body)["choices"][0]["message"]["content"]
        log(f"Q: {question}\nA: {answer}")
        expect(answer.strip(), f"empty answer: {body[:1000]}")
        expect("tidelane" in answer.lower(), f"the guide model's answer does not mention Tidelane: {answer!r}")
        # The router keeps its ledger (and keys) in the state directory: all of it owned by
        # the service user and closed to others.
        ledger_dir = os.path.join(STATEDIR, "router")
        expect(os.path.isdir(ledger_dir) and os.listdir(ledger_dir), f"{ledger_dir} is empty")
        uid = pwd.getpwnam("tidelane").pw_uid
        for top, dirs, files in os.walk(STATEDIR):
            for entry in dirs + files:
                st = os.lstat(os.path.join(top, entry))
                expect(st.st_uid == uid and not st.st_mode & 0o007,
                       f"{top}/{entry}: uid {st.st_uid} mode {oct(st.st_mode)}, expected tidelane's, "
                       "closed to others")
        for p in self.processes:
            pid = p.daemon_pid()
            expect(pid, f"{p.name}'s process not found")
            with open(f"/proc/{pid}/status") as f:
                uids = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
            expect(int(uids) == uid, f"{p.name} runs as uid {uids}, not tidelane")

    def installed_app_starts_its_services(self):
        """The installed app finds its router, worker and bundled model in the installed layout."""
        home = os.path.join(self.work, "app-home")
        data = os.path.join(home, "data")
        os.makedirs(home)
        runtime = os.path.join(self.work, "app-runtime")
        os.makedirs(runtime, mode=0o700)
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "QT_QPA_PLATFORM": "offscreen",
               "XDG_RUNTIME_DIR": runtime, "TMPDIR": runtime, "LANG": "C.UTF-8"}
        log("starting the installed app (offscreen) on its own bundled router and worker")
        app = subprocess.Popen(["timeout", "-k", "5", f"{int(remaining()) + 10}", "/usr/bin/tidelane",
                                "--data-dir", data, "--history-db", os.path.join(home, "history.sqlite")],
                               stdout=open(os.path.join(self.work, "app.out"), "w"), stderr=subprocess.STDOUT,
                               env=env, cwd=home, start_new_session=True)
        self.app = app
        worker_log = os.path.join(data, "logs", "worker.log")
        deadline = time.monotonic() + min(60, remaining())
        try:
            while time.monotonic() < deadline:
                expect(app.poll() is None, f"the installed app exited with {app.returncode}:\n"
                       + open(os.path.join(self.work, "app.out"), errors="replace").read()[-3000:])
                text = open(worker_log, errors="replace").read() if os.path.exists(worker_log) else ""
                # The ready line goes to the app (stdout); the log (stderr) says it joined.
                if "joined router" in text and len(children_of(next(iter(children_of(app.pid)), -1))) == 2:
                    break
                time.sleep(0.2)
            else:
                logs = ""
                for name in ("app.out", "app-home/data/logs/router.log", "app-home/data/logs/worker.log"):
                    path = os.path.join(self.work, name)
                    body = open(path, errors="replace").read()[-3000:] if os.path.exists(path) else "(none)"
                    logs += f"--- {name}\n{body}\n"
                raise Failure(f"the installed app's bundled worker was not ready within 60 s\n{logs}"
                              f"app's children: {children_of(next(iter(children_of(app.pid)), -1))}")
            app_pid = next(iter(children_of(app.pid)), None)  # /usr/bin/tidelane under timeout
            kids = children_of(app_pid) if app_pid else {}
            self.app_children = list(kids)
            progs = sorted(argv[0] for argv in kids.values())
            expect(progs == ["/usr/bin/tidelane-router", "/usr/bin/tidelane-worker"],
                   f"the installed app's children are {progs}")
            worker_argv = next(a for a in kids.values() if a[0].endswith("tidelane-worker"))
            expect("/usr/share/tidelane/models/tidelane-guide.gguf" in worker_argv,
                   f"the installed app's worker does not run the bundled model: {worker_argv}")
            log("the installed app started /usr/bin/tidelane-router and -worker on the bundled model")
        finally:
            if app.poll() is None:
                os.killpg(app.pid, signal.SIGTERM)
                try:
                    app.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(app.pid, signal.SIGKILL)
                    app.wait(timeout=10)
            # Its router and worker got the SIGTERM too; the worker drains before it exits.
            deadline = time.monotonic() + 40
            while any(os.path.exists(f"/proc/{pid}") for pid in self.app_children):
                if time.monotonic() > deadline:
                    for pid in self.app_children:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                    raise Failure(f"the app's router and worker outlived it by 40 s: {self.app_children}")
                time.sleep(0.1)

    def stop_services(self):
        if systemd_running():
            run(["systemctl", "stop", *(u + ".service" for u in reversed(UNITS))])
            return
        for p in reversed(self.processes):
            rc = p.stop()
            expect(rc == 0, f"{p.name} exited {rc} on SIGTERM\n{p.output()}")
        log("router and worker stopped cleanly on SIGTERM")

    # 6. purge
    def purge(self):
        log("dpkg --purge tidelane-server tidelane")
        run_dpkg(["dpkg", "--purge", "tidelane-server", "tidelane"])
        for pkg in PACKAGES:
            expect(not installed(pkg), f"{pkg} is still installed after purge")
        left = [p for pkg in PACKAGES for p in self.files.get(pkg, [])
                if os.path.isfile(p) or os.path.islink(p) or
                (os.path.isdir(p) and "tidelane" in os.path.basename(p))]
        expect(not left, f"left after purge: {left}")
        for path in (CONFDIR, STATEDIR, "/etc/systemd/system/multi-user.target.wants/tidelane-router.service",
                     "/etc/systemd/system/multi-user.target.wants/tidelane-worker.service",
                     "/etc/systemd/system/tidelane-router.service", "/etc/systemd/system/tidelane-worker.service",
                     "/var/lib/systemd/deb-systemd-helper-enabled/tidelane-router.service.dsh-also",
                     "/var/lib/systemd/deb-systemd-helper-enabled/tidelane-worker.service.dsh-also"):
            expect(not os.path.lexists(path), f"{path} is left after purge")
        expect(not user_exists("tidelane"), "the tidelane user is left after purge")
        expect(not group_exists("tidelane"), "the tidelane group is left after purge")
        self.we_installed = False
        os.unlink(MARKER)
        log("purged: no files, user, group, /etc/tidelane or /var/lib/tidelane left")

    def cleanup(self):
        global _pending_signal
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # the clean-up itself must finish
        _pending_signal = None
        app = getattr(self, "app", None)
        if app is not None and app.poll() is None:
            try:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for p in self.processes:
            try:
                if p.proc and p.proc.poll() is None:
                    os.killpg(p.proc.pid, signal.SIGKILL)
                    p.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.we_installed:
            log("clean-up: purging the packages this test installed")
            if systemd_running():
                run(["systemctl", "stop", *(u + ".service" for u in UNITS)], check=False, timeout=60,
                    cleanup=True)
            res = run_dpkg(["dpkg", "--purge", "tidelane-server", "tidelane"], check=False, timeout=60,
                           cleanup=True)
            if res.returncode != 0:
                print(f"clean-up: dpkg --purge failed:\n{res.stdout}{res.stderr}", file=sys.stderr)
            elif os.path.exists(MARKER):
                os.unlink(MARKER)
        shutil.rmtree(self.work, ignore_errors=True)

    def main(self):
        self.preflight()
        self.build_debs()
        self.check_debs()
        self.validate_metadata()
        self.install()
        self.verify_units()
        self.configure_ports()
        self.reinstall_keeps_settings()
        self.start_services()
        model = self.wait_ready()
        self.chat(model)
        self.installed_app_starts_its_services()
        self.stop_services()
        self.purge()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--cpack", default=shutil.which("cpack") or "cpack")
    parser.add_argument("--keep-debs", help="also copy the built .debs here")
    args = parser.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)

    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            os.execvp("sudo", ["sudo", "-n", "--", sys.executable, os.path.abspath(__file__), *sys.argv[1:]])
        print("SKIP: installing packages needs root or passwordless sudo; run as root to test them",
              flush=True)
        return SKIP
    for tool in ("dpkg", "dpkg-deb", "setpriv", "timeout"):
        if not shutil.which(tool):
            print(f"FAIL: {tool} not found", flush=True)
            return 1

    test = InstallTest(args)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        test.main()
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    finally:
        test.cleanup()
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
