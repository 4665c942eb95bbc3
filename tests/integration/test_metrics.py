"""/metrics on 443 (doc/http.md): the counters move with real events.

A message sent with smtplib raises received and delivered (and the latency
histogram's count); a failed login raises the auth failures; the whole text
passes a strict parser of the Prometheus text exposition format 0.0.4
(prometheus.py).
"""
import base64
import http.client
import smtplib

import pytest

from conftest import tls_context, wait_until
from prometheus import parse_exposition, sample, scrape

USER = "alice@example.test"
PASSWORD = "alice pw 1"


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
