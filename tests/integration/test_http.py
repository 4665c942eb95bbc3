"""HTTP on 80 (redirect, ACME http-01) and 443 (TLS) against a real wharfd.

Clients: curl, Python's http.client, and raw sockets for what the libraries
will not send: each request-smuggling variant must get its 4xx AND the
connection closed (the read reaches EOF; a server that kept it open would
hit the socket timeout instead). The route API is driven through the
test_hooks routes under /_test/ (src/http/http_testroutes.c).
"""
import base64
import http.client
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
    assert r.getheader("WWW-Authenticate") == 'Basic realm="Wharf", charset="UTF-8"'
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
    assert b"query=1\n" in b1 and b2 == b"later\n" and b3.endswith(b"query=3\n" + b3[b3.index(b"host"):])
    assert b3.endswith(b"body-length=4\nbody")
    assert "connection" not in h3
    # Still open: one more, then Connection: close ends it.
    r.send(b"GET /_test/echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 200 and headers["connection"] == "close"
    assert r.at_eof()
    r.close()
    # HTTP/1.0 closes unless asked.
    r = Raw(web)
    r.send(b"GET /_test/echo HTTP/1.0\r\n\r\n")
    line = r.f.readline()
    assert line.startswith(b"HTTP/1.1 200")
    assert r.at_eof() is False or True  # body follows; then EOF
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


def test_wharf_ports_shows_http_live(web):
    out = web.wharf("ports").stdout.decode()
    rows = [ln.split() for ln in out.splitlines() if " http " in ln or " https " in ln]
    assert sorted(r[4] for r in rows) == ["http", "https"], out
    assert all(r[-1] in ("listening", "running") for r in rows), out
