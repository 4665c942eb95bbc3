"""The protocol faults dovecot's imaptest found (issue 19), one test each, so
that CI (which cannot fetch imaptest) keeps them fixed. tests/imaptest/run runs
imaptest itself by hand; doc/imap.md records its results.

Raw line clients from test_imap (exact responses, several sessions at once).
"""
import base64
import re

from test_imap import MSG, MSG2, PASSWORD, USER, Raw, deliver, imap  # noqa: F401


class Session(Raw):
    """Raw, but an empty line inside a literal is not taken for the end of the connection."""

    def until(self, tag):
        lines = []
        while True:
            raw = self.f.readline()
            if raw == b"":
                raise AssertionError(f"connection closed; got {lines}")
            ln = raw.decode("utf-8", "replace").rstrip("\r\n")
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)


def session(server):
    r = Session(server.ports["imaps"], tls=True)
    r.login()
    return r


def flags_line(lines):
    return next(ln for ln in lines if ln.startswith("* FLAGS"))


def test_keywords_announced_before_use(imap):
    """RFC 3501 7.2.6: a keyword appears in FETCH FLAGS only after an untagged
    FLAGS (and PERMANENTFLAGS) told this session of it; SELECT lists them."""
    deliver(imap, MSG)
    deliver(imap, MSG2)
    a, b = session(imap), session(imap)
    lines, _ = a.cmd("a1", "SELECT INBOX")
    assert flags_line(lines) == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    b.cmd("b1", "SELECT INBOX")
    # b sets a keyword a has never heard of: a's NOOP announces it, then uses it
    lines, ok = b.cmd("b2", "STORE 1 +FLAGS ($Label1)")
    assert ok.startswith("b2 OK")
    assert lines.index(next(ln for ln in lines if ln.startswith("* FLAGS"))) < \
        lines.index(next(ln for ln in lines if "FETCH" in ln))
    assert "$Label1" in flags_line(lines)
    lines, ok = a.cmd("a2", "NOOP")
    fl = [i for i, ln in enumerate(lines) if ln.startswith("* FLAGS")]
    fetch = [i for i, ln in enumerate(lines) if "FETCH" in ln and "$Label1" in ln]
    assert fl and fetch and fl[0] < fetch[0], lines
    assert "$Label1" in lines[fl[0]]
    perm = next(ln for ln in lines if "PERMANENTFLAGS" in ln)
    assert "$Label1 \\*" in perm
    # known now: no second announcement for the same keyword
    lines, _ = b.cmd("b3", "STORE 2 +FLAGS ($label1)")
    assert not any(ln.startswith("* FLAGS") for ln in lines)
    # a later SELECT lists the mailbox's keywords in FLAGS and PERMANENTFLAGS
    c = session(imap)
    lines, _ = c.cmd("c1", "SELECT INBOX")
    assert flags_line(lines) == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"
    assert any("PERMANENTFLAGS (" in ln and "$Label1 \\*" in ln for ln in lines)
    lines, _ = c.cmd("c2", "EXAMINE INBOX")
    assert flags_line(lines).endswith("$Label1)")


