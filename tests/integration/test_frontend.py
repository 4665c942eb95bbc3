"""A front-end (role = frontend) on 127.0.0.2 and two back-ends on .3 and .4
(doc/frontend.md).

The front-end holds no mailbox: it checks the password with its own auth
process, reads the account's home server from its directory, hands the
session over to that back-end over TLS (a certificate for the back-ends' IP
addresses, checked against frontend_tls_ca_file) and splices bytes. Clients
are Python's imaplib, poplib, smtplib and http.client, and curl; the
wrong-hand-over tests speak the hand-over line (or the Wharf-Frontend field)
by hand. Every wait is a blocking read or a poll with a
deadline, never a sleep.
"""
import base64
import hashlib
import http.client
import imaplib
import json
import os
import poplib
import signal
import smtplib
import socket
import subprocess
import threading

import pytest

from conftest import free_port, self_signed, tls_context, wait_until
from dnszone import dns_server  # noqa: F401 (the fixture)
from sse import sse_event

SECRET = "f" * 16 + "0123456789abcdef0123456789abcdef"
HOMES = {"alice@example.test": "be1", "bob@example.test": "be2"}
PASSWORD = "correct horse battery"
HOSTS = {"fe": "127.0.0.2", "be1": "127.0.0.3", "be2": "127.0.0.4"}
# bob's home server is given to the front-end by host name (resolved through
# the tests' DNS server), alice's by address
BE2_NAME = "be2.example.test"
# Quiet TLS 1.3 connections park soon (net_tls_park.h), on every side: the
# client's at the front-end, the front-end's to its back-end, and that one at
# the back-end.
PARK_IDLE = "300ms"
# be1 parks after the front-end's end of each of its hops, be2 before it: so
# on every hop one end has read the other's KeyUpdate before its own turn
# comes (an end in that state once never parked: SSL_READING was taken for
# a pending byte), be1 as the TLS server, the front-end as the client.
PARK_IDLE_BE = {"be1": "1s", "be2": "100ms"}


def parked(server, component, key="tls_parked"):
    return server.worker_count(component, key)


def common_port():
    """A port free on both back-end addresses (the front-end reaches every
    back-end on one port, as in production where all use 993/995)."""
    while True:
        p = free_port(HOSTS["be1"])
        try:
            with socket.socket() as s:
                s.bind((HOSTS["be2"], p))
            return p
        except OSError:
            continue


def backend_cert(tmp_path):
    """A certificate for both back-ends' IP addresses, which the front-end
    trusts as its frontend_tls_ca_file (the key readable by the workers)."""
    cert, key = self_signed(tmp_path / "be.key", tmp_path / "be.pem", "backends",
                            f"IP:127.0.0.3,IP:127.0.0.4,DNS:{BE2_NAME}")
    cert.chmod(0o644)
    key.chmod(0o644)
    tmp_path.chmod(0o755)
    return cert, key


def backend_accounts(w):
    """A back-end's domain and its own users, and on be1 bob homed on be2 with
    an alias for him (the back-end's own password is never used)."""
    w.wharf("domain", "add", "example.test")
    name = next(n for n, h in HOSTS.items() if h == w.host)
    for user, home in HOMES.items():
        if home == name:
            w.wharf("user", "add", user, "--password-stdin", input=b"unused-on-backend\n")
    if name == "be1":
        w.wharf("user", "add", "bob@example.test", "--password-stdin", input=b"unused\n")
        w.wharf("user", "home", "bob@example.test", HOSTS["be2"])
        w.wharf("alias", "add", "forbob@example.test", "bob@example.test")


def frontend_accounts(fe):
    """The front-end's users with their home servers, and an alias across both."""
    fe.wharf("domain", "add", "example.test")
    for user, home in HOMES.items():
        fe.wharf("user", "add", user, "--password-stdin", input=PASSWORD.encode() + b"\n")
        fe.wharf("user", "home", user, BE2_NAME if home == "be2" else HOSTS[home])
    # carol's home server is a name that does not resolve
    fe.wharf("user", "add", "carol@example.test", "--password-stdin",
             input=PASSWORD.encode() + b"\n")
    fe.wharf("user", "home", "carol@example.test", "nowhere.example.test")
    fe.wharf("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")


@pytest.fixture
def layout(wharf_factory, tmp_path, dns_server, data_templates):
    """Three fresh servers for each test (some kill a back-end or reload the
    front-end); their accounts are the wharf calls above, made once per test
    process and copied (conftest.DataTemplates)."""
    cert, key = backend_cert(tmp_path)
    imaps, pop3s, smtps, smtp, https = (common_port(), common_port(), common_port(),
                                        common_port(), common_port())
    dns_server.zone[(BE2_NAME, "A")] = [HOSTS["be2"]]
    # every server checks SPF/DKIM/DMARC of mail from other servers, and trusts no
    # loopback client for it (as mynetworks would): the front-end relays from
    # frontend_source_address, the one the back-ends' frontend_networks name
    MAILAUTH = {"mailauth_checks": "yes", "dns_resolver": dns_server.resolver,
                "mynetworks": "192.0.2.0/24"}
    servers = {}
    for name in ("be1", "be2"):
        h = HOSTS[name]
        w = wharf_factory(name, host=h, enable=["smtp", "imap", "pop3", "https"], extra={
            "imaps_listen": f"{h}:{imaps}", "pop3s_listen": f"{h}:{pop3s}",
            "https_listen": f"{h}:{https}",
            "smtps_listen": f"{h}:{smtps}", "smtp_listen": f"{h}:{smtp}",
            "tls_cert_file": str(cert), "tls_key_file": str(key), "frontend_smtp_port": str(smtp),
            "frontend_secret": SECRET, "frontend_networks": "127.0.0.2/32",
            "tls_park_idle": PARK_IDLE_BE[name], **MAILAUTH})
        w.ports.update(imaps=imaps, pop3s=pop3s, smtps=smtps, smtp=smtp, https=https)
        servers[name] = data_templates.prepare(w, name, backend_accounts).start()
    fe = wharf_factory("fe", host=HOSTS["fe"], enable=["smtp", "imap", "imaps", "pop3", "pop3s",
                                                      "submission", "smtps", "https"], extra={
        "role": "frontend", "frontend_secret": SECRET, "frontend_imap_port": str(imaps),
        "frontend_pop3_port": str(pop3s), "frontend_submission_port": str(smtps),
        "frontend_smtp_port": str(smtp), "frontend_https_port": str(https),
        "http_auth_failure_delay": "0",
        "frontend_tls_ca_file": str(cert), "dns_resolver": dns_server.resolver,
        "frontend_connect_timeout": "5s", "frontend_source_address": HOSTS["fe"],
        "tls_park_idle": PARK_IDLE, **MAILAUTH})
    servers["fe"] = data_templates.prepare(fe, "fe", frontend_accounts).start()
    return servers


def mail(server, rcpt, subject):
    with smtplib.SMTP(server.host, server.ports["smtp"], timeout=20) as s:
        s.sendmail("someone@example.net", [rcpt],
                   f"From: someone@example.net\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhi\r\n")


def imap_login(fe, user, implicit=True):
    if implicit:
        m = imaplib.IMAP4_SSL(fe.host, fe.ports["imaps"], ssl_context=tls_context(), timeout=20)
    else:
        m = imaplib.IMAP4(fe.host, fe.ports["imap"], timeout=20)
        m.starttls(tls_context())
    m.login(user, PASSWORD)
    return m


def subjects(m):
    typ, _ = m.select("INBOX")
    assert typ == "OK"
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return sorted(d[1].decode().strip() for d in data if isinstance(d, tuple))


