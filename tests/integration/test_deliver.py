"""`wharf deliver` (the LDA) and local delivery through the mta, against a real wharfd.

Accounts come from the directory's own commands (`wharf domain add`,
`wharf user add`); messages are read back with `wharf mailbox show`, which
returns the stored bytes exactly.
"""
import json
import os
import pwd
import smtplib
import subprocess

import pytest

from conftest import WHARF, sanitizer_env, wait_until

# The services this module's servers listen on (conftest.wharf_factory).
WHARF_SERVICES = ("smtp",)

USERS = ("alice@example.test", "bob@example.test", "carol@example.test")


def add_users(server, *users):
    server.wharf("domain", "add", "example.test", check=False)  # may already be in mydomains
    for u in users:
        server.wharf("user", "add", u, "--password-stdin", input=b"secret-pw-1\n")


def deliver(server, user, message, *opts, check=True):
    return server.wharf("deliver", *opts, user, input=message, check=check)


def show(server, user, folder, uid):
    return server.wharf("mailbox", "show", user, folder, str(uid)).stdout


def folders(server, user):
    data = json.loads(server.wharf("mailbox", "list", user, "--json").stdout)
    return {f["name"]: f for f in data["folders"]}


@pytest.fixture
def server(wharf_server):
    add_users(wharf_server, *USERS)
    return wharf_server


def test_lf_message_is_stored_with_crlf_byte_for_byte(server):
    msg = (b"From: Sender <s@example.net>\nTo: alice@example.test\nSubject: caf\xc3\xa9\n\n"
           b"line one\n\nline three with trailing spaces   \n.\n..dot\nlast line without newline")
    r = deliver(server, "alice@example.test", msg)
    assert r.returncode == 0
    assert show(server, "alice@example.test", "INBOX", 1) == msg.replace(b"\n", b"\r\n")
    f = folders(server, "alice@example.test")["INBOX"]
    assert f["messages"] == 1 and f["bytes"] == len(msg.replace(b"\n", b"\r\n"))


def test_crlf_message_is_kept_exactly(server):
    msg = b"Subject: crlf\r\n\r\nbody\r\nlone CR\rstays\r\n\x00nul too\r\n"
    deliver(server, "bob@example.test", msg)
    assert show(server, "bob@example.test", "INBOX", 1) == msg


def test_unknown_user_is_ex_nouser(server):
    r = deliver(server, "nobody@example.test", b"Subject: x\n\nx\n", check=False)
    assert r.returncode == 67, r.stderr


def test_folder_option_and_missing_folder_falls_back_to_inbox(server):
    deliver(server, "alice@example.test", b"Subject: a\n\na\n", "-m", "Archive")
    deliver(server, "alice@example.test", b"Subject: b\n\nb\n", "-m", "No/Such/Folder")
    f = folders(server, "alice@example.test")
    assert f["Archive"]["messages"] == 1
    assert f["INBOX"]["messages"] == 1
    assert show(server, "alice@example.test", "Archive", 1) == b"Subject: a\r\n\r\na\r\n"


def test_default_folders_with_special_use(server):
    f = folders(server, "carol@example.test")
    assert {n: f[n]["special_use"] for n in f} == {
        "INBOX": None, "Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash",
        "Junk": "\\Junk", "Archive": "\\Archive"}


def test_same_message_to_three_users_is_one_blob(server):
    msg = b"Subject: for everyone\n\n" + b"x" * 5000 + b"\n"
    for u in USERS:
        deliver(server, u, msg)
    for u in USERS:
        assert show(server, u, "INBOX", 1) == msg.replace(b"\n", b"\r\n")
    blobs = json.loads(server.wharf("mailbox", "blobs", "--json").stdout)
    assert blobs["blobs"] == 1
    assert blobs["blob_bytes"] == len(msg.replace(b"\n", b"\r\n"))


