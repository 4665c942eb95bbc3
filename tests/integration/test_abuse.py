"""Abuse limits on a real wharfd that never lock out the right user (issue 11).

Clients choose their source address on the loopback network (127.0.0.2,
127.0.0.3, ...), so that one address can be an attacker and another a clean
client. mynetworks is narrowed to 127.0.0.1 so that the others are strangers.
"""
import imaplib
import json
import poplib
import smtplib
import socket
import threading
import time

import pytest

from conftest import wait_until

PASSWORD = "right horse"
STRANGERS = {"mynetworks": "127.0.0.1/32"}


class IMAPFrom(imaplib.IMAP4):
    """imaplib from a chosen source address."""

    def __init__(self, src, port):
        self.src = src
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.src, 0))


class POP3From(poplib.POP3):
    """poplib from a chosen source address."""

    def __init__(self, src, port):
        self.src = src
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.src, 0))


def add_user(server, name, password=PASSWORD):
    server.wharf("user", "add", name, "--password-stdin", input=password.encode() + b"\n")


def imap_login(server, src, user, password=PASSWORD):
    """Logs in from src; returns the client, or raises imaplib's error with the reply."""
    c = IMAPFrom(src, server.ports["imap"])
    try:
        c.login(user, password)
    except imaplib.IMAP4.error:
        c.shutdown()
        raise
    return c


def login_reply(server, src, user, password):
    """The text of the server's answer to a LOGIN from src (OK or NO ...)."""
    try:
        c = imap_login(server, src, user, password)
    except imaplib.IMAP4.error as e:
        return str(e)
    c.logout()
    return "OK"


def bans(server):
    return json.loads(server.wharf("auth", "bans", "--json").stdout)["bans"]


# ---- bans ---------------------------------------------------------------------------------

def test_ban_holds_one_address_only_and_is_lifted(wharf_factory):
    server = wharf_factory(enable={"imap"}, extra={
        **STRANGERS, "exempt_networks": "127.0.0.4/32", "imap_plaintext_auth": "yes",
        "auth_fail_delay": "0", "auth_fail_delay_max": "0",
        "auth_ratelimit_ip_failures": "5"}).start()
    server.wharf("domain", "add", "example.test")
    add_user(server, "alice@example.test")
    user = "alice@example.test"

    # Wrong passwords from 127.0.0.2 until it is banned.
    for _ in range(5):
        assert "AUTHENTICATIONFAILED" in login_reply(server, "127.0.0.2", user, "guess")
    wait_until(lambda: "auth: banned rip=127.0.0.2" in server.log(), what="the ban in the log")
    [ban] = bans(server)
    assert ban["address"] == "127.0.0.2" and ban["failures"] == 5 and ban["expires_in"] > 0
    table = server.wharf("auth", "bans").stdout.decode()
    assert "127.0.0.2" in table and "1 banned" in table

    # The right password from another address logs in at once...
    t0 = time.monotonic()
    assert login_reply(server, "127.0.0.3", user, PASSWORD) == "OK"
    assert time.monotonic() - t0 < 5
    # ...and from the banned one it is refused, only while the ban lasts.
    assert "[UNAVAILABLE]" in login_reply(server, "127.0.0.2", user, PASSWORD)
    out = server.wharf("auth", "unban", "127.0.0.2").stdout.decode()
    assert "ban lifted" in out
    assert bans(server) == []
    assert login_reply(server, "127.0.0.2", user, PASSWORD) == "OK"
    assert "auth: unbanned rip=127.0.0.2" in server.log()

    # mynetworks (127.0.0.1) and exempt_networks (127.0.0.4) are never banned.
    for src in ("127.0.0.1", "127.0.0.4"):
        for _ in range(8):
            assert "AUTHENTICATIONFAILED" in login_reply(server, src, user, "guess")
        assert login_reply(server, src, user, PASSWORD) == "OK"
    assert bans(server) == []
    assert "banned rip=127.0.0.1" not in server.log()
    assert "banned rip=127.0.0.4" not in server.log()

    r = server.wharf("auth", "unban", "not-an-address", check=False)
    assert r.returncode != 0 and b"not an IPv4 or IPv6 address" in r.stderr


