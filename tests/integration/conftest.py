"""Integration test harness: a real wharfd in a temporary directory.

Each test gets its own data directory and free loopback ports, starts the
wharfd built by `make test` (the ASan+UBSan build, found through $WHARF_BUILD)
and talks to it with independent clients. Nothing here mocks Wharf.

Readiness is a condition, never a sleep: `WharfServer.start()` waits until
wharfd's status reports every built component running. The status is asked on
the control socket directly (the frames `wharf status` sends): polling through
the command would start two sanitizer-built processes per look, and that was a
large part of the suite's time. test_supervisor checks the command's own
`status --json` against it.
"""
import gc
import json
import shutil
import tempfile
import os
import signal
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("WHARF_BUILD", ROOT / "build-san"))
WHARFD = BUILD / "src" / "supervisor" / "wharfd"
WHARF = BUILD / "src" / "cli" / "wharf"

# Every inbound service of the services table and its listen option.
LISTEN_OPTIONS = {
    "smtp": "smtp_listen", "submission": "submission_listen", "smtps": "smtps_listen",
    "imap": "imap_listen", "imaps": "imaps_listen", "pop3": "pop3_listen",
    "pop3s": "pop3s_listen", "nntp": "nntp_listen", "nntps": "nntps_listen",
    "http": "http_listen", "https": "https_listen", "routing": "routing_listen",
}

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:exitcode=86")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=87")
    return env


def _port_block():
    """The ports this test process may hand out: a block of its own.

    Ports are taken below the kernel's ephemeral range (which client sockets
    and bind(port 0) draw from), so no connect() elsewhere can take one, and
    under pytest-xdist (`make test` runs two processes) each worker gets its
    own slice, so two workers never pick the same port however they race.
    """
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first, last = 10000, max(low, 12000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    n = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (last - first) // max(count, 1)
    start = first + n * size
    # a different start each run, so a rerun does not meet the last run's sockets
    return list(range(start, start + size)), os.getpid() % size


_ports, _next_port = _port_block()


def free_port(host="127.0.0.1"):
    """A port nobody listens on, never handed out before in this test run,
    and never one another test process of the run may hand out."""
    global _next_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(len(_ports)):
        port = _ports[_next_port % len(_ports)]
        _next_port += 1
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise AssertionError("no free port left in this test process's block")


def tls_context():
    """A client TLS context that accepts the test server's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def self_signed(key, cert, cn, san=None, days=2):
    """A self-signed P-256 certificate for cn (and subjectAltName san, e.g.
    "DNS:peer.test,IP:127.0.0.3") into the paths key and cert, made by openssl."""
    args = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", str(days), "-subj", f"/CN={cn}",
            "-keyout", str(key), "-out", str(cert)]
    if san:
        args += ["-addext", f"subjectAltName={san}"]
    subprocess.run(args, check=True, capture_output=True)
    return cert, key


class LineClient:
    """A line-level protocol client over TCP (optionally TLS from the start),
    for what the standard libraries will not send. Every read waits with a
    socket timeout, never a sleep. The first line read is the greeting."""

    def __init__(self, port, tls=False, host="127.0.0.1", timeout=20):
        s = socket.create_connection((host, port), timeout=timeout)
        self.sock = tls_context().wrap_socket(s) if tls else s
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline().decode("utf-8", "replace").rstrip("\r\n")

    def send(self, data: bytes):
        self.sock.sendall(data)

    def wrap_tls(self):
        """Starts TLS on the connection (after the server said go ahead)."""
        self.sock = tls_context().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()  # the file object holds the socket open too
        self.sock.close()


def wait_until(predicate, timeout=20.0, interval=0.02, what="condition", max_interval=None):
    """Polls predicate until it returns a true value; fails with `what` on timeout.
    With max_interval, the pause grows by half each time up to it (for a costly look)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the condition may not be checkable yet
            # Only its text: the exception's traceback would tie this frame, and the
            # caller's with its open client sockets, into a cycle that outlives the test.
            last_exc = repr(exc)
        time.sleep(interval)
        if max_interval is not None:
            interval = min(interval * 1.5, max_interval)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last_exc}" if last_exc else ""))


