"""The Information Store seen from outside: `wharf mailbox`, quotas, restarts.

Runs a real wharfd; accounts come from the directory's commands.
"""
import json

# The services this module's servers listen on (conftest.wharf_factory).
WHARF_SERVICES = ()  # only the store, through the wharf command: no listener



def setup_users(server, *users, quota_messages=None):
    server.wharf("domain", "add", "example.test", check=False)
    for u in users:
        extra = ["--quota-messages", str(quota_messages)] if quota_messages else []
        server.wharf("user", "add", u, "--password-stdin", *extra, input=b"secret-pw-1\n")


def mailbox(server, user):
    return json.loads(server.wharf("mailbox", "list", user, "--json").stdout)


def test_mailbox_list_and_stats(wharf_server):
    setup_users(wharf_server, "dora@example.test")
    wharf_server.wharf("deliver", "dora@example.test", input=b"Subject: 1\n\none\n")
    wharf_server.wharf("deliver", "dora@example.test", input=b"Subject: 2\n\ntwo\n")
    data = mailbox(wharf_server, "dora@example.test")
    inbox = next(f for f in data["folders"] if f["name"] == "INBOX")
    assert inbox["messages"] == 2 and inbox["unseen"] == 2 and inbox["uidnext"] == 3
    assert inbox["highestmodseq"] >= 3
    stats = json.loads(wharf_server.wharf("mailbox", "stats", "dora@example.test", "--json").stdout)
    assert stats["messages"] == 2
    assert stats["quota_messages_used"] == 2
    assert stats["bytes"] == stats["quota_bytes_used"] == len(b"Subject: 1\r\n\r\none\r\n") * 2
    text = wharf_server.wharf("mailbox", "list", "dora@example.test").stdout.decode()
    assert "INBOX" in text and "\\Sent" in text
    r = wharf_server.wharf("mailbox", "show", "dora@example.test", "INBOX", "9", check=False)
    assert r.returncode == 66
    # a typo is not a new account: the directory is asked first
    r = wharf_server.wharf("mailbox", "list", "dorra@example.test", check=False)
    assert r.returncode == 67
    # the domain defaults to the first of mydomains
    assert mailbox(wharf_server, "dora")["user"] == "dora@example.test"


def test_quota_exceeded_is_a_temporary_failure(wharf_server):
    setup_users(wharf_server, "erin@example.test", quota_messages=1)
    wharf_server.wharf("deliver", "erin@example.test", input=b"Subject: 1\n\none\n")
    r = wharf_server.wharf("deliver", "erin@example.test", input=b"Subject: 2\n\ntwo\n", check=False)
    assert r.returncode == 75, r.stderr
    inbox = next(f for f in mailbox(wharf_server, "erin@example.test")["folders"]
                 if f["name"] == "INBOX")
    assert inbox["messages"] == 1


def test_uids_survive_a_restart(wharf_factory):
    s = wharf_factory().start()
    setup_users(s, "finn@example.test")
    for i in range(3):
        s.wharf("deliver", "finn@example.test", input=b"Subject: %d\n\nx\n" % i)
    before = next(f for f in mailbox(s, "finn@example.test")["folders"] if f["name"] == "INBOX")
    s.stop()
    s.start()
    s.wharf("deliver", "finn@example.test", input=b"Subject: after\n\nx\n")
    after = next(f for f in mailbox(s, "finn@example.test")["folders"] if f["name"] == "INBOX")
    assert after["uidvalidity"] == before["uidvalidity"]
    assert after["uidnext"] == before["uidnext"] + 1
    assert after["highestmodseq"] > before["highestmodseq"]
    assert s.wharf("mailbox", "show", "finn@example.test", "INBOX", "4").stdout == \
        b"Subject: after\r\n\r\nx\r\n"


def test_gc_command_keeps_live_messages(wharf_server):
    setup_users(wharf_server, "gus@example.test")
    wharf_server.wharf("deliver", "gus@example.test", input=b"Subject: keep\n\nkeep\n")
    wharf_server.wharf("mailbox", "gc")
    assert wharf_server.wharf("mailbox", "show", "gus@example.test", "INBOX", "1").stdout == \
        b"Subject: keep\r\n\r\nkeep\r\n"
