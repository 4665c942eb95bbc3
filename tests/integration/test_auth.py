"""The auth process on a real wharfd: answers, malformed frames, timing, rate limits.

Requests are written by hand from the frame spec (authwire.py); the accounts
are made with the wharf command.
"""
import json
import os
import poplib
import re
import smtplib
import socket
import ssl
import statistics
import struct
import time

import pytest

from conftest import wait_until
from authwire import (AUTH_FAILED, AUTH_OK, AUTH_RATELIMIT, IPC_AUTH_REQUEST, check, connect,
                      frame, read_reply, request, request_payload)

# The services this module's servers listen on (conftest.wharf_factory).
WHARF_SERVICES = ("submission", "pop3s")  # the auth socket itself, and two of its clients

# The fail2ban filter documented in doc/accounts.md (<HOST> as fail2ban expands it).
FAIL2BAN_REGEX = (r"auth failed: service=\S+ user=<[^>]*> rip=<HOST> reason=")


def fail2ban_re():
    return re.compile(FAIL2BAN_REGEX.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)"))


def start(wharf_factory, **extra):
    settings = {"auth_fail_delay": "0", "auth_fail_delay_max": "0"}
    settings.update({k: str(v) for k, v in extra.items()})
    server = wharf_factory(extra=settings).start()
    server.wharf("user", "add", "alice@example.test", "--password-stdin", input=b"right horse\n")
    sock = server.data / "run" / "auth.sock"

    def ready():
        with connect(sock, timeout=5):
            return True
    wait_until(ready, what="auth.sock to accept connections")
    return server, sock


def test_login_ok_wrong_and_unknown(wharf_factory):
    server, sock = start(wharf_factory)
    assert check(sock, "alice@example.test", "right horse") == (AUTH_OK, "alice@example.test")
    # The domain is case-insensitive; the canonical name comes back.
    assert check(sock, "alice@EXAMPLE.test", "right horse") == (AUTH_OK, "alice@example.test")
    assert check(sock, "alice@example.test", "wrong horse") == (AUTH_FAILED, "")
    assert check(sock, "nobody@example.test", "right horse") == (AUTH_FAILED, "")
    # LOGIN is the same check; an authzid other than the user is refused.
    assert check(sock, "alice@example.test", "right horse", mech="LOGIN")[0] == AUTH_OK
    assert check(sock, "alice@example.test", "right horse",
                 authzid="bob@example.test")[0] == AUTH_FAILED
    assert check(sock, "alice@example.test", "right horse",
                 authzid="alice@example.test")[0] == AUTH_OK
    assert check(sock, "alice@example.test", "right horse", mech="CRAM-MD5")[0] == AUTH_FAILED
    log = server.log()
    assert "right horse" not in log and "wrong horse" not in log, "a password reached the log"
    assert "$y$" not in log, "a hash reached the log"
    st = os.stat(sock)
    assert st.st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert st.st_uid != 0, "auth.sock must belong to the wharf user, not root"


BAD_FRAMES = {
    "garbage": b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    "oversized length": struct.pack(">IHH", 0xFFFFFFFF, IPC_AUTH_REQUEST, 0) + b"x" * 64,
    "non-zero flags": frame(IPC_AUTH_REQUEST, request_payload(1, "a@example.test", "x"), flags=1),
    "wrong type": frame(1, request_payload(1, "alice@example.test", "right horse")),
    "truncated fields": frame(IPC_AUTH_REQUEST,
                              request_payload(1, "alice@example.test", "right horse")[:-9]),
    "trailing bytes": frame(IPC_AUTH_REQUEST,
                            request_payload(1, "alice@example.test", "right horse") + b"\0"),
    "field length past the end": frame(IPC_AUTH_REQUEST,
                                       struct.pack(">QI", 1, 0x7FFFFFFF) + b"smtp"),
    "NUL in user name": frame(IPC_AUTH_REQUEST,
                              request_payload(1, "alice@example.test\0x", "right horse")),
    "overlong password": frame(IPC_AUTH_REQUEST,
                               request_payload(1, "alice@example.test", "p" * 2000)),
}


