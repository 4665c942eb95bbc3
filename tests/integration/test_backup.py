"""wharf backup / wharf restore against a running wharfd taking mail.

- Backup under load: SMTP clients keep sending while `wharf backup` runs; the
  backup is restored into a fresh data directory of a second wharfd, and every
  message acknowledged (250) before the backup began is there, byte for byte
  as the first server stored it, exactly once; mail acknowledged and still
  queued (deferred to an unreachable relay) is in the restored queue.
- Incremental: sealed blob segments are hard-linked from the previous backup.
- Restore refuses a live wharfd and a data directory that already has a store.
"""
import email
import imaplib
import os
import re
import smtplib
import threading
import time

from conftest import free_port, tls_context, wait_until
from smtp_helpers import add_user, mailq

PW = "pw-secret-1"


def imap_messages(server, user):
    """{Subject: raw bytes} of user's INBOX, read with Python's imaplib."""
    m = imaplib.IMAP4(server.host, server.ports["imap"])
    m.starttls(tls_context())
    m.login(user, PW)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            subject = email.message_from_bytes(item[1])["Subject"]
            assert subject not in out, f"{subject} stored twice"
            out[subject] = item[1]
    m.logout()
    return out


def body(i, size):
    line = (b"%06d " % i) + b"x" * 70 + b"\r\n"
    return b"".join(line for _ in range(size // len(line) + 1))


def message(subject, i, size=2000):
    return (b"From: load@example.test\r\nTo: alice@example.test\r\nSubject: " + subject.encode()
            + b"\r\n\r\n" + body(i, size))


def make(factory, name, deadport, extra=None):
    settings = {"transport_routes": f"far.test=[127.0.0.1]:{deadport}",
                "mta_retry_min": "1h", "store_segment_size": "1M"}
    settings.update(extra or {})
    return factory(name, enable={"smtp", "submission", "imap"}, extra=settings)


def test_backup_under_load_restores_every_acknowledged_message(wharf_factory):
    deadport = free_port()  # nobody listens: mail for far.test stays queued
    w = make(wharf_factory, "live", deadport).start()
    assert add_user(w, "alice@example.test", PW)
    # a few MB in several sealed segments, so the copy takes a while
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
        for i in range(120):
            c.sendmail("load@example.test", ["alice@example.test"],
                       message(f"pre-{i}", i, 20000))
    # acknowledged, then deferred in the queue
    with smtplib.SMTP(w.host, w.ports["submission"], timeout=30) as c:
        c.starttls(context=tls_context())
        c.login("alice@example.test", PW)
        for i in range(3):
            c.sendmail("alice@example.test", [f"bob{i}@far.test"], message(f"far-{i}", i))
    wait_until(lambda: len([e for e in mailq(w) if e.get("queue_name") == "deferred"]) == 3, 30,
               what="three deferred queue entries")
    queued = sorted(e["queue_id"] for e in mailq(w))
    keys = w.wharf("dkim", "keygen", "example.test").stdout  # DKIM keys are in a backup too

    acked = []  # (subject, monotonic time of the 250)
    stop = threading.Event()
    errors = []

    def sender(k):
        try:
            with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
                i = 0
                while not stop.is_set():
                    subject = f"load-{k}-{i}"
                    c.sendmail("load@example.test", ["alice@example.test"],
                               message(subject, i, 3000 + 500 * (i % 7)))
                    acked.append((subject, time.monotonic()))
                    i += 1
        except Exception as exc:  # reported below, the test must not hang
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 30, 60, what="load running")
    bk = w.base / "bk"  # the wharf user writes it: not under pytest's 0700 tmp_path
    t_begin = time.monotonic()
    w.wharf("backup", str(bk), timeout=300)
    t_end = time.monotonic()
    n_before = len(acked)
    wait_until(lambda: len(acked) >= n_before + 10, 60, what="load going on after the backup")
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    # the load spanned the backup: mail acknowledged before, and after it
    assert any(ts < t_begin for _, ts in acked) and any(ts > t_end for _, ts in acked)
    before = {s for s, ts in acked if ts < t_begin}
    # the live side is read once every acknowledged message is delivered (the last
    # ones may still be in its queue), the three for far.test left
    wait_until(lambda: len(mailq(w)) == 3, 60, what="the live queue down to the deferred three")
    live = imap_messages(w, "alice@example.test")

    r = make(wharf_factory, "restored", deadport)
    r.wharf("restore", str(bk))
    r.start()
    restored = imap_messages(r, "alice@example.test")
    for i in range(120):
        before.add(f"pre-{i}")
    missing = sorted(before - set(restored))
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:10]}"
    for s in before:
        assert restored[s] == live[s], f"{s} differs after restore"
    # nothing the backup holds that the live server never acknowledged
    assert set(restored) <= set(live)
    # the queue came back: the deferred entries with their queue ids
    assert sorted(e["queue_id"] for e in mailq(r)) == queued
    # logins work (the hashes are in the backup, readable only by the auth user
    # after the restore), and the same DKIM key signs
    assert oct((r.base / "var" / "auth" / "credentials.db").stat().st_mode & 0o777) == "0o600"
    assert r.wharf("dkim", "records", "example.test").stdout == w.wharf(
        "dkim", "records", "example.test").stdout
    assert keys
    r.check_sanitizers()


