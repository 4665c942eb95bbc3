"""/metrics on 443 (doc/http.md): the counters move with real events.

A message sent with smtplib raises received and delivered (and the latency
histogram's count); a failed login raises the auth failures; the whole text
passes a strict parser of the Prometheus text exposition format 0.0.4,
written here (Debian's prometheus package would bring promtool, at the size
of a whole Prometheus server).
"""
import base64
import http.client
import re
import smtplib

import pytest

from conftest import tls_context, wait_until

USER = "alice@example.test"
PASSWORD = "alice pw 1"

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')
VALUE = re.compile(r"-?(\d+(\.\d+)?([eE][-+]?\d+)?|\+Inf|-Inf|NaN)\Z")


def parse_exposition(text):
    """Strict: {(name, frozenset(labels)): value}; raises AssertionError on any fault."""
    assert text.endswith("\n"), "the last line must end with a newline"
    types, helps, samples = {}, set(), {}
    current = None
    for ln in text[:-1].split("\n"):
        assert ln and ln == ln.strip(), f"empty or padded line: {ln!r}"
        if ln.startswith("#"):
            parts = ln.split(" ", 3)
            assert parts[0] == "#" and parts[1] in ("HELP", "TYPE"), ln
            assert NAME.match(parts[2]), ln
            if parts[1] == "TYPE":
                assert parts[2] not in types, f"second TYPE for {parts[2]}"
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), ln
                types[parts[2]] = parts[3]
                current = parts[2]
            else:
                assert parts[2] not in helps, f"second HELP for {parts[2]}"
                assert len(parts) == 4 and parts[3], ln
                helps.add(parts[2])
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)\Z", ln)
        assert m, f"not a sample line: {ln!r}"
        name, labels, value = m.group(1), m.group(2), m.group(3)
        assert VALUE.match(value), ln
        pairs = []
        if labels:
            body = labels[1:-1]
            pos = 0
            while pos < len(body):
                lm = LABEL.match(body, pos)
                assert lm, f"bad labels: {ln!r}"
                pairs.append((lm.group(1), lm.group(2)))
                pos = lm.end()
                if pos < len(body):
                    assert body[pos] == ",", f"bad labels: {ln!r}"
                    pos += 1
            assert len({k for k, _ in pairs}) == len(pairs), f"repeated label: {ln!r}"
        family = name
        if current and types.get(current) == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), ln
            family = current
        assert family == current, f"sample {name} outside its family ({current})"
        if types[family] == "counter":
            assert float(value) >= 0, ln
        key = (name, frozenset(pairs))
        assert key not in samples, f"duplicate sample: {ln!r}"
        samples[key] = float(value)
    for fam, t in types.items():
        if t != "histogram":
            continue
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                          if k[0] == fam + "_bucket"))
        assert buckets and buckets[-1][0] == float("inf"), f"{fam}: no +Inf bucket"
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{fam}: buckets not cumulative"
        assert samples[(fam + "_count", frozenset())] == counts[-1], f"{fam}: count != +Inf"
    return samples


def sample(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def scrape(server):
    c = http.client.HTTPSConnection(server.host, server.ports["https"], timeout=20,
                                    context=tls_context())
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200, body
    assert r.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(body)


@pytest.fixture
def srv(wharf_factory):
    server = wharf_factory(enable={"smtp", "https"}, extra={"http_auth_failure_delay": "0"})
    server.start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return server


def test_parser_is_strict():
    good = ("# HELP a_total x\n# TYPE a_total counter\na_total 1\n"
            "# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 3\nh_count 2\n")
    parse_exposition(good)
    for bad in (good.replace("a_total 1", "a_total one"),         # not a number
                good.replace("a_total 1", "a_total{x=1} 1"),       # unquoted label
                good.replace("a_total 1", "b_total 1"),            # outside its family
                good.replace("h_count 2", "h_count 3"),            # count != +Inf bucket
                good.replace('le="1"} 1', 'le="1"} 5'),            # not cumulative
                good + "a_total 2\n",                              # sample after another family
                good.rstrip("\n"),                                 # no final newline
                good.replace("# TYPE h histogram", "# TYPE h histo")):
        with pytest.raises(AssertionError):
            parse_exposition(bad)


def test_smtp_message_raises_received_and_delivered(srv):
    before = scrape(srv)
    received = sample(before, "wharf_messages_received_total")
    delivered = sample(before, "wharf_deliveries_total", result="delivered")
    latency = sample(before, "wharf_delivery_latency_seconds_count")
    stored, stored_bytes = sample(before, "wharf_store_messages"), sample(before, "wharf_store_bytes")
    assert sample(before, "wharf_queue_oldest_age_seconds") == 0
    assert sample(before, "wharf_routing_master") == 0  # no organization: no routing figures
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
        s.sendmail("someone@elsewhere.test", [USER],
                   b"From: someone@elsewhere.test\r\nSubject: count me\r\n\r\nhello\r\n")
    after = wait_until(lambda: (lambda m: m if sample(m, "wharf_deliveries_total",
                                                       result="delivered") > delivered else None)
                       (scrape(srv)), what="the delivery to be counted")
    assert sample(after, "wharf_messages_received_total") == received + 1
    assert sample(after, "wharf_deliveries_total", result="delivered") == delivered + 1
    assert sample(after, "wharf_deliveries_total", result="bounced") == 0
    assert sample(after, "wharf_delivery_latency_seconds_count") == latency + 1
    # the store's own counters: one message more, at least its bytes more
    assert sample(after, "wharf_store_messages") == stored + 1
    assert sample(after, "wharf_store_bytes") >= stored_bytes + 60
    assert sample(after, "wharf_store_accounts") >= 1
    # A recipient that does not exist is refused at RCPT: nothing is received for it.
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("someone@elsewhere.test", ["nobody@example.test"], b"Subject: x\r\n\r\nx\r\n")
    assert sample(scrape(srv), "wharf_messages_received_total") == received + 1


def test_failed_login_raises_auth_failures(srv):
    before = sample(scrape(srv), "wharf_auth_logins_total", result="failed")
    c = http.client.HTTPSConnection("127.0.0.1", srv.ports["https"], timeout=20,
                                    context=tls_context())
    bad = base64.b64encode(f"{USER}:wrong".encode()).decode()
    c.request("GET", "/admin/status", headers={"Authorization": "Basic " + bad})
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 401
    assert sample(scrape(srv), "wharf_auth_logins_total", result="failed") == before + 1
