"""Parked TLS 1.3 connections (tls_park_idle, src/net/net_tls_park.c; issue 19).

A TLS 1.3 connection quiet for tls_park_idle gives OpenSSL's state back and
goes on over the server's own record layer. The clients are Python's ssl
module (OpenSSL on the client side, an independent implementation of the
record protocol from the server's parked one): an IMAPS session in IDLE
parks (the worker's `tls_parked` count says so, no sleeping), a delivery by
SMTP reaches it as EXISTS, DONE, a FETCH of a message of many records,
LOGOUT (the server's KeyUpdate at parking followed by the client; the
client's own KeyUpdate is in the unit tests, Python cannot send one); an HTTPS keep-alive connection parks and serves its next request;
a JMAP EventSource stream parks and still gets its ping and a StateChange;
a TLS 1.2 client is never parked and works.
"""
import base64
import smtplib
import socket
import ssl

from conftest import tls_context, wait_until
from test_http import Raw as HttpRaw
from test_imap import Raw

USER = "alice@example.test"
PASSWORD = "correct horse battery"

WHARF_SERVICES = {"smtp", "imaps", "https"}


def big_message(size):
    lines = [b"From: bob@example.test", b"To: alice@example.test",
             b"Subject: many records", b""]
    n = 0
    while sum(len(x) + 2 for x in lines) < size:
        lines.append(b"line %06d of a message longer than one TLS record" % n)
        n += 1
    return b"\r\n".join(lines) + b"\r\n"


class Imap(Raw):
    """test_imap's line client (cmd, until), over a TLS context of our choice."""

    def __init__(self, port, ctx=None):
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock = (ctx or tls_context()).wrap_socket(s)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def fetch_literal(self, tag, text):
        """The bytes of the one literal in the answer to a FETCH."""
        self.send(f"{tag} {text}\r\n".encode())
        head = self.f.readline()
        assert head.startswith(b"* ") and head.rstrip().endswith(b"}"), head
        n = int(head.rstrip()[head.rindex(b"{") + 1:-1])
        data = self.f.read(n)
        _, ok = self.until(tag)
        assert ok.startswith(f"{tag} OK"), ok
        return data


def parked(server, component):
    return server.worker_count(component, "tls_parked")


def eventsource(server, auth, ping):
    """A JMAP EventSource stream of every type over HttpRaw, its response head read."""
    h = HttpRaw(server)
    h.send(f"GET /jmap/eventsource/?types=*&closeafter=no&ping={ping} HTTP/1.1\r\nHost: h\r\n"
           f"Authorization: Basic {auth}\r\n\r\n".encode())
    assert h.f.readline().startswith(b"HTTP/1.1 200 ")
    while h.f.readline() != b"\r\n":
        pass
    return h


def next_event(h):
    """The data of the stream's next chunk: one event each."""
    size = int(h.f.readline().strip(), 16)
    assert size > 0, "the stream ended"
    return h.f.read(size + 2)[:-2].decode()


