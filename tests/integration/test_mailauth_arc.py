"""ARC sealing (RFC 8617, issue 18): mail that b.test receives on port 25,
checks, and forwards through an alias to an outside address leaves with a
new ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results)
signed with b.test's DKIM RSA key.

The independent verifier is Debian's python3-dkim (dkimpy's arc_verify, the
library behind `arcverify`), asking the test's DNS server; the peer is an
aiosmtpd sink that keeps the bytes it received:
- a fresh chain: i=1, cv=none, and the chain verifies;
- a chain made by dkimpy's arcsign at an outside forwarder: i=2, cv=pass,
  and the two-set chain verifies;
- that chain altered after its seal: i=2, cv=fail, the seal covering only
  its own set (RFC 8617 5.1.2), which dkimpy verifies set by set; sent
  through again, the ended chain gets no further set;
- arc_seal = no: forwarded as is.
"""
import re
import subprocess

import pytest

from dnszone import dns_server  # noqa: F401 (the fixture)
from conftest import wait_until
from smtp_helpers import add_user
from test_mailauth import INBOUND, PW, keypair, local_dnsfunc, publish, sink  # noqa: F401 (sink: the fixture)


def start_forwarder(factory, dns_server, sink, extra=None):
    """b.test on port 25 with fwd@b.test -> carol@peer.test, and DKIM keys."""
    settings = {"myhostname": "mail.b.test", "mydomains": "b.test",
                "dns_resolver": dns_server.resolver, "mynetworks": "192.0.2.0/24",
                "mailauth_checks": "yes", "mta_retry_min": "1s",
                "transport_routes": f"peer.test=[127.0.0.1]:{sink.port} none"}
    settings.update(extra or {})
    w = factory("b", host="127.0.0.1", enable={"smtp"}, extra=settings)
    w.start()
    if not add_user(w, "bob@b.test", PW):
        pytest.skip("directory not built")
    w.wharf("alias", "add", "fwd@b.test", "carol@peer.test")
    assert publish(dns_server, w.wharf("dkim", "keygen", "b.test", "--selector", "k1")
                   .stdout.decode()) == 2
    dns_server.zone[("sender.test", "TXT")] = ["v=spf1 ip4:127.0.0.1 -all"]
    return w


def forward(w, sink, message):
    import smtplib
    n = len(sink.messages)
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
        c.ehlo("mx.sender.test")
        assert c.sendmail("sam@sender.test", ["fwd@b.test"], message) == {}
    got = wait_until(lambda: sink.messages[n:] or None, 30, what="the forward at the peer")[0]
    return got.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def arc_fields(message):
    """{(name, i): unfolded value} of the ARC fields, and their order."""
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")
    out, order = {}, []
    for line in unfolded:
        name, _, value = line.partition(":")
        if name.lower().startswith("arc-"):
            i = int(re.search(r"\bi=(\d+)", value).group(1))
            out[(name, i)] = value.strip()
            order.append((name, i))
    return out, order


def outside_seal(tmp_path, dns_server, message):
    """An ARC set added by fwd.test with dkimpy's arcsign (its own AR first)."""
    key, rec = keypair(tmp_path, "rsa")
    dns_server.zone[("arc1._domainkey.fwd.test", "TXT")] = [rec]
    msg = b"Authentication-Results: mx.fwd.test; spf=pass smtp.mailfrom=sam@sender.test\r\n" + message
    p = subprocess.run(["/usr/bin/arcsign", "arc1", "fwd.test", str(key), "mx.fwd.test"],
                       input=msg, capture_output=True, check=True)
    sealed = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert sealed.count(b"ARC-Seal:") == 1, sealed[:300]
    return sealed


def test_forward_gets_a_fresh_arc_chain_that_dkimpy_verifies(wharf_factory, dns_server, sink):
    dkim = pytest.importorskip("dkim")
    w = start_forwarder(wharf_factory, dns_server, sink)
    got = forward(w, sink, INBOUND)
    f, order = arc_fields(got)
    # one set on top, in the RFC's order
    assert order == [("ARC-Seal", 1), ("ARC-Message-Signature", 1),
                     ("ARC-Authentication-Results", 1)], order
    assert got.startswith(b"ARC-Seal: i=1;"), got[:200]
    seal = f[("ARC-Seal", 1)]
    assert "cv=none" in seal and "d=b.test" in seal and "s=k1-rsa" in seal and \
        "a=rsa-sha256" in seal, seal
    aar = f[("ARC-Authentication-Results", 1)]
    assert aar.startswith("i=1; mail.b.test;") and "spf=pass smtp.mailfrom=sam@sender.test" in aar \
        and "arc=none" in aar, aar
    cv, results, why = dkim.arc_verify(got, dnsfunc=local_dnsfunc(dns_server))
    assert cv == dkim.CV_Pass, (why, results)
    assert results[0]["ams-valid"] and results[0]["as-valid"], results
    # bytes changed on the way after the seal: the chain no longer verifies
    cv, _, why = dkim.arc_verify(got.replace(b"Hello", b"Hullo"), dnsfunc=local_dnsfunc(dns_server))
    assert cv == dkim.CV_Fail, why
    assert re.search(r"fwd@b\.test.*status=expanded", w.log())


