"""IMAP4 on 143 (STARTTLS) and 993 (implicit TLS) against a real wharfd.

Clients: Python's imaplib, curl's imaps:// and raw sockets for what imaplib
will not send (bad input, literals, IDLE, pipelining).
Messages arrive through `wharf deliver`, the same path the mta uses, and once
through SMTP on port 25 (IDLE woken by an SMTP delivery).
"""
import imaplib
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import LineClient, tls_context, wait_until

USER = "alice@example.test"
PASSWORD = "correct horse battery"
OTHER = "bob@example.test"

MSG = (b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
       b"Subject: hello there\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
       b"Message-ID: <one@example.test>\r\n\r\n"
       b"First line of the body\r\nsecond line with a needle\r\n")
MSG2 = (b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: second\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
        b"--XX\r\nContent-Type: text/html\r\n\r\n<p>part two</p>\r\n--XX--\r\n")


@pytest.fixture
def imap(wharf_factory):
    server = wharf_factory(enable={"imap", "imaps"}).start()
    server.wharf("domain", "add", "example.test")
    for user in (USER, OTHER):
        server.wharf("user", "add", user, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return server


def deliver(server, data, user=USER):
    server.wharf("deliver", user, input=data)


def login(server, user=USER):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(user, PASSWORD)
    return m


class Raw(LineClient):
    """IMAP at the line level, for what imaplib will not do."""

    def cmd(self, tag, text):
        """Sends a command; returns (untagged lines, tagged line)."""
        self.send(f"{tag} {text}\r\n".encode())
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            if ln == "":
                raise AssertionError(f"connection closed; got {lines}")
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)

    def starttls(self):
        _, ok = self.cmd("s1", "STARTTLS")
        assert ok.startswith("s1 OK")
        self.wrap_tls()

    def login(self, user=USER):
        _, ok = self.cmd("l1", f'LOGIN "{user}" "{PASSWORD}"')
        assert ok.startswith("l1 OK"), ok


def test_greeting_logindisabled_and_starttls(imap):
    r = Raw(imap.ports["imap"])
    assert r.greeting.startswith("* OK [CAPABILITY ")
    assert "STARTTLS" in r.greeting and "LOGINDISABLED" in r.greeting
    assert "AUTH=PLAIN" not in r.greeting
    _, ok = r.cmd("a", f'LOGIN "{USER}" "{PASSWORD}"')
    assert ok.startswith("a NO [PRIVACYREQUIRED]")
    _, ok = r.cmd("b", "AUTHENTICATE PLAIN AGFsaWNlAHg=")
    assert ok.startswith("b NO [PRIVACYREQUIRED]")
    _, ok = r.cmd("c", "SELECT INBOX")
    assert ok.startswith("c BAD")
    r.starttls()
    caps, ok = r.cmd("d", "CAPABILITY")
    assert "AUTH=PLAIN" in caps[0] and "LOGINDISABLED" not in caps[0] and "STARTTLS" not in caps[0]
    _, ok = r.cmd("e", f'LOGIN "{USER}" "wrong"')
    assert ok.startswith("e NO [AUTHENTICATIONFAILED]")
    r.login()
    _, ok = r.cmd("f", "STARTTLS")
    assert ok.startswith("f BAD")
    r.close()


def test_starttls_discards_pipelined_plaintext(imap):
    r = Raw(imap.ports["imap"])
    # A command smuggled behind STARTTLS in the same packet must never run under TLS.
    r.send(b"s1 STARTTLS\r\nx1 CAPABILITY\r\n")
    assert r.line().startswith("s1 OK")
    r.wrap_tls()
    _, ok = r.cmd("x2", "NOOP")
    assert ok.startswith("x2 OK")  # the first tagged reply under TLS is x2's, not x1's
    r.close()