def test_password_spray_spares_the_owners_usual_address(wharf_factory):
    server = wharf_factory(enable={"imap"}, extra={
        **STRANGERS, "imap_plaintext_auth": "yes", "auth_fail_delay": "0",
        "auth_fail_delay_max": "0", "auth_ratelimit_user_failures": "3"}).start()
    server.wharf("domain", "add", "example.test")
    add_user(server, "alice@example.test")
    user = "alice@example.test"
    assert login_reply(server, "127.0.0.2", user, PASSWORD) == "OK"  # her usual address
    for src in ("127.0.0.5", "127.0.0.6", "127.0.0.7"):
        assert "AUTHENTICATIONFAILED" in login_reply(server, src, user, "guess")
    # The spray goes on from a new address: refused without a password check.
    assert "[UNAVAILABLE]" in login_reply(server, "127.0.0.8", user, PASSWORD)
    # The owner is not locked out of her usual address, and nothing was banned.
    assert login_reply(server, "127.0.0.2", user, PASSWORD) == "OK"
    assert bans(server) == []


# ---- connection limits --------------------------------------------------------------------

def test_sixty_connections_from_one_address_and_the_userip_limit(wharf_factory):
    server = wharf_factory(enable={"imap"}, extra={
        **STRANGERS, "imap_plaintext_auth": "yes"}).start()
    server.wharf("domain", "add", "example.test")
    users = [f"user{i}@example.test" for i in range(6)]
    for u in users:
        add_user(server, u)
    # Six people behind one NAT address, ten connections each (the default per-user limit).
    held = [imap_login(server, "127.0.0.2", u) for u in users for _ in range(10)]
    assert len(held) == 60
    for c in held[::7]:
        assert c.noop()[0] == "OK"
    # The eleventh of one user from that address is refused with [LIMIT]...
    reply = login_reply(server, "127.0.0.2", users[0], PASSWORD)
    assert "[LIMIT]" in reply and "imap_max_userip_connections" in reply
    # ...while the same user from another address, and another user, log in.
    assert login_reply(server, "127.0.0.3", users[0], PASSWORD) == "OK"
    # Closing one gives its place back.
    held.pop(0).logout()
    wait_until(lambda: login_reply(server, "127.0.0.2", users[0], PASSWORD) == "OK",
               what="the closed session's place to be given back")
    for c in held:
        c.logout()


def test_trusted_networks_are_not_held_to_the_per_address_limit(wharf_factory):
    server = wharf_factory(enable={"pop3"}, extra={
        **STRANGERS, "exempt_networks": "127.0.0.4/32", "pop3_max_connections_per_ip": "2",
        "connection_evict_idle": "1h"}).start()

    def greet(src):
        s = socket.create_connection(("127.0.0.1", server.ports["pop3"]), 20,
                                     source_address=(src, 0))
        return s, s.makefile("rb").readline().decode()
    held = {src: [greet(src) for _ in range(3)] for src in ("127.0.0.1", "127.0.0.4", "127.0.0.2")}
    for src in ("127.0.0.1", "127.0.0.4"):  # mynetworks, exempt_networks
        assert all(g.startswith("+OK") for _, g in held[src]), held[src]
    assert [g[:4] for _, g in held["127.0.0.2"]] == ["+OK ", "+OK ", "-ERR"]
    for conns in held.values():
        for s, _ in conns:
            s.close()


# ---- slowloris ----------------------------------------------------------------------------

TRICKLE = {"smtp": b"EHLO trickle.example", "pop3": b"USER alice@example.test",
           "imap": b"a1 LOGIN alice@example.test right"}


