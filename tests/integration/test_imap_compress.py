"""IMAP COMPRESS=DEFLATE (RFC 4978) against a real wharfd.

The client side is Python's imaplib with zlib's raw deflate
(compressobj/decompressobj, wbits=-15) wrapped around its socket once the
server said OK to COMPRESS DEFLATE, and a raw line client doing the same for
what imaplib will not send (IDLE, garbage). Compression is checked on the
wire: the server's bytes must inflate to the replies (a plain-text reply is
not a deflate stream), and a large FETCH must arrive smaller than it is.
"""
import imaplib
import time
import zlib

from conftest import LineClient, tls_context, wait_until
from test_imap import MSG, PASSWORD, USER, deliver, imap  # noqa: F401 (imap is a fixture)

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))  # imaplib does not know it

def large_message(size):
    """A text message of about size bytes: compressible, but not trivially."""
    lines = [b"From: carol@example.test", b"To: alice@example.test",
             b"Subject: the big one", b"Message-ID: <big@example.test>", b""]
    n = 0
    total = 0
    while total < size:
        line = (b"Line %d of the report: total %d, checksum %08x, status ok" %
                (n, n * 37 % 1000, (n * 2654435761) & 0xffffffff))
        lines.append(line)
        total += len(line) + 2
        n += 1
    return b"\r\n".join(lines) + b"\r\n"


class Deflate:
    """Both directions of one compressed connection, with byte counts."""

    def __init__(self):
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inf = zlib.decompressobj(-15)
        self.wire_in = 0
        self.plain_in = 0

    def pack(self, data):
        return self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH)

    def unpack(self, chunk):
        self.wire_in += len(chunk)
        data = self.inf.decompress(chunk)
        self.plain_in += len(data)
        return data


class CompressIMAP4_SSL(imaplib.IMAP4_SSL):
    """imaplib with COMPRESS DEFLATE: after the OK, every byte goes through zlib."""

    z = None

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        assert typ == "OK", data
        # Nothing follows the tagged OK until we send again: the file buffer is empty.
        self.z = Deflate()
        self._zbuf = b""

    def send(self, data):
        if self.z is None:
            return super().send(data)
        self.sock.sendall(self.z.pack(data))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise imaplib.IMAP4.abort("socket closed")
        self._zbuf += self.z.unpack(chunk)

    def read(self, size):
        if self.z is None:
            return super().read(size)
        while len(self._zbuf) < size:
            self._fill()
        data, self._zbuf = self._zbuf[:size], self._zbuf[size:]
        return data

    def readline(self):
        if self.z is None:
            return super().readline()
        while b"\n" not in self._zbuf:
            self._fill()
        i = self._zbuf.index(b"\n") + 1
        data, self._zbuf = self._zbuf[:i], self._zbuf[i:]
        return data


class ZRaw(LineClient):
    """IMAP lines over an optionally compressed socket. It reads the socket
    itself (no file buffer), so that bytes after COMPRESS's OK are never read
    as plain text. line() is None once the server closed."""

    z = None
    buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += self.z.unpack(chunk) if self.z else chunk
        i = self.buf.index(b"\n") + 1
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln.decode("utf-8", "replace").rstrip("\r\n")

    def start(self, z):
        """Compression from here: what was read past the OK is compressed too."""
        self.z = z
        self.buf, rest = b"", self.buf
        self.buf = z.unpack(rest)

    def send(self, data):
        super().send(self.z.pack(data) if self.z else data)

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            ln = self.line()
            assert ln is not None, f"connection closed; got {lines}"
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)

    def login(self):
        _, ok = self.cmd("l", f'LOGIN "{USER}" "{PASSWORD}"')
        assert ok.startswith("l OK"), ok

    def compress(self):
        _, ok = self.cmd("z", "COMPRESS DEFLATE")
        assert ok.startswith("z OK"), ok
        self.start(Deflate())


