"""wharfd and the wharf command: start-up, the port map, supervision, reload, stop.

Every test starts a real wharfd (the sanitizer build) in a temporary directory on
free loopback ports. Tests that need a component serving a port pick one of the
components that are really built (`wharf status --json`), so they exercise
whatever exists; none is faked.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import struct
import subprocess

import pytest

from conftest import WHARF, WHARFD, free_port, sanitizer_env, self_signed, wait_until

EX_UNAVAILABLE = 69
EX_CONFIG = 78

# Plaintext services whose server speaks first: a greeting shows the session is up.
GREETS = {"smtp": b"220", "pop3": b"+OK", "imap": b"* OK", "nntp": b"20"}


def served_service(server, busy=False):
    """(component, service, port) of a running component that greets on a plaintext port.

    busy=True asks for one where a test can hold a session in the middle of work
    (an SMTP transaction), which a draining worker must let finish.
    """
    rows = server.port_map()["ports"]
    for row in rows:
        if row["state"] == "listening" and row["service"] in (BUSY if busy else GREETS):
            return row["component"], row["service"], row["port"]
    pytest.skip("no built component serves " +
                ("an SMTP transaction" if busy else "a greeting protocol") + " yet")


def greet(port, service):
    s = connect(port)
    f = s.makefile("rb")
    line = f.readline()
    assert line.startswith(GREETS[service]), line
    return s, f


def smtp_transaction(port):
    """An SMTP session in the middle of a transaction (after MAIL FROM)."""
    s, f = greet(port, "smtp")
    s.sendall(b"EHLO client.example\r\n")
    while (line := f.readline())[3:4] == b"-":
        pass
    assert line.startswith(b"250"), line
    s.sendall(b"MAIL FROM:<probe@example.org>\r\n")
    line = f.readline()
    assert line.startswith(b"250"), line
    return s, f


BUSY = {"smtp": smtp_transaction}


def still_works(session):
    """The busy session still answers (NOOP inside the transaction)."""
    s, f = session
    s.sendall(b"NOOP\r\n")
    return f.readline().startswith(b"250")


def pids_of(server, component):
    return sorted(p["pid"] for p in server.component(component)["processes"]
                  if p["state"] == "running")


def connect(port, host="127.0.0.1"):
    return socket.create_connection((host, port), timeout=10)


def uid_of(pid):
    """The real uid of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    except FileNotFoundError:
        return None


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          env=sanitizer_env(), timeout=60, **kw)


# ---- configuration errors -------------------------------------------------

def test_bad_config_gives_file_line_and_78(wharf_factory):
    server = wharf_factory()
    server.conf.write_text(server.conf.read_text() + "workers = 2\nno_such_option = 1\n")
    lines = server.conf.read_text().count("\n")
    r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_CONFIG, r.stderr
    assert f"{server.conf}:{lines}: unknown parameter 'no_such_option'" in r.stderr
    r = run([WHARF, "-c", server.conf, "status"])
    assert r.returncode == EX_CONFIG
    assert f"{server.conf}:{lines}: unknown parameter 'no_such_option'" in r.stderr


def test_bad_value_in_dropin_names_the_dropin(wharf_factory):
    server = wharf_factory()
    dropins = server.base / "conf.d"
    dropins.mkdir()
    (dropins / "50-limits.conf").write_text("# limits\n\nshutdown_timeout = soon\n")
    r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_CONFIG
    assert f"{dropins / '50-limits.conf'}:3: shutdown_timeout: 'soon' is not a duration" in r.stderr


# ---- start, stop, status ----------------------------------------------------

def test_start_status_and_sigterm_exits_0(wharf_factory):
    server = wharf_factory().start()
    st = server.status()
    assert st["pid"] == server.proc.pid
    # The command prints the same status the harness reads off the control socket.
    cli = json.loads(server.wharf("status", "--json").stdout)
    assert cli["pid"] == st["pid"] and "ports" not in cli
    assert [c["name"] for c in cli["components"]] == [c["name"] for c in st["components"]]
    names = [c["name"] for c in st["components"]]
    assert len(names) == len(set(names)) and "smtp" in names and "auth" in names
    for c in st["components"]:
        assert c["state"] in ("running", "not built yet", "disabled")
        if c["state"] == "running":
            assert c["processes"] and all(p["pid"] > 0 for p in c["processes"])
        else:
            assert c["processes"] == []
    # Started as root, every component process runs as the unprivileged wharf user.
    if os.geteuid() == 0:
        pids = [p["pid"] for c in st["components"] for p in c["processes"]]
        wait_until(lambda: all(uid_of(pid) not in (None, 0) for pid in pids),
                   what="every component to drop root")
        assert uid_of(server.proc.pid) == 0  # wharfd itself keeps root to bind on reload
    # The pid file and the self-signed certificate exist; the key is private.
    assert int((server.data / "run" / "wharfd.pid").read_text()) == server.proc.pid
    key = server.data / "tls" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = run(["openssl", "x509", "-noout", "-text", "-in", server.data / "tls" / "cert.pem"])
    assert "DNS:mail.example.test" in text.stdout
    assert server.stop() == 0
    assert not (server.data / "run" / "control.sock").exists()
    assert not (server.data / "run" / "wharfd.pid").exists()
    r = server.wharf("status", check=False)
    assert r.returncode == EX_UNAVAILABLE and b"not running" in r.stderr