def test_concurrent_deliveries_lose_nothing(server):
    n = 40
    msgs = [b"Subject: message %d\n\nbody of %d\n" % (i, i) for i in range(n)]
    procs = []
    for m in msgs:
        p = subprocess.Popen([str(WHARF), "-c", str(server.conf), "deliver", "alice@example.test"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=sanitizer_env())
        procs.append(p)
    for p, m in zip(procs, msgs):
        out, err = p.communicate(m, timeout=120)
        assert p.returncode == 0, err.decode(errors="replace")
    f = folders(server, "alice@example.test")["INBOX"]
    assert f["messages"] == n
    assert f["uidnext"] == n + 1  # UIDs 1..n, none skipped, none reused
    stored = {show(server, "alice@example.test", "INBOX", uid) for uid in range(1, n + 1)}
    assert stored == {m.replace(b"\n", b"\r\n") for m in msgs}


def test_deliveries_go_through_the_mta_and_log_in_postfix_shape(server):
    deliver(server, "bob@example.test", b"Subject: via mta\n\nhi\n")
    wait_until(lambda: "to=<bob@example.test>, relay=local" in server.log(),
               what="the mta's delivery log line")
    line = next(l for l in server.log().splitlines() if "to=<bob@example.test>, relay=local" in l)
    assert "wharf/mta" in line
    assert "dsn=2.0.0, status=sent (delivered to mailbox)" in line


def test_store_files_belong_to_the_wharf_user_and_are_private(server):
    deliver(server, "alice@example.test", b"Subject: owner\n\nx\n")
    server.wharf("mailbox", "stats", "alice@example.test")
    if os.geteuid() != 0:
        pytest.skip("ownership only matters when started as root")
    wharf_uid = pwd.getpwnam(server.settings.get("wharf_user", "wharf")).pw_uid
    for root, dirs, files in os.walk(server.data / "store"):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            assert st.st_uid == wharf_uid, name
            assert st.st_mode & 0o077 == 0, f"{name} is open to others: {oct(st.st_mode)}"


def test_deliver_without_wharfd_uses_the_same_path(wharf_factory):
    s = wharf_factory("offline")  # never started
    add_users(s, "alice@example.test")
    deliver(s, "alice@example.test", b"Subject: offline\n\nstill delivered\n")
    assert show(s, "alice@example.test", "INBOX", 1) == b"Subject: offline\r\n\r\nstill delivered\r\n"
    r = deliver(s, "ghost@example.test", b"x\n", check=False)
    assert r.returncode == 67
    deliver(s, "alice@example.test", b"Subject: filed\n\nx\n", "-m", "Archive")
    assert show(s, "alice@example.test", "Archive", 1) == b"Subject: filed\r\n\r\nx\r\n"


def needed_libraries(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return {line.split("[", 1)[1].split("]")[0] for line in out.splitlines() if "(NEEDED)" in line}


def test_wharf_front_loads_no_server_library():
    """`wharf` runs deliveries itself and must stay small: loading the server's
    libraries cost ~5 ms of CPU per `wharf deliver` (bench/store)."""
    heavy = ("libssl", "libcrypto", "libsqlite3", "libevent", "libunbound", "libjansson")
    front = needed_libraries(str(WHARF))
    assert not [lib for lib in front if lib.startswith(heavy)], front
    admin = needed_libraries(str(WHARF.parent / "wharf-admin"))
    assert [lib for lib in admin if lib.startswith("libsqlite3")], admin


def test_smtp_message_reaches_the_inbox(server):
    with smtplib.SMTP(server.host, server.ports["smtp"], timeout=30) as c:
        c.sendmail("sender@example.net", ["alice@example.test", "bob@example.test"],
                   b"From: sender@example.net\r\nSubject: over smtp\r\n\r\nhello\r\n")
    for u in ("alice@example.test", "bob@example.test"):
        wait_until(lambda: folders(server, u)["INBOX"]["messages"] == 1, what=f"delivery to {u}")
        assert b"Subject: over smtp\r\n" in show(server, u, "INBOX", 1)
    # the spool entry goes once every recipient is delivered
    wait_until(lambda: ": removed" in server.log(), what="the spool entry's removal")
    blobs = json.loads(server.wharf("mailbox", "blobs", "--json").stdout)
    assert blobs["blobs"] == 1
