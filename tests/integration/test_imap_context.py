"""ESORT, CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) and SORT=DISPLAY (RFC 5957)
against a real wharfd, over raw lines (imaplib has no ESEARCH parser).

Updates are read as they come on the socket: the other session's change
wakes this one through the mailbox-changed event, never a timer.
"""
import re

from test_imap import Raw, deliver, imap, login  # noqa: F401 (imap is a fixture)


def msg(n, frm="x@example.test", to="alice@example.test", subject=None, date=None):
    subject = subject or f"m{n}"
    date = date or f"Fri, {10 + n} Nov 2026 10:00:00 +0000"
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <c{n}@example.test>\r\n\r\nbody {n}\r\n").encode()


def nxt(r):
    """The next line, without what IMAP4rev1's \\Recent adds (a RECENT line, the flag)."""
    while True:
        ln = r.line()
        if not re.fullmatch(r"\* \d+ RECENT", ln):
            return ln.replace(" \\Recent", "").replace("\\Recent ", "").replace("(\\Recent)", "()")


def session(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    _, ok = r.cmd("s", "SELECT INBOX")
    assert ok.startswith("s OK"), ok
    return r


def test_capabilities_advertised(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    for cap in ("ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT", "SORT=DISPLAY"):
        assert cap in caps[0].split()


def test_esort_return_options(imap):
    # delivered in an order that differs from the Date: order
    for n in (3, 1, 2, 5, 4):
        deliver(imap, msg(n))
    r = session(imap)
    lines, ok = r.cmd("a", "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    assert ok.startswith("a OK")
    # by date: 2(1) 3(2) 1(3) 5(4) 4(5); MIN/MAX are the first and last in that order
    assert lines == ['* ESEARCH (TAG "a") MIN 2 MAX 4 ALL 2:3,1,5,4 COUNT 5']
    # RFC 5267 3.3: RETURN () is ALL, ranges only ascending (never 5:3)
    lines, _ = r.cmd("b", "UID SORT RETURN () (REVERSE DATE) UTF-8 ALL")
    assert lines == ['* ESEARCH (TAG "b") UID ALL 4:5,1,3,2']
    lines, _ = r.cmd("c", "SORT RETURN (COUNT) (ARRIVAL) US-ASCII 2:4")
    assert lines == ['* ESEARCH (TAG "c") COUNT 3']
    lines, _ = r.cmd("d", "SORT RETURN (MIN) (ARRIVAL) US-ASCII SUBJECT nothing")
    assert lines == ['* ESEARCH (TAG "d")']
    _, ok = r.cmd("e", "SORT RETURN (SAVE) (ARRIVAL) US-ASCII ALL")
    assert ok.startswith("e BAD")
    # a plain SORT is unchanged
    lines, _ = r.cmd("f", "SORT (DATE) UTF-8 ALL")
    assert lines == ["* SORT 2 3 1 5 4"]


def test_partial_search_and_sort(imap):
    for n in range(1, 6):
        deliver(imap, msg(n))
    r = session(imap)
    cases = [("1:1", "1"), ("2:4", "2:4"), ("4:2", "2:4"), ("1:6", "1:5"), ("6:6", "NIL")]
    for rng, want in cases:
        lines, ok = r.cmd("p", f"SEARCH RETURN (PARTIAL {rng}) ALL")
        lo, hi = sorted(int(x) for x in rng.split(":"))
        assert lines == [f'* ESEARCH (TAG "p") PARTIAL ({lo}:{hi} {want})'], lines
    lines, _ = r.cmd("q", "SEARCH RETURN (PARTIAL 2:3) 1:2,4:5")
    assert lines == ['* ESEARCH (TAG "q") PARTIAL (2:3 2,4)']
    for bad in ("1", "1:*", "*:1", "0:3"):
        _, ok = r.cmd("b", f"SEARCH RETURN (PARTIAL {bad}) ALL")
        assert ok.startswith("b BAD"), bad
    _, ok = r.cmd("b", "SEARCH RETURN (PARTIAL 1:2 ALL) ALL")
    assert ok.startswith("b BAD")  # RFC 5267 4.4: one PARTIAL or one ALL
    # a SORT's partial results follow the sort order
    lines, _ = r.cmd("s", "SORT RETURN (PARTIAL 1:6) (REVERSE DATE) US-ASCII ALL")
    assert lines == ['* ESEARCH (TAG "s") PARTIAL (1:6 5,4,3,2,1)']
    lines, _ = r.cmd("t", "UID SORT RETURN (PARTIAL 2:3) (REVERSE DATE) US-ASCII ALL")
    assert lines == ['* ESEARCH (TAG "t") UID PARTIAL (2:3 4,3)']


def test_search_update_from_own_and_other_session(imap):
    """The imaptest search-context-update sequence, then an update woken by another session."""
    for n in range(1, 6):
        deliver(imap, msg(n))
    r = session(imap)
    lines, ok = r.cmd("u1", "SEARCH RETURN (UPDATE) BODY body SEEN")
    assert lines == ['* ESEARCH (TAG "u1")'] and ok.startswith("u1 OK")
    _, ok = r.cmd("u1", "SEARCH RETURN (UPDATE) ALL")
    assert ok.startswith("u1 BAD")  # RFC 5267 4.3: tag reuse
    lines, _ = r.cmd("a", "STORE 1,2,4 +FLAGS (\\Seen)")
    assert '* ESEARCH (TAG "u1") ADDTO (0 1:2,4)' in lines
    lines, _ = r.cmd("b", "STORE 1,2 -FLAGS (\\Seen)")
    assert '* ESEARCH (TAG "u1") REMOVEFROM (0 1:2)' in lines
    # an expunged member: REMOVEFROM before the EXPUNGEs, with the number the client knows
    r.cmd("c", "STORE 3:5 +FLAGS (\\Deleted)")
    lines, _ = r.cmd("d", "EXPUNGE")
    assert lines[0] == '* ESEARCH (TAG "u1") REMOVEFROM (0 4)'
    assert lines[1:] == ["* 3 EXPUNGE", "* 3 EXPUNGE", "* 3 EXPUNGE"]
    # an APPEND: ADDTO after the EXISTS
    data = msg(9)
    r.send(b"e APPEND INBOX (\\Seen) {%d+}\r\n" % len(data) + data + b"\r\n")
    lines, ok = r.until("e")
    assert ok.startswith("e OK")
    lines = [ln for ln in lines if not ln.endswith(" RECENT")]  # IMAP4rev1 \\Recent
    assert lines == ["* 3 EXISTS", '* ESEARCH (TAG "u1") ADDTO (0 3)']

    # another session's change reaches this one in IDLE, by the event alone
    other = login(imap)
    other.select("INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    other.store("1", "+FLAGS", "(\\Seen)")
    assert nxt(r) == "* 1 FETCH (UID 1 FLAGS (\\Seen))"
    assert nxt(r) == '* ESEARCH (TAG "u1") ADDTO (0 1)'
    # a delivery that matches
    deliver(imap, msg(10))
    assert nxt(r) == "* 4 EXISTS"  # not seen: no ADDTO
    other.store("4", "+FLAGS", "(\\Seen)")
    got = [nxt(r) for _ in range(2)]
    assert got == ["* 4 FETCH (UID 7 FLAGS (\\Seen))", '* ESEARCH (TAG "u1") ADDTO (0 4)']
    r.send(b"DONE\r\n")
    _, ok = r.until("i")
    assert ok.startswith("i OK")

    # CANCELUPDATE: no more updates
    _, ok = r.cmd("f", 'CANCELUPDATE "u1"')
    assert ok.startswith("f OK")
    lines, _ = r.cmd("g", "STORE 2 +FLAGS (\\Seen)")
    assert not any("ESEARCH" in ln for ln in lines)
    _, ok = r.cmd("h", 'CANCELUPDATE "u1"')
    assert ok.startswith("h BAD")
    other.logout()


def test_uid_search_update_with_all(imap):
    """The imaptest search-context-update3 sequence: UID contexts report UIDs."""
    for n in range(1, 7):
        deliver(imap, msg(n, subject="s33" if n == 6 else None))
    r = session(imap)
    r.cmd("a", "STORE 1 +FLAGS (\\Deleted)")
    r.cmd("b", "EXPUNGE")
    r.cmd("c", "STORE 1,2 +FLAGS (\\Seen)")
    lines, _ = r.cmd("u", "UID SEARCH RETURN (UPDATE ALL) OR SEEN SUBJECT s33")
    assert lines == ['* ESEARCH (TAG "u") UID ALL 2:3,6']
    lines, _ = r.cmd("d", "STORE 3:5 +FLAGS (\\Seen)")
    assert '* ESEARCH (TAG "u") UID ADDTO (0 4:5)' in lines  # uid 6 was in already
    lines, _ = r.cmd("e", "STORE 1:5 -FLAGS (\\Seen)")
    assert '* ESEARCH (TAG "u") UID REMOVEFROM (0 2:5)' in lines
    r.cmd("f", "STORE 3 +FLAGS (\\Deleted \\Seen)")
    lines, _ = r.cmd("g", "EXPUNGE")
    assert lines == ['* ESEARCH (TAG "u") UID REMOVEFROM (0 4)', "* 3 EXPUNGE"]
    # leaving the mailbox ends the context
    r.cmd("h", "UNSELECT")
    r.cmd("i", "SELECT INBOX")
    _, ok = r.cmd("j", 'CANCELUPDATE "u"')
    assert ok.startswith("j BAD")


def test_sort_update_positions(imap):
    """CONTEXT=SORT: ADDTO and REMOVEFROM carry the position in the sorted result."""
    dates = {1: 5, 2: 1, 3: 3}  # day of month per message
    for n, d in dates.items():
        deliver(imap, msg(n, date=f"Fri, {d} Nov 2026 10:00:00 +0000"))
    r = session(imap)
    lines, _ = r.cmd("s", "UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 UNSEEN")
    assert lines == ['* ESEARCH (TAG "s") UID ALL 2:3,1']
    data = msg(4, date="Fri, 2 Nov 2026 10:00:00 +0000")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    lines, ok = r.until("a")
    assert ok.startswith("a OK")
    # sorted: 2(day 1) 4(day 2) 3(day 3) 1(day 5): the new one is second
    assert lines[-1] == '* ESEARCH (TAG "s") UID ADDTO (2 4)'
    lines, _ = r.cmd("b", "STORE 3 +FLAGS (\\Seen)")  # message 3 is UID 3, position 3
    assert '* ESEARCH (TAG "s") UID REMOVEFROM (3 3)' in lines
    lines, _ = r.cmd("c", "STORE 3 -FLAGS (\\Seen)")
    assert '* ESEARCH (TAG "s") UID ADDTO (3 3)' in lines
    # message numbers in a SORT context follow the sorted order too
    lines, _ = r.cmd("m", "SORT RETURN (UPDATE COUNT) (REVERSE DATE) UTF-8 UNSEEN")
    assert lines == ['* ESEARCH (TAG "m") COUNT 4']
    lines, _ = r.cmd("d", "STORE 2,4 +FLAGS (\\Seen)")
    # reverse: 1(5) 3(3) 4(2) 2(1); message 2 at position 4, message 4 at 3
    assert '* ESEARCH (TAG "m") REMOVEFROM (3 4,2)' in lines


def test_sort_display(imap):
    """RFC 5957: display name (encoded words decoded), else the address; the imaptest mailbox."""
    froms = ["foo bar <a@b.c>", "b@c.d", "d", "=?iso-8859-1?q?foo_aar?= <e@f.g>",
             "=?iso-8859-1?q?foo_car?= <f@g.h>"]
    for i, f in enumerate(froms):
        deliver(imap, msg(i, frm=f, to=f))
    deliver(imap, msg(6, to="a: xx@xx.org, yy@yy.org;"))
    deliver(imap, msg(7, to="z: aa@aa.org, bb@bb.org;"))
    deliver(imap, msg(8, to="empty:;"))
    r = session(imap)
    lines, _ = r.cmd("a", "SORT (DISPLAYFROM) US-ASCII 1:5")
    assert lines == ["* SORT 2 3 4 1 5"]
    lines, _ = r.cmd("b", "SORT (REVERSE DISPLAYFROM) US-ASCII 1:5")
    assert lines == ["* SORT 5 1 4 3 2"]
    lines, _ = r.cmd("c", "SORT (DISPLAYTO) US-ASCII ALL")
    assert lines == ["* SORT 6 2 3 8 4 1 5 7"]
    lines, _ = r.cmd("d", "SORT (REVERSE DISPLAYTO) US-ASCII ALL")
    assert lines == ["* SORT 7 5 1 4 8 3 2 6"]
    # FROM sorts by the mailbox, DISPLAYFROM by the name: they differ here
    lines, _ = r.cmd("e", "SORT (FROM) US-ASCII 1:5")
    assert lines != ["* SORT 2 3 4 1 5"] and re.match(r"\* SORT [\d ]+$", lines[0])