def test_expunged_by_another_session_stays_readable(imap):
    """RFC 2180 4.1.1: what another session expunged stays readable for a
    session not yet told (FETCH must not answer NO), until its EXPUNGE."""
    deliver(imap, MSG)
    deliver(imap, MSG2)
    a, b = session(imap), session(imap)
    a.cmd("a1", "SELECT INBOX")
    b.cmd("b1", "SELECT INBOX")
    lines, ok = b.cmd("b2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines, ok = b.cmd("b3", "EXPUNGE")
    assert "* 1 EXPUNGE" in lines and ok.startswith("b3 OK")
    # a has not been told: message 1 is still there for it, body and all
    lines, ok = a.cmd("a2", "FETCH 1:2 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert ok.startswith("a2 OK"), (lines, ok)
    assert any(ln.startswith("* 1 FETCH (UID 1 ") for ln in lines)
    assert "Subject: hello there" in lines
    lines, ok = a.cmd("a3", "UID FETCH 1 (BODY.PEEK[TEXT])")
    assert ok.startswith("a3 OK") and "second line with a needle" in lines, lines
    # then NOOP tells it, and the message is gone for it too
    lines, ok = a.cmd("a4", "NOOP")
    assert "* 1 EXPUNGE" in lines
    lines, ok = a.cmd("a5", "UID FETCH 1 (UID)")
    assert ok.startswith("a5 OK") and lines == []


def test_recent_first_session_gets_it(imap):
    """RFC 3501 2.3.2: \\Recent goes to the first session told of a message;
    RECENT counts in SELECT, EXAMINE, STATUS and NOOP; SEARCH NEW/OLD/RECENT."""
    deliver(imap, MSG)
    deliver(imap, MSG2)
    a, b = session(imap), session(imap)
    # EXAMINE and STATUS look without taking
    lines, _ = a.cmd("a1", "EXAMINE INBOX")
    assert "* 2 RECENT" in lines
    lines, _ = a.cmd("a2", "FETCH 1 FLAGS")
    assert lines == ["* 1 FETCH (FLAGS (\\Recent))"]
    lines, _ = b.cmd("b1", "STATUS INBOX (MESSAGES RECENT)")
    assert lines == ["* STATUS INBOX (MESSAGES 2 RECENT 2)"]
    # the first SELECT takes them
    lines, _ = a.cmd("a3", "SELECT INBOX")
    assert "* 2 RECENT" in lines
    lines, _ = a.cmd("a4", "SEARCH RECENT")
    assert lines == ["* SEARCH 1 2"]
    a.cmd("a5", "STORE 2 +FLAGS.SILENT (\\Seen)")
    lines, _ = a.cmd("a6", "SEARCH NEW")
    assert lines == ["* SEARCH 1"]
    lines, _ = a.cmd("a7", "SEARCH OLD")
    assert lines == ["* SEARCH"]
    lines, _ = b.cmd("b2", "STATUS INBOX (RECENT)")
    assert lines == ["* STATUS INBOX (RECENT 0)"]
    lines, _ = b.cmd("b3", "SELECT INBOX")
    assert "* 0 RECENT" in lines
    lines, _ = b.cmd("b4", "SEARCH OLD")
    assert lines == ["* SEARCH 1 2"]
    # a new message: the first of the two to be told takes it
    deliver(imap, MSG)
    lines, _ = b.cmd("b5", "NOOP")
    assert "* 3 EXISTS" in lines and "* 1 RECENT" in lines
    lines, _ = b.cmd("b6", "FETCH 3 FLAGS")
    assert lines == ["* 3 FETCH (FLAGS (\\Recent))"]
    lines, _ = a.cmd("a8", "NOOP")
    assert "* 3 EXISTS" in lines and "* 2 RECENT" in lines  # still its own two
    lines, _ = a.cmd("a9", "FETCH 3 FLAGS")
    assert lines == ["* 3 FETCH (FLAGS ())"]
    # \Recent cannot be stored; the session keeps it across flag changes
    lines, ok = a.cmd("a10", "STORE 1 +FLAGS (\\Flagged)")
    assert lines == ["* 1 FETCH (FLAGS (\\Recent \\Flagged))"]
    # IMAP4rev2 sessions have no \Recent and take none
    c = session(imap)
    c.cmd("c0", "ENABLE IMAP4rev2")
    deliver(imap, MSG2)
    lines, _ = c.cmd("c1", "SELECT INBOX")
    assert not any("RECENT" in ln for ln in lines)
    lines, _ = c.cmd("c2", "FETCH 4 FLAGS")
    assert lines == ["* 4 FETCH (FLAGS ())"]
    lines, _ = b.cmd("b7", "NOOP")
    assert "* 2 RECENT" in lines  # 3 and 4: c took nothing


def test_bracket_is_an_astring_char(imap):
    """RFC 3501 9: "[" is an ATOM-CHAR; only fetch attributes open a section."""
    r = session(imap)
    lines, ok = r.cmd("a1", "CREATE a[b")
    assert ok.startswith("a1 OK"), ok
    lines, ok = r.cmd("a2", "LIST \"\" a[b")
    assert lines == ['* LIST (\\HasNoChildren) "/" "a[b"'] or lines == ['* LIST (\\HasNoChildren) "/" a[b'], lines
    lines, ok = r.cmd("a3", "SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}")
    assert ok.startswith("a3 NO"), ok  # no such mailbox, not BAD
    lines, ok = r.cmd("a4", "LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*")
    assert ok.startswith("a4 OK"), ok
    # a section still holds spaces and parentheses; an unclosed one is still BAD
    deliver(imap, MSG)
    r.cmd("a5", "SELECT INBOX")
    lines, ok = r.cmd("a6", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert ok.startswith("a6 OK") and "Subject: hello there" in lines
    lines, ok = r.cmd("a7", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT))")
    assert ok.startswith("a7 BAD")


def test_lsub_noselect_parent(imap):
    """RFC 3501 6.3.9: "%" in LSUB returns the unsubscribed parent of a
    subscribed child as \\Noselect."""
    r = session(imap)
    for name in ("box/test", "box/test2/test", "box/test3/test3"):
        assert r.cmd("c", f"CREATE {name}")[1].startswith("c OK")
        assert r.cmd("s", f"SUBSCRIBE {name}")[1].startswith("s OK")
    lines, ok = r.cmd("l1", 'LSUB "" box/%')
    assert sorted(lines) == ['* LSUB () "/" box/test', '* LSUB (\\Noselect) "/" box/test2',
                             '* LSUB (\\Noselect) "/" box/test3']
    lines, ok = r.cmd("l2", 'LSUB "" *test')
    assert sorted(lines) == ['* LSUB () "/" box/test', '* LSUB () "/" box/test2/test']
    # a subscribed parent is listed as itself, once
    r.cmd("s", "SUBSCRIBE box/test2")
    lines, ok = r.cmd("l3", 'LSUB "" box/%')
    assert sorted(lines) == ['* LSUB () "/" box/test', '* LSUB () "/" box/test2',
                             '* LSUB (\\Noselect) "/" box/test3']


def test_condstore_enabling_fetch_and_esearch_modseq(imap):
    """RFC 7162 3.1: the first CONDSTORE-enabling command with a mailbox
    selected gets an untagged OK [HIGHESTMODSEQ]; 3.1.5 / RFC 4731: with
    MIN/MAX alone, MODSEQ is that of the messages returned."""
    for _ in range(4):
        deliver(imap, MSG)
    r = session(imap)
    r.cmd("s", "SELECT INBOX")
    lines, ok = r.cmd("f1", "FETCH 1 MODSEQ")
    assert re.match(r"\* OK \[HIGHESTMODSEQ \d+\]", lines[0]), lines
    lines, _ = r.cmd("f2", "FETCH 1 MODSEQ")
    assert not any("HIGHESTMODSEQ" in ln for ln in lines)  # once
    ms = {}
    for n in (1, 3, 2, 4):
        lines, _ = r.cmd("st", f"STORE {n} +FLAGS (\\Seen)")
        ms[n] = int(re.search(r"MODSEQ \((\d+)\)", lines[0]).group(1))
    q = 'MODSEQ "/flags/\\\\seen" all 1'
    lines, _ = r.cmd("e1", f"SEARCH RETURN (MIN) 1:3 {q}")
    assert lines == [f'* ESEARCH (TAG "e1") MIN 1 MODSEQ {ms[1]}']
    lines, _ = r.cmd("e2", f"SEARCH RETURN (MAX) 1:3 {q}")
    assert lines == [f'* ESEARCH (TAG "e2") MAX 3 MODSEQ {ms[3]}']
    lines, _ = r.cmd("e3", f"SEARCH RETURN (MIN MAX) 2:3 {q}")
    assert lines == [f'* ESEARCH (TAG "e3") MIN 2 MAX 3 MODSEQ {ms[2]}']
    lines, _ = r.cmd("e4", f"SEARCH RETURN (ALL) 1:3 {q}")
    assert lines == [f'* ESEARCH (TAG "e4") ALL 1:3 MODSEQ {ms[2]}']


def test_move_into_the_same_mailbox(imap):
    """RFC 6851 3.3: MOVE is COPY then expunging the sources, also within one
    mailbox: a new UID, COPYUID, EXPUNGE, EXISTS."""
    for _ in range(3):
        deliver(imap, MSG)
    r = session(imap)
    lines, _ = r.cmd("s", "SELECT INBOX")
    validity = re.search(r"UIDVALIDITY (\d+)", " ".join(lines)).group(1)
    lines, ok = r.cmd("m", "MOVE 1 INBOX")
    assert ok.startswith("m OK"), ok
    assert lines[0] == f"* OK [COPYUID {validity} 1 4] Moved"
    assert "* 1 EXPUNGE" in lines and "* 3 EXISTS" in lines
    assert lines.index("* 1 EXPUNGE") < lines.index("* 3 EXISTS")
    lines, _ = r.cmd("f", "FETCH 1:* UID")
    assert [re.search(r"UID (\d+)", ln).group(1) for ln in lines] == ["2", "3", "4"]
    lines, _ = r.cmd("f2", "UID FETCH 4 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert "Subject: hello there" in lines


def test_sort_base_subject_and_cc(imap):
    """RFC 5256: base subject compared with i;ascii-casemap (a-z as A-Z, so
    "_" sorts after "C"); CC sorts on the first address's mailbox, a group's
    name when the field starts with a group."""
    subjects = ["a", "C", "b", "_", "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "Re: [FWD: c]",
                "[xyz]", "=?iso-8859-1?q?RE:_C?="]
    for s in subjects:
        deliver(imap, f"From: x@example.test\r\nSubject: {s}\r\n\r\nbody\r\n".encode())
    r = session(imap)
    r.cmd("s", "SELECT INBOX")
    lines, _ = r.cmd("o1", "SORT (SUBJECT) US-ASCII ALL")
    assert lines == ["* SORT 1 3 5 2 6 8 7 4"]
    r.cmd("x", "STORE 1:* +FLAGS.SILENT (\\Deleted)")
    r.cmd("y", "EXPUNGE")
    for cc in ("user2@domain2.org (foo bar)", "user2: blah@domain1.org;", "user1@domain1.org"):
        deliver(imap, f"From: x@example.test\r\nCc: {cc}\r\n\r\nbody\r\n".encode())
    r.cmd("n", "NOOP")
    lines, _ = r.cmd("o2", "SORT (CC) US-ASCII ALL")
    assert lines == ["* SORT 3 1 2"]
    lines, _ = r.cmd("o3", "SORT (REVERSE CC) US-ASCII ALL")
    assert lines == ["* SORT 1 2 3"]


def test_binary_append_is_stored_in_base64(imap):
    """RFC 3516 4.3: a part with NUL (sent as a literal8) cannot go out in a
    BODY[] literal (RFC 3501 4.3): stored in base64, BINARY[] gives it back."""
    part = b"\x00-\xe4\r\n\r\n"
    msg = (b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
           b"Mime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + part)
    r = session(imap)
    r.send(b"a APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(msg), msg))
    _, ok = r.until("a")
    assert ok.startswith("a OK"), ok
    r.cmd("s", "SELECT INBOX")
    r.send(b"f FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME])\r\n")
    head = r.f.readline()
    n = int(re.search(rb"\{(\d+)\}\r\n$", head).group(1))
    body = r.f.read(n)
    assert b"\x00" not in body and base64.b64decode(body) == part, body
    rest, ok = r.until("f")
    assert ok.startswith("f OK")
    assert "Content-Transfer-Encoding: base64" in rest
    r.send(b"b FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])\r\n")
    head = r.f.readline()
    assert head.startswith(b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}" % (len(part), len(part))), head
    assert r.f.read(len(part)) == part
    _, ok = r.until("b")
    assert ok.startswith("b OK")
    # a message without NUL is stored byte for byte
    r.send(b"c APPEND INBOX {%d+}\r\n%s\r\n" % (len(MSG), MSG))
    r.until("c")
    r.cmd("n", "NOOP")
    r.send(b"d FETCH 2 BODY.PEEK[]\r\n")
    head = r.f.readline()
    assert head.endswith(b"{%d}\r\n" % len(MSG)) and r.f.read(len(MSG)) == MSG
    r.until("d")
