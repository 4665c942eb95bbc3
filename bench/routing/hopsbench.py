"""bench/routing/hops: relaying through a three-hop path, Wharf's organization against
Postfix with static transport maps.

Started by bench/routing/run --hops (which builds build-bench). Same machine, same run,
same load generator and sink as bench/relay (Postfix's smtp-source and smtp-sink):
smtp-source sends N messages of 4 KiB over 20 connections to the first hop, the mail
for relay.test goes hop 1 -> hop 2 -> hop 3 -> smtp-sink.

- Wharf: three wharfd in an organization of three routing groups (h1 | h2 | h3,
  connectors h1>h2, h2>h3 of cost 1, an address space relay.test on h3 with the sink
  as smart host), the organization made by the tests' own make_org: each hop reads
  the route from the routing table, adds its route trace; h3 removes it.
- Postfix: three Postfix instances, each with
  `transport_maps = inline:{relay.test=smtp:[127.0.0.1]:NEXT}` (bench/relay's Postfix).

"relayed" = N divided by the time from the start of smtp-source to the last message
the sink received; every message must reach the sink exactly once (distinct queue ids of
the last hop) and every queue must be empty, else the bench stops with an error.
"""
import importlib.util
import subprocess
import sys
import tempfile
from importlib.machinery import SourceFileLoader
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest import WharfServer, wait_until  # noqa: E402  (the tests' harness, on build-bench)
from orgharness import converged, make_org, path_is  # noqa: E402

_loader = SourceFileLoader("relay_bench", str(ROOT / "bench/relay/run"))
_spec = importlib.util.spec_from_loader("relay_bench", _loader)
relay = importlib.util.module_from_spec(_spec)
_loader.exec_module(relay)  # Sink, Postfix, measure (and bench/smtp's helpers)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
LAYOUT = [("h1", "rg-a", "127.0.0.1"), ("h2", "rg-b", "127.0.0.1"), ("h3", "rg-c", "127.0.0.1")]
CONNECTORS = [("ab", "rg-a", "rg-b", 1, "h1", "h2"), ("ba", "rg-b", "rg-a", 1, "h2", "h1"),
              ("bc", "rg-b", "rg-c", 1, "h2", "h3"), ("cb", "rg-c", "rg-b", 1, "h3", "h2")]


class WharfPath:
    name = "wharf"

    def __init__(self, base, sink_port):
        def factory(name, host, enable, extra):
            (base / name).mkdir()
            (base / name).chmod(0o755)
            return WharfServer(base / name, host=host, enable=enable, extra=extra)
        extra = {"mynetworks": "127.0.0.0/8", "workers": "2",
                 "smtp_max_connections_per_ip": "100000"}
        hosts = {n: {"myhostname": f"{n}.example.test"} for n, _, _ in LAYOUT}
        self.servers, _ = make_org(
            factory, LAYOUT, CONNECTORS, enable=("routing", "smtp"), extra=extra,
            server_extra=hosts,
            spaces=[("out", "rg-c", relay.RELAY_DOMAIN, 1, "h3", f"127.0.0.1:{sink_port}")])
        wait_until(converged(self.servers, path_is("h1", relay.RELAY_DOMAIN, ["ab", "bc", "out"])),
                   60, what="the organization's route to relay.test")
        self.port = self.servers["h1"].ports["smtp"]

    def queue_empty(self):
        return all(not any((w.data / "spool/queue").iterdir()) for w in self.servers.values())

    def roots(self):
        return [w.proc.pid for w in self.servers.values()]

    def stop(self):
        for w in self.servers.values():
            w.stop()
            w.kill_all()


class PostfixPath:
    name = "postfix"

    def __init__(self, base, sink_port):
        self.hops = []
        nxt = sink_port
        for i in (3, 2, 1):  # the last hop first: each relays to the one after it
            d = base / f"pf{i}"
            d.mkdir()
            p = relay.Postfix(d, nxt)
            # its own name: Postfix refuses mail that "loops back to myself"
            relay.sh("postconf", "-c", str(p.pf), "-e", f"myhostname=pf{i}.example.test")
            relay.sh("postfix", "-c", str(p.pf), "reload", stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
            self.hops.insert(0, p)
            nxt = p.port
        self.port = self.hops[0].port

    def queue_empty(self):
        return all(p.queue_empty() for p in self.hops)

    def roots(self):
        return [r for p in self.hops for r in p.roots()]

    def stop(self):
        for p in self.hops:
            p.stop()


def main():
    relay.smtpbench.ensure_peers()
    base = Path(tempfile.mkdtemp(prefix="wharf-bench-hops-"))
    base.chmod(0o755)
    sink = relay.Sink(base, relay.free_port())
    paths = []
    try:
        paths.append(WharfPath(base, sink.port))
        paths.append(PostfixPath(base, sink.port))
        res = {p.name: relay.measure(p, sink, p.name, N, 20, None) for p in paths}
    finally:
        for p in paths:
            p.stop()
        subprocess.run(["rm", "-rf", str(base)])
    (wa, wr, wc), (pa, pr, pc) = res["wharf"], res["postfix"]
    print(f"three hops, 4 KiB, 20 connections, n={N}: relayed wharf {wr:.0f}/s  postfix "
          f"{pr:.0f}/s  ratio {wr / pr:.2f}   accepted wharf {wa:.0f}/s, postfix {pa:.0f}/s   "
          f"CPU per message (three hops) wharf {wc:.2f} ms, postfix {pc:.2f} ms")


if __name__ == "__main__":
    main()
