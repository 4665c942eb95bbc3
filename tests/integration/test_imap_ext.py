"""IMAP extensions beyond the base (QRESYNC, ...) against a real wharfd.

Raw sockets (from test_imap) for the exact responses, imaplib where it suffices.
"""
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
