"""DANE for outbound SMTP (RFC 7672), against a real DNSSEC-signed zone
(NSD serving zones signed by ldns-signzone, dnssec_zone.py) and a TLS
peer (aiosmtpd with STARTTLS and a certificate this test makes):

- the next hop, through the mta's own resolver code (nexthop_tool): a host
  with secure, usable TLSA records must be authenticated by them; secure
  but unusable records (PKIX usages) ask for TLS without authentication;
  records in an unsigned zone, or none at all, leave the policy's fallback;
  a TLSA answer whose signature is broken (bogus) takes the host out, and
  the domain is deferred (4.7.5), never delivered in the clear; dane-only
  takes out hosts without secure records;
- end to end through a wharfd: DANE-EE (3 1 1) matching the peer's key and
  DANE-TA (2 0 1) matching its CA with the MX name in the certificate are
  delivered over TLS; a DANE-EE digest that does not match, and DANE-TA
  with a certificate for another name, are deferred with 4.7.5 and the
  peer never sees the message; an unsigned zone's TLSA records are ignored.
"""
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, sanitizer_env, wait_until
from dnssec_zone import SignedZones, cert_sha256, spki_sha256
from tls_peer import TlsPeer, make_certs
from test_mta_out import PW, log_lines, make_server, start, submit
from smtp_helpers import add_user

TOOL = BUILD / "src" / "mta" / "nexthop_tool"
WRONG = "ab" * 32