def closed_by_peer(s):
    s.settimeout(20)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frame_ends_only_that_connection(wharf_factory, name):
    server, sock = start(wharf_factory)
    good = connect(sock)
    good.sendall(request(1, "alice@example.test", "right horse"))
    assert read_reply(good) == (1, AUTH_OK, "alice@example.test")
    with connect(sock) as bad:
        bad.sendall(BAD_FRAMES[name])
        assert closed_by_peer(bad), f"{name}: the connection was not closed"
    # The server goes on serving the other connection, and new ones.
    good.sendall(request(2, "alice@example.test", "right horse"))
    assert read_reply(good) == (2, AUTH_OK, "alice@example.test")
    assert check(sock, "alice@example.test", "right horse")[0] == AUTH_OK
    good.close()
    wait_until(lambda: "closing client connection" in server.log(),
               what="the bad frame to be logged")


def test_short_frame_then_eof(wharf_factory):
    server, sock = start(wharf_factory)
    with connect(sock) as bad:
        whole = request(1, "alice@example.test", "right horse")
        bad.sendall(whole[:len(whole) - 5])
        bad.shutdown(socket.SHUT_WR)
        assert closed_by_peer(bad)
    wait_until(lambda: "short frame" in server.log(), what="the short frame to be logged")
    assert check(sock, "alice@example.test", "right horse")[0] == AUTH_OK


def test_byte_at_a_time_and_pipelined(wharf_factory):
    server, sock = start(wharf_factory)
    with connect(sock) as s:
        data = request(7, "alice@example.test", "right horse") + \
            request(8, "alice@example.test", "wrong")
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
        replies = {read_reply(s)[:2] for _ in range(2)}
        assert replies == {(7, AUTH_OK), (8, AUTH_FAILED)}


def timed(sock, user, password, rip):
    t0 = time.monotonic()
    result = check(sock, user, password, rip=rip)
    return time.monotonic() - t0, result


def test_unknown_user_and_wrong_password_look_alike(wharf_factory):
    server, sock = start(wharf_factory, auth_ratelimit_ip_failures=1000,
                         auth_ratelimit_user_failures=1000)
    unknown, wrong = [], []
    for i in range(12):
        rip = f"203.0.113.{i + 1}"
        t, r = timed(sock, "ghost@example.test", "right horse", rip)
        assert r == (AUTH_FAILED, "")
        unknown.append(t)
        t, r = timed(sock, "alice@example.test", "wrong horse", rip)
        assert r == (AUTH_FAILED, "")
        wrong.append(t)
    mu, mw = statistics.median(unknown), statistics.median(wrong)
    # Both pay for one yescrypt check; an unknown user that skipped it would be far faster.
    assert 1 / 3 < mu / mw < 3, f"median unknown {mu:.4f}s vs wrong password {mw:.4f}s"
    # The wire answer is the same bytes too (apart from the id we chose).
    with connect(sock) as s:
        s.sendall(request(5, "ghost@example.test", "x"))
        a = read_reply(s)
        s.sendall(request(5, "alice@example.test", "x"))
        b = read_reply(s)
    assert a == b == (5, AUTH_FAILED, "")


def test_rate_limit_per_address_and_fail2ban_line(wharf_factory):
    server, sock = start(wharf_factory, auth_ratelimit_ip_failures=3,
                         auth_ratelimit_user_failures=100)
    attacker = "198.51.100.7"
    for _ in range(3):
        assert check(sock, "alice@example.test", "guess", rip=attacker)[0] == AUTH_FAILED
    # The address is banned: now even the right password is refused from it...
    assert check(sock, "alice@example.test", "right horse", rip=attacker)[0] == AUTH_RATELIMIT
    assert check(sock, "ghost@example.test", "guess", rip=attacker)[0] == AUTH_RATELIMIT
    # ...but not from another one.
    assert check(sock, "alice@example.test", "right horse", rip="198.51.100.8")[0] == AUTH_OK

    def lines():
        return [l for l in server.log().splitlines() if "auth failed:" in l]
    wait_until(lambda: len(lines()) >= 5, what="five auth failed lines")
    rx = fail2ban_re()
    hosts = [m.group("host") for m in map(rx.search, lines()) if m]
    assert hosts.count(attacker) >= 5
    assert any("reason=banned" in l for l in lines())
    assert f"auth: banned rip={attacker}" in server.log()
    assert any(f"user=<alice@example.test> rip={attacker} reason=wrong password" in l
               for l in lines())