def trickler(port, data, result):
    """Connects from 127.0.0.2 and sends one byte a second, never a whole line, until
    the server hangs up. result gets how long that took (or None if refused at once)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), 10, source_address=("127.0.0.2", 0))
    except OSError:
        result.append(None)
        return
    s.settimeout(1.0)  # the send interval: one byte, then wait up to 1s for the server
    i = 0
    try:
        while time.monotonic() - t0 < 60:
            try:
                if not s.recv(4096):
                    break
                continue  # the greeting (or goodbye): read on
            except socket.timeout:
                pass
            s.sendall(data[i % len(data):i % len(data) + 1])
            i += 1
    except OSError:
        pass  # reset by the server
    s.close()
    result.append(time.monotonic() - t0)


def test_slow_clients_do_not_starve_normal_ones(wharf_factory):
    server = wharf_factory(enable={"smtp", "pop3", "imap"}, extra={
        **STRANGERS, "imap_plaintext_auth": "yes", "pop3_plaintext_auth": "yes",
        "smtp_max_connections_per_ip": "20", "pop3_max_connections_per_ip": "20",
        "imap_max_connections_per_ip": "20", "connection_evict_idle": "0",
        "smtp_command_timeout": "4s", "imap_login_timeout": "4s",
        "pop3_login_timeout": "4s"}).start()
    server.wharf("domain", "add", "example.test")
    add_user(server, "alice@example.test")
    results = {svc: [] for svc in TRICKLE}
    threads = []
    for svc, data in TRICKLE.items():
        for _ in range(25):
            t = threading.Thread(target=trickler, args=(server.ports[svc], data, results[svc]))
            t.start()
            threads.append(t)
    # Every address slot of 127.0.0.2 is taken by a trickler now (20 of 25 per service).
    wait_until(lambda: all(server.status()["connections_by_service"][s] >= 20 for s in TRICKLE),
               what="the tricklers to take every slot of their address")

    # Normal sessions from the same address and from another one complete meanwhile.
    for src in ("127.0.0.2", "127.0.0.3"):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30,
                          source_address=(src, 0)) as c:
            c.sendmail("someone@elsewhere.test", ["alice@example.test"],
                       f"Subject: from {src}\r\n\r\nhello\r\n")
        p = POP3From(src, server.ports["pop3"])
        p.user("alice@example.test")
        p.pass_(PASSWORD)
        p.stat()
        p.quit()
        c = imap_login(server, src, "alice@example.test")
        assert c.select("INBOX")[0] == "OK"
        c.logout()

    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads)
    for svc, times in results.items():
        assert len(times) == 25
        # Each trickler was cut (evicted, refused, or timed out) well before the 60s bound,
        # although it never stopped sending.
        assert all(x is None or x < 30 for x in times), (svc, times)
    log = server.log()
    assert "evicting unknown[127.0.0.2]" in log
    assert "no complete command within the command timeout" in log  # smtp
    assert "no login within the login timeout" in log  # imap, pop3


def test_submission_client_that_never_logs_in_is_cut(wharf_factory):
    """A submission client that keeps talking (NOOP after NOOP) but never
    logs in holds a slot for nothing: submission_login_timeout closes it with
    421; on port 25, where nobody logs in, the same client may go on."""
    server = wharf_factory(enable={"smtp", "submission"},
                           extra={"submission_login_timeout": "2s"}).start()

    def noop_until_cut(port, limit):
        c = smtplib.SMTP("127.0.0.1", port, timeout=10)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < limit:
                code, _ = c.noop()
                if code == 421:
                    return time.monotonic() - t0
                time.sleep(0.2)  # the client's own pace, not a wait for the server
        except smtplib.SMTPServerDisconnected:
            return time.monotonic() - t0
        c.quit()
        return None

    cut = noop_until_cut(server.ports["submission"], 20)
    assert cut is not None and 1.5 <= cut < 10, cut
    assert "no login within the login timeout" in server.log()
    assert noop_until_cut(server.ports["smtp"], 4) is None  # port 25: never cut for that


# ---- postmaster ---------------------------------------------------------------------------

def inbox_subjects(server, user):
    c = imap_login(server, "127.0.0.1", user)
    c.select("INBOX")
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    c.logout()
    return sorted(part[1].decode().strip() for part in data if isinstance(part, tuple))


@pytest.mark.parametrize("configured", [False, True])
def test_postmaster_and_abuse_of_every_domain(wharf_factory, configured):
    extra = {"imap_plaintext_auth": "yes", "abuse_address": "bob@second.test"}
    if configured:
        extra["postmaster_address"] = "bob@second.test"
    server = wharf_factory(enable={"smtp", "imap"}, extra=extra).start()
    for d in ("example.test", "second.test"):
        server.wharf("domain", "add", d)
    add_user(server, "alice@example.test")  # the first account created
    add_user(server, "bob@second.test")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as c:
        for rcpt in ("postmaster@example.test", "PostMaster@second.test", "postmaster",
                     "abuse@example.test", "abuse@second.test"):
            c.sendmail("someone@elsewhere.test", [rcpt], f"Subject: to {rcpt}\r\n\r\nhi\r\n")
        c.mail("someone@elsewhere.test")
        code, _ = c.rcpt("nobody@example.test")  # an ordinary unknown address is still refused
        assert code == 550
        c.rset()
    postmaster = "bob@second.test" if configured else "alice@example.test"
    to_pm = ["Subject: to PostMaster@second.test", "Subject: to postmaster",
             "Subject: to postmaster@example.test"]
    to_abuse = ["Subject: to abuse@example.test", "Subject: to abuse@second.test"]
    want = {postmaster: sorted(to_pm), "bob@second.test": sorted(to_abuse)}
    if configured:
        want = {"bob@second.test": sorted(to_pm + to_abuse)}
    for user, subjects in want.items():
        wait_until(lambda: inbox_subjects(server, user) == subjects,
                   what=f"the messages in {user}'s INBOX")
