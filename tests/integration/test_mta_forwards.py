"""Aliases that point to other domains (issue 7): the mta's categorizer
records the expansion in the spool entry, delivers the local accounts once,
and sends the remote targets through the outbound path.

- team@a.test -> bob@a.test, carol@peer.test, dave@peer.test: bob gets one
  copy, the aiosmtpd peer gets one transaction with both remote recipients
  and the original envelope sender (no SRS);
- the peer refuses one target with 550: the sender gets an RFC 3464 report
  whose Original-Recipient is the alias;
- while the remote part waits for a retry, `wharf mailq` lists the remote
  targets and `wharf queue show` the alias as expanded;
- a crash after the store commit but before the spool update (simulated by
  setting bob back to pending in the stopped server's spool file) and a
  SIGKILL of the mta right after the expansion: still one copy for bob, and
  the remote targets are delivered;
- an alias loop: 550 5.4.6 at RCPT, and a 5.4.6 bounce for an entry accepted
  before the alias became a loop.
Runs against the build in WHARF_BUILD (the ASan+UBSan one in CI).
"""
import email
import email.policy
import os
import signal
import smtplib
import struct

import pytest

from conftest import wait_until
from smtp_helpers import add_user
from test_mta_out import (PW, inbox, log_lines, parse_report, peer_and_wharf,  # noqa: F401
                          queue_entry, spool_empty, start, submit)

TARGETS = ["bob@a.test", "carol@peer.test", "dave@peer.test"]


@pytest.fixture
def forwarding(peer_and_wharf):
    """make(rcpt_reply, extra): test_mta_out's peer and wharfd (serving a.test, alice there),
    with bob@a.test and the alias team@a.test."""
    def make(rcpt_reply, extra=None):
        peer, w = peer_and_wharf(rcpt_reply, extra)
        add_user(w, "bob@a.test", PW)
        w.wharf("alias", "add", "team@a.test", *TARGETS)
        return peer, w

    return make


def remote_rcpts(peer):
    return sorted(r for e in peer.envelopes for r in e[1])


def test_alias_to_local_and_remote_addresses(forwarding):
    peer, w = forwarding(lambda attempt, addr: None)
    submit(w, "alice@a.test", ["team@a.test"],
           b"From: alice@a.test\r\nTo: team@a.test\r\nSubject: to the team\r\n\r\nhello all\r\n")
    wait_until(lambda: peer.envelopes, 30, what="the forward at the peer")
    wait_until(lambda: spool_empty(w), 20, what="spool empty")
    # one transaction with both remote targets, sent by the original sender
    assert len(peer.envelopes) == 1
    mail_from, rcpts, content = peer.envelopes[0]
    assert mail_from == "alice@a.test"
    assert sorted(rcpts) == ["carol@peer.test", "dave@peer.test"]
    assert b"Subject: to the team" in content
    # bob: exactly one copy
    got = inbox(w, "bob@a.test")
    assert len(got) == 1
    msg = email.message_from_bytes(got[0], policy=email.policy.default)
    assert msg["Subject"] == "to the team" and msg["Return-Path"] == "<alice@a.test>"
    assert len(log_lines(w, r"to=<team@a\.test>, status=expanded")) == 1, w.log()
    assert log_lines(w, r"to=<bob@a\.test>, orig_to=<team@a\.test>, relay=local, .*status=sent")
    for r in ("carol", "dave"):
        assert len(log_lines(w, rf"to=<{r}@peer\.test>, orig_to=<team@a\.test>, "
                             r"relay=127\.0\.0\.1.*status=sent")) == 1
    assert inbox(w, "alice@a.test") == []  # no report


def test_a_refused_target_bounces_to_the_sender_naming_the_alias(forwarding):
    peer, w = forwarding(lambda attempt, addr: "550 5.1.1 dave left" if addr.startswith("dave")
                         else None)
    submit(w, "alice@a.test", ["team@a.test"],
           b"Subject: partly\r\nMessage-ID: <partly@a.test>\r\n\r\nbody\r\n")
    got = wait_until(lambda: inbox(w, "alice@a.test") or None, 30, what="the bounce")
    assert len(got) == 1
    msg, parts, status = parse_report(got[0])
    assert msg["Return-Path"] == "<>"
    assert len(status) == 2  # the message block and dave's
    rcpt = status[1]
    assert rcpt["Action"] == "failed" and rcpt["Status"] == "5.1.1"
    assert rcpt["Final-Recipient"].lower() == "rfc822; dave@peer.test"
    assert rcpt["Original-Recipient"].lower().replace(" ", "") == "rfc822;team@a.test"
    assert "550 5.1.1 dave left" in rcpt["Diagnostic-Code"]
    assert remote_rcpts(peer) == ["carol@peer.test"]
    assert len(inbox(w, "bob@a.test")) == 1
    wait_until(lambda: spool_empty(w), 10, what="spool empty")


def spool_set_pending(path, address):
    """Sets the state record (X) of recipient address back to pending, in place."""
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"WSPL" and struct.unpack(">I", raw[4:8])[0] == 3
    pos, current = 8, None
    while pos < len(raw):
        kind, n = raw[pos:pos + 1], struct.unpack(">I", raw[pos + 1:pos + 5])[0]
        value = raw[pos + 5:pos + 5 + n]
        if kind == b"R":
            current = bytes(value)
        elif kind == b"X" and current == address.encode():
            assert raw[pos + 5] == 1  # delivered
            raw[pos + 5] = 0
            with open(path, "r+b") as f:  # in place: owner and mode stay
                f.write(raw)
            return
        pos += 5 + n
    raise AssertionError(f"no state record for {address} in {path}")