def group_alive(pgid):
    """Whether a process of group pgid is still alive (a zombie has closed its files)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the command's name
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


class WharfServer:
    """One wharfd under test, with its own directory, config and ports."""

    def __init__(self, base: Path, host="127.0.0.1", extra=None, enable=None):
        self.base = base
        self.host = host
        self.data = base / "var"
        self.conf = base / "wharf.conf"
        self.log_path = base / "wharfd.log"
        self.proc = None
        self.ports = {}
        self.settings = {
            "data_directory": str(self.data),
            "myhostname": "mail.example.test",
            "mydomains": "example.test",
            "workers": "1",
            "shutdown_timeout": "10s",
            # SPF/DKIM/DMARC checks ask DNS: only tests with a local DNS
            # server (dnszone.py) turn them on, nothing touches live DNS
            "mailauth_checks": "no",
        }
        for service, opt in LISTEN_OPTIONS.items():
            if enable is None or service in enable:
                port = free_port(host)
                self.ports[service] = port
                self.settings[opt] = f"{host}:{port}"
            else:
                self.settings[opt] = "off"
        if extra:
            self.settings.update(extra)
        self.write_config()

    def write_config(self):
        self.conf.write_text("".join(f"{k} = {v}\n" for k, v in self.settings.items()))

    # -- process control -------------------------------------------------
    def start(self, wait=True, check=True, pass_fds=()):
        """Starts wharfd -f; pass_fds hands extra open sockets to it (for --check tests)."""
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(WHARFD), "-f", "-c", str(self.conf)],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env=sanitizer_env(), start_new_session=True,
                                     pass_fds=pass_fds)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"wharfd exited with {self.proc.returncode}:\n{self.log()}")
            st = self.status()
            return st if all(c["state"] in ("running", "not built yet", "disabled")
                             for c in st["components"]) else None
        # A status is costly under the sanitizers (~5 ms of the supervisor's CPU,
        # and every component answers it): a start of a few seconds polled every
        # 20 ms spent a quarter of a core on the looks alone.
        return wait_until(ready, timeout, max_interval=0.1,
                          what="wharfd to report every component running")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        self._log.close()
        return rc

    def kill_all(self):
        """Ends wharfd and every component, whatever state they are in, and returns once
        none of them is alive: a component's sockets (its listeners) close only when it
        has died, which may come after wharfd's own end, and a start at once would find
        its ports still taken."""
        if self.proc is not None and self.proc.poll() is None:
            pgid = self.proc.pid
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            wait_until(lambda: not group_alive(pgid), 30, what="every component of wharfd to die")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_sanitizers(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in wharfd log:\n{text}"

    # -- the wharf command ----------------------------------------------
    def wharf(self, *args, input=None, check=True, timeout=60):
        r = subprocess.run([str(WHARF), "-c", str(self.conf), *args], input=input,
                           capture_output=True, env=sanitizer_env(), timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"wharf {' '.join(args)} exited {r.returncode}:\n"
                                 f"{r.stdout.decode(errors='replace')}"
                                 f"{r.stderr.decode(errors='replace')}")
        for marker in SANITIZER_MARKERS:
            assert marker.encode() not in r.stderr, r.stderr.decode(errors="replace")
        return r

    def control(self, cmd):
        """One request on wharfd's control socket (src/ipc/frame.h: a u32 length,
        u16 type, u16 flags header; IPC_CTL_REQUEST 100 answered by IPC_CTL_REPLY 101)."""
        path = self.settings.get("control_socket") or str(self.data / "run" / "control.sock")
        body = json.dumps({"cmd": cmd}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(path)
            s.sendall(struct.pack(">IHH", len(body), 100, 0) + body)
            f = s.makefile("rb")
            head = f.read(8)
            assert len(head) == 8, "wharfd closed the control connection"
            length, kind, _ = struct.unpack(">IHH", head)
            assert kind == 101, f"control reply of type {kind}"
            reply = json.loads(f.read(length))
        if reply.get("ok") is False:
            raise AssertionError(f"wharfd refused {cmd}: {reply.get('error')}")
        return reply

    def status(self):
        """What `wharf status --json` prints (which drops the ports table)."""
        st = self.control("status")
        st.pop("ports", None)
        return st

    def port_map(self):
        return json.loads(self.wharf("ports", "--json").stdout)

    def component(self, name):
        """The status entry of one component."""
        return next(c for c in self.status()["components"] if c["name"] == name)

    def worker_count(self, name, key):
        """A count from the status of a component's workers, summed over them
        (which worker accepted a connection is the kernel's choice)."""
        return sum(p.get("status", {}).get(key, 0) for p in self.component(name)["processes"])


@pytest.fixture
def wharf_factory(request):
    """Makes WharfServer objects; every one is stopped and checked at the end.

    The directory is world-traversable (not pytest's 0700 tmp_path) because the
    components run as the unprivileged wharf user.

    A test module may name the services its servers listen on by default in
    WHARF_SERVICES (a test still passes enable= for more or fewer): every
    component is a sanitizer-built process to start and stop, and starting the
    ones a module never talks to was most of the suite's time.
    """
    default_enable = getattr(request.module, "WHARF_SERVICES", None)
    servers = []
    top = Path(tempfile.mkdtemp(prefix="wharf-test-"))
    top.chmod(0o755)

    def make(name="w", **kw):
        base = top / name
        base.mkdir()
        base.chmod(0o755)
        kw.setdefault("enable", default_enable)
        s = WharfServer(base, **kw)
        servers.append(s)
        return s

    yield make
    # Client objects a test left behind close now, not at some later collection:
    # an open session would hold every stop for shutdown_timeout.
    gc.collect()
    for s in servers:
        s.stop()
        s.kill_all()
        s.check_sanitizers()
    shutil.rmtree(top, ignore_errors=True)


class DataTemplates:
    """Data directories that `wharf` set-up calls made ready, kept to be copied.

    A module whose tests each start from the same accounts (domains, users,
    homes, aliases added with the wharf command before wharfd starts) runs
    those calls once per test process and gives every later test a copy of
    the result: each call is two sanitizer-built processes, and a set-up of
    fifteen of them was most of some tests' time. The copy keeps owners and
    modes (the components run as their own users); nothing in a data
    directory names its path or the server's ports.
    """

    def __init__(self, top: Path):
        self.top = top

    def prepare(self, server, name, setup):
        """Gives `server` (not started yet) the data directory setup(server)
        makes: runs setup the first time `name` is asked for and keeps a copy
        of the result, then hands out copies of that."""
        assert server.proc is None, "a template is copied before wharfd starts"
        saved = self.top / name
        if saved.exists():
            shutil.rmtree(server.data, ignore_errors=True)
            subprocess.run(["cp", "-a", "--", str(saved), str(server.data)], check=True)
        else:
            setup(server)
            subprocess.run(["cp", "-a", "--", str(server.data), str(saved)], check=True)
        return server


@pytest.fixture(scope="module")
def data_templates():
    """A module's DataTemplates, in this test process (each xdist worker makes its own)."""
    top = Path(tempfile.mkdtemp(prefix="wharf-templates-"))
    yield DataTemplates(top)
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def wharf_server(wharf_factory):
    """A started wharfd with every listener on a free loopback port."""
    return wharf_factory().start()
