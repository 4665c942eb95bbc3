"""Helpers shared by the SMTP integration tests: a raw SMTP line client (for
what smtplib refuses to send: pipelining tricks, bare LF, BDAT) and spool
inspection. Nothing here stands in for the server."""
import json
import socket
import ssl

from conftest import tls_context, wait_until


class Raw:
    """A byte-exact SMTP client over a plain (or later TLS) socket."""

    def __init__(self, port, host="127.0.0.1", tls=False, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def reply(self):
        """Reads one complete (multi-line) reply; returns (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed: " + repr(self.buf + b"".join(lines)))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines).decode("utf-8", "replace")

    def cmd(self, line: str):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""

    def closed(self, timeout=5):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def queue_dir(server):
    return server.data / "spool" / "queue"


def spool_ids(server):
    d = queue_dir(server)
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def spool_bytes(server, qid):
    return (queue_dir(server) / qid).read_bytes()


def message_bytes(server, qid):
    """The bytes of an accepted message: its spool file, or -- when the mta has
    already delivered and removed it -- the store file that holds it (found by
    its Received: line, which names the queue id)."""
    try:
        return spool_bytes(server, qid)
    except FileNotFoundError:
        pass
    marker = f" id {qid}".encode()

    def find():
        for p in (server.data / "store").rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                at = data.find(marker)
                if at >= 0:
                    return data[max(0, data.rfind(b"Received: ", 0, at)):]
        return None
    return wait_until(find, 20, what=f"message {qid} in the spool or the store")


def mailq(server):
    out = server.wharf("mailq", "--json").stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def queued_id(text):
    """The queue id from '250 2.0.0 Ok: queued as ID'."""
    assert "queued as " in text, text
    return text.rsplit("queued as ", 1)[1].strip()


def add_user(server, address, password):
    """Creates a domain and an account through the directory's CLI; False when
    the directory is not built into this tree yet (tests then skip)."""
    r = server.wharf("domain", "add", address.split("@", 1)[1], check=False)
    if b"not built yet" in r.stderr:
        return False
    r = server.wharf("user", "add", address, "--password-stdin", input=password.encode(),
                     check=False)
    if r.returncode != 0:
        r = server.wharf("user", "add", address, password, check=False)
    assert r.returncode == 0, r.stderr
    return True


def log_has(server, needle, timeout=10):
    return wait_until(lambda: needle in server.log(), timeout, what=f"log line {needle!r}")


def wait_smtp_ready(server):
    """Ready when every SMTP listener greets and wharfd reports every component running."""
    def greets():
        if server.proc.poll() is not None:
            raise AssertionError(f"wharfd exited with {server.proc.returncode}:\n{server.log()}")
        for svc in ("smtp", "submission", "smtps"):
            if svc not in server.ports:
                continue
            r = Raw(server.ports[svc], tls=svc == "smtps", timeout=2)
            try:
                if r.reply()[0] != 220:
                    return False
                r.cmd("QUIT")
            finally:
                r.close()
        return True
    wait_until(greets, 30, what="the smtp listeners to greet")
    # ... and every other component, auth included: a login before the auth
    # process listens is answered 454 (seen on a loaded machine)
    server.wait_ready()
