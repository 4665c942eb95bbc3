"""bench/nntp: Wharf against INN 2.7 on the same machine, in the same run.

Started by bench/nntp/run (which builds build-bench and the loader). Both
servers carry comp.wharf.dev and take the loader's address as a feed peer.
Figures: POST/s over 1 and CONNS connections, ARTICLE/s by a plain client
(one command at a time) over 1 and CONNS connections, and TAKETHIS/s of a
streaming feed (window 64) on one connection. Each figure is the median of
ROUNDS rounds, the two servers measured one after the other in each round.
"""
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

from conftest import WharfServer  # noqa: E402  (the harness of the tests, on build-bench)
from innpeer import Inn  # noqa: E402

LOADER, CONNS, PER, READS, ROUNDS = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                     int(sys.argv[4]), int(sys.argv[5]))
GROUP = "comp.wharf.dev"


def load(port, mode, conns, count, tag=""):
    out = subprocess.run([LOADER, "127.0.0.1", str(port), mode, str(conns), str(count), GROUP,
                          tag], capture_output=True, text=True, check=True).stdout
    fields = dict(kv.split("=") for kv in out.split())
    assert int(fields["ops"]) == conns * count, f"{mode} on {port}: {out}"
    return float(fields["rate"])


def main():
    base = Path(subprocess.run(["mktemp", "-d", "/tmp/wharf-bench-nntp-XXXXXX"],
                               capture_output=True, text=True, check=True).stdout.strip())
    base.chmod(0o755)
    (base / "w").mkdir()
    (base / "w").chmod(0o755)
    wharf = WharfServer(base / "w", enable={"nntp"}, extra={
        "nntp_feed_peers": "127.0.0.1/32", "nntp_max_connections_per_ip": "1000",
        "workers": "0"})  # one worker per core, as installed (the tests use 1)
    wharf.start()
    wharf.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    wharf.wharf("public", "add", "News/dev")
    wharf.wharf("acl", "set", "#public", "News/dev", "anyone", "lrp")
    inn = Inn().start()
    servers = {"wharf": wharf.ports["nntp"], "inn": inn.port}
    rows = [("POST/s, 1 connection", "post", 1, PER),
            (f"POST/s, {CONNS} connections", "post", CONNS, PER // CONNS),
            ("ARTICLE/s, 1 connection", "article", 1, READS),
            (f"ARTICLE/s, {CONNS} connections", "article", CONNS, READS),
            ("TAKETHIS/s, 1 streaming feed", "takethis", 1, PER)]
    rates = {(r[0], s): [] for r in rows for s in servers}
    try:
        for rnd in range(ROUNDS):
            for title, mode, conns, count in rows:
                for name, port in servers.items():
                    rate = load(port, mode, conns, count, f"r{rnd}{mode}{conns}")
                    rates[(title, name)].append(rate)
                    print(f"round {rnd + 1}: {title:32} {name:5} {rate:9.0f}", flush=True)
        print(f"\nsummary (median of {ROUNDS}; 4 KiB articles; loopback, plaintext):")
        print(f"  {'':32} {'wharf':>9} {'inn':>9} {'wharf/inn':>9}")
        for title, *_ in rows:
            w = statistics.median(rates[(title, "wharf")])
            i = statistics.median(rates[(title, "inn")])
            print(f"  {title:32} {w:9.0f} {i:9.0f} {w / i:8.2f}x")
    finally:
        inn.cleanup()
        wharf.stop()
        wharf.kill_all()
        shutil.rmtree(base, ignore_errors=True)


main()
