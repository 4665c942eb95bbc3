"""bench/nntp: Wharf against INN 2.7 on the same machine, in the same run.

Started by bench/nntp/run (which builds build-bench and the loader). Both
servers carry comp.wharf.dev and take the loader's address as a feed peer.
Figures: POST/s over 1 and CONNS connections, ARTICLE/s by a plain client
(one command at a time) over 1 and CONNS connections, and TAKETHIS/s of a
streaming feed (window 64) on one connection. Each figure is the median of
ROUNDS rounds, the two servers measured one after the other in each round.
With WHARF_BASELINE=<another build directory> (e.g. main's build-bench), a
third server from that build is measured in the same rounds ("base"), for an
A/B in one run. Each row also gives the CPU time the server's processes used
per operation (user + system, from /proc; INN: innd and its nnrpd), which the
other engineers' load moves less than the rates. Last, "POST in turn": one
connection to each server, and each server's POST followed by the next
server's (the order reversed every other time), PER POSTs each: every server
meets the same moments of the machine's load, which the rows above (one
server for seconds, then the next) cannot promise on a shared machine; rate
= 1 / mean latency of a POST (POST, 340, article, 240) as this client sees
it, with the median latency. After each of its rows a
Wharf is given time to finish the full-text indexing it defers while the
store is busy (its mta's `text_index_behind`, up to 60 s) before its CPU is
read and the next server is measured: that work is in Wharf's CPU per
operation, and it does not run while the others are measured.
With INN_SYNC=<innsync.so> (bench/nntp/innsync.c, built by bench/nntp/run), a
second innd ("innsync") runs with that library preloaded: it fdatasyncs each
article file of its spool before closing it, i.e. INN with the one sync per
article that Wharf makes before it answers (INN itself syncs nothing).
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

import conftest  # noqa: E402
from conftest import WharfServer  # noqa: E402  (the harness of the tests, on build-bench)
from innpeer import Inn  # noqa: E402

LOADER, CONNS, PER, READS, ROUNDS = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                     int(sys.argv[4]), int(sys.argv[5]))
GROUP = "comp.wharf.dev"
BASELINE = os.environ.get("WHARF_BASELINE")
INN_SYNC = os.environ.get("INN_SYNC")
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pgid):
    """CPU (user + system, own and waited-for children) of the processes in
    process group pgid, or of innd and nnrpd when pgid is None."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()
        if (comm in ("innd", "nnrpd")) if pgid is None else int(f[2]) == pgid:
            total += sum(int(x) for x in f[11:15])
    return total / HZ


def settle(server):
    """Waits until a Wharf's mta has indexed what it deferred while the load ran
    (a build without text_index_behind reports 0: no wait)."""
    if server is None:
        return
    deadline = time.monotonic() + 60
    while server.worker_count("mta", "text_index_behind") and time.monotonic() < deadline:
        time.sleep(0.1)


def article(tag, i):
    """The loader's 4 KiB article (bench/nntp/nntpload.c), dot-terminated."""
    head = (f"Path: load.bench!not-for-mail\r\nFrom: load@bench.test\r\nNewsgroups: {GROUP}\r\n"
            f"Subject: load {i}\r\nDate: Sat, 05 Dec 2026 20:00:00 +0000\r\n"
            f"Message-ID: <{tag}.{i}@bench.test>\r\n\r\n")
    while len(head) < 4096 - 80:
        head += "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU\r\n"
    return (head + ".\r\n").encode()