def test_forward_extends_an_outside_chain(wharf_factory, dns_server, sink, tmp_path):
    dkim = pytest.importorskip("dkim")
    w = start_forwarder(wharf_factory, dns_server, sink)
    sealed = outside_seal(tmp_path, dns_server, INBOUND.replace(b"bob@b.test", b"fwd@b.test"))
    got = forward(w, sink, sealed)
    f, order = arc_fields(got)
    assert order[:3] == [("ARC-Seal", 2), ("ARC-Message-Signature", 2),
                         ("ARC-Authentication-Results", 2)], order
    assert {k for k in f} == {(n, i) for n in ("ARC-Seal", "ARC-Message-Signature",
                                                "ARC-Authentication-Results") for i in (1, 2)}
    assert "cv=pass" in f[("ARC-Seal", 2)], f[("ARC-Seal", 2)]
    assert "arc=pass (i=1)" in f[("ARC-Authentication-Results", 2)]
    cv, results, why = dkim.arc_verify(got, dnsfunc=local_dnsfunc(dns_server))
    assert cv == dkim.CV_Pass, (why, results)
    assert [r["instance"] for r in results] == [2, 1]
    assert all(r["as-valid"] for r in results) and results[0]["ams-valid"], results


def test_forward_of_a_broken_chain_is_sealed_cv_fail(wharf_factory, dns_server, sink, tmp_path):
    dkim = pytest.importorskip("dkim")
    w = start_forwarder(wharf_factory, dns_server, sink)
    sealed = outside_seal(tmp_path, dns_server, INBOUND.replace(b"bob@b.test", b"fwd@b.test"))
    got = forward(w, sink, sealed.replace(b"Hello", b"Hullo"))
    f, order = arc_fields(got)
    assert order[0] == ("ARC-Seal", 2), order
    assert "cv=fail" in f[("ARC-Seal", 2)], f[("ARC-Seal", 2)]
    assert "arc=fail" in f[("ARC-Authentication-Results", 2)]
    # a chain marked failed ends there for every verifier
    cv, _, why = dkim.arc_verify(got, dnsfunc=local_dnsfunc(dns_server))
    assert cv is None and "ARC-Seal[2] reported failure" in why, (cv, why)
    # and our set is sound on its own: the seal covers only set 2 (RFC 8617 5.1.2);
    # dkimpy picks the fields it hashes by name from the whole message, so set 1 goes
    head, body = got.split(b"\r\n\r\n", 1)
    fields = re.split(rb"\r\n(?![ \t])", head)
    alone = b"\r\n".join(x for x in fields if not re.match(rb"(?i)arc-[a-z-]+:\s*i=1;", x))
    assert alone.count(b"\r\nARC-") == 2 and alone.startswith(b"ARC-Seal: i=2;")
    a = dkim.ARC(alone + b"\r\n\r\n" + body)
    _, sets = a.sorted_arc_headers()
    r = a.verify_instance([s for s in sets if s[0] == 2], 2, dnsfunc=local_dnsfunc(dns_server))
    assert r["ams-valid"] and r["as-valid"] and r["cv"] == dkim.CV_Fail, r
    # a chain that arrives already ended is not sealed again
    n = len(sink.messages)
    got2 = forward(w, sink, got)
    assert len(sink.messages) == n + 1
    assert arc_fields(got2)[1][0] == ("ARC-Seal", 2), arc_fields(got2)[1]
    assert "not ARC-sealed: the chain was ended by an earlier cv=fail" in w.log()


def test_arc_seal_no_forwards_unsealed(wharf_factory, dns_server, sink):
    w = start_forwarder(wharf_factory, dns_server, sink, {"arc_seal": "no"})
    got = forward(w, sink, INBOUND)
    assert arc_fields(got) == ({}, []), got[:400]
    assert b"Authentication-Results: mail.b.test;" in got
