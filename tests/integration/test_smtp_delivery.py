"""End to end: SMTP in, spool, mta, store. These need the mta (branch store)
built into the tree; until it is, they skip and say so.

- a message accepted on port 25 lands in the user's INBOX byte for byte (plus
  the trace headers), and its spool file is gone afterwards;
- the "spool-new" event wakes the mta: delivery happens well before the mta's
  periodic scan would have found the file;
- one message to three users is stored once (one blob)."""
import json
import smtplib

import pytest

from conftest import wait_until
from smtp_helpers import add_user, queued_id, spool_ids, wait_smtp_ready

USERS = ["alice@example.test", "bob@example.test", "carol@example.test"]


@pytest.fixture
def server(wharf_factory):
    s = wharf_factory(enable={"smtp", "submission", "smtps"},
                      extra={"mynetworks": "192.0.2.0/24"}).start(wait=False)
    wait_smtp_ready(s)
    if "started mta" not in s.log():
        pytest.skip("needs the mta (branch store) merged")
    for u in USERS:
        assert add_user(s, u, "pw-" + u)
    return s


def inbox_count(server, user):
    r = server.wharf("mailbox", "stats", user, "--json", check=False)
    return json.loads(r.stdout)["messages"] if r.returncode == 0 else 0


def send(server, rcpts, body):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("client.example")
        c.mail("sender@example.org")
        for r in rcpts:
            assert c.rcpt(r)[0] == 250
        code, text = c.data(body)
        assert code == 250
        return queued_id(text.decode())


def test_smtp_message_reaches_the_mailbox_and_leaves_the_spool(server):
    body = b"Subject: end to end\r\n\r\nline one\r\n..dotted\r\n"
    qid = send(server, ["bob@example.test"], body)
    # Woken by spool-new, not by the periodic scan (minutes): a few seconds at most.
    wait_until(lambda: inbox_count(server, "bob@example.test") == 1, 10, what="delivery")
    raw = server.wharf("mailbox", "show", "bob@example.test", "INBOX", "1").stdout
    assert f" id {qid}".encode() in raw and raw.endswith(b"\r\n\r\nline one\r\n..dotted\r\n")  # smtplib stuffs, we unstuff
    wait_until(lambda: qid not in spool_ids(server), 10, what="spool file removed")


def test_one_message_to_three_users_is_one_blob(server):
    body = b"Subject: for everyone\r\n\r\n" + b"y" * 5000 + b"\r\n"
    send(server, USERS, body)
    for u in USERS:
        wait_until(lambda: inbox_count(server, u) == 1, 10, what=f"delivery to {u}")
    blobs = json.loads(server.wharf("mailbox", "blobs", "--json").stdout)
    assert blobs["blobs"] == 1
