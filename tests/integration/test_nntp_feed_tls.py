"""Feeds to news servers named by host name, over nntps:// with the peer's
certificate checked (nntp_feed_to, nntp_feed_tls_ca_file, doc/nntp.md).

Two Wharfs: one feeds comp.wharf.* to the other, which listens on nntps with a
certificate for peer.test. The tests' DNS server (dnszone.py) answers the
names; the feeding side trusts the certificate through nntp_feed_tls_ca_file.
A second entry reaches the same server under a name its certificate does not
carry, and a third names a host with no address: neither gets an article, and
each says why in `wharf status` and the log.
"""
import warnings

import pytest

from conftest import self_signed, wait_until
from dnszone import dns_server  # noqa: F401 (the fixture)
from innpeer import holds

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def peer_cert(tmp_path):
    cert, key = self_signed(tmp_path / "peer.key", tmp_path / "peer.pem", "peer.test",
                            "DNS:peer.test")
    cert.chmod(0o644)
    key.chmod(0o644)
    tmp_path.chmod(0o755)
    return cert, key


def groups(w):
    w.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    w.wharf("public", "add", "News/dev")
    w.wharf("acl", "set", "#public", "News/dev", "anyone", "lrp")


def test_feed_by_host_name_over_checked_tls(wharf_factory, tmp_path, dns_server):
    cert, key = peer_cert(tmp_path)
    peer = wharf_factory("peer", enable={"nntp", "nntps"}, extra={
        "tls_cert_file": str(cert), "tls_key_file": str(key),
        "nntp_feed_peers": "127.0.0.1/32"}).start()
    groups(peer)
    port = peer.ports["nntps"]
    dns_server.zone[("peer.test", "A")] = ["127.0.0.1"]
    dns_server.zone[("alias.test", "A")] = ["127.0.0.1"]  # the same server, not its name
    feeder = wharf_factory("feeder", enable={"nntp"}, extra={
        "dns_resolver": dns_server.resolver, "nntp_feed_tls_ca_file": str(cert),
        "nntp_feed_retry_min": "200ms", "nntp_feed_retry_max": "1s", "nntp_feed_timeout": "5s",
        "nntp_feed_to": f"peer.test=nntps://peer.test:{port}/comp.wharf.*, "
                        f"alias.test=nntps://alias.test:{port}/comp.wharf.*, "
                        f"gone.test=nntp://gone.test:{peer.ports['nntp']}/comp.wharf.*"}).start()
    groups(feeder)
    n = nntplib.NNTP("127.0.0.1", feeder.ports["nntp"], timeout=20)
    n.post(b"From: Alice <alice@example.test>\r\nNewsgroups: comp.wharf.dev\r\n"
           b"Subject: by name\r\nMessage-ID: <byname1@example.test>\r\n\r\nhello\r\n")
    n.quit()
    wait_until(lambda: holds(nntplib.NNTP("127.0.0.1", peer.ports["nntp"], timeout=20),
                             "<byname1@example.test>"), what="the article on the peer")
    assert ("peer.test", "A") in dns_server.queries

    def peers():
        return feeder.component("nntpfeed")["processes"][0]["status"]["peers"]
    wait_until(lambda: "certificate" in peers()["alias.test"]["last_error"]
               and "no address" in peers()["gone.test"]["last_error"],
               what="both failures in the feeder's status")
    st = peers()
    assert st["peer.test"]["sent"] == 1 and st["peer.test"]["last_error"] == ""
    assert st["alias.test"]["sent"] == 0 and st["gone.test"]["sent"] == 0
    log = feeder.log()
    assert "feed alias.test (alias.test:" in log and "the certificate of alias.test" in log, log
    assert "gone.test: no address in DNS" in log
