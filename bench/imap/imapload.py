#!/usr/bin/python3
"""IMAP load generator for bench/imap/run (asyncio, raw sockets: the client
parses only what it must, so its own cost stays small next to the server's).

  imapload.py fill DELIVER USER MAILDIR COUNT SIZE PARALLEL
      The same COUNT messages (deterministic, ~SIZE bytes, word bodies; every
      100th holds the word "zanzibar") delivered to Wharf through DELIVER
      (DATA/run/deliver.sock, the frames `wharf deliver` sends) and written as
      Maildir files under MAILDIR (Dovecot's). Either may be "-".
  imapload.py fetch HOST PORT USER PASS ROUNDS
      UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE) on INBOX: one
      warm-up round, then ROUNDS timed; prints the seconds of each.
      FETCH_ITEMS in the environment replaces the items (e.g. to add
      BODYSTRUCTURE). The warm-up round is also printed (fetch_cold): run right after the
      messages were delivered, it is the first, cold ENVELOPE fetch.
  imapload.py search HOST PORT USER PASS ROUNDS
      SEARCH TEXT zanzibar on INBOX, the same way.
  imapload.py searchfrom HOST PORT USER PASS ROUNDS
      SEARCH FROM s5@bench.test (one sender in 97, a header search), the same way.
  imapload.py append HOST PORT USER PASS COUNT SIZE WINDOW
      APPENDs COUNT messages to INBOX, WINDOW in flight (LITERAL+); prints
      messages/s.
  imapload.py logins HOST PORT USERFMT PASS USERS COUNT [tls]
      COUNT logins one after the other (user i % USERS; over TLS with "tls"),
      after one untimed round over every user (a warm cache); each timed from
      the connect to the LOGIN's OK, and its LOGIN alone; prints p50/p99 in ms.
  imapload.py idle HOST PORT USERFMT PASS USERS CONNS PROBES DELIVER PIDFILE|PID [tls]
      CONNS connections (user i % USERS; over TLS with "tls"), each LOGIN, SELECT INBOX, IDLE,
      from source addresses 127.0.0.2.. (ephemeral ports); then the summed PSS of
      the server's process tree, then PROBES deliveries (DELIVER is
      wharf:SOCKET, lmtp:SOCKET or smtp:HOST:PORT) to the users in turn, timing from the start
      of the delivery to the "* N EXISTS" on every idle connection of that user.
      IDLE_HOLD=SECONDS in the environment keeps the connections up that long
      at the end (to profile the server with them); TLS_MAX=1.2 caps the
      client at TLS 1.2.
  imapload.py rate HOST PORT USERFMT PASS USERS CONNS SECONDS [tls]
      CONNS connections (user i % USERS), each LOGIN and SELECT INBOX, then
      each sends NOOP and waits for its reply, over and over, for SECONDS;
      prints the commands per second of them all (bench/frontend/run: a
      front-end's splice against the back-end direct). RATE_CMDS="A|B|..."
      in the environment cycles through those commands instead ("{uid}" in
      one stands for a UID drawn from 1..RATE_UIDS). RATE_PIDS=name:PID,...
      in the environment also prints the CPU time per command of each
      process tree (from /proc) and of the client itself (name_cpu_us=).
  imapload.py sync HOST PORT USER PASS ROUNDS DELIVER PID
      On a big INBOX (Wharf only; DELIVER is its deliver.sock): SELECT INBOX,
      NOOP, STATUS (MESSAGES UNSEEN SIZE), NOOP after another session changed one old message's flags, and
      the time from the start of a delivery to the "* N EXISTS" on a second
      connection in IDLE; ROUNDS timed rounds of each after one warm-up; and
      how much the summed Pss of the server (under PID) grew with the three
      sessions selected.
  imapload.py summary < OUTPUT
      Medians of the rounds and Wharf/Dovecot ratios from the lines above
      (prefixed "wharf   " or "dovecot ").
Every line it prints starts with the mode name, for the run script to grep.
"""
import asyncio
import os
import random
import re
import struct
import sys
import time

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray "
         "yankee zulu harbour vessel cargo crane anchor tide pier quay").split()


def message(i, size):
    rnd = random.Random(i)
    head = (f"From: Sender {i % 97} <s{i % 97}@bench.test>\r\nTo: user@bench.test\r\n"
            f"Subject: message {i} {rnd.choice(WORDS)}\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{i}@bench.test>\r\n\r\n")
    lines, n = [], len(head)
    while n < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(10))
        if i % 100 == 0 and not lines:
            line += " zanzibar"
        lines.append(line + "\r\n")
        n += len(lines[-1])
    return (head + "".join(lines)).encode()


