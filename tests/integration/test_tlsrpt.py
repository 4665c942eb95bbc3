"""TLS reporting (RFC 8460, issue 18): with tlsrpt on, the mta records the
outcome of its sessions under MTA-STS and sends each policy domain that
publishes a `_smtp._tls` TXT record an aggregate JSON report, gzip'd, to the
record's mailto: address, through the queue like any mail it writes, and
to its https: address as a POST (application/tlsrpt+gzip) through the
HTTPS client MTA-STS fetches with.

The setting is test_mta_sts's: NSD serving enf.test (policy and certificate
agree: delivered over TLS) and enfbad.test (enforce, the certificate does
not name the MX host: deferred 4.7.5), an HTTPS policy server and an
aiosmtpd STARTTLS peer; both domains ask for reports to alice@a.test, a
mailbox of the reporting server itself, so the report is read back from
the store and checked field by field: media types, subject, and the JSON.
enf.test asks for them at https://tlsrpt.enf.test:PORT/v1/reports too
(the policy server, whose certificate names that host, takes the POST):
the JSON posted must be the one mailed.
"""
import email
import email.policy
import gzip
import json
import re

import pytest

from conftest import wait_until
from dnssec_zone import SignedZones
from test_mta_out import inbox, log_lines, submit
from test_mta_sts import POLICIES, PolicyServer, start_sender
from tls_peer import TlsPeer, make_certs


@pytest.fixture
def sts_reporting(tmp_path):
    chain, key, _, ca = make_certs(tmp_path, ["mx.enf.test"], "smtp")
    web_chain, web_key, _, _ = make_certs(tmp_path, list(POLICIES) + ["tlsrpt.enf.test"], "web")
    peer = TlsPeer(chain, key)
    web = PolicyServer(web_chain, web_key)
    z = SignedZones(tmp_path)
    for d in ("enf", "enfbad"):
        https = f",https://tlsrpt.enf.test:{web.port}/v1/reports" if d == "enf" else ""
        z.add_zone(f"{d}.test", ["@ MX 10 mx", "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                                 "tlsrpt A 127.0.0.1", f'_mta-sts TXT "v=STSv1; id={d}1;"',
                                 f'_smtp._tls TXT "v=TLSRPTv1; rua=mailto:alice@a.test{https}"'],
                   sign=False)
    z.start()
    yield z, peer, web, ca
    z.stop()
    web.stop()
    peer.stop()


def reports(server):
    """{domain: [report JSON]} of the TLS reports in alice's INBOX."""
    out = {}
    for raw in inbox(server, "alice@a.test"):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.get_content_type() != "multipart/report" or \
                msg.get_param("report-type") != "tlsrpt":
            continue
        parts = [p for p in msg.iter_attachments() if p.get_content_type() ==
                 "application/tlsrpt+gzip"]
        assert len(parts) == 1, msg
        report = json.loads(gzip.decompress(parts[0].get_content()))
        domain = msg["TLS-Report-Domain"]
        assert msg["Subject"] == (f"Report Domain: {domain} Submitter: mail.a.test "
                                  f"Report-ID: <{report['report-id']}>"), msg["Subject"]
        assert parts[0].get_filename().startswith(f"mail.a.test!{domain}!")
        out.setdefault(domain, []).append(report)
    return out


def counts(reps, domain):
    ok = bad = 0
    details = []
    for r in reps.get(domain, []):
        for p in r["policies"]:
            assert p["policy"]["policy-type"] == "sts" and p["policy"]["policy-domain"] == domain
            ok += p["summary"]["total-successful-session-count"]
            bad += p["summary"]["total-failure-session-count"]
            details += p.get("failure-details", [])
    return ok, bad, details


def test_sts_sessions_are_reported_to_the_domains_rua(sts_reporting, wharf_factory):
    z, peer, web, ca = sts_reporting
    w = start_sender(wharf_factory, z, peer, web, ca, {"tlsrpt": "yes", "tlsrpt_interval": "2s"})
    for rcpt in ("a@enf.test", "u@enfbad.test"):
        submit(w, "alice@a.test", [rcpt], f"Subject: to {rcpt}\r\n\r\nhello\r\n".encode())
    wait_until(lambda: log_lines(w, r"to=<u@enfbad\.test>, .*dsn=4\.7\.5, status=deferred"), 30,
               what="the deferral")
    try:
        reps = wait_until(lambda: (lambda r: r if counts(r, "enf.test")[0] and
                                   counts(r, "enfbad.test")[1] else None)(reports(w)),
                          60, what="both reports")
    except AssertionError:
        raise AssertionError(w.log())
    ok, bad, details = counts(reps, "enf.test")
    assert (ok, bad, details) == (1, 0, []), reps
    ok, bad, details = counts(reps, "enfbad.test")
    assert ok == 0 and bad >= 1, reps
    assert {d["receiving-mx-hostname"] for d in details} == {"mx.enfbad.test"}, details
    assert {d["result-type"] for d in details} <= {"certificate-host-mismatch",
                                                    "validation-failure"}, details
    assert sum(d["failed-session-count"] for d in details) == bad
    # the https: copy of enf.test's report: the same JSON, gzip'd, POSTed
    posts = wait_until(lambda: list(web.posts) or None, 30, what="the https report")
    host, path, ctype, body = posts[0]
    assert (host, path, ctype) == ("tlsrpt.enf.test", "/v1/reports", "application/tlsrpt+gzip")
    posted = json.loads(gzip.decompress(body))
    mailed = wait_until(lambda: [r for r in reports(w).get("enf.test", [])
                                 if r["report-id"] == posted["report-id"]] or None, 30,
                        what="the mailed copy of the posted report")
    assert mailed[0] == posted
    assert {json.loads(gzip.decompress(p[3]))["policies"][0]["policy"]["policy-domain"]
            for p in posts} == {"enf.test"}  # enfbad.test named no https: URI
    assert re.search(r"tlsrpt: enf\.test: report posted to https://tlsrpt\.enf\.test:\d+"
                     r"/v1/reports \(HTTP 201\)", w.log())
    r = reps["enfbad.test"][0]
    assert r["organization-name"] == "mail.a.test"
    assert r["contact-info"] == "mailto:postmaster@mail.a.test"
    assert r["date-range"]["start-datetime"] <= r["date-range"]["end-datetime"]
    assert r["date-range"]["end-datetime"].endswith("Z")
    assert r["report-id"].endswith("@mail.a.test")