def test_imap_reaches_home_and_idle_wakes(layout):
    fe, be1, be2 = layout["fe"], layout["be1"], layout["be2"]
    mail(be1, "alice@example.test", "for alice")
    # the front-end's MX takes mail for every user and relays it to the home server
    mail(fe, "bob@example.test", "for bob")
    a = imap_login(fe, "alice@example.test")
    wait_until(lambda: subjects(a) == ["Subject: for alice"], what="alice's mail on be1")
    b = imap_login(fe, "bob@example.test", implicit=False)
    wait_until(lambda: subjects(b) == ["Subject: for bob"], what="bob's mail on be2")
    # IDLE through the proxy, woken by a delivery on alice's back-end (relayed
    # there by the front-end's MX)
    tag = a._new_tag().decode()
    a.send(f"{tag} IDLE\r\n".encode())
    assert a.readline().startswith(b"+")
    # the idle session parks at the front-end and at both ends of its hop to
    # the back-end: the two ends go quiet together, and the one that parks
    # second reads the other's KeyUpdate first (it once stayed unparked then)
    wait_until(lambda: parked(fe, "imap") >= 1 and parked(fe, "imap", "proxy_tls_parked") >= 1
               and parked(be1, "imap") >= 1,
               what="IDLE parked on every hop, both ends")
    # and asleep at the front-end, both sides: no bufferevent, a read event
    # alone on each socket (the delivery below wakes both)
    wait_until(lambda: parked(fe, "imap", "tls_asleep") >= 1
               and parked(fe, "imap", "proxy_tls_asleep") >= 1,
               what="the parked IDLE session asleep at the front-end, both sides")
    mail(fe, "alice@example.test", "second")
    line = a.readline()
    assert line.startswith(b"* ") and b"EXISTS" in line, line
    a.send(b"DONE\r\n")
    while not (line := a.readline()).startswith(tag.encode()):
        pass
    assert b"OK" in line
    a.logout()
    b.logout()
    # AUTHENTICATE PLAIN with a command pipelined behind it: it reaches the back-end
    c = imaplib.IMAP4_SSL(fe.host, fe.ports["imaps"], ssl_context=tls_context(), timeout=20)
    c.send(b"A1 AUTHENTICATE PLAIN AGJvYkBleGFtcGxlLnRlc3QAY29ycmVjdCBob3JzZSBiYXR0ZXJ5\r\n"
           b"A2 STATUS INBOX (MESSAGES)\r\n")
    assert c.readline().startswith(b"A1 OK [CAPABILITY ")
    assert c.readline().startswith(b"* STATUS INBOX (MESSAGES 1)")
    assert c.readline().startswith(b"A2 OK")
    c.send(b"A3 LOGOUT\r\n")
    assert c.readline().startswith(b"* BYE")
    c.shutdown()
    # a LOGOUT is a clean end on the back-end (TLS close_notify): no "went away"
    assert "went away" not in fe.log()
    # the back-ends log the real client's address and the front-end it came through
    assert "via front-end 127.0.0.2" in be1.log()
    assert "rip=127.0.0.1" in be1.log()
    # wharf ports shows the outbound rows of the front-end
    rows = {r["service"]: r for r in fe.port_map()["ports"]}
    assert rows["imap-proxy"]["direction"] == "outbound"
    assert str(layout["be1"].ports["imaps"]) in str(rows["imap-proxy"]["port"])


def test_alias_to_accounts_homed_elsewhere(layout):
    """An alias at the front-end whose accounts live on two back-ends, and an
    alias at be1 for bob (homed on be2): each account gets the mail at its own
    home server, none is stored where it arrived."""
    fe, be1 = layout["fe"], layout["be1"]
    mail(fe, "team@example.test", "for the team")
    mail(be1, "forbob@example.test", "alias on be1")
    a = imap_login(fe, "alice@example.test")
    wait_until(lambda: subjects(a) == ["Subject: for the team"], what="the team mail on be1")
    b = imap_login(fe, "bob@example.test")
    wait_until(lambda: subjects(b) == ["Subject: alias on be1", "Subject: for the team"],
               what="both aliases' mail on be2")
    a.logout()
    b.logout()
    assert "to=<team@example.test>, status=expanded" in fe.log()
    assert "to=<forbob@example.test>, status=expanded" in be1.log()
    # `wharf mailbox` where the mailbox is not says where it is, and makes no empty one
    r = fe.wharf("mailbox", "stats", "alice@example.test", check=False)
    assert r.returncode == 69 and b"on its home server 127.0.0.3, not on this one" in r.stderr
    r = be1.wharf("mailbox", "list", "bob@example.test", check=False)
    assert r.returncode == 69 and b"is on its home server" in r.stderr
    assert b"messages:  1" in be1.wharf("mailbox", "stats", "alice@example.test").stdout
    assert fe.wharf("mailbox", "blobs").stdout.startswith(b"blobs: 0 ")


def test_mail_authenticated_at_the_frontend_only(layout, dns_server):
    """SPF and DMARC are the front-end's to check, with the sending server's address:
    the back-end, which sees the front-end's, does not check its relayed mail again
    (strict.test's SPF names the client, not the front-end; its DMARC rejects), but
    still checks a server that reaches it directly."""
    fe, be1, be2 = layout["fe"], layout["be1"], layout["be2"]
    for dom in ("strict.test", "other.test"):
        dns_server.zone[(dom, "TXT")] = ["v=spf1 ip4:127.0.0.1 -all" if dom == "strict.test"
                                         else "v=spf1 ip4:192.0.2.1 -all"]
        dns_server.zone[(f"_dmarc.{dom}", "TXT")] = ["v=DMARC1; p=reject"]
    with smtplib.SMTP(fe.host, fe.ports["smtp"], timeout=20) as s:
        s.sendmail("news@strict.test", ["bob@example.test"],
                   "From: news@strict.test\r\nTo: bob@example.test\r\nSubject: strict\r\n\r\nhi\r\n")
    b = imap_login(fe, "bob@example.test")
    wait_until(lambda: subjects(b) == ["Subject: strict"], what="the relayed mail on be2")
    typ, data = b.fetch("1", "(BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS RECEIVED)])")
    head = data[0][1].decode()
    # checked once, by the front-end, and relayed from its own address
    assert head.count("Authentication-Results:") == 1, head
    assert "spf=pass" in head and "dmarc=pass" in head, head
    assert f"[{HOSTS['fe']}]" in head, head
    b.logout()
    # straight to a back-end, a server outside the domain's SPF is refused
    with smtplib.SMTP(be1.host, be1.ports["smtp"], timeout=20) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("news@other.test", ["alice@example.test"],
                       "From: news@other.test\r\nTo: alice@example.test\r\nSubject: x\r\n\r\nhi\r\n")
    assert e.value.smtp_code == 550, e.value


def test_pop3_through_frontend(layout):
    fe, be2 = layout["fe"], layout["be2"]
    mail(be2, "bob@example.test", "pop for bob")
    p = poplib.POP3_SSL(fe.host, fe.ports["pop3s"], context=tls_context(), timeout=20)
    p.user("bob@example.test")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    count, _ = p.stat()
    assert count == 1
    assert b"Subject: pop for bob" in b"\r\n".join(p.retr(1)[1])
    p.quit()
    q = poplib.POP3(fe.host, fe.ports["pop3"], timeout=20)
    q.stls(tls_context())
    q.user("alice@example.test")
    q.pass_(PASSWORD)
    assert q.stat()[0] == 0  # alice's maildrop on be1 is empty: not bob's
    q.quit()
    bad = poplib.POP3_SSL(fe.host, fe.ports["pop3s"], context=tls_context(), timeout=20)
    bad.user("bob@example.test")
    with pytest.raises(poplib.error_proto, match="AUTH"):
        bad.pass_("wrong password")
    bad.quit()


def submit(fe, user, password=PASSWORD, implicit=False):
    if implicit:
        s = smtplib.SMTP_SSL(fe.host, fe.ports["smtps"], context=tls_context(), timeout=20)
    else:
        s = smtplib.SMTP(fe.host, fe.ports["submission"], timeout=20)
        s.starttls(context=tls_context())
    s.login(user, password)
    return s


