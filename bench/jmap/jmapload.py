#!/usr/bin/python3
"""JMAP load generator for bench/jmap/run (Wharf against Cyrus IMAP's JMAP).

The messages, the delivery helpers and the Pss sum are bench/imap/imapload.py's
(imported, not copied), so the mail is the same as in the IMAP bench.

  jmapload.py fill-lmtp SOCKET USER COUNT SIZE PARALLEL
      The same COUNT messages as `imapload.py fill` delivered over LMTP (a
      unix socket; Cyrus's lmtpd), PARALLEL sessions, many messages each.
  jmapload.py list URL USER PASS ROUNDS
      A mail list paging the whole INBOX: for each page one request of
      Email/query (sort receivedAt descending, position, limit 50,
      calculateTotal) and Email/get by back-reference of what a list shows
      (threadId mailboxIds keywords from to subject receivedAt size preview
      hasAttachment); one warm-up round, then ROUNDS timed.
  jmapload.py text URL USER PASS ROUNDS
      Email/query {"text": "zanzibar"} (one message in 100) on the INBOX, sort
      receivedAt descending, limit 50: warm-up, then ROUNDS timed (10 queries
      each, each after an untimed keyword change on one message, so that the
      query runs afresh: Wharf keeps the last result per account state).
  jmapload.py flags URL USER PASS ROUNDS
      Email/set of keywords/$flagged on 1,000 messages (set in one round,
      cleared in the next), in requests of at most the server's
      maxObjectsInSet (and 500), one warm-up round then ROUNDS timed.
  jmapload.py push HOST PORT PATHBASE USERFMT PASS USERS CONNS PROBES DELIVER PID
      CONNS EventSource streams over TLS (types=*, closeafter=no, ping=300),
      user i % USERS, from source addresses 127.0.0.2..; each waits for its
      first event or the response header; then the summed Pss of the
      server's process tree under PID (a number or a pid file); then PROBES
      deliveries (wharf:SOCKET or lmtp:SOCKET, imapload's) to the users in
      turn, timing from the start of the delivery to the first `state` event
      on every stream of that user. PUSH_HOLD=SECONDS in the environment
      keeps the streams up that long at the end (to profile the server).
  jmapload.py summary < OUTPUT
      Medians and Wharf/Cyrus ratios from lines prefixed "wharf " or "cyrus ".
URL is the server's https origin (https://127.0.0.1:PORT); both servers get the
same requests over TLS with keep-alive (http.client, one connection). Each
timed line also gives the client's own CPU seconds, to show it is not the
bottleneck.
"""
import asyncio
import base64
import http.client
import json
import os
import ssl
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "imap"))
import imapload  # noqa: E402  (message(), DELIVER, pss_kb(), tls_client())

LIST_PROPS = ["threadId", "mailboxIds", "keywords", "from", "to", "subject", "receivedAt",
              "size", "preview", "hasAttachment"]
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


