"""HTTP on 80 (redirect, ACME http-01) and 443 (TLS) against a real wharfd.

Clients: curl, Python's http.client, and raw sockets for what the libraries
will not send: each request-smuggling variant must get its 4xx AND the
connection closed (the read reaches EOF; a server that kept it open would
hit the socket timeout instead). The route API is driven through the
test_hooks routes under /_test/ (src/http/http_testroutes.c).
"""
import base64
import http.client
import json
import socket
import subprocess

import pytest

from conftest import tls_context

USER = "alice@example.test"
PASSWORD = "correct horse battery"


@pytest.fixture
def web(wharf_factory):
    server = wharf_factory(enable={"http", "https"},
                           extra={"test_hooks": "yes", "http_auth_failure_delay": "0"})
    server.start()
    # What an ACME client (certbot --webroot -w DATA/acme-challenge) writes.
    challenges = server.data / "acme-challenge" / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True)
    (challenges / "tok-EN_1").write_bytes(b"tok-EN_1.thumbprint")
    (challenges / "link").symlink_to(server.conf)
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return server


def https(server, timeout=20):
    return http.client.HTTPSConnection("127.0.0.1", server.ports["https"], timeout=timeout,
                                       context=tls_context())


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Raw:
    """One TCP (or TLS) connection: send bytes, read HTTP responses one by one."""

    def __init__(self, server, tls=True, timeout=10):
        port = server.ports["https" if tls else "http"]
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = tls_context().wrap_socket(s) if tls else s
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes):
        self.sock.sendall(data)

    def response(self):
        """(status, headers dict with lower-case names, body)."""
        line = self.f.readline()
        assert line.startswith(b"HTTP/1.1 "), line
        status = int(line.split()[1])
        headers = {}
        while True:
            ln = self.f.readline()
            assert ln.endswith(b"\r\n"), ln
            if ln == b"\r\n":
                break
            name, _, value = ln.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = self.f.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self.f.readline().strip(), 16)
                chunk = self.f.read(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        return status, headers, body

    def at_eof(self):
        """True when the server closed: nothing more, end of stream."""
        return self.f.read() == b""

    def close(self):
        self.f.close()
        self.sock.close()


def refused_and_closed(server, data, want):
    r = Raw(server)
    r.send(data)
    status, headers, _ = r.response()
    assert status == want, (data, status)
    assert headers.get("connection") == "close"
    assert r.at_eof(), data  # and nothing after: not a second request
    r.close()


# ---- port 80 ----

def test_port_80_redirects_everything_to_https(web):
    port = web.ports["https"]
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          f"http://127.0.0.1:{web.ports['http']}/some/where?x=1"],
                         capture_output=True, text=True, check=True).stdout
    assert out == f"301 https://127.0.0.1:{port}/some/where?x=1"
    c = http.client.HTTPConnection("127.0.0.1", web.ports["http"], timeout=20)
    c.request("POST", "/jmap/api", body=b"{}", headers={"Host": "mail.example.test:80"})
    r = c.getresponse()
    assert r.status == 308  # keeps the method and the body
    assert r.getheader("Location") == f"https://mail.example.test:{port}/jmap/api"
    assert r.getheader("Strict-Transport-Security") is None  # only over TLS
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    r.read()
    # Nothing else is served on 80: not even the routes of 443.
    c.request("GET", "/_test/echo")
    r = c.getresponse()
    assert r.status == 301
    r.read()
    c.close()


def test_port_80_serves_acme_challenges(web):
    base = f"http://127.0.0.1:{web.ports['http']}/.well-known/acme-challenge/"
    out = subprocess.run(["curl", "-s", "-w", " %{http_code}", base + "tok-EN_1"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "tok-EN_1.thumbprint 200"
    for bad in ("missing", "..%2F..%2F..%2Fwharf.conf", "a.b", "", "link"):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              base + bad], capture_output=True, text=True, check=True).stdout
        assert out == "404", bad


def test_no_credentials_over_port_80(web):
    c = http.client.HTTPConnection("127.0.0.1", web.ports["http"], timeout=20)
    c.request("GET", "/_test/whoami", headers={"Authorization": basic(USER, PASSWORD)})
    r = c.getresponse()
    assert r.status == 301 and r.getheader("WWW-Authenticate") is None
    r.read()
    c.close()