def field(b):
    return struct.pack(">I", len(b)) + b


async def wharf_deliver(path, user, msg):
    r, w = await asyncio.open_unix_connection(path)
    await wharf_deliver_on(r, w, user, msg)
    w.close()


async def wharf_deliver_on(r, w, user, msg):
    payload = field(user.encode()) + field(b"") + field(msg)
    w.write(struct.pack(">IHH", len(payload), 300, 0) + payload)
    length, ftype, _ = struct.unpack(">IHH", await r.readexactly(8))
    reply = await r.readexactly(length)
    if ftype != 301 or struct.unpack(">Q", reply[:8])[0] != 0:
        raise RuntimeError("wharf delivery failed")


async def lmtp_reply(r):
    """Reads one (multi-line) LMTP reply; raises unless it is 2xx or 3xx."""
    while True:
        line = await r.readline()
        if not line.startswith((b"2", b"3")):
            raise RuntimeError(f"lmtp: {line!r}")
        if line[3:4] != b"-":
            return


async def lmtp_transaction(r, w, user, msg):
    """One MAIL/RCPT/DATA on an LMTP session that has had its LHLO."""
    for cmd in (b"MAIL FROM:<load@bench.test>", f"RCPT TO:<{user}>".encode(), b"DATA"):
        w.write(cmd + b"\r\n")
        await lmtp_reply(r)
    w.write(msg.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    await lmtp_reply(r)


async def lmtp_deliver(path, user, msg):
    r, w = await asyncio.open_unix_connection(path)
    await lmtp_reply(r)
    w.write(b"LHLO bench.test\r\n")
    await lmtp_reply(r)
    await lmtp_transaction(r, w, user, msg)
    w.write(b"QUIT\r\n")
    w.close()


async def smtp_deliver(addr, user, msg):
    host, port = addr.rsplit(":", 1)
    r, w = await asyncio.open_connection(host, int(port))

    async def reply():
        while True:
            line = await r.readline()
            if not line.startswith((b"2", b"3")):
                raise RuntimeError(f"smtp: {line!r}")
            if line[3:4] != b"-":
                return
    await reply()
    for cmd in (b"EHLO load.test", b"MAIL FROM:<load@load.test>", f"RCPT TO:<{user}>".encode(), b"DATA"):
        w.write(cmd + b"\r\n")
        await reply()
    w.write(msg.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    await reply()
    w.write(b"QUIT\r\n")
    w.close()


DELIVER = {"wharf": wharf_deliver, "lmtp": lmtp_deliver, "smtp": smtp_deliver}


def tls_client():
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if os.environ.get("TLS_MAX") == "1.2":  # TLS_MAX=1.2: measure TLS 1.2 connections
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def fill(deliver, user, maildir, count, size, parallel):
    if maildir != "-":
        for sub in ("new", "cur", "tmp"):
            os.makedirs(f"{maildir}/{sub}", exist_ok=True)
    todo = iter(range(count))
    t0 = time.monotonic()

    async def worker():
        conn = await asyncio.open_unix_connection(deliver) if deliver != "-" else None
        for i in todo:
            msg = message(i, size)
            if maildir != "-":
                with open(f"{maildir}/new/{1700000000 + i}.M{i}P1.bench", "wb") as f:
                    f.write(msg)
            if conn:
                await wharf_deliver_on(*conn, user, msg)
        if conn:
            conn[1].close()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    print(f"fill {count} messages in {time.monotonic() - t0:.1f}s")


class Imap:
    def __init__(self, r, w):
        self.r, self.w, self.n = r, w, 0

    @classmethod
    async def login(cls, host, port, user, password, local=None, tls=None):
        r, w = await asyncio.open_connection(host, port, local_addr=(local, 0) if local else None,
                                             limit=1 << 24, ssl=tls)
        c = cls(r, w)
        await r.readline()
        ok = await c.cmd(f'LOGIN "{user}" "{password}"')
        if b" OK " not in ok:
            raise RuntimeError(f"login {user}: {ok[-200:]!r}")
        return c

    async def cmd(self, text):
        """Sends one command, returns everything up to and including its tagged reply."""
        self.n += 1
        tag = b"T%d" % self.n
        self.w.write(tag + b" " + text.encode() + b"\r\n")
        return await self.until(tag)

    async def until(self, tag):
        buf = bytearray()
        end = b"\r\n" + tag + b" "
        start = tag + b" "
        while True:
            chunk = await self.r.read(1 << 20)
            if not chunk:
                raise ConnectionError("server closed")
            buf += chunk
            if buf.endswith(b"\r\n"):
                i = buf.rfind(end, 0, len(buf) - 2)
                if i >= 0 or buf.startswith(start):
                    return bytes(buf)


async def timed(host, port, user, password, rounds, command, mode):
    c = await Imap.login(host, port, user, password)
    sel = await c.cmd("SELECT INBOX")
    exists = re.search(rb"\* (\d+) EXISTS", sel).group(1).decode()
    for r in range(rounds + 1):
        t0 = time.monotonic()
        out = await c.cmd(command)
        dt = time.monotonic() - t0
        if not out.rstrip().split(b"\r\n")[-1].split(b" ")[1] == b"OK":
            raise RuntimeError(f"{mode}: {out[-300:]!r}")
        if r == 0 and mode == "fetch":
            print(f"fetch_cold round=0 messages={exists} seconds={dt:.4f} bytes={len(out)}")
        if r:
            hits = ""
            if mode in ("search", "searchfrom"):
                n = len(out.split(b"* SEARCH")[1].split(b"\r\n")[0].split())
                hits = f" hits={n}"
            print(f"{mode} round={r} messages={exists} seconds={dt:.4f} bytes={len(out)}{hits}")


async def sync(host, port, user, password, rounds, deliver, pid):
    pid = int(pid)
    base = pss_kb(pid)[0]
    c = await Imap.login(host, port, user, password)
    other = await Imap.login(host, port, user, password)
    idler = await Imap.login(host, port, user, password)
    await other.cmd("SELECT INBOX")
    await c.cmd("SELECT INBOX")
    sel = await idler.cmd("SELECT INBOX")
    exists = int(re.search(rb"\* (\d+) EXISTS", sel).group(1))
    print(f"sync memory messages={exists} sessions=3 pss_kb={pss_kb(pid)[0] - base}")
    idler.w.write(b"I1 IDLE\r\n")
    await idler.r.readline()  # "+ idling"

    async def one(what, fn):
        for r in range(rounds + 1):
            t0 = time.monotonic()
            await fn(r)
            dt = time.monotonic() - t0
            if r:
                print(f"sync {what} round={r} messages={exists} seconds={dt:.4f}")

    await one("select", lambda r: c.cmd("SELECT INBOX"))
    await one("noop", lambda r: c.cmd("NOOP"))
    await one("status", lambda r: other.cmd("STATUS INBOX (MESSAGES UNSEEN SIZE)"))

    async def flagged_noop(r):
        await other.cmd(f"STORE 1 {'+' if r % 2 == 0 else '-'}FLAGS (\\Flagged)")
        await asyncio.sleep(0.05)  # the change's event reaches c's worker (not timed)
        t0 = time.monotonic()
        out = await c.cmd("NOOP")
        if b" FETCH " not in out:
            raise RuntimeError(f"sync: no FETCH after a flag change: {out[-200:]!r}")
        return time.monotonic() - t0

    for r in range(rounds + 1):
        dt = await flagged_noop(r)
        if r:
            print(f"sync noop_after_flag round={r} messages={exists} seconds={dt:.4f}")
    for r in range(rounds + 1):
        t0 = time.monotonic()
        await wharf_deliver(deliver, user, message(10_000_000 + r, 2048))
        while not (line := await idler.r.readline()).endswith(b" EXISTS\r\n"):
            if not line:
                raise ConnectionError("server closed")
        dt = time.monotonic() - t0
        if r:
            print(f"sync exists round={r} messages={exists} seconds={dt:.4f}")
    idler.w.write(b"DONE\r\n")
    for conn in (c, other, idler):
        conn.w.close()


async def rate(host, port, userfmt, password, users, conns, seconds, tls=False):
    ctx = tls_client() if tls else None
    cs = []
    for i in range(conns):
        c = await Imap.login(host, port, userfmt % (i % users), password, tls=ctx)
        await c.cmd("SELECT INBOX")
        cs.append(c)
    count = 0
    t0 = time.monotonic()
    stop = t0 + seconds

    # RATE_CMDS: the commands each connection cycles through ("|" between them; "{uid}"
    # a UID drawn from 1..RATE_UIDS), NOOP by default
    cmds = os.environ.get("RATE_CMDS", "NOOP").split("|")
    uids = int(os.environ.get("RATE_UIDS", "1"))
    rnd = random.Random(1)

    async def run(c):
        nonlocal count
        i = 0
        while time.monotonic() < stop:
            text = cmds[i % len(cmds)]
            if "{uid}" in text:
                text = text.replace("{uid}", str(rnd.randint(1, uids)))
            i += 1
            out = await c.cmd(text)
            if b" OK" not in out:
                raise RuntimeError(f"rate: {text}: {out[-200:]!r}")
            count += 1
    trees = [kv.split(":") for kv in os.environ.get("RATE_PIDS", "").split(",") if kv]
    cpu0 = [(name, tree_cpu(int(pid))) for name, pid in trees] + [("client", os.times())]
    await asyncio.gather(*(run(c) for c in cs))
    dt = time.monotonic() - t0
    cpu1 = [tree_cpu(int(pid)) for _, pid in trees] + [os.times()]
    # CPU per command of each process tree (and of this client): less moved by what else
    # runs than the rate, but not unmoved (a busy machine batches more records a wake-up).
    us = " ".join(f"{name}_cpu_us={1e6 * (b.user + b.system - a.user - a.system) / max(count, 1):.1f}"
                  for (name, a), b in zip(cpu0, cpu1))
    print(f"rate commands={count} seconds={dt:.1f} per_second={count / dt:.0f} conns={conns}"
          + (" " + us if trees else ""))
    for c in cs:
        c.w.close()


async def logins(host, port, userfmt, password, users, count, tls=False):
    ctx = tls_client() if tls else None

    async def one(user):
        t0 = time.monotonic()
        r, w = await asyncio.open_connection(host, port, ssl=ctx)
        c = Imap(r, w)
        await r.readline()
        t1 = time.monotonic()
        ok = await c.cmd(f'LOGIN "{user}" "{password}"')
        t2 = time.monotonic()
        if b" OK " not in ok:
            raise RuntimeError(f"login {user}: {ok[-200:]!r}")
        await c.cmd("LOGOUT")
        w.close()
        return t2 - t0, t2 - t1
    for u in range(users):  # warm: the directory's and the auth process's caches
        await one(userfmt % u)
    total, login = [], []
    for i in range(count):
        a, b = await one(userfmt % (i % users))
        total.append(a)
        login.append(b)

    def pct(v, q):
        v = sorted(v)
        return v[min(len(v) - 1, int(q * len(v)))] * 1000
    print(f"logins count={count} connect_to_ok_p50_ms={pct(total, .5):.1f} "
          f"connect_to_ok_p99_ms={pct(total, .99):.1f} login_p50_ms={pct(login, .5):.1f} "
          f"login_p99_ms={pct(login, .99):.1f}")


async def append(host, port, user, password, count, size, window):
    c = await Imap.login(host, port, user, password)
    sem = asyncio.Semaphore(window)
    t0 = time.monotonic()
    done = asyncio.Event()
    results = {"ok": 0, "bad": 0}

    async def reader():
        while results["ok"] + results["bad"] < count:
            line = await c.r.readline()
            if not line:
                raise ConnectionError("server closed during APPEND")
            if line.startswith(b"A"):
                ok = line.split(b" ")[1] == b"OK"
                results["ok" if ok else "bad"] += 1
                if not ok and results["bad"] == 1:
                    print(f"append failed: {line!r}", file=sys.stderr)
                sem.release()
        done.set()
    rt = asyncio.create_task(reader())
    for i in range(count):
        await sem.acquire()
        msg = message(1000000 + i, size)
        c.w.write(b"A%d APPEND INBOX (\\Seen) {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
        if c.w.transport.get_write_buffer_size() > (1 << 20):
            await c.w.drain()
    await done.wait()
    await rt
    dt = time.monotonic() - t0
    print(f"append messages={count} seconds={dt:.2f} rate={count / dt:.0f}/s failed={results['bad']}")


def tree_pids(root):
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(p))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def tree_cpu(root):
    """User and system CPU seconds of the live processes under root (os.times()'s fields)."""
    hz, user, system = os.sysconf("SC_CLK_TCK"), 0, 0
    for p in tree_pids(root):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            user, system = user + int(f[11]), system + int(f[12])
        except (OSError, IndexError):
            pass
    return os.times_result((user / hz, system / hz, 0, 0, 0))


def pss_kb(root):
    """Summed Pss of the process tree under root, and per program (Wharf: per component)."""
    total, n, parts = 0, 0, {}
    for p in tree_pids(root):
        try:
            argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            comm = open(f"/proc/{p}/comm").read().strip()  # Wharf: "wharf-imap" (wharfd(8))
            name = comm[6:] if comm.startswith("wharf-") else os.path.basename(argv[0].decode().split()[0])
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    kb = int(line.split()[1])
                    total += kb
                    n += 1
                    parts[name] = parts.get(name, 0) + kb
        except (OSError, IndexError):
            pass
    return total, n, parts


async def open_retrying(sem, opener, what, tries=20):
    """await opener() under sem; after a failure (a loaded server's full accept
    queue) again 0.5 s later, at most tries times."""
    err = None
    for _ in range(tries):
        async with sem:
            try:
                return await opener()
            except (RuntimeError, ConnectionError, OSError) as e:
                err = e
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{what} failed: {err}")


async def idle(host, port, userfmt, password, users, conns, probes, deliver, pid, tls=False):
    kind, path = deliver.split(":", 1)
    tls = tls_client() if tls else None
    waiting = {}     # user -> list of futures for the current probe
    by_user = {}
    sem = asyncio.Semaphore(100)
    t0 = time.monotonic()

    async def one(i):
        user = userfmt % (i % users)
        local = f"127.0.{1 + i // 60000}.{2 + (i // 250) % 250}"
        async def open_idle():
            c = await Imap.login(host, port, user, password, local, tls)
            await c.cmd("SELECT INBOX")
            c.w.write(b"I IDLE\r\n")
            line = await c.r.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(f"IDLE: {line!r}")
            return c
        c = await open_retrying(sem, open_idle, f"connection {i}")
        by_user.setdefault(user, []).append(c)
        while True:
            line = await c.r.readline()
            if not line:
                raise ConnectionError(f"connection {i} closed in IDLE")
            if line.endswith(b" EXISTS\r\n"):
                now = time.monotonic()
                for f in waiting.get(user, []):
                    if not f.done():
                        f.set_result(now)
                        break
    tasks = [asyncio.create_task(one(i)) for i in range(conns)]
    while sum(len(v) for v in by_user.values()) < conns:
        await asyncio.sleep(0.2)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    print(f"idle connections={conns} users={users} tls={int(tls is not None)} via={kind}"
          f" up_in={time.monotonic() - t0:.1f}s")
    await asyncio.sleep(5)   # let the servers settle (Dovecot hibernates idle sessions)
    root = int(open(pid).read()) if not pid.isdigit() else int(pid)
    kb, nproc, parts = pss_kb(root)
    print(f"idle pss_kb={kb} processes={nproc} (" + ", ".join(f"{k} {v}" for k, v in sorted(parts.items())) + ")")
    lat, acc = [], []
    for p in range(probes):
        user = userfmt % (p % users)
        futs = [asyncio.get_running_loop().create_future() for _ in by_user[user]]
        waiting[user] = futs
        msg = message(2000000 + p, 2048)
        s = time.monotonic()
        await DELIVER[kind](path, user, msg)
        acc.append(time.monotonic() - s)  # accepted (the 250 after DATA, or the reply frame)
        try:
            times = await asyncio.wait_for(asyncio.gather(*futs), 10)
            lat += [t - s for t in times]
        except asyncio.TimeoutError:
            got = [f.result() - s for f in futs if f.done()]
            lat += got + [float("inf")] * (len(futs) - len(got))
        waiting[user] = []
        await asyncio.sleep(0.05)
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"idle exists_ms p50={pct(0.5):.1f} p99={pct(0.99):.1f} max={lat[-1] * 1000:.1f} samples={len(lat)}")
    acc.sort()
    print(f"idle accepted_ms p50={acc[len(acc) // 2] * 1000:.1f} p99={acc[min(len(acc) - 1, int(0.99 * len(acc)))] * 1000:.1f}"
          f" max={acc[-1] * 1000:.1f} (the delivery's own reply)")
    still = sum(1 for t in tasks if not t.done())
    print(f"idle still_connected={still}", flush=True)
    await asyncio.sleep(float(os.environ.get("IDLE_HOLD", "0")))  # time to profile the server
    for t in tasks:
        t.cancel()


def summary(lines):
    runs, idle, syncs = {}, {}, {}
    for line in lines:
        f = line.split()
        if len(f) < 3 or f[0] not in ("wharf", "dovecot"):
            continue
        kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
        if f[1] == "sync" and f[2] == "memory":
            print(f"summary: wharf 3 sessions selected on {kv['messages']} messages: Pss grew by "
                  f"{int(kv['pss_kb']) / 1024:.1f} MB")
        elif f[1] == "sync":
            syncs.setdefault((f[2], kv["messages"]), []).append(float(kv["seconds"]))
        elif f[1] in ("fetch", "search", "searchfrom", "fetch_cold"):
            runs.setdefault((f[1], kv["messages"]), {}).setdefault(f[0], []).append(float(kv["seconds"]))
        elif f[1] == "append":
            runs.setdefault(("append", kv["messages"]), {})[f[0]] = [float(kv["rate"].rstrip("/s"))]
        elif f[1] == "idle" and "connections" in kv:
            cur = (f[0], kv.get("tls", "0") == "1", kv.get("via", "?"))
            idle[cur] = {"n": kv["connections"]}
        elif f[1] == "idle" and idle:
            key = [k for k in idle if k[0] == f[0]][-1:]
            if key and f[2] == "accepted_ms":
                idle[key[0]].update({"acc_" + k: v for k, v in kv.items()})
            elif key:
                idle[key[0]].update(kv)
    for (what, n), v in syncs.items():
        v.sort()
        print(f"summary: wharf {what:<16} {n:>7} messages: median {v[(len(v) - 1) // 2] * 1000:8.2f} ms"
              f"  max {v[-1] * 1000:8.2f} ms  ({len(v)} rounds)")
    if syncs:
        return
    print("summary: operation                  wharf   dovecot   wharf speed-up")
    for (op, n), v in runs.items():
        w, d = sorted(v.get("wharf", [0])), sorted(v.get("dovecot", [0]))
        wm, dm = w[(len(w) - 1) // 2], d[(len(d) - 1) // 2]
        if op == "append":
            print(f"summary: {'APPEND ' + n:<24} {wm:6.0f}/s {dm:7.0f}/s   {wm / dm if dm else 0:5.2f}x")
        else:
            name = {"fetch": "UID FETCH", "fetch_cold": "cold FETCH", "search": "SEARCH TEXT",
                    "searchfrom": "SEARCH FROM"}[op]
            print(f"summary: {name + ' ' + n:<24} {wm:7.3f}s {dm:8.3f}s   {dm / wm if wm else 0:5.2f}x  (median of {len(w)})")
    for (server, tls, via), v in idle.items():
        print(f"summary: {server} {v['n']} IDLE{' over TLS' if tls else ''}, delivery by {via}: Pss {int(v.get('pss_kb', 0)) / 1024:.1f} MB, "
              f"delivery to EXISTS p50 {v.get('p50', '?')} ms p99 {v.get('p99', '?')} ms"
              + (f" (its reply p50 {v['acc_p50']} ms p99 {v['acc_p99']} ms)" if "acc_p50" in v else ""))


def main():
    a = sys.argv[1:]
    mode = a[0] if a else ""
    if mode == "fill":
        asyncio.run(fill(a[1], a[2], a[3], int(a[4]), int(a[5]), int(a[6])))
    elif mode == "fetch":
        asyncio.run(timed(a[1], int(a[2]), a[3], a[4], int(a[5]),
                          "UID FETCH 1:* (%s)" % os.environ.get(
                              "FETCH_ITEMS", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE"), mode))
    elif mode == "search":
        asyncio.run(timed(a[1], int(a[2]), a[3], a[4], int(a[5]), "SEARCH TEXT zanzibar", mode))
    elif mode == "searchfrom":
        asyncio.run(timed(a[1], int(a[2]), a[3], a[4], int(a[5]), "SEARCH FROM s5@bench.test", mode))
    elif mode == "append":
        asyncio.run(append(a[1], int(a[2]), a[3], a[4], int(a[5]), int(a[6]), int(a[7])))
    elif mode == "idle":
        asyncio.run(idle(a[1], int(a[2]), a[3], a[4], int(a[5]), int(a[6]), int(a[7]), a[8], a[9],
                         len(a) > 10 and a[10] == "tls"))
    elif mode == "rate":
        asyncio.run(rate(a[1], int(a[2]), a[3], a[4], int(a[5]), int(a[6]), float(a[7]),
                         len(a) > 8 and a[8] == "tls"))
    elif mode == "logins":
        asyncio.run(logins(a[1], int(a[2]), a[3], a[4], int(a[5]), int(a[6]),
                           len(a) > 7 and a[7] == "tls"))
    elif mode == "sync":
        asyncio.run(sync(a[1], int(a[2]), a[3], a[4], int(a[5]), a[6], a[7]))
    elif mode == "summary":
        summary(sys.stdin)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