def test_parked_imap_idle_smtp_fetch_and_https(wharf_factory):
    server = wharf_factory(extra={"tls_park_idle": "300ms", "test_hooks": "yes"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    # A TLS 1.2 client first: quiet longer than anyone, never parked.
    ctx12 = tls_context()
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    old = Imap(server.ports["imaps"], ctx12)
    assert old.sock.version() == "TLSv1.2"
    _, ok = old.cmd("l", f'LOGIN "{USER}" "{PASSWORD}"')
    assert ok.startswith("l OK")

    r = Imap(server.ports["imaps"])
    assert r.sock.version() == "TLSv1.3"
    _, ok = r.cmd("l", f'LOGIN "{USER}" "{PASSWORD}"')
    assert ok.startswith("l OK"), ok
    lines, ok = r.cmd("s", "SELECT INBOX")
    assert "* 0 EXISTS" in lines and ok.startswith("s OK")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    wait_until(lambda: parked(server, "imap") == 1, what="the IDLE session parked")

    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("bob@example.test", [USER], big_message(200_000))
    r.sock.settimeout(10)  # a bound for the failure case only
    ln = r.line()
    while ln.startswith(("* FLAGS", "* OK [PERMANENTFLAGS")) or ln.endswith(" RECENT"):
        ln = r.line()
    assert ln == "* 1 EXISTS"
    r.send(b"DONE\r\n")
    _, ok = r.until("i")
    assert ok.startswith("i OK")
    body = r.fetch_literal("f", "FETCH 1 BODY.PEEK[]")
    assert len(body) > 200_000 and body.endswith(b"longer than one TLS record\r\n")
    assert b"Subject: many records" in body
    # Parked again after the FETCH, and the next command is still answered.
    wait_until(lambda: parked(server, "imap") == 1, what="parked again")
    lines, ok = r.cmd("n", "NOOP")
    assert ok.startswith("n OK"), ok
    assert parked(server, "imap") == 1  # the TLS 1.2 session never was
    _, ok = r.cmd("o", "LOGOUT")
    assert ok.startswith("o OK")
    assert r.f.read() == b""  # the server's close (its close_notify ends the stream cleanly)
    r.close()

    # The TLS 1.2 session, idle all along, still works.
    _, ok = old.cmd("n", "NOOP")
    assert ok.startswith("n OK")
    old.cmd("o", "LOGOUT")
    old.close()

    # HTTPS keep-alive: a request, parked, the next request on the same connection.
    h = HttpRaw(server)
    h.send(b"GET /_test/echo?1 HTTP/1.1\r\nHost: h\r\n\r\n")
    status, _, body = h.response()
    assert status == 200 and b"query=1" in body
    wait_until(lambda: parked(server, "http") == 1, what="the HTTPS connection parked")
    h.send(b"GET /_test/echo?2 HTTP/1.1\r\nHost: h\r\n\r\n")
    status, _, body = h.response()
    assert status == 200 and b"query=2" in body
    h.send(b"GET /_test/echo?3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    status, headers, body = h.response()
    assert status == 200 and headers["connection"] == "close"
    assert h.at_eof()
    h.close()

    # An EventSource stream (its request and login state freed once it is set up)
    # parks, then gets its ping and a delivery's StateChange through the parked layer.
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    h = eventsource(server, auth, ping=5)
    assert next_event(h).startswith("event: state\n")
    wait_until(lambda: parked(server, "http") == 1, what="the EventSource stream parked")
    assert next_event(h).startswith("event: ping\n")  # ping=5: 5 s after the state
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("bob@example.test", [USER], b"Subject: pushed\r\n\r\nhi\r\n")
    ev = next_event(h)
    assert ev.startswith("event: state\n") and '"StateChange"' in ev and '"Email"' in ev, ev
    h.close()


def test_parked_connection_rejects_a_forged_record(wharf_factory):
    """Bytes that are no record of the connection's keys: the server closes, the
    plaintext never reaches IMAP (a LOGOUT in clear after TLS is not obeyed)."""
    server = wharf_factory(enable={"imaps"}, extra={"tls_park_idle": "300ms"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    r = Imap(server.ports["imaps"])
    _, ok = r.cmd("l", f'LOGIN "{USER}" "{PASSWORD}"')
    assert ok.startswith("l OK")
    wait_until(lambda: parked(server, "imap") == 1, what="parked")
    fd = socket.socket(fileno=r.sock.fileno())  # under the TLS socket: raw bytes
    try:
        fd.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)  # well framed, not authentic
        fd.sendall(b"o LOGOUT\r\n")
    finally:
        fd.detach()
    r.sock.settimeout(10)
    try:
        data = r.sock.recv(100)
    except ssl.SSLError as e:  # the server's alert
        data = str(e).encode()
    except ConnectionResetError:
        data = b""
    assert b"BYE" not in data and b"o OK" not in data
    wait_until(lambda: server.component("imap")["connections"] == 0,
               what="the connection closed")
    r.close()


def test_push_streams_park_at_once(wharf_factory):
    """An EventSource stream and a WebSocket with push on park as soon as they
    are set up (net_conn_park_soon), not after tls_park_idle (an hour here), so
    that a worker taking thousands of them a second holds only the handshakes
    in flight; an HTTPS keep-alive connection waits for tls_park_idle as before.
    Both streams then get a delivery's StateChange through the parked layer."""
    from test_jmap_ws import ACCOUNT, WebSocket
    server = wharf_factory(enable={"https", "smtp"}, extra={"tls_park_idle": "1h"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    keep = HttpRaw(server)
    keep.send(b"GET /.well-known/jmap HTTP/1.1\r\nHost: h\r\n"
              b"Authorization: Basic " + auth.encode() + b"\r\n\r\n")
    assert keep.response()[0] == 200

    h = eventsource(server, auth, ping=0)
    assert next_event(h).startswith("event: state\n")
    wait_until(lambda: parked(server, "http") == 1, what="the EventSource stream parked")

    ws = WebSocket(server)
    assert ws.status == 101
    ws.send({"@type": "WebSocketPushEnable", "dataTypes": None})
    assert ws.message()["@type"] == "StateChange"
    wait_until(lambda: parked(server, "http") == 2, what="the push WebSocket parked")

    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("bob@example.test", [USER], b"Subject: pushed\r\n\r\nhi\r\n")
    ev = next_event(h)
    assert ev.startswith("event: state\n") and '"Email"' in ev, ev
    sc = ws.message()
    assert sc["@type"] == "StateChange" and "Email" in sc["changed"][ACCOUNT], sc
    # the keep-alive connection never parked (an hour), and still answers
    assert parked(server, "http") == 2
    keep.send(b"GET /.well-known/jmap HTTP/1.1\r\nHost: h\r\n"
              b"Authorization: Basic " + auth.encode() + b"\r\n\r\n")
    assert keep.response()[0] == 200
    for c in (keep, h):
        c.close()
    ws.sock.close()
