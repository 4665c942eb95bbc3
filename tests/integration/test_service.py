"""wharfd as a service: systemd's notify protocol, -D, the daemon's pid file and
the process titles an admin sees in ps and top.

systemd is not running here: the test plays its part of sd_notify(3), a unix
datagram socket named by NOTIFY_SOCKET, and reads what wharfd tells it.
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import WHARFD, LineClient, sanitizer_env, wait_until


class Notify:
    """The systemd end of NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(30)

    def next(self):
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def until(self, key, value=None):
        """Messages up to and including the first with key (=value); fails after 30 s."""
        seen = []
        while True:
            m = self.next()
            seen.append(m)
            if key in m and (value is None or m[key] == value):
                return seen


def start_notified(server, watchdog_usec=None):
    notify = Notify(server.base / "notify.sock")
    env = dict(sanitizer_env(), NOTIFY_SOCKET=notify.path)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    server._log = open(server.log_path, "ab")
    server.proc = subprocess.Popen([str(WHARFD), "-D", "-c", str(server.conf)],
                                   stdout=server._log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    return notify


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    return out


def title(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[0].decode()


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_sd_notify_ready_reload_watchdog_stopping(wharf_factory):
    server = wharf_factory(enable={"smtp"})
    notify = start_notified(server, watchdog_usec=400000)
    ready = notify.until("READY", "1")[-1]
    assert ready["MAINPID"] == str(server.proc.pid)
    generation = int(re.match(r"running generation (\d+), \d+ processes", ready["STATUS"])[1])
    assert server.proc.poll() is None  # -D: did not detach
    server.wait_ready()
    # the watchdog is pinged at half of WATCHDOG_USEC
    notify.until("WATCHDOG", "1")
    notify.until("WATCHDOG", "1")
    # no component inherits the socket
    for child in children(server.proc.pid):
        with open(f"/proc/{child}/environ", "rb") as f:
            assert b"NOTIFY_SOCKET=" not in f.read()

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    server.proc.send_signal(signal.SIGHUP)
    seen = notify.until("READY", "1")
    reloading = next(m for m in seen if m.get("RELOADING") == "1")
    assert int(reloading["MONOTONIC_USEC"]) >= before
    assert seen[-1]["STATUS"].startswith(f"running generation {generation + 1},")

    # a reload that fails is still followed by READY=1: systemd must not hang in "reloading"
    server.conf.write_text(server.conf.read_text() + "no_such_option = 1\n")
    server.proc.send_signal(signal.SIGHUP)
    seen = notify.until("READY", "1")
    assert any(m.get("RELOADING") == "1" for m in seen)
    assert "reload failed" in seen[-1]["STATUS"]

    server.proc.send_signal(signal.SIGTERM)
    stopping = notify.until("STOPPING", "1")[-1]
    assert "stopping" in stopping["STATUS"]
    assert server.proc.wait(30) == 0


def test_daemon_writes_pid_file_before_returning(wharf_factory):
    server = wharf_factory(enable={"smtp"})
    r = subprocess.run([str(WHARFD), "-c", str(server.conf)], capture_output=True,
                       env=sanitizer_env(), timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    # the command has returned: the daemon's pid file is there now, not "soon"
    pid = int((server.data / "run" / "wharfd.pid").read_text())
    try:
        assert title(pid) == "wharfd: supervisor"
        assert os.getsid(pid) != os.getsid(0)  # its own session, detached from ours
        assert server.status()["pid"] == pid
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="the daemon to exit")
    assert not (server.data / "run" / "wharfd.pid").exists()


def test_process_titles_name_each_process_and_count_connections(wharf_factory):
    server = wharf_factory(enable={"smtp", "imap"}, extra={"workers": "2"}).start()
    pid = server.proc.pid
    assert title(pid) == "wharfd: supervisor" and comm(pid) == "wharfd"

    def titles():
        return {title(c): comm(c) for c in children(pid)}
    t = wait_until(lambda: titles() if len(titles()) >= 6 else None, what="every process")
    for want, short in (("wharf: smtp worker 1/2", "wharf-smtp"),
                        ("wharf: smtp worker 2/2", "wharf-smtp"),
                        ("wharf: imap worker 1/2", "wharf-imap"),
                        ("wharf: imap worker 2/2", "wharf-imap"),
                        ("wharf: mta", "wharf-mta"), ("wharf: auth", "wharf-auth")):
        assert t.get(want) == short, t

    # open connections show in the worker that holds them
    clients = [LineClient(server.ports["imap"]) for _ in range(3)]
    try:
        def counted():
            counts = [title(c) for c in children(pid) if title(c).startswith("wharf: imap")]
            total = 0
            for text in counts:
                if "[" in text:
                    total += int(text.split("[")[1].split()[0])
            return counts if total == 3 else None
        counts = wait_until(counted, what="3 connections in the imap workers' titles")
        assert all(c.endswith(("conn]", "conns]")) for c in counts if "[" in c), counts
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: all("[0 conns]" in title(c) or "[" not in title(c)
                           for c in children(pid) if title(c).startswith("wharf: imap")),
               what="the titles to show the connections closed")
