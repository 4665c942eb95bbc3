"""`wharf sendmail` while wharfd is down: the maildrop and the mta's pickup.

- with wharfd stopped, sendmail as root and as the unprivileged users
  `nobody` and `daemon` (through setpriv) exits 0; mailq lists the waiting
  files; starting wharfd delivers each exactly once, read back over IMAP,
  with a Received: line naming the real uid, the sender the user had, and an
  X-Authentication-Warning: when an ordinary user chose the sender with -f;
- a damaged file, a file whose record claims another uid, one with a bad
  recipient and a name that is no maildrop name are moved to spool/corrupt
  and logged, while a good file dropped next to them is delivered;
- a user can neither list the maildrop nor read, remove or rename another
  user's file, and cannot write to the spool;
- SIGKILL of the mta in the middle of a pickup neither duplicates nor loses
  a message, and a file put back after its delivery is not delivered twice;
- a file whose spool entry was already written (a crash before its removal)
  is recognised at the next start and queued once;
- sendmail falls back to the maildrop only while nothing can have been
  queued: no server, a 421 greeting or a 421 to DATA; a connection lost after
  the end of the message is 75 and no second copy;
- when the message cannot be written durably sendmail still exits 75.
"""
import imaplib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading

import pytest

from conftest import WHARF, free_port, sanitizer_env, tls_context, wait_until

USER = "bob@example.test"
OTHER = "alice@example.test"
PASSWORD = "maildrop-pw"
NOBODY, DAEMON = 65534, 1


@pytest.fixture
def server(wharf_factory):
    s = wharf_factory(enable={"smtp", "imaps"},
                      extra={"mta_pickup_interval": "200ms", "restart_backoff_max": "1s"})
    s.start()
    s.wharf("domain", "add", "example.test")
    for u in (USER, OTHER):
        s.wharf("user", "add", u, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return s


def sendmail(server, *args, uid=None, input=b"Subject: x\n\nx\n"):
    """Runs `wharf sendmail` as root, or as uid (real and effective, no groups)."""
    cmd = [str(WHARF), "-c", str(server.conf), "sendmail", *args]
    if uid is not None:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]
    r = subprocess.run(cmd, input=input, capture_output=True, env=sanitizer_env(), timeout=60)
    assert b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr
    return r


def as_user(uid, *cmd):
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           *cmd], capture_output=True, timeout=30)


def maildrop(server):
    return server.data / "maildrop"


def maildrop_files(server):
    return sorted(p.name for p in maildrop(server).iterdir())


def inbox(server):
    """Every message in USER's INBOX, read over IMAP."""
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(USER, PASSWORD)
    n = int(m.select("INBOX")[1][0])
    out = [m.fetch(str(i + 1), "(BODY.PEEK[])")[1][0][1] for i in range(n)]
    m.logout()
    return out


def inbox_count(server, user=USER):
    r = server.wharf("mailbox", "stats", user, "--json", check=False)
    return json.loads(r.stdout)["messages"] if r.returncode == 0 else 0


def subject(raw):
    m = re.search(rb"^Subject: (.*?)\r$", raw, re.M)
    return m.group(1).decode() if m else None


def put_file(server, name, uid, content, mode=0o640):
    """Puts content into the maildrop as name, owned by uid, in one step (the
    pickup may be looking): written beside it, then renamed in. Its group is
    the maildrop's, as the setgid bit gives every file made in it."""
    staging = server.base / "staging"
    staging.write_bytes(content)
    os.chown(staging, uid, maildrop(server).stat().st_gid)
    staging.chmod(mode)
    os.rename(staging, maildrop(server) / name)


def drop_file(server, name, uid, sender, rcpts, data, claimed_uid=None):
    """A maildrop file written by hand, owned by uid, as a user could write it."""
    def rec(t, v):
        return t + struct.pack(">I", len(v)) + v
    body = b"WMDR" + struct.pack(">I", 1) + rec(b"U", struct.pack(">I", uid if claimed_uid is None
                                                                 else claimed_uid))
    body += rec(b"S", sender) + b"".join(rec(b"R", r) for r in rcpts) + rec(b"M", data)
    put_file(server, name, uid, body + b"Z\0\0\0\0")


def mta_pid(server):
    return int(re.findall(r"started mta \(worker 1/1\), pid (\d+)", server.log())[-1])


