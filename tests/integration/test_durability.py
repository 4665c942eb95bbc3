"""Nothing acknowledged is lost: SMTP in, spool, mta, store, under SIGKILL.

Many messages are sent concurrently over SMTP while the smtp workers and the
mta are SIGKILLed at random moments (the supervisor restarts them). Afterwards
every message that got "250" is in the mailbox exactly once with an intact
body, and no message is there partly. The mailbox is read back with POP3, a
real client, so the check goes through the same store the users see.
"""
import hashlib
import os
import poplib
import random
import signal
import smtplib
import threading
import time

from conftest import tls_context, wait_until

USER = "alice@example.test"
PASSWORD = "durable password"
SENDERS = 6
PER_SENDER = 40
KILL_EVERY = 15  # transactions started between two kills


def make_message(attempt):
    body = os.urandom(random.randint(200, 60000)).hex()
    body = "\r\n".join(body[i:i + 76] for i in range(0, len(body), 76)) + "\r\n"
    head = (f"From: load@example.test\r\nTo: {USER}\r\nSubject: durability {attempt}\r\n"
            f"X-Attempt: {attempt}\r\nMessage-ID: <dur-{attempt}@example.test>\r\n\r\n")
    return (head + body).encode(), hashlib.sha256(body.encode()).hexdigest()


def split(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


def test_acknowledged_mail_survives_sigkill(wharf_factory):
    server = wharf_factory(enable={"smtp", "pop3s"},
                           extra={"workers": "2", "restart_backoff_max": "1s"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")

    # Each SMTP transaction is an "attempt" with its own id. A client whose
    # session dies without a reply sends again as a new attempt: that attempt
    # may then be there too (the reply was lost after the spool write: SMTP
    # leaves no other choice), but no attempt may ever be there twice.
    acked = {}   # attempt -> body hash, for every transaction answered 250
    tried = {}   # attempt -> body hash, for every transaction started
    lock = threading.Lock()
    cond = threading.Condition(lock)
    done = threading.Event()
    pace = {"next_kill_at": KILL_EVERY}  # a kill is due once this many have started

    def sender(k):
        rnd = random.Random(k)
        seqs = list(range(k * PER_SENDER, (k + 1) * PER_SENDER))
        while seqs:
            attempt = f"{seqs[0]}.{rnd.randrange(1 << 30)}"
            msg, digest = make_message(attempt)
            with cond:
                # While a kill is due, new transactions wait for it (those in
                # flight go on): a fast machine cannot outrun the killer.
                while len(tried) >= pace["next_kill_at"]:
                    cond.wait(1)
                tried[attempt] = digest
            try:
                with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
                    s.sendmail("load@example.test", [USER], msg)
                with lock:
                    acked[attempt] = digest
                seqs.pop(0)
            except (smtplib.SMTPException, OSError):
                # Killed mid-session: the client retries, as a real MTA would.
                time.sleep(rnd.uniform(0.01, 0.05))

    def victims():
        """Pids of the smtp and mta processes of this server (from /proc)."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != server.proc.pid:
                    continue
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()  # the component's name for top (wharfd(8))
            except (OSError, ValueError, IndexError):
                continue
            if comm in ("wharf-smtp", "wharf-mta"):
                out.append(int(d))
        return out

    def killer():
        # One kill every KILL_EVERY started transactions, at a random moment
        # while the transactions before it are in flight.
        rnd = random.Random(99)
        kills = 0
        while True:
            with cond:
                while len(tried) < pace["next_kill_at"] and not done.is_set():
                    cond.wait(0.05)
                if done.is_set():
                    break
            time.sleep(rnd.uniform(0, 0.05))
            pids = victims()
            if pids:
                try:
                    os.kill(rnd.choice(pids), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            with cond:
                pace["next_kill_at"] += KILL_EVERY
                cond.notify_all()
        killer.kills = kills

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(SENDERS)]
    kt = threading.Thread(target=killer)
    kt.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    done.set()
    kt.join()
    assert killer.kills >= 8, "the test must really kill processes"
    assert len(acked) == SENDERS * PER_SENDER

    # Everything acknowledged must be delivered: wait for the queue to drain.
    server.wait_ready()
    wait_until(lambda: b"Mail queue is empty" in server.wharf("mailq").stdout,
               timeout=120, what="the queue to drain")

    ctx = tls_context()
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=ctx, timeout=60)
    p.user(USER)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    seen = {}
    for i in range(1, count + 1):
        _, lines, _ = p.retr(i)
        head, body = split(b"\r\n".join(lines) + b"\r\n")
        attempt = [h for h in head.split(b"\r\n") if h.startswith(b"X-Attempt: ")][0][11:]
        attempt = attempt.decode()
        assert attempt not in seen, f"transaction {attempt} delivered twice"
        seen[attempt] = hashlib.sha256(body).hexdigest()
    p.quit()

    missing = sorted(set(acked) - set(seen))
    assert not missing, f"acknowledged but lost: {missing}"
    for attempt, digest in seen.items():
        assert attempt in tried, f"message {attempt} was never sent"
        assert digest == tried[attempt], f"message {attempt} is damaged"
