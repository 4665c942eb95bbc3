"""The organization and its routing engine on 691 (doc/routing.md).

Several wharfd on 127.0.0.2, .3, .4 ... form one organization with
`wharf org create` / `wharf org join`; the routing processes peer over TLS
authenticated with the org key, flood link state and the configuration, and
compute least-cost routes that `wharf routes --json` shows. Every wait polls
that output against a deadline; nothing sleeps to synchronise.
"""
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import struct
import tempfile
import time

import pytest

from conftest import tls_context, wait_until
from orgharness import (CONNECTORS, LAYOUT, TIMERS, addr, converged, make_org, org_show,  # noqa: F401
                        message, path_is, queue_hops, relay, route_id, route_to,
                        routes)
from prometheus import sample, scrape
from smtp_helpers import mailq


def test_org_config_cli(wharf_factory):
    """create, group/server/connector add with serials; bad input refused; a tampered record refused."""
    w = wharf_factory("a", host="127.0.0.2", enable=[])
    r = w.wharf("org", "create", "acme", "--server", "a1", "--group", "rg-a",
                "--address", "127.0.0.2:6691")
    key = r.stdout.decode().split()[-1]
    assert len(key) == 64
    w.wharf("org", "group", "add", "rg-b")
    w.wharf("org", "server", "add", "b1", "--group", "rg-b", "--address", "127.0.0.3:6691")
    w.wharf("org", "connector", "add", "ab", "--from", "rg-a", "--to", "rg-b", "--cost", "5",
            "--source", "a1", "--target", "b1")
    w.wharf("org", "connector", "add", "ps", "--from", "rg-b", "--space", "*.partner.test",
            "--smarthost", "127.0.0.1:2526", "--cost", "1", "--source", "b1")
    rec = org_show(w)
    assert rec["config"]["serial"] == 5
    assert [c["name"] for c in rec["config"]["connectors"]] == ["ab", "ps"]
    assert w.wharf("org", "key").stdout.decode().strip() == key
    # cost outside 1..100, a bridgehead of the wrong group, a duplicate, an unknown group
    for bad in (["connector", "add", "x", "--from", "rg-a", "--to", "rg-b", "--cost", "0",
                 "--source", "a1", "--target", "b1"],
                ["connector", "add", "x", "--from", "rg-a", "--to", "rg-b", "--cost", "101",
                 "--source", "a1", "--target", "b1"],
                ["connector", "add", "x", "--from", "rg-a", "--to", "rg-b", "--cost", "3",
                 "--source", "b1", "--target", "b1"],
                ["group", "add", "rg-a"],
                ["server", "add", "c1", "--group", "rg-zz", "--address", "127.0.0.4:6691"]):
        r = w.wharf("org", *bad, check=False)
        assert r.returncode != 0, bad
    assert org_show(w)["config"]["serial"] == 5
    w.wharf("org", "connector", "disable", "ab")
    assert org_show(w)["config"]["connectors"][0]["enabled"] is False
    # a record changed behind the MAC's back is refused
    path = w.data / "routing" / "org.json"
    path.write_text(path.read_text().replace('"cost":1', '"cost":2'))
    r = w.wharf("org", "show", check=False)
    assert r.returncode != 0 and b"MAC" in r.stderr


# ---- several servers -------------------------------------------------------

