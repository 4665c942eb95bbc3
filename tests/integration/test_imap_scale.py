"""IMAP on a mailbox of 20,000 messages (issue 5): two sessions see each
other's flag changes and expunges through the incremental sync (what changed
since the view's MODSEQ), with the MSN rules kept: no EXPUNGE under a FETCH,
EXPUNGEs numbered one after the other, FETCH FLAGS numbered after them.
The mailbox is built by pipelined MULTIAPPENDs (64 messages each, one store
transaction each); a delivery then wakes an IDLE session.
"""
import re

from test_imap import Raw, deliver, imap  # noqa: F401 (imap is a fixture)

N = 20_000
BATCH = 64  # IMAP_MAX_APPEND_MESSAGES


def small(i):
    return b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)


def fill(r, n):
    """APPENDs n messages to INBOX, every command sent before any reply is read (LITERAL+)."""
    tags = []
    for start in range(0, n, BATCH):
        parts = b"".join(b" {%d+}\r\n%s" % (len(small(i)), small(i))
                         for i in range(start, min(n, start + BATCH)))
        tag = f"a{start}"
        r.send(tag.encode() + b" APPEND INBOX" + parts + b"\r\n")
        tags.append(tag)
    for tag in tags:
        _, ok = r.until(tag)
        assert ok.startswith(f"{tag} OK"), ok


def flags_of(r, tag):
    lines, ok = r.cmd(tag, "FETCH 1:* (UID FLAGS)")
    assert ok.startswith(f"{tag} OK"), ok
    # \Recent is per session (the first to see a message has it): left out
    return [re.sub(r"\\Recent ?", "", re.sub(r"^\* \d+ FETCH ", "", ln))
            for ln in lines if " FETCH " in ln], lines


def test_two_sessions_on_20000_messages(imap):
    a = Raw(imap.ports["imaps"], tls=True)
    a.login()
    fill(a, N)
    b = Raw(imap.ports["imaps"], tls=True)
    b.login()
    lines, ok = a.cmd("s", "SELECT INBOX")
    assert f"* {N} EXISTS" in lines and ok.startswith("s OK"), (lines, ok)
    lines, ok = b.cmd("s", "SELECT INBOX (CONDSTORE)")
    assert f"* {N} EXISTS" in lines and ok.startswith("s OK"), (lines, ok)

    # Flag changes on an old message and a recent one: b is told both, in MSN order, with MODSEQ.
    _, ok = a.cmd("f1", "STORE 19999 +FLAGS.SILENT (\\Flagged)")
    assert ok.startswith("f1 OK"), ok
    _, ok = a.cmd("f2", "STORE 5 +FLAGS.SILENT (\\Seen $Done)")
    assert ok.startswith("f2 OK"), ok
    lines, ok = b.cmd("n1", "NOOP")
    # $Done is new to b: announced (FLAGS, PERMANENTFLAGS) before its first use
    assert len(lines) == 4 and lines[0].startswith("* FLAGS (") and "$Done" in lines[0], lines
    assert lines[1].startswith("* OK [PERMANENTFLAGS (") and "$Done \\*" in lines[1], lines
    lines = lines[2:]
    assert re.fullmatch(r"\* 5 FETCH \(UID 5 FLAGS \(\\Seen \$Done\) MODSEQ \(\d+\)\)", lines[0]), lines
    assert re.fullmatch(r"\* 19999 FETCH \(UID 19999 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)",
                        lines[1]), lines
    lines, _ = b.cmd("n2", "NOOP")
    assert lines == [], lines  # told once

    # b expunges two messages; a's FETCH must not see the EXPUNGEs (its MSNs would shift) ...
    _, ok = b.cmd("d", "STORE 10,20000 +FLAGS.SILENT (\\Deleted)")
    assert ok.startswith("d OK"), ok
    lines, ok = b.cmd("x", "EXPUNGE")
    assert lines[:2] == ["* 10 EXPUNGE", "* 19999 EXPUNGE"], lines
    lines, ok = a.cmd("g", "FETCH 10 (UID)")
    assert not any("EXPUNGE" in ln for ln in lines), lines
    assert any(ln.startswith("* 10 FETCH (UID 10") for ln in lines), lines
    # ... its NOOP does, with the flag changes numbered after them.
    # (b has expunged UID 10: its MSN 19000 is UID 19001, still MSN 19001 in a until its NOOP)
    _, ok = b.cmd("f3", "STORE 2,19000 +FLAGS.SILENT (\\Answered)")
    assert ok.startswith("f3 OK"), ok
    lines, ok = a.cmd("n3", "NOOP")
    # (a selected first: every message is \Recent for it)
    assert lines == ["* 2 FETCH (UID 2 FLAGS (\\Recent \\Answered))",
                     "* 10 EXPUNGE",
                     "* 19000 FETCH (UID 19001 FLAGS (\\Recent \\Answered))",
                     "* 19999 EXPUNGE"], lines
    lines, _ = a.cmd("g2", "FETCH 10 (UID)")
    assert any(ln.startswith("* 10 FETCH (UID 11)") for ln in lines), lines

    # A delivery wakes a in IDLE with the new count.
    a.send(b"i IDLE\r\n")
    assert a.line().startswith("+ ")
    deliver(imap, small(N + 1))
    assert a.line() == f"* {N - 1} EXISTS"
    a.send(b"DONE\r\n")
    _, ok = a.until("i")
    assert ok.startswith("i OK"), ok
    lines, _ = b.cmd("n4", "NOOP")
    assert f"* {N - 1} EXISTS" in lines, lines

    # Both views now agree with each other and with a fresh SELECT, message by message.
    seen_a, _ = flags_of(a, "fa")
    seen_b, _ = flags_of(b, "fb")
    c = Raw(imap.ports["imaps"], tls=True)
    c.login()
    c.cmd("s", "SELECT INBOX")
    seen_c, _ = flags_of(c, "fc")
    assert len(seen_a) == N - 1
    assert seen_a == seen_b == seen_c
    lines, ok = c.cmd("st", "STATUS INBOX (MESSAGES UNSEEN DELETED)")
    assert lines == [f"* STATUS INBOX (MESSAGES {N - 1} UNSEEN {N - 2} DELETED 0)"], lines
    for r in (a, b, c):
        r.close()