def test_plaintext_auth_option(wharf_factory):
    server = wharf_factory(enable={"imap"}, extra={"imap_plaintext_auth": "yes"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
    assert "LOGINDISABLED" not in m.capabilities
    m.login(USER, PASSWORD)
    m.logout()


def test_authenticate_plain_sasl_ir_and_continuation(imap):
    import base64
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    r = Raw(imap.ports["imaps"], tls=True)
    _, ok = r.cmd("a", f"AUTHENTICATE PLAIN {token}")
    assert ok.startswith("a OK [CAPABILITY ")
    r.close()
    r = Raw(imap.ports["imaps"], tls=True)
    r.send(b"b AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send(token.encode() + b"\r\n")
    _, ok = r.until("b")
    assert ok.startswith("b OK")
    r.close()
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls_context())
    m.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
    m.logout()


def test_select_and_fetch_byte_exact(imap):
    deliver(imap, MSG)
    deliver(imap, MSG2)
    m = login(imap)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    assert m.untagged_responses.get("UIDVALIDITY")
    typ, data = m.fetch("1", "(RFC822.SIZE UID FLAGS INTERNALDATE BODY.PEEK[])")
    assert data[0][1] == MSG
    head = data[0][0].decode()
    # the first session to see a message gets \Recent (RFC 3501 2.3.2)
    assert f"RFC822.SIZE {len(MSG)}" in head and "UID 1" in head and "FLAGS (\\Recent)" in head
    assert re.search(r'INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000"', head)
    header, text = MSG.split(b"\r\n\r\n", 1)
    assert m.fetch("1", "(BODY.PEEK[HEADER])")[1][0][1] == header + b"\r\n\r\n"
    assert m.fetch("1", "(BODY.PEEK[TEXT])")[1][0][1] == text
    assert m.fetch("1", "(BODY.PEEK[]<5.10>)")[1][0][1] == MSG[5:15]
    assert m.fetch("1", "(RFC822.HEADER)")[1][0][1] == header + b"\r\n\r\n"
    fields = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)])")[1][0][1]
    assert fields == b"Subject: hello there\r\n\r\n"
    assert m.fetch("2", "(BODY.PEEK[2])")[1][0][1] == b"<p>part two</p>"
    typ, data = m.fetch("1", "(ENVELOPE)")
    assert b'"hello there"' in data[0] and b'("Bob" NIL "bob" "example.test")' in data[0]
    typ, data = m.fetch("2", "(BODYSTRUCTURE)")
    assert b'("text" "plain"' in data[0] and b'"mixed" ("boundary" "XX")' in data[0]
    # a second fetch comes from the store's cache: the same bytes
    assert m.fetch("2", "(BODYSTRUCTURE)")[1] == data
    typ, data = m.fetch("2", "(BODY)")
    assert b'"mixed")' in data[0] and b"boundary" not in data[0]
    # PEEK left \Seen alone; BODY[] sets it
    assert b"\\Seen" not in m.fetch("1", "(FLAGS)")[1][0]
    typ, data = m.fetch("1", "(BODY[TEXT])")
    assert b"\\Seen" in data[0][0]
    typ, data = m.uid("FETCH", "2", "(FLAGS)")
    assert b"UID 2" in data[0]
    m.logout()


