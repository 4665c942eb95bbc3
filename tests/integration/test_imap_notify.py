"""NOTIFY (RFC 5465) against a real wharfd: a session that asked for events
hears them without sending a command, from a second session and from a
delivery over SMTP. Every wait is a read on the socket (with a timeout for
the failure case only), never a sleep.
"""
import re
import smtplib

from test_imap import MSG, OTHER, PASSWORD, USER, Raw, imap, login  # noqa: F401 (imap is a fixture)


def nxt(r):
    """The next line, without what IMAP4rev1's \\Recent adds (a RECENT line, the flag)."""
    while True:
        ln = r.line()
        if not re.fullmatch(r"\* \d+ RECENT", ln):
            return ln.replace(" \\Recent", "").replace("\\Recent ", "").replace("(\\Recent)", "()")


def session(port):
    r = Raw(port, tls=True)
    r.login()
    return r


def status_items(line):
    m = re.match(r"\* STATUS (\S+) \((.*)\)$", line)
    assert m, line
    v = m.group(2).split()
    return m.group(1), dict(zip(v[::2], (int(x) for x in v[1::2])))


def test_notify_initial_status_as_imaptest(imap):
    """imaptest's notify script: which STATUS items NOTIFY SET STATUS sends (RFC 5465 3.1)."""
    r = session(imap.ports["imaps"])
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "NOTIFY" in caps[0].split()
    r.cmd("k", "CREATE box2")
    m = login(imap)
    m.append("box2", None, None, MSG)
    m.logout()
    lines, ok = r.cmd("a", "NOTIFY SET STATUS (MAILBOXES box2 (MessageExpunge))")
    assert ok.startswith("a OK") and lines == ["* STATUS box2 (MESSAGES 1)"]
    lines, _ = r.cmd("b", "NOTIFY SET STATUS (MAILBOXES box2 (MessageNew))")
    name, items = status_items(lines[0])
    assert len(lines) == 1 and set(items) == {"MESSAGES", "UIDNEXT", "UIDVALIDITY"}
    assert items["MESSAGES"] == 1 and items["UIDNEXT"] == 2
    lines, _ = r.cmd("c", "NOTIFY SET STATUS (MAILBOXES box2 (FlagChange))")
    assert set(status_items(lines[0])[1]) == {"UIDVALIDITY", "HIGHESTMODSEQ"}
    lines, ok = r.cmd("d", "NOTIFY SET (MAILBOXES box2 (MessageNew MessageExpunge FlagChange))")
    assert lines == [] and ok.startswith("d OK")
    # PERSONAL covers every own mailbox; a mailbox that does not exist is ignored
    lines, _ = r.cmd("e", "NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge)) "
                          "(MAILBOXES nosuch (MessageNew MessageExpunge))")
    names = {status_items(ln)[0] for ln in lines}
    assert {"INBOX", "box2"} <= names and "nosuch" not in names


def test_notify_errors(imap):
    r = session(imap.ports["imaps"])
    _, ok = r.cmd("a", "NOTIFY SET (SELECTED (MessageNew MessageExpunge AnnotationChange))")
    assert ok.startswith("a NO [BADEVENT (") and "MessageNew" in ok
    _, ok = r.cmd("b", "NOTIFY SET (PERSONAL (ServerMetadataChange))")
    assert ok.startswith("b NO [BADEVENT")
    for i, bad in enumerate(["NOTIFY", "NOTIFY SET", "NOTIFY SET STATUS",
                             "NOTIFY SET (SELECTED (MailboxName))",  # message events only
                             "NOTIFY SET (SELECTED NONE) (SELECTED-DELAYED NONE)",
                             "NOTIFY SET (PERSONAL (MessageNew (UID)))",  # fetch-att: selected only
                             "NOTIFY SET (SELECTED (MessageNew (BODY[]) MessageExpunge))",
                             "NOTIFY SET (SUBTREE (MessageNew))", "NOTIFY SET (ELSEWHERE NONE)",
                             "NOTIFY BOGUS"]):
        _, ok = r.cmd(f"x{i}", bad)
        assert ok.startswith(f"x{i} BAD"), bad
    _, ok = r.cmd("n", "NOTIFY NONE")
    assert ok.startswith("n OK")