def test_converge_reroute_restart(wharf_factory):
    servers, _ = make_org(wharf_factory, LAYOUT, CONNECTORS)
    a1, b1 = servers["a1"], servers["b1"]
    # convergence: one digest everywhere, the cheap path A-B-D, the same config on all
    sts = wait_until(converged(servers, path_is("a1", "rg-d", ["ab", "bd"])), 20,
                     what="convergence on A-B-D")
    assert {st["config_serial"] for st in sts.values()} == {sts["a1"]["config_serial"]}
    r = route_to(sts["a1"], "rg-d")
    assert r["cost"] == 2 and r["next_hop"] == "b1"
    assert route_to(sts["d1"], "rg-a")["path"] == ["db", "ba"]
    # the seed peerings of `wharf org join` (every server dialled a1) end once the
    # configuration is across; a1 then peers with its connectors' bridgeheads only
    wait_until(lambda: {p["name"] for p in routes(a1)["peers"]} == {"b1", "c1"}, 20,
               what="a1's seed peerings to end")
    # each server dials from its routing_listen address, so its peers see it there
    hosts = {name: host for name, _, host in LAYOUT}
    inbound = [(n, p) for n, w in servers.items() for p in routes(w)["peers"]
               if p["direction"] == "inbound"]
    assert inbound and all(p["addr"] == hosts[p["name"]] for _, p in inbound), inbound
    # a configuration change made on one server reaches all of them
    servers["c1"].wharf("org", "connector", "add", "cx", "--from", "rg-c", "--to", "rg-b",
                        "--cost", "7", "--source", "c1", "--target", "b1")
    serial = sts["c1"]["config_serial"] + 1
    wait_until(converged(servers, lambda n, st: st["config_serial"] == serial), 20,
               what="the new configuration everywhere")
    for w in servers.values():
        assert any(c["name"] == "cx" for c in org_show(w)["config"]["connectors"])
    # an administrator disables bd (on d1): A reaches D over C; enabled again, bd is used
    # after it has been up for the up-hold (2 s with the test timers), not at once
    servers["d1"].wharf("org", "connector", "disable", "bd")
    sts = wait_until(converged(servers, path_is("a1", "rg-d", ["ac", "cd"])), 10,
                     what="reroute over C after bd was disabled")
    assert {c["name"]: c["state"] for c in sts["a1"]["connectors"]}["bd"] == "ADMIN_DOWN"
    servers["d1"].wharf("org", "connector", "enable", "bd")
    t0 = time.monotonic()
    wait_until(converged(servers, path_is("a1", "rg-d", ["ab", "bd"])), 15,
               what="A-B-D again after bd was enabled")
    assert time.monotonic() - t0 >= 1.5, "bd was used again before its up-hold"
    assert "routing: connector bd UP (was ADMIN_DOWN)" in b1.log()
    text = a1.wharf("routes").stdout.decode()
    assert "rg-d" in text and "CONNECTOR" in text and "b1" in text
    # b1 SIGKILLed: its connectors go DOWN and A reaches D over C
    b1.kill_all()
    others = {n: w for n, w in servers.items() if n != "b1"}
    sts = wait_until(converged(others, path_is("a1", "rg-d", ["ac", "cd"])), 10,
                     what="reroute over C after b1 died")
    conns = {c["name"]: c["state"] for c in sts["a1"]["connectors"]}
    assert conns["ab"] == "DOWN" and conns["ac"] == "UP"
    assert route_to(sts["a1"], "rg-b")["reachable"] is False
    assert "routing: connector ab DOWN" in servers["a1"].log()
    # b1 comes back on its saved table; ab returns only after the up-hold (damping)
    b1.start()
    sts = wait_until(converged(servers, path_is("a1", "rg-d", ["ab", "bd"])), 20,
                     what="A-B-D again after b1 came back")
    # b1 black-holed (SIGSTOP: its sockets open, nothing answered): only the dead
    # timer notices (5 s with the test timers), then A reaches D over C; woken,
    # b1 peers again and A-B-D returns after the up-hold
    os.killpg(b1.proc.pid, signal.SIGSTOP)
    try:
        wait_until(converged(others, path_is("a1", "rg-d", ["ac", "cd"])), 20,
                   what="reroute over C while b1 is black-holed")
    finally:
        os.killpg(b1.proc.pid, signal.SIGCONT)
    sts = wait_until(converged(servers, path_is("a1", "rg-d", ["ab", "bd"])), 30,
                     what="A-B-D again after b1 woke")
    # b1 restarted alone keeps the records it saved: every group's, marked stale
    b1.kill_all()
    saved = json.loads((b1.data / "routing" / "lsdb.json").read_text())  # its last table
    seqs = {g: r["seq"] for g, r in saved.items()}
    for w in servers.values():
        w.kill_all()
    b1.start()
    st = wait_until(lambda: routes(b1) if routes(b1) and routes(b1)["stale"] else None, 20,
                    what="b1 on its saved table")
    for g in ("rg-a", "rg-c", "rg-d"):
        assert st["records"][g]["seq"] == seqs[g]
    assert st["config_serial"] == sts["b1"]["config_serial"]


