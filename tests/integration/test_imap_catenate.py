"""CATENATE (RFC 4469) with IMAP URLs (RFC 5092) against a real wharfd, over raw
lines: APPEND made of TEXT literals and URL parts, with MULTIAPPEND, and the
refusals (BADURL, TRYCREATE) that must store nothing.
"""
import re

from test_imap import OTHER, Raw, deliver, imap, login  # noqa: F401 (imap is a fixture)

MULTI = (b"From: a@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
         b"--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
         b"--XX\r\nContent-Type: text/html\r\n\r\n<p>part two</p>\r\n--XX--\r\n")
SIMPLE = b"From: foo@example.com\r\n\r\nHello world body\r\n"


def lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def send(r, tag, cmd: bytes):
    r.send(tag.encode() + b" " + cmd + b"\r\n")
    return r.until(tag)


def body(r, tag, msn):
    """BODY.PEEK[] of one message, read through its literal."""
    r.send(f"{tag} FETCH {msn} BODY.PEEK[]\r\n".encode())
    head = r.line()
    m = re.search(r"\{(\d+)\}$", head)
    assert m, head
    data = r.f.read(int(m.group(1)))
    r.line()  # ")"
    _, ok = r.until(tag)
    assert ok.startswith(f"{tag} OK")
    return data


