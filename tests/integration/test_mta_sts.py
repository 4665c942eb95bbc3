"""MTA-STS for outbound SMTP (RFC 8461), end to end: a real wharfd whose mta
reads `_mta-sts` TXT records from NSD (dnssec_zone.py, unsigned zones),
fetches the policies over HTTPS from a Python server holding a certificate
of a test CA (trusted through mta_smtp_tls_ca_file), and delivers to an
aiosmtpd STARTTLS peer (tls_peer.py):

- enforce, the MX host in the policy and in the peer's certificate:
  delivered over TLS; three messages share one policy fetch, and the
  policy is cached under DATA/mta-sts;
- enforce, the MX host in the policy but not in the certificate: deferred
  with 4.7.5, never delivered;
- enforce, the MX host not in the policy: the host is not used, 4.7.5;
- testing, a certificate that does not fit: delivered all the same;
- a policy host answering with a redirect: no policy, delivered as usual.
"""
import http.server
import re
import shutil
import ssl
import threading

import pytest

from conftest import free_port, wait_until
from dnssec_zone import SignedZones
from smtp_helpers import add_user
from test_mta_out import PW, log_lines, make_server, start, submit
from tls_peer import TlsPeer, make_certs

POLICIES = {
    "mta-sts.enf.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.enf.test\r\nmax_age: 86400\r\n",
    "mta-sts.enfbad.test": "version: STSv1\nmode: enforce\nmx: *.enfbad.test\nmax_age: 86400\n",
    "mta-sts.notlisted.test":
        "version: STSv1\nmode: enforce\nmx: other.notlisted.test\nmax_age: 86400\n",
    "mta-sts.testing.test": "version: STSv1\nmode: testing\nmx: *.testing.test\nmax_age: 86400\n",
}


class PolicyServer:
    """HTTPS on 127.0.0.1: the policy of the Host asked for, a 301 for
    mta-sts.moved.test; counts the requests per host. It also takes POSTs
    (TLS reports, test_tlsrpt.py): each kept in `posts` as (Host, path,
    Content-Type, body), answered 201."""

    def __init__(self, chain, key):
        self.requests = {}
        self.posts = []
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                with srv.lock:
                    srv.requests[host] = srv.requests.get(host, 0) + 1
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                elif host == "mta-sts.moved.test":
                    self.send_response(301)
                    self.send_header("Location", "https://elsewhere.test/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif host in POLICIES:
                    body = POLICIES[host].encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with srv.lock:
                    srv.posts.append(((self.headers.get("Host") or "").split(":")[0], self.path,
                                      self.headers.get("Content-Type"), body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(chain), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, host):
        with self.lock:
            return self.requests.get(host, 0)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sts(tmp_path):
    chain, key, _, ca = make_certs(tmp_path, ["mx.enf.test", "mx.notlisted.test"], "smtp")
    web_chain, web_key, _, _ = make_certs(tmp_path, list(POLICIES) + ["mta-sts.moved.test"], "web")
    peer = TlsPeer(chain, key)
    web = PolicyServer(web_chain, web_key)
    z = SignedZones(tmp_path)
    for d in ("enf", "enfbad", "notlisted", "testing", "moved"):
        z.add_zone(f"{d}.test", ["@ MX 10 mx", "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                                 f'_mta-sts TXT "v=STSv1; id={d}1;"'], sign=False)
    z.start()
    yield z, peer, web, ca
    z.stop()
    web.stop()
    peer.stop()


def start_sender(wharf_factory, z, peer, web, ca, extra=None):
    """a.test (alice there) sending through z's DNS to peer, policies from web,
    trusting the test CA ca."""
    settings = {"dns_resolver": z.resolver, "mta_smtp_port": str(peer.port),
                "mta_sts_https_port": str(web.port), "mta_retry_min": "1h"}
    settings.update(extra or {})
    w = make_server(wharf_factory, "w", "127.0.0.2", "a.test", settings)
    # the mta reads the CA after dropping privileges: beside its config
    cafile = w.conf.parent / "ca.pem"
    shutil.copy(ca, cafile)
    cafile.chmod(0o644)
    w.settings["mta_smtp_tls_ca_file"] = str(cafile)
    w.write_config()
    start(w)
    if not add_user(w, "alice@a.test", PW):
        pytest.skip("directory not built")
    return w


def test_policies_are_fetched_cached_and_enforced(sts, wharf_factory):
    z, peer, web, ca = sts
    w = start_sender(wharf_factory, z, peer, web, ca)
    good = ["a@enf.test", "b@enf.test", "c@enf.test", "u@testing.test", "u@moved.test"]
    bad = ["u@enfbad.test", "u@notlisted.test"]
    for rcpt in good + bad:
        submit(w, "alice@a.test", [rcpt], f"Subject: to {rcpt}\r\n\r\nhello\r\n".encode())
    got = wait_until(lambda: (lambda g: g if len(g) == len(good) else None)(peer.rcpts()), 60,
                     what="the deliveries")
    assert got["a@enf.test"] and got["b@enf.test"] and got["c@enf.test"]  # over TLS
    for rcpt in bad:
        wait_until(lambda: log_lines(w, rf"to=<{rcpt}>, .*dsn=4\.7\.5, status=deferred"), 30,
                   what=f"{rcpt} deferred")
    assert log_lines(w, r"to=<u@enfbad\.test>, .*certificate verify failed")
    assert log_lines(w, r"to=<u@notlisted\.test>, .*MTA-STS")
    assert log_lines(w, r"mta-sts enforce: MX host mx\.notlisted\.test is not in the policy")
    assert log_lines(w, r"mta-sts: moved\.test: cannot fetch the policy: HTTP status 301")
    assert set(peer.rcpts()) == set(good)
    # `wharf queue show` says the MTA-STS policy held the enfbad.test message back
    import json
    shown = [w.wharf("queue", "show", json.loads(l)["queue_id"]).stdout.decode()
             for l in w.wharf("queue", "list", "--json").stdout.splitlines() if l.strip()]
    assert any(re.search(r"^tls_policy: enfbad\.test: mta-sts enforce, certificate for "
                         r"mx\.enfbad\.test", s, re.M) for s in shown), shown
    # one fetch served all three messages for enf.test, and it is kept on disk
    assert web.count("mta-sts.enf.test") == 1
    cached = w.conf.parent / "var" / "mta-sts" / "enf.test"
    assert cached.exists() and "mode: enforce" in cached.read_text()