def master_is(group, name, term):
    """Every server checked sees name as group's master in term (and no other claim)."""
    def check(_, st):
        g = next((x for x in st["groups"] if x["name"] == group), None)
        return g is not None and g["master"] == name and g["term"] == term
    return check


def test_master_failover_and_one_master_after_a_partition(wharf_factory):
    """a1 (first of rg-a) is master; killed, a2 takes over with a higher term; a1 back does
    not take the role back; a2 black-holed (SIGSTOP), a1 claims; a2 woken steps down."""
    layout = [("a1", "rg-a", "127.0.0.2"), ("a2", "rg-a", "127.0.0.3"),
              ("b1", "rg-b", "127.0.0.4")]
    conns = [("ab", "rg-a", "rg-b", 1, "a1", "b1"), ("ba", "rg-b", "rg-a", 1, "b1", "a1"),
             ("a2b", "rg-a", "rg-b", 5, "a2", "b1"), ("ba2", "rg-b", "rg-a", 5, "b1", "a2")]
    servers, _ = make_org(wharf_factory, layout, conns, enable=("routing", "https"))
    a1, a2, b1 = servers["a1"], servers["a2"], servers["b1"]
    wait_until(converged(servers, master_is("rg-a", "a1", 1)), 20, what="a1 master of rg-a")
    m = scrape(a2)
    assert sample(m, "wharf_routing_master") == 0 and sample(m, "wharf_routing_peers") == 2
    # a1 killed: after the hold time a2, the best live candidate, claims with term 2; the
    # record it floods says which connectors still work (ab has no live source any more)
    a1.kill_all()
    others = {"a2": a2, "b1": b1}
    sts = wait_until(converged(others, master_is("rg-a", "a2", 2)), 30,
                     what="a2 to take over rg-a")
    assert next(g for g in sts["b1"]["groups"] if g["name"] == "rg-a")["members"] == ["a2"]
    assert route_to(sts["b1"], "rg-a")["path"] == ["ba2"]
    assert "routing: a2 claims the master role of rg-a, term 2" in a2.log()
    m = scrape(a2)
    assert sample(m, "wharf_routing_master") == 1
    assert sample(m, "wharf_routing_changes_total", what="master") == 1
    assert sample(m, "wharf_routing_routes", state="reachable") == 2  # rg-a itself and rg-b
    # a1 back: it follows a2 (no preemption) and becomes a member of a2's record again
    before = len(a1.log())
    a1.start()
    wait_until(converged(servers, lambda n, st: master_is("rg-a", "a2", 2)(n, st) and sorted(
        next(g for g in st["groups"] if g["name"] == "rg-a")["members"]) == ["a1", "a2"]), 30,
        what="a1 back as a member under master a2")
    assert "claims the master role" not in a1.log()[before:]
    # a2 black-holed: a1 claims with term 3; woken, a2 sees the higher term and steps down
    os.killpg(a2.proc.pid, signal.SIGSTOP)
    try:
        wait_until(converged({"a1": a1, "b1": b1}, master_is("rg-a", "a1", 3)), 40,
                   what="a1 to take over from the silent a2")
    finally:
        os.killpg(a2.proc.pid, signal.SIGCONT)
    sts = wait_until(converged(servers, master_is("rg-a", "a1", 3)), 40,
                     what="one master, a1, after the partition healed")
    assert "routing: the master of rg-a is a1" in a2.log()
    # only a1 originates rg-a's record from now on: every copy is its own
    assert {st["records"]["rg-a"]["originator"] for st in sts.values()} == {"a1"}