def test_sendmail_while_down_is_delivered_once_with_honest_trace(server):
    server.stop()
    assert sendmail(server, USER, input=b"Subject: from root\n\nhi\n").returncode == 0
    r = sendmail(server, USER, uid=NOBODY, input=b"Subject: from nobody\n\nhi\n")
    assert r.returncode == 0 and r.stderr == b"", r.stderr  # quiet: cron would mail stderr
    assert sendmail(server, "-f", "boss@example.org", USER, uid=NOBODY,
                    input=b"Subject: forged by nobody\n\nhi\n").returncode == 0
    assert sendmail(server, "-t", "-i", input=b"To: Bob <bob@example.test>\nBcc: alice@example.test"
                    b"\nSubject: with -t\n\n.\nafter the dot\n").returncode == 0
    assert len(maildrop_files(server)) == 4
    # mailq: the waiting files, with the queue ids they will have
    q = [json.loads(line) for line in server.wharf("mailq", "--json").stdout.splitlines()]
    assert {e["queue_name"] for e in q} == {"maildrop"} and len(q) == 4
    nob = [e for e in q if e["sender"] == "nobody@mail.example.test"]
    assert len(nob) == 1 and nob[0]["queue_id"].endswith("m1eke")  # 65534 in base 36
    assert "waiting in the maildrop" in server.wharf("mailq").stdout.decode()
    # -bs is a conversation: without a server it still fails at once
    assert sendmail(server, "-bs").returncode == 75

    server.start()
    msgs = wait_until(lambda: (lambda m: m if len(m) >= 4 else None)(inbox(server)), 30,
                      what="four deliveries")
    wait_until(lambda: maildrop_files(server) == [], what="the maildrop to empty")
    assert inbox_count(server, OTHER) == 1  # the Bcc of -t
    by = {subject(m): m for m in msgs}
    assert len(msgs) == 4 and sorted(by) == ["forged by nobody", "from nobody", "from root",
                                             "with -t"], list(by)
    root_msg, nob_msg, forged = by["from root"], by["from nobody"], by["forged by nobody"]
    assert root_msg.startswith(b"Return-Path: <root@mail.example.test>\r\nReceived: by "
                               b"mail.example.test (Wharf, from userid 0)\r\n")
    assert b"Return-Path: <nobody@mail.example.test>" in nob_msg
    assert b"(Wharf, from userid 65534)" in nob_msg and b"X-Authentication-Warning" not in nob_msg
    assert b"From: nobody <nobody@mail.example.test>\r\n" in nob_msg
    assert b"Message-ID: <" in nob_msg and b"\r\nDate: " in nob_msg
    # -f by an ordinary user: allowed (cron, lists), but marked and logged
    assert b"Return-Path: <boss@example.org>" in forged and b"from userid 65534" in forged
    assert (b"X-Authentication-Warning: mail.example.test: nobody set sender to "
            b"<boss@example.org> using -f\r\n") in forged
    assert "(sender set with -f by nobody)" in server.log()
    assert b"Bcc:" not in by["with -t"] and b"\r\n.\r\nafter the dot\r\n" in by["with -t"]
    assert re.search(r": uid=65534 from=<nobody@mail.example\.test>\n", server.log())
    # nothing more turns up later: the spool is empty and the pickup idle
    wait_until(lambda: b"Mail queue is empty" in server.wharf("mailq").stdout, what="spool empty")
    assert server.component("mta")["processes"][0]["status"]["maildrop"] == 0
    assert inbox_count(server) == 4


def test_malformed_files_are_set_aside_and_good_mail_flows(server):
    good = b"Subject: good\r\n\r\nfine\r\n"
    put_file(server, "0000000000000000000000A", NOBODY, b"WMDR\0\0\0\1garbage")
    drop_file(server, "0000000000000000000000B", NOBODY, b"root@mail.example.test",
              [USER.encode()], good, claimed_uid=0)  # claims to be root
    drop_file(server, "0000000000000000000000C", NOBODY, b"a@b", [b"not an address"], good)
    drop_file(server, "0000000000000000000000D", NOBODY, b"a@b", [USER.encode()],
              b"Subject: smuggled\n.\nMAIL FROM:<x@y>\r\n")  # bare LF
    drop_file(server, "no-maildrop-name", NOBODY, b"a@b", [USER.encode()], good)
    put_file(server, "0000000000000000000000F", NOBODY, b"WMDR", mode=0o600)  # unreadable to wharf
    drop_file(server, "0000000000000000000000E", NOBODY, b"nobody@mail.example.test",
              [USER.encode()], good)
    wait_until(lambda: inbox_count(server) == 1, 20, what="the good file delivered")
    wait_until(lambda: maildrop_files(server) == [], what="the bad files moved away")
    corrupt = sorted(p.name for p in (server.data / "spool" / "corrupt").iterdir())
    assert corrupt == ["0000000000000000000000A", "0000000000000000000000B",
                       "0000000000000000000000C", "0000000000000000000000D",
                       "0000000000000000000000F", "no-maildrop-name"]
    log = server.log()
    for name, why in (("A", "truncated record"), ("B", "claims uid 0 but belongs to uid 65534"),
                      ("C", "bad recipient address syntax"), ("D", "bare <LF>"),
                      ("F", "Permission denied")):
        assert re.search(rf"warning: maildrop file 0+{name} \(uid 65534\): {why}.*moved to "
                         r"spool/corrupt", log), (name, log)
    assert "no-maildrop-name (uid 65534): not a maildrop file name" in log
    [msg] = inbox(server)
    assert subject(msg) == "good" and b"from userid 65534" in msg
    assert server.component("mta")["state"] == "running"


