"""HTTP/2 on 443 (ALPN h2, nghttp2) against a real wharfd.

Clients: curl --http2 (libcurl's nghttp2), which must negotiate h2 by ALPN
and get from every route what HTTP/1.1 gets; Python's ssl for the ALPN
choice itself and for an HTTP/2 preface sent on a connection that chose
http/1.1 (refused, then closed). The routes are JMAP's, /metrics and the
test_hooks ones (src/http/http_testroutes.c).
"""
import base64
import json
import os
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import tls_context
from sse import sse_event
tls_context

USER = "alice@example.test"
PASSWORD = "correct horse battery"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
MSG = (b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
       b"Subject: over h2\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
       b"Message-ID: <h2@example.test>\r\n\r\nHello.\r\n")


@pytest.fixture
def h2(wharf_factory):
    s = wharf_factory(enable={"https", "smtp"},
                      extra={"test_hooks": "yes", "http_auth_failure_delay": "0",
                             "http2_max_concurrent_streams": "4"}).start()
    s.wharf("domain", "add", "example.test")
    s.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return s


def account_id(user):
    return "a" + user.encode().hex()


def curl(server, path, *args, auth=True, timeout=60, out="-"):
    """curl --http2 on 443; returns (HTTP version, status, body bytes)."""
    url = f"https://127.0.0.1:{server.ports['https']}{path}"
    cmd = ["curl", "-sk", "--http2", "-o", out, "-w", "\n%{http_version} %{http_code}"]
    if auth:
        cmd += ["-u", f"{USER}:{PASSWORD}"]
    out = subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=timeout,
                         check=True).stdout
    body, _, tail = out.rpartition(b"\n")
    version, code = tail.decode().split()
    return version, int(code), body


def test_h2_by_alpn_for_jmap_session_and_api(h2):
    version, code, body = curl(h2, "/.well-known/jmap")
    assert (version, code) == ("2", 200), body
    session = json.loads(body)
    assert session["apiUrl"].endswith("/jmap/api/") and session["username"] == USER
    req = json.dumps({"using": [CORE, MAIL],
                      "methodCalls": [["Mailbox/get", {"accountId": account_id(USER)}, "0"]]})
    version, code, body = curl(h2, "/jmap/api/", "-H", "Content-Type: application/json",
                               "--data-binary", req)
    assert (version, code) == ("2", 200), body
    name, args, tag = json.loads(body)["methodResponses"][0]
    assert name == "Mailbox/get" and tag == "0"
    assert any(m["role"] == "inbox" for m in args["list"])
    # no credentials: 401 with its challenge, as over HTTP/1.1
    out = subprocess.run(["curl", "-sk", "--http2", "-D", "-", "-o", "/dev/null",
                          f"https://127.0.0.1:{h2.ports['https']}/.well-known/jmap"],
                         capture_output=True, timeout=30, check=True).stdout.decode()
    assert out.startswith("HTTP/2 401"), out
    assert 'www-authenticate: basic realm="wharf"' in out.lower()


def test_h2_upload_download_byte_for_byte(h2, tmp_path):
    blob = os.urandom(3 * 1024 * 1024) + b"\x00\r\n\xff"  # above every flow-control window
    f = tmp_path / "blob.bin"
    f.write_bytes(blob)
    acc = account_id(USER)
    version, code, body = curl(h2, f"/jmap/upload/{acc}/", "-H",
                               "Content-Type: application/octet-stream", "--data-binary", f"@{f}")
    assert (version, code) == ("2", 201) or (version, code) == ("2", 200), body
    up = json.loads(body)
    assert up["size"] == len(blob)
    got = tmp_path / "got.bin"
    version, code, _ = curl(h2, f"/jmap/download/{acc}/{up['blobId']}/x.bin"
                            "?type=application/octet-stream", out=str(got))
    assert (version, code) == ("2", 200)
    assert got.read_bytes() == blob
    # an octet stream is never compressed, whatever the client takes
    out = subprocess.run(["curl", "-sk", "--http2", "--compressed", "-D", "-", "-o", "/dev/null",
                          "-u", f"{USER}:{PASSWORD}", f"https://127.0.0.1:{h2.ports['https']}"
                          f"/jmap/download/{acc}/{up['blobId']}/x.bin?type=application/octet-stream"],
                         capture_output=True, timeout=60, check=True).stdout.lower()
    assert out.startswith(b"http/2 200") and b"content-encoding" not in out


