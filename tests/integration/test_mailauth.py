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
from dnszone import dns_server  # noqa: F401 (the fixture)
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


def dkim_verifies(message, idx, dns_server):
    """dkimpy's verdict on signature idx (it raises on some failures)."""
    import dkim
    try:
        return dkim.DKIM(message).verify(idx=idx, dnsfunc=local_dnsfunc(dns_server))
    except dkim.DKIMException:
        return False


def publish(dns_server, keygen_output):
    """Puts the TXT records printed by `wharf dkim keygen` into the zone."""
    n = 0
    for line in keygen_output.splitlines():
        m = re.match(r'^(\S+)\. IN TXT \((.*)\)', line)
        if m:
            txt = "".join(re.findall(r'"([^"]*)"', m.group(2)))
            dns_server.zone[(m.group(1).lower(), "TXT")] = [txt]
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


def start_signer(factory, dns_server, sink, extra=None):
    settings = {"myhostname": "mail.a.test", "mydomains": "a.test",
                "dns_resolver": dns_server.resolver, "mta_retry_min": "1s",
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


def test_keygen_prints_records_and_keeps_keys_private(wharf_factory, dns_server, sink):
    w = start_signer(wharf_factory, dns_server, sink)
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


def test_submitted_mail_is_signed_twice_and_dkimpy_verifies(wharf_factory, dns_server, sink):
    dkim = pytest.importorskip("dkim")
    w = start_signer(wharf_factory, dns_server, sink)
    assert publish(dns_server, w.wharf("dkim", "keygen", "a.test", "--selector", "s1").stdout.decode()) == 2
    submit(w, "alice@a.test", ["carol@peer.test"], MSG)
    got = wait_until(lambda: sink.messages or None, 30, what="the relayed message")[0]
    sigs = re.findall(rb"^DKIM-Signature:", got, re.M)
    assert len(sigs) == 2, got
    assert b"a=ed25519-sha256" in got and b"a=rsa-sha256" in got
    for idx in (0, 1):
        assert dkim_verifies(got, idx, dns_server), f"signature {idx} does not verify:\n{got!r}"
    # the body as received is the body as submitted: dot-stuffing undone, nothing lost
    assert got.endswith(b"\r\n\r\n.a line with a dot\r\n\r\n\r\n")
    # a change in transit breaks both signatures (the test can fail)
    tampered = got.replace(b"Hello Carol", b"Hello Carl")
    assert not dkim_verifies(tampered, 0, dns_server)
    assert not dkim_verifies(tampered, 1, dns_server)


def test_only_our_own_mail_is_signed(wharf_factory, dns_server, sink):
    # mail from a client outside mynetworks on port 25 is not ours to sign,
    # nor is a From domain without keys
    w = start_signer(wharf_factory, dns_server, sink, {"mynetworks": "192.0.2.0/24"})
    w.wharf("dkim", "keygen", "a.test", "--selector", "s1")
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=20) as c:
        # a local recipient (port 25 does not relay for strangers)
        c.sendmail("someone@elsewhere.test", ["alice@a.test"], MSG.replace(b"carol@peer.test", b"alice@a.test"))
    submit(w, "alice@a.test", ["carol@peer.test"], MSG.replace(b"alice@a.test>", b"alice@other.test>"))
    got = wait_until(lambda: sink.messages or None, 30, what="the relayed message")[0]
    assert b"DKIM-Signature" not in got
    assert b"alice@other.test" in got


def test_sendmail_from_mynetworks_is_signed(wharf_factory, dns_server, sink):
    dkim = pytest.importorskip("dkim")
    w = start_signer(wharf_factory, dns_server, sink)
    publish(dns_server, w.wharf("dkim", "keygen", "a.test", "--selector", "s1").stdout.decode())
    w.wharf("sendmail", "-i", "carol@peer.test", input=MSG)
    got = wait_until(lambda: sink.messages or None, 30, what="the relayed message")[0]
    assert dkim_verifies(got, 0, dns_server) and dkim_verifies(got, 1, dns_server)


# ------------------------------------------------------------ checks on inbound mail

