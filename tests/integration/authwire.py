"""The auth socket's frames, written from Python straight from the spec.

IPC frame: u32 length, u16 type, u16 flags (0), payload (src/ipc/frame.h).
IPC_AUTH_REQUEST (200): u64 id, str service, str mechanism, str authzid,
str username, str password, str client_addr, u64 flags (1 = TLS, 2 = make a
webmail session, 4 = end the session checked).
IPC_AUTH_REPLY (201): u64 id, u64 result, str account, str session
(src/auth/auth_proto.h).
A str is a u32 length and the bytes.
"""
import socket
import struct

IPC_AUTH_REQUEST = 200
IPC_AUTH_REPLY = 201
AUTH_OK, AUTH_FAILED, AUTH_TEMPFAIL, AUTH_RATELIMIT = range(4)


def frame(ftype, payload, flags=0):
    return struct.pack(">IHH", len(payload), ftype, flags) + payload


def field(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def request_payload(rid, user, password, rip="192.0.2.10", service="smtp", mech="PLAIN",
                    authzid="", flags=1):
    return (struct.pack(">Q", rid) + field(service) + field(mech) + field(authzid) + field(user)
            + field(password) + field(rip) + struct.pack(">Q", flags))


def request(rid, user, password, **kw):
    return frame(IPC_AUTH_REQUEST, request_payload(rid, user, password, **kw))


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_reply(sock):
    length, ftype, flags = struct.unpack(">IHH", recv_exact(sock, 8))
    assert ftype == IPC_AUTH_REPLY and flags == 0 and length < 4096
    payload = recv_exact(sock, length)
    rid, result, alen = struct.unpack(">QQI", payload[:20])
    (slen,) = struct.unpack(">I", payload[20 + alen:24 + alen])
    assert len(payload) == 24 + alen + slen
    return rid, result, payload[20:20 + alen].decode()


def connect(path, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def check(path, user, password, rid=1, **kw):
    """One request on a fresh connection; returns (result, account)."""
    with connect(path) as s:
        s.sendall(request(rid, user, password, **kw))
        got_id, result, account = read_reply(s)
        assert got_id == rid
        return result, account