def test_mailq_and_a_crash_before_the_spool_update(forwarding):
    peer, w = forwarding(lambda attempt, addr: "451 4.3.0 later" if attempt == 1 else None,
                         {"mta_retry_min": "1h"})
    submit(w, "alice@a.test", ["team@a.test"], b"Subject: crash\r\n\r\nonce\r\n")
    e = wait_until(lambda: (lambda e: e if e and e.get("attempts") == 1 else None)(
        queue_entry(w)), 20, what="the first deferral")
    # mailq: the remote targets wait, the alias is done
    states = {r["address"]: r["state"] for r in e["recipients"]}
    assert states == {"team@a.test": "expanded", "bob@a.test": "delivered",
                      "carol@peer.test": "pending", "dave@peer.test": "pending"}
    text = w.wharf("mailq").stdout.decode()
    assert "carol@peer.test" in text and "dave@peer.test" in text and "team@a.test" not in text
    show = w.wharf("queue", "show", e["queue_id"]).stdout.decode()
    assert "recipient: <team@a.test> expanded" in show
    assert "recipient: <carol@peer.test> pending orcpt=rfc822;team@a.test" in show
    assert len(inbox(w, "bob@a.test")) == 1
    # as if the mta died between bob's store commit and the spool update
    assert w.stop() == 0
    spool_set_pending(w.data / "spool" / "queue" / e["queue_id"], "bob@a.test")
    start(w)
    wait_until(lambda: log_lines(w, rf"{e['queue_id']}: deferred, next attempt in \d+s"), 20,
               what="the mta to read the entry after the restart")
    w.wharf("queue", "flush", e["queue_id"])
    wait_until(lambda: spool_empty(w), 30, what="delivery after the restart")
    assert remote_rcpts(peer) == ["carol@peer.test", "dave@peer.test"]
    assert len(inbox(w, "bob@a.test")) == 1  # the store's (queue id, account) dedupe
    # bob was taken again, and the store recognised the copy it had
    assert len(log_lines(w, r"to=<bob@a\.test>, orig_to=<team@a\.test>, relay=local")) == 2
    assert len(log_lines(w, r"to=<team@a\.test>, status=expanded")) == 1  # never twice


def test_sigkill_of_the_mta_after_the_expansion(forwarding):
    peer, w = forwarding(lambda attempt, addr: None)
    mta_pid = w.component("mta")["processes"][0]["pid"]
    submit(w, "alice@a.test", ["team@a.test"], b"Subject: kill\r\n\r\nonce\r\n")
    wait_until(lambda: log_lines(w, r"to=<team@a\.test>, status=expanded"), 20,
               what="the expansion")
    os.kill(mta_pid, signal.SIGKILL)
    wait_until(lambda: (lambda p: p["state"] == "running" and p["pid"] != mta_pid)(
        w.component("mta")["processes"][0]), 30, what="the supervisor to restart the mta")
    wait_until(lambda: spool_empty(w), 30, what="delivery after the restart")
    # at least once to the peer (section 6 of mta-out.md), exactly once locally
    assert set(remote_rcpts(peer)) == {"carol@peer.test", "dave@peer.test"}
    assert len(inbox(w, "bob@a.test")) == 1


def spool_record(kind, value):
    return kind + struct.pack(">I", len(value)) + value


def test_alias_loops_are_refused_or_bounced_with_5_4_6(forwarding):
    peer, w = forwarding(lambda attempt, addr: None)
    w.wharf("alias", "add", "ping@a.test", "pong@a.test")
    w.wharf("alias", "add", "pong@a.test", "ping@a.test")
    # at RCPT time
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=20) as c:
        c.ehlo("client.example")
        c.mail("someone@elsewhere.test")
        code, text = c.rcpt("ping@a.test")
        assert code == 550 and text.startswith(b"5.4.6 "), text
        assert c.rcpt("bob@a.test")[0] == 250  # the session goes on
    # an entry accepted before the alias became a loop (written as the smtp worker would)
    assert w.stop() == 0
    queue = w.data / "spool" / "queue"
    path = queue / "LOOPTEST1"
    path.write_bytes(b"WSPL" + struct.pack(">I", 3) + b"".join([
        spool_record(b"I", b"LOOPTEST1"), spool_record(b"S", b"alice@a.test"),
        spool_record(b"R", b"ping@a.test"), spool_record(b"X", b"\0"),
        spool_record(b"W", struct.pack(">Q", 1700000000)),
        spool_record(b"M", b"Subject: round and round\r\n\r\nx\r\n"), spool_record(b"Z", b"")]))
    st = queue.stat()
    os.chown(path, st.st_uid, st.st_gid)
    path.chmod(0o600)
    start(w)
    got = wait_until(lambda: inbox(w, "alice@a.test") or None, 30, what="the loop bounce")
    msg, parts, status = parse_report(got[0])
    assert status[1]["Status"] == "5.4.6"
    assert status[1]["Final-Recipient"].lower() == "rfc822; ping@a.test"
    assert "alias loop" in status[1]["Diagnostic-Code"]
    wait_until(lambda: spool_empty(w), 10, what="spool empty")
    assert log_lines(w, r"LOOPTEST1: to=<ping@a\.test>, relay=local, .*dsn=5\.4\.6, status=bounced")