def test_ipv6_ban_takes_the_whole_64_and_is_lifted_by_any_address_in_it(wharf_factory):
    server, sock = start(wharf_factory, auth_ratelimit_ip_failures=3)
    for i in (1, 2, 3):  # three addresses of one customer's /64
        assert check(sock, "alice@example.test", "guess", rip=f"2001:db8:1:2::{i}")[0] == \
            AUTH_FAILED
    assert check(sock, "alice@example.test", "right horse",
                 rip="2001:db8:1:2:ffff::9")[0] == AUTH_RATELIMIT
    assert check(sock, "alice@example.test", "right horse",
                 rip="2001:db8:1:3::1")[0] == AUTH_OK  # the next /64 is someone else
    bans = json.loads(server.wharf("auth", "bans", "--json").stdout)["bans"]
    assert [b["address"] for b in bans] == ["2001:db8:1:2::/64"]
    out = server.wharf("auth", "unban", "2001:db8:1:2::77").stdout.decode()
    assert "2001:db8:1:2::/64: ban lifted" in out
    assert check(sock, "alice@example.test", "right horse",
                 rip="2001:db8:1:2::1")[0] == AUTH_OK


def test_rate_limit_per_account_also_for_unknown_names(wharf_factory):
    """The account limit counts (account, address) pairs: a name sprayed from many
    addresses is refused from new addresses, never from its owner's usual one."""
    server, sock = start(wharf_factory, auth_ratelimit_ip_failures=100,
                         auth_ratelimit_user_failures=2)
    usual = "192.0.2.50"
    assert check(sock, "alice@example.test", "right horse", rip=usual)[0] == AUTH_OK
    for user in ("alice@example.test", "ghost@example.test"):
        # Many failures from one address are that address's business, not the account's.
        for _ in range(3):
            assert check(sock, user, "guess", rip="192.0.2.1")[0] == AUTH_FAILED
        assert check(sock, user, "guess", rip="192.0.2.98")[0] == AUTH_FAILED
        # Two addresses failed: from a fresh one, the name is now refused: the same for both.
        assert check(sock, user, "right horse", rip="192.0.2.99")[0] == AUTH_RATELIMIT
    # The owner's usual address still logs in at once; the failing address is not banned.
    assert check(sock, "alice@example.test", "right horse", rip=usual) == \
        (AUTH_OK, "alice@example.test")
    assert "reason=account-ratelimit" in server.log()
    assert "auth: banned" not in server.log()


def test_failure_delay_grows_and_does_not_block_others(wharf_factory):
    server, sock = start(wharf_factory, auth_fail_delay="300ms", auth_fail_delay_max="1200ms")
    t1, r = timed(sock, "alice@example.test", "guess", "192.0.2.50")
    assert r[0] == AUTH_FAILED and t1 >= 0.3
    t2, r = timed(sock, "alice@example.test", "guess", "192.0.2.50")
    assert r[0] == AUTH_FAILED and t2 >= 0.6
    # While a failure waits out its delay, another client is answered at once.
    with connect(sock) as slow, connect(sock) as fast:
        slow.sendall(request(1, "alice@example.test", "guess", rip="192.0.2.50"))
        fast.sendall(request(2, "alice@example.test", "right horse", rip="192.0.2.51"))
        assert read_reply(fast)[:2] == (2, AUTH_OK)
        slow.settimeout(0)
        with pytest.raises(BlockingIOError):
            slow.recv(1)  # the failure is still being held back
        slow.settimeout(30)
        assert read_reply(slow)[:2] == (1, AUTH_FAILED)