def test_submission_through_frontend(layout):
    """Submission (587 STARTTLS, 465) signs in on the front-end and is handed
    over to the user's home server, which takes the message as the user's."""
    fe, be1, be2 = layout["fe"], layout["be1"], layout["be2"]
    with submit(fe, "alice@example.test") as s:
        s.sendmail("alice@example.test", ["alice@example.test"],
                   "From: alice@example.test\r\nSubject: sent via fe\r\n\r\nhi\r\n")
        # a second transaction on the same spliced session
        s.sendmail("alice@example.test", ["alice@example.test"],
                   "From: alice@example.test\r\nSubject: again via fe\r\n\r\nhi\r\n")
    with submit(fe, "bob@example.test", implicit=True) as s:
        s.sendmail("bob@example.test", ["bob@example.test"],
                   "From: bob@example.test\r\nSubject: bob via fe\r\n\r\nhi\r\n")
        # the home server's sender check: bob may not send as alice
        with pytest.raises(smtplib.SMTPSenderRefused):
            s.sendmail("alice@example.test", ["bob@example.test"], "Subject: x\r\n\r\nx\r\n")
    a = imap_login(fe, "alice@example.test")
    wait_until(lambda: subjects(a) == ["Subject: again via fe", "Subject: sent via fe"],
               what="alice's submissions in her mailbox on be1")
    a.logout()
    b = imap_login(fe, "bob@example.test")  # be2 by host name
    wait_until(lambda: subjects(b) == ["Subject: bob via fe"], what="bob's submission on be2")
    b.logout()
    assert "sasl_method=XWHARFPROXY, sasl_username=alice@example.test" in be1.log()
    assert "sasl_method=XWHARFPROXY, sasl_username=bob@example.test" in be2.log()
    # the hand-over counts as the session's sign-in, not as a failed unknown command
    wait_until(lambda: "via front-end 127.0.0.2 ehlo=1 auth=1 mail=2 rcpt=2" in be1.log(),
               what="the back-end's disconnect line")
    assert "unknown=0/1" not in be1.log() + be2.log()
    assert f"spliced to {BE2_NAME}:" in fe.log()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submit(fe, "alice@example.test", "wrong password")
    rows = {r["service"]: r for r in fe.port_map()["ports"]}
    assert rows["submission-proxy"]["direction"] == "outbound"


def test_backend_killed_then_back(layout):
    fe, be1 = layout["fe"], layout["be1"]
    a = imap_login(fe, "alice@example.test")
    b = imap_login(fe, "bob@example.test")
    a.select("INBOX")
    sa = submit(fe, "alice@example.test")
    sb = submit(fe, "bob@example.test")
    be1.kill_all()
    # alice's submission session: 421 from the front-end, or the end of the stream
    try:
        code = sa.noop()[0]
    except smtplib.SMTPServerDisconnected:
        code = 421
    assert code == 421
    assert sb.noop()[0] == 250  # bob's, on be2, goes on
    sb.quit()
    # alice's session ends cleanly (BYE [UNAVAILABLE] or the end of the stream)
    with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
        a.noop()
    wait_until(lambda: "back-end 127.0.0.3" in fe.log() and "went away" in fe.log(),
               what="the front-end to see be1 go")
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        imap_login(fe, "alice@example.test")
    p = poplib.POP3_SSL(fe.host, fe.ports["pop3s"], context=tls_context(), timeout=20)
    p.user("alice@example.test")
    with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
        p.pass_(PASSWORD)
    p.quit()
    with pytest.raises(smtplib.SMTPAuthenticationError, match="not available"):
        submit(fe, "alice@example.test")
    # the log says why (the socket's error, not an empty TLS one)
    assert f"home server 127.0.0.3:{be1.ports['imaps']}: Connection refused" in fe.log()
    assert "TLS: (null)" not in fe.log()
    # bob on be2 is not affected
    assert b.noop()[0] == "OK"
    assert b.select("INBOX")[0] == "OK"
    be1.start()
    a2 = wait_until(lambda: imap_login(fe, "alice@example.test"), what="alice back after restart")
    assert a2.select("INBOX")[0] == "OK"
    a2.logout()
    b.logout()
    with submit(fe, "alice@example.test") as s:
        assert s.noop()[0] == 250


# ---- JMAP (HTTP) through the front-end ---------------------------------------

def basic(user, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Web:
    """One keep-alive HTTPS connection (http.client) to a server."""

    def __init__(self, server, source=None):
        self.server = server
        self.conn = http.client.HTTPSConnection(server.host, server.ports["https"],
                                                context=tls_context(), timeout=20,
                                                source_address=source)

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r, r.read()

    def api(self, user, calls):
        body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                           "methodCalls": calls}).encode()
        r, data = self.request("POST", "/jmap/api/", body, {
            "Authorization": basic(user), "Content-Type": "application/json"})
        assert r.status == 200, (r.status, data)
        return json.loads(data)["methodResponses"]

    def eventsource(self, user):
        """A JMAP EventSource stream of every type, no pings: (self, the response)."""
        self.conn.request("GET", "/jmap/eventsource/?types=*&closeafter=no&ping=0",
                          headers={"Authorization": basic(user), "Accept": "text/event-stream"})
        r = self.conn.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Type").startswith("text/event-stream")
        return self, r

    def jmap_subjects(self, user):
        acc = "a" + user.encode().hex()
        out = self.api(user, [
            ["Email/query", {"accountId": acc}, "q"],
            ["Email/get", {"accountId": acc, "#ids": {"resultOf": "q", "name": "Email/query",
                                                      "path": "/ids"},
                           "properties": ["subject"]}, "g"]])
        assert out[1][0] == "Email/get", out
        return sorted(e["subject"] for e in out[1][1]["list"])