def test_second_wharfd_on_same_data_is_refused(wharf_factory):
    server = wharf_factory().start()
    r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_UNAVAILABLE
    assert "already running" in r.stderr
    server.status()  # the first one is unharmed


def test_daemon_mode_writes_pid_file(wharf_factory):
    server = wharf_factory()
    r = run([WHARFD, "-c", server.conf])
    assert r.returncode == 0, r.stderr
    pid_file = server.data / "run" / "wharfd.pid"
    pid = wait_until(lambda: pid_file.exists() and int(pid_file.read_text()), what="pid file")
    try:
        st = server.status()
        assert st["pid"] == pid
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_file.exists(), what="daemon to stop")


# ---- the port map -----------------------------------------------------------

def test_ports_json_agrees_with_listening_sockets(wharf_factory):
    server = wharf_factory().start()
    ports = server.port_map()
    assert ports["live"] is True
    inbound = [r for r in ports["ports"] if r["direction"] == "inbound"]
    assert {r["service"] for r in inbound} >= {"smtp", "submission", "imaps", "routing"}
    for row in inbound:
        host, port = row["address"].rsplit(":", 1)
        assert int(port) == row["port"] == server.ports[row["service"]]
        with socket.socket() as s:
            s.settimeout(5)
            listening = s.connect_ex((host, int(port))) == 0
        assert listening == (row["state"] == "listening"), row
        assert row["state"] in ("listening", "not built yet"), row
    r = server.wharf("ports", "--check")
    assert b"ok:" in r.stdout
    # The text table names every row too.
    text = server.wharf("ports").stdout.decode()
    assert "EXCHANGE" in text and "Routing Engine" in text


def test_ports_without_wharfd_and_nft(wharf_factory):
    server = wharf_factory(enable={"smtp", "imaps"})
    ports = server.port_map()
    assert ports["live"] is False
    by_service = {r["service"]: r for r in ports["ports"]}
    for name in ("smtp", "imaps"):
        assert by_service[name]["state"] in ("not running", "not built yet")
        assert by_service[name]["address"] == f"127.0.0.1:{server.ports[name]}"
    assert by_service["pop3"]["address"] == "-"
    assert by_service["pop3"]["state"] in ("disabled", "not built yet")
    assert by_service["ldap"]["direction"] == "outbound"
    nft = server.wharf("ports", "--nft").stdout.decode()
    opened = sorted(int(line.split("tcp dport ")[1].split()[0])
                    for line in nft.splitlines() if 'comment "wharf' in line)
    built = [by_service[name] for name in server.ports
             if by_service[name]["state"] != "not built yet"]
    assert opened == sorted(r["port"] for r in built)
    assert "policy drop" in nft
    if shutil.which("nft"):
        path = server.base / "wharf.nft"
        path.write_text(nft)
        r = run(["nft", "-c", "-f", path])
        assert r.returncode == 0, r.stderr
    r = server.wharf("ports", "--check", check=False)
    assert r.returncode == EX_UNAVAILABLE


def test_check_catches_unexpected_listener(wharf_factory):
    server = wharf_factory()
    stray = socket.socket()
    stray.bind(("127.0.0.1", 0))
    stray.listen()
    stray_port = stray.getsockname()[1]
    server.start(pass_fds=[stray.fileno()])
    stray.close()  # now only wharfd (and what it started) holds it
    r = server.wharf("ports", "--check", check=False)
    assert r.returncode == 1, r.stdout
    assert f"unexpected: 127.0.0.1:{stray_port}".encode() in r.stdout