def test_compress_over_tls_select_fetch_append(imap):
    big = large_message(3 * 1024 * 1024)
    deliver(imap, MSG)
    deliver(imap, big)
    m = CompressIMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls_context(),
                          timeout=30)
    assert "COMPRESS=DEFLATE" not in m.capabilities  # before login: not offered
    typ, data = m.login(USER, PASSWORD)
    assert b"COMPRESS=DEFLATE" in data[0]
    m.compress()
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    assert m.z.plain_in > m.z.wire_in > 0  # the replies did come compressed
    before = m.z.wire_in, m.z.plain_in
    typ, data = m.fetch("2", "(BODY.PEEK[])")
    assert typ == "OK"
    assert data[0][1] == big  # byte for byte
    wire, plain = m.z.wire_in - before[0], m.z.plain_in - before[1]
    assert plain > len(big) and wire < plain / 3, (wire, plain)
    # APPEND: a literal, compressed by the client, stored as sent.
    appended = MSG.replace(b"hello there", b"appended under compression")
    typ, data = m.append("INBOX", r"(\Flagged)", None, appended)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    typ, data = m.fetch("3", "(FLAGS BODY.PEEK[])")
    assert data[0][1] == appended and b"\\Flagged" in data[0][0]
    # Twice: NO [COMPRESSIONACTIVE], and the session goes on compressed.
    typ, data = m._simple_command("COMPRESS", "DEFLATE")
    assert typ == "NO" and data[0].startswith(b"[COMPRESSIONACTIVE]"), data
    typ, data = m.noop()
    assert typ == "OK"
    m.logout()


def test_idle_push_is_compressed_and_flushed(imap):
    deliver(imap, MSG)
    r = ZRaw(imap.ports["imaps"], tls=True)
    r.login()
    r.compress()
    lines, ok = r.cmd("s", "SELECT INBOX")
    assert "* 1 EXISTS" in lines
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    r.sock.settimeout(5)  # a bound for the failure case; the time is checked below
    wire = r.z.wire_in
    deliver(imap, MSG)   # returns once the delivery is committed
    delivered = time.monotonic()
    # Readable at once: the push was flushed out of zlib, not left for later output.
    assert r.line() == "* 2 EXISTS"
    assert time.monotonic() - delivered < 1.0
    assert r.line() == "* 2 RECENT"
    assert r.z.wire_in > wire
    r.send(b"DONE\r\n")
    assert r.line().startswith("i OK")
    r.close()


def zlib_memory(server):
    """(compressed connections, bytes zlib holds for them) of the imap worker."""
    return (server.worker_count("imap", "compressed_connections"),
            server.worker_count("imap", "compress_memory"))


def test_idle_push_after_the_compressor_was_released(imap):
    """A quiet connection gives its compressor back (status shows it); the next
    push starts a new one, which the client's decompressor takes as the same
    stream."""
    deliver(imap, MSG)
    r = ZRaw(imap.ports["imaps"], tls=True)
    r.login()
    r.compress()
    r.cmd("s", "SELECT INBOX")
    n, active = zlib_memory(imap)
    assert n == 1 and active > 100 * 1024, active  # compressor and decompressor
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    wait_until(lambda: zlib_memory(imap)[1] < 48 * 1024, timeout=20,
               what="the quiet connection's compressor to be released")
    deliver(imap, MSG)
    r.sock.settimeout(5)
    assert r.line() == "* 2 EXISTS"
    assert r.line() == "* 2 RECENT"
    r.send(b"DONE\r\n")
    assert r.line().startswith("i OK")
    _, ok = r.cmd("n", "NOOP")
    assert ok.startswith("n OK")
    r.close()