def test_jmap_through_frontend(layout, tmp_path):
    """JMAP at the front-end reaches each user's home server: the session's
    URLs name the front-end, Email/query and Email/get read the right
    mailbox, a blob goes up and comes back, and an EventSource stream at the
    front-end sees a delivery at the home server."""
    fe, be1, be2 = layout["fe"], layout["be1"], layout["be2"]
    mail(be1, "alice@example.test", "jmap alice")
    mail(fe, "bob@example.test", "jmap bob")  # relayed to be2 by the front-end's mta
    w = Web(fe)
    r, data = w.request("GET", "/.well-known/jmap",
                        headers={"Authorization": basic("alice@example.test")})
    assert r.status == 200, data
    session = json.loads(data)
    public = f"https://{fe.host}:{fe.ports['https']}"
    assert session["username"] == "alice@example.test"
    assert session["apiUrl"].startswith(public + "/")
    assert session["eventSourceUrl"].startswith(public + "/")
    # two users homed on different back-ends, on one front-end connection, each see their own
    wait_until(lambda: w.jmap_subjects("alice@example.test") == ["jmap alice"],
               what="alice's mail on be1 over JMAP")
    wait_until(lambda: w.jmap_subjects("bob@example.test") == ["jmap bob"],
               what="bob's mail on be2 over JMAP")
    assert w.jmap_subjects("alice@example.test") == ["jmap alice"]
    # the kept connection to be1 parks (at both ends, as above) and carries
    # the next request: its hand-over MAC is bound to the parked channel
    wait_until(lambda: parked(fe, "http", "proxy_tls_parked") >= 1 and parked(be1, "http") >= 1,
               what="the kept HTTP connection to be1 parked at both ends")
    assert w.jmap_subjects("alice@example.test") == ["jmap alice"]
    assert "http: login: user=<alice@example.test>, rip=127.0.0.1, via front-end 127.0.0.2" \
        in be1.log()
    assert "http: login: user=<bob@example.test>, rip=127.0.0.1, via front-end" in be2.log()
    assert "http: login: user=<bob@example.test>" not in be1.log()
    # a wrong password is the front-end's 401; nothing reaches a back-end
    r, _ = w.request("POST", "/jmap/api/", b"{}", {"Authorization": basic("bob@example.test",
                                                                           "wrong")})
    assert r.status == 401

    # upload with curl, download with http.client, for bob (be2, a host name)
    blob = os.urandom(100 * 1024) + b"\x00\r\n"
    f = tmp_path / "blob.bin"
    f.write_bytes(blob)
    bob_acc = "a" + "bob@example.test".encode().hex()
    up = subprocess.run(["curl", "-sk", "--resolve", f"fe.example.test:{fe.ports['https']}:{fe.host}",
                         "-u", f"bob@example.test:{PASSWORD}", "-H",
                         "Content-Type: application/octet-stream", "--data-binary", f"@{f}",
                         f"https://fe.example.test:{fe.ports['https']}/jmap/upload/{bob_acc}/"],
                        capture_output=True, timeout=60, check=True)
    up = json.loads(up.stdout)
    assert up["size"] == len(blob), up
    r, data = w.request("GET", f"/jmap/download/{bob_acc}/{up['blobId']}/x.bin"
                        "?type=application/octet-stream",
                        headers={"Authorization": basic("bob@example.test")})
    assert r.status == 200 and data == blob
    # alice's home has no such blob
    alice_acc = "a" + "alice@example.test".encode().hex()
    r, _ = w.request("GET", f"/jmap/download/{alice_acc}/{up['blobId']}/x.bin?type=x/y",
                     headers={"Authorization": basic("alice@example.test")})
    assert r.status == 404

    # EventSource at the front-end, woken by a delivery at alice's home
    es, r = Web(fe).eventsource("alice@example.test")

    def event():
        return sse_event(r.readline)
    assert "event: state" in event()
    # the stream's connection to be1 and the kept one to be2 park, the two
    # clients' too: a push stream through the front-end costs parked states
    wait_until(lambda: parked(fe, "http") >= 2 and parked(fe, "http", "proxy_tls_parked") >= 2
               and parked(be1, "http") + parked(be2, "http") >= 2,
               what="the push stream parked at the front-end, both ends of each hop")
    mail(be1, "alice@example.test", "pushed")
    ev = event()
    data = json.loads(next(x for x in ev if x.startswith("data: "))[6:])
    assert data["@type"] == "StateChange" and "Email" in data["changed"][alice_acc]
    es.conn.close()
    assert w.jmap_subjects("alice@example.test") == ["jmap alice", "pushed"]

    # JMAP over WebSocket (RFC 8887) at the front-end: the home server's 101, then spliced
    from test_jmap_ws import WebSocket
    ws = WebSocket(fe)
    assert ws.status == 101 and ws.headers["sec-websocket-protocol"] == "jmap"
    ws.send({"@type": "Request", "id": "r1", "using": ["urn:ietf:params:jmap:core",
                                                       "urn:ietf:params:jmap:mail"],
             "methodCalls": [["Email/query", {"accountId": alice_acc}, "0"]]})
    out = ws.message()
    assert out["@type"] == "Response" and len(out["methodResponses"][0][1]["ids"]) == 2
    ws.send({"@type": "WebSocketPushEnable", "dataTypes": None})
    assert ws.message()["@type"] == "StateChange"
    mail(be1, "alice@example.test", "pushed over ws")
    sc = ws.message()
    assert sc["@type"] == "StateChange" and "Email" in sc["changed"][alice_acc], sc
    ws.sock.close()
    rows = {r["service"]: r for r in fe.port_map()["ports"]}
    assert rows["https-proxy"]["direction"] == "outbound"


def test_proxied_eventsource_parks_at_once(wharf_factory, tmp_path):
    """A JMAP EventSource through the front-end is quiet for hours: the
    client's TLS at the front-end parks as soon as the stream's head is out
    (net_conn_park_soon, as a direct stream's), not after tls_park_idle (an
    hour here); parked, it sleeps on its socket alone and wakes for a push."""
    cert, key = backend_cert(tmp_path)
    https, smtp = common_port(), common_port()
    h = HOSTS["be1"]
    be = wharf_factory("be1", host=h, enable=["smtp", "https"], extra={
        "https_listen": f"{h}:{https}", "smtp_listen": f"{h}:{smtp}",
        "tls_cert_file": str(cert), "tls_key_file": str(key),
        "frontend_secret": SECRET, "frontend_networks": "127.0.0.2/32"})
    be.ports.update(https=https, smtp=smtp)
    be.wharf("domain", "add", "example.test")
    be.wharf("user", "add", "alice@example.test", "--password-stdin", input=b"unused\n")
    be = be.start()
    fe = wharf_factory("fe", host=HOSTS["fe"], enable=["https"], extra={
        "role": "frontend", "frontend_secret": SECRET, "frontend_https_port": str(https),
        "frontend_tls_ca_file": str(cert), "frontend_source_address": HOSTS["fe"],
        "tls_park_idle": "1h"})
    fe.wharf("domain", "add", "example.test")
    fe.wharf("user", "add", "alice@example.test", "--password-stdin",
             input=PASSWORD.encode() + b"\n")
    fe.wharf("user", "home", "alice@example.test", h)
    fe = fe.start()
    es, r = Web(fe).eventsource("alice@example.test")
    assert "event: state" in sse_event(r.readline)
    wait_until(lambda: parked(fe, "http") == 1 and parked(fe, "http", "tls_asleep") == 1,
               what="the proxied stream's client side parked and asleep within the hour")
    mail(be, "alice@example.test", "pushed")
    ev = sse_event(r.readline)
    data = json.loads(next(x for x in ev if x.startswith("data: "))[6:])
    alice_acc = "a" + "alice@example.test".encode().hex()
    assert data["@type"] == "StateChange" and "Email" in data["changed"][alice_acc]
    assert parked(fe, "http", "tls_asleep") == 0  # awake since the push, parked still
    assert parked(fe, "http") == 1
    es.conn.close()


# A blob larger than anything the front-end should hold for one client, and
# what it may hold for one download at most (about one high-water mark of
# the client's output, 1 MiB, plus an HTTP/2 stream's own 1 MiB, plus what
# one read from the back-end brings).
BIG_BLOB = 20 * 1024 * 1024
HELD_MAX = 4 * 1024 * 1024


def held_peak(fe):
    """The most one proxied exchange held at once in any front-end http worker."""
    return max(p.get("status", {}).get("proxy_held_peak", 0)
               for p in fe.component("http")["processes"])


class SlowHTTPS(http.client.HTTPSConnection):
    """http.client with a small socket receive buffer: what the test does not
    read stays at the sender, the kernel does not take it off its hands."""

    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        self.sock = self._context.wrap_socket(s, server_hostname=self.host)