def test_taken_port_stops_startup_with_clear_error(wharf_factory):
    probe = wharf_factory("probe").start()
    component, service, _ = served_service(probe)
    probe.stop()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = wharf_factory("taken", extra={f"{service}_listen": f"127.0.0.1:{port}"})
        r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_UNAVAILABLE
    assert f"{component} ({service}): cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "another program holds this port" in r.stderr
    assert f"{service}_listen" in r.stderr


# ---- certificates -------------------------------------------------------------

def test_configured_certificate_missing_is_config_error(wharf_factory):
    server = wharf_factory(extra={"tls_cert_file": "/nonexistent/cert.pem"})
    r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_CONFIG
    assert "tls_cert_file: /nonexistent/cert.pem does not exist" in r.stderr
    assert not (server.data / "tls" / "key.pem").exists()


def peer_cert(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="mail.example.test") as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_reloads_certificate(wharf_factory):
    server = wharf_factory().start()
    rows = [r for r in server.port_map()["ports"]
            if r["state"] == "listening" and r["tls"] == "implicit"]
    if not rows:
        pytest.skip("no built component serves an implicit-TLS port yet")
    port = rows[0]["port"]
    first = peer_cert(port)
    tls = server.data / "tls"
    new_key, new_cert = server.base / "new.key", server.base / "new.pem"
    self_signed(new_key, new_cert, "renewed.example.test")
    (tls / "key.pem").write_bytes(new_key.read_bytes())
    (tls / "cert.pem").write_bytes(new_cert.read_bytes())
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.status()["generation"] == 1, what="the reload")
    renewed = ssl.PEM_cert_to_DER_cert(new_cert.read_text())
    wait_until(lambda: peer_cert(port) == renewed, what="the new certificate to be served")
    assert first != renewed


# ---- the bus --------------------------------------------------------------------

def frame(ftype, payload):
    return struct.pack(">IHH", len(payload), ftype, 0) + payload


def field(data):
    return struct.pack(">I", len(data)) + data


def u64(v):
    return struct.pack(">Q", v)


EVENT_MAILBOX_CHANGED = 1  # src/ipc/event.h


def mailbox_changed(owner, mailbox):
    return u64(EVENT_MAILBOX_CHANGED) + field(owner) + field(mailbox) + u64(0)


def test_event_from_control_socket_reaches_its_subscribers_only(wharf_factory):
    server = wharf_factory(extra={"workers": "2"}).start()
    procs = [(c["name"], p) for c in server.status()["components"] for p in c["processes"]]
    if not any(name == "imap" for name, _ in procs):
        pytest.skip("no imap component is built yet")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(server.data / "run" / "control.sock"))
        s.sendall(frame(5, mailbox_changed(b"alice", b"INBOX")[:-8]))  # malformed: truncated
        s.sendall(frame(5, field(b"mailbox-changed") + field(b"alice\tINBOX")))  # the old text
        s.sendall(frame(5, mailbox_changed(b"alice", b"INBOX")))
        s.sendall(frame(100, b'{"cmd": "status"}'))  # answered after the events went out
        s.settimeout(10)
        assert s.recv(8)

    def delivered():
        st = server.status()
        counts = {(c["name"], p["pid"]): p["status"]["events_received"]
                  for c in st["components"] for p in c["processes"] if "status" in p}
        imap = [n for (name, _), n in counts.items() if name == "imap"]
        return counts if len(counts) == len(procs) and all(n >= 1 for n in imap) else None
    counts = wait_until(delivered, what="every imap worker to receive the event")
    # The imap workers subscribed to mailbox-changed; nobody else gets it, and the
    # malformed frames were dropped, not relayed.
    assert {key: n for key, n in counts.items() if key[0] == "imap"} == \
        {key: 1 for key in counts if key[0] == "imap"}
    assert all(n == 0 for key, n in counts.items() if key[0] != "imap"), counts
    assert server.log().count("malformed event dropped") == 2


# ---- supervision --------------------------------------------------------------

def test_killed_component_comes_back(wharf_factory):
    server = wharf_factory().start()
    component, service, port = served_service(server)
    before = pids_of(server, component)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    def restarted():
        c = server.component(component)
        pids = [p["pid"] for p in c["processes"]]
        return c if (c["state"] == "running" and victim not in pids and c["restarts"] >= 1) else None
    c = wait_until(restarted, timeout=30, what=f"{component} to be restarted")
    assert "killed by signal 9" in c["last_exit"]
    assert f"pid {victim}" in c["last_exit"]
    s, f = greet(port, service)
    s.close()
    assert "killed by signal 9" in server.log()