def test_compress_over_starttls(imap):
    r = ZRaw(imap.ports["imap"])
    _, ok = r.cmd("s", "STARTTLS")
    assert ok.startswith("s OK")
    r.wrap_tls()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "COMPRESS=DEFLATE" not in caps[0]
    _, ok = r.cmd("z0", "COMPRESS DEFLATE")
    assert ok.startswith("z0 BAD"), ok  # not before login
    r.login()
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "COMPRESS=DEFLATE" in caps[0]
    r.compress()
    lines, ok = r.cmd("l", 'LIST "" "*"')
    assert ok.startswith("l OK") and any("INBOX" in ln for ln in lines)
    r.send(b"o LOGOUT\r\n")
    assert r.line().startswith("* BYE")
    assert r.line().startswith("o OK")
    assert r.line() is None  # closed after the flushed goodbye
    r.close()


def test_compress_over_clear_text_when_plaintext_auth(wharf_factory):
    server = wharf_factory(enable={"imap"}, extra={"imap_plaintext_auth": "yes"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    deliver(server, MSG)
    r = ZRaw(server.ports["imap"])
    r.login()
    r.compress()
    r.cmd("s", "SELECT INBOX")
    lines, ok = r.cmd("f", "FETCH 1 (ENVELOPE)")
    assert ok.startswith("f OK") and any("hello there" in ln for ln in lines)
    r.close()


def test_bad_arguments(imap):
    r = ZRaw(imap.ports["imaps"], tls=True)
    r.login()
    for tag, args in (("a", "COMPRESS"), ("b", "COMPRESS GZIP"), ("c", "COMPRESS DEFLATE X"),
                      ("d", 'COMPRESS ("DEFLATE")')):
        _, ok = r.cmd(tag, args)
        assert ok.startswith(tag + " BAD"), ok
    _, ok = r.cmd("e", "NOOP")  # still in clear text
    assert ok.startswith("e OK")
    r.close()


def test_command_pipelined_behind_compress_is_inflated(imap):
    """RFC 4978 3 forbids it, but bytes behind COMPRESS must not wait for a
    read event that never comes: they are read as compressed, at once."""
    r = ZRaw(imap.ports["imaps"], tls=True)
    r.login()
    z = Deflate()
    r.send(b"z COMPRESS DEFLATE\r\n" + z.pack(b"n NOOP\r\n"))
    assert r.line().startswith("z OK")
    r.start(z)
    r.sock.settimeout(5)
    assert r.line().startswith("n OK")
    r.close()


def test_corrupt_stream_closes_only_that_connection(imap):
    deliver(imap, MSG)
    other = ZRaw(imap.ports["imaps"], tls=True)
    other.login()
    other.compress()
    bad = ZRaw(imap.ports["imaps"], tls=True)
    bad.login()
    bad.compress()
    bad.sock.settimeout(10)
    bad.send_raw = LineClient.send
    bad.send_raw(bad, b"\xff\xff\xff\xff garbage, not deflate\r\n")
    assert bad.line() is None  # closed, no reply
    bad.close()
    wait_until(lambda: "corrupt compressed data" in imap.log(), what="the log line")
    # The server goes on: an open compressed session and a new one.
    lines, ok = other.cmd("s", "SELECT INBOX")
    assert ok.startswith("s OK") and "* 1 EXISTS" in lines
    other.close()
    m = CompressIMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(USER, PASSWORD)
    m.compress()
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_zip_bomb_is_bounded_by_the_line_limit(imap):
    """64 MiB without a newline, compressed to ~64 KiB: the line limit answers,
    the session goes on."""
    r = ZRaw(imap.ports["imaps"], tls=True)
    r.login()
    r.compress()
    bomb = r.z.out.compress(b"x1 NOOP " + b"A" * (64 * 1024 * 1024))
    bomb += r.z.out.compress(b"\r\n") + r.z.out.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 256 * 1024
    r.sock.settimeout(60)
    LineClient.send(r, bomb)
    ln = r.line()
    assert ln.startswith("x1 BAD") and "too long" in ln, ln
    _, ok = r.cmd("x2", "NOOP")
    assert ok.startswith("x2 OK")
    r.close()