def test_what_cannot_be_moved_aside_is_said_once_and_blocks_nothing(server):
    """Directories of a user with a file in each: the mta may neither move
    nor remove them. More of them than a turn takes, named to sort before
    every maildrop file: they are logged once (not at every turn; again an
    hour later) and the good files after them still go through, turn after
    turn."""
    server.stop()  # all of them there for the first turn, which says so for the hour
    script = ("for i in $(seq 70); do mkdir 00-stuck-$i && touch 00-stuck-$i/inside || exit 1; "
              "done")
    r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                        "sh", "-c", script], cwd=maildrop(server), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    server.start()
    for i in range(3):  # each one a later turn of the pickup
        drop_file(server, f"000000000000000000000{i:02X}", NOBODY, b"nobody@mail.example.test",
                  [USER.encode()], f"Subject: turn {i}\r\n\r\nx\r\n".encode())
        wait_until(lambda: inbox_count(server) == i + 1, 20, what=f"message {i}")
    log = server.log()
    for i in range(1, 71):
        assert log.count(f"maildrop file 00-stuck-{i} (uid 65534)") == 1, i
    assert server.component("mta")["processes"][0]["status"]["maildrop"] == 0
    assert (maildrop(server) / "00-stuck-1").is_dir()


def test_users_cannot_list_read_or_remove_each_others_files(server):
    server.stop()
    assert sendmail(server, USER, uid=NOBODY, input=b"Subject: private\n\nsecret\n").returncode == 0
    [name] = maildrop_files(server)
    path = maildrop(server) / name
    st = path.stat()
    assert st.st_uid == NOBODY and st.st_mode & 0o777 == 0o640
    assert maildrop(server).stat().st_mode & 0o7777 == 0o3733
    assert server.data.stat().st_mode & 0o777 == 0o751
    for uid in (DAEMON, NOBODY):
        assert as_user(uid, "ls", str(maildrop(server))).returncode != 0  # nobody lists it
    assert as_user(DAEMON, "cat", str(path)).returncode != 0
    assert as_user(DAEMON, "rm", "-f", str(path)).returncode != 0
    assert as_user(DAEMON, "mv", str(path), str(maildrop(server) / "0000000000000000000000F")
                   ).returncode != 0
    assert as_user(DAEMON, "truncate", "-s", "0", str(path)).returncode != 0
    assert as_user(DAEMON, "touch", str(server.data / "spool" / "queue" / "X")).returncode != 0
    assert as_user(DAEMON, "ls", str(server.data / "spool")).returncode != 0
    assert maildrop_files(server) == [name] and path.stat().st_size == st.st_size
    # the other user's own message is welcome, and both arrive
    assert sendmail(server, USER, uid=DAEMON, input=b"Subject: daemon\n\nx\n").returncode == 0
    server.start()
    wait_until(lambda: inbox_count(server) == 2, 20, what="both delivered")
    assert sorted(subject(m) for m in inbox(server)) == ["daemon", "private"]


def test_sigkill_of_the_mta_during_pickup_neither_duplicates_nor_loses(server):
    server.stop()
    n = 60
    for i in range(n):
        assert sendmail(server, USER, uid=NOBODY if i % 2 else None,
                        input=f"Subject: m{i}\n\nx\n".encode()).returncode == 0
    files = maildrop_files(server)
    keep = maildrop(server) / files[0]
    backup = server.base / "kept"
    shutil.copy2(keep, backup)
    server.start(wait=False)
    wait_until(lambda: re.search(r"mta\[\d+\]: \w+: uid=\d+ from=", server.log()), 30,
               interval=0.005, what="the pickup to begin")
    os.kill(mta_pid(server), signal.SIGKILL)
    wait_until(lambda: len(re.findall(r"started mta", server.log())) >= 2, 30,
               what="the supervisor to restart the mta")
    server.wait_ready()
    wait_until(lambda: inbox_count(server) >= n, 60, what=f"{n} deliveries")
    wait_until(lambda: maildrop_files(server) == [], what="the maildrop to empty")
    subjects = sorted(subject(m) for m in inbox(server))
    assert subjects == sorted(f"m{i}" for i in range(n)), subjects
    # the same file again (same name, same owner) after its delivery: the
    # store knows its queue id and does not deliver it twice
    put_file(server, keep.name, backup.stat().st_uid, backup.read_bytes())
    wait_until(lambda: maildrop_files(server) == [], what="the copy picked up")
    wait_until(lambda: b"Mail queue is empty" in server.wharf("mailq").stdout, what="spool empty")
    assert inbox_count(server) == n


