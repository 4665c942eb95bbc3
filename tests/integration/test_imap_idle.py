"""IDLE sessions of one mailbox woken by one event (issue 19).

A delivery wakes every IDLE session of the mailbox; those of one worker that
synced to the same MODSEQ share one store read (imap_store_changes). Each
must still get exactly its own view's updates: EXISTS, then a flag change as
FETCH, and a session on another mailbox nothing. Clients: raw IMAP over TLS
against a real wharfd, messages through `wharf deliver` and imaplib.
"""
import imaplib

from conftest import LineClient, tls_context

USER = "alice@example.test"
PASSWORD = "correct horse battery"
MSG = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: s\r\n\r\nbody\r\n"


class Raw(LineClient):
    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            ln = self.line()
            assert ln != "", f"connection closed; got {lines}"
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)

    def idle(self, mailbox):
        _, ok = self.cmd("l", f'LOGIN "{USER}" "{PASSWORD}"')
        assert ok.startswith("l OK"), ok
        lines, ok = self.cmd("s", f"SELECT {mailbox}")
        assert ok.startswith("s OK"), ok
        self.send(b"i IDLE\r\n")
        assert self.line().startswith("+ ")
        self.sock.settimeout(10)  # a bound for the failure case only
        return lines

    def next_update(self):
        """The next untagged line that is not a FLAGS/PERMANENTFLAGS announcement
        or an IMAP4rev1 RECENT count (sent with each EXISTS)."""
        while True:
            ln = self.line()
            if not ln.startswith(("* FLAGS", "* OK [PERMANENTFLAGS")) and \
                    not (ln.startswith("* ") and ln.endswith(" RECENT")):
                return ln


def test_every_idle_session_of_a_mailbox_gets_its_updates(wharf_factory):
    server = wharf_factory(enable={"imaps"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    server.wharf("deliver", USER, input=MSG)
    idlers = [Raw(server.ports["imaps"], tls=True) for _ in range(5)]
    for r in idlers:
        assert "* 1 EXISTS" in r.idle("INBOX")
    elsewhere = Raw(server.ports["imaps"], tls=True)
    assert "* 0 EXISTS" in elsewhere.idle("Archive")
    server.wharf("deliver", USER, input=MSG)
    for r in idlers:
        assert r.next_update() == "* 2 EXISTS"
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(USER, PASSWORD)
    m.select("INBOX")
    m.store("1", "+FLAGS", r"(\Flagged)")
    for r in idlers:
        ln = r.next_update()
        assert ln.startswith("* 1 FETCH (") and "\\Flagged" in ln, ln
    m.store("2", "+FLAGS", r"(\Deleted)")
    m.expunge()
    for r in idlers:
        assert "\\Deleted" in r.next_update()
        assert r.next_update() == "* 2 EXPUNGE"
    m.logout()
    # nothing reached the session on the other mailbox: its DONE is answered first
    elsewhere.send(b"DONE\r\n")
    assert elsewhere.line().startswith("i OK")
    for r in idlers + [elsewhere]:
        r.close()


def imap_event_counters(server):
    procs = server.component("imap")["processes"]
    return (sum(p["status"]["mailbox_events"] for p in procs),
            sum(p["status"]["mailbox_event_visits"] for p in procs))


def test_a_delivery_looks_only_at_the_sessions_of_its_mailbox(wharf_factory):
    """The fan-out of a mailbox-changed event is proportional to the sessions
    that have that mailbox selected (and those with NOTIFY), not to every
    connection of the worker: with 10,000 IDLE connections a delivery must not
    walk them all. Pinned through the worker's status counters."""
    server = wharf_factory(enable={"imaps"}).start()
    server.wharf("domain", "add", "example.test")
    other = "bob@example.test"
    for u in (USER, other):
        server.wharf("user", "add", u, "--password-stdin", input=PASSWORD.encode() + b"\n")
    idlers = [Raw(server.ports["imaps"], tls=True) for _ in range(2)]
    for r in idlers:
        assert "* 0 EXISTS" in r.idle("INBOX")
    elsewhere = Raw(server.ports["imaps"], tls=True)
    assert "* 0 EXISTS" in elsewhere.idle("Archive")
    bystanders = []
    for _ in range(3):  # another account's sessions on its INBOX
        b = Raw(server.ports["imaps"], tls=True)
        _, ok = b.cmd("l", f'LOGIN "{other}" "{PASSWORD}"')
        assert ok.startswith("l OK"), ok
        _, ok = b.cmd("s", "SELECT INBOX")
        assert ok.startswith("s OK"), ok
        bystanders.append(b)
    unselected = Raw(server.ports["imaps"], tls=True)
    _, ok = unselected.cmd("l", f'LOGIN "{USER}" "{PASSWORD}"')
    assert ok.startswith("l OK"), ok
    events0, visits0 = imap_event_counters(server)
    server.wharf("deliver", USER, input=MSG)
    for r in idlers:
        assert r.next_update() == "* 1 EXISTS"
    events, visits = imap_event_counters(server)
    events, visits = events - events0, visits - visits0
    assert events >= 1
    # each event looked at the two sessions with alice's INBOX selected, not at
    # all seven sessions of the worker
    assert 2 <= visits <= 2 * events, (events, visits)
    for b in bystanders:
        _, ok = b.cmd("n", "NOOP")
        assert ok.startswith("n OK"), ok
    elsewhere.send(b"DONE\r\n")
    assert elsewhere.line().startswith("i OK")
    for r in idlers + [elsewhere, unselected] + bystanders:
        r.close()