def test_incremental_backup_links_sealed_segments_and_restore_refuses_live_data(wharf_factory):
    # every body in a segment (small ones are kept in store.db by default)
    w = make(wharf_factory, "w", free_port(), {"store_inline_body_max": "0"}).start()
    assert add_user(w, "alice@example.test", PW)
    # Two sealed segments and a current one with room for one more message: sent in
    # waves of 8 (~240 kB), each delivered before the next (250 is the queue's promise,
    # the store's copy comes after), until the store shows that. A delivery batch opens
    # a new segment only when the current one is full, so how many messages it takes
    # depends on how the mta batched them (CI once got two segments out of 80 at once).
    blobs = w.data / "store" / "blobs"

    def segments():
        return sorted(p for p in blobs.iterdir() if re.fullmatch(r"[0-9a-f]{16}", p.name))

    sent = 0
    while not (len(segments()) >= 3 and segments()[-1].stat().st_size < (1 << 20) - 100_000):
        assert sent < 400, [(p.name, p.stat().st_size) for p in segments()]
        with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
            for i in range(sent, sent + 8):
                c.sendmail("load@example.test", ["alice@example.test"],
                           message(f"a-{i}", i, 30000))
        sent += 8
        wait_until(lambda: len(imap_messages(w, "alice@example.test")) == sent, 60,
                   what=f"{sent} messages delivered")
    b1, b2 = w.base / "b1", w.base / "b2"
    w.wharf("backup", str(b1))
    with smtplib.SMTP(w.host, w.ports["smtp"], timeout=30) as c:
        c.sendmail("load@example.test", ["alice@example.test"], message("b-0", 0, 5000))
    wait_until(lambda: len(imap_messages(w, "alice@example.test")) == sent + 1, 60,
               what="the last message delivered")
    out = w.wharf("backup", str(b2), "--incremental", str(b1)).stdout.decode()
    segs1 = {p.name: p.stat() for p in (b1 / "store" / "blobs").iterdir()}
    segs2 = {p.name: p.stat() for p in (b2 / "store" / "blobs").iterdir()}
    assert len(segs1) >= 3, segs1
    shared = [n for n in segs2 if n in segs1 and segs2[n].st_ino == segs1[n].st_ino]
    assert len(shared) >= 2, (out, segs1, segs2)  # sealed segments: linked, not copied
    # the current segment grew after b1: copied, and b1's copy untouched
    current = max(segs2)
    assert segs2[current].st_ino != segs1[current].st_ino
    assert segs2[current].st_size > segs1[current].st_size
    # a backup's target must be new
    assert w.wharf("backup", str(b1), check=False).returncode != 0
    # restore refuses the running server's data directory, and then any live store
    assert w.wharf("restore", str(b2), check=False).returncode == 75
    w.stop()
    assert w.wharf("restore", str(b2), check=False).returncode == 73
    # and restores into a fresh one, incremental backup included
    r = make(wharf_factory, "r", free_port())
    r.wharf("restore", str(b2))
    r.start()
    got = imap_messages(r, "alice@example.test")
    assert len(got) == sent + 1 and "b-0" in got and f"a-{sent - 1}" in got
    assert os.path.exists(r.data / "store" / "store.db")
