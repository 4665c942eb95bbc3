"""DNS block and allow lists at connect (issue 18; dnsbl_zones, dnswl_zones):
the lists are zones of tests/integration/dnszone.py's local DNS server, and
the test client (127.0.0.1) is a stranger because mynetworks is moved away.
A listed client gets 554 5.7.1 instead of the greeting and 503 to every
command but QUIT (RFC 5321 3.1); allow lists win; the lists' own error codes,
a list that never answers, submission and mynetworks clients never block.
"""
import smtplib

import pytest
from dnszone import dns_server  # noqa: F401 (the fixture)
from smtp_helpers import add_user

ME = "1.0.0.127"  # 127.0.0.1 reversed


def start(factory, dns_server, extra):
    settings = {"myhostname": "mail.b.test", "mydomains": "b.test",
                "dns_resolver": dns_server.resolver, "mynetworks": "192.0.2.0/24",
                "mailauth_checks": "no"}
    settings.update(extra)
    w = factory("b", host="127.0.0.1", enable={"smtp", "submission"}, extra=settings)
    w.start()
    return w


def greet(w, port="smtp"):
    c = smtplib.SMTP()
    code, text = c.connect(w.host, w.ports[port])
    return c, code, text


def test_listed_client_gets_554_then_503_until_quit(wharf_factory, dns_server):
    dns_server.zone[(f"{ME}.bl.test", "A")] = ["127.0.0.2"]
    w = start(wharf_factory, dns_server, {"dnsbl_zones": "bl.test"})
    c, code, text = greet(w)
    assert code == 554 and b"5.7.1" in text and b"blocked using bl.test" in text, (code, text)
    for cmd in ("EHLO client.example", "MAIL FROM:<a@sender.test>", "NOOP"):
        code, text = c.docmd(cmd)
        assert code == 503 and b"5.5.1" in text, (cmd, code, text)
    assert c.docmd("QUIT")[0] == 221
    c.close()
    assert "client blocked using bl.test" in w.log()
    # the submission port is for the server's own users: never looked up
    c, code, _ = greet(w, "submission")
    assert code == 220
    c.quit()


def test_allow_list_wins_and_error_codes_do_not_block(wharf_factory, dns_server):
    dns_server.zone[(f"{ME}.bl.test", "A")] = ["127.0.0.2"]
    dns_server.zone[(f"{ME}.wl.test", "A")] = ["127.0.10.3"]
    dns_server.zone[(f"{ME}.err.test", "A")] = ["127.255.255.254"]  # "you may not query us"
    w = start(wharf_factory, dns_server, {"dnsbl_zones": "bl.test err.test", "dnswl_zones": "wl.test"})
    if not add_user(w, "bob@b.test", "pw-secret"):
        pytest.skip("directory not built")
    c, code, text = greet(w)
    assert code == 220, (code, text)
    c.ehlo("client.example")
    assert c.sendmail("a@sender.test", ["bob@b.test"], b"Subject: hi\r\n\r\nhi\r\n") == {}
    c.quit()
    w2 = wharf_factory("b2", host="127.0.0.1", enable={"smtp"},
                       extra={"myhostname": "mail.b.test", "dns_resolver": dns_server.resolver,
                              "mynetworks": "192.0.2.0/24", "mailauth_checks": "no",
                              "dnsbl_zones": "err.test"})
    w2.start()
    c, code, text = greet(w2)
    assert code == 220, (code, text)
    c.quit()


def test_zone_with_an_address_counts_that_answer_only(wharf_factory, dns_server):
    dns_server.zone[(f"{ME}.multi.test", "A")] = ["127.0.0.2"]
    dns_server.zone[(f"{ME}.other.test", "A")] = ["127.0.0.2", "127.0.0.4"]
    w = start(wharf_factory, dns_server, {"dnsbl_zones": "multi.test=127.0.0.4"})
    c, code, _ = greet(w)
    assert code == 220
    c.quit()
    w2 = wharf_factory("b2", host="127.0.0.1", enable={"smtp"},
                       extra={"myhostname": "mail.b.test", "dns_resolver": dns_server.resolver,
                              "mynetworks": "192.0.2.0/24", "mailauth_checks": "no",
                              "dnsbl_zones": "multi.test=127.0.0.4 other.test=127.0.0.4"})
    w2.start()
    c, code, text = greet(w2)
    assert code == 554 and b"using other.test" in text, (code, text)
    c.close()


def test_a_list_that_never_answers_does_not_block(wharf_factory, dns_server):
    dns_server.drop.add(f"{ME}.slow.test")
    w = start(wharf_factory, dns_server, {"dnsbl_zones": "slow.test", "dnsbl_timeout": "1s"})
    c, code, text = greet(w)
    assert code == 220, (code, text)
    c.quit()
    assert "did not all answer in time" in w.log()


def test_mynetworks_clients_are_not_looked_up(wharf_factory, dns_server):
    dns_server.zone[(f"{ME}.bl.test", "A")] = ["127.0.0.2"]
    w = start(wharf_factory, dns_server, {"dnsbl_zones": "bl.test", "mynetworks": "127.0.0.0/8"})
    c, code, _ = greet(w)
    assert code == 220
    c.quit()
    assert (f"{ME}.bl.test", "A") not in dns_server.queries