def test_big_download_streams_through_frontend(layout, tmp_path):
    """A 20 MiB blob downloaded through the front-end by slow readers, over
    HTTP/1.1 and HTTP/2: the bytes come out identical, with the back-end's
    Content-Length, and the front-end never holds more than a few MiB of
    them (proxy_held in `wharf status`): it stops reading the back-end while
    the client's output is full, and reads again once it drained. A reload
    in the middle does not cut the download."""
    fe = layout["fe"]
    blob = os.urandom(BIG_BLOB)
    digest = hashlib.sha256(blob).hexdigest()
    f = tmp_path / "big.bin"
    f.write_bytes(blob)
    acc = "a" + "alice@example.test".encode().hex()
    base = f"https://fe.example.test:{fe.ports['https']}"
    resolve = ["--resolve", f"fe.example.test:{fe.ports['https']}:{fe.host}"]
    up = subprocess.run(["curl", "-sk", *resolve, "-u", f"alice@example.test:{PASSWORD}",
                         "-H", "Content-Type: application/octet-stream", "--data-binary",
                         f"@{f}", f"{base}/jmap/upload/{acc}/"],
                        capture_output=True, timeout=120, check=True)
    up = json.loads(up.stdout)
    assert up["size"] == BIG_BLOB, up
    path = f"/jmap/download/{acc}/{up['blobId']}/big.bin?type=application/octet-stream"
    assert held_peak(fe) < HELD_MAX  # the upload's answer is small

    def stalled_held():
        """What the front-end holds for a client that stopped reading, once it
        has stopped reading the back-end for it: paused (proxy_paused) with
        what it holds steady from one look to the next, or as soon as it holds
        more than the bound. Until the kernel's socket buffers toward the
        client are full, they drain the front-end's output, which may resume
        and pause again: the first pause is not yet the last."""
        last = [-1]

        def paused_for_good():
            held = fe.worker_count("http", "proxy_held")
            if held >= HELD_MAX:
                return True
            steady = held == last[0] and fe.worker_count("http", "proxy_paused") == 1
            last[0] = held
            return steady
        wait_until(paused_for_good, timeout=60, interval=0.2,
                   what="the front-end to stop reading for a stalled client")
        return fe.worker_count("http", "proxy_held")

    # HTTP/1.1: the client reads 1 MiB, stops until the front-end has stopped
    # too, then reads the rest 256 KiB at a time, looking at the status between
    c = SlowHTTPS(fe.host, fe.ports["https"], context=tls_context(), timeout=60)
    c.request("GET", path, headers={"Authorization": basic("alice@example.test")})
    r = c.getresponse()
    assert r.status == 200
    assert int(r.getheader("Content-Length")) == BIG_BLOB  # streamed, still with its length
    chunk = r.read(1024 * 1024)
    h, got = hashlib.sha256(chunk), len(chunk)
    stalled = stalled_held()
    assert stalled < HELD_MAX, f"the front-end holds {stalled} bytes for a stalled client"
    assert held_peak(fe) < HELD_MAX, held_peak(fe)
    # a reload meanwhile: the old generation's worker, told to drain, finishes
    # the download (it has an end, unlike an EventSource) before it goes
    fe.settings["shutdown_timeout"] = "120s"  # a slow reader on a loaded machine
    fe.write_config()
    fe.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded configuration (generation 1); old processes drain" in fe.log(),
               timeout=60, what="the front-end's old generation to drain")
    while True:
        try:
            chunk = r.read(256 * 1024)
        except TimeoutError:  # say where the bytes stopped: which side holds what
            http = [p.get("status") for p in fe.component("http")["processes"]]
            be_http = [p.get("status") for p in layout["be1"].component("http")["processes"]]
            raise AssertionError(f"download stalled after {got} bytes; front-end http workers "
                                 f"{http}; back-end http workers {be_http}; front-end log "
                                 f"tail {fe.log()[-3000:]}") from None
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    c.close()
    assert got == BIG_BLOB and h.hexdigest() == digest

    # HTTP/2: curl, stopped (SIGSTOP) once 1 MiB arrived until the front-end
    # has stopped too, then let go
    out = tmp_path / "got.bin"
    p = subprocess.Popen(["curl", "-sk", "--http2", *resolve,
                          "-u", f"alice@example.test:{PASSWORD}", "-o", str(out),
                          "-w", "%{http_version} %{http_code}", base + path],
                         stdout=subprocess.PIPE)
    try:
        wait_until(lambda: out.exists() and out.stat().st_size >= 1024 * 1024,
                   timeout=60, what="curl's first MiB")
        p.send_signal(signal.SIGSTOP)
        stalled = stalled_held()
        assert stalled < HELD_MAX, f"the front-end holds {stalled} bytes for a stalled client"
        p.send_signal(signal.SIGCONT)
        assert p.wait(timeout=120) == 0
    finally:
        p.send_signal(signal.SIGCONT)
        p.kill()
        p.wait()
    assert p.stdout.read().decode() == "2 200"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert held_peak(fe) < HELD_MAX, held_peak(fe)


def test_forged_frontend_field_refused(layout):
    """The Wharf-Frontend field counts only from a front-end that has the
    secret, on its own TLS connection: a client that sends it to the
    front-end or straight to a back-end is refused."""
    fe, be1 = layout["fe"], layout["be1"]
    forged = "alice@example.test 192.0.2.9 " + "0" * 64
    # to the front-end, even with good credentials
    r, _ = Web(fe).request("GET", "/.well-known/jmap", headers={
        "Authorization": basic("alice@example.test"), "Wharf-Frontend": forged})
    assert r.status == 403
    # to a back-end from a client address, and from the front-end's address without the secret
    for source in ("127.0.0.1", "127.0.0.2"):
        r, data = Web(be1, source=(source, 0)).request(
            "GET", "/.well-known/jmap", headers={"Wharf-Frontend": forged})
        assert r.status == 403, data
    assert "http: hand-over from 127.0.0.1 refused: 127.0.0.1 is not in frontend_networks" \
        in be1.log()
    assert "http: hand-over from 127.0.0.2 refused: wrong MAC" in be1.log()
    assert "http: hand-over from 127.0.0.1 refused" in fe.log()


def raw_handover(host, port, line, source=None):
    s = socket.create_connection((host, port), timeout=20, source_address=source)
    t = tls_context().wrap_socket(s)
    f = t.makefile("rb")
    assert f.readline().startswith(b"* OK")
    t.sendall(line)
    reply = f.readline()
    f.close()
    t.close()
    return reply


