"""End to end: SMTP in, spool, mta, store, and out again over POP3.

- a message accepted on port 25 lands in the user's INBOX byte for byte (plus
  the trace headers), and its spool file is gone afterwards;
- the "spool-new" event wakes the mta: delivery happens well before the mta's
  periodic scan would have found the file;
- one message to three users is stored once (one blob) and each reads it;
- swaks on port 25 lands in INBOX; 8-bit and SMTPUTF8 mail arrives intact."""
import json
import poplib
import smtplib
import subprocess

import pytest

from conftest import tls_context, wait_until
from smtp_helpers import add_user, queued_id, spool_ids, wait_smtp_ready

# poplib refuses lines over 2048 bytes; some of these messages have longer ones.
poplib._MAXLINE = 1 << 20

USERS = ["alice@example.test", "bob@example.test", "carol@example.test"]


@pytest.fixture
def server(wharf_factory):
    s = wharf_factory(enable={"smtp", "submission", "smtps", "pop3s"},
                      extra={"mynetworks": "192.0.2.0/24"}).start(wait=False)
    wait_smtp_ready(s)
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


def pop3_messages(server, user):
    """Every message in user's INBOX, as a POP3 client reads it."""
    ctx = tls_context()
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=ctx, timeout=20)
    p.user(user)
    p.pass_("pw-" + user)
    out = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(p.stat()[0])]
    p.quit()
    return out


def test_each_of_three_users_reads_the_single_copy(server):
    body = b"Subject: shared\r\n\r\n" + b"z" * 3000 + b"\r\n"
    send(server, USERS, body)
    for u in USERS:
        wait_until(lambda: inbox_count(server, u) == 1, 10, what=f"delivery to {u}")
        (got,) = pop3_messages(server, u)
        assert got.endswith(b"\r\n\r\n" + b"z" * 3000 + b"\r\n")
        assert got.startswith(b"Return-Path: <sender@example.org>\r\n")


def test_swaks_on_port_25_lands_in_inbox(server):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.ports["smtp"]),
                        "--from", "someone@example.org", "--to", "carol@example.test",
                        "--header", "Subject: via swaks", "--body", "hello from swaks"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert b"250 2.0.0 Ok: queued as" in r.stdout
    wait_until(lambda: inbox_count(server, "carol@example.test") == 1, 10, what="delivery")
    (got,) = pop3_messages(server, "carol@example.test")
    assert b"Subject: via swaks\r\n" in got and b"hello from swaks" in got
    assert got.startswith(b"Return-Path: <someone@example.org>\r\nReceived: from ")


def test_8bit_and_smtputf8_arrive_intact(server):
    body8 = "Subject: caf\u00e9\r\nContent-Type: text/plain; charset=utf-8\r\n" \
            "Content-Transfer-Encoding: 8bit\r\n\r\nd\u00e9j\u00e0 vu \u2603\r\n".encode()
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("client.example")
        c.mail("sender@example.org", ["BODY=8BITMIME"])
        assert c.rcpt("alice@example.test")[0] == 250
        assert c.data(body8)[0] == 250
        # SMTPUTF8: a UTF-8 sender and headers.
        c.mail("j\u00fcrgen@example.org", ["SMTPUTF8", "BODY=8BITMIME"])
        assert c.rcpt("alice@example.test")[0] == 250
        assert c.data("From: J\u00fcrgen <j\u00fcrgen@example.org>\r\n"
                      "Subject: \u00fcber\r\n\r\ngr\u00fc\u00dfe\r\n".encode())[0] == 250
    wait_until(lambda: inbox_count(server, "alice@example.test") == 2, 10, what="delivery")
    first, second = pop3_messages(server, "alice@example.test")
    assert first.endswith(body8.split(b"\r\n\r\n", 1)[1])
    assert "Subject: caf\u00e9\r\n".encode() in first
    assert "From: J\u00fcrgen <j\u00fcrgen@example.org>\r\n".encode() in second
    assert second.endswith("gr\u00fc\u00dfe\r\n".encode())
    assert "Return-Path: <j\u00fcrgen@example.org>".encode() in second
