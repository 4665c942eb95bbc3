"""JMAP over WebSocket (RFC 8887) against a real wharfd.

The client is written here with the standard library only: the RFC 6455
opening handshake over TLS, masked client frames, the server's frames read
back. Requests must be answered as POSTs to the API URL are, and
WebSocketPushEnable must bring a StateChange within a second of an SMTP
delivery (the same bus-driven push as EventSource).
"""
import base64
import hashlib
import json
import os
import smtplib
import socket
import struct
import time

import pytest

from conftest import tls_context
from test_http2 import MSG, PASSWORD, USER, account_id
from test_http2 import h2 as server  # noqa: F401 (the fixture: https and smtp, one user)

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
WS = "urn:ietf:params:jmap:websocket"
ACCOUNT = account_id(USER)


class WebSocket:
    def __init__(self, server, protocol="jmap", password=PASSWORD):
        raw = socket.create_connection((server.host, server.ports["https"]), timeout=10)
        self.sock = tls_context().wrap_socket(raw)
        self.key = base64.b64encode(os.urandom(16)).decode()
        auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
        self.sock.sendall((f"GET /jmap/ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Authorization: Basic {auth}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n"
                           "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, self.buf
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (ln.partition(":") for ln in lines[1:])}

    def send(self, payload, opcode=1):
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        """(opcode, payload) of the next server frame (servers never mask)."""
        b0, b1 = self._need(2)
        assert b0 & 0x80 and not b1 & 0x80, (b0, b1)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack(">H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._need(8))[0]
        return b0 & 0x0f, self._need(n)

    def message(self):
        op, data = self.frame()
        assert op == 1, (op, data)
        return json.loads(data)


def test_session_advertises_websocket(server):
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], context=tls_context(),
                                    timeout=20)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    c.request("GET", "/.well-known/jmap", headers={"Authorization": "Basic " + auth})
    session = json.loads(c.getresponse().read())
    assert session["capabilities"][WS] == {
        "url": f"wss://127.0.0.1:{server.ports['https']}/jmap/ws/", "supportsPush": True}
    c.close()


def test_websocket_requests_and_push(server):
    ws = WebSocket(server)
    assert ws.status == 101
    want = base64.b64encode(hashlib.sha1(
        (ws.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert ws.headers["sec-websocket-accept"] == want
    assert ws.headers["sec-websocket-protocol"] == "jmap"
    assert ws.headers["upgrade"].lower() == "websocket"
    # a Request, answered as a POST to the API URL is
    ws.send({"@type": "Request", "id": "r1", "using": [CORE, MAIL],
             "methodCalls": [["Mailbox/get", {"accountId": ACCOUNT}, "0"]]})
    out = ws.message()
    assert out["@type"] == "Response" and out["requestId"] == "r1"
    name, args, tag = out["methodResponses"][0]
    assert name == "Mailbox/get" and any(m["role"] == "inbox" for m in args["list"])
    # a broken one: RequestError with the problem type
    ws.send({"@type": "Request", "id": "r2", "using": [CORE], "methodCalls": "no"})
    err = ws.message()
    assert err["@type"] == "RequestError" and err["requestId"] == "r2"
    assert err["type"] == "urn:ietf:params:jmap:error:notRequest"
    # push: the state now, then a StateChange within a second of an SMTP delivery
    ws.send({"@type": "WebSocketPushEnable", "dataTypes": None})
    first = ws.message()
    assert first["@type"] == "StateChange" and "pushState" in first
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
        s.sendmail("bob@example.test", [USER], MSG)
        sent_at = time.monotonic()
    sc = ws.message()
    latency = time.monotonic() - sent_at
    assert sc["@type"] == "StateChange" and "Email" in sc["changed"][ACCOUNT], sc
    assert int(sc["pushState"]) > int(first["pushState"])
    assert latency < 1.0, f"StateChange {latency * 1000:.0f} ms after the SMTP delivery"
    # a ping is answered with a pong carrying the same data; a close with a close
    ws.send(b"hello", opcode=0x9)
    assert ws.frame() == (0xA, b"hello")
    ws.send(struct.pack(">H", 1000), opcode=0x8)
    op, data = ws.frame()
    assert op == 0x8 and data[:2] == struct.pack(">H", 1000)
    with pytest.raises(EOFError):
        ws.frame()


def test_websocket_handshake_refusals(server):
    import subprocess
    assert WebSocket(server, protocol="chat").status == 400  # "jmap" not offered
    # over HTTP/2 there is no upgrade (RFC 8441 is not implemented): 426
    out = subprocess.run(["curl", "-sk", "--http2", "-u", f"{USER}:{PASSWORD}", "-o", "/dev/null",
                          "-w", "%{http_version} %{http_code}", "-H", "Sec-WebSocket-Version: 13",
                          f"https://127.0.0.1:{server.ports['https']}/jmap/ws/"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "2 426"
    assert WebSocket(server, password="wrong").status == 401
    # an unmasked client frame breaks RFC 6455 5.1: the server closes
    ws = WebSocket(server)
    assert ws.status == 101
    ws.sock.sendall(b"\x81\x02{}")
    with pytest.raises(EOFError):
        while True:
            op, _ = ws.frame()
            assert op == 0x8  # at most a close frame, then the end