def test_flapping_connector_does_not_make_routes_oscillate(wharf_factory):
    """ab toggled as fast as an administrator's commands go: the route leaves it once, and
    comes back once, after it has stayed up for the up-hold (4 s on a1 here)."""
    layout = [("a1", "rg-a", "127.0.0.2"), ("b1", "rg-b", "127.0.0.3"),
              ("c1", "rg-c", "127.0.0.4")]
    conns = [("ab", "rg-a", "rg-b", 1, "a1", "b1"), ("ba", "rg-b", "rg-a", 1, "b1", "a1"),
             ("ac", "rg-a", "rg-c", 2, "a1", "c1"), ("ca", "rg-c", "rg-a", 2, "c1", "a1"),
             ("cb", "rg-c", "rg-b", 2, "c1", "b1"), ("bc", "rg-b", "rg-c", 2, "b1", "c1")]
    # a1 holds a returning connector for 4 s (routing_up_hold), long enough to be seen held
    servers, _ = make_org(wharf_factory, layout, conns,
                          server_extra={"a1": {"routing_up_hold": "4s"}})
    a1 = servers["a1"]

    def held_until():
        st = routes(a1)
        return next((c.get("held_until") for c in (st or {}).get("connectors", [])
                     if c["name"] == "ab"), None)

    def route_changes():
        return a1.component("routing")["processes"][0]["status"]["route_changes"]
    wait_until(converged(servers, path_is("a1", "rg-b", ["ab"])), 20, what="A-B direct")
    before = route_changes()
    a1.wharf("org", "connector", "disable", "ab")
    wait_until(lambda: route_to(routes(a1), "rg-b")["path"] == ["ac", "cb"], 10,
               what="the route to leave ab")
    # Up again for the time one command takes, then down: each UP is far shorter than the
    # up-hold, so none is published and the route stays where it is.
    for i in range(9):
        a1.wharf("org", "connector", "enable" if i % 2 == 0 else "disable", "ab")
    assert route_to(routes(a1), "rg-b")["path"] == ["ac", "cb"]
    # the last command enabled ab: a1, which publishes it, shows until when it holds it
    until = wait_until(held_until, 4, what="ab held on a1")
    assert time.time() * 1000 < until <= time.time() * 1000 + 4000
    assert "up again, held until" in a1.wharf("routes").stdout.decode()
    # once it has stayed up for the up-hold, the route is back
    wait_until(converged(servers, path_is("a1", "rg-b", ["ab"])), 20, what="A-B again")
    assert held_until() is None
    assert route_changes() - before == 2  # away once, back once
    assert a1.log().count("routing: connector ab UP (was ADMIN_DOWN)") == 1


# ---- bad input on 691 -------------------------------------------------------


HELLO, AUTH, UPDATE, ERROR = 600, 601, 602, 607


def frame(t, payload=b""):
    return struct.pack(">IHH", len(payload), t, 0) + payload


def field(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(b)) + b


def read_frames(sock, until_type=ERROR, timeout=10):
    """Frames until one of until_type or the connection closes: [(type, payload)]."""
    sock.settimeout(timeout)
    data, frames = b"", []
    while True:
        while len(data) >= 8:
            n, t, _ = struct.unpack(">IHH", data[:8])
            if len(data) < 8 + n:
                break
            frames.append((t, data[8:8 + n]))
            data = data[8 + n:]
            if t == until_type:
                return frames
        try:
            chunk = sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            chunk = b""
        if not chunk:
            return frames
        data += chunk