@pytest.fixture
def zones(tmp_path):
    chain, key, leaf, ca = make_certs(tmp_path, ["mx-ee.dane.test", "mx-ta.dane.test",
                                                 "mx-wrong.dane.test", "mx.plain.test"])
    peer = TlsPeer(chain, key)
    port = peer.port
    ee, ta = spki_sha256(leaf), cert_sha256(ca)
    z = SignedZones(tmp_path)
    z.add_zone("dane.test", [
        "ee MX 10 mx-ee", "mx-ee A 127.0.0.1", f"_{port}._tcp.mx-ee TLSA 3 1 1 {ee}",
        "ta MX 10 mx-ta", "mx-ta A 127.0.0.1", f"_{port}._tcp.mx-ta TLSA 2 0 1 {ta}",
        "wrong MX 10 mx-wrong", "mx-wrong A 127.0.0.1",
        f"_{port}._tcp.mx-wrong TLSA 3 1 1 {WRONG}",
        "tabad MX 10 mx-tabad", "mx-tabad A 127.0.0.1", f"_{port}._tcp.mx-tabad TLSA 2 0 1 {ta}",
        "pkix MX 10 mx-pkix", "mx-pkix A 127.0.0.1", f"_{port}._tcp.mx-pkix TLSA 1 1 1 {ee}",
        "none MX 10 mx-none", "mx-none A 127.0.0.1",
        "bogus MX 10 mx-bogus", "mx-bogus A 127.0.0.1",
        f"_{port}._tcp.mx-bogus TLSA 3 1 1 {ee}",
    ], corrupt=[(f"_{port}._tcp.mx-bogus", "TLSA")])
    z.add_zone("plain.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                              f"_{port}._tcp.mx TLSA 3 1 1 {WRONG}"], sign=False)
    z.start()
    yield z, peer
    z.stop()
    peer.stop()


def hop(z, port, *domains, opts=()):
    args = [str(TOOL), "-o", f"dns_resolver={z.resolver}", "-o",
            f"dns_trust_anchor_file={z.trust_anchors}", "-o", f"mta_smtp_port={port}",
            "-o", "smtp_listen=127.0.0.1:1"]
    for o in opts:
        args += ["-o", o]
    p = subprocess.run(args + list(domains), capture_output=True, env=sanitizer_env(), timeout=60)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and "Sanitizer" not in err and "runtime error" not in err, err
    res, cur = {}, None
    for line in p.stdout.decode().splitlines():
        f = line.split()
        if line.startswith("  host "):
            res[cur]["dane"] = f[5].split("=", 1)[1]
        else:
            cur = f[0]
            res[cur] = {"status": f[1], "enh": f[2], "dane": None}
    return res, err


def test_tlsa_records_decide_what_a_host_needs(zones):
    z, peer = zones
    r, log = hop(z, peer.port, "ee.dane.test", "ta.dane.test", "pkix.dane.test",
                 "none.dane.test", "plain.test", "bogus.dane.test")
    assert r["ee.dane.test"] == {"status": "ok", "enh": "-", "dane": "verify"}
    assert r["ta.dane.test"]["dane"] == "verify"
    assert r["pkix.dane.test"]["dane"] == "encrypt"  # PKIX usages are unusable for SMTP
    assert r["none.dane.test"]["dane"] == "none"     # secure denial: no DANE
    assert r["plain.test"]["dane"] == "none"         # unsigned zone: its TLSA mean nothing
    assert r["bogus.dane.test"]["status"] == "tempfail"
    assert r["bogus.dane.test"]["enh"] == "4.7.5"
    assert "not using mx-bogus.dane.test: its TLSA lookup failed" in log
    # dane-only: a host without secure TLSA records is not used
    r, _ = hop(z, peer.port, "none.dane.test", "plain.test", "ee.dane.test",
               opts=("mta_smtp_tls_policy=dane-only",))
    assert (r["none.dane.test"]["status"], r["none.dane.test"]["enh"]) == ("tempfail", "4.7.5")
    assert r["plain.test"]["status"] == "tempfail"
    assert r["ee.dane.test"]["dane"] == "verify"
    # without a trust anchor nothing is secure, and dane behaves as may
    p = subprocess.run([str(TOOL), "-o", f"dns_resolver={z.resolver}", "-o",
                        f"mta_smtp_port={peer.port}", "ee.dane.test"], capture_output=True,
                       env=sanitizer_env(), timeout=60)
    assert b"dane=none" in p.stdout


def test_delivery_is_authenticated_by_tlsa_records(zones, wharf_factory):
    z, peer = zones
    w = make_server(wharf_factory, "w", "127.0.0.2", "a.test", {
        "dns_resolver": z.resolver, "mta_smtp_port": str(peer.port), "mta_retry_min": "1h"})
    # the mta reads the anchors after dropping privileges: beside its config
    anchors = w.conf.parent / "anchors.key"
    shutil.copy(z.trust_anchors, anchors)
    anchors.chmod(0o644)
    w.settings["dns_trust_anchor_file"] = str(anchors)
    w.write_config()
    start(w)
    if not add_user(w, "alice@a.test", PW):
        pytest.skip("directory not built")
    good = ["u@ee.dane.test", "u@ta.dane.test", "u@plain.test"]
    bad = ["u@wrong.dane.test", "u@tabad.dane.test", "u@bogus.dane.test"]
    for rcpt in good + bad:
        submit(w, "alice@a.test", [rcpt], f"Subject: to {rcpt}\r\n\r\nhello\r\n".encode())
    got = wait_until(lambda: (lambda g: g if len(g) == len(good) else None)(peer.rcpts()), 60,
                     what="the authenticated deliveries")
    assert got == {r: True for r in good}  # every one over TLS
    for rcpt in bad:
        wait_until(lambda: log_lines(w, rf"to=<{rcpt}>, .*dsn=4\.7\.5, status=deferred"), 30,
                   what=f"{rcpt} deferred")
    assert log_lines(w, r"to=<u@wrong\.dane\.test>, .*(TLSA|certificate)")
    assert log_lines(w, r"to=<u@tabad\.dane\.test>, .*certificate not verified")
    assert set(peer.rcpts()) == set(good)  # nothing reached the peer for the bad ones
    # `wharf queue show` says which TLS policy held each deferred message back
    import json
    shown = [w.wharf("queue", "show", json.loads(l)["queue_id"]).stdout.decode()
             for l in w.wharf("queue", "list", "--json").stdout.splitlines() if l.strip()]
    policies = [l for s in shown for l in s.splitlines() if l.startswith("tls_policy: ")]
    assert len(policies) == len(bad), shown
    assert any(re.match(r"tls_policy: wrong\.dane\.test: dane, TLSA of \S+", p)
               for p in policies), policies
