"""SRS for forwarded mail: with srs_domain set, a copy an alias forwards to
another domain leaves with the envelope sender SRS0=HASH=TT=domain=local@
srs_domain, so it passes SPF at the receiver; a bounce to that address
comes back to port 25 and is relayed to the original sender's server; a
forged SRS address is refused at RCPT (never an open relay).

- alias fwd@a.test -> bob@a.test (local), carol@peer.test (an aiosmtpd peer);
- sender.test is routed to a second aiosmtpd peer (alice's own server);
- mail from our own domain keeps its sender, and so does bob's local copy.
Runs against the build in WHARF_BUILD (the ASan+UBSan one in CI).
"""
import email
import email.policy
import re
import smtplib

import pytest

from conftest import wait_until
from smtp_helpers import add_user
from test_mta_out import PW, Peer, inbox, log_lines, make_server, spool_empty, start, submit

SRS0 = re.compile(r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=sender\.test=alice@a\.test")


@pytest.fixture
def srs_setup(wharf_factory):
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    accept = lambda attempt, addr: None  # noqa: E731
    forward_peer, home_peer = Peer(controller_mod, accept), Peer(controller_mod, accept)
    routes = (f"peer.test=[127.0.0.1]:{forward_peer.port} none, "
              f"sender.test=[127.0.0.1]:{home_peer.port} none")
    w = start(make_server(wharf_factory, "w", "127.0.0.2", "a.test",
                          {"transport_routes": routes, "srs_domain": "a.test"}))
    if not add_user(w, "alice@a.test", PW):
        pytest.skip("directory not built")
    add_user(w, "bob@a.test", PW)
    w.wharf("alias", "add", "fwd@a.test", "bob@a.test", "carol@peer.test")
    yield w, forward_peer, home_peer
    forward_peer.stop()
    home_peer.stop()


def send25(w, sender, rcpts, body):
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=20) as c:
        c.ehlo("mx.sender.test")
        assert c.sendmail(sender, rcpts, body) == {}


def rcpt_reply(w, address):
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=20) as c:
        c.ehlo("mx.elsewhere.test")
        assert c.mail("")[0] == 250
        return c.rcpt(address)


def test_forward_gets_an_srs_sender_and_its_bounce_goes_home(srs_setup):
    w, forward_peer, home_peer = srs_setup
    send25(w, "alice@sender.test", ["fwd@a.test"],
           b"From: alice@sender.test\r\nSubject: forward me\r\n\r\nhello\r\n")
    wait_until(lambda: forward_peer.envelopes, 30, what="the forward at the peer")
    mail_from, rcpts, content = forward_peer.envelopes[0]
    assert SRS0.fullmatch(mail_from), mail_from
    assert rcpts == ["carol@peer.test"] and b"Subject: forward me" in content
    assert log_lines(w, r": from=<alice@sender\.test>, srs=<" + re.escape(mail_from) + ">")
    # the local copy keeps the original sender
    got = wait_until(lambda: inbox(w, "bob@a.test") or None, 20, what="bob's copy")
    msg = email.message_from_bytes(got[0], policy=email.policy.default)
    assert msg["Return-Path"] == "<alice@sender.test>"
    wait_until(lambda: spool_empty(w), 20, what="spool empty")

    # carol's server bounces to the SRS address (in lower case, as some MTAs
    # write it): it is checked and relayed to alice's own server, null sender kept
    # (aiosmtpd reports the null sender as "<>")
    dsn = (b"From: MAILER-DAEMON@peer.test\r\nSubject: Undelivered Mail\r\n\r\n"
           b"carol is gone\r\n")
    send25(w, "", [mail_from.lower()], dsn)
    wait_until(lambda: home_peer.envelopes, 30, what="the bounce at alice's server")
    back_from, back_rcpts, back_content = home_peer.envelopes[0]
    assert back_from == "<>" and back_rcpts == ["alice@sender.test"]
    assert b"carol is gone" in back_content
    assert len(forward_peer.envelopes) == 1
    wait_until(lambda: spool_empty(w), 20, what="spool empty after the bounce")


def test_our_own_senders_are_not_rewritten(srs_setup):
    w, forward_peer, _ = srs_setup
    submit(w, "alice@a.test", ["fwd@a.test"], b"Subject: from inside\r\n\r\nx\r\n")
    wait_until(lambda: forward_peer.envelopes, 30, what="the forward at the peer")
    assert forward_peer.envelopes[0][0] == "alice@a.test"
    assert not log_lines(w, r"srs=<")


def test_forged_and_malformed_srs_addresses_are_refused(srs_setup):
    w, forward_peer, home_peer = srs_setup
    send25(w, "alice@sender.test", ["fwd@a.test"], b"Subject: one\r\n\r\nx\r\n")
    wait_until(lambda: forward_peer.envelopes, 30, what="the forward at the peer")
    good = forward_peer.envelopes[0][0]
    tag, hash_, rest = good.split("=", 2)
    forged_hash = f"{tag}={'AAAA' if hash_.upper() != 'AAAA' else 'BBBB'}={rest}"
    other_victim = good.replace("=alice@", "=victim@")
    for bad in (forged_hash, other_victim, "SRS0=abcd=AA=evil.test=victim@a.test",
                "SRS0=junk@a.test", "SRS1=abcd=evil.test@a.test"):
        code, text = rcpt_reply(w, bad)
        assert code == 550 and b"5.1.1" in text, (bad, code, text)
    # a valid one is still taken
    code, _ = rcpt_reply(w, good)
    assert code == 250
    assert home_peer.envelopes == []
    assert w.proc.poll() is None