# ---- 443: headers, routes, authentication ----

def test_security_headers_on_every_response(web):
    c = https(web)
    for path in ("/_test/echo", "/nothing-here"):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.getheader("Strict-Transport-Security").startswith("max-age=31536000")
        assert r.getheader("X-Content-Type-Options") == "nosniff"
        assert r.getheader("Content-Security-Policy") == "frame-ancestors 'none'"
        assert r.getheader("X-Frame-Options") == "DENY"
        assert r.getheader("Referrer-Policy") == "no-referrer"
        assert r.getheader("Date").endswith(" GMT")
    c.close()


def test_routes_404_405_and_head(web):
    c = https(web)
    c.request("GET", "/_test/echoes")  # not "/_test/echo": whole segments only
    r = c.getresponse()
    assert r.status == 404
    r.read()
    c.request("POST", "/_test/whoami", body=b"")
    r = c.getresponse()
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"
    r.read()
    c.request("HEAD", "/_test/echo/x?y=1")
    r = c.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) > 0
    assert r.read() == b""
    c.close()


def test_body_by_length_and_chunked(web):
    out = subprocess.run(["curl", "-sk", "--data-binary", "@-", "-H", "X-Test: yes",
                          f"https://127.0.0.1:{web.ports['https']}/_test/echo/a?b=c"],
                         input=b"x" * 100000, capture_output=True, check=True).stdout
    assert out.startswith(b"method=POST\npath=/_test/echo/a\nquery=b=c\n"
                          b"host=127.0.0.1:%d\nx-test=yes\nbody-length=100000\n"
                          % web.ports["https"])
    out = subprocess.run(["curl", "-sk", "-H", "Transfer-Encoding: chunked", "--data-binary",
                          "@-", f"https://127.0.0.1:{web.ports['https']}/_test/echo"],
                         input=b"hello chunks", capture_output=True, check=True).stdout
    assert out.endswith(b"body-length=12\nhello chunks")


