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
import ssl
import threading
import time

from conftest import wait_until

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
    done = threading.Event()

    def sender(k):
        rnd = random.Random(k)
        seqs = list(range(k * PER_SENDER, (k + 1) * PER_SENDER))
        while seqs:
            attempt = f"{seqs[0]}.{rnd.randrange(1 << 30)}"
            msg, digest = make_message(attempt)
            try:
                with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
                    with lock:
                        tried[attempt] = digest
                    s.sendmail("load@example.test", [USER], msg)
                with lock:
                    acked[attempt] = digest
                seqs.pop(0)
            except (smtplib.SMTPException, OSError):
                # Killed mid-session: the client retries, as a real MTA would.
                time.sleep(rnd.uniform(0.01, 0.05))

    def killer():
        # Kills are paced by progress, not by the clock, so a slow machine
        # gets as many of them as a fast one: one every KILL_EVERY
        # transactions, at a random moment within the next few milliseconds.
        rnd = random.Random(99)
        kills = 0
        next_at = KILL_EVERY
        while not done.is_set():
            with lock:
                started = len(tried)
            if started < next_at:
                time.sleep(0.005)
                continue
            next_at += KILL_EVERY
            time.sleep(rnd.uniform(0, 0.05))
            st = server.status()
            victims = [p["pid"] for c in st["components"] if c["name"] in ("smtp", "mta")
                       for p in c["processes"] if p.get("pid")]
            if victims:
                try:
                    os.kill(rnd.choice(victims), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
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

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
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