def test_curl_imaps_fetch(imap):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    deliver(imap, MSG)
    r = subprocess.run(["curl", "-sk", "--user", f"{USER}:{PASSWORD}",
                        f"imaps://127.0.0.1:{imap.ports['imaps']}/INBOX;UID=1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == MSG


def test_store_flags_seen_by_second_session(imap):
    deliver(imap, MSG)
    deliver(imap, MSG2)
    a, b = login(imap), login(imap)
    a.select("INBOX")
    b.select("INBOX")
    typ, data = a.store("1:2", "+FLAGS", r"(\Flagged $Important)")
    assert typ == "OK" and len(data) == 2 and b"\\Flagged" in data[0] and b"$Important" in data[0]
    typ, data = a.store("2", "-FLAGS.SILENT", r"(\Flagged)")
    assert typ == "OK" and data == [None]
    # b learns of a's changes with its next command (NOOP)
    typ, _ = b.noop()
    fetches = b.untagged_responses.get("FETCH", [])
    assert any(b"\\Flagged" in f for f in fetches)
    typ, data = b.fetch("1:2", "(FLAGS)")
    assert b"\\Flagged $Important" in data[0] and b"\\Flagged" not in data[1]
    typ, data = b.search(None, "FLAGGED")
    assert data == [b"1"]
    typ, data = b.search(None, "KEYWORD", "$Important")
    assert data == [b"1 2"]
    # any command (not only NOOP) tells b of a's changes first, once the event came
    a.store("1", "+FLAGS.SILENT", r"(\Answered)")
    typ, data = b.fetch("2", "(UID)")
    assert any(b"\\Answered" in d for d in data), data
    a.logout()
    b.logout()


def test_copy_move_append_expunge(imap):
    deliver(imap, MSG)
    deliver(imap, MSG2)
    m = login(imap)
    m.select("INBOX")
    typ, data = m.copy("1:2", "Archive")
    assert typ == "OK"
    code = m.untagged_responses.get("COPYUID") or []
    assert re.match(rb"\d+ 1:2 1:2", code[-1] if code else data[-1]), (code, data)
    typ, data = m._simple_command("MOVE", "1", "Trash")
    assert typ == "OK"
    assert m.untagged_responses.pop("EXPUNGE") == [b"1"]
    typ, data = m.select("Trash")
    assert data == [b"1"]
    assert m.fetch("1", "(BODY.PEEK[])")[1][0][1] == MSG
    typ, data = m.copy("1", "Nonexistent")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    # APPEND with flags and date
    typ, data = m.append("Drafts", r"(\Draft \Seen)", '"05-Jan-2025 10:11:12 +0100"', MSG2)
    assert typ == "OK"
    assert re.search(rb"\[APPENDUID \d+ 1\]", data[0])
    m.select("Drafts")
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"\\Draft" in data[0][0] and b"\\Seen" in data[0][0]
    assert b'"05-Jan-2025 09:11:12 +0000"' in data[0][0]
    assert data[0][1] == MSG2
    m.untagged_responses.pop("EXISTS", None)
    typ, data = m.append("Drafts", None, None, MSG)  # into the selected mailbox
    assert typ == "OK" and m.untagged_responses.pop("EXISTS") == [b"2"]
    typ, data = m.append("Nope", None, None, MSG)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    # EXPUNGE only what is \Deleted; UID EXPUNGE only the named UIDs
    m.select("Archive")
    m.store("1:2", "+FLAGS.SILENT", r"(\Deleted)")
    typ, data = m.uid("EXPUNGE", "2")
    assert typ == "OK" and m.untagged_responses.pop("EXPUNGE") == [b"2"]
    typ, data = m.expunge()
    assert data == [b"1"]
    typ, data = m.select("Archive")
    assert data == [b"0"]
    m.logout()


def test_selected_mailbox_renamed_by_another_session(imap):
    """The selected mailbox is held by its id: another session's RENAME does not
    cut this one off; it goes on reading and writing the same messages, its
    changes reach a session that selected the new name, and a DELETE makes its
    commands fail cleanly rather than reach another mailbox."""
    a, b = login(imap), login(imap)
    assert a.create("Work")[0] == "OK"
    assert a.append("Work", None, None, MSG)[0] == "OK"
    assert a.select("Work") == ("OK", [b"1"])
    assert b.rename("Work", "Play")[0] == "OK"
    assert b.create("Work")[0] == "OK"  # a new mailbox under the old name
    assert b.append("Work", None, None, MSG2)[0] == "OK"
    typ, data = a.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == MSG
    assert a.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
    b.select("Play")
    typ, data = b.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0]
    assert b.append("Play", None, None, MSG2)[0] == "OK"
    a.untagged_responses.pop("EXISTS", None)  # SELECT's
    typ, _ = a.noop()
    assert a.untagged_responses.pop("EXISTS", None) == [b"2"]
    assert a.fetch("2", "(BODY.PEEK[])")[1][0][1] == MSG2
    b.select("Work")
    typ, data = b.fetch("1", "(FLAGS)")
    assert b"\\Flagged" not in data[0]  # a's STORE went to Play, never to the new Work
    b.close()
    assert b.delete("Play")[0] == "OK"
    typ, data = a.fetch("1", "(BODY.PEEK[])")
    assert typ in ("NO", "OK") and (typ == "NO" or data == [None] or data[0] is None), (typ, data)
    assert a.select("Work") == ("OK", [b"1"])
    a.logout()
    b.logout()


def test_mailbox_commands(imap):
    m = login(imap)
    typ, data = m.list()
    names = b"\n".join(data)
    assert b'"/" INBOX' in names and b"\\Sent" in names and b"\\Trash" in names
    assert m.create("Projects/2026")[0] == "OK"
    assert m.create("Projects")[0] == "NO"  # created as the parent already? then ALREADYEXISTS
    typ, data = m.list('""', "Projects/%")
    assert data == [b'(\\HasNoChildren) "/" Projects/2026']
    typ, data = m.list('""', "%")
    assert any(b"\\HasChildren" in d and d.endswith(b" Projects") for d in data)
    assert m.rename("Projects/2026", "Projects/2027")[0] == "OK"
    assert m.rename("Projects/none", "X")[0] == "NO"
    assert m.subscribe("Projects/2027")[0] == "OK"
    typ, data = m.lsub('""', "*")
    assert b'"/" Projects/2027' in b"\n".join(data)
    assert m.unsubscribe("Projects/2027")[0] == "OK"
    assert m.delete("Projects/2027")[0] == "OK"
    assert m.delete("Projects/2027")[0] == "NO"
    assert m.delete("INBOX")[0] == "NO"
    # a parent that does not exist (deleted after its child was made) is \Noselect
    assert m.create("Old/Child")[0] == "OK"
    assert m.delete("Old")[0] == "OK"
    typ, data = m.list('""', "%")
    old = [d for d in data if d.endswith(b" Old")]
    assert old == [b'(\\Noselect \\HasChildren) "/" Old']  # the child is kept
    # RENAME INBOX moves its messages into a new mailbox and leaves INBOX empty
    deliver(imap, MSG2)
    assert m.rename("INBOX", "Saved/Inbox-2026")[0] == "OK"
    assert m.status("INBOX", "(MESSAGES)")[1] == [b"INBOX (MESSAGES 0)"]
    assert m.status("Saved/Inbox-2026", "(MESSAGES)")[1] == [b"Saved/Inbox-2026 (MESSAGES 1)"]
    deliver(imap, MSG)
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)")
    assert typ == "OK"
    assert re.search(rb"MESSAGES 1 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 1 SIZE %d" % len(MSG), data[0])
    typ, data = m.namespace()
    assert data == [b'(("" "/")) (("Other Users/" "/")) (("Public Folders/" "/"))']
    typ, data = m.select("inbox")
    assert typ == "OK" and data == [b"1"]
    assert m.select("Sent", readonly=True)[0] == "OK"
    m.logout()