class Jmap:
    def __init__(self, url, user, password):
        u = urllib.parse.urlsplit(url)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        s = self.get("/.well-known/jmap")
        self.session = s
        self.api = urllib.parse.urlsplit(s["apiUrl"]).path
        self.account = s["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        self.max_set = s["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInSet"]
        inbox = self.call([["Mailbox/query", {"accountId": self.account, "filter": {"role": "inbox"}}, "0"]])
        self.inbox = inbox[0][1]["ids"][0]

    def request(self, method, path, body=None):
        for _ in range(5):
            self.conn.request(method, path, body=body, headers={
                "Authorization": self.auth, "Content-Type": "application/json",
                "Accept": "application/json"})
            r = self.conn.getresponse()
            data = r.read()
            if r.status in (301, 302, 307, 308):
                path = urllib.parse.urlsplit(r.getheader("Location")).path
                continue
            if r.status != 200:
                raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
            return json.loads(data)
        raise RuntimeError("too many redirects")

    def get(self, path):
        return self.request("GET", path)

    def call(self, calls):
        out = self.request("POST", self.api, json.dumps({"using": USING, "methodCalls": calls}))
        for name, args, _ in out["methodResponses"]:
            if name == "error":
                raise RuntimeError(f"JMAP error: {args}")
        return out["methodResponses"]


def timed(mode, rounds, fn):
    for r in range(rounds + 1):
        c0, t0 = time.process_time(), time.monotonic()
        extra = fn(r)
        dt, cpu = time.monotonic() - t0, time.process_time() - c0
        if r:
            print(f"{mode} round={r} seconds={dt:.4f} client_cpu={cpu:.3f} {extra}", flush=True)


def page_list(url, user, password, rounds):
    j = Jmap(url, user, password)

    def one(_):
        pos, total, got = 0, None, 0
        while total is None or pos < total:
            res = j.call([
                ["Email/query", {"accountId": j.account, "filter": {"inMailbox": j.inbox},
                                 "sort": [{"property": "receivedAt", "isAscending": False}],
                                 "position": pos, "limit": 50, "calculateTotal": True}, "q"],
                ["Email/get", {"accountId": j.account, "properties": LIST_PROPS,
                               "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"]])
            total = res[0][1]["total"]
            got += len(res[1][1]["list"])
            pos += 50
        if got != total:
            raise RuntimeError(f"list: {got} emails for total {total}")
        return f"messages={total} requests={pos // 50}"
    timed("list", rounds, one)


def text(url, user, password, rounds):
    """Each query after a keyword change on one message (not timed): the
    account state moves, so no server answers from a result it kept."""
    j = Jmap(url, user, password)
    some = j.call([["Email/query", {"accountId": j.account, "limit": 1}, "q"]])[0][1]["ids"][0]
    for r in range(rounds + 1):
        spent, cpu = 0.0, 0.0
        for i in range(10):
            j.call([["Email/set", {"accountId": j.account, "update": {
                some: {"keywords/$bench": True if i % 2 == 0 else None}}}, "s"]])
            c0, t0 = time.process_time(), time.monotonic()
            res = j.call([["Email/query", {"accountId": j.account,
                                           "filter": {"inMailbox": j.inbox, "text": "zanzibar"},
                                           "sort": [{"property": "receivedAt", "isAscending": False}],
                                           "limit": 50, "calculateTotal": True}, "q"]])
            spent += time.monotonic() - t0
            cpu += time.process_time() - c0
        hits = res[0][1]["total"]
        if hits == 0:
            raise RuntimeError("text: no hits")
        if r:
            print(f"text round={r} seconds={spent:.4f} client_cpu={cpu:.3f} queries=10 hits={hits}", flush=True)


def flags(url, user, password, rounds):
    j = Jmap(url, user, password)
    ids = j.call([["Email/query", {"accountId": j.account, "filter": {"inMailbox": j.inbox},
                                   "sort": [{"property": "receivedAt", "isAscending": False}],
                                   "limit": 1000}, "q"]])[0][1]["ids"]
    if len(ids) != 1000:
        raise RuntimeError(f"flags: {len(ids)} ids")
    batch = min(500, j.max_set)

    def one(r):
        on = r % 2 == 0
        for i in range(0, len(ids), batch):
            res = j.call([["Email/set", {"accountId": j.account, "update": {
                e: {"keywords/$flagged": True if on else None} for e in ids[i:i + batch]}}, "s"]])
            if len(res[0][1].get("updated") or {}) != len(ids[i:i + batch]):
                raise RuntimeError(f"flags: {res[0][1].get('notUpdated')}")
        return f"messages={len(ids)} batch={batch}"
    timed("flags", rounds, one)


def fill_lmtp(sock, user, count, size, parallel):
    async def run():
        todo = iter(range(count))
        t0 = time.monotonic()

        async def worker():
            r, w = await asyncio.open_unix_connection(sock)
            await imapload.lmtp_reply(r)
            w.write(b"LHLO bench.test\r\n")
            await imapload.lmtp_reply(r)
            for i in todo:
                await imapload.lmtp_transaction(r, w, user, imapload.message(i, size))
            w.write(b"QUIT\r\n")
            w.close()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        print(f"fill {count} messages in {time.monotonic() - t0:.1f}s")
    asyncio.run(run())


async def push(host, port, pathbase, userfmt, password, users, conns, probes, deliver, pid):
    kind, dpath = deliver.split(":", 1)
    tls = imapload.tls_client()
    waiting, by_user = {}, {}
    sem = asyncio.Semaphore(100)
    t0 = time.monotonic()
    path = pathbase + "?types=*&closeafter=no&ping=300"

    async def one(i):
        user = userfmt % (i % users)
        local = f"127.0.{1 + i // 60000}.{2 + (i // 250) % 250}"
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        async def open_stream():
            r, w = await asyncio.open_connection(host, port, ssl=tls, local_addr=(local, 0))
            w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
                    "Accept: text/event-stream\r\n\r\n".encode())
            status = await r.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"eventsource: {status!r}")
            while (await r.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return r, w
        r, w = await imapload.open_retrying(sem, open_stream, f"stream {i}")
        by_user.setdefault(user, []).append(r)
        while True:
            line = await r.readline()
            if not line:
                raise ConnectionError(f"stream {i} closed")
            if line.startswith(b"event: state") or line.startswith(b"data:") and b"StateChange" in line:
                now = time.monotonic()
                for f in waiting.get(user, []):
                    if not f.done() and f.stream is r:
                        f.set_result(now)
                        break
    tasks = [asyncio.create_task(one(i)) for i in range(conns)]
    while sum(len(v) for v in by_user.values()) < conns:
        await asyncio.sleep(0.2)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    print(f"push connections={conns} users={users} up_in={time.monotonic() - t0:.1f}s", flush=True)
    await asyncio.sleep(5)   # let the initial events go out and the servers settle
    root = int(open(pid).read()) if not pid.isdigit() else int(pid)
    kb, nproc, parts = imapload.pss_kb(root)
    print(f"push pss_kb={kb} processes={nproc} (" + ", ".join(f"{k} {v}" for k, v in sorted(parts.items())) + ")")
    lat = []
    loop = asyncio.get_running_loop()
    for p in range(probes):
        user = userfmt % (p % users)
        futs = []
        for r in by_user[user]:
            f = loop.create_future()
            f.stream = r
            futs.append(f)
        waiting[user] = futs
        msg = imapload.message(2000000 + p, 2048)
        s = time.monotonic()
        await imapload.DELIVER[kind](dpath, user if kind != "lmtp" else user.split("@")[0], msg)
        try:
            times = await asyncio.wait_for(asyncio.gather(*futs), 10)
            lat += [t - s for t in times]
        except asyncio.TimeoutError:
            got = [f.result() - s for f in futs if f.done()]
            lat += got + [float("inf")] * (len(futs) - len(got))
        waiting[user] = []
        await asyncio.sleep(0.1)   # past Wharf's 20 ms coalescing: each probe its own event
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"push statechange_ms p50={pct(0.5):.1f} p99={pct(0.99):.1f} max={lat[-1] * 1000:.1f} samples={len(lat)}")
    print(f"push still_connected={sum(1 for t in tasks if not t.done())}", flush=True)
    await asyncio.sleep(float(os.environ.get("PUSH_HOLD", "0")))  # time to profile the server
    for t in tasks:
        t.cancel()


