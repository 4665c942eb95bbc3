"""An authoritative DNS server for the tests: one zone table served over UDP
(and TCP, for TXT answers that do not fit 512 bytes) on a free loopback port,
with Debian's python3-dnslib. Wharf is pointed at it with
dns_resolver=127.0.0.1@PORT (src/base/options.def); nothing in the tests
touches live DNS.

The zone is a dict {(name, TYPE): [values]} that a test may change while the
server runs: A/AAAA take an address, MX a (preference, host) pair, TXT a str
(split into 255-byte character-strings) or a list of str (one character-string
each), CNAME a host. Names in `servfail` answer SERVFAIL (a temporary
error), names in `drop` are never answered (a timeout); names with no record
of any type answer NXDOMAIN, others NOERROR with no answer (NODATA). Every query is recorded in `queries` as (name, TYPE).
"""
import socket
import socketserver
import threading

import pytest


class DnsServer:
    def __init__(self, zone=None, servfail=(), extra_names=(), drop=()):
        import dnslib  # noqa: F401 -- python3-dnslib (DEPS_TEST)
        self.zone = dict(zone or {})
        self.servfail = set(servfail)
        self.drop = set(drop)  # names never answered (a server that times out)
        self.extra_names = set(extra_names)
        self.queries = []
        server = self

        class TcpHandler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    n = int.from_bytes(self.request.recv(2), "big")
                    data = b""
                    while len(data) < n:
                        chunk = self.request.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    a = server.answer(data, tcp=True)
                    if a is not None:
                        self.request.sendall(len(a).to_bytes(2, "big") + a)
                except OSError:
                    pass

        socketserver.TCPServer.allow_reuse_address = True
        # one port number for UDP and TCP (resolvers fall back to TCP on the same port, and
        # so do the tests' own lookups): a UDP port whose number another process holds over
        # TCP is given back and another one tried
        for _ in range(100):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), TcpHandler)
                break
            except OSError:
                self.udp.close()
        else:
            raise RuntimeError("no port free over both UDP and TCP")
        self.tcp.daemon_threads = True
        threading.Thread(target=self.tcp.serve_forever, daemon=True).start()
        threading.Thread(target=self._serve_udp, daemon=True).start()

    @property
    def resolver(self):
        """The value for Wharf's dns_resolver option."""
        return f"127.0.0.1@{self.port}"

    def exists(self, name):
        return name in self.extra_names or any(n == name for n, _ in self.zone)

    def answer(self, data, tcp=False):
        import dnslib
        q = dnslib.DNSRecord.parse(data)
        name = str(q.q.qname).rstrip(".").lower()
        qtype = dnslib.QTYPE[q.q.qtype]
        self.queries.append((name, qtype))
        if name in self.drop:
            return None
        a = q.reply()
        a.header.aa = 1
        if name in self.servfail:
            a.header.rcode = dnslib.RCODE.SERVFAIL
            return a.pack()
        if not self.exists(name):
            a.header.rcode = dnslib.RCODE.NXDOMAIN
        cname = self.zone.get((name, "CNAME"))
        if cname and qtype != "CNAME":
            a.add_answer(dnslib.RR(name, dnslib.QTYPE.CNAME, rdata=dnslib.CNAME(cname[0]), ttl=60))
            name = cname[0].rstrip(".").lower()
        for v in list(self.zone.get((name, qtype), [])):
            if qtype == "MX":
                rd = dnslib.MX(v[1], v[0])
            elif qtype == "A":
                rd = dnslib.A(v)
            elif qtype == "AAAA":
                rd = dnslib.AAAA(v)
            elif qtype == "TXT":
                if isinstance(v, str):
                    b = v.encode()
                    parts = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
                else:
                    parts = [p.encode() for p in v]
                rd = dnslib.TXT(parts)
            elif qtype == "CNAME":
                rd = dnslib.CNAME(v)
            else:
                continue
            a.add_answer(dnslib.RR(name, q.q.qtype, rdata=rd, ttl=60))
        packed = a.pack()
        if not tcp and len(packed) > 512 and not q.ar:
            # no EDNS0: truncated, the client retries over TCP (RFC 1035 4.2.1)
            t = q.reply()
            t.header.tc = 1
            return t.pack()
        return packed

    def _serve_udp(self):
        while True:
            try:
                data, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            try:
                a = self.answer(data)
                if a is not None:
                    self.udp.sendto(a, peer)
            except Exception:  # a malformed query: no answer, like a real server
                pass

    def close(self):
        self.udp.close()
        self.tcp.shutdown()
        self.tcp.server_close()


@pytest.fixture
def dns_server():
    """An empty zone; the test fills dns_server.zone."""
    pytest.importorskip("dnslib")
    s = DnsServer()
    yield s
    s.close()