def closed(sock, timeout=10):
    """True when the server closes the connection within timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def tls_to(w):
    raw = socket.create_connection((w.host, w.ports["routing"]), timeout=10)
    return tls_context().wrap_socket(raw)


def error_code(frames):
    t, p = frames[-1]
    assert t == ERROR, frames
    n = struct.unpack(">I", p[:4])[0]
    return p[4:4 + n].decode()


def test_bad_input_on_691(wharf_factory):
    layout = LAYOUT[:2]
    servers, key = make_org(wharf_factory, layout, CONNECTORS[:2])
    a1 = servers["a1"]
    sts = wait_until(converged(servers, path_is("a1", "rg-b", ["ab"])), 20, what="convergence")
    before = {p["name"]: p["since"] for p in sts["a1"]["peers"]}
    assert before.keys() == {"b1"}
    # the routing row of `wharf ports` is live: listening, TLS from the first byte
    pm = a1.port_map()
    row = next(r for r in pm["ports"] if r["service"] == "routing")
    assert pm["live"] and row["state"] == "listening" and row["tls"] == "implicit"
    assert a1.component("routing")["state"] == "running"

    # plaintext on 691: the TLS handshake fails and the server closes
    s = socket.create_connection((a1.host, a1.ports["routing"]), timeout=10)
    s.sendall(b"EHLO plain.test\r\n")
    assert closed(s)
    s.close()
    # an oversized frame header: ERROR BAD_FRAME and a close
    s = tls_to(a1)
    s.sendall(struct.pack(">IHH", 10 * 1024 * 1024, HELLO, 0))
    assert error_code(read_frames(s)) == "BAD_FRAME"
    assert closed(s)
    s.close()
    # a short frame that never completes: closed when the handshake time runs out
    s = tls_to(a1)
    s.sendall(frame(HELLO, field("acme"))[:6])
    assert closed(s)
    s.close()
    # one byte at a time: cut when the time to authenticate runs out, not kept alive
    s = tls_to(a1)
    hello = frame(HELLO, field("acme") + field("zz9") + field(os.urandom(32)) + bytes(8))
    start = time.monotonic()
    gone = False
    for b in hello:
        try:
            s.sendall(bytes([b]))
        except (ConnectionError, ssl.SSLError):
            gone = True
            break
        time.sleep(0.2)  # the slow client under test, not a wait for the server
        if time.monotonic() - start > 8:
            break
    assert gone or closed(s, 1), "a client sending a byte at a time was never cut"
    assert time.monotonic() - start < 8
    s.close()
    # a frame of another type before HELLO, and a HELLO with a field short
    for bad in (frame(UPDATE, field("[]")), frame(HELLO, field("acme") + field("zz"))):
        s = tls_to(a1)
        s.sendall(bad)
        assert error_code(read_frames(s)) == "BAD_FRAME"
        s.close()
    # another organization
    s = tls_to(a1)
    s.sendall(frame(HELLO, field("other") + field("zz9") + field(os.urandom(32)) + field(b"")[:0]
                    + struct.pack(">Q", 0)))
    assert error_code(read_frames(s)) == "WRONG_ORG"
    s.close()
    # the right organization without its key: the proof does not verify
    s = tls_to(a1)
    s.sendall(frame(HELLO, field("acme") + field("zz9") + field(os.urandom(32))
                    + struct.pack(">Q", 0)))
    s.sendall(frame(AUTH, field(os.urandom(32))))
    frames = read_frames(s)
    assert frames[0][0] == HELLO and error_code(frames) == "AUTH_FAILED"
    assert closed(s)
    s.close()
    # the real peering was never disturbed, and a1 logged each refusal
    st = routes(a1)
    assert {p["name"]: p["since"] for p in st["peers"]} == before
    assert st["digest"] == routes(servers["b1"])["digest"]
    log = a1.log()
    for code in ("BAD_FRAME", "WRONG_ORG", "AUTH_FAILED", "TLS handshake failed"):
        assert code in log, code


# ---- an authenticated peer of our own ----------------------------------------


ACK, KEEPALIVE = 603, 604


def hkdf_expand_label(h, secret, label, context, length):
    info = struct.pack(">H", length) + bytes([len(b"tls13 " + label)]) + b"tls13 " + label \
        + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:length]


def tls13_exporter(keylog, cipher, label, length):
    """RFC 8446 7.5 from the EXPORTER_SECRET Python's keylog wrote (no context)."""
    h = hashlib.sha384 if cipher.endswith("SHA384") else hashlib.sha256
    line = [ln for ln in open(keylog).read().splitlines() if ln.startswith("EXPORTER_SECRET")][-1]
    secret = bytes.fromhex(line.split()[2])
    derived = hkdf_expand_label(h, secret, label, h(b"").digest(), h().digest_size)
    return hkdf_expand_label(h, derived, b"exporter", h(b"").digest(), length)