def pyspf_dnslookup(server):
    """pyspf's DNSLookup over the test's DNS server (pyspf queries it itself)."""
    import dnslib
    import spf

    def lookup(name, qtype, tcpfallback=True, timeout=30):
        q = dnslib.DNSRecord.question(name.rstrip("."), qtype)
        a = dnslib.DNSRecord.parse(q.send("127.0.0.1", server.port, tcp=True, timeout=5))
        if a.header.rcode == dnslib.RCODE.SERVFAIL:
            raise spf.TempError("DNS SERVFAIL")
        out = []
        for rr in a.rr:
            t = dnslib.QTYPE[rr.rtype]
            if t != qtype:
                continue
            if t in ("A", "AAAA"):
                out.append(((name, t), str(rr.rdata)))
            elif t == "MX":
                out.append(((name, t), (rr.rdata.preference, str(rr.rdata.label).rstrip("."))))
            elif t == "PTR":
                out.append(((name, t), str(rr.rdata.label).rstrip(".")))
            elif t == "TXT":
                out.append(((name, t), list(rr.rdata.data)))
        return out
    return lookup


def start_receiver(factory, dns_server, extra=None):
    """b.test on port 25, checking mail from 127.0.0.1 as a stranger's."""
    settings = {"myhostname": "mail.b.test", "mydomains": "b.test", "dns_resolver": dns_server.resolver,
                "mynetworks": "192.0.2.0/24", "mailauth_checks": "yes"}
    settings.update(extra or {})
    w = factory("b", host="127.0.0.1", enable={"smtp"}, extra=settings)
    w.start()
    if not add_user(w, "bob@b.test", PW):
        pytest.skip("directory not built")
    return w


def inbox_count(server, user):
    import json
    r = server.wharf("mailbox", "stats", user, "--json", check=False)
    return json.loads(r.stdout)["messages"] if r.returncode == 0 else 0


def inbox(server, user):
    return [server.wharf("mailbox", "show", user, "INBOX", str(i + 1)).stdout
            for i in range(inbox_count(server, user))]


def authres(message):
    """The unfolded Authentication-Results fields of a message, in order."""
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return [l.split(":", 1)[1].strip() for l in unfolded.split("\r\n")
            if l.lower().startswith("authentication-results:")]


def deliver(server, sender, body, n_before):
    with smtplib.SMTP(server.host, server.ports["smtp"], timeout=30) as c:
        c.ehlo("mx.sender.test")
        code, _ = c.mail(sender)
        assert code == 250
        assert c.rcpt("bob@b.test")[0] == 250
        code, text = c.data(body)
    if code != 250:
        return code, text
    # one look at the count per poll, then the newest message only (reading the whole
    # INBOX on every poll made a run of deliveries quadratic)
    n = wait_until(lambda: (lambda k: k if k > n_before else None)(inbox_count(server, "bob@b.test")),
                   30, what="delivery")
    return code, server.wharf("mailbox", "show", "bob@b.test", "INBOX", str(n)).stdout


def keypair(tmp, kind):
    """A private key file and its DKIM record text, made with openssl."""
    import base64
    import subprocess
    key = tmp / f"{kind}.pem"
    if kind == "rsa":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", str(key)], check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", str(key)],
                       check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    if kind == "rsa":
        return key, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    # dkimpy reads an Ed25519 private key as the base64 of its 32-byte seed
    seed = subprocess.run(["openssl", "pkey", "-in", str(key), "-outform", "DER"],
                          check=True, capture_output=True).stdout[-32:]
    key.write_bytes(base64.b64encode(seed))
    return key, "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()


INBOUND = (b"From: Sam <sam@sender.test>\r\nTo: bob@b.test\r\nSubject: inbound\r\n"
           b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <in1@sender.test>\r\n\r\n"
           b"Hello  Bob\t\r\n\r\n")


