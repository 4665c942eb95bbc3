"""The next hop (src/mta/nexthop.c) driven by its test tool
(build/src/mta/nexthop_tool) against a DNS server in this file (dnslib, from
Debian's python3-dnslib, tests/integration/dnszone.py) on a free loopback port, named by dns_resolver:
nothing here touches live DNS.

- MX records in preference order, each host's A and AAAA addresses;
- no MX: the domain's own address (implicit MX);
- null MX (RFC 7505) and a non-existent domain fail permanently;
- a DNS server failure (SERVFAIL) fails temporarily, never permanently;
- transport_routes and relayhost win over DNS, with their TLS policies;
- MX hosts that are this server (myhostname, or an address and port of
  smtp_listen) and those ranked below are skipped; this server as the best
  MX is a mail loop (5.4.6).
"""
import subprocess

import pytest

from conftest import BUILD, sanitizer_env
from dnszone import DnsServer

TOOL = BUILD / "src" / "mta" / "nexthop_tool"

ZONE = {
    ("mx.test", "MX"): [(20, "mx2.mx.test"), (10, "mx1.mx.test")],
    ("mx1.mx.test", "A"): ["127.0.0.11"],
    ("mx1.mx.test", "AAAA"): ["::1"],
    ("mx2.mx.test", "A"): ["127.0.0.12"],
    ("plain.test", "A"): ["127.0.0.13"],
    ("nullmx.test", "MX"): [(0, ".")],
    ("nullmx.test", "A"): ["127.0.0.14"],
    ("relay.test", "A"): ["127.0.0.15"],
    ("noaddr.test", "MX"): [(10, "ghost.noaddr.test")],
    ("loop.test", "MX"): [(10, "mail.self.test"), (20, "mx2.mx.test")],
    ("mail.self.test", "A"): ["127.0.0.20"],
    ("backup.test", "MX"): [(30, "mx2.mx.test"), (10, "mx1.mx.test"), (20, "me.backup.test")],
    ("me.backup.test", "A"): ["127.0.0.21"],
}


@pytest.fixture
def dns():
    pytest.importorskip("dnslib")
    s = DnsServer(ZONE, servfail={"broken.test"}, extra_names={"ghost.noaddr.test"})
    yield s.resolver, s.queries
    s.close()


def hop(resolver, *domains, opts=()):
    # this server listens elsewhere than the zone's port 25 unless a test says so
    args = [str(TOOL), "-o", f"dns_resolver={resolver}", "-o", "smtp_listen=127.0.0.1:2525"]
    for o in opts:
        args += ["-o", o]
    p = subprocess.run(args + list(domains), capture_output=True, env=sanitizer_env(), timeout=60)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and "Sanitizer" not in err and "runtime error" not in err, err
    out, res, cur = p.stdout.decode().splitlines(), {}, None
    for l in out:
        if l.startswith("  host "):
            _, name, pref, addr, port, dane = l.split()
            res[cur]["hosts"].append((name, int(pref), addr, int(port)))
            res[cur]["dane"][name] = dane.split("=", 1)[1]
        else:
            f = l.split(" ", 5)
            cur = f[0]
            res[cur] = {"status": f[1], "enh": f[2], "tls": f[3], "auth": f[4], "reason": f[5],
                        "hosts": [], "dane": {}}
    return res


def test_mx_preference_order_and_addresses(dns):
    resolver, _ = dns
    r = hop(resolver, "mx.test", "plain.test")
    assert r["mx.test"]["status"] == "ok"
    assert r["mx.test"]["hosts"] == [("mx1.mx.test", 10, "127.0.0.11", 25),
                                     ("mx1.mx.test", 10, "::1", 25),
                                     ("mx2.mx.test", 20, "127.0.0.12", 25)]
    # DANE by default, which without a DNSSEC trust anchor finds nothing secure
    assert r["mx.test"]["tls"] == "tls=dane"
    assert set(r["mx.test"]["dane"].values()) == {"none"}
    # no MX: the domain itself
    assert r["plain.test"]["hosts"] == [("plain.test", 0, "127.0.0.13", 25)]


def test_permanent_and_temporary_failures(dns):
    resolver, _ = dns
    r = hop(resolver, "nullmx.test", "nowhere.test", "broken.test", "noaddr.test")
    assert (r["nullmx.test"]["status"], r["nullmx.test"]["enh"]) == ("permfail", "5.1.10")
    assert (r["nowhere.test"]["status"], r["nowhere.test"]["enh"]) == ("permfail", "5.1.2")
    assert (r["broken.test"]["status"], r["broken.test"]["enh"]) == ("tempfail", "4.4.3")
    assert (r["noaddr.test"]["status"], r["noaddr.test"]["enh"]) == ("permfail", "5.4.4")


def test_routes_and_relayhost_win_over_dns(dns):
    resolver, queries = dns
    r = hop(resolver, "mx.test", "other.test", "sub.routed.test",
            opts=["transport_routes=mx.test=[10.0.0.5]:2525 verify, .routed.test=[relay.test]:26",
                  "relayhost=[relay.test]:587", "relayhost_auth_file=/nonexistent",
                  "mta_smtp_tls_policy=require"])
    assert r["mx.test"]["hosts"] == [("10.0.0.5", 0, "10.0.0.5", 2525)]
    assert (r["mx.test"]["tls"], r["mx.test"]["auth"]) == ("tls=verify", "auth=0")
    assert r["sub.routed.test"]["hosts"] == [("relay.test", 0, "127.0.0.15", 26)]
    assert r["other.test"]["hosts"] == [("relay.test", 0, "127.0.0.15", 587)]
    assert (r["other.test"]["tls"], r["other.test"]["auth"]) == ("tls=require", "auth=1")
    assert not any(name in ("mx.test", "other.test") for name, _ in queries)


def test_a_configured_next_hop_that_does_not_resolve_defers(dns):
    resolver, _ = dns
    r = hop(resolver, "mx.test", opts=["relayhost=[nowhere.test]:25"])
    assert (r["mx.test"]["status"], r["mx.test"]["enh"]) == ("tempfail", "4.4.3")


def test_mx_hosts_that_are_this_server(dns):
    resolver, _ = dns
    # by name: this server is the best MX of loop.test, a domain it does not serve
    r = hop(resolver, "loop.test", "mx.test", opts=["myhostname=mail.self.test"])
    assert (r["loop.test"]["status"], r["loop.test"]["enh"]) == ("permfail", "5.4.6")
    assert "mail for loop.test loops back to myself" in r["loop.test"]["reason"]
    assert r["mx.test"]["status"] == "ok"  # other domains are not affected
    # by address and port: a backup MX delivers only to the better hosts
    r = hop(resolver, "backup.test", opts=["smtp_listen=127.0.0.21:25"])
    assert r["backup.test"]["hosts"] == [("mx1.mx.test", 10, "127.0.0.11", 25),
                                         ("mx1.mx.test", 10, "::1", 25)]
    # the same address on another port is another server
    r = hop(resolver, "backup.test", opts=["smtp_listen=127.0.0.21:2526"])
    assert [h[0] for h in r["backup.test"]["hosts"]] == \
        ["mx1.mx.test", "mx1.mx.test", "me.backup.test", "mx2.mx.test"]
    # a wildcard listener on port 25 is every loopback address too
    r = hop(resolver, "mx.test", opts=["smtp_listen=*:25"])
    assert (r["mx.test"]["status"], r["mx.test"]["enh"]) == ("permfail", "5.4.6")