def test_notify_selected_and_other_mailbox_from_second_session(imap):
    r = session(imap.ports["imaps"])
    r.cmd("k", "CREATE Other")
    r.cmd("s", "SELECT INBOX")
    lines, ok = r.cmd("n", "NOTIFY SET (SELECTED (MessageNew (UID FLAGS RFC822.SIZE) MessageExpunge)) "
                           "(SUBTREE Other (MessageNew MessageExpunge FlagChange))")
    assert ok.startswith("n OK"), ok
    r.sock.settimeout(10)  # bounds the failure case only
    other = login(imap)
    # a new message in the selected mailbox: EXISTS and the asked-for FETCH, no command sent
    other.append("INBOX", r"(\Flagged)", None, MSG)
    assert nxt(r) == "* 1 EXISTS"
    assert nxt(r) == f"* 1 FETCH (UID 1 FLAGS (\\Flagged) RFC822.SIZE {len(MSG)})"
    # a new message in another watched mailbox: STATUS with what changed
    other.append("Other", None, None, MSG)
    name, items = status_items(r.line())
    assert name == "Other" and items["MESSAGES"] == 1 and items["UIDNEXT"] == 2
    # an unwatched mailbox says nothing: the next line is about Other again
    other.create("Unwatched")
    other.append("Unwatched", None, None, MSG)
    other.select("Other")
    other.store("1", "+FLAGS", r"(\Seen)")  # FlagChange without CONDSTORE: UNSEEN
    assert r.line() == "* STATUS Other (UNSEEN 0)"
    other.store("1", "+FLAGS", r"(\Deleted)")
    other.expunge()
    name, items = status_items(r.line())
    assert name == "Other" and items["MESSAGES"] == 0
    # an expunge in the selected mailbox comes at once with SELECTED
    other.select("INBOX")
    other.store("1", "+FLAGS", r"(\Deleted)")
    other.expunge()
    line = nxt(r)
    if line.startswith("* 1 FETCH"):  # an unsolicited FETCH is always allowed (RFC 3501 7)
        line = nxt(r)
    assert line == "* 1 EXPUNGE"
    # the session still works, and NOTIFY NONE stops the pushes
    _, ok = r.cmd("z", "NOTIFY NONE")
    assert ok.startswith("z OK")
    other.logout()


def test_notify_mailbox_name_and_subscription(imap):
    r = session(imap.ports["imaps"])
    _, ok = r.cmd("n", "NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))")
    assert ok.startswith("n OK")
    r.sock.settimeout(10)
    other = login(imap)
    other.create("Projects")
    assert r.line() == '* LIST () "/" Projects'
    other.rename("Projects", "Done")
    assert r.line() == '* LIST () "/" Done ("OLDNAME" (Projects))'
    other.subscribe("Done")
    assert r.line() == '* LIST (\\Subscribed) "/" Done'
    other.unsubscribe("Done")
    assert r.line() == '* LIST () "/" Done'
    other.delete("Done")
    assert r.line() == '* LIST (\\NonExistent) "/" Done'
    # another user's mailboxes are not this user's business
    bob = login(imap, OTHER)
    bob.create("BobsBox")
    other.create("Mine")
    assert r.line() == '* LIST () "/" Mine'
    bob.logout()
    other.logout()


def test_notify_woken_by_smtp_delivery(wharf_factory):
    """SMTP on port 25, the spool, the mta, the store, the bus event, the NOTIFY-ing session."""
    server = wharf_factory(enable={"smtp", "imap", "imaps"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    r = session(server.ports["imaps"])
    r.cmd("k", "CREATE Archive2")
    r.cmd("s", "SELECT Archive2")  # INBOX is not selected: the delivery is a STATUS
    _, ok = r.cmd("n", "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                       "(INBOXES (MessageNew MessageExpunge))")
    assert ok.startswith("n OK")
    r.sock.settimeout(10)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("bob@example.test", [USER], MSG)
    name, items = status_items(r.line())
    assert name == "INBOX" and items["MESSAGES"] == 1 and items["UIDNEXT"] == 2
    # now with INBOX selected: the delivery is an EXISTS, pushed without IDLE
    r.cmd("t", "SELECT INBOX")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("bob@example.test", [USER], MSG)
    assert nxt(r) == "* 2 EXISTS"
    _, ok = r.cmd("z", "NOOP")
    assert ok.startswith("z OK")


def test_notify_overflow_when_client_stops_reading(imap):
    """RFC 5465 5.8: a session whose output backs up gets NOTIFICATIONOVERFLOW and no more events.

    The test server runs one imap worker, so the second session's APPEND has
    been announced to the first session by the time its OK arrives."""
    big = b"From: a@example.test\r\nSubject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 200_000  # 16 MB
    other = login(imap)
    other.create("box2")
    other.append("INBOX", None, None, big)
    r = session(imap.ports["imaps"])
    _, ok = r.cmd("n", "NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")
    assert ok.startswith("n OK")
    r.cmd("s", "EXAMINE INBOX")
    r.send(b"f FETCH 1 BODY.PEEK[]\r\n")
    head = r.line()  # the server has written the whole answer; the client reads no further
    size = int(re.search(r"\{(\d+)\}$", head).group(1))
    assert size == len(big)
    other.append("box2", None, None, MSG)  # more than the kernel buffers hold is still queued
    other.append("box2", None, None, MSG)  # after the overflow: nothing
    data = r.f.read(size)
    assert data == big
    assert r.line() == ")"
    assert r.line().startswith("f OK")
    assert r.line().startswith("* OK [NOTIFICATIONOVERFLOW]")
    lines, ok = r.cmd("z", "NOOP")
    assert lines == [] and ok.startswith("z OK")  # no STATUS for box2 any more
    other.logout()