def test_dkimpy_signed_mail_verifies_and_one_authentication_results(wharf_factory, dns_server, tmp_path):
    import subprocess
    pytest.importorskip("dkim")
    dns_server.zone[("sender.test", "TXT")] = ["v=spf1 ip4:127.0.0.1 -all"]
    dns_server.zone[("_dmarc.sender.test", "TXT")] = ["v=DMARC1; p=reject"]
    signed = INBOUND
    for kind, sel in (("rsa", "r1"), ("ed25519", "e1")):
        key, rec = keypair(tmp_path, kind)
        dns_server.zone[(f"{sel}._domainkey.sender.test", "TXT")] = [rec]
        p = subprocess.run(["/usr/bin/dkimsign", "--signalg", f"{kind}-sha256", "--bcanon", "simple",
                            sel, "sender.test", str(key)], input=signed, capture_output=True, check=True)
        signed = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # a forged result claiming our authserv-id, and one of someone else's
    forged = (b"Authentication-Results: mail.b.test; dkim=pass; spf=pass; dmarc=pass\r\n"
              b"Authentication-Results: other.example; spf=neutral\r\n") + signed
    w = start_receiver(wharf_factory, dns_server)
    code, got = deliver(w, "sam@sender.test", forged, 0)
    assert code == 250, got
    ar = authres(got)
    assert len(ar) == 2 and ar[1].startswith("other.example;"), ar
    mine = ar[0]
    assert mine.startswith("mail.b.test;")
    assert "dkim=pass header.d=sender.test header.s=e1 header.a=ed25519-sha256" in mine, mine
    assert "dkim=pass header.d=sender.test header.s=r1 header.a=rsa-sha256" in mine, mine
    assert "spf=pass smtp.mailfrom=sam@sender.test" in mine
    assert "dmarc=pass (p=reject dis=none) header.from=sender.test" in mine
    # the DNS went where it should: keys, SPF and DMARC were all asked for
    asked = {n for n, _ in dns_server.queries}
    assert {"e1._domainkey.sender.test", "r1._domainkey.sender.test", "sender.test",
            "_dmarc.sender.test"} <= asked
    # altered in transit: both fail, and DMARC (aligned SPF still passes) passes
    code, got = deliver(w, "sam@sender.test", signed.replace(b"Hello", b"Hullo"), 1)
    mine = authres(got)[0]
    assert mine.count("dkim=fail (body hash did not verify)") == 2, mine


def test_dmarc_reject_is_a_550_and_nothing_is_delivered(wharf_factory, dns_server):
    dns_server.zone[("sender.test", "TXT")] = ["v=spf1 ip4:192.0.2.1 -all"]
    dns_server.zone[("_dmarc.sender.test", "TXT")] = ["v=DMARC1; p=reject"]
    dns_server.zone[("quiet.test", "TXT")] = ["v=spf1 ip4:192.0.2.1 -all"]
    dns_server.zone[("_dmarc.quiet.test", "TXT")] = ["v=DMARC1; p=none"]
    w = start_receiver(wharf_factory, dns_server)
    code, text = deliver(w, "sam@sender.test", INBOUND, 0)
    assert code == 550 and b"5.7.1" in text, (code, text)
    assert re.search(r"reject: dmarc=fail \(p=reject\) header.from=sender.test from", w.log())
    # p=none: delivered, annotated
    code, got = deliver(w, "sam@quiet.test", INBOUND.replace(b"sender.test", b"quiet.test"), 0)
    assert code == 250
    assert "dmarc=fail (p=none dis=none) header.from=quiet.test" in authres(got)[0]
    assert "spf=fail" in authres(got)[0]
    # the DNS Tree Walk (RFC 9989): a public suffix operator's record (psd=y)
    # is the policy of a domain with none of its own (the Public Suffix List
    # way, dmarc_discovery=psl, finds no policy here: dmarc=none, 250)
    dns_server.zone[("_dmarc.test", "TXT")] = ["v=DMARC1; p=reject; psd=y"]
    code, text = deliver(w, "sam@psdorg.test", INBOUND.replace(b"sender.test", b"psdorg.test"), 1)
    assert code == 550 and b"5.7.1" in text, (code, text)
    assert re.search(r"reject: dmarc=fail \(p=reject\) header.from=psdorg.test from", w.log())
    # relaxed alignment through the walk: SPF for bounce.sender.test aligns
    # with From: news.sender.test, one organization one label below the suffix
    dns_server.zone[("bounce.sender.test", "TXT")] = ["v=spf1 ip4:127.0.0.1 -all"]
    code, got = deliver(w, "sam@bounce.sender.test", INBOUND.replace(b"sender.test", b"news.sender.test"), 1)
    assert code == 250, got
    mine = authres(got)[0]
    assert "spf=pass" in mine and "dmarc=pass (p=reject dis=none) header.from=news.sender.test" in mine, mine
    asked = {n for n, _ in dns_server.queries}
    assert {"_dmarc.news.sender.test", "_dmarc.bounce.sender.test", "_dmarc.test"} <= asked, asked
    # dmarc_action=annotate: even p=reject only annotates
    w.stop()
    w.settings["dmarc_action"] = "annotate"
    w.write_config()
    w.start()
    code, got = deliver(w, "sam@sender.test", INBOUND, 2)
    assert code == 250 and "dmarc=fail (p=reject dis=reject)" in authres(got)[0]