def test_body_over_the_limit(wharf_factory):
    server = wharf_factory(enable={"http", "https"},
                           extra={"test_hooks": "yes", "http_max_body": "2k"}).start()
    refused_and_closed(server, b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2049"
                               b"\r\n\r\n", 413)
    refused_and_closed(server, b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                               b"chunked\r\n\r\n800\r\n" + b"x" * 2048 + b"\r\n1\r\nx\r\n", 413)
    r = Raw(server)
    r.send(b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\n\r\n" + b"y" * 2048)
    assert r.response()[0] == 200
    r.close()


def test_basic_auth(web):
    c = https(web)
    c.request("GET", "/_test/whoami")
    r = c.getresponse()
    assert r.status == 401
    assert r.getheader("WWW-Authenticate").startswith('Basic realm="Wharf", charset="UTF-8"')
    r.read()
    c.request("GET", "/_test/whoami", headers={"Authorization": basic(USER, "wrong")})
    r = c.getresponse()
    assert r.status == 401
    r.read()
    c.request("GET", "/_test/whoami", headers={"Authorization": "Basic !!!"})
    r = c.getresponse()
    assert r.status == 401
    r.read()
    # The same connection goes on and logs in.
    c.request("GET", "/_test/whoami", headers={"Authorization": basic(USER, PASSWORD)})
    r = c.getresponse()
    assert r.status == 200 and r.read() == USER.encode() + b"\n"
    c.request("GET", "/_test/whoami", headers={"Authorization": basic(USER, PASSWORD)})
    r = c.getresponse()
    assert r.status == 200 and r.read() == USER.encode() + b"\n"
    c.close()
    out = subprocess.run(["curl", "-sk", "-u", f"{USER}:{PASSWORD}",
                          f"https://127.0.0.1:{web.ports['https']}/_test/whoami"],
                         capture_output=True, text=True, check=True).stdout
    assert out == USER + "\n"
    out = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                          f"{USER}:nope", f"https://127.0.0.1:{web.ports['https']}/_test/whoami"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "401"


def test_deferred_and_streamed_answers(web):
    c = https(web)
    c.request("GET", "/_test/later")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"later\n"
    c.request("GET", "/_test/stream")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    assert r.getheader("Content-Type") == "text/event-stream"
    assert r.read() == b"data: 3\n\ndata: 2\n\ndata: 1\n\n"
    # The connection goes on after the stream.
    c.request("GET", "/_test/echo")
    r = c.getresponse()
    assert r.status == 200
    r.read()
    c.close()
    # A client that leaves in the middle of a held answer costs nothing.
    r = Raw(web)
    r.send(b"GET /_test/later HTTP/1.1\r\nHost: h\r\n\r\n")
    r.close()
    c = https(web)
    c.request("GET", "/_test/later")
    assert c.getresponse().read() == b"later\n"
    c.close()


# ---- framing: keep-alive, pipelining, smuggling ----

def test_keep_alive_and_pipelining(web):
    r = Raw(web)
    # Three requests in one write, one of them held (deferred): answers come in order.
    r.send(b"GET /_test/echo?1 HTTP/1.1\r\nHost: h\r\n\r\n"
           b"GET /_test/later HTTP/1.1\r\nHost: h\r\n\r\n"
           b"POST /_test/echo?3 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody")
    s1, _, b1 = r.response()
    s2, _, b2 = r.response()
    s3, h3, b3 = r.response()
    assert (s1, s2, s3) == (200, 200, 200)
    assert b"query=1\n" in b1 and b2 == b"later\n" and b"query=3\n" in b3
    assert b3.endswith(b"body-length=4\nbody")
    assert "connection" not in h3
    # Still open: one more, then Connection: close ends it.
    r.send(b"GET /_test/echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 200 and headers["connection"] == "close"
    assert r.at_eof()
    r.close()
    # HTTP/1.0 closes unless asked, and says so when it keeps the connection.
    r = Raw(web)
    r.send(b"GET /_test/echo HTTP/1.0\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 200 and headers["connection"] == "close"
    assert r.at_eof()
    r.close()
    r = Raw(web)
    r.send(b"GET /_test/echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 200 and headers["connection"] == "keep-alive"
    r.send(b"GET /_test/echo?again HTTP/1.0\r\n\r\n")
    status, headers, body = r.response()
    assert b"query=again" in body and headers["connection"] == "close"
    assert r.at_eof()
    r.close()
    c = https(web)
    for i in range(5):
        c.request("GET", f"/_test/echo?{i}")
        resp = c.getresponse()
        assert resp.status == 200 and f"query={i}\n".encode() in resp.read()
    c.close()


SMUGGLING = [
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 4\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
     b"abcde", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n"
     b"abcd", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 4\r\n\r\nabcd", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: -4\r\n\r\nabcd", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4x\r\n\r\nabcd", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
     b"0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),  # obs-fold
    (b"POST /_test/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nabc\r\n0\r\n\r\n", 400),  # bad chunk size
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabcdef\r\n0\r\n\r\n", 400),  # chunk longer than its size
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0x3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\nabc\r\n0\r\n\r\n", 400),  # bare LF in the chunk size line
    (b"GET /_test/echo HTTP/1.1\nHost: h\r\n\r\n", 400),  # bare LF
    (b"GET /_test/echo HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400),
    (b"GET /_test/echo HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),  # bare CR
    (b"GET /_test/echo HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /_test/echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  # two
    (b"GET /_test/echo HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET /_test/ echo HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET /_test/echo HTTP/3.0\r\nHost: h\r\n\r\n", 505),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 40000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
]


def test_smuggling_refused_and_closed(web):
    # One server for every variant; a request hidden behind the refused one is
    # never answered (at_eof in refused_and_closed).
    for data, status in SMUGGLING:
        refused_and_closed(web, data, status)
    # And the server goes on.
    c = https(web)
    c.request("GET", "/_test/echo")
    assert c.getresponse().status == 200
    c.close()


def test_smuggling_on_port_80_too(web):
    r = Raw(web, tls=False)
    r.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 400 and headers["connection"] == "close"
    assert r.at_eof()
    r.close()


def test_expect_continue(web):
    r = Raw(web)
    r.send(b"POST /_test/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
           b"Expect: 100-continue\r\n\r\n")
    assert r.f.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert r.f.readline() == b"\r\n"
    r.send(b"abc")
    status, _, body = r.response()
    assert status == 200 and body.endswith(b"body-length=3\nabc")
    r.close()


def test_expect_continue_only_once_let_in(web):
    """100 Continue only once the request is authenticated and routed: wrong
    credentials get 401 and an unknown route 404 without a 100 (and the
    connection closed: the body was never read); the right ones get 100, then
    the body is read and the upload stored."""
    acc = "a" + USER.encode().hex()
    head = ("Host: h\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            "Expect: 100-continue\r\n")
    for line, auth, want in ((f"POST /jmap/upload/{acc}/", basic(USER, "wrong"), 401),
                             ("POST /no/such/route", basic(USER, PASSWORD), 404)):
        r = Raw(web)
        r.send(f"{line} HTTP/1.1\r\n{head}Authorization: {auth}\r\n\r\n".encode())
        status, headers, _ = r.response()
        assert status == want and headers["connection"] == "close", (line, status)
        assert r.at_eof()
        r.close()
    r = Raw(web)
    r.send(f"POST /jmap/upload/{acc}/ HTTP/1.1\r\n{head}"
           f"Authorization: {basic(USER, PASSWORD)}\r\n\r\n".encode())
    assert r.f.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert r.f.readline() == b"\r\n"
    r.send(b"abc")
    status, _, body = r.response()
    assert status == 201 and json.loads(body)["size"] == 3, (status, body)
    r.close()


def test_wharf_ports_shows_http_live(web):
    out = web.wharf("ports").stdout.decode()
    rows = [ln.split() for ln in out.splitlines()
            if (" http " in ln or " https " in ln) and " inbound " in ln]
    assert sorted(r[4] for r in rows) == ["http", "https"], out
    assert all(r[-1] in ("listening", "running") for r in rows), out


# ---- /metrics ----

def metric(text, name):
    for ln in text.splitlines():
        if ln.startswith(name + " "):
            return int(ln.split()[1])
    raise AssertionError(f"{name} not in:\n{text}")


def test_metrics(web):
    c = https(web)
    c.request("GET", "/_test/whoami", headers={"Authorization": basic(USER, "wrong")})
    assert c.getresponse().read() and True
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    assert r.status == 200, body
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    assert "# TYPE wharf_connections gauge" in body
    assert metric(body, "wharf_up") == 1
    assert metric(body, 'wharf_component_running{component="http"}') == 1
    assert metric(body, 'wharf_component_running{component="smtp"}') == 0  # disabled here
    assert metric(body, 'wharf_connections{service="https"}') >= 1  # this very connection
    assert metric(body, 'wharf_auth_logins_total{result="failed"}') >= 1
    assert metric(body, 'wharf_queue_messages{state="deferred"}') == 0
    c.request("GET", "/_test/whoami", headers={"Authorization": basic(USER, PASSWORD)})
    c.getresponse().read()
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    assert metric(body, 'wharf_auth_logins_total{result="ok"}') >= 1
    c.close()
    # Every line is a comment or "name{labels} integer": what Prometheus parses.
    import re
    for ln in body.splitlines():
        assert ln.startswith("# ") or re.fullmatch(r'[a-z_]+(\{[a-z]+="(?:[a-z0-9-]+|\+Inf)"\})? -?\d+', ln), ln


def test_metrics_only_for_metrics_networks(wharf_factory):
    server = wharf_factory(enable={"https"},
                           extra={"http_metrics_networks": "192.0.2.0/24"}).start()
    out = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                          f"https://127.0.0.1:{server.ports['https']}/metrics"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "403"


# ---- client autoconfiguration ----

@pytest.fixture
def auto(wharf_factory):
    # imaps and submission on, imap, pop3, pop3s and smtps off: only those two may appear.
    return wharf_factory(enable={"https", "imaps", "submission"}).start()


def test_thunderbird_autoconfig(auto):
    import xml.etree.ElementTree as ET
    c = https(auto)
    c.request("GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40example.test")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("application/xml")
    root = ET.fromstring(r.read())
    prov = root.find("emailProvider")
    assert prov.get("id") == "example.test" and prov.findtext("domain") == "example.test"
    ins = prov.findall("incomingServer")
    outs = prov.findall("outgoingServer")
    assert [(s.get("type"), s.findtext("hostname"), int(s.findtext("port")), s.findtext("socketType"))
            for s in ins] == [("imap", "mail.example.test", auto.ports["imaps"], "SSL")]
    assert [(s.get("type"), int(s.findtext("port")), s.findtext("socketType")) for s in outs] == \
        [("smtp", auto.ports["submission"], "STARTTLS")]
    assert ins[0].findtext("username") == "%EMAILADDRESS%"
    # Host autoconfig.DOMAIN, as Thunderbird asks it.
    c.request("GET", "/mail/config-v1.1.xml", headers={"Host": "autoconfig.example.test"})
    r = c.getresponse()
    assert r.status == 200
    assert ET.fromstring(r.read()).find("emailProvider").get("id") == "example.test"
    # Markup in the address is refused, never echoed.
    c.request("GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=%3Cx%3E%40a.b")
    r = c.getresponse()
    assert r.status == 400 and b"<x>" not in r.read()
    c.close()


def test_autodiscover_pox(auto):
    import xml.etree.ElementTree as ET
    body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas."
            "microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request>"
            "<EMailAddress>bob@example.test</EMailAddress><AcceptableResponseSchema>http://"
            "schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
            "</AcceptableResponseSchema></Request></Autodiscover>")
    out = subprocess.run(["curl", "-sk", "-H", "Content-Type: text/xml", "--data-binary", body,
                          f"https://127.0.0.1:{auto.ports['https']}/autodiscover/autodiscover.xml"],
                         capture_output=True, check=True).stdout
    ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    root = ET.fromstring(out)
    protos = root.findall(".//a:Protocol", ns)
    got = [(p.findtext("a:Type", namespaces=ns), int(p.findtext("a:Port", namespaces=ns)),
            p.findtext("a:Encryption", namespaces=ns), p.findtext("a:LoginName", namespaces=ns))
           for p in protos]
    assert got == [("IMAP", auto.ports["imaps"], "SSL", "bob@example.test"),
                   ("SMTP", auto.ports["submission"], "TLS", "bob@example.test")]


def test_apple_mobileconfig(auto):
    import plistlib
    c = https(auto)
    c.request("GET", "/apple/mobileconfig?emailaddress=bob%40example.test")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "application/x-apple-aspen-config"
    p = plistlib.loads(r.read())
    acct = p["PayloadContent"][0]
    assert p["PayloadType"] == "Configuration"
    assert acct["PayloadType"] == "com.apple.mail.managed"
    assert acct["EmailAccountType"] == "EmailTypeIMAP"
    assert acct["IncomingMailServerHostName"] == "mail.example.test"
    assert acct["IncomingMailServerPortNumber"] == auto.ports["imaps"]
    assert acct["OutgoingMailServerPortNumber"] == auto.ports["submission"]
    assert acct["IncomingMailServerUsername"] == "bob@example.test"
    c.close()


# ---- compression (gzip, br, zstd) ----

def test_compression_by_accept_encoding(web):
    import gzip
    payload = b"compressible text, again and again. " * 400
    url = f"https://127.0.0.1:{web.ports['https']}/_test/echo"
    # curl --compressed asks for gzip, br and zstd (zstd wins a tie) and decodes the answer,
    # over HTTP/2 and HTTP/1.1; with the field given, curl asks for that and still decodes.
    for version, ae, want in (("--http2", None, "zstd"), ("--http1.1", None, "zstd"),
                              ("--http2", "br", "br"), ("--http1.1", "gzip", "gzip"),
                              ("--http2", "zstd;q=0.1, gzip;q=0.2", "gzip")):
        extra = ["-H", f"Accept-Encoding: {ae}"] if ae else []
        proc = subprocess.run(["curl", "-sk", version, "--compressed", "-D", "-",
                               "--data-binary", "@-"] + extra + [url],
                              input=payload, capture_output=True, check=True)
        head, _, body = proc.stdout.partition(b"\r\n\r\n")
        assert f"\r\ncontent-encoding: {want}\r\n".encode() in head.lower(), (ae, head)
        assert b"\r\nvary: accept-encoding" in head.lower()
        assert body.endswith(payload) and body.startswith(b"method=POST\n"), ae
    c = https(web)
    for ae, want in (("gzip", "gzip"), ("x-gzip", "gzip"), ("br, gzip;q=0.5", "br"),
                     ("*", "zstd"), ("gzip;q=0", None), ("identity", None), (None, None),
                     ("gzip;q=0.000, *", "zstd"), ("gzip, br;q=0.9, zstd;q=0.8", "gzip"),
                     ("zstd;q=0.5, BR;Q=0.5", "zstd"), ("br;q=1.0, gzip;q=0.999", "br"),
                     ("zstd;q=2", None), ("zstd;q=0.0001, gzip;q=x", None), ("deflate", None),
                     ("*;q=0, br", "br"), ("br;q=0, *;q=0.5", "zstd")):
        c.putrequest("POST", "/_test/echo", skip_accept_encoding=True)
        if ae:
            c.putheader("Accept-Encoding", ae)
        c.putheader("Content-Length", str(len(payload)))
        c.endheaders(payload)
        r = c.getresponse()
        raw = r.read()
        assert r.getheader("Content-Encoding") == want, ae
        assert r.getheader("Vary") == "Accept-Encoding"
        assert int(r.getheader("Content-Length")) == len(raw)
        if want == "gzip":
            raw = gzip.decompress(raw)
        elif want == "zstd":
            raw = subprocess.run(["zstd", "-dcq"], input=raw, capture_output=True,
                                 check=True).stdout
        elif want == "br":
            assert len(raw) < len(payload) // 4  # decoded by curl above
            continue
        assert raw.endswith(payload)
    # Small bodies are not worth it.
    c.request("GET", "/_test/echo", headers={"Accept-Encoding": "gzip, br, zstd"})
    r = c.getresponse()
    r.read()
    assert r.getheader("Content-Encoding") is None
    c.close()


# ---- Bearer tokens (app passwords) ----

def whoami(server, authz):
    out = subprocess.run(["curl", "-sk", "-w", " %{http_code}", "-H", f"Authorization: {authz}",
                          f"https://127.0.0.1:{server.ports['https']}/_test/whoami"],
                         capture_output=True, text=True, check=True).stdout
    return out


def test_bearer_tokens(web):
    token = web.wharf("token", "add", USER).stdout.decode().strip()
    assert token.startswith("wht_") and len(token) == 4 + 16 + 1 + 43
    tid = token[4:20]
    assert whoami(web, f"Bearer {token}") == f"{USER}\n 200"
    # Only the hash is kept.
    assert token[21:].encode() not in (web.data / "auth" / "tokens").read_bytes()
    # A wrong secret with a right id, a made-up token, garbage: 401.
    assert whoami(web, f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}").endswith(" 401")
    assert whoami(web, "Bearer wht_0123456789abcdef_" + "x" * 43).endswith(" 401")
    assert whoami(web, "Bearer nonsense").endswith(" 401")
    listing = web.wharf("token", "list", USER).stdout.decode()
    assert tid in listing and USER in listing
    # A second token; revoking the first leaves it working.
    token2 = web.wharf("token", "add", USER).stdout.decode().strip()
    web.wharf("token", "revoke", tid)
    assert whoami(web, f"Bearer {token}").endswith(" 401")
    assert whoami(web, f"Bearer {token2}") == f"{USER}\n 200"
    assert tid not in web.wharf("token", "list").stdout.decode()
    # Revocation holds at once, even on a connection that used the token before.
    c = https(web)
    c.request("GET", "/_test/whoami", headers={"Authorization": f"Bearer {token2}"})
    assert c.getresponse().read() == USER.encode() + b"\n"
    web.wharf("token", "revoke", token2[4:20])
    c.request("GET", "/_test/whoami", headers={"Authorization": f"Bearer {token2}"})
    r = c.getresponse()
    r.read()
    assert r.status == 401
    c.close()
    # No token for an account that does not exist.
    assert web.wharf("token", "add", "nobody@example.test", check=False).returncode != 0
    # Tokens survive a restart of wharfd (the file is the truth).
    token3 = web.wharf("token", "add", USER).stdout.decode().strip()
    web.stop()
    web.start()
    assert whoami(web, f"Bearer {token3}") == f"{USER}\n 200"