def test_other_accounts_are_out_of_reach(imap):
    a = login(imap)
    assert a.create("Secret")[0] == "OK"
    a.logout()
    deliver(imap, MSG, user=USER)
    b = login(imap, OTHER)
    typ, data = b.list('""', "*")
    assert b"Secret" not in b"\n".join(data)
    assert b.select("Secret")[0] == "NO"
    assert b.select(f"{USER}/INBOX")[0] == "NO"
    typ, data = b.select("INBOX")
    assert data == [b"0"]
    b.logout()


def test_search(imap):
    deliver(imap, MSG)
    deliver(imap, MSG2)
    m = login(imap)
    m.select("INBOX")
    assert m.search(None, "ALL")[1] == [b"1 2"]
    assert m.search(None, "FROM", "bob")[1] == [b"1"]
    assert m.search(None, "SUBJECT", "SECOND")[1] == [b"2"]
    assert m.search(None, "BODY", "needle")[1] == [b"1"]
    assert m.search(None, "BODY", '"part two"')[1] == [b"2"]
    # Case-insensitive, anywhere in the text, and no false positives.
    assert m.search(None, "BODY", "NeEdLe")[1] == [b"1"]
    assert m.search(None, "BODY", '"first LINE"')[1] == [b"1"]  # body has "First line"
    assert m.search(None, "BODY", '"PART TWO"')[1] == [b"2"]
    assert m.search(None, "BODY", "eedl")[1] == [b"1"]
    assert m.search(None, "BODY", "needlex")[1] == [b""]
    assert m.search(None, "TEXT", "carol")[1] == [b"2"]
    assert m.search(None, "HEADER", "Message-ID", "one@example")[1] == [b"1"]
    assert m.search(None, "NOT", "FROM", "bob")[1] == [b"2"]
    assert m.search(None, "OR", "FROM", "bob", "SUBJECT", "second")[1] == [b"1 2"]
    assert m.search(None, "LARGER", str(len(MSG)))[1] == [b"2"]
    assert m.search(None, "SINCE", "1-Jan-2020", "BEFORE", "1-Jan-2100")[1] == [b"1 2"]
    assert m.search(None, "BEFORE", "1-Jan-2020")[1] == [b""]
    assert m.search(None, "2:*")[1] == [b"2"]
    assert m.uid("SEARCH", "UID", "2")[1] == [b"2"]
    assert m.search(None, "UNSEEN")[1] == [b"1 2"]
    typ, data = m.search("UTF-8", "ALL")
    assert typ == "OK"
    # ESEARCH (RFC 4731)
    typ, data = m._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    assert typ == "OK"
    assert m.untagged_responses.pop("ESEARCH")[0].endswith(b" UID MIN 1 MAX 2 ALL 1:2 COUNT 2")
    typ, data = m._simple_command("SEARCH", "RETURN", "()", "FROM", "nobody")
    assert m.untagged_responses.pop("ESEARCH")[0].endswith(b'")')
    typ, data = m._simple_command("SEARCH", "RETURN", "(COUNT)", "FROM", "nobody")
    assert m.untagged_responses.pop("ESEARCH")[0].endswith(b'") COUNT 0')
    with pytest.raises(imaplib.IMAP4.error):
        m.search(None, "NOSUCHKEY")
    m.logout()