class Poster:
    """One reader connection that POSTs one article at a time and times it."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")
        assert self.f.readline()[:1] == b"2"
        self.sock.sendall(b"MODE READER\r\n")
        assert self.f.readline()[:1] == b"2"

    def post(self, data):
        t = time.perf_counter()
        self.sock.sendall(b"POST\r\n")
        assert self.f.readline().startswith(b"340")
        self.sock.sendall(data)
        line = self.f.readline()
        assert line.startswith(b"240"), line
        return time.perf_counter() - t


def in_turn(servers, count):
    """POST over one connection to each server in turn: {name: [latency, ...]}."""
    posters = {name: Poster(port) for name, port in servers.items()}
    lat = {name: [] for name in servers}
    order = list(servers)
    for i in range(count):
        for name in (order if i % 2 == 0 else order[::-1]):
            lat[name].append(posters[name].post(article(f"turn.{name}", i)))
    for p in posters.values():
        p.sock.close()
    return lat


def load(port, mode, conns, count, tag=""):
    out = subprocess.run([LOADER, "127.0.0.1", str(port), mode, str(conns), str(count), GROUP,
                          tag], capture_output=True, text=True, check=True).stdout
    fields = dict(kv.split("=") for kv in out.split())
    assert int(fields["ops"]) == conns * count, f"{mode} on {port}: {out}"
    return float(fields["rate"])


def run(base, wharfs, inns):
    """The servers (appended to wharfs and inns as they start), then the rounds."""
    servers, groups, wharf_of = {}, {}, {}
    for name in ["wharf"] + (["base"] if BASELINE else []):
        if name == "base":
            build = Path(BASELINE)
            conftest.WHARFD = build / "src" / "supervisor" / "wharfd"
            conftest.WHARF = build / "src" / "cli" / "wharf"
        (base / name).mkdir()
        (base / name).chmod(0o755)
        wharf = WharfServer(base / name, enable={"nntp"}, extra={
            "nntp_feed_peers": "127.0.0.1/32", "nntp_max_connections_per_ip": "1000",
            "workers": "0"})  # one worker per core, as installed (the tests use 1)
        wharfs.append(wharf)
        wharf.start()
        wharf.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
        wharf.wharf("public", "add", "News/dev")
        wharf.wharf("acl", "set", "#public", "News/dev", "anyone", "lrp")
        servers[name] = wharf.ports["nntp"]
        wharf_of[name] = wharf
        groups[name] = wharf.proc.pid
    inn = Inn()
    inns.append(inn)
    inn.start()
    servers["inn"] = inn.port
    groups["inn"] = None
    if INN_SYNC:
        synced = Inn()
        synced.env["LD_PRELOAD"] = INN_SYNC
        inns.append(synced)
        synced.start()
        servers["innsync"] = synced.port
        groups["innsync"] = synced.proc.pid  # its process group: runuser, innd, nnrpd
        groups["inn"] = inn.proc.pid
    rows = [("POST/s, 1 connection", "post", 1, PER),
            (f"POST/s, {CONNS} connections", "post", CONNS, PER // CONNS),
            ("ARTICLE/s, 1 connection", "article", 1, READS),
            (f"ARTICLE/s, {CONNS} connections", "article", CONNS, READS),
            ("TAKETHIS/s, 1 streaming feed", "takethis", 1, PER)]
    rates = {(r[0], s): [] for r in rows for s in servers}
    cpu = {(r[0], s): [] for r in rows for s in servers}
    for rnd in range(ROUNDS):
        for title, mode, conns, count in rows:
            for name, port in servers.items():
                before = cpu_seconds(groups[name])
                rate = load(port, mode, conns, count, f"r{rnd}{mode}{conns}")
                settle(wharf_of.get(name))
                ms = (cpu_seconds(groups[name]) - before) * 1000 / (conns * count)
                rates[(title, name)].append(rate)
                cpu[(title, name)].append(ms)
                print(f"round {rnd + 1}: {title:32} {name:5} {rate:9.0f}/s"
                      f"  cpu {ms:5.2f} ms/op  load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\nsummary (median of {ROUNDS}; 4 KiB articles; loopback, plaintext; "
          "rate/s, then CPU ms per operation):")
    names = list(servers)
    peers = [n for n in names if n.startswith("inn")]
    ours = [n for n in names if not n.startswith("inn")]
    ratios = [(n, p) for p in peers for n in ours]
    print(f"  {'':32}" + "".join(f" {n:>9}" for n in names) +
          "".join(f" {n + '/' + p:>13}" for n, p in ratios) +
          "".join(f" {n + ' cpu':>9}" for n in names))
    for title, *_ in rows:
        med = {n: statistics.median(rates[(title, n)]) for n in names}
        print(f"  {title:32}" + "".join(f" {med[n]:9.0f}" for n in names) +
              "".join(f" {med[n] / med[p]:12.2f}x" for n, p in ratios) +
              "".join(f" {statistics.median(cpu[(title, n)]):9.2f}" for n in names))
    lat = in_turn(servers, PER)
    for w in wharf_of.values():
        settle(w)
    rate = {n: 1 / statistics.mean(lat[n]) for n in names}
    print(f"\nPOST in turn ({PER} each, one connection per server, load "
          f"{os.getloadavg()[0]:.1f}): 1/mean latency, then median latency in ms:")
    print(f"  {'POST/s, 1 connection, in turn':32}" + "".join(f" {rate[n]:9.0f}" for n in names) +
          "".join(f" {rate[n] / rate[p]:12.2f}x" for n, p in ratios) +
          "".join(f" {statistics.median(lat[n]) * 1000:9.2f}" for n in names))


def main():
    base = Path(subprocess.run(["mktemp", "-d", "/tmp/wharf-bench-nntp-XXXXXX"],
                               capture_output=True, text=True, check=True).stdout.strip())
    base.chmod(0o755)
    wharfs, inns = [], []
    try:
        run(base, wharfs, inns)
    finally:  # also when a server fails to start: none is left running
        for i in inns:
            i.cleanup()
        for wharf in wharfs:
            wharf.stop()
            wharf.kill_all()
        shutil.rmtree(base, ignore_errors=True)


main()
