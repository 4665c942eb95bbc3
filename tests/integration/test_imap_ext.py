"""IMAP extensions beyond the base (QRESYNC, ...) against a real wharfd.

Raw sockets (from test_imap) for the exact responses, imaplib where it suffices.
"""
import base64
import re

from test_imap import MSG, MSG2, Raw, deliver, imap, login  # noqa: F401 (imap is a fixture)


def msg(n):
    return (f"From: x{n}@example.test\r\nTo: alice@example.test\r\nSubject: m{n}\r\n"
            f"Message-ID: <m{n}@example.test>\r\n\r\nbody {n}\r\n").encode()


def highestmodseq(lines):
    return int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))


def uidvalidity(lines):
    return int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))


def test_qresync_resync_after_expunges_by_another_session(imap):
    for i in range(1, 7):
        deliver(imap, msg(i))  # UIDs 1..6
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "QRESYNC" in caps[0].split()
    # the QRESYNC parameter needs ENABLE QRESYNC first (RFC 7162 3.2.5)
    _, ok = r.cmd("x", "SELECT INBOX (QRESYNC (1 1))")
    assert ok.startswith("x BAD")
    lines, ok = r.cmd("e", "ENABLE QRESYNC")
    assert lines == ["* ENABLED QRESYNC"] and ok.startswith("e OK")
    lines, ok = r.cmd("s", "SELECT INBOX")
    assert ok.startswith("s OK [READ-WRITE]")
    validity, high = uidvalidity(lines), highestmodseq(lines)
    r.cmd("u", "UNSELECT")

    # another session expunges UIDs 2 and 4 and flags UID 5
    other = login(imap)
    other.select("INBOX")
    other.uid("STORE", "2,4", "+FLAGS.SILENT", r"(\Deleted)")
    other.uid("STORE", "5", "+FLAGS.SILENT", r"(\Flagged)")
    other.expunge()
    other.logout()

    lines, ok = r.cmd("q", f"SELECT INBOX (QRESYNC ({validity} {high} 1:6))")
    assert ok.startswith("q OK [READ-WRITE]"), ok
    assert "* 4 EXISTS" in lines
    assert "* VANISHED (EARLIER) 2,4" in lines
    fetches = [ln for ln in lines if " FETCH " in ln]
    assert len(fetches) == 1 and fetches[0].startswith("* 3 FETCH (UID 5 FLAGS (\\Flagged) MODSEQ (")
    # the VANISHED and FETCH come after the select responses
    assert lines.index("* VANISHED (EARLIER) 2,4") > lines.index("* 4 EXISTS")
    new_high = highestmodseq(lines)
    assert new_high > high

    # known-uids restrict the answer; a reselect says CLOSED first
    lines, ok = r.cmd("k", f"EXAMINE INBOX (QRESYNC ({validity} {high} 3:6 (1:2 1:2)))")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert "* VANISHED (EARLIER) 4" in lines and ok.startswith("k OK [READ-ONLY]")
    # another UIDVALIDITY: as if nothing changed
    lines, ok = r.cmd("v", f"SELECT INBOX (QRESYNC ({validity + 1} {high}))")
    assert ok.startswith("v OK") and not any("VANISHED" in ln or "FETCH" in ln for ln in lines)
    # up to date: nothing to report
    lines, ok = r.cmd("w", f"SELECT INBOX (QRESYNC ({validity} {new_high}))")
    assert not any("VANISHED" in ln or "FETCH" in ln for ln in lines)

    # UID FETCH (CHANGEDSINCE m VANISHED): only UIDs in the given set
    lines, ok = r.cmd("f", f"UID FETCH 3:6 (FLAGS) (CHANGEDSINCE {high} VANISHED)")
    assert ok.startswith("f OK")
    assert lines[0] == "* VANISHED (EARLIER) 4"
    assert len(lines) == 2 and "UID 5" in lines[1] and "MODSEQ" in lines[1]
    _, ok = r.cmd("g", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {high} VANISHED)")
    assert ok.startswith("g BAD")  # VANISHED only with UID FETCH
    _, ok = r.cmd("h", "UID FETCH 1:* (FLAGS) (VANISHED)")
    assert ok.startswith("h BAD")  # and only with CHANGEDSINCE

    # live: expunges by another session come as VANISHED, never EXPUNGE
    other = login(imap)
    other.select("INBOX")
    other.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")
    other.expunge()
    other.logout()
    lines, ok = r.cmd("n", "NOOP")
    assert lines == ["* VANISHED 1"], lines
    # our own EXPUNGE: VANISHED and the new HIGHESTMODSEQ in the tagged OK
    r.cmd("d", "UID STORE 6 +FLAGS.SILENT (\\Deleted)")
    lines, ok = r.cmd("x", "EXPUNGE")
    assert lines == ["* VANISHED 6"]
    m = re.match(r"x OK \[HIGHESTMODSEQ (\d+)\]", ok)
    assert m and int(m.group(1)) > new_high
    lines, ok = r.cmd("z", f"UID FETCH 1:* (UID) (CHANGEDSINCE {m.group(1)} VANISHED)")
    assert lines == [] and ok.startswith("z OK")
    r.close()