def summary(lines):
    runs, push_ = {}, {}
    for line in lines:
        f = line.split()
        if len(f) < 3 or f[0] not in ("wharf", "cyrus"):
            continue
        kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
        if f[1] in ("list", "text", "flags"):
            runs.setdefault(f[1], {}).setdefault(f[0], []).append(float(kv["seconds"]))
        elif f[1] == "push":
            push_.setdefault(f[0], {}).update(kv)
    print("summary: operation                              wharf      cyrus   wharf speed-up (target 3x)")
    names = {"list": "mail list, 50 a page, whole INBOX", "text": "Email/query text x10",
             "flags": "Email/set $flagged, 1,000"}
    for op, v in runs.items():
        w, c = sorted(v.get("wharf", [0])), sorted(v.get("cyrus", [0]))
        wm, cm = w[(len(w) - 1) // 2], c[(len(c) - 1) // 2]
        print(f"summary: {names[op]:<36} {wm:8.3f}s {cm:9.3f}s   {cm / wm if wm else 0:5.2f}x  (median of {len(w)})")
    for server, v in push_.items():
        n = int(v.get("connections", 0)) or 1
        kb = int(v.get("pss_kb", 0))
        print(f"summary: {server} {v.get('connections')} EventSource streams: Pss {kb / 1024:.1f} MB "
              f"({kb / n:.1f} kB per stream), delivery to StateChange p50 {v.get('p50', '?')} ms "
              f"p99 {v.get('p99', '?')} ms")


def main():
    a = sys.argv[1:]
    mode = a[0] if a else ""
    if mode == "fill-lmtp":
        fill_lmtp(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif mode in ("list", "text", "flags"):
        {"list": page_list, "text": text, "flags": flags}[mode](a[1], a[2], a[3], int(a[4]))
    elif mode == "push":
        asyncio.run(push(a[1], int(a[2]), a[3], a[4], a[5], int(a[6]), int(a[7]), int(a[8]), a[9], a[10]))
    elif mode == "summary":
        summary(sys.stdin)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