def test_forged_handover_refused(layout):
    fe, be1 = layout["fe"], layout["be1"]
    line = b'X XWHARFPROXY "alice@example.test" 192.0.2.9 ' + b"0" * 64 + b"\r\n"
    # a client that is not a configured front-end
    assert b"X NO" in raw_handover(be1.host, be1.ports["imaps"], line, ("127.0.0.1", 0))
    # from the front-end's address, but without the secret: a MAC it cannot make
    assert b"X NO" in raw_handover(be1.host, be1.ports["imaps"], line, ("127.0.0.2", 0))
    # a client that asks the front-end itself to take a hand-over
    assert b"X NO" in raw_handover(fe.host, fe.ports["imaps"], line)
    # a home server whose name does not resolve: a clean temporary error
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        imap_login(fe, "carol@example.test")
    assert "nowhere.example.test: no address in DNS" in fe.log()
    # POP3 the same
    s = socket.create_connection((be1.host, be1.ports["pop3s"]), timeout=20,
                                 source_address=("127.0.0.2", 0))
    t = tls_context().wrap_socket(s)
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK")
    t.sendall(b"XWHARFPROXY alice@example.test 192.0.2.9 " + b"0" * 64 + b"\r\nSTAT\r\n")
    assert f.readline().startswith(b"-ERR")
    assert f.readline().startswith(b"-ERR")  # still not signed in
    t.close()
    # SMTP the same: a hand-over without the secret signs nobody in
    s = socket.create_connection((be1.host, be1.ports["smtps"]), timeout=20,
                                 source_address=("127.0.0.2", 0))
    t = tls_context().wrap_socket(s)
    f = t.makefile("rb")
    assert f.readline().startswith(b"220")
    t.sendall(b"EHLO x\r\nXWHARFPROXY alice@example.test 192.0.2.9 " + b"0" * 64 + b"\r\n"
              b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.net>\r\n")
    while (line := f.readline()).startswith(b"250-"):
        pass
    assert f.readline().startswith(b"535")
    f.readline()  # MAIL
    assert f.readline()[:1] in (b"5", b"4")  # no relay for an unauthenticated client
    t.close()
    assert "smtp: hand-over from 127.0.0.2 refused: wrong MAC" in be1.log()
    assert "hand-over from 127.0.0.1 refused" in be1.log()
    assert "hand-over from 127.0.0.2 refused: wrong MAC" in be1.log()


def test_frontend_options_checked(wharf_factory):
    """A front-end without a usable secret, with an unknown role or a bad network list
    never starts."""
    w = wharf_factory("bad", enable=["imap"], extra={"role": "frontend", "frontend_secret": "short"})
    r = w.wharf("config", "check", check=False)
    assert r.returncode != 0 and b"frontend_secret must have at least 32" in r.stderr
    w.settings.update({"frontend_secret": SECRET, "role": "front"})
    w.write_config()
    r = w.wharf("config", "check", check=False)
    assert r.returncode != 0 and b"role must be mailbox or frontend" in r.stderr
    w.settings["role"] = "frontend"
    w.write_config()
    w.wharf("config", "check")
    # A network list takes networks only: a word, or a prefix out of range, is refused,
    # not skipped; a comment after the value (wharf.conf has whole-line comments alone)
    # is refused by the parser before
    for option, value, bad in (("frontend_networks", "127.0.0.2/32 front-ends", "front-ends"),
                               ("frontend_networks", "127.0.0.2/32   # the front-ends",
                                "after a value: a comment goes on a line of its own"),
                               ("mynetworks", "127.0.0.0/8 [::1]/129", "[::1]/129"),
                               ("exempt_networks", "10.0.0.0/", "10.0.0.0/")):
        w.settings[option] = value
        w.write_config()
        r = w.wharf("config", "check", check=False)
        want = bad if "comment" in bad else f'{option}: "{bad}" is not a network'
        assert r.returncode == 78 and want.encode() in r.stderr, r.stderr
        del w.settings[option]


# ---- one OpenLDAP tree for the three servers ---------------------------------

def test_ldap_directory_homes(wharf_factory, tmp_path):
    """All three servers read one slapd; the home server is mailHost, and each
    back-end knows its own value (home_server_names)."""
    import shutil

    from test_ldap import BASE, SERVICE, Slapd, bind_password_file

    if not shutil.which("slapd", path="/usr/sbin"):
        pytest.skip("slapd not installed")
    slapd = Slapd(tmp_path / "slapd").start()
    try:
        for uid, host in (("alice", HOSTS["be1"]), ("bob", HOSTS["be2"])):
            slapd.modify("ldapmodify", f"dn: uid={uid},ou=people,{BASE}\nchangetype: modify\n"
                                       f"replace: mailHost\nmailHost: {host}\n\n")
        cert, key = backend_cert(tmp_path)
        imaps = common_port()
        ldap = {"directory_driver": "ldap", "ldap_uris": slapd.uri, "ldap_base_dn": BASE,
                "ldap_bind_dn": SERVICE, "ldap_page_size": "2", "ldap_sync_interval": "1s",
                "ldap_timeout": "2s",
                "directory_client_cache_ttl": "0", "frontend_secret": SECRET}
        servers = {}
        for name, extra in (
                ("be1", {"home_server_names": HOSTS["be1"], "frontend_networks": "127.0.0.2/32",
                         "imaps_listen": f"{HOSTS['be1']}:{imaps}"}),
                ("be2", {"home_server_names": HOSTS["be2"], "frontend_networks": "127.0.0.2/32",
                         "imaps_listen": f"{HOSTS['be2']}:{imaps}"}),
                ("fe", {"role": "frontend", "frontend_imap_port": str(imaps),
                        "frontend_tls_ca_file": str(cert),
                        "frontend_source_address": HOSTS["fe"]})):
            if name != "fe":
                extra.update({"tls_cert_file": str(cert), "tls_key_file": str(key)})
            w = wharf_factory("l" + name, host=HOSTS[name],
                              enable=["smtp"] if name != "fe" else ["imaps"],
                              extra=dict(ldap, **extra))
            bind_password_file(w)
            w.write_config()
            w.ports["imaps"] = w.ports.get("imaps", imaps)
            servers[name] = w.start()

        def homes(w):
            return {u["account"]: u["home"]
                    for u in json.loads(w.wharf("user", "list", "--json").stdout)}
        wait_until(lambda: all(homes(w).get("alice@example.test") == HOSTS["be1"]
                               for w in servers.values()), what="the three servers to read LDAP")
        mail(servers["be1"], "alice@example.test", "ldap alice")
        mail(servers["be2"], "bob@example.test", "ldap bob")
        fe = servers["fe"]
        m = imaplib.IMAP4_SSL(fe.host, fe.ports["imaps"], ssl_context=tls_context(), timeout=20)
        m.login("alice@example.test", "alice pw")
        wait_until(lambda: subjects(m) == ["Subject: ldap alice"], what="alice's mail on be1")
        m.logout()
        m = imaplib.IMAP4_SSL(fe.host, fe.ports["imaps"], ssl_context=tls_context(), timeout=20)
        m.login("bob@example.test", "bob pw")
        wait_until(lambda: subjects(m) == ["Subject: ldap bob"], what="bob's mail on be2")
        m.logout()
    finally:
        slapd.stop()


def upload_url(fe):
    acc = "a" + "alice@example.test".encode().hex()
    return acc, f"https://fe.example.test:{fe.ports['https']}/jmap/upload/{acc}/"


def curl_upload(fe, *args, stdin=None, early=False):
    """curl's upload through the front-end: (HTTP version and status, body).
    early: an answer that comes before the body ended; over HTTP/2 the stream
    is then reset with NO_ERROR (RFC 9113 8.1), which curl 7.88 reports as
    exit 92 (a stream error) when it was still sending."""
    resolve = ["--resolve", f"fe.example.test:{fe.ports['https']}:{fe.host}"]
    p = subprocess.run(["curl", "-sk", *resolve, "-u", f"alice@example.test:{PASSWORD}",
                        "-H", "Content-Type: application/octet-stream", "-w",
                        "\n%{http_version} %{http_code}", *args, upload_url(fe)[1]],
                       stdin=stdin, capture_output=True, timeout=300)
    assert p.returncode == 0 or (early and "--http2" in args and p.returncode == 92), \
        (args, p.returncode, p.stderr)
    body, _, code = p.stdout.decode().rpartition("\n")
    return code, body


def curl_upload_from_pipe(fe):
    """curl --http2 uploading through the front-end what the test writes to its stdin
    (curl reads the pipe as it goes): a Popen, its stdout the body, then version and status."""
    resolve = ["--resolve", f"fe.example.test:{fe.ports['https']}:{fe.host}"]
    return subprocess.Popen(["curl", "-sk", "--http2", *resolve, "-u",
                             f"alice@example.test:{PASSWORD}", "-X", "POST", "-T", "-",
                             "-H", "Content-Type: application/octet-stream",
                             "-w", "\n%{http_version} %{http_code}", upload_url(fe)[1]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def download_digest(fe, blob_id, tmp_path):
    acc = upload_url(fe)[0]
    out = tmp_path / "back.bin"
    subprocess.run(["curl", "-sk", "--resolve", f"fe.example.test:{fe.ports['https']}:{fe.host}",
                    "-u", f"alice@example.test:{PASSWORD}", "-o", str(out), "--fail",
                    f"https://fe.example.test:{fe.ports['https']}/jmap/download/{acc}/{blob_id}/"
                    "b.bin?type=application/octet-stream"], check=True, timeout=300)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def http_pids(server):
    return [p["pid"] for p in server.component("http")["processes"] if p["state"] == "running"]


def upload_by_hand(fe, first, length=BIG_BLOB):
    """An upload begun over HTTP/1.1: its head (with its length) and the bytes first."""
    s = tls_context().wrap_socket(socket.create_connection((fe.host, fe.ports["https"]),
                                                            timeout=120),
                                  server_hostname="fe.example.test")
    acc, _ = upload_url(fe)
    s.sendall((f"POST /jmap/upload/{acc}/ HTTP/1.1\r\nHost: fe.example.test\r\n"
               f"Authorization: {basic('alice@example.test')}\r\n"
               f"Content-Type: application/octet-stream\r\n"
               f"Content-Length: {length}\r\n\r\n").encode() + first)
    return s


def reload_with(server, **settings):
    """The server reloaded with these settings, its old http workers gone."""
    server.settings.update(settings)
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded configuration (generation 1)" in server.log(),
               timeout=60, what="the reload")
    wait_until(lambda: all(p["generation"] == 1 for p in server.component("http")["processes"]),
               timeout=120, what="the old http workers to go")


def uploads_waiting(fe):
    """The front-end has stopped reading an upload's client because its back-end
    takes no more (proxy_uploads_paused), or holds more than the bound."""
    return (fe.worker_count("http", "proxy_uploads_paused") >= 1
            or held_peak(fe) >= HELD_MAX)


def test_big_upload_streams_through_frontend(layout, tmp_path):
    """A 20 MiB blob uploaded through the front-end over HTTP/1.1 (with its
    length, and chunked) and HTTP/2 (with and without content-length) arrives
    byte for byte (downloaded back); the front-end forwards it as it comes and
    never holds more than a few MiB of it (proxy_held_peak), even while its
    back-end takes nothing (stopped): it stops reading the client (HTTP/2:
    gives no stream window back) until the back-end took what waits for it.
    http_max_body is counted as the body comes: 413."""
    fe, be1 = layout["fe"], layout["be1"]
    blob = os.urandom(BIG_BLOB)
    digest = hashlib.sha256(blob).hexdigest()
    f = tmp_path / "big.bin"
    f.write_bytes(blob)

    for args in (["--http1.1", "--data-binary", f"@{f}"],
                 ["--http2", "--data-binary", f"@{f}"]):
        code, body = curl_upload(fe, *args)
        assert code.split()[1] == "201", (args, code, body)
        assert code.split()[0] == ("1.1" if "--http1.1" in args else "2")
        up = json.loads(body)
        assert up["size"] == BIG_BLOB, up
        assert download_digest(fe, up["blobId"], tmp_path) == digest
        assert held_peak(fe) < HELD_MAX, (args, held_peak(fe))
    # no length given: chunked over HTTP/1.1, DATA without content-length over
    # HTTP/2 (curl reading a pipe); chunked on to the back-end either way
    for version in ("--http1.1", "--http2"):
        with open(f, "rb") as stdin:
            code, body = curl_upload(fe, version, "-X", "POST", "-T", "-", stdin=stdin)
        assert code.split()[1] == "201", (version, code, body)
        up = json.loads(body)
        assert up["size"] == BIG_BLOB, up
        assert download_digest(fe, up["blobId"], tmp_path) == digest
        assert held_peak(fe) < HELD_MAX, (version, held_peak(fe))

    logins = be1.log().count("via front-end")

    def stop_backend_once_it_has_the_request():
        """be1's http workers stopped (SIGSTOP) once the request reached it (its
        login line): from then on it takes nothing, the front-end must wait."""
        wait_until(lambda: be1.log().count("via front-end") > logins,
                   timeout=60, what="the upload's head at the back-end")
        pids = http_pids(be1)
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        return pids

    def held_while_stopped(pids):
        try:
            wait_until(lambda: uploads_waiting(fe), timeout=120,
                       what="the front-end to stop reading the upload")
            return fe.worker_count("http", "proxy_held"), held_peak(fe)
        finally:
            for p in pids:
                os.kill(p, signal.SIGCONT)

    # HTTP/1.1 by hand: the head and 1 MiB, the back-end stopped, then the rest
    # from a thread (its send blocks once the front-end stops reading)
    s = upload_by_hand(fe, blob[:1024 * 1024])
    pids = stop_backend_once_it_has_the_request()
    rest = threading.Thread(target=s.sendall, args=(blob[1024 * 1024:],))
    rest.start()
    held, peak = held_while_stopped(pids)
    assert held < HELD_MAX and peak < HELD_MAX, f"the front-end held {held} (peak {peak})"
    rest.join(timeout=300)
    r = http.client.HTTPResponse(s)
    r.begin()
    up = json.loads(r.read())
    s.close()
    assert r.status == 201 and up["size"] == BIG_BLOB, (r.status, up)
    assert download_digest(fe, up["blobId"], tmp_path) == digest

    # HTTP/2: curl reads a pipe; 1 MiB, the back-end stopped, then the rest
    logins = be1.log().count("via front-end")
    p = curl_upload_from_pipe(fe)
    try:
        p.stdin.write(blob[:1024 * 1024])
        p.stdin.flush()
        pids = stop_backend_once_it_has_the_request()

        def feed():
            p.stdin.write(blob[1024 * 1024:])
            p.stdin.close()
        rest = threading.Thread(target=feed)
        rest.start()
        held, peak = held_while_stopped(pids)
        assert held < HELD_MAX and peak < HELD_MAX, f"the front-end held {held} (peak {peak})"
        rest.join(timeout=300)
        out = p.stdout.read()
        assert p.wait(timeout=300) == 0
    finally:
        p.kill()
        p.wait()
    body, _, code = out.decode().rpartition("\n")
    assert code == "2 201", (code, body)
    up = json.loads(body)
    assert up["size"] == BIG_BLOB and download_digest(fe, up["blobId"], tmp_path) == digest

    def refused(args):
        """413; over HTTP/2 curl 7.88 drops an answer whose RST_STREAM NO_ERROR
        comes while it is still sending (exit 92, status 000)."""
        return ("413", "000") if "--http2" in args else ("413",)

    # over http_max_body (8M from now on): refused with 413 whether the client
    # said the length (at the head) or not (counted as the body comes)
    reload_with(fe, http_max_body="8M")
    for args in (["--http1.1", "--data-binary", f"@{f}"],
                 ["--http2", "--data-binary", f"@{f}"]):
        code, body = curl_upload(fe, *args, early=True)
        assert code.split()[1] in refused(args), (args, code, body)
    for version in ("--http1.1", "--http2"):
        with open(f, "rb") as stdin:
            code, body = curl_upload(fe, version, "-X", "POST", "-T", "-", stdin=stdin,
                                     early=True)
        assert code.split()[1] in refused([version]), (version, code, body)
    # each of the four refused as the front-end logs it, whatever curl made of it
    assert fe.log().count(": 413 body over") >= 4, fe.log()[-3000:]
    # and the front-end goes on: a small upload through the same back-end
    code, body = curl_upload(fe, "--data-binary", "small")
    assert code.split()[1] == "201" and json.loads(body)["size"] == 5, (code, body)


def test_expect_continue_through_frontend(layout, tmp_path):
    """Expect: 100-continue through the front-end: wrong credentials get 401
    before the client sent a byte of its body (curl waits up to 60 s for the
    100, so a 100 sent at the head would show as bytes uploaded), over
    HTTP/1.1 and HTTP/2; the right ones get 100 once authenticated and routed,
    then the body goes on to the back-end (201)."""
    fe = layout["fe"]
    f = tmp_path / "up.bin"
    f.write_bytes(os.urandom(4 * 1024 * 1024))
    resolve = ["--resolve", f"fe.example.test:{fe.ports['https']}:{fe.host}"]
    for version in ("--http1.1", "--http2"):
        for password, want in (("wrong", 401), (PASSWORD, 201)):
            p = subprocess.run(["curl", "-sk", version, *resolve, "-u",
                                f"alice@example.test:{password}", "-H",
                                "Content-Type: application/octet-stream", "-H",
                                "Expect: 100-continue", "--expect100-timeout", "60",
                                "--data-binary", f"@{f}", "-o", "/dev/null", "-w",
                                "%{http_version} %{http_code} %{size_upload}", upload_url(fe)[1]],
                               capture_output=True, timeout=120)
            got = p.stdout.decode().split()
            assert got[1] == str(want), (version, password, got, p.stderr)
            sent = int(got[2])
            assert sent == (0 if want == 401 else 4 * 1024 * 1024), (version, password, got)


def test_upload_cut_short_through_frontend(layout):
    """An upload through the front-end that does not finish: a client that goes
    away or stops sending mid-body releases the front-end's connection to the
    back-end (the back-end's count of connections drops), the one that stopped
    gets 408; a back-end that dies mid-body gives the client a 502."""
    fe, be1 = layout["fe"], layout["be1"]

    def at_backend(logins):
        wait_until(lambda: be1.log().count("via front-end") > logins, timeout=60,
                   what="the upload's head at the back-end")
        assert be1.worker_count("http", "connections") == 1

    def released():
        wait_until(lambda: be1.worker_count("http", "connections") == 0
                   and fe.worker_count("http", "proxy_held") == 0,
                   timeout=30, what="the front-end to close its connection to the back-end")

    # the client goes away in the middle
    s = upload_by_hand(fe, os.urandom(1024 * 1024))
    at_backend(0)
    s.close()
    released()
    assert "the client went away during the request" in fe.log()

    # the client stops sending: 408 after http_idle_timeout, and released
    reload_with(fe, http_idle_timeout="3s")
    s = upload_by_hand(fe, os.urandom(1024 * 1024))
    at_backend(1)
    r = http.client.HTTPResponse(s)
    r.begin()  # blocks until the front-end gives up on the client
    assert r.status == 408 and r.getheader("Connection") == "close"
    s.close()
    released()

    # the back-end dies in the middle: 502, not a body passed off as whole
    s = upload_by_hand(fe, os.urandom(1024 * 1024))
    at_backend(2)
    for pid in http_pids(be1):
        os.kill(pid, signal.SIGKILL)
    r = http.client.HTTPResponse(s)
    r.begin()
    assert r.status == 502, r.status
    s.close()


def test_upload_to_stalled_backend_through_frontend(layout):
    """A back-end that takes none of an upload while the front-end has stopped
    reading its client (be1's http workers stopped): after http_idle_timeout
    (3 s here) the client gets 504, the front-end closes its connection to the
    back-end and counts it (proxy_upload_stalls), over HTTP/1.1 and HTTP/2;
    nothing stays held."""
    fe, be1 = layout["fe"], layout["be1"]
    reload_with(fe, http_idle_timeout="3s")
    blob = os.urandom(BIG_BLOB)

    def stop_at_backend(logins):
        wait_until(lambda: be1.log().count("via front-end") > logins, timeout=60,
                   what="the upload's head at the back-end")
        pids = http_pids(be1)
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        return pids

    def stalls():
        return fe.worker_count("http", "proxy_upload_stalls")

    def released(pids):
        for p in pids:
            os.kill(p, signal.SIGCONT)
        wait_until(lambda: be1.worker_count("http", "connections") == 0
                   and fe.worker_count("http", "proxy_held") == 0,
                   timeout=30, what="both ends of the stalled upload released")

    # HTTP/1.1 by hand: the head, then the body from a thread, whose send blocks
    # once the front-end stops reading; the answer is read once it has given up
    s = upload_by_hand(fe, b"")
    pids = stop_at_backend(0)
    try:
        def send():
            try:
                s.sendall(blob)
            except OSError:
                pass  # the front-end closed after its 504
        t = threading.Thread(target=send)
        t.start()
        wait_until(lambda: stalls() == 1, timeout=120, what="the front-end to give up")
        t.join(timeout=60)
        r = http.client.HTTPResponse(s)
        r.begin()
        assert r.status == 504 and r.getheader("Connection") == "close", r.status
        s.close()
    finally:
        released(pids)

    # HTTP/2: curl reads a pipe, the stream's window is not given back meanwhile
    p = curl_upload_from_pipe(fe)
    pids = []
    try:
        p.stdin.write(blob[:64 * 1024])
        p.stdin.flush()
        pids = stop_at_backend(1)

        def feed():
            try:
                p.stdin.write(blob[64 * 1024:])
                p.stdin.close()
            except OSError:
                pass  # curl is done: it had its answer
        t = threading.Thread(target=feed)
        t.start()
        out = p.stdout.read()
        p.wait(timeout=120)
        t.join(timeout=60)
    finally:
        p.kill()
        p.wait()
        released(pids)
    assert out.decode().rpartition("\n")[2] == "2 504", out[-200:]
    assert stalls() == 2
    assert "took none of the request body for http_idle_timeout" in fe.log()


# ---- the pump: a spliced IMAP session's bytes, both ways ----------------------

BIG_LITERAL = 12 * 1024 * 1024


def test_big_literal_both_ways_through_pump(wharf_factory, tmp_path, data_templates):
    """A spliced session is carried by the front-end's pump (net_proxy.c: the
    SSL and the socket without a bufferevent, proxy_pumped in `wharf status`).
    A message of 12 MiB goes through it both ways: an APPEND whose literal the
    client sends as fast as it can (the front-end pauses the client while the
    back-end has not taken its share), then a FETCH of it by a client that
    stops reading: the front-end stops reading the back-end (proxy_pump_held)
    and reads on once the client drains. The client's side of the front-end
    is on the same pump (net_conn.c, conn_pumped): its reads paused while the
    back-end has not taken the APPEND's share, its blocked output (the FETCH)
    what holds the back-end's side, and its drain what reads on. The bytes
    come back identical. No parking here (tls_park_idle = 0): the pump alone,
    all the way."""
    cert, key = backend_cert(tmp_path)
    imaps = common_port()
    h = HOSTS["be1"]
    be = wharf_factory("be1", host=h, enable=["imap"], extra={
        "imaps_listen": f"{h}:{imaps}", "tls_cert_file": str(cert), "tls_key_file": str(key),
        "frontend_secret": SECRET, "frontend_networks": "127.0.0.2/32", "tls_park_idle": "0"})
    be.ports.update(imaps=imaps)
    data_templates.prepare(be, "be1", backend_accounts).start()
    fe = wharf_factory("fe", host=HOSTS["fe"], enable=["imap", "imaps"], extra={
        "role": "frontend", "frontend_secret": SECRET, "frontend_imap_port": str(imaps),
        "frontend_tls_ca_file": str(cert), "frontend_source_address": HOSTS["fe"],
        "tls_park_idle": "0"})
    data_templates.prepare(fe, "fe", frontend_accounts).start()

    body = base64.encodebytes(os.urandom(BIG_LITERAL * 3 // 4)).replace(b"\n", b"\r\n")
    msg = b"From: someone@example.net\r\nSubject: big\r\n\r\n" + body
    a = imaplib.IMAP4_SSL(fe.host, fe.ports["imaps"], ssl_context=tls_context(), timeout=60)
    # a small receive buffer, fixed (no autotuning): the kernel does not take the whole message
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    a.login("alice@example.test", PASSWORD)
    wait_until(lambda: fe.worker_count("imap", "proxy_pumped") == 1,
               what="the spliced session on the front-end's pump")
    wait_until(lambda: fe.worker_count("imap", "conn_pumped") == 1,
               what="the client's side of the spliced session on the pump too")
    typ, data = a.append("INBOX", None, None, msg)
    assert typ == "OK", data
    assert a.select("INBOX")[0] == "OK"
    # the FETCH, then no reading until the front-end has stopped reading the back-end
    a.send(b"F1 FETCH 1 BODY.PEEK[]\r\n")
    wait_until(lambda: fe.worker_count("imap", "proxy_pump_held") == 1, timeout=60,
               what="the front-end to stop reading the back-end for a client that does not read")
    got = bytearray()
    while not (len(got) > len(msg) and got.endswith(b"\r\n") and b"\r\nF1 " in got[-300:]):
        chunk = a.sock.recv(64 * 1024)
        assert chunk, "the front-end closed the connection"
        got += chunk
    head, _, rest = bytes(got).partition(b"\r\n")
    assert head.startswith(b"* 1 FETCH (BODY[] {%d}" % len(msg)), head[:100]
    assert rest[:len(msg)] == msg
    assert b"F1 OK" in rest[len(msg):]
    assert fe.worker_count("imap", "proxy_pump_held") == 0
    a.logout()
    wait_until(lambda: fe.worker_count("imap", "proxy_pumped") == 0,
               what="the pump's session to end with the client's")
    assert fe.worker_count("imap", "conn_pumped") == 0
    assert "went away" not in fe.log()
