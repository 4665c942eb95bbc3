"""POP3 on 110 (STLS) and 995 (implicit TLS) against a real wharfd.

Clients: Python's poplib, curl's pop3/pop3s, fetchmail and raw sockets for
what the libraries will not send (bad input, pipelining, dropped links).
Messages arrive through `wharf deliver`, the same path the mta uses.
"""
import hashlib
import os
import poplib
import shutil
import subprocess

import pytest

from conftest import LineClient, tls_context, wait_until

# poplib refuses lines over 2048 bytes; the server must handle far longer ones.
poplib._MAXLINE = 1 << 20

USER = "alice@example.test"
PASSWORD = "correct horse battery"


@pytest.fixture
def pop(wharf_factory):
    server = wharf_factory(enable={"pop3", "pop3s"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return server


def deliver(server, data, user=USER):
    server.wharf("deliver", user, input=data)


def login(server, implicit=False):
    if implicit:
        p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_context(), timeout=20)
    else:
        p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
        p.stls(context=tls_context())
    p.user(USER)
    p.pass_(PASSWORD)
    return p


class Raw(LineClient):
    """POP3 at the line level, for what poplib will not do."""

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def multiline(self):
        lines = []
        while True:
            ln = self.f.readline()
            if ln in (b".\r\n", b""):
                return lines
            lines.append(ln)

    def starttls(self):
        assert self.cmd("STLS").startswith("+OK")
        self.wrap_tls()


MSG = (b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: one\r\n\r\n"
       b".a line with a leading dot\r\n..two dots\r\nplain line\r\n"
       b"8-bit: \xc3\xa9t\xc3\xa9 \xff\xfe\r\n" + b"x" * 5000 + b"\r\n")


def test_greeting_capa_and_plaintext_refused(pop):
    r = Raw(pop.ports["pop3"])
    assert r.greeting.startswith("+OK")
    assert r.cmd("CAPA").startswith("+OK")
    caps = [c.strip().decode() for c in r.multiline()]
    assert "STLS" in caps and "UIDL" in caps and "PIPELINING" in caps and "RESP-CODES" in caps
    assert "USER" not in caps and not any(c.startswith("SASL") for c in caps)
    assert r.cmd("USER " + USER).startswith("-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN AGFsaWNlAHg=").startswith("-ERR [AUTH]")
    r.starttls()
    assert r.cmd("CAPA").startswith("+OK")
    caps = [c.strip().decode() for c in r.multiline()]
    assert "USER" in caps and "SASL PLAIN" in caps and "STLS" not in caps
    assert r.cmd("STLS").startswith("-ERR")
    r.close()


def test_stls_discards_pipelined_plaintext(pop):
    r = Raw(pop.ports["pop3"])
    # A command smuggled behind STLS in the same packet must never run under TLS.
    r.send(b"STLS\r\nUSER " + USER.encode() + b"\r\n")
    assert r.line().startswith("+OK")
    r.wrap_tls()
    assert r.cmd("PASS " + PASSWORD).startswith("-ERR")  # USER was discarded
    r.close()


def test_retrieve_is_byte_exact(pop):
    deliver(pop, MSG)
    big = b"From: x@example.test\r\nSubject: big\r\n\r\n" + os.urandom(7 * 1024 * 1024).hex().encode()
    big = b"\r\n".join(big[i:i + 998] for i in range(0, len(big), 998)) + b"\r\n"
    deliver(pop, big)
    p = login(pop)
    count, size = p.stat()
    assert count == 2 and size == len(MSG) + len(big)
    resp, lines, octets = p.retr(1)
    assert resp.startswith(b"+OK")
    assert b"\r\n".join(lines) + b"\r\n" == MSG  # poplib undoes dot-stuffing
    resp, lines, octets = p.retr(2)
    got = b"\r\n".join(lines) + b"\r\n"
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(big).hexdigest()
    _, listing, _ = p.list()
    assert listing == [f"1 {len(MSG)}".encode(), f"2 {len(big)}".encode()]
    assert p.list(2).split()[2] == str(len(big)).encode()
    p.quit()


def test_dot_stuffing_on_the_wire(pop):
    deliver(pop, MSG)
    r = Raw(pop.ports["pop3s"], tls=True)
    assert r.cmd("USER " + USER).startswith("+OK")
    assert r.cmd("PASS " + PASSWORD).startswith("+OK")
    assert r.cmd("RETR 1") == f"+OK {len(MSG)} octets"
    body = b"".join(r.multiline())
    assert b"\r\n..a line with a leading dot\r\n...two dots\r\n" in body
    r.close()


def test_top(pop):
    deliver(pop, MSG)
    p = login(pop, implicit=True)
    _, lines, _ = p.top(1, 1)
    assert lines[:3] == [b"From: bob@example.test", b"To: alice@example.test", b"Subject: one"]
    assert lines[3] == b"" and lines[4] == b".a line with a leading dot" and len(lines) == 5
    _, lines, _ = p.top(1, 0)
    assert lines[-1] == b"" and len(lines) == 4
    p.quit()


def test_dele_commits_only_on_quit(pop):
    for i in range(3):
        deliver(pop, MSG.replace(b"Subject: one", f"Subject: m{i}".encode()))
    p = login(pop)
    p.dele(2)
    with pytest.raises(poplib.error_proto, match="No such message"):
        p.retr(2)
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    p.dele(1)
    p.dele(3)
    assert p.quit().startswith(b"+OK")
    p = login(pop)
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert b"Subject: m1" in lines
    p.quit()


def test_dropped_connection_deletes_nothing(pop):
    deliver(pop, MSG)
    deliver(pop, MSG)
    r = Raw(pop.ports["pop3s"], tls=True)
    r.cmd("USER " + USER)
    assert r.cmd("PASS " + PASSWORD).startswith("+OK")
    assert r.cmd("DELE 1").startswith("+OK")
    assert r.cmd("DELE 2").startswith("+OK")
    r.close()  # no QUIT
    # The lock is released when the server sees the close; then nothing is gone.
    p = wait_until(lambda: login(pop), what="maildrop lock released")
    assert p.stat()[0] == 2
    p.quit()


def test_in_use(pop):
    deliver(pop, MSG)
    first = login(pop)
    r = Raw(pop.ports["pop3s"], tls=True)
    r.cmd("USER " + USER)
    assert r.cmd("PASS " + PASSWORD).startswith("-ERR [IN-USE]")
    first.quit()
    r.cmd("USER " + USER)
    assert r.cmd("PASS " + PASSWORD).startswith("+OK")
    r.close()


def test_uidl_stable_across_deletes_and_restart(pop):
    for i in range(4):
        deliver(pop, MSG + f"n{i}\r\n".encode())
    p = login(pop)
    before = dict(line.split() for line in p.uidl()[1])
    assert len(set(before.values())) == 4
    p.dele(1)
    p.dele(3)
    p.quit()
    assert pop.stop() == 0
    pop.start()
    p = login(pop)
    after = dict(line.split() for line in p.uidl()[1])
    assert sorted(after.values()) == sorted([before[b"2"], before[b"4"]])
    assert p.uidl(1).split()[2] == before[b"2"]
    p.quit()


def test_auth_plain_sasl(pop):
    deliver(pop, MSG)
    import base64
    token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    r = Raw(pop.ports["pop3s"], tls=True)
    assert r.cmd("AUTH PLAIN " + token).startswith("+OK")
    assert r.cmd("STAT").startswith("+OK 1 ")
    r.close()
    r = Raw(pop.ports["pop3s"], tls=True)
    assert r.cmd("AUTH PLAIN") == "+ "
    assert r.cmd(token).startswith("+OK")
    r.close()
    r = Raw(pop.ports["pop3s"], tls=True)
    bad = base64.b64encode(b"\0" + USER.encode() + b"\0wrong").decode()
    assert r.cmd("AUTH PLAIN " + bad).startswith("-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN !!!notbase64").startswith("-ERR")
    assert r.cmd("AUTH CRAM-MD5").startswith("-ERR")
    assert r.cmd("NOOP") == "+OK"
    r.close()


def test_bad_input_gets_err_and_session_goes_on(pop):
    deliver(pop, MSG)
    r = Raw(pop.ports["pop3s"], tls=True)
    assert r.cmd("STAT").startswith("-ERR")            # wrong state
    assert r.cmd("XYZZY").startswith("-ERR Unknown command")
    assert r.cmd("A" * 5000).startswith("-ERR Command line too long")
    assert r.cmd("USER " + USER).startswith("+OK")
    assert r.cmd("PASS " + PASSWORD).startswith("+OK")
    assert r.cmd("USER x").startswith("-ERR")          # wrong state after login
    for bad in ("RETR 0", "RETR 2", "RETR -1", "RETR x", "RETR 99999999999"):
        assert r.cmd(bad).startswith("-ERR"), bad
    assert r.cmd("STAT").startswith("+OK 1 ")
    r.close()
    # Out of range and malformed arguments, each in a fresh session so that the
    # error limit does not end it first.
    for bad in ("DELE 7", "TOP 1", "TOP 1 x", "LIST 1 2", "UIDL 5", "LIST 0", "DELE"):
        r = Raw(pop.ports["pop3s"], tls=True)
        r.cmd("USER " + USER)
        r.cmd("PASS " + PASSWORD)
        assert r.cmd(bad).startswith("-ERR"), bad
        assert r.cmd("NOOP") == "+OK"
        r.close()


def test_error_limit_ends_the_session(pop):
    r = Raw(pop.ports["pop3"])
    for _ in range(9):
        assert r.cmd("BOGUS").startswith("-ERR Unknown command")
    assert r.cmd("BOGUS").startswith("-ERR Unknown command")
    assert r.line().startswith("-ERR Too many errors")
    assert r.line() == ""  # closed by the server
    r.close()


def test_pipelining(pop):
    deliver(pop, MSG)
    r = Raw(pop.ports["pop3s"], tls=True)
    r.send(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 1\r\nNOOP\r\nQUIT\r\n".encode())
    replies = [r.line() for _ in range(6)]
    assert [x[:3] for x in replies] == ["+OK"] * 6
    assert replies[2] == f"+OK 1 {len(MSG)}"
    r.close()


def test_curl_pop3s(pop):
    deliver(pop, MSG)
    out = subprocess.run(["curl", "-sS", "--insecure", "--user", f"{USER}:{PASSWORD}",
                          f"pop3s://127.0.0.1:{pop.ports['pop3s']}/1"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == MSG
    out = subprocess.run(["curl", "-sS", "--insecure", "--ssl-reqd", "--user",
                          f"{USER}:{PASSWORD}", f"pop3://127.0.0.1:{pop.ports['pop3']}/"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [b"1", str(len(MSG)).encode()]


def test_fetchmail(pop, tmp_path):
    fetchmail = shutil.which("fetchmail")
    assert fetchmail, "fetchmail is installed by make test"
    for i in range(3):
        deliver(pop, MSG.replace(b"Subject: one", f"Subject: f{i}".encode()))
    out = tmp_path / "mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 service {pop.ports["pop3s"]} protocol pop3 '
                  f'user "{USER}" password "{PASSWORD}" ssl no sslcertck '
                  f'mda "/bin/sh -c \'cat >> {out}\'"\n')
    rc.chmod(0o600)
    r = subprocess.run([fetchmail, "-f", str(rc), "--nosyslog", "--nodetach", "-v",
                        "--idfile", str(tmp_path / "ids")],
                       capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    text = out.read_bytes()
    for i in range(3):
        assert f"Subject: f{i}".encode() in text
    p = login(pop)
    assert p.stat()[0] == 0  # fetchmail deletes what it fetched, by QUIT
    p.quit()


def test_uidl_stable_after_imap_deletes_others(wharf_factory):
    """UIDLs are the IMAP UIDs: an IMAP client expunging some messages leaves the
    others' UIDLs as they were, and POP3 and IMAP agree on which message is which."""
    import imaplib
    server = wharf_factory(enable={"pop3s", "imaps"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    for i in range(5):
        deliver(server, MSG + f"n{i}\r\n".encode())
    p = login(server, implicit=True)
    before = [line.split()[1] for line in p.uidl()[1]]
    p.quit()
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    m.login(USER, PASSWORD)
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1:*", "(UID)")
    uids = sorted(int(x.split(b"UID ")[1].rstrip(b")")) for x in data)
    assert len(uids) == 5
    m.uid("STORE", f"{uids[0]},{uids[2]}", "+FLAGS.SILENT", r"(\Deleted)")
    m.expunge()
    m.logout()
    p = login(server, implicit=True)
    after = [line.split()[1] for line in p.uidl()[1]]
    p.quit()
    assert after == [before[1], before[3], before[4]]
    # The UIDL carries the IMAP UID (Dovecot's %08Xu%08Xv form).
    assert [int(u[:8], 16) for u in after] == [uids[1], uids[3], uids[4]]
