"""The organization's multi-server harness (doc/routing.md), shared by the routing tests.

Several wharfd on 127.0.0.2, .3, .4 ... form one organization with
`wharf org create` / `wharf org join`; every wait polls `wharf routes --json`
against a deadline, nothing sleeps to synchronise. Helpers only: no tests here.
"""
import hashlib
import hmac
import json
import smtplib


def org_show(w):
    return json.loads(w.wharf("org", "show", "--json").stdout)


TIMERS = {"routing_test_timers": "yes", "routing_up_hold": "2s"}


def routes(w):
    """What `wharf routes --json` prints: the routing process's DATA/routing/state.json
    (written by rename, so never read half-written), read here without starting a `wharf`
    process at every poll (six servers polled every 20 ms would starve them of CPU)."""
    try:
        return json.loads((w.data / "routing" / "state.json").read_text())
    except (OSError, ValueError):
        return None


def route_to(st, dest):
    return next((x for x in st["routes"] if x["dest"] == dest), None) if st else None


# The author fields a route id is bound to (nexthop_route_id_content, doc/routing.md).
ROUTE_ID_FIELDS = ("from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id",
                   "in-reply-to", "references", "mime-version", "content-type",
                   "content-transfer-encoding")


def route_id_content(data):
    """SHA-256 of the message's author fields (each occurrence, "name:raw value CRLF"),
    an empty line and the body: what a route id's MAC binds it to."""
    head, _, body = data.partition(b"\r\n\r\n")
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    h = hashlib.sha256()
    for f in fields:
        name, _, value = f.partition(b":")
        name = name.rstrip(b" \t").lower().decode()
        if name in ROUTE_ID_FIELDS:
            h.update(name.encode() + b":" + value + b"\r\n")
    h.update(b"\r\n" + body)
    return h.digest()


def route_id(w, base, data):
    """A route id as a server of the organization makes it for message data: BASE.MAC, the
    MAC of BASE and data's content under the route-id key w's routing process derives from
    the org key (doc/routing.md)."""
    key = json.loads((w.data / "routing" / "state.json").read_text())["route_id_key"]
    mac = hmac.new(bytes.fromhex(key), base.encode() + b"\n" + route_id_content(data),
                   hashlib.sha256).hexdigest()[:16]
    return f"{base}.{mac}"


def addr(w):
    return f"{w.host}:{w.ports['routing']}"


def make_org(wharf_factory, layout, connectors, enable=("routing",), extra=None,
             spaces=(), server_extra=None, prepare=None):
    """layout: [(server, group, host)]; connectors: [(name, from, to, cost, source, target)].

    The first server creates the organization and the whole configuration;
    the others join with the org key and get it over 691. server_extra: {server: {option:
    value}} on top of extra; prepare(name, w) runs on each server before it starts.
    """
    servers = {}
    for name, group, host in layout:
        # each server connects from its own address, as on a multi-homed machine: its
        # peers see (in Received: fields, logs) which server sent
        servers[name] = wharf_factory(name, host=host, enable=list(enable),
                                      extra={**TIMERS, "mta_source_address": host,
                                             **(extra or {}),
                                             **(server_extra or {}).get(name, {})})
    first, g0, h0 = layout[0]
    w0 = servers[first]
    smtp0 = ["--smtp", f"{h0}:{w0.ports['smtp']}"] if "smtp" in enable else []
    out = w0.wharf("org", "create", "acme", "--server", first, "--group", g0,
                   "--address", addr(w0), *smtp0).stdout.decode()
    key = out.split()[-1]
    groups = {g0}
    for name, group, host in layout[1:]:
        if group not in groups:
            w0.wharf("org", "group", "add", group)
            groups.add(group)
        smtp = ["--smtp", f"{host}:{servers[name].ports['smtp']}"] if "smtp" in enable else []
        w0.wharf("org", "server", "add", name, "--group", group, "--address", addr(servers[name]),
                 *smtp)
    for c in connectors:
        name, frm, to, cost, source, target = c
        w0.wharf("org", "connector", "add", name, "--from", frm, "--to", to, "--cost", str(cost),
                 "--source", source, "--target", target)
    for name, frm, pattern, cost, source, smarthost in spaces:
        w0.wharf("org", "connector", "add", name, "--from", frm, "--space", pattern,
                 "--smarthost", smarthost, "--cost", str(cost), "--source", source)
    for name, group, _ in layout[1:]:
        servers[name].wharf("org", "join", "acme", "--key", key, "--server", name,
                            "--peer", addr(w0))
    for name, w in servers.items():
        if prepare:
            prepare(name, w)
        w.start(wait=False)  # all at once, then wait for each: a start is mostly waiting
    for w in servers.values():
        w.wait_ready()
    return servers, key


def converged(servers, check=None):
    """Every server has the same digest (and check(name, state) holds for each)."""
    def ok():
        sts = {n: routes(w) for n, w in servers.items()}
        if any(st is None for st in sts.values()):
            return None
        if len({st["digest"] for st in sts.values()}) != 1:
            return None
        if check and not all(check(n, st) for n, st in sts.items()):
            return None
        return sts
    return ok


# A line of four groups with a cheap and a dear way between A and D:
#   A -ab(1)- B -bd(1)- D       and       A -ac(2)- C -cd(2)- D
LAYOUT = [("a1", "rg-a", "127.0.0.2"), ("b1", "rg-b", "127.0.0.3"),
          ("c1", "rg-c", "127.0.0.4"), ("d1", "rg-d", "127.0.0.5")]
CONNECTORS = [("ab", "rg-a", "rg-b", 1, "a1", "b1"), ("ba", "rg-b", "rg-a", 1, "b1", "a1"),
              ("bd", "rg-b", "rg-d", 1, "b1", "d1"), ("db", "rg-d", "rg-b", 1, "d1", "b1"),
              ("ac", "rg-a", "rg-c", 2, "a1", "c1"), ("ca", "rg-c", "rg-a", 2, "c1", "a1"),
              ("cd", "rg-c", "rg-d", 2, "c1", "d1"), ("dc", "rg-d", "rg-c", 2, "d1", "c1")]


# The six-server harness (issue 16): the sending group rg-a (a1 its bridgehead, a2),
# rg-b and rg-c between, the receiving group rg-d (d1 its bridgehead, d2).
SIX_LAYOUT = [("a1", "rg-a", "127.0.0.2"), ("a2", "rg-a", "127.0.0.3"),
              ("b1", "rg-b", "127.0.0.4"), ("c1", "rg-c", "127.0.0.5"),
              ("d1", "rg-d", "127.0.0.6"), ("d2", "rg-d", "127.0.0.7")]


def path_is(server, dest, path):
    def check(name, st):
        if name != server:
            return True
        r = route_to(st, dest)
        return r is not None and r.get("reachable") and r["path"] == path
    return check


def queue_hops(w):
    """w's queue by next hop (`wharf queue --json`): {next hop: {entries, recipients,
    reasons, queue_ids}}."""
    return {h["next_hop"]: h for h in json.loads(w.wharf("queue", "--json").stdout)["next_hops"]}


def message(rcpt, msgid, trace="", text="over the organization"):
    return (f"{trace}From: alice@example.test\r\nTo: {rcpt}\r\nSubject: routed\r\n"
            f"Message-ID: <{msgid}>\r\n\r\n{text}\r\n")


def relay(w, rcpt, msgid, trace="", text="over the organization"):
    body = message(rcpt, msgid, trace, text)
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=20) as c:
        c.ehlo("client.example")
        assert c.sendmail("alice@example.test", [rcpt], body) == {}