def test_condstore(imap):
    deliver(imap, MSG)
    deliver(imap, MSG2)
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "CONDSTORE" in caps[0].split()
    lines, ok = r.cmd("e", "ENABLE CONDSTORE")
    assert lines == ["* ENABLED CONDSTORE"] and ok.startswith("e OK")
    lines, ok = r.cmd("s", "SELECT INBOX (CONDSTORE)")
    high = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))
    lines, ok = r.cmd("f", "FETCH 1:* (UID MODSEQ)")
    modseqs = [int(re.search(r"MODSEQ \((\d+)\)", ln).group(1)) for ln in lines]
    assert len(modseqs) == 2 and max(modseqs) == high
    lines, ok = r.cmd("t", "STORE 1 +FLAGS (\\Flagged)")
    new = int(re.search(r"MODSEQ \((\d+)\)", lines[0]).group(1))
    assert new > high and "\\Flagged" in lines[0]
    # only message 1 changed since `high`
    lines, ok = r.cmd("g", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {high})")
    assert len(lines) == 1 and lines[0].startswith("* 1 FETCH") and f"MODSEQ ({new})" in lines[0]
    # a conditional STORE on a message changed meanwhile fails for it only
    lines, ok = r.cmd("u", f"STORE 1:2 (UNCHANGEDSINCE {high}) +FLAGS.SILENT (\\Seen)")
    assert ok.startswith("u OK [MODIFIED 1]"), ok
    assert len(lines) == 1 and lines[0].startswith("* 2 FETCH") and "MODSEQ" in lines[0]
    lines, ok = r.cmd("h", f"SEARCH MODSEQ {new}")
    assert re.match(r"\* SEARCH 1 2 \(MODSEQ \d+\)", lines[0]), lines
    lines, ok = r.cmd("b", "FETCH 1 (FLAGS) (NOSUCH 1)")
    assert ok.startswith("b BAD")
    r.close()