def test_h2_metrics_echo_head_and_errors(h2):
    version, code, body = curl(h2, "/metrics", auth=False)
    assert (version, code) == ("2", 200)
    assert b"wharf_up 1" in body
    version, code, body = curl(h2, "/_test/echo?a=b", "-H", "X-Test: yes", "--data-binary",
                               "hello", "-H", "Cookie: a=1", "-H", "Cookie: b=2", auth=False)
    assert (version, code) == ("2", 200)
    assert b"method=POST\npath=/_test/echo\nquery=a=b\n" in body
    assert b"host=127.0.0.1:" in body and b"x-test=yes\nbody-length=5\nhello" in body
    out = subprocess.run(["curl", "-sk", "--http2", "-I",
                          f"https://127.0.0.1:{h2.ports['https']}/_test/echo"],
                         capture_output=True, timeout=30, check=True).stdout.decode().lower()
    assert out.startswith("http/2 200") and "strict-transport-security: max-age=" in out
    assert "x-content-type-options: nosniff" in out and "connection:" not in out
    assert curl(h2, "/nowhere", auth=False)[:2] == ("2", 404)
    assert curl(h2, "/_test/whoami", "-X", "POST", auth=False)[:2] == ("2", 405)
    # the same size limits as HTTP/1.1: a head over http_max_header_size (32k) gets 431
    assert curl(h2, "/_test/echo", "-H", "X-Big: " + "x" * 40000, auth=False)[:2] == ("2", 431)
    # deferred and streamed answers
    assert curl(h2, "/_test/later", auth=False) == ("2", 200, b"later\n")
    assert curl(h2, "/_test/stream", auth=False) == ("2", 200,
                                                     b"data: 3\n\ndata: 2\n\ndata: 1\n\n")


def test_h2_many_streams_on_one_connection(h2):
    # 12 deferred requests at once, multiplexed (curl opens far fewer connections)
    url = f"https://127.0.0.1:{h2.ports['https']}/_test/later"
    out = subprocess.run(["curl", "-sk", "--http2", "-Z", "--parallel-max", "20",
                          "-w", "\n%{http_version} %{http_code} %{num_connects}\n"] + [url] * 12,
                         capture_output=True, timeout=60, check=True).stdout.decode()
    lines = [ln for ln in out.splitlines() if ln.startswith("2 ")]
    assert len(lines) == 12 and all(ln.startswith("2 200 ") for ln in lines), out
    assert sum(int(ln.split()[2]) for ln in lines) < 12, out


def frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
        stream.to_bytes(4, "big") + payload


def hpack_literal(headers):
    """HPACK literals without indexing, new names, no Huffman (RFC 7541 6.2.2)."""
    out = b""
    for name, value in headers:
        out += b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    return out


def read_frames(s, until):
    """Frames (type, flags, stream, payload) until until(frames) holds or the server closes."""
    buf, frames = b"", []
    while not until(frames):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff,
                           buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