def test_password_change_and_imported_hashes(wharf_factory):
    server, sock = start(wharf_factory)
    server.wharf("user", "passwd", "alice@example.test", input=b"new horse\n")
    assert check(sock, "alice@example.test", "right horse")[0] == AUTH_FAILED
    assert check(sock, "alice@example.test", "new horse")[0] == AUTH_OK
    vectors = {  # "correct horse", made with Python's crypt module over libxcrypt
        "$6$": "$6$vRMHTgTwQp.KDuvH$ea.Mo60Z1FFlZJewqvss50EXh7cFqRgEJWwv4vgj/Tv6TIzR5fKmXzV0W"
               "pMaYP4aOu9wg9vhwyqYg32.gXKnr.",
        "$2b$": "$2b$05$CE1qWmfaSS7N0x5JcHKpCOn0yKwUX/OHlTOPFAzAmo4JQEm4OJveK",
        "$y$": "$y$j9T$2OQsM3oQW2pJMkFqUrMk/0$LUfDxE34Ck.RWZknjQ0ftb7nTL6glR8JWrPFO/oRK..",
    }
    for scheme, h in vectors.items():
        server.wharf("user", "import-hash", "alice@example.test", h)
        assert check(sock, "alice@example.test", "correct horse")[0] == AUTH_OK, scheme
        assert check(sock, "alice@example.test", "new horse")[0] == AUTH_FAILED, scheme


def test_requests_held_are_bounded(wharf_factory):
    server, sock = start(wharf_factory, auth_pending_max=16, auth_fail_delay="60s",
                         auth_fail_delay_max="60s", auth_ratelimit_ip_failures=1000)
    with connect(sock) as s:
        s.sendall(b"".join(request(i, "alice@example.test", "guess", rip=f"192.0.2.{i}")
                           for i in range(1, 21)))
        # The first ones are held for their 60s delay; the rest are refused at once.
        s.settimeout(4)
        early = [read_reply(s) for _ in range(3)]
    assert all(result == 2 for _, result, _ in early), early  # AUTH_TEMPFAIL
    assert all(rid > 16 for rid, _, _ in early), early
    wait_until(lambda: "auth_pending_max" in server.log(), what="the tempfail to be logged")
    # Held requests of a closed connection are dropped (once the server has seen it close),
    # long before their 60s delays are over: until then, a new request is refused.
    wait_until(lambda: check(sock, "alice@example.test", "right horse",
                             rip="192.0.2.200")[0] == AUTH_OK, timeout=30,
               what="the held requests of the closed connection to be dropped")


def test_answers_waiting_out_their_delay_are_dropped_when_the_connection_closes(wharf_factory):
    """The other half of the bound: checks already done, answers held for their delay."""
    server, sock = start(wharf_factory, auth_pending_max=16, auth_fail_delay="60s",
                         auth_fail_delay_max="60s", auth_ratelimit_ip_failures=1000)
    with connect(sock) as s:
        s.sendall(b"".join(request(i, "alice@example.test", "guess", rip=f"192.0.2.{i}")
                           for i in range(1, 17)))
        # Every check is done (its failure logged); the 16 answers wait out 60s.
        wait_until(lambda: all(f"rip=192.0.2.{i} reason=" in server.log() for i in range(1, 17)),
                   what="the 16 failures to be checked and logged")
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(1)  # nothing answered yet: they are held
        assert check(sock, "alice@example.test", "right horse",
                     rip="192.0.2.100")[0] == 2  # AUTH_TEMPFAIL: every place is taken
    # Closing the connection frees the held places at once, not after 60s.
    wait_until(lambda: check(sock, "alice@example.test", "right horse",
                             rip="192.0.2.200")[0] == AUTH_OK, timeout=30,
               what="the held answers of the closed connection to be dropped")


def test_real_clients_log_in_through_auth(wharf_factory):
    """smtplib on submission (STARTTLS, AUTH) and poplib on pop3s ask this auth process."""
    server, sock = start(wharf_factory)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as c:
        c.starttls(context=ctx)
        c.ehlo()
        assert c.login("alice@example.test", "right horse")[0] == 235
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as c:
        c.starttls(context=ctx)
        c.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("alice@example.test", "wrong horse")
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=ctx, timeout=30)
    p.user("alice@example.test")
    assert p.pass_("right horse").startswith(b"+OK")
    p.quit()
    log = server.log()
    assert "auth ok: service=smtp user=<alice@example.test> rip=127.0.0.1" in log
    assert "auth failed: service=smtp user=<alice@example.test> rip=127.0.0.1" in log
    assert "auth ok: service=pop3 user=<alice@example.test>" in log
