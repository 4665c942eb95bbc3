"""Mail flowing through the organization (doc/routing.md, "Mail for users homed on another
server"): six wharfd on 127.0.0.2-.7 in four routing groups, a cheap way A-B-D and a dear
way A-C-D, and bob homed on d2. Mail sent to a2 goes a2 -> a1 (rg-a's bridgehead) -> b1 ->
d1 (rg-d's bridgehead) -> d2 by the organization's routes; with b1 killed it goes over c1;
with no route it waits in the queue. Every Message-ID reaches bob's INBOX exactly once.
Every wait polls against a deadline; the only sleep paces the sender at 20 msg/s.
"""
import json
import mailbox
import re
import shutil
import smtplib
import tempfile
import threading
import time
from pathlib import Path

from conftest import wait_until
from orgharness import SIX_LAYOUT, converged, make_org, path_is, route_to, routes
from smtp_helpers import spool_ids

# a1, a2 in rg-a; b1 in rg-b; c1 in rg-c; d1, d2 in rg-d. Connectors both ways:
#   A -ab(1)- B -bd(1)- D       and       A -ac(2)- C -cd(2)- D
LAYOUT = SIX_LAYOUT
CONNECTORS = [("ab", "rg-a", "rg-b", 1, "a1", "b1"), ("ba", "rg-b", "rg-a", 1, "b1", "a1"),
              ("bd", "rg-b", "rg-d", 1, "b1", "d1"), ("db", "rg-d", "rg-b", 1, "d1", "b1"),
              ("ac", "rg-a", "rg-c", 2, "a1", "c1"), ("ca", "rg-c", "rg-a", 2, "c1", "a1"),
              ("cd", "rg-c", "rg-d", 2, "c1", "d1"), ("dc", "rg-d", "rg-c", 2, "d1", "c1")]
BOB = "bob@example.test"
# each its own name in Received: fields ("by b1.example.test"), d2 knows "d2" means itself
HOST_OF = {name: host for name, _, host in LAYOUT}
SERVER_EXTRA = {name: {"myhostname": f"{name}.example.test"} for name, _, _ in LAYOUT}
SERVER_EXTRA["d2"]["home_server_names"] = "d2"
# a2 (where the test sends) retries only after 30 s: mail waiting there for a route
# leaves when the routes change, not at a retry (doc/routing.md, "Queues")
SERVER_EXTRA["a2"].update(mta_retry_min="30s", mta_retry_max="30s")


def prepare(name, w):
    """bob has an account on every server (so each accepts his mail); his home is d2."""
    w.wharf("user", "add", BOB, "--password-stdin", input=b"bob-secret-1\n")
    if name != "d2":
        w.wharf("user", "home", BOB, "d2")


def delivered(w):
    """Deliveries to bob's INBOX w has logged (a copy the route id made redundant included):
    read from the log, cheap to poll; count() then says what the mailbox holds."""
    return w.log().count(f"to=<{BOB}>, relay=local")


def count(w):
    r = w.wharf("mailbox", "stats", BOB, "--json", check=False)
    return json.loads(r.stdout)["messages"] if r.returncode == 0 else 0


def inbox(w, tmp_path):
    """bob's INBOX on w as email.message objects, exported in one `wharf export mbox`
    (which runs as the wharf user: into a directory it may write)."""
    d = Path(tempfile.mkdtemp(prefix="wharf-export-"))
    d.chmod(0o777)
    out = d / "inbox"
    w.wharf("export", "mbox", BOB, str(out))
    files = [out] if out.is_file() else sorted(p for p in out.rglob("*") if p.is_file())
    msgs = []
    for f in files:
        msgs += list(mailbox.mbox(str(f)))
    shutil.rmtree(d, ignore_errors=True)
    return msgs


def groups_of(msg):
    """The groups the Wharf-Route fields name, top (last hop) first."""
    return [m.group(1) for v in msg.get_all("Wharf-Route", [])
            for m in [re.search(r"group=([^;\s]+)", v)] if m]


def route_ids(msg):
    return {m.group(1) for v in msg.get_all("Wharf-Route", [])
            for m in [re.search(r"id=([^;\s]+)", v)] if m}


def send(w, msgids, body=b"x\r\n"):
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
        for mid in msgids:
            data = (f"From: alice@example.test\r\nTo: {BOB}\r\nSubject: flow\r\n"
                    f"Message-ID: <{mid}>\r\n\r\n").encode() + body
            assert c.sendmail("alice@example.test", [BOB], data) == {}