def test_idle_woken_by_delivery(imap):
    deliver(imap, MSG)
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    lines, ok = r.cmd("s", "SELECT INBOX")
    assert "* 1 EXISTS" in lines
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    r.sock.settimeout(5)  # a bound for the failure case; the time is checked below
    deliver(imap, MSG2)   # returns once the delivery is committed
    delivered = time.monotonic()
    assert r.line() == "* 2 EXISTS"
    assert time.monotonic() - delivered < 1.0
    assert r.line() == "* 2 RECENT"  # this session was the first told of both
    # a flag change by another session comes as FETCH
    other = login(imap)
    other.select("INBOX")
    other.store("1", "+FLAGS", r"(\Answered)")
    assert "\\Answered" in r.line()
    other.store("2", "+FLAGS.SILENT", r"(\Deleted)")
    assert "\\Deleted" in r.line()
    other.expunge()
    assert r.line() == "* 2 EXPUNGE"
    other.logout()
    r.send(b"DONE\r\n")
    _, ok = r.until("i")
    assert ok.startswith("i OK")
    r.close()


def test_idle_woken_by_smtp_delivery(wharf_factory):
    """The whole path: SMTP on port 25, the spool, the mta, the store, the bus, IDLE."""
    server = wharf_factory(enable={"smtp", "imap", "imaps"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    r = Raw(server.ports["imaps"], tls=True)
    r.login()
    lines, ok = r.cmd("s", "SELECT INBOX")
    assert "* 0 EXISTS" in lines and ok.startswith("s OK")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    r.sock.settimeout(10)  # a bound for the failure case only
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("bob@example.test", [USER], MSG)
    assert r.line() == "* 1 EXISTS"
    r.send(b"DONE\r\n")
    _, ok = r.until("i")
    assert ok.startswith("i OK")
    r.close()
    m = login(server)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT RETURN-PATH)])")
    assert typ == "OK"
    assert b"Subject: hello there" in data[0][1]
    assert b"Return-Path: <bob@example.test>" in data[0][1]
    m.logout()


def test_uids_stable_across_restart(imap):
    for _ in range(3):
        deliver(imap, MSG)
    m = login(imap)
    m.select("INBOX")
    m.store("2", "+FLAGS.SILENT", r"(\Deleted)")
    m.expunge()
    before = m.uid("FETCH", "1:*", "(UID)")[1]
    validity = m.untagged_responses.get("UIDVALIDITY")
    m.logout()
    assert imap.stop() == 0
    imap.start()
    deliver(imap, MSG)
    m = login(imap)
    typ, _ = m.select("INBOX")
    after = m.uid("FETCH", "1:*", "(UID)")[1]
    assert [re.search(rb"UID (\d+)", x).group(1) for x in before] == [b"1", b"3"]
    assert [re.search(rb"UID (\d+)", x).group(1) for x in after] == [b"1", b"3", b"4"]
    m.logout()
    assert validity