SPF_CASES = {
    # domain: record (RFC 7208 appendix A zone and section 4.6.4 limits)
    "pass.test": "v=spf1 ip4:127.0.0.0/8 -all",
    "fail.test": "v=spf1 ip4:192.0.2.0/24 -all",
    "soft.test": "v=spf1 ~all",
    "neutral.test": "v=spf1 ?all",
    "a.test": "v=spf1 a -all",
    "mx.test": "v=spf1 mx -all",
    "inc.test": "v=spf1 include:pass.test -all",
    "loop1.test": "v=spf1 include:loop2.test -all",
    "loop2.test": "v=spf1 include:loop1.test -all",
    "voids.test": "v=spf1 a:n1.test a:n2.test a:n3.test +all",
    "twovoids.test": "v=spf1 a:n1.test a:n2.test ip4:127.0.0.1 -all",
    "macro.test": "v=spf1 exists:%{ir}.%{l1r-}.lists.%{d} -all",
    "syntax.test": "v=spf1 ip4:127.0.0.1/33 -all",
    "redirect.test": "v=spf1 redirect=pass.test",
    "broken.test": None,  # SERVFAIL
    # 4.6.4: the 11th DNS-querying term is a permerror, even with a match after it
    "eleven.test": "v=spf1 " + " ".join(f"a:h{i}.eleven.test" for i in range(11))
                   + " ip4:127.0.0.1 -all",
    "ten.test": "v=spf1 " + " ".join(f"a:h{i}.eleven.test" for i in range(10))
                + " ip4:127.0.0.1 -all",
}


def test_spf_results_agree_with_pyspf(wharf_factory, dns_server):
    spf = pytest.importorskip("spf")
    for d, rec in SPF_CASES.items():
        if rec is not None:
            dns_server.zone[(d, "TXT")] = [rec]
    dns_server.zone[("a.test", "A")] = ["127.0.0.1"]
    dns_server.zone[("mx.test", "MX")] = [(10, "mail.mx.test")]
    dns_server.zone[("mail.mx.test", "A")] = ["127.0.0.9"]
    dns_server.zone[("1.0.0.127.sam.lists.macro.test", "A")] = ["127.0.0.2"]
    for i in range(11):  # addresses that exist but do not match (no void lookups)
        dns_server.zone[(f"h{i}.eleven.test", "A")] = ["192.0.2.1"]
    dns_server.servfail.add("broken.test")
    spf.DNSLookup = pyspf_dnslookup(dns_server)
    w = start_receiver(wharf_factory, dns_server)
    expected = {"pass.test": "pass", "fail.test": "fail", "soft.test": "softfail",
                "neutral.test": "neutral", "a.test": "pass", "mx.test": "fail",
                "inc.test": "pass", "loop1.test": "permerror", "voids.test": "permerror",
                "twovoids.test": "pass", "macro.test": "pass", "syntax.test": "permerror",
                "redirect.test": "pass", "broken.test": "temperror", "none.test": "none",
                "eleven.test": "permerror", "ten.test": "pass"}
    n = 0
    for d, want in expected.items():
        sender = f"sam-x@{d}"
        theirs = spf.check2(i="127.0.0.1", s=sender, h="mx.sender.test")[0]
        assert theirs == want, (d, theirs)
        code, got = deliver(w, sender, INBOUND.replace(b"sender.test", d.encode()), n)
        assert code == 250, (d, got)
        n += 1
        mine = authres(got)[0]
        assert f"spf={want} " in mine or f"spf={want};" in mine, (d, mine)