def test_select_params_bad(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    r.cmd("e", "ENABLE QRESYNC")
    for tag, params in (("a", "(QRESYNC)"), ("b", "(QRESYNC (0 1))"), ("c", "(QRESYNC (1 x))"),
                        ("d", "(QRESYNC (1 1 1:x))"), ("f", "(QRESYNC (1 1 1:2 (1)))"),
                        ("g", "(NOSUCH)"), ("h", "()")):
        _, ok = r.cmd(tag, f"SELECT INBOX {params}")
        assert ok.startswith(f"{tag} BAD"), (params, ok)
    lines, ok = r.cmd("i", "SELECT INBOX (CONDSTORE QRESYNC (1 1 1:* (1 1)))")
    assert ok.startswith("i OK")
    r.close()


def list_lines(lines):
    """{name: (attributes, rest)} of LIST responses; STATUS lines kept in order aside."""
    out = {}
    for ln in lines:
        m = re.match(r'\* LIST \(([^)]*)\) "/" ("[^"]*"|\S+)(.*)$', ln)
        if m:
            out[m.group(2).strip('"')] = (set(m.group(1).split()), m.group(3).strip())
    return out


def test_list_extended_and_list_status(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert {"LIST-EXTENDED", "LIST-STATUS"} <= set(caps[0].split())
    for t, name in enumerate(("Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable/Broccoli")):
        _, ok = r.cmd(f"m{t}", f"CREATE {name}")
        assert " OK" in ok
    _, ok = r.cmd("d", "DELETE Vegetable")  # its child stays: a missing parent
    assert ok.startswith("d OK")
    for t, name in enumerate(("Fruit/Banana", "Peach", "Vegetable/Broccoli")):
        r.cmd(f"s{t}", f"SUBSCRIBE {name}")
    lsub, _ = r.cmd("l", 'LSUB "" "*"')
    subscribed = {re.search(r'"/" "?([^"]*)"?$', ln).group(1) for ln in lsub}

    # base LIST: unchanged (a missing parent is \Noselect)
    lines, ok = r.cmd("a", 'LIST "" "*"')
    got = list_lines(lines)
    assert got["Vegetable"][0] == {"\\Noselect", "\\HasChildren"}
    assert got["Fruit"][0] == {"\\HasChildren"} and "Peach" not in got

    # SUBSCRIBED: exactly the subscribed names, \NonExistent where they do not exist
    lines, ok = r.cmd("b", 'LIST (SUBSCRIBED) "" "*"')
    got = list_lines(lines)
    assert set(got) == subscribed
    assert got["Peach"][0] == {"\\NonExistent", "\\HasNoChildren", "\\Subscribed"}
    assert got["Fruit/Banana"][0] == {"\\HasNoChildren", "\\Subscribed"}

    # RECURSIVEMATCH: parents of subscribed names the pattern misses, with CHILDINFO
    lines, ok = r.cmd("e", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    got = list_lines(lines)
    assert got["Fruit"] == ({"\\HasChildren"}, '("CHILDINFO" ("SUBSCRIBED"))')
    assert got["Vegetable"] == ({"\\NonExistent", "\\HasChildren"}, '("CHILDINFO" ("SUBSCRIBED"))')
    assert got["Peach"][0] == {"\\NonExistent", "\\HasNoChildren", "\\Subscribed"}
    assert "Tofu" not in got and "Fruit/Banana" not in got

    # return options on a plain selection; several patterns
    lines, ok = r.cmd("f", 'LIST "" ("Fruit/*" Tofu) RETURN (SUBSCRIBED CHILDREN)')
    got = list_lines(lines)
    assert set(got) == {"Fruit/Apple", "Fruit/Banana", "Tofu"}
    assert got["Fruit/Banana"][0] == {"\\HasNoChildren", "\\Subscribed"}
    assert got["Fruit/Apple"][0] == {"\\HasNoChildren"}

    # SPECIAL-USE selection (RFC 6154)
    lines, ok = r.cmd("g", 'LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)')
    got = list_lines(lines)
    assert got and all(any(a in attrs for a in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk",
                                                "\\Archive")) for attrs, _ in got.values())
    assert "INBOX" not in got and "Tofu" not in got

    # LIST-STATUS: one STATUS right after each selectable mailbox's LIST
    _, ok = r.cmd("h", "APPEND Fruit/Apple {%d+}\r\n%s" % (len(MSG), MSG.decode()))
    assert ok.startswith("h OK")
    lines, ok = r.cmd("i", 'LIST "" "Fruit*" RETURN (STATUS (MESSAGES UNSEEN))')
    assert ok.startswith("i OK")
    assert lines == [
        '* LIST (\\HasChildren) "/" Fruit',
        "* STATUS Fruit (MESSAGES 0 UNSEEN 0)",
        '* LIST (\\HasNoChildren) "/" Fruit/Apple',
        "* STATUS Fruit/Apple (MESSAGES 1 UNSEEN 1)",
        '* LIST (\\HasNoChildren) "/" Fruit/Banana',
        "* STATUS Fruit/Banana (MESSAGES 0 UNSEEN 0)",
    ], lines
    lines, ok = r.cmd("j", 'LIST (SUBSCRIBED) "" "Peach" RETURN (STATUS (MESSAGES))')
    assert len(lines) == 1 and "\\NonExistent" in lines[0]  # no STATUS for it

    for tag, bad in (("k", 'LIST (RECURSIVEMATCH) "" "*"'), ("n", 'LIST (NOSUCH) "" "*"'),
                     ("o", 'LIST "" "*" RETURN (NOPE)'),
                     ("p", 'LIST "" "*" RETURN (STATUS (NOSUCH))'),
                     ("q", 'LIST "" ()'), ("t", 'LSUB (SUBSCRIBED) "" "*"')):
        lines, ok = r.cmd(tag, bad)
        assert ok.startswith(f"{tag} BAD") and lines == [], (bad, ok)
    r.close()


BIN_MSG = (b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: bin\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"caf=C3=A9 =3D soft=\r\nbreak\r\n"
           b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"AAECAwD/aGVsbG8=\r\n"
           b"--B\r\nContent-Type: application/x-foo\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
           b"begin 644 foo\r\n"
           b"--B--\r\n")


def test_binary_fetch(imap):
    deliver(imap, BIN_MSG)
    m = login(imap)
    assert b"BINARY" in m.capabilities or "BINARY" in m.capabilities
    m.select("INBOX")
    # quoted-printable decoded
    typ, data = m.fetch("1", "(BINARY.PEEK[1] BINARY.SIZE[1])")
    assert typ == "OK"
    assert data[0][1] == "café = softbreak".encode()
    assert re.search(rb"BINARY\.SIZE\[1\] %d" % len("café = softbreak".encode()),
                     b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data))
    # PEEK left \Seen alone
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    m.logout()

    # base64 with NUL: a literal8 (~{n}); partial; BINARY (no PEEK) sets \Seen
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send(b"b FETCH 1 (BINARY[2])\r\n")
    head = r.line()
    assert head.startswith("* 1 FETCH (") and head.endswith("BINARY[2] ~{11}"), head
    body = r.f.read(11)
    assert body == b"\x00\x01\x02\x03\x00\xffhello"
    rest, ok = r.until("b")
    assert ok.startswith("b OK") and "\\Seen" in head + "".join(rest)
    lines, ok = r.cmd("p", "FETCH 1 (BINARY.PEEK[2]<6.3>)")
    assert lines[0].endswith("BINARY[2]<6> {3}") and ok.startswith("p OK")
    assert lines[1] == "hel)"  # the 3 bytes, then the end of the FETCH
    # the whole message as stored; a missing part is empty
    lines, ok = r.cmd("w", "FETCH 1 (BINARY.SIZE[] BINARY.SIZE[9] BINARY.SIZE[2])")
    assert f"BINARY.SIZE[] {len(BIN_MSG)}" in lines[0] and "BINARY.SIZE[9] 0" in lines[0]
    assert "BINARY.SIZE[2] 11" in lines[0], lines  # base64, counted without decoding
    # an encoding we do not know
    lines, ok = r.cmd("u", "FETCH 1 (BINARY.PEEK[3])")
    assert ok.startswith("u NO [UNKNOWN-CTE]"), ok
    lines, ok = r.cmd("U", "FETCH 1 (BINARY.SIZE[3])")
    assert ok.startswith("U NO [UNKNOWN-CTE]"), ok
    for tag, bad in (("x", "BINARY[TEXT]"), ("y", "BINARY[1.MIME]"), ("z", "BINARY.SIZE[1]<0.5>"),
                     ("v", "BINARY[0]"), ("t", "BINARY[1.]")):
        _, ok = r.cmd(tag, f"FETCH 1 ({bad})")
        assert ok.startswith(f"{tag} BAD"), (bad, ok)
    # APPEND with a literal8 holding NUL bytes: stored in base64 (RFC 3516 4.3),
    # since no BODY[] literal may carry NUL (RFC 3501 4.3); BINARY[1] gives the bytes back
    raw = b"Subject: nul\r\n\r\na\x00b\r\n"
    r.send(b"a APPEND INBOX ~{%d+}\r\n" % len(raw) + raw + b"\r\n")
    _, ok = r.until("a")
    assert ok.startswith("a OK [APPENDUID"), ok
    r.send(b"f UID FETCH * (BODY.PEEK[])\r\n")
    head = r.line()
    n = int(re.search(r"\{(\d+)\}$", head).group(1))
    stored = r.f.read(n)
    assert stored == (b"Content-Transfer-Encoding: base64\r\nSubject: nul\r\n\r\n"
                      + base64.b64encode(b"a\x00b\r\n") + b"\r\n"), stored
    _, ok = r.until("f")
    assert ok.startswith("f OK")
    r.send(b"g UID FETCH * (BINARY.PEEK[1])\r\n")
    head = r.line()
    assert head.endswith("BINARY[1] ~{5}"), head
    assert r.f.read(5) == b"a\x00b\r\n"
    _, ok = r.until("g")
    assert ok.startswith("g OK")
    r.close()


def test_multiappend(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "MULTIAPPEND" in caps[0].split()
    a, b, c = msg(1), msg(2), msg(3)
    r.send(b'a APPEND Drafts (\\Seen) "01-Feb-2020 10:00:00 +0000" {%d+}\r\n%s'
           b' {%d+}\r\n%s (\\Flagged $Work) ~{%d+}\r\n%s\r\n'
           % (len(a), a, len(b), b, len(c), c))
    _, ok = r.until("a")
    m = re.match(r"a OK \[APPENDUID (\d+) (\d+):(\d+)\]", ok)
    assert m and int(m.group(3)) - int(m.group(2)) == 2, ok
    first = int(m.group(2))
    lines, ok = r.cmd("s", "EXAMINE Drafts")
    assert "* 3 EXISTS" in lines
    lines, ok = r.cmd("f", "FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE)")
    # EXAMINE sees as \Recent what no session took yet (and takes nothing)
    assert f"UID {first} " in lines[0] and "(\\Recent \\Seen)" in lines[0] and "01-Feb-2020" in lines[0]
    assert "FLAGS (\\Recent)" in lines[1]
    assert "\\Flagged $Work" in lines[2] and f"RFC822.SIZE {len(c)}" in lines[2]
    # all or none: an empty third message refuses the whole command
    r.send(b"b APPEND Drafts {%d+}\r\n%s {%d+}\r\n%s {0+}\r\n\r\n" % (len(a), a, len(b), b))
    _, ok = r.until("b")
    assert ok.startswith("b NO"), ok
    r.send(b"d APPEND NoSuchBox {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(b), b))
    _, ok = r.until("d")
    assert ok.startswith("d NO [TRYCREATE]"), ok
    lines, ok = r.cmd("n", "NOOP")
    assert not any("EXISTS" in ln for ln in lines)
    lines, ok = r.cmd("t", "STATUS Drafts (MESSAGES UIDNEXT)")
    assert f"MESSAGES 3 UIDNEXT {first + 3}" in lines[0]
    for tag, bad in (("x", "APPEND Drafts"), ("y", "APPEND Drafts (\\Seen)"),
                     ("z", 'APPEND Drafts "bad date" "x"')):
        _, ok = r.cmd(tag, bad)
        assert ok.startswith(f"{tag} BAD"), (bad, ok)
    r.close()


def mail(subject, frm, to, date, cc=None, extra="", body="x"):
    h = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
    if cc:
        h += f"Cc: {cc}\r\n"
    return (h + extra + "\r\n" + body + "\r\n").encode()


def test_sort(imap):
    msgs = [
        mail("Re: Banana", "Zed <zed@example.test>", "amy@example.test",
             "Mon, 2 Feb 2026 10:00:00 +0000", cc="bob@example.test", body="x" * 50),
        mail("apple", "bob@example.test", "Carl <carl@example.test>",
             "Mon, 2 Feb 2026 09:00:00 -0200"),  # 11:00 UTC: after the first
        mail("[list] Fwd: banana (fwd)", "amy@example.test", "zoe@example.test",
             "Sun, 1 Feb 2026 10:00:00 +0000", body="x" * 10),
        mail("=?UTF-8?Q?Cherry?=", "Amy@example.test", "bob@example.test", "not a date",
             cc="Al <al@example.test>"),
    ]
    for m in msgs:
        deliver(imap, m)
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "SORT" in caps[0].split()
    r.cmd("s", "SELECT INBOX")

    def sort(keys, crit="ALL", uid=""):
        lines, ok = r.cmd("t", f"{uid}SORT ({keys}) UTF-8 {crit}")
        assert ok.startswith("t OK"), ok
        assert lines[0].startswith("* SORT")
        return [int(x) for x in lines[0].split()[2:]]

    assert sort("SUBJECT") == [2, 1, 3, 4]        # apple, banana, banana, cherry (base subjects)
    assert sort("REVERSE SUBJECT") == [4, 1, 3, 2]  # ties stay in sequence order
    assert sort("FROM") == [3, 4, 2, 1]           # amy, Amy (casemap: tie), bob, zed
    assert sort("TO") == [1, 4, 2, 3]             # amy bob carl zoe
    assert sort("CC") == [2, 3, 4, 1]             # "" "" al bob
    assert sort("SIZE") == sorted(range(1, 5), key=lambda i: (len(msgs[i - 1]), i))
    # DATE: sent date in UTC; an invalid Date is the arrival time (latest: now)
    assert sort("DATE") == [3, 1, 2, 4]
    assert sort("ARRIVAL") == [1, 2, 3, 4]
    assert sort("REVERSE DATE") == [4, 2, 1, 3]
    assert sort("SUBJECT REVERSE DATE") == [2, 1, 3, 4]
    assert sort("SUBJECT", crit="NOT FROM zed") == [2, 3, 4]
    uids = sort("DATE", uid="UID ")
    lines, _ = r.cmd("f", "FETCH 1:4 (UID)")
    by_msn = [int(re.search(r"UID (\d+)", ln).group(1)) for ln in lines]
    assert uids == [by_msn[i - 1] for i in (3, 1, 2, 4)]
    for tag, bad in (("a", "SORT (NOSUCH) UTF-8 ALL"), ("b", "SORT (REVERSE) UTF-8 ALL"),
                     ("d", "SORT () UTF-8 ALL"), ("e", "SORT (DATE) UTF-8 NOSUCH"),
                     ("f", "SORT (DATE) UTF-8")):
        _, ok = r.cmd(tag, bad)
        assert ok.startswith(f"{tag} BAD"), (bad, ok)
    _, ok = r.cmd("g", "SORT (DATE) KOI8-R ALL")
    assert ok.startswith("g NO [BADCHARSET")
    r.close()


def test_thread(imap):
    def m(subject, hour, mid=None, refs=None, irt=None):
        extra = ""
        if mid:
            extra += f"Message-ID: <{mid}@example.test>\r\n"
        if refs:
            extra += "References: " + " ".join(f"<{r}@example.test>" for r in refs) + "\r\n"
        if irt:
            extra += f"In-Reply-To: <{irt}@example.test>\r\n"
        return mail(subject, "a@example.test", "b@example.test",
                    f"Sun, 1 Feb 2026 {hour:02d}:00:00 +0000", extra=extra)

    for data in (m("fruit", 10, "a"),
                 m("Re: fruit", 11, "b", refs=["a"]),
                 m("RE: [list] fruit", 12, '"c"', refs=["a", "b"]),  # quoted id: the same as c
                 m("vegetables", 9, "d"),
                 m("Re: vegetables", 13, "e", irt="missing"),
                 m("Re: lost", 8, "f", refs=["gone1", "gone2"]),
                 m("Fwd: fruit", 14),            # no Message-ID
                 m("fruit", 15, "a")):           # a duplicate Message-ID
        deliver(imap, data)
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert {"THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"} <= set(caps[0].split())
    r.cmd("s", "SELECT INBOX")
    lines, ok = r.cmd("o", "THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert ok.startswith("o OK")
    assert lines == ["* THREAD (6)(4 5)(1 (2)(3)(7)(8))"], lines
    lines, ok = r.cmd("r", "THREAD REFERENCES UTF-8 ALL")
    # 5's parent is missing: it joins 4 by subject as a reply; 6 stands alone after
    # its dummies are pruned; 7 (a forward) joins 1; 8 (same subject, not a reply) and 1
    # go under a dummy.
    assert lines == ["* THREAD (6)(4 5)((1 (2 3)(7))(8))"], lines
    lines, ok = r.cmd("n", "THREAD REFERENCES UTF-8 SUBJECT vegetables")
    assert lines == ["* THREAD (4 5)"]
    lines, ok = r.cmd("e", "THREAD REFERENCES UTF-8 SUBJECT nothing-like-this")
    assert lines == ["* THREAD"]
    lines, ok = r.cmd("f", "FETCH 4:5 (UID)")
    u4, u5 = (re.search(r"UID (\d+)", ln).group(1) for ln in lines)
    lines, ok = r.cmd("u", "UID THREAD REFERENCES UTF-8 4:5")
    assert lines == [f"* THREAD ({u4} {u5})"] and ok.startswith("u OK UID THREAD")
    for tag, bad in (("a", "THREAD NOSUCH UTF-8 ALL"), ("b", "THREAD REFERENCES UTF-8"),
                     ("d", "THREAD")):
        _, ok = r.cmd(tag, bad)
        assert ok.startswith(f"{tag} BAD"), (bad, ok)
    r.close()


def test_quota_and_multiappend_all_or_none(imap):
    USER = "alice@example.test"
    imap.wharf("user", "quota", USER, "1M", "3")
    deliver(imap, MSG)
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert {"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"} <= set(caps[0].split())
    kib = (len(MSG) + 1023) // 1024
    lines, ok = r.cmd("q", "GETQUOTAROOT INBOX")
    assert lines == ['* QUOTAROOT INBOX ""', f'* QUOTA "" (STORAGE {kib} 1024 MESSAGE 1 3)']
    assert ok.startswith("q OK")
    lines, ok = r.cmd("g", 'GETQUOTA ""')
    assert lines == [f'* QUOTA "" (STORAGE {kib} 1024 MESSAGE 1 3)'] and ok.startswith("g OK")
    _, ok = r.cmd("h", 'GETQUOTA "other"')
    assert ok.startswith("h NO")
    _, ok = r.cmd("i", "SETQUOTA \"\" (STORAGE 99999)")
    assert ok.startswith("i BAD")  # no QUOTASET: quotas are the administrator's
    # three more would make 4 > 3: none is kept
    a, b, c = msg(1), msg(2), msg(3)
    r.send(b"a APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n"
           % (len(a), a, len(b), b, len(c), c))
    _, ok = r.until("a")
    assert ok.startswith("a NO [OVERQUOTA]"), ok
    lines, _ = r.cmd("s", "STATUS INBOX (MESSAGES)")
    assert lines == ["* STATUS INBOX (MESSAGES 1)"]
    r.send(b"b APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(b), b))
    _, ok = r.until("b")
    assert ok.startswith("b OK [APPENDUID"), ok
    # STATUS DELETED / DELETED-STORAGE (RFC 9208 4.3)
    r.cmd("x", "SELECT INBOX")
    r.cmd("y", "STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    lines, _ = r.cmd("t", "STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)")
    assert lines == [f"* STATUS INBOX (MESSAGES 3 DELETED 2 DELETED-STORAGE {len(a) + len(b)})"]
    r.close()


def test_thread_deep_chain_is_cut(imap):
    """600 mails each answering the one before: no 600-deep recursion, no quadratic walk."""
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    n = 600
    for start in range(1, n + 1, 60):
        parts = []
        for i in range(start, start + 60):
            extra = f"Message-ID: <{i}@deep.test>\r\n"
            if i > 1:
                extra += f"In-Reply-To: <{i - 1}@deep.test>\r\n"
            m = mail("Re: chain" if i > 1 else "chain", "a@example.test", "b@example.test",
                     f"Sun, 1 Feb 2026 10:{i // 60:02d}:{i % 60:02d} +0000", extra=extra)
            parts.append(b"{%d+}\r\n%s" % (len(m), m))
        r.send(b"a APPEND INBOX " + b" ".join(parts) + b"\r\n")
        _, ok = r.until("a")
        assert ok.startswith("a OK"), ok
    r.cmd("s", "SELECT INBOX")
    lines, ok = r.cmd("t", "THREAD REFERENCES UTF-8 ALL")
    assert ok.startswith("t OK")
    # IMAP_MAX_THREAD_DEPTH (500): 500 starts over; 500 and 501 (replies) join 1 by subject
    chain = lambda a, b: " ".join(str(i) for i in range(a, b + 1))
    assert lines == [f"* THREAD (1 ({chain(2, 499)})(500)({chain(501, 600)}))"], lines[0][:200]
    r.close()