class AuthPeer:
    """A peer on 691 that knows the org key: HELLO, AUTH, then raw frames."""

    def __init__(self, w, key_hex, name, org="acme"):
        keylog = tempfile.mktemp(prefix="wharf-keylog-")
        ctx = tls_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.keylog_filename = keylog
        raw = socket.create_connection((w.host, w.ports["routing"]), timeout=10)
        self.s = ctx.wrap_socket(raw)
        self.buf = b""
        nonce = os.urandom(32)
        self.s.sendall(frame(HELLO, field(org) + field(name) + field(nonce)
                             + struct.pack(">Q", 0)))
        t, p = self.frame()
        assert t == HELLO, (t, p)
        n = struct.unpack(">I", p[:4])[0]
        off = 4 + n
        n2 = struct.unpack(">I", p[off:off + 4])[0]
        server = p[off + 4:off + 4 + n2]
        off += 4 + n2 + 4
        server_nonce = p[off:off + 32]
        ekm = tls13_exporter(keylog, self.s.cipher()[0], b"EXPORTER-wharf-ls", 32)
        os.unlink(keylog)
        msg = b"wharf-ls v1\0" + ekm + nonce + server_nonce + name.encode() + b"\0" \
            + server + b"\0" + b"C"
        mac = hmac.new(bytes.fromhex(key_hex), msg, hashlib.sha256).digest()
        self.s.sendall(frame(AUTH, field(mac)))
        t, p = self.frame()
        assert t == AUTH, (t, p)

    def frame(self, timeout=10):
        self.s.settimeout(timeout)
        while True:
            if len(self.buf) >= 8:
                n, t, _ = struct.unpack(">IHH", self.buf[:8])
                if len(self.buf) >= 8 + n:
                    p = self.buf[8:8 + n]
                    self.buf = self.buf[8 + n:]
                    return t, p
            chunk = self.s.recv(65536)
            if not chunk:
                return None, b""
            self.buf += chunk

    def updates(self, want, timeout=10):
        """UPDATE records received (ACKing each) until want(records) holds."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t, p = self.frame(deadline - time.monotonic())
            assert t is not None, "the server closed the peering"
            if t == UPDATE:
                recs = json.loads(p[4:])
                for r in recs:
                    self.s.sendall(frame(ACK, field(r["group"]) + struct.pack(">Q", r["seq"])))
                got += recs
                if want(got):
                    return got
        raise AssertionError(f"no such UPDATE: {got}")

    def send(self, t, payload):
        self.s.sendall(frame(t, payload))

    def keepalive(self):
        self.send(KEEPALIVE, b"")
        return True


def test_authenticated_peer_replay(wharf_factory):
    """A peer with the key replays an old record: not installed, our copy comes back."""
    servers, key = make_org(wharf_factory, LAYOUT[:2], CONNECTORS[:2])
    a1, b1 = servers["a1"], servers["b1"]
    # x1, a server of rg-a (so a1 keeps the peering), played by this test
    serial = org_show(a1)["config"]["serial"] + 1
    a1.wharf("org", "server", "add", "x1", "--group", "rg-a", "--address", "127.0.0.9:9")
    sts = wait_until(converged(servers, lambda n, st: st["config_serial"] == serial), 20,
                     what="convergence")
    before = {p["name"]: p["since"] for p in sts["a1"]["peers"]}
    rb = sts["a1"]["records"]["rg-b"]
    assert rb["seq"] >= 2
    x = AuthPeer(a1, key, "x1")
    recs = x.updates(lambda got: any(r["group"] == "rg-b" for r in got))
    current = next(r for r in recs if r["group"] == "rg-b")
    # replay an older copy of rg-b's record
    old = dict(current, seq=1, members=[], connectors=[])
    x.send(UPDATE, field(json.dumps([old])))
    back = x.updates(lambda got: any(r["group"] == "rg-b" and r["seq"] == current["seq"]
                                     for r in got))
    assert back
    # a record of rg-b not from its master (b1) is refused
    forged = dict(current, originator="x1", seq=current["seq"] + 100)
    x.send(UPDATE, field(json.dumps([forged])))
    # x1 speaks only when spoken to: keep its peering alive while waiting
    wait_until(lambda: x.keepalive() and "is not its master" in a1.log(), 10,
               what="the forged record refused")
    one_digest = converged(servers)
    st = wait_until(lambda: x.keepalive() and one_digest(), 10, what="one digest")["a1"]
    assert st["records"]["rg-b"]["seq"] == current["seq"]
    assert {p["name"]: p["since"] for p in st["peers"] if p["name"] != "x1"} == before
    assert "x1" in {p["name"] for p in st["peers"]}
    x.s.close()


# ---- the mta uses the organization's routes ------------------------------------


from test_mailauth import sink  # noqa: F401 (the aiosmtpd smart host fixture)


def test_mta_routes_address_space(wharf_factory, sink):
    """Mail for *.partner.test leaves a1 for b1 (bridgehead) and b1's smart host; with b1
    dead it waits in a1's queue (no bounce) and goes once the connector is back."""
    servers, _ = make_org(
        wharf_factory, LAYOUT[:2], CONNECTORS[:2], enable=("routing", "smtp"),
        extra={"mta_retry_min": "1s", "mta_retry_max": "2s"},
        spaces=[("ps", "rg-b", "*.partner.test", 1, "b1", f"127.0.0.1:{sink.port}")])
    a1, b1 = servers["a1"], servers["b1"]
    wait_until(converged(servers, path_is("a1", "*.partner.test", ["ab", "ps"])), 20,
               what="a route to the address space")
    relay(a1, "bob@host.partner.test", "one@routing.test")
    wait_until(lambda: any(b"one@routing.test" in m for m in sink.messages), 30,
               what="the message at the smart host")
    msg = next(m for m in sink.messages if b"one@routing.test" in m)
    assert msg.count(b"Received:") >= 2  # through a1 and b1
    # the route trace: a1 names its group when the message leaves it for rg-b
    # (test_routing_flow.py sees those fields at a home server); b1, whose connector
    # leaves the organization, sends the message on without them
    assert not [ln for ln in msg.split(b"\r\n") if ln.lower().startswith(b"wharf-route:")]
    assert msg.split(b"\r\n\r\n", 1)[1].startswith(b"over the organization")
    # exactly once at home: a message that came over the organization is stored under its
    # route id, so the copy a hop sends again after a lost 250 (same id, new queue id) is
    # not stored twice; another id is another message
    # (an id is a key only with the MAC a server of the organization gives it: a forged
    # one, or one without a MAC, is not, else it could make b1 drop a later message)
    # (and only for the message it was made for: the MAC binds the id to the message's
    # content, so a user who read the id in a stored copy cannot send another message with
    # it and make b1 drop the real one, still queued somewhere, as a copy)
    b1.wharf("user", "add", "carol@example.test", "--password-stdin", input=b"pw-carol-1\n")
    carol = "carol@example.test"
    dup = route_id(b1, "0000dup.a1", message(carol, "dup@routing.test").encode())
    forged = "0000dup.a1." + "0" * 16 if not dup.endswith("0" * 16) else "0000dup.a1.1"
    other = route_id(b1, "0000other.a1", message(carol, "other@routing.test").encode())
    for mid, rid, text in (("dup", dup, None), ("dup", dup, None), ("other", other, None),
                           ("forged", forged, None), ("bare", "0000dup.a1", None),
                           ("dup", dup, "a replay: another text under the same id")):
        relay(b1, carol, f"{mid}@routing.test",
              trace=f"Wharf-Route: org=acme; group=rg-a; id={rid}\r\n",
              **({"text": text} if text else {}))
    wait_until(lambda: b1.log().count("to=<carol@example.test>, relay=local") == 6, 20,
               what="six deliveries to carol")
    stats = json.loads(b1.wharf("mailbox", "stats", "carol@example.test", "--json").stdout)
    assert stats["messages"] == 5  # the two copies of dup once, the replay stored
    # a message that says it has been in rg-b already is not sent there again: it waits
    relay(a1, "dave@host.partner.test", "loop@routing.test",
          trace="Wharf-Route: org=acme; group=rg-b\r\n")
    wait_until(lambda: b"routing loop avoided" in a1.wharf("mailq").stdout, 20,
               what="the looping message held in a1's queue")
    assert "loop avoided: the organization routes host.partner.test to group rg-b" in a1.log()
    # b1 dies: the address space is unreachable from a1, mail waits there
    b1.kill_all()
    wait_until(lambda: route_to(routes(a1), "*.partner.test").get("reachable") is False, 10,
               what="the address space unreachable")
    relay(a1, "carol@host.partner.test", "two@routing.test")
    wait_until(lambda: b"no usable route in the organization" in a1.wharf("mailq").stdout, 20,
               what="the message waiting in a1's queue")
    assert not any(b"two@routing.test" in m for m in sink.messages)
    # the queue by next hop (doc/mta-out.md): both messages wait in the queue of the
    # unreachable space, for want of a route
    space = "unreachable:*.partner.test"
    wait_until(lambda: queue_hops(a1).get(space, {}).get("entries") == 2, 20,
               what="both messages in the unreachable space's queue")
    q = queue_hops(a1)
    assert list(q) == [space] and q[space]["recipients"] == 2
    assert all(w.startswith("no route: ") for w in q[space]["reasons"]), q
    # a second connector for the space from a1 itself, to a smart host that refuses: the
    # routes change and both entries move (the same spool entries, no copy) to its queue
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    smarthost = f"smarthost:127.0.0.1:{dead.getsockname()[1]}"
    a1.wharf("org", "connector", "add", "ps2", "--from", "rg-a", "--space", "*.partner.test",
             "--smarthost", f"127.0.0.1:{dead.getsockname()[1]}", "--cost", "5",
             "--source", "a1")
    wait_until(lambda: queue_hops(a1).get(smarthost, {}).get("entries") == 2, 20,
               what="both entries moved to the new next hop")
    q = queue_hops(a1)
    assert list(q) == [smarthost] and q[smarthost]["recipients"] == 2, q
    assert all(w.startswith("connector down: ") for w in q[smarthost]["reasons"]), q
    text = a1.wharf("queue").stdout.decode()  # the same, for people
    assert text.startswith(f"{smarthost}: 2 entries, 2 recipients\n  (connector down: "), text
    assert len(mailq(a1)) == 2  # still two entries: moved, not copied
    assert sorted(q[smarthost]["queue_ids"]) == sorted(e["queue_id"] for e in mailq(a1))
    assert all(r["next_hop"] == smarthost for e in mailq(a1) for r in e["recipients"])
    out = a1.wharf("queue", "flush", "--nexthop", smarthost).stdout.decode()
    assert out.count("flush requested") == 2, out
    assert "no entry waits" in a1.wharf("queue", "flush", "--nexthop", "mx:x.test").stdout.decode()
    a1.wharf("org", "connector", "disable", "ps2")
    wait_until(lambda: list(queue_hops(a1)) == [space], 20, what="back to the space's queue")
    dead.close()
    # b1 returns; after the up-hold the connector is used again and the message goes
    b1.start()
    wait_until(lambda: any(b"two@routing.test" in m for m in sink.messages), 40,
               what="the waiting message delivered")
    assert sum(b"two@routing.test" in m for m in sink.messages) == 1
    assert not any(b"loop@routing.test" in m for m in sink.messages)