def test_wharf_to_wharf_arrives_with_dkim_spf_dmarc_pass(wharf_factory, dns_server):
    """The issue's "done when": a user of a.test writes through Wharf A, which
    signs and relays to Wharf B (b.test); B checks and delivers with
    dkim=pass spf=pass dmarc=pass."""
    b = wharf_factory("b", host="127.0.0.3", enable={"smtp"},
                      extra={"myhostname": "mail.b.test", "mydomains": "b.test",
                             "dns_resolver": dns_server.resolver, "mynetworks": "192.0.2.0/24",
                             "mailauth_checks": "yes"})
    a = wharf_factory("a", host="127.0.0.2", enable={"smtp", "submission"},
                      extra={"myhostname": "mail.a.test", "mydomains": "a.test",
                             "dns_resolver": dns_server.resolver, "mta_retry_min": "1s",
                             "transport_routes": f"b.test=[127.0.0.3]:{b.ports['smtp']} may"})
    b.start()
    a.start()
    if not add_user(a, "alice@a.test", PW) or not add_user(b, "bob@b.test", PW):
        pytest.skip("directory not built")
    assert publish(dns_server, a.wharf("dkim", "keygen", "a.test").stdout.decode()) == 2
    dns_server.zone[("a.test", "TXT")] = ["v=spf1 ip4:127.0.0.0/8 -all"]
    dns_server.zone[("_dmarc.a.test", "TXT")] = ["v=DMARC1; p=reject; adkim=s; aspf=s"]
    submit(a, "alice@a.test", ["bob@b.test"],
           b"From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: across\r\n\r\nhello b\r\n")
    got = wait_until(lambda: inbox(b, "bob@b.test") or None, 60, what="delivery on b")[0]
    ar = authres(got)
    assert len(ar) == 1, ar
    mine = ar[0]
    assert mine.startswith("mail.b.test;")
    assert len(re.findall(r"dkim=pass header\.d=a\.test ", mine)) == 2, mine
    assert "header.a=ed25519-sha256" in mine and "header.a=rsa-sha256" in mine
    assert "spf=pass smtp.mailfrom=alice@a.test" in mine, mine
    assert "dmarc=pass (p=reject dis=none) header.from=a.test" in mine, mine
    # the field sits on top, above B's Received
    head = got.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Authentication-Results: mail.b.test;") or \
        head.split(b"\r\n")[0].startswith(b"Return-Path") and \
        head.split(b"\r\n")[1].startswith(b"Authentication-Results: mail.b.test;"), head[:300]


def folder_counts(server, user):
    import json
    r = server.wharf("mailbox", "list", user, "--json")
    return {f["name"]: f["messages"] for f in json.loads(r.stdout)["folders"]}


def test_dmarc_quarantine_delivers_to_junk(wharf_factory, dns_server):
    dns_server.zone[("sender.test", "TXT")] = ["v=spf1 ip4:192.0.2.1 -all"]
    dns_server.zone[("_dmarc.sender.test", "TXT")] = ["v=DMARC1; p=quarantine"]
    w = start_receiver(wharf_factory, dns_server)
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
        c.ehlo("mx.sender.test")
        assert c.sendmail("sam@sender.test", ["bob@b.test"], INBOUND) == {}
    try:
        counts = wait_until(lambda: (lambda f: f if f.get("Junk") else None)(
            folder_counts(w, "bob@b.test")), 30, what="delivery to Junk")
    except AssertionError:
        raise AssertionError(f"{folder_counts(w, 'bob@b.test')}\n{w.log()}")
    assert counts.get("INBOX", 0) == 0, counts
    got = w.wharf("mailbox", "show", "bob@b.test", "Junk", "1").stdout
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=sender.test" in authres(got)[0]
    assert re.search(r": quarantine: dmarc=fail \(p=quarantine\) header.from=sender.test", w.log())


