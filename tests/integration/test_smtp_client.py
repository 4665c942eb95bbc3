"""The SMTP client engine (src/smtp/smtp_client.c) driven by its test tool
(build/src/smtp/smtp_client_tool) against independent servers:

- aiosmtpd (Debian's python3-aiosmtpd): many recipients in one transaction,
  per-recipient results, several transactions over one connection, and the
  message arrives byte for byte (dot-stuffing undone by the peer);
- a scripted socket server in this file: PIPELINING (MAIL, RCPTs and DATA sent
  before the first reply), CHUNKING (BDAT), DSN parameters (NOTIFY, ORCPT
  xtext, RET, ENVID), 4xx and 5xx replies, replies trickled one byte at a
  time, HELO fallback, 1500 recipients, the STARTTLS wall, a server that
  never answers (timeout) and one that drops the connection in the middle of
  DATA, an address carrying CRLF;
- a real wharfd: delivery to a local user over STARTTLS (policies require
  and verify against the server's own certificate), and AUTH on its
  submission port as a smarthost.
"""
import json
import select
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import BUILD, free_port, sanitizer_env, self_signed, wait_until
from smtp_helpers import add_user, wait_smtp_ready

TOOL = BUILD / "src" / "smtp" / "smtp_client_tool"
MSG = b"From: a@example.org\r\nSubject: client test\r\n\r\n.leading dot\r\nline\r\n"