def test_home_mail_through_the_organization(wharf_factory, tmp_path):
    servers, _ = make_org(wharf_factory, LAYOUT, CONNECTORS, enable=("routing", "smtp"),
                          extra={"mta_retry_min": "1s", "mta_retry_max": "2s"},
                          server_extra=SERVER_EXTRA, prepare=prepare)
    a1, a2, b1, c1, d1, d2 = (servers[n] for n in ("a1", "a2", "b1", "c1", "d1", "d2"))
    wait_until(converged(servers, path_is("a2", "rg-d", ["ab", "bd"])), 30,
               what="convergence on A-B-D")
    hop = route_to(routes(a2), "rg-d")
    assert hop["next_hop"] == "a1" and hop["next_group"] == "rg-a"  # rg-a's bridgehead first

    # 1. 500 messages (small bodies) along the cheap path, each exactly once
    n = 500
    cheap = [f"cheap-{i}@flow.test" for i in range(n)]
    threads = [threading.Thread(target=send, args=(a2, cheap[k::5])) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: delivered(d2) >= n, 80, interval=0.1, what=f"{n} deliveries on d2")
    wait_until(lambda: count(d2) >= n, 20, what=f"{n} messages in bob's INBOX on d2")
    msgs = inbox(d2, tmp_path)
    ids = [m["Message-ID"].strip("<>") for m in msgs]
    assert sorted(ids) == sorted(cheap), "not every Message-ID exactly once"
    for m in msgs:
        # the trace: rg-a left for rg-b, rg-b left for rg-d; an id from a2 kept hop to hop
        assert groups_of(m) == ["rg-b", "rg-a"], m.get_all("Wharf-Route")
        # (QUEUEID.a2.MAC: made on a2, with the MAC of the organization's route-id key)
        assert len(route_ids(m)) == 1
        assert re.fullmatch(r"[0-9A-F]+\.a2\.[0-9a-f]{16}", next(iter(route_ids(m)))), m
        received = " ".join(m.get_all("Received", []))
        by = re.findall(r"by (\w+)\.example\.test", received)
        assert by == ["d2", "d1", "b1", "a1", "a2"], received
        # each hop came from the address of the server before it (mta_source_address)
        came_from = [re.search(r"\[([0-9.]+)\]\)", r).group(1) for r in m.get_all("Received")]
        assert came_from[:4] == [HOST_OF[n] for n in ("d1", "b1", "a1", "a2")], received
    for w in (a1, a2, b1, d1):  # relayed, never stored on the way
        assert count(w) == 0

    # 2. b1 SIGKILLed while mail flows at 20 msg/s: rerouted over C within 10 s, and every
    # Message-ID exactly once after b1 is back (what b1 held is delivered then; a copy
    # a lost reply made a1 send again over C is stored once: the route id)
    flow, sent_at = [], {}
    stop = threading.Event()

    def pace():
        with smtplib.SMTP(a2.host, a2.ports["smtp"], timeout=30) as c:
            i = 0
            while not stop.is_set():
                mid = f"flow-{i}@flow.test"
                data = (f"From: alice@example.test\r\nTo: {BOB}\r\nSubject: flow\r\n"
                        f"Message-ID: <{mid}>\r\n\r\nx\r\n")
                sent_at[mid] = time.monotonic()
                assert c.sendmail("alice@example.test", [BOB], data) == {}
                flow.append(mid)
                i += 1
                time.sleep(0.05)  # the sender's pace (20 msg/s), not a wait for the server
    sender = threading.Thread(target=pace)
    sender.start()
    try:
        wait_until(lambda: len(flow) >= 40, 20, what="mail flowing")
        killed = time.monotonic()
        b1.kill_all()
        # a1 sends on over C (its log says so as each message leaves; the INBOX below
        # says which path each one took)
        over_c = f"relay={HOST_OF['c1']}[{HOST_OF['c1']}]:{c1.ports['smtp']}"
        wait_until(lambda: over_c in a1.log() and "status=sent" in a1.log().split(over_c, 1)[1],
                   10, interval=0.05, what="mail rerouted over C")
        reroute_s = time.monotonic() - killed
        wait_until(lambda: len([m for m in flow if sent_at[m] > killed]) >= 40, 20,
                   what="more mail sent after the reroute")
    finally:
        stop.set()
        sender.join()
    assert reroute_s < 10
    b1.start()
    total = n + len(flow)
    wait_until(lambda: delivered(d2) >= total, 60, interval=0.1,
               what="every message delivered once b1 is back")
    wait_until(lambda: count(d2) >= total, 60, what="every message once b1 is back")
    wait_until(lambda: not (spool_ids(b1) or spool_ids(a1) or spool_ids(a2)), 60,
               what="every queue empty")
    msgs = inbox(d2, tmp_path)
    ids = [m["Message-ID"].strip("<>") for m in msgs]
    assert sorted(ids) == sorted(cheap + flow), "a Message-ID missing or stored twice"
    # mail sent after the kill went over C (b1 came back after the sender stopped)
    late = [m for m in msgs if sent_at.get(m["Message-ID"].strip("<>"), 0) > killed + reroute_s]
    assert late and all(groups_of(m) == ["rg-c", "rg-a"] for m in late)

    # 3. no route at all (bd and cd disabled): mail waits in a2's queue, no bounce; a
    # path returns (cd enabled, after its up-hold) and it is delivered, once
    d1.wharf("org", "connector", "disable", "bd")
    d1.wharf("org", "connector", "disable", "cd")
    wait_until(lambda: all(route_to(routes(w), "rg-d").get("reachable") is False
                           for w in (a1, a2)), 20, what="rg-d unreachable")
    send(a2, ["waits@flow.test"])
    wait_until(lambda: b"no usable route in the organization" in a2.wharf("mailq").stdout, 20,
               what="the message waiting in a2's queue")
    assert "waits@flow.test" not in {m["Message-ID"].strip("<>") for m in inbox(d2, tmp_path)}
    d1.wharf("org", "connector", "enable", "cd")
    t0 = time.monotonic()
    wait_until(lambda: delivered(d2) >= total + 1 and count(d2) >= total + 1, 40,
               interval=0.1, what="the waiting message delivered")
    # cd's up-hold (2 s) and a flood, not a2's 30 s retry time: the change of routes
    # made the waiting entry due
    assert time.monotonic() - t0 < 20
    assert "the organization's routes changed: 1 queue entries waiting for them are due now" \
        in a2.log()
    msgs = inbox(d2, tmp_path)
    ids = [m["Message-ID"].strip("<>") for m in msgs]
    assert ids.count("waits@flow.test") == 1 and len(ids) == total + 1
    waited = next(m for m in msgs if m["Message-ID"] == "<waits@flow.test>")
    assert groups_of(waited) == ["rg-c", "rg-a"]
    for w in servers.values():  # nothing bounced anywhere on the way
        assert "status=bounced" not in w.log()