def test_sighup_applies_setting_and_keeps_connections(wharf_factory):
    # the old generation drains for as long as the test needs it
    server = wharf_factory(extra={"shutdown_timeout": "300s"}).start()
    component, service, port = served_service(server, busy=True)
    old_pids = pids_of(server, component)
    session = BUSY[service](port)

    new_port = free_port()
    server.settings[f"{service}_listen"] = f"127.0.0.1:{new_port}"
    server.settings[f"{service}_max_connections"] = "7"
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)

    def reloaded():
        st = server.status()
        c = next(c for c in st["components"] if c["name"] == component)
        return st["generation"] == 1 and c["state"] == "running"
    wait_until(reloaded, what="the new generation to run")
    row = next(r for r in server.port_map()["ports"] if r["service"] == service)
    assert row["address"] == f"127.0.0.1:{new_port}"
    assert row["max_connections"] == 7
    s, f = greet(new_port, service)
    f.close()  # the file object holds the socket open too
    s.close()
    # The old generation stops accepting on the old address once told to drain.
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) != 0,
               what="the old listener to close")
    # The session opened before the reload is served by the old generation, still.
    assert still_works(session)
    session[1].close()
    session[0].close()
    wait_until(lambda: not set(old_pids) & set(pids_of(server, component)),
               what="the old generation to leave")
    assert server.stop() == 0


def test_component_options_are_checked_before_start_and_reload(wharf_factory):
    # Values only the smtp worker reads (milters, DNS lists) are refused by wharfd
    # itself, by `wharf config check` and by a reload, not by a worker that then
    # crashes in a loop.
    server = wharf_factory(enable={"smtp"})
    good = server.conf.read_text()
    assert run([WHARF, "-c", server.conf, "config", "check"]).returncode == 0
    server.conf.write_text(good + "milters = tcp:127.0.0.1\n")
    r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_CONFIG, r.stderr
    assert "smtp: milters: tcp:127.0.0.1 is not inet:ADDRESS:PORT nor unix:/PATH" in r.stderr
    r = run([WHARF, "-c", server.conf, "config", "check"])
    assert r.returncode == EX_CONFIG and "milters: tcp:127.0.0.1" in r.stderr
    # the mta's own (it runs on every server): said before it starts, not by its failing start
    server.conf.write_text(good + "mta_source_address = mail.example.test\n")
    r = run([WHARF, "-c", server.conf, "config", "check"])
    assert r.returncode == EX_CONFIG, r.stderr
    assert "mta: mta_source_address: mail.example.test is not an IP address" in r.stderr
    # and a comment is a line of its own: after a value it would be part of it
    server.conf.write_text(good + "mta_source_address = 127.0.0.1  # the public one\n")
    r = run([WHARFD, "-f", "-c", server.conf])
    assert r.returncode == EX_CONFIG and '"#" after a value' in r.stderr, r.stderr
    server.conf.write_text(good)
    server.start()
    server.conf.write_text(good + "dnsbl_zones = zen.example=127.0.0\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in server.log(), what="the reload error in the log")
    assert "smtp: dnsbl_zones: 127.0.0 is not an IPv4 address" in server.log()
    assert server.proc.poll() is None and server.status()["generation"] == 0
    server.conf.write_text(good)
    assert server.stop() == 0


def test_sighup_with_bad_config_keeps_running(wharf_factory):
    server = wharf_factory().start()
    good = server.conf.read_text()
    server.conf.write_text(good + "shutdown_timeout = forever\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in server.log(), what="the reload error in the log")
    assert "shutdown_timeout: 'forever' is not a duration" in server.log()
    assert server.proc.poll() is None
    # The wharf command reads the same file, so it refuses it too, with file:line.
    r = server.wharf("reload", check=False)
    assert r.returncode == EX_CONFIG and b"wharf.conf:" in r.stderr and b"forever" in r.stderr
    server.conf.write_text(good)
    assert server.status()["generation"] == 0
    server.settings["shutdown_timeout"] = "9s"
    server.write_config()
    server.wharf("reload")
    assert server.status()["generation"] == 1
    assert server.stop() == 0


def test_sigterm_lets_open_session_finish(wharf_factory):
    server = wharf_factory(extra={"shutdown_timeout": "20s"}).start()
    component, service, port = served_service(server, busy=True)
    session = BUSY[service](port)
    server.proc.send_signal(signal.SIGTERM)
    # wharfd stops accepting at once ...
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) != 0,
               what="the listener to close")
    # ... but the open session still gets answers until it ends.
    assert still_works(session)
    assert server.proc.poll() is None
    session[0].close()
    assert server.proc.wait(30) == 0