def test_bad_input_gets_bad_and_session_goes_on(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    for text, tag in [(b"a1 NOOP (unbalanced\r\n", "a1"), (b"a2 FROB\r\n", "a2"),
                      (b"a3 LOGIN \"unterminated\r\n", "a3"), (b"a4 NOOP  x\r\n", "a4"),
                      (b"a5 FETCH 1 FLAGS\r\n", "a5")]:
        r.send(text)
        _, line = r.until(tag)
        assert line.startswith(tag + " BAD"), line
    r.send(b"\r\n")
    assert r.line().startswith("* BAD")
    r.login()
    r.cmd("s", "SELECT INBOX")
    for text, tag in [("FETCH 0 FLAGS", "b1"), ("FETCH 1:x FLAGS", "b2"), ("FETCH 5 FLAGS", "b3"),
                      ("FETCH 1 (FLAGS", "b4"), ("FETCH 1 (BODY[1.X])", "b5"),
                      ("STORE 1 +FLAGS (\\Bogus)", "b6"), ("SEARCH BEFORE 32-Jan-2020", "b7"),
                      ("UID FROB 1", "b8"), ("SELECT", "b9")]:
        _, line = r.cmd(tag, text)
        assert line.startswith(tag + " BAD"), (text, line)
    _, ok = r.cmd("z", "NOOP")
    assert ok.startswith("z OK")
    r.close()


def test_oversized_literal_refused_before_reading(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    # synchronizing: refused at once, no "+", and the session goes on
    r.send(b"a1 APPEND INBOX {4294967296}\r\n")
    line = r.line()
    assert line.startswith("a1 NO [TOOBIG]"), line
    r.send(b"a2 LOGIN {99999999999}\r\n")
    assert r.line().startswith("a2 BAD")
    _, ok = r.cmd("a3", "NOOP")
    assert ok.startswith("a3 OK")
    # an accepted synchronizing literal gets "+" first
    r.send(b"a4 APPEND INBOX {5}\r\n")
    assert r.line().startswith("+ ")
    r.send(b"hello\r\n")
    _, ok = r.until("a4")
    assert ok.startswith("a4 OK [APPENDUID")
    # LITERAL+ over the limit: BAD, then the connection closes (its bytes are on the way)
    r.send(b"a5 APPEND INBOX {4294967296+}\r\n")
    assert r.line().startswith("a5 BAD")
    assert r.line().startswith("* BYE")
    assert r.line() == ""
    r.close()


def test_literal_before_login_is_small(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    # before login only a credential-sized literal is taken
    r.send(b"a1 LOGIN {100000}\r\n")
    assert r.line().startswith("a1 BAD")
    r.send(b'a2 LOGIN {%d}\r\n' % len(USER))
    assert r.line().startswith("+ ")
    r.send(USER.encode() + b' "' + PASSWORD.encode() + b'"\r\n')
    _, ok = r.until("a2")
    assert ok.startswith("a2 OK")
    r.close()


def test_state_rules(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    _, line = r.cmd("a", "FETCH 1 FLAGS")
    assert line.startswith("a BAD")
    r.login()
    _, line = r.cmd("b", "FETCH 1 FLAGS")
    assert line.startswith("b BAD")
    _, line = r.cmd("c", f'LOGIN "{USER}" "{PASSWORD}"')
    assert line.startswith("c BAD")
    lines, line = r.cmd("d", "EXAMINE INBOX")
    assert line.startswith("d OK [READ-ONLY]")
    assert "* OK [PERMANENTFLAGS ()] Flags permitted" in lines  # nothing may change
    _, line = r.cmd("e", "STORE 1:* +FLAGS (\\Seen)")
    assert line.startswith("e BAD") or line.startswith("e NO")
    _, line = r.cmd("f", "UNSELECT")
    assert line.startswith("f OK")
    _, line = r.cmd("g", "CLOSE")
    assert line.startswith("g BAD")
    lines, line = r.cmd("h", "LOGOUT")
    assert lines[0].startswith("* BYE") and line.startswith("h OK")
    r.close()


def mbsync_config(server, tmp, local):
    rc = tmp / "mbsyncrc"
    rc.write_text(f"""IMAPAccount wharf
Host 127.0.0.1
Port {server.ports['imaps']}
User {USER}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {server.data / 'tls' / 'cert.pem'}

IMAPStore far
Account wharf

MaildirStore near
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :far:
Near :near:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    return rc


def mbsync(rc):
    r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def maildir_files(folder):
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).glob("*"))


def as_sent(path):
    """A Maildir copy as the server holds it: mbsync writes LF line ends and an X-TUID field."""
    data = re.sub(rb"(?m)^X-TUID: .*\n", b"", path.read_bytes())
    return data.replace(b"\n", b"\r\n")


def test_mbsync_both_ways(imap, tmp_path):
    """A real sync client: server to Maildir, Maildir to server, flags and expunges."""
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync (isync) not installed")
    deliver(imap, MSG)
    deliver(imap, MSG2)
    local = tmp_path / "mail"
    local.mkdir()
    rc = mbsync_config(imap, tmp_path, local)
    mbsync(rc)
    files = maildir_files(local / "INBOX")
    assert sorted(as_sent(f) for f in files) == sorted([MSG, MSG2])
    assert (local / "Sent").is_dir() and (local / "Trash").is_dir()
    # near -> far: a new folder with a message, and \Seen on one message
    (local / "Notes" / "cur").mkdir(parents=True)
    (local / "Notes" / "new").mkdir()
    (local / "Notes" / "tmp").mkdir()
    (local / "Notes" / "new" / "1.local").write_bytes(b"Subject: note\r\n\r\nwritten offline\r\n")
    first = next(f for f in files if as_sent(f) == MSG)
    first.rename(first.parent.parent / "cur" / (first.name.split(":")[0] + ":2,S"))
    mbsync(rc)
    m = login(imap)
    typ, data = m.select("Notes")
    assert data == [b"1"]
    assert b"written offline" in m.fetch("1", "(BODY.PEEK[TEXT])")[1][0][1]
    m.select("INBOX")
    assert m.search(None, "SEEN", "FROM", "bob")[1] == [b"1"]
    # far -> near: an expunge on the server removes the local copy
    m.store("2", "+FLAGS.SILENT", r"(\Deleted)")
    m.expunge()
    m.logout()
    mbsync(rc)
    assert [as_sent(f) for f in maildir_files(local / "INBOX")] == [MSG]


def test_pipelined_commands_with_literal_plus(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    # login, a LITERAL+ APPEND and a STATUS in one packet: answered in order
    r.send(b'a0 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n' % (len(USER), USER.encode(), len(PASSWORD),
                                                     PASSWORD.encode()) +
           b"a1 NOOP\r\na2 APPEND INBOX {8+}\r\nhi\r\nyo\r\n\r\na3 STATUS INBOX (MESSAGES)\r\n")
    _, ok = r.until("a0")
    assert ok.startswith("a0 OK")
    _, ok = r.until("a1")
    assert ok.startswith("a1 OK")
    _, ok = r.until("a2")
    assert ok.startswith("a2 OK [APPENDUID")
    lines, ok = r.until("a3")
    assert lines == ["* STATUS INBOX (MESSAGES 1)"] and ok.startswith("a3 OK")
    r.cmd("s", "SELECT INBOX")
    r.send(b"f FETCH 1 BODY.PEEK[]\r\n")
    assert r.line().endswith("{8}")
    assert r.f.read(8) == b"hi\r\nyo\r\n"
    assert r.line() == ")"
    r.close()


def test_reload_ends_idle_sessions_with_bye(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    imap.wharf("reload")
    assert r.line().startswith("* BYE [UNAVAILABLE]")
    r.close()

    def new_login():  # the new generation serves once its auth process is up
        try:
            return login(imap)
        except imaplib.IMAP4.error as e:
            assert b"UNAVAILABLE" in str(e).encode(), e
            return None
    m = wait_until(new_login, what="a login served by the new workers")
    assert m.select("INBOX")[0] == "OK"
    m.logout()
