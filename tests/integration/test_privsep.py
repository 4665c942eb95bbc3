"""Privilege separation: the network workers never reach the password hashes,
and they run confined (seccomp, Landlock).

Every test starts a real wharfd (the sanitizer build). Run as root, the
components get their users (wharf_user for the workers, auth_user for the
auth process); as another user the file-mode checks are skipped, since every
process is then that one user, but the sandbox is checked all the same.
"""
import os
import smtplib
import socket
import stat
import struct
import subprocess
import sys

import pytest

from conftest import wait_until

IPC_EVENT = 5
ROOT = os.geteuid() == 0


def status_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def worker_pids(server, name):
    return [p["pid"] for p in server.component(name)["processes"] if p["pid"] > 0]


def can_open_as(uid, gid, path):
    """Tries to open path for reading in a child that became uid:gid first."""
    code = ("import os, sys\n"
            "os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))\n"
            "try:\n    open(sys.argv[3], 'rb').close()\nexcept PermissionError:\n"
            "    sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code, str(uid), str(gid), str(path)],
                       capture_output=True, timeout=30)
    assert r.returncode in (0, 3), r.stderr.decode(errors="replace")
    return r.returncode == 0


EVENT_TEST_HOOK = 5  # src/ipc/event.h


def send_test_hook(server, payload):
    """Publishes the test-only event ("COMPONENT ACTION") on the bus, through
    wharfd's control socket."""
    def field(s):
        b = s.encode()
        return struct.pack(">I", len(b)) + b
    component, action = payload.split(" ", 1)
    body = struct.pack(">Q", EVENT_TEST_HOOK) + field(component) + field(action)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(server.data / "run" / "control.sock"))
        s.sendall(struct.pack(">IHH", len(body), IPC_EVENT, 0) + body)


def start(wharf_factory, **extra):
    settings = {"test_hooks": "yes"}
    settings.update(extra)
    server = wharf_factory(extra=settings).start()
    server.wharf("user", "add", "alice@example.test", "--password-stdin", input=b"right horse\n")
    return server


def test_credentials_are_the_auth_users_alone(wharf_factory):
    server = start(wharf_factory)
    cred = server.data / "auth" / "credentials.db"
    st = os.stat(cred)
    assert stat.S_IMODE(st.st_mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(server.data / "auth").st_mode) == 0o700
    # directory.db has no hash left in it.
    text = (server.data / "directory" / "directory.db").read_bytes()
    assert b"$y$" not in text and b"$6$" not in text
    auth_pid = worker_pids(server, "auth")[0]
    if ROOT:
        assert status_uid(auth_pid)[1] == st.st_uid != 0
    for name in ("smtp", "imap", "pop3"):
        pids = worker_pids(server, name)
        assert pids, name
        for pid in pids:
            uids = status_uid(pid)
            if not ROOT:
                continue
            assert 0 not in uids, (name, uids)
            assert uids[1] != st.st_uid, f"{name} runs as the owner of the credentials"
            with open(f"/proc/{pid}/status") as f:
                gid = next(int(line.split()[2]) for line in f if line.startswith("Gid:"))
            assert gid != st.st_gid
            assert not can_open_as(uids[1], gid, cred), f"{name}'s user can read {cred}"
    # Logins still work: the auth process reads the hashes.
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=20) as c:
        c.ehlo()
        c.starttls(context=__import__("conftest").tls_context())
        c.login("alice@example.test", "right horse")


@pytest.mark.parametrize("component", ["smtp", "imap", "pop3"])
def test_worker_cannot_open_the_credentials(wharf_factory, component):
    server = start(wharf_factory)
    cred = server.data / "auth" / "credentials.db"
    directory_db = server.data / "directory" / "directory.db"
    for path in (cred, directory_db):
        send_test_hook(server, f"{component} open {path}")
        line = wait_until(lambda: next((ln for ln in server.log().splitlines()
                                        if f"test hook: open {path}:" in ln
                                        and f"{component}" in ln), None),
                          what=f"{component} to report the open attempt")
        assert "refused: Permission denied" in line, line
    # What a worker needs stays open to it.
    store_or_spool = server.data / ("spool" if component == "smtp" else "store")
    send_test_hook(server, f"{component} open {store_or_spool}")
    line = wait_until(lambda: next((ln for ln in server.log().splitlines()
                                    if f"test hook: open {store_or_spool}:" in ln), None),
                      what="the allowed open")
    assert line.endswith(": opened"), line


def test_exec_kills_the_worker_and_wharfd_restarts_it(wharf_factory):
    server = start(wharf_factory)
    before = worker_pids(server, "smtp")
    send_test_hook(server, "smtp exec")
    wait_until(lambda: "killed by signal 31" in server.log(),
               what="the supervisor to log the worker killed by SIGSYS")
    assert "test hook: execve failed" not in server.log()

    def restarted():
        pids = worker_pids(server, "smtp")
        procs = server.component("smtp")["processes"]
        return pids and set(pids).isdisjoint(before) and all(p["state"] == "running"
                                                            for p in procs)
    wait_until(restarted, timeout=30, what="wharfd to restart the smtp worker")
    # The new worker serves: mail to a local user is accepted.
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.sendmail("someone@remote.test", ["alice@example.test"], b"Subject: x\r\n\r\nhi\r\n")


def test_hooks_are_off_by_default(wharf_factory):
    server = wharf_factory().start()
    before = worker_pids(server, "smtp")
    send_test_hook(server, "smtp exec")
    send_test_hook(server, "smtp open /etc/hostname")
    # The supervisor relays in order: a status round trip after the events
    # reaches the worker after them.
    server.status()
    assert worker_pids(server, "smtp") == before
    assert "test hook" not in server.log()


def test_rcpt_checks_go_through_the_directory_process(wharf_factory):
    server = start(wharf_factory)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo()
        c.mail("someone@remote.test")
        assert c.rcpt("alice@example.test")[0] == 250
        assert c.rcpt("nobody@example.test")[0] == 550
        # Answered from the worker's cache the second time: the same verdicts.
        assert c.rcpt("nobody@example.test")[0] == 550
        assert c.rcpt("alice@example.test")[0] == 250
    st = server.component("directory")["processes"][0]["status"]
    assert st["lookups"] == 2
    smtp = server.component("smtp")["processes"][0]["status"]
    assert smtp["directory_cache_hits"] == 2 and smtp["directory_cache_misses"] == 2


def test_negative_answers_expire_and_a_silent_directory_means_451(wharf_factory):
    server = start(wharf_factory, directory_client_negative_ttl="1s",
                   directory_client_timeout="2s")
    def rcpt(address):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as c:
            c.ehlo()
            c.mail("someone@remote.test")
            return c.rcpt(address)[0]
    assert rcpt("carol@example.test") == 550
    server.wharf("user", "add", "carol@example.test", "--password-stdin", input=b"pw pw\n")
    # The "no such user" answer is cached for directory_client_negative_ttl, no longer.
    wait_until(lambda: rcpt("carol@example.test") == 250, timeout=20, interval=0.2,
               what="the negative answer to expire")
    # With the directory process silent, recipients get 451, never 550.
    pid = worker_pids(server, "directory")[0]
    os.kill(pid, 19)  # SIGSTOP: it cannot answer
    try:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as c:
            c.ehlo()
            c.mail("someone@remote.test")
            code = c.rcpt("dave@example.test")[0]
    finally:
        os.kill(pid, 18)  # SIGCONT
    assert code == 451
    assert "no answer from the directory process within 2000ms" in server.log()
