"""Mail authentication (issue 18, src/mailauth): DKIM signing by the mta,
`wharf dkim keygen|activate|records`, and the checks on inbound mail.

Every DNS answer comes from tests/integration/dnszone.py on a loopback port
(dns_resolver); the independent verifiers are Debian's python3-dkim (dkimpy,
the library behind `dkimverify`) and python3-spf (pyspf), which query the
same local server. A real wharfd relays to an aiosmtpd peer that records
the bytes it received.
"""
import os
import re
import smtplib
import stat
import threading

import pytest

from conftest import free_port, wait_until
from dnszone import DnsServer
from smtp_helpers import add_user, tls_context

PW = "pw-secret"


def local_dnsfunc(server):
    """A dkimpy/pyspf DNS function that asks the test's DNS server over UDP/TCP."""
    import dnslib

    def lookup(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        q = dnslib.DNSRecord.question(name.rstrip("."), "TXT")
        a = dnslib.DNSRecord.parse(q.send("127.0.0.1", server.port, tcp=True, timeout=timeout))
        for rr in a.rr:
            if rr.rtype == dnslib.QTYPE.TXT:
                return b"".join(rr.rdata.data)
        return None
    return lookup


def dkim_verifies(message, idx, dns):
    """dkimpy's verdict on signature idx (it raises on some failures)."""
    import dkim
    try:
        return dkim.DKIM(message).verify(idx=idx, dnsfunc=local_dnsfunc(dns))
    except dkim.DKIMException:
        return False


def publish(dns, keygen_output):
    """Puts the TXT records printed by `wharf dkim keygen` into the zone."""
    n = 0
    for line in keygen_output.splitlines():
        m = re.match(r'^(\S+)\. IN TXT \((.*)\)', line)
        if m:
            txt = "".join(re.findall(r'"([^"]*)"', m.group(2)))
            dns.zone[(m.group(1).lower(), "TXT")] = [txt]
            n += 1
    return n


class Sink:
    """An aiosmtpd peer keeping every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(envelope.original_content)
                return "250 2.0.0 queued"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


@pytest.fixture
def sink():
    pytest.importorskip("aiosmtpd.controller")
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def dns():
    pytest.importorskip("dnslib")
    s = DnsServer()
    yield s
    s.close()


def start_signer(factory, dns, sink, extra=None):
    settings = {"myhostname": "mail.a.test", "mydomains": "a.test",
                "dns_resolver": dns.resolver, "mta_retry_min": "1s",
                "transport_routes": f"peer.test=[127.0.0.1]:{sink.port} none"}
    settings.update(extra or {})
    w = factory("a", host="127.0.0.1", enable={"smtp", "submission"}, extra=settings)
    w.start()
    if not add_user(w, "alice@a.test", PW):
        pytest.skip("directory not built")
    return w


def submit(server, user, rcpts, body):
    with smtplib.SMTP(server.host, server.ports["submission"], timeout=20) as c:
        c.ehlo("client.example")
        c.starttls(context=tls_context())
        c.ehlo("client.example")
        c.login(user, PW)
        assert c.sendmail(user, rcpts, body) == {}


MSG = (b"From: Alice <alice@a.test>\r\nTo: carol@peer.test\r\nSubject: signed\r\n"
       b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@a.test>\r\n\r\n"
       b"Hello Carol,  with  spaces\t \r\n\r\n.a line with a dot\r\n\r\n\r\n")


def test_keygen_prints_records_and_keeps_keys_private(wharf_factory, dns, sink):
    w = start_signer(wharf_factory, dns, sink)
    out = w.wharf("dkim", "keygen", "A.test", "--selector", "s1").stdout.decode()
    assert re.search(r'^s1-ed25519\._domainkey\.a\.test\. IN TXT \( "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=" \)$',
                     out, re.M), out
    rsa = re.search(r'^s1-rsa\._domainkey\.a\.test\. IN TXT \((.*)\)$', out, re.M)
    assert rsa, out
    strings = re.findall(r'"([^"]*)"', rsa.group(1))
    assert all(len(s) <= 255 for s in strings) and len(strings) >= 2  # 2048 bits do not fit one
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # SubjectPublicKeyInfo
    assert "a.test signs with s1-ed25519 and s1-rsa" in out
    keydir = w.data / "dkim" / "a.test"
    assert stat.S_IMODE(os.stat(w.data / "dkim").st_mode) == 0o700
    for k in ("s1-ed25519.key", "s1-rsa.key"):
        assert stat.S_IMODE(os.stat(keydir / k).st_mode) == 0o600
    assert (keydir / "active").read_text() == "s1-ed25519\ns1-rsa\n"
    # a second pair for rotation is not active until activated
    out2 = w.wharf("dkim", "keygen", "a.test", "--selector", "s2").stdout.decode()
    assert "wharf dkim activate a.test s2" in out2
    assert (keydir / "active").read_text() == "s1-ed25519\ns1-rsa\n"
    # never overwritten, bad names refused
    assert w.wharf("dkim", "keygen", "a.test", "--selector", "s1", check=False).returncode != 0
    assert w.wharf("dkim", "keygen", "../etc", check=False).returncode != 0
    w.wharf("dkim", "activate", "a.test", "s2")
    assert (keydir / "active").read_text() == "s2-ed25519\ns2-rsa\n"
    recs = w.wharf("dkim", "records", "a.test").stdout.decode()
    assert len(recs.splitlines()) == 4
    assert [l.split(".")[0] for l in recs.splitlines() if l.endswith("; active")] == \
        ["s2-ed25519", "s2-rsa"]


def test_submitted_mail_is_signed_twice_and_dkimpy_verifies(wharf_factory, dns, sink):
    dkim = pytest.importorskip("dkim")
    w = start_signer(wharf_factory, dns, sink)
    assert publish(dns, w.wharf("dkim", "keygen", "a.test", "--selector", "s1").stdout.decode()) == 2
    submit(w, "alice@a.test", ["carol@peer.test"], MSG)
    got = wait_until(lambda: sink.messages or None, 30, what="the relayed message")[0]
    sigs = re.findall(rb"^DKIM-Signature:", got, re.M)
    assert len(sigs) == 2, got
    assert b"a=ed25519-sha256" in got and b"a=rsa-sha256" in got
    for idx in (0, 1):
        assert dkim_verifies(got, idx, dns), f"signature {idx} does not verify:\n{got!r}"
    # the body as received is the body as submitted: dot-stuffing undone, nothing lost
    assert got.endswith(b"\r\n\r\n.a line with a dot\r\n\r\n\r\n")
    # a change in transit breaks both signatures (the test can fail)
    tampered = got.replace(b"Hello Carol", b"Hello Carl")
    assert not dkim_verifies(tampered, 0, dns)
    assert not dkim_verifies(tampered, 1, dns)


def test_only_our_own_mail_is_signed(wharf_factory, dns, sink):
    # mail from a client outside mynetworks on port 25 is not ours to sign,
    # nor is a From domain without keys
    w = start_signer(wharf_factory, dns, sink, {"mynetworks": "192.0.2.0/24"})
    w.wharf("dkim", "keygen", "a.test", "--selector", "s1")
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=20) as c:
        # a local recipient (port 25 does not relay for strangers)
        c.sendmail("someone@elsewhere.test", ["alice@a.test"], MSG.replace(b"carol@peer.test", b"alice@a.test"))
    submit(w, "alice@a.test", ["carol@peer.test"], MSG.replace(b"alice@a.test>", b"alice@other.test>"))
    got = wait_until(lambda: sink.messages or None, 30, what="the relayed message")[0]
    assert b"DKIM-Signature" not in got
    assert b"alice@other.test" in got


def test_sendmail_from_mynetworks_is_signed(wharf_factory, dns, sink):
    dkim = pytest.importorskip("dkim")
    w = start_signer(wharf_factory, dns, sink)
    publish(dns, w.wharf("dkim", "keygen", "a.test", "--selector", "s1").stdout.decode())
    w.wharf("sendmail", "-i", "carol@peer.test", input=MSG)
    got = wait_until(lambda: sink.messages or None, 30, what="the relayed message")[0]
    assert dkim_verifies(got, 0, dns) and dkim_verifies(got, 1, dns)