def test_opendkim_signed_mail(wharf_factory, dns_server, tmp_path):
    """OpenDKIM's library (opendkim-testmsg, Debian's opendkim-tools) signs with
    rsa-sha1 and relaxed/simple, and nothing else: Wharf parses its signature
    and, as RFC 8301 requires, never counts an RSA-SHA1 signature as a pass,
    so it cannot rescue a message that fails DMARC."""
    import shutil
    import subprocess
    tool = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
    if not os.path.exists(tool):
        pytest.skip("opendkim-tools not installed")
    key, rec = keypair(tmp_path, "rsa")
    dns_server.zone[("od1._domainkey.sender.test", "TXT")] = [rec]
    dns_server.zone[("sender.test", "TXT")] = ["v=spf1 ip4:192.0.2.1 -all"]
    dns_server.zone[("_dmarc.sender.test", "TXT")] = ["v=DMARC1; p=reject"]
    dns_server.zone[("ok.test", "TXT")] = ["v=spf1 ip4:127.0.0.1 -all"]
    dns_server.zone[("od1._domainkey.ok.test", "TXT")] = [rec]
    w = start_receiver(wharf_factory, dns_server)
    for domain in ("sender.test", "ok.test"):
        body = INBOUND.replace(b"sender.test", domain.encode())
        p = subprocess.run([tool, "-C", "-d", domain, "-s", "od1", "-k", str(key)],
                           input=body, capture_output=True, check=True)
        signed = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha1; c=relaxed/simple; d=" +
                                 domain.encode()), signed[:200]
        code, got = deliver(w, f"sam@{domain}", signed, 0)
        if domain == "sender.test":  # SPF fails and the SHA-1 signature does not count
            assert code == 550 and b"5.7.1" in got, (code, got)
        else:
            mine = authres(got)[0]
            assert "dkim=neutral (unsupported algorithm)" in mine, mine
            assert "spf=pass" in mine and "dmarc=none" in mine, mine


def test_dns_that_never_answers_delays_by_the_timeout_only(wharf_factory, dns_server):
    """A DNS server that drops the questions: after mailauth_dns_timeout the
    missing answers count as temporary errors and the message is accepted
    (never refused for a DNS problem)."""
    import time
    dns_server.drop.update({"slow.test", "_dmarc.slow.test"})
    w = start_receiver(wharf_factory, dns_server, {"mailauth_dns_timeout": "2s"})
    t0 = time.monotonic()
    code, got = deliver(w, "sam@slow.test", INBOUND.replace(b"sender.test", b"slow.test"), 0)
    assert code == 250, got
    assert time.monotonic() - t0 < 30
    mine = authres(got)[0]
    assert "spf=temperror" in mine and "dmarc=temperror" in mine, mine
    assert "did not come in time" in w.log()


def test_arc_chain_from_dkimpy_verifies(wharf_factory, dns_server, tmp_path):
    """A forwarder's ARC set made by dkimpy (arcsign) verifies: arc=pass;
    the message changed after sealing fails."""
    import subprocess
    pytest.importorskip("dkim")
    key, rec = keypair(tmp_path, "rsa")
    dns_server.zone[("arc1._domainkey.fwd.test", "TXT")] = [rec]
    dns_server.zone[("sender.test", "TXT")] = ["v=spf1 ip4:127.0.0.1 -all"]
    msg = b"Authentication-Results: mx.fwd.test; spf=pass smtp.mailfrom=sam@sender.test\r\n" + INBOUND
    p = subprocess.run(["/usr/bin/arcsign", "arc1", "fwd.test", str(key), "mx.fwd.test"],
                       input=msg, capture_output=True, check=True)
    sealed = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert sealed.count(b"ARC-Seal:") == 1, sealed[:300]
    w = start_receiver(wharf_factory, dns_server)
    code, got = deliver(w, "sam@sender.test", sealed, 0)
    assert code == 250, got
    assert "arc=pass (i=1)" in authres(got)[0], authres(got)
    code, got = deliver(w, "sam@sender.test", sealed.replace(b"Hello", b"Hullo"), 1)
    assert "arc=fail (ARC-Message-Signature did not verify)" in authres(got)[0], authres(got)
