"""TLS peers for outbound tests: certificates made with the openssl command
(a test CA and a leaf for the names a test needs) and an aiosmtpd server
offering STARTTLS with them, recording whether each message came over TLS.
"""
import subprocess
import threading

import pytest

from conftest import free_port


def make_certs(d, names, prefix="leaf"):
    """A CA (made once per directory) and a leaf certificate for names; the
    chain file holds the CA too (DANE-TA needs it sent). Returns (chain,
    key, leaf, ca) paths."""
    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    if not (d / "ca.pem").exists():
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Wharf Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{prefix}.key", "-out", f"{prefix}.csr", "-subj", f"/CN={names[0]}")
    (d / f"{prefix}.cnf").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    ossl("x509", "-req", "-in", f"{prefix}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{prefix}.pem", "-days", "2", "-extfile", f"{prefix}.cnf")
    chain = d / f"{prefix}-chain.pem"
    chain.write_text((d / f"{prefix}.pem").read_text() + (d / "ca.pem").read_text())
    return chain, d / f"{prefix}.key", d / f"{prefix}.pem", d / "ca.pem"


class TlsPeer:
    """An aiosmtpd server on 127.0.0.1 offering STARTTLS with the given
    certificate chain; it records each message with whether it came over TLS."""

    def __init__(self, chain, key):
        controller_mod = pytest.importorskip("aiosmtpd.controller")
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(chain), str(key))
        self.got = []  # (recipients, over TLS)
        self.lock = threading.Lock()
        peer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with peer.lock:
                    peer.got.append((list(envelope.rcpt_tos), session.ssl is not None))
                return "250 2.0.0 queued"

        self.port = free_port()
        self.controller = controller_mod.Controller(Handler(), hostname="127.0.0.1",
                                                    port=self.port, tls_context=ctx)
        self.controller.start()

    def rcpts(self):
        with self.lock:
            return {r: tls for rs, tls in self.got for r in rs}

    def stop(self):
        self.controller.stop()