def test_h2_concurrent_streams_and_malformed_requests(h2):
    # A raw HTTP/2 client: the 5th stream at once over http2_max_concurrent_streams (4) is
    # refused (RST_STREAM REFUSED_STREAM), the 4 others answered.
    s = tls(h2, ["h2"])
    assert s.selected_alpn_protocol() == "h2"
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    host = f"127.0.0.1:{h2.ports['https']}".encode()
    req = hpack_literal([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", host),
                         (b":path", b"/_test/later")])
    s.sendall(b"".join(frame(1, 0x5, sid, req) for sid in (1, 3, 5, 7, 9)))
    frames = read_frames(s, lambda fs: sum(1 for f in fs if f[0] == 0 and f[1] & 1) == 4)
    rst = [(f[2], int.from_bytes(f[3], "big")) for f in frames if f[0] == 3]
    assert rst == [(9, 7)], frames
    assert sorted(f[2] for f in frames if f[0] == 1) == [1, 3, 5, 7]
    # A malformed request (no :path) resets its stream, the connection goes on; a Host that
    # differs from :authority gets 400 (RFC 9113 8.3.1).
    bad = hpack_literal([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", host)])
    two = hpack_literal([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", host),
                         (b":path", b"/_test/echo"), (b"host", b"elsewhere.example")])
    s.sendall(frame(1, 0x5, 11, bad) + frame(1, 0x5, 13, two))
    frames = read_frames(s, lambda fs: any(f[0] == 1 and f[2] == 13 for f in fs))
    assert (3, 11) in [(f[0], f[2]) for f in frames], frames
    headers = next(f for f in frames if f[0] == 1 and f[2] == 13)
    assert headers[3][:1] == b"\x8c"  # HPACK static index 12: ":status: 400"
    # Not a client preface: GOAWAY, then the connection closes
    s.close()
    s = tls(h2, ["h2"])
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    frames = read_frames(s, lambda fs: False)
    assert frames == [] or any(f[0] == 7 for f in frames), frames
    s.close()


def test_h2_early_answer_resets_stream_and_continue(h2):
    """A raw HTTP/2 client. An answer given before the request's body ended
    (413 for a content-length over http_max_body; 401 for wrong credentials
    on a request that expects 100-continue, which gets no 100) is followed by
    RST_STREAM NO_ERROR (RFC 9113 8.1), so that the client stops sending; the
    connection goes on. With the right credentials the 100 (a HEADERS frame
    without END_STREAM) comes first, then the answer once the body is sent."""
    s = tls(h2, ["h2"])
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    host = f"127.0.0.1:{h2.ports['https']}".encode()
    path = f"/jmap/upload/{account_id(USER)}/".encode()

    def post(password, *extra):
        auth = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        return hpack_literal([(b":method", b"POST"), (b":scheme", b"https"),
                              (b":authority", host), (b":path", path),
                              (b"authorization", auth.encode()),
                              (b"content-type", b"text/plain"), *extra])

    def ended(frames, sid):
        return any(f[2] == sid and f[0] == 3 for f in frames) or \
            any(f[2] == sid and f[0] in (0, 1) and f[1] & 1 for f in frames)

    s.sendall(frame(1, 0x4, 1, post(PASSWORD, (b"content-length", b"99999999999")))
              + frame(1, 0x4, 3, post("wrong", (b"content-length", b"3"),
                                      (b"expect", b"100-continue")))
              + frame(1, 0x4, 5, post(PASSWORD, (b"content-length", b"3"),
                                      (b"expect", b"100-continue"))))
    frames = read_frames(s, lambda fs: all(any(f[2] == sid and f[0] == 3 for f in fs)
                                           for sid in (1, 3))
                         and any(f[2] == 5 and f[0] == 1 for f in fs))
    for sid in (1, 3):
        on = [(f[0], f[1] & 1, f[3]) for f in frames if f[2] == sid and f[0] in (0, 1, 3)]
        kinds = [k for k, _, _ in on]
        assert kinds.count(1) == 1, (sid, on)  # one HEADERS: the answer, no 100
        last = max(i for i, (k, end, _) in enumerate(on) if k in (0, 1) and end)
        assert on[last + 1:] == [(3, 0, b"\x00\x00\x00\x00")], (sid, on)  # NO_ERROR
    cont = [f for f in frames if f[2] == 5 and f[0] in (0, 1, 3)]
    assert [(f[0], f[1] & 1) for f in cont] == [(1, 0)], cont  # 100, nothing more yet
    s.sendall(frame(0, 0x1, 5, b"abc"))
    frames = read_frames(s, lambda fs: ended(fs, 5))
    on = [(f[0], f[1] & 1) for f in frames if f[2] == 5 and f[0] in (0, 1, 3)]
    assert on[0][0] == 1 and on[-1] == (0, 1) and 3 not in [k for k, _ in on], on
    body = b"".join(f[3] for f in frames if f[2] == 5 and f[0] == 0)
    assert json.loads(body)["size"] == 3, body
    s.close()


def test_eventsource_over_h2(h2):
    url = (f"https://127.0.0.1:{h2.ports['https']}"
           "/jmap/eventsource/?types=*&closeafter=no&ping=0")
    p = subprocess.Popen(["curl", "-sk", "--http2", "-N", "-u", f"{USER}:{PASSWORD}", url],
                         stdout=subprocess.PIPE)
    try:
        def event():
            return sse_event(p.stdout.readline)
        first = event()
        assert "event: state" in first
        with smtplib.SMTP("127.0.0.1", h2.ports["smtp"], timeout=20) as s:
            s.sendmail("bob@example.test", [USER], MSG)
            sent_at = time.monotonic()
        ev = event()
        latency = time.monotonic() - sent_at
        data = json.loads(next(x for x in ev if x.startswith("data: "))[6:])
        assert data["@type"] == "StateChange" and "Email" in data["changed"][account_id(USER)]
        assert latency < 1.0, f"StateChange {latency * 1000:.0f} ms after the SMTP delivery"
    finally:
        p.kill()
        p.wait()


def tls(server, alpn):
    ctx = tls_context()
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    s = socket.create_connection(("127.0.0.1", server.ports["https"]), timeout=10)
    return ctx.wrap_socket(s, server_hostname="localhost")


def test_http11_without_alpn_h2(h2):
    for alpn, want in ((None, None), (["http/1.1"], "http/1.1"), (["h2", "http/1.1"], "h2"),
                       (["spdy/3", "http/1.1"], "http/1.1"), (["imap"], None)):
        s = tls(h2, alpn)
        assert s.selected_alpn_protocol() == want, alpn
        if want != "h2":
            s.sendall(b"GET /_test/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 "), (alpn, data[:100])
        s.close()
    # and over curl, which asks for h2 unless told not to
    assert curl(h2, "/_test/echo", "--http1.1", auth=False)[:2] == ("1.1", 200)


def test_h2_preface_on_http11_connection_refused(h2):
    s = tls(h2, ["http/1.1"])
    assert s.selected_alpn_protocol() == "http/1.1"
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    data = b""
    while chunk := s.recv(65536):  # to the end: the server closes
        data += chunk
    assert data.startswith(b"HTTP/1.1 505 "), data[:100]
    assert b"\r\nConnection: close\r\n" in data
    s.close()