def session(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    return r


def test_catenate_capability_and_rfc4469_parts(imap):
    deliver(imap, MULTI)  # INBOX UID 1
    deliver(imap, SIMPLE)  # INBOX UID 2
    r = session(imap)
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "CATENATE" in caps[0].split()
    lines, _ = r.cmd("s", "STATUS INBOX (UIDVALIDITY)")
    validity = int(re.search(r"UIDVALIDITY (\d+)", lines[0]).group(1))
    r.cmd("k", "CREATE Drafts2")
    # RFC 4469 3's example shape: header of one message, a new text part, parts of it by URL
    new_text = b"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nnew text\r\n"
    cmd = (b"APPEND Drafts2 (\\Seen \\Draft) CATENATE (URL \"/INBOX;UIDVALIDITY=%d/;UID=1/;section=HEADER\""
           % validity + b" TEXT " + lit(b"--XX\r\n") +
           b" URL \"/INBOX/;UID=1/;SECTION=1.MIME\" URL \"/INBOX/;uid=1/;section=1\""
           b" TEXT " + lit(new_text + b"--XX--\r\n") + b")")
    _, ok = send(r, "a", cmd)
    assert ok.startswith("a OK [APPENDUID "), ok
    r.cmd("e", "EXAMINE Drafts2")
    got = body(r, "f", 1)
    header = MULTI.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    assert got == (header + b"--XX\r\nContent-Type: text/plain\r\n\r\npart one" + new_text +
                   b"--XX--\r\n")
    lines, _ = r.cmd("g", "FETCH 1 FLAGS")
    assert "\\Draft" in lines[0] and "\\Seen" in lines[0]


def test_catenate_imaptest_cases(imap):
    """The expected results of imaptest's catenate script."""
    msg2 = b"From: foo2@example.com\r\n\r\nLookslike: header\r\n\r\nAnother body\r\n"
    deliver(imap, SIMPLE)
    deliver(imap, msg2)
    r = session(imap)
    r.cmd("k", "CREATE box2")
    parts = [
        b'URL "/INBOX/;uid=1/;section=header" TEXT ' + lit(b"body1\r\n"),
        b'URL "/INBOX/;uid=2/;section=text" TEXT ' + lit(b"body3\r\n"),
        b'URL "/INBOX/;uid=2/;section=1" TEXT ' + lit(b"body4\r\n"),
        b"TEXT " + lit(b"From: new@example.com\r\nSubject: test header\r\n\r\n") +
        b' URL "/INBOX/;uid=1/;section=1" TEXT ' + lit(b"\r\nsuffix\r\n"),
        b'URL "/INBOX/;uid=2/;partial=100000.1" TEXT ' + lit(b"Hdr: foo\r\n\r\nbody7\r\n"),
        b'URL "/INBOX/;uid=2/;partial=6.4"',
        b'URL "imap://alice%40example.test@MAIL.example.test:993/INBOX/;UID=1/;SECTION=TEXT"',
    ]
    for i, p in enumerate(parts):
        _, ok = send(r, f"a{i}", b"APPEND box2 CATENATE (" + p + b")")
        assert ok.startswith(f"a{i} OK"), ok
    r.cmd("e", "EXAMINE box2")
    want = [b"From: foo@example.com\r\n\r\nbody1\r\n",
            b"Lookslike: header\r\n\r\nAnother body\r\nbody3\r\n",
            b"Lookslike: header\r\n\r\nAnother body\r\nbody4\r\n",
            b"From: new@example.com\r\nSubject: test header\r\n\r\nHello world body\r\n\r\nsuffix\r\n",
            b"Hdr: foo\r\n\r\nbody7\r\n",
            b"foo2",
            b"Hello world body\r\n"]
    for i, w in enumerate(want):
        assert body(r, f"f{i}", i + 1) == w


def test_catenate_refusals_store_nothing(imap):
    deliver(imap, SIMPLE)
    deliver(imap, SIMPLE, user=OTHER)
    r = session(imap)
    r.cmd("k", "CREATE box2")
    bad_urls = [
        "/INBOX;UIDVALIDITY=12345/;UID=1/;section=header",  # wrong UIDVALIDITY
        "/INBOX/;UID=9",                                     # no such message
        "/INBOX/;UID=1/;section=7",                          # no such part
        "/Nowhere/;UID=1",                                   # no such mailbox
        f"/Other Users/{OTHER}/INBOX/;UID=1".replace(" ", "%20"),  # no right on bob's INBOX
        "imap://elsewhere.example/INBOX/;UID=1",             # another server
        "imap://bob%40example.test@mail.example.test/INBOX/;UID=1",  # another user's URL
        "/INBOX/;UID=1/;urlauth=anonymous",                  # URLAUTH is not offered
        "INBOX/;UID=1",                                      # not an absolute path
    ]
    for i, url in enumerate(bad_urls):
        cmd = b"APPEND box2 CATENATE (TEXT " + lit(b"hdr: 1\r\n\r\n") + f' URL "{url}")'.encode()
        _, ok = send(r, f"b{i}", cmd)
        assert ok.startswith(f"b{i} NO [BADURL "), (url, ok)
    # a bad URL in the second message of a MULTIAPPEND: nothing of the first either
    cmd = (b'APPEND box2 CATENATE (URL "/INBOX/;uid=1") CATENATE (URL "/INBOX;UIDVALIDITY=1/;uid=1")')
    _, ok = send(r, "m", cmd)
    assert ok.startswith("m NO [BADURL")
    # the target is checked first: TRYCREATE even with a bad URL
    _, ok = send(r, "t", b'APPEND nonexistent CATENATE (URL "/INBOX;UIDVALIDITY=1/;uid=1")')
    assert ok.startswith("t NO [TRYCREATE]")
    # syntax errors are BAD
    for i, bad in enumerate([b"CATENATE ()", b"CATENATE (TEXT)", b'CATENATE (FOO "x")',
                             b"CATENATE (URL (x))"]):
        _, ok = send(r, f"x{i}", b"APPEND box2 " + bad)
        assert ok.startswith(f"x{i} BAD"), bad
    lines, _ = r.cmd("s", "STATUS box2 (MESSAGES)")
    assert lines == ["* STATUS box2 (MESSAGES 0)"]
    # the server goes on
    _, ok = r.cmd("n", "NOOP")
    assert ok.startswith("n OK")


def test_catenate_with_multiappend_and_shared_mailbox(imap):
    deliver(imap, SIMPLE)
    deliver(imap, b"From: bob@example.test\r\nSubject: shared\r\n\r\nbob's text\r\n", user=OTHER)
    bob = login(imap, OTHER)
    bob.setacl("INBOX", "alice@example.test", "lr")
    bob.logout()
    r = session(imap)
    data = b"New: Message\r\n\r\nbody4\r\n"
    url_bob = f"/Other Users/{OTHER}/INBOX/;UID=1/;SECTION=TEXT".replace(" ", "%20")
    cmd = (b'APPEND INBOX CATENATE (URL "/INBOX/;uid=1") (\\Answered) ' + lit(data) +
           b' CATENATE (TEXT ' + lit(b"Subject: from bob\r\n\r\n") + f' URL "{url_bob}")'.encode())
    _, ok = send(r, "a", cmd)
    m = re.match(r"a OK \[APPENDUID \d+ (\S+)\]", ok)
    assert m and m.group(1) == "2:4", ok
    r.cmd("s", "SELECT INBOX")
    assert body(r, "f2", 2) == SIMPLE
    assert body(r, "f3", 3) == data
    assert body(r, "f4", 4) == b"Subject: from bob\r\n\r\nbob's text\r\n"
    lines, _ = r.cmd("g", "FETCH 3 FLAGS")
    assert "\\Answered" in lines[0]