def mailq(server):
    return [json.loads(line) for line in server.wharf("mailq", "--json").stdout.splitlines()]


def test_a_file_queued_just_before_a_crash_is_queued_once(wharf_factory):
    """The state a crash between the spool write and the file's removal
    leaves -- both there -- made exactly: the entry waits for a relayhost that
    refuses, and the file is put back. The next start queues it once."""
    s = wharf_factory(enable={"smtp"}, extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    s.start()
    s.stop()
    assert sendmail(s, "someone@remote.example", uid=NOBODY).returncode == 0
    [name] = maildrop_files(s)
    saved = (maildrop(s) / name).read_bytes()
    s.start()
    [entry] = wait_until(lambda: [e for e in mailq(s) if e["queue_name"] == "deferred"], 20,
                         what="the entry deferred in the spool")
    assert entry["queue_id"].startswith(name) and maildrop_files(s) == []
    s.stop()
    put_file(s, name, NOBODY, saved)
    s.start()
    wait_until(lambda: maildrop_files(s) == [], what="the file removed")
    assert f"{entry['queue_id']}: maildrop file {name} was queued before a restart" in s.log()
    assert [e["queue_id"] for e in mailq(s)] == [entry["queue_id"]]


def test_sendmail_that_cannot_write_durably_is_tempfail(server):
    server.stop()
    # as root: the data directory cannot even be created
    r = subprocess.run([str(WHARF), "-c", str(server.conf), "-o",
                        "data_directory=/proc/no/such/dir", "sendmail", USER],
                       input=b"Subject: x\n\nx\n", capture_output=True, env=sanitizer_env(),
                       timeout=60)
    assert r.returncode == 75, r.stderr
    assert b"cannot connect" in r.stderr and b"cannot be queued locally" in r.stderr
    # as a user, when the maildrop is not there
    shutil.rmtree(maildrop(server))
    r = sendmail(server, USER, uid=NOBODY)
    assert r.returncode == 75 and b"cannot be queued locally" in r.stderr, r.stderr
    # a message the pickup would refuse is refused now, not set aside later
    r = sendmail(server, USER, uid=NOBODY, input=b"Subject: x\n\nbare\rCR\n")
    assert r.returncode == 65 and b"bare <CR>" in r.stderr, r.stderr
    r = sendmail(server, "nodomain@", uid=NOBODY)
    assert r.returncode == 67 and b"bad recipient address" in r.stderr, r.stderr


def scripted_server(steps):
    """A one-connection SMTP listener that says steps[0] as its greeting, then
    answers each command line with the next step (after DATA's 354 it reads
    the message to its final dot first); None closes without a word. Returns
    its port."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve():
        conn, _ = lsock.accept()
        f = conn.makefile("rb")
        in_data = False
        for i, step in enumerate(steps):
            if i > 0:
                if in_data:
                    while f.readline() not in (b".\r\n", b""):
                        pass
                elif not f.readline():
                    break
            if step is None:
                break
            conn.sendall(step.encode() + b"\r\n")
            in_data = step.startswith("354")
        f.close()
        conn.close()
        lsock.close()
    threading.Thread(target=serve, daemon=True).start()
    return lsock.getsockname()[1]


@pytest.mark.parametrize("steps,rc,dropped", [
    (["421 4.3.2 mx Service shutting down"], 0, True),
    (["220 mx", "250 mx", "250 ok", "250 ok", "421 4.3.2 going away"], 0, True),
    (["220 mx", "250 mx", "250 ok", "250 ok", "354 go on", None], 75, False),
    (["220 mx", "250 mx", "250 ok", "550 5.1.1 no such user"], 67, False),
], ids=["421-greeting", "421-to-data", "lost-after-the-message", "refused"])
def test_the_maildrop_takes_only_what_the_server_cannot_have(server, steps, rc, dropped):
    server.stop()
    port = scripted_server(steps)
    r = subprocess.run([str(WHARF), "-c", str(server.conf), "-o", f"smtp_listen=127.0.0.1:{port}",
                        "sendmail", USER], input=b"Subject: x\n\nx\n", capture_output=True,
                       env=sanitizer_env(), timeout=60)
    assert r.returncode == rc, r.stderr
    assert len(maildrop_files(server)) == (1 if dropped else 0)
    if rc == 75:
        assert b"lost connection to the mail server after the message" in r.stderr
