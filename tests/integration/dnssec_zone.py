"""DNSSEC test zones (dnszone.py's dnslib server is the plain one; this one
exists because DNSSEC needs real signatures and a real authoritative server):
a DNSSEC-signed test zone served by NSD from
Debian, on a free loopback port, with zones signed by ldns-signzone (Debian's
ldnsutils). Wharf's resolver is pointed at it with dns_resolver and trusts
the signed zones' keys through dns_trust_anchor_file, so DNSSEC validation
(secure, insecure, bogus) is real and nothing touches live DNS.

    with SignedZones(tmpdir) as dns:
        dns.add_zone("dane.test", records, sign=True)
        dns.add_zone("plain.test", records, sign=False)
        dns.start()
        dns.resolver       # "127.0.0.1@PORT" for dns_resolver
        dns.trust_anchors  # a file for dns_trust_anchor_file

records are zone-file lines relative to the zone ("mx A 127.0.0.1").
`corrupt` names an owner whose RRSIG of the given type is broken after
signing, to make that answer bogus.
"""
import hashlib
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def have_tools():
    return Path(NSD).exists() and shutil.which("ldns-signzone") and shutil.which("ldns-keygen")


def spki_sha256(cert_pem_path):
    """The SHA-256 of a certificate's SubjectPublicKeyInfo, hex (TLSA x 1 1)."""
    der = subprocess.run(["openssl", "x509", "-in", str(cert_pem_path), "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der,
                          check=True, capture_output=True).stdout
    return hashlib.sha256(spki).hexdigest()


def cert_sha256(cert_pem_path):
    """The SHA-256 of a whole certificate (DER), hex (TLSA x 0 1)."""
    der = subprocess.run(["openssl", "x509", "-in", str(cert_pem_path), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def query_soa(port, zone, timeout=0.5):
    """True when the server on port answers a SOA query for zone."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in zone.split(".")) + b"\0"
    pkt = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except OSError:
            return False
    return len(data) >= 12 and data[:2] == b"\x12\x34" and (data[3] & 0x0F) == 0


class SignedZones:
    def __init__(self, tmpdir):
        if not have_tools():
            pytest.skip("nsd and ldnsutils are not installed")
        self.dir = Path(tmpdir) / "dns"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.zones = []
        self.anchors = []
        self.proc = None

    @property
    def resolver(self):
        return f"127.0.0.1@{self.port}"

    @property
    def trust_anchors(self):
        return str(self.dir / "anchors.key")

    def add_zone(self, name, records, sign=True, corrupt=()):
        lines = [f"$ORIGIN {name}.", "$TTL 300",
                 f"@ SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300",
                 f"@ NS ns.{name}.", "ns A 127.0.0.1"] + list(records)
        zf = self.dir / f"{name}.zone"
        zf.write_text("\n".join(lines) + "\n")
        served = zf.name
        if sign:
            key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name],
                                 cwd=self.dir, check=True, capture_output=True,
                                 text=True).stdout.strip()
            subprocess.run(["ldns-signzone", "-n", zf.name, key], cwd=self.dir, check=True,
                           capture_output=True)
            served = zf.name + ".signed"
            self.anchors.append((self.dir / f"{key}.key").read_text().strip())
            for owner, rtype in corrupt:
                self._corrupt(self.dir / served, f"{owner}.{name}.", rtype)
        self.zones.append((name, served))

    @staticmethod
    def _corrupt(path, owner, rtype):
        """Flips one character of the signature of owner's RRSIG over rtype."""
        out, done = [], False
        for line in path.read_text().splitlines():
            f = line.split()
            if (not done and len(f) > 5 and f[0].lower() == owner.lower() and f[3] == "RRSIG"
                    and f[4] == rtype):
                sig = f[-1]
                f[-1] = sig[:8] + ("A" if sig[8] != "A" else "B") + sig[9:]
                line, done = "\t".join(f), True
            out.append(line)
        assert done, f"no RRSIG {rtype} for {owner}"
        path.write_text("\n".join(out) + "\n")

    def start(self):
        (self.dir / "anchors.key").write_text("\n".join(self.anchors) + "\n")
        conf = [
            "server:", f"  ip-address: 127.0.0.1@{self.port}", "  username: \"\"",
            "  chroot: \"\"", f"  zonesdir: \"{self.dir}\"", "  database: \"\"",
            f"  pidfile: \"{self.dir}/nsd.pid\"", f"  xfrdfile: \"{self.dir}/xfrd.state\"",
            f"  zonelistfile: \"{self.dir}/zone.list\"", f"  logfile: \"{self.dir}/nsd.log\"",
            "  server-count: 1", "  verbosity: 1",
            "remote-control:", "  control-enable: no",
        ]
        for name, served in self.zones:
            conf += ["zone:", f"  name: {name}", f"  zonefile: \"{served}\""]
        (self.dir / "nsd.conf").write_text("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([NSD, "-d", "-c", str(self.dir / "nsd.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not all(query_soa(self.port, z) for z, _ in self.zones):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.dir / "nsd.log"
                raise RuntimeError("nsd did not start: " +
                                   (log.read_text() if log.exists() else "no log"))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