def run_tool(port, rcpts, *opts, msg=MSG, timeout=30):
    args = [str(TOOL), "-f", "sender@example.org", *opts]
    for r in rcpts:
        args += ["-r", r]
    args += ["127.0.0.1", str(port)]
    p = subprocess.run(args, input=msg, capture_output=True, env=sanitizer_env(), timeout=timeout)
    err = p.stderr.decode(errors="replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    out = p.stdout.decode(errors="replace").splitlines()
    results = [l.split(" ", 9) for l in out if l.startswith("txn ")]
    session = next(l for l in out if l.startswith("session "))
    return p.returncode, results, session, out


# ---------------------------------------------------------------- aiosmtpd

@pytest.fixture
def aiosmtpd_server():
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    got = []

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("unknown"):
                return "550 5.1.1 no such user"
            if address.startswith("later"):
                return "450 4.2.1 try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            got.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            return "250 2.0.0 queued"

    port = free_port()
    c = controller_mod.Controller(Handler(), hostname="127.0.0.1", port=port)
    c.start()
    yield port, got
    c.stop()


def test_many_recipients_one_transaction_per_recipient_results(aiosmtpd_server):
    port, got = aiosmtpd_server
    rc, res, session, _ = run_tool(port, ["a@x.test", "unknown@x.test", "later@x.test", "b@x.test"],
                                   "-N", "2")
    assert rc == 0 and session == "session ok"
    by = {(r[1], r[3]): (int(r[4]), r[5], r[6]) for r in res}
    for t in ("0", "1"):
        assert by[(t, "a@x.test")] == (250, "2.0.0", "local=0")
        assert by[(t, "b@x.test")] == (250, "2.0.0", "local=0")
        assert by[(t, "unknown@x.test")] == (550, "5.1.1", "local=0")
        assert by[(t, "later@x.test")][0:2] == (450, "4.2.1")
    # two transactions, each one DATA with both accepted recipients, byte for byte
    assert len(got) == 2
    for sender, rcpts, content in got:
        assert sender == "sender@example.org"
        assert rcpts == ["a@x.test", "b@x.test"]
        assert content == MSG


# ---------------------------------------------------------------- scripted server

class LineReader:
    """Reads lines and counted bytes from a socket, keeping what it over-read."""

    def __init__(self, conn):
        self.conn, self.buf = conn, b""

    def _fill(self):
        chunk = self.conn.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def more_within(self, seconds):
        """True when bytes beyond the current line are (or become) available."""
        if self.buf:
            return True
        if select.select([self.conn], [], [], seconds)[0]:
            return self._fill()
        return False

    def readline(self):
        while b"\n" not in self.buf:
            if not self._fill():
                line, self.buf = self.buf, b""
                return line
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read(self, n):
        while len(self.buf) < n and self._fill():
            pass
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class Scripted:
    """A one-connection-at-a-time SMTP server with scripted replies. It
    records every command line and every message it accepts."""

    def __init__(self, caps=("PIPELINING", "SIZE 100000", "DSN", "ENHANCEDSTATUSCODES", "8BITMIME"),
                 rcpt=None, data="250 2.0.0 Ok: queued", mode="normal", tls=None):
        self.caps, self.rcpt, self.data, self.mode = list(caps), rcpt or {}, data, mode
        self.tls = tls  # an ssl.SSLContext: offer STARTTLS
        self.lines, self.messages, self.pipelined = [], [], None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(20)
        f = LineReader(conn)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def w(s):
            data = s.encode() + b"\r\n"
            if self.mode == "trickle":  # one byte per segment: the parser must resume
                for i in range(len(data)):
                    conn.sendall(data[i:i + 1])
            else:
                conn.sendall(data)
        try:
            if self.mode == "silent":
                conn.recv(1)  # never greets; waits for the client to give up
                return
            w("220 scripted.test ESMTP")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.rstrip(b"\r\n").decode()
                self.lines.append(cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO" and self.mode == "helo-only":
                    w("502 5.5.2 EHLO not implemented")
                elif verb == "HELO":
                    w("250 scripted.test")
                elif verb == "STARTTLS" and self.tls:
                    # the reply and a forged reply in one segment: the client must
                    # drop everything read before the handshake (the STARTTLS wall)
                    conn.sendall(b"220 2.0.0 go ahead\r\n250-forged\r\n250 SIZE 1\r\n")
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    f = LineReader(conn)
                    self.tls_up = True
                elif verb == "EHLO":
                    caps = ["scripted.test"] + self.caps
                    if self.tls and not getattr(self, "tls_up", False):
                        caps.append("STARTTLS")
                    for i, c in enumerate(caps):
                        w(("250 " if i == len(caps) - 1 else "250-") + c)
                elif verb == "MAIL":
                    if self.pipelined is None:
                        # a pipelining client has already sent its RCPTs and DATA:
                        # wait (bounded) for them before answering MAIL
                        self.pipelined = f.more_within(2.0) and f.buf[:4].upper() == b"RCPT"
                    w("250 2.1.0 Ok")
                elif verb == "RCPT":
                    addr = cmd.split("<", 1)[1].split(">", 1)[0]
                    w(self.rcpt.get(addr, "250 2.1.5 Ok"))
                elif verb == "DATA":
                    w("354 go ahead")
                    body = b""
                    while True:
                        l = f.readline()
                        if not l:
                            return
                        if self.mode == "drop":
                            conn.shutdown(socket.SHUT_RDWR)
                            return
                        if l == b".\r\n":
                            break
                        body += l
                    self.messages.append(body)
                    w(self.data)
                elif verb == "BDAT":
                    n = int(cmd.split()[1])
                    body = f.read(n)
                    self.messages.append(body)
                    w(self.data)
                elif verb == "RSET":
                    w("250 2.0.0 Ok")
                elif verb == "QUIT":
                    w("221 2.0.0 Bye")
                    return
                else:
                    w("502 5.5.2 unknown")
        finally:
            conn.close()
            self.done.set()


@pytest.fixture
def scripted():
    servers = []

    def make(**kw):
        s = Scripted(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_pipelining_and_dsn_parameters(scripted):
    s = scripted(rcpt={"bad@x.test": "550 5.1.1 no"})
    rc, res, session, _ = run_tool(s.port, ["a+b@x.test", "bad@x.test", "c@x.test"],
                                   "-O", "-S", "-R", "hdrs", "-e", "env id+1")
    assert session == "session ok"
    assert s.pipelined is True
    assert [(r[3], int(r[4]), r[7]) for r in res] == [("a+b@x.test", 250, "dsn=1"),
                                                      ("bad@x.test", 550, "dsn=1"),
                                                      ("c@x.test", 250, "dsn=1")]
    mail = next(l for l in s.lines if l.startswith("MAIL"))
    assert mail == f"MAIL FROM:<sender@example.org> SIZE={len(MSG)} RET=HDRS ENVID=env+20id+2B1"
    rcpt = next(l for l in s.lines if l.startswith("RCPT"))
    assert rcpt == "RCPT TO:<a+b@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@x.test"
    assert s.messages == [MSG.replace(b"\r\n.leading", b"\r\n..leading")]  # stuffed on the wire


def test_replies_one_byte_at_a_time(scripted):
    s = scripted(mode="trickle", rcpt={"bad@x.test": "550-5.1.1 no such\r\n550 5.1.1 user"})
    _, res, session, out = run_tool(s.port, ["a@x.test", "bad@x.test"], "-N", "2")
    assert session == "session ok", out
    assert [(r[3], int(r[4])) for r in res] == [("a@x.test", 250), ("bad@x.test", 550)] * 2
    assert res[1][9] == "no such|5.1.1 user"


def test_address_with_crlf_never_reaches_the_wire(scripted):
    s = scripted()
    _, res, session, _ = run_tool(s.port, ["a@x.test", "b@x.test>\r\nRSET\r\nQUIT"])
    assert [(int(r[4]), r[5], r[6]) for r in res] == [(250, "2.0.0", "local=0"),
                                                      (553, "5.1.3", "local=1")]
    assert "RSET" not in s.lines and sum(l.startswith("RCPT") for l in s.lines) == 1


def test_starttls_wall_drops_what_came_before_the_handshake(scripted, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    self_signed(key, cert, "scripted.test", days=1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    s = scripted(tls=ctx)
    _, res, session, out = run_tool(s.port, ["a@x.test"], "-t", "require")
    assert session == "session ok", out
    assert (int(res[0][4]), res[0][8]) == (250, "tls=1"), out
    # EHLO again after the handshake, and its real SIZE (not the forged 1) in use
    assert s.lines[:3] == ["EHLO client.test", "STARTTLS", "EHLO client.test"]
    assert any(l.startswith("MAIL FROM:<sender@example.org> SIZE=") for l in s.lines)


def test_helo_fallback(scripted):
    s = scripted(mode="helo-only")
    _, res, session, _ = run_tool(s.port, ["a@x.test"], "-R", "full", "-S")
    assert session == "session ok" and int(res[0][4]) == 250
    assert s.lines[:2] == ["EHLO client.test", "HELO client.test"]
    # a plain SMTP server gets no ESMTP parameters at all
    assert "MAIL FROM:<sender@example.org>" in s.lines
    assert "RCPT TO:<a@x.test>" in s.lines


def test_more_recipients_than_one_pipelined_group(scripted):
    s = scripted(rcpt={"r7@x.test": "550 5.1.1 no"})
    rcpts = [f"r{i}@x.test" for i in range(1500)]
    _, res, session, _ = run_tool(s.port, rcpts)
    assert session == "session ok"
    assert len(res) == 1500
    assert [r[3] for r in res if int(r[4]) != 250] == ["r7@x.test"]
    assert sum(1 for l in s.lines if l.startswith("RCPT")) == 1500
    assert len(s.messages) == 1


def test_chunking_sends_bdat_and_no_pipelining_waits(scripted):
    s = scripted(caps=("CHUNKING", "8BITMIME"))
    rc, res, session, _ = run_tool(s.port, ["a@x.test"], "-8")
    assert session == "session ok" and int(res[0][4]) == 250
    assert s.pipelined is False  # no PIPELINING offered: MAIL waited for its reply
    assert any(l == f"BDAT {len(MSG)} LAST" for l in s.lines)
    assert "MAIL FROM:<sender@example.org> BODY=8BITMIME" in s.lines
    assert s.messages == [MSG]  # BDAT: no stuffing


def test_size_over_the_peer_limit_fails_locally(scripted):
    s = scripted(caps=("SIZE 10",))
    rc, res, session, _ = run_tool(s.port, ["a@x.test"])
    assert (int(res[0][4]), res[0][5], res[0][6]) == (552, "5.3.4", "local=1")
    assert not any(l.startswith("MAIL") for l in s.lines)


def test_temporary_and_permanent_data_replies(scripted):
    s = scripted(data="451 4.3.0 try later")
    _, res, _, _ = run_tool(s.port, ["a@x.test", "b@x.test"])
    assert {(int(r[4]), r[5]) for r in res} == {(451, "4.3.0")}
    s = scripted(data="554 5.7.1 rejected", rcpt={"b@x.test": "450 4.2.0 busy"})
    _, res, _, _ = run_tool(s.port, ["a@x.test", "b@x.test"])
    assert [(r[3], int(r[4])) for r in res] == [("a@x.test", 554), ("b@x.test", 450)]


def test_server_that_never_answers_times_out(scripted):
    s = scripted(mode="silent")
    _, res, session, _ = run_tool(s.port, ["a@x.test"], "-T", "1000")
    assert (int(res[0][4]), res[0][5], res[0][6]) == (421, "4.4.2", "local=1")
    assert "timeout while waiting for greeting" in session


def test_connection_dropped_during_data_is_temporary(scripted):
    s = scripted(mode="drop")
    _, res, session, _ = run_tool(s.port, ["a@x.test"], msg=MSG * 100)
    assert (int(res[0][4]), res[0][5], res[0][6]) == (421, "4.4.2", "local=1")
    assert "lost connection" in res[0][9]


def test_connection_refused_is_4_4_1():
    port = free_port()
    _, res, session, _ = run_tool(port, ["a@x.test"])
    assert (int(res[0][4]), res[0][5]) == (421, "4.4.1")
    assert session.startswith("session error 421 4.4.1")


def test_tls_required_but_not_offered(scripted):
    s = scripted(caps=("PIPELINING",))
    _, res, session, _ = run_tool(s.port, ["a@x.test"], "-t", "require")
    assert (int(res[0][4]), res[0][5]) == (421, "4.7.4")
    assert not any(l.startswith("MAIL") for l in s.lines)


# ---------------------------------------------------------------- a real wharfd

@pytest.fixture
def wharf(wharf_factory):
    s = wharf_factory(enable={"smtp", "submission"}).start(wait=False)
    wait_smtp_ready(s)
    if "started mta" not in s.log():
        pytest.skip("needs the mta")
    assert add_user(s, "bob@example.test", "pw-bob")
    return s


def inbox_count(server, user):
    r = server.wharf("mailbox", "stats", user, "--json", check=False)
    return json.loads(r.stdout)["messages"] if r.returncode == 0 else 0


def test_delivers_to_wharf_over_starttls(wharf):
    port = wharf.ports["smtp"]
    cert = wharf.data / "tls" / "cert.pem"
    _, res, session, out = run_tool(port, ["bob@example.test"], "-t", "require", "-N", "2")
    assert session == "session ok", out
    assert [(int(r[4]), r[8]) for r in res] == [(250, "tls=1"), (250, "tls=1")]
    # verify: the self-signed certificate is trusted only with it as the CA file,
    # and only for the name it was made for
    _, res, _, out = run_tool(port, ["bob@example.test"], "-t", "verify",
                              "-n", "mail.example.test", "-c", str(cert))
    assert int(res[0][4]) == 250, out
    _, res, _, out = run_tool(port, ["bob@example.test"], "-t", "verify",
                              "-n", "other.example.test", "-c", str(cert))
    assert (int(res[0][4]), res[0][5]) == (421, "4.7.5"), out
    wait_until(lambda: inbox_count(wharf, "bob@example.test") == 3, 15, what="3 deliveries")
    raw = wharf.wharf("mailbox", "show", "bob@example.test", "INBOX", "1").stdout
    assert raw.endswith(MSG.split(b"\r\n\r\n", 1)[1]) and b"ESMTPS" in raw


def test_auth_to_a_smarthost_only_over_tls(wharf):
    """Wharf's submission port as the smarthost: AUTH PLAIN after STARTTLS."""
    port = wharf.ports["submission"]
    _, res, session, out = run_tool(port, ["bob@example.test"], "-t", "require",
                                    "-u", "bob@example.test", "-p", "pw-bob",
                                    "-f", "bob@example.test")
    assert session == "session ok", out
    assert (int(res[0][4]), res[0][8]) == (250, "tls=1"), out
    _, res, session, out = run_tool(port, ["bob@example.test"], "-t", "require",
                                    "-u", "bob@example.test", "-p", "wrong")
    assert int(res[0][4]) == 535 and session.startswith("session error 535"), out
    # credentials are never sent in clear text: policy none + AUTH fails locally
    _, res, session, out = run_tool(port, ["bob@example.test"], "-t", "none",
                                    "-u", "bob@example.test", "-p", "pw-bob")
    assert (int(res[0][4]), res[0][5], res[0][6]) == (421, "4.7.4", "local=1"), out
    wait_until(lambda: inbox_count(wharf, "bob@example.test") == 1, 15, what="delivery")