def test_connection_limit_per_address(wharf_factory):
    """routing_max_connections_per_ip holds for addresses outside mynetworks."""
    w = wharf_factory("a", host="127.0.0.2", enable=["routing"],
                      extra=dict(TIMERS, mynetworks="192.0.2.0/24",
                                 routing_max_connections_per_ip="2"))
    w.wharf("org", "create", "acme", "--server", "a1", "--group", "rg-a", "--address", addr(w))
    w.start()
    held = [tls_to(w), tls_to(w)]
    # The third is closed (an admitted one would be too, once the dead timer ends
    # its wait for authentication, but without the refusal in the log).
    try:
        s = tls_to(w)
        s.settimeout(30)
        assert s.recv(1) == b""
        s.close()
    except (ssl.SSLError, ConnectionError):
        pass
    wait_until(lambda: "routing_max_connections_per_ip reached" in w.log(), 10,
               what="the third connection refused for the limit")
    for s in held:
        s.close()

    def admitted():
        s = tls_to(w)
        s.sendall(frame(HELLO, field("acme") + field("zz9") + field(os.urandom(32)) + bytes(8)))
        t = read_frames(s, until_type=HELLO)
        s.close()
        return t and t[0][0] == HELLO
    wait_until(admitted, 10, what="a connection admitted once the others closed")
