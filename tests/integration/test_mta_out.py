"""Outbound delivery by the mta (issue 7): the queue loop sends remote
recipients with the SMTP client, retries, and bounces.

- two real wharfd servers (127.0.0.2 serving a.test, 127.0.0.3 serving
  b.test), each routing the other's domain to it with transport_routes and
  the TLS policy `require`: a user on one writes to a user on the other, the
  message arrives with both servers' Received lines (ESMTPSA on the way in,
  ESMTPS between the servers), and the answer goes back the same way;
- an aiosmtpd peer that answers 451 first: the entry is deferred (mailq shows
  why), retried after mta_retry_min (1s here), then sent;
- an aiosmtpd peer that answers 550: a valid RFC 3464 report lands in the
  local sender's INBOX (parsed with Python's email package), and the report
  itself is never bounced;
- a peer that always answers 451, with a 3s queue lifetime: the message
  expires and bounces;
- a delay report once mta_delay_warning has passed, and only once;
- a restart keeps the retry schedule (the next attempt time is in the spool);
- 40 recipients at one peer go in one transaction;
- `wharf queue show|flush|hold|release|requeue|delete` steer a deferred
  message through the running mta.
Everything runs against the build in WHARF_BUILD (the ASan+UBSan one in CI).
"""
import email
import email.policy
import json
import re
import smtplib
import socket
import threading

import pytest

from conftest import free_port, wait_until
from smtp_helpers import add_user, tls_context

PW = "pw-secret"


def greets(host, port):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            return s.recv(4).startswith(b"220")
    except OSError:
        return False


def start(server):
    server.start(wait=False)
    for svc in ("smtp", "submission"):
        wait_until(lambda: server.proc.poll() is None and greets(server.host, server.ports[svc]),
                   30, what=f"{svc} greeting")
    # ... and the auth process too: a login before it listens is a 454 (seen under load)
    server.wait_ready()
    return server


def make_server(factory, name, host, domain, extra=None):
    settings = {"myhostname": f"mail.{domain}", "mydomains": domain, "mta_retry_min": "1s"}
    settings.update(extra or {})
    return factory(name, host=host, enable={"smtp", "submission"}, extra=settings)


def submit(server, user, rcpts, body):
    with smtplib.SMTP(server.host, server.ports["submission"], timeout=20) as c:
        c.ehlo("client.example")
        c.starttls(context=tls_context())
        c.ehlo("client.example")
        c.login(user, PW)
        refused = c.sendmail(user, rcpts, body)
        assert refused == {}


def inbox(server, user):
    """The messages in user's INBOX, as bytes."""
    r = server.wharf("mailbox", "stats", user, "--json", check=False)
    n = json.loads(r.stdout)["messages"] if r.returncode == 0 else 0
    return [server.wharf("mailbox", "show", user, "INBOX", str(i + 1)).stdout for i in range(n)]


def spool_empty(server):
    return b"Mail queue is empty" in server.wharf("mailq").stdout


def log_lines(server, pattern):
    return [ln for ln in server.log().splitlines() if re.search(pattern, ln)]


# ------------------------------------------------------------ two wharfd servers

@pytest.fixture
def two_servers(wharf_factory):
    a = make_server(wharf_factory, "a", "127.0.0.2", "a.test")
    b = make_server(wharf_factory, "b", "127.0.0.3", "b.test")
    a.settings["transport_routes"] = f"b.test=[127.0.0.3]:{b.ports['smtp']} require"
    b.settings["transport_routes"] = f"a.test=[127.0.0.2]:{a.ports['smtp']} require"
    a.write_config()
    b.write_config()
    start(a)
    start(b)
    if not add_user(a, "alice@a.test", PW) or not add_user(b, "bob@b.test", PW):
        pytest.skip("directory not built")
    return a, b


def test_two_servers_exchange_mail_over_starttls(two_servers):
    a, b = two_servers
    submit(a, "alice@a.test", ["bob@b.test"],
           b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: hello b\r\n\r\nacross the wire\r\n")
    got = wait_until(lambda: inbox(b, "bob@b.test") or None, 30, what="delivery on b")
    msg = email.message_from_bytes(got[0], policy=email.policy.default)
    assert msg["Subject"] == "hello b"
    received = msg.get_all("Received")
    assert len(received) == 2
    assert "by mail.b.test (Wharf) with ESMTPS " in received[0]  # a -> b, over TLS
    assert "by mail.a.test (Wharf) with ESMTPSA " in received[1]  # the submission
    assert msg["Return-Path"] == "<alice@a.test>"
    assert msg.get_content().strip() == "across the wire"
    wait_until(lambda: spool_empty(a), 10, what="a's spool empty")
    sent = log_lines(a, r"to=<bob@b\.test>, relay=127\.0\.0\.3\[127\.0\.0\.3\]:\d+, delay=\d+, "
                        r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.\d\.\d, status=sent \(250 ")
    assert len(sent) == 1, a.log()
    # and back
    submit(b, "bob@b.test", ["alice@a.test"], b"Subject: re: hello b\r\n\r\nback\r\n")
    got = wait_until(lambda: inbox(a, "alice@a.test") or None, 30, what="delivery on a")
    back = email.message_from_bytes(got[0], policy=email.policy.default)
    assert back["Subject"] == "re: hello b"
    assert "by mail.a.test (Wharf) with ESMTPS " in back.get_all("Received")[0]


# ------------------------------------------------------------ scripted aiosmtpd peers

class Peer:
    """An aiosmtpd server whose RCPT replies follow a script per attempt."""

    def __init__(self, controller_mod, rcpt_reply):
        self.rcpt_reply = rcpt_reply  # (attempt number, address) -> reply or None (accept)
        self.envelopes = []  # (mail_from, rcpt_tos, content) per DATA
        self.attempts = 0
        self.lock = threading.Lock()
        peer = self

        class Handler:
            async def handle_MAIL(self, server, session, envelope, address, options):
                with peer.lock:
                    peer.attempts += 1
                envelope.mail_from = address
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, options):
                reply = peer.rcpt_reply(peer.attempts, address)
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                with peer.lock:
                    peer.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos),
                                           envelope.original_content))
                return "250 2.0.0 queued as PEER1"

        self.port = free_port()
        self.controller = controller_mod.Controller(Handler(), hostname="127.0.0.1",
                                                    port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def wharf_for_peer(factory, name, port, extra=None):
    """A started wharfd for a.test (user alice) routing peer.test to the peer on port."""
    settings = {"transport_routes": f"peer.test=[127.0.0.1]:{port} none"}
    settings.update(extra or {})
    w = start(make_server(factory, name, "127.0.0.2", "a.test", settings))
    if not add_user(w, "alice@a.test", PW):
        pytest.skip("directory not built")
    return w


@pytest.fixture
def peer_and_wharf(wharf_factory):
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    made = []

    def make(rcpt_reply, extra=None):
        p = Peer(controller_mod, rcpt_reply)
        made.append(p)
        return p, wharf_for_peer(wharf_factory, f"w{len(made)}", p.port, extra)

    yield make
    for p in made:
        p.stop()


def test_4xx_is_deferred_then_retried_and_sent(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "451 4.3.0 come back later" if attempt == 1
                             else None)
    submit(w, "alice@a.test", ["carol@peer.test"], b"Subject: patience\r\n\r\nhi\r\n")
    # deferred first, and mailq says why
    wait_until(lambda: log_lines(w, r"to=<carol@peer\.test>.*status=deferred"), 20,
               what="a deferral")
    wait_until(lambda: peer.envelopes, 30, what="the retry to be accepted")
    assert peer.attempts == 2
    assert peer.envelopes[0][1] == ["carol@peer.test"]
    wait_until(lambda: spool_empty(w), 10, what="spool empty after the retry")
    deferred = log_lines(w, r"to=<carol@peer\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, "
                            r"delay=\d+, delays=[\d./]+, dsn=4\.3\.0, status=deferred \(451 4\.3\.0 come back later\)")
    assert len(deferred) == 1, w.log()
    assert log_lines(w, r"to=<carol@peer\.test>.*dsn=2\.0\.0, status=sent \(250 2\.0\.0 queued")


def test_mailq_shows_why_a_message_waits(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "452 4.2.2 mailbox full",
                             {"mta_retry_min": "1h"})
    submit(w, "alice@a.test", ["dave@peer.test"], b"Subject: wait\r\n\r\nx\r\n")
    out = wait_until(lambda: (lambda o: o if b"mailbox full" in o else None)(
        w.wharf("mailq").stdout), 20, what="mailq reason")
    lines = out.decode().splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert re.fullmatch(r"\(127\.0\.0\.1\[127\.0\.0\.1\]:\d+: 452 4\.2\.2 mailbox full\)", lines[2])
    assert lines[3].strip() == "dave@peer.test"
    j = json.loads(w.wharf("mailq", "--json").stdout.splitlines()[0])
    assert j["queue_name"] == "deferred" and j["attempts"] == 1
    assert "452 4.2.2 mailbox full" in j["delay_reason"]
    assert peer.attempts == 1  # one hour back-off: no second attempt


def parse_report(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts][:2] == ["text/plain", "message/delivery-status"]
    status = parts[1].get_payload()  # per-message block, then one block per recipient
    return msg, parts, status


def test_5xx_bounces_to_the_local_sender(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "550 5.1.1 no such user here"
                             if addr.startswith("nobody") else None)
    submit(w, "alice@a.test", ["nobody@peer.test", "erin@peer.test"],
           b"Subject: doomed\r\nMessage-ID: <doomed@a.test>\r\n\r\nbody\r\n")
    got = wait_until(lambda: inbox(w, "alice@a.test") or None, 30, what="the bounce")
    assert len(got) == 1
    msg, parts, status = parse_report(got[0])
    assert msg["Return-Path"] == "<>"
    assert msg["To"] and "alice@a.test" in msg["To"]
    rcpt = status[1]
    assert rcpt["Action"] == "failed"
    assert rcpt["Status"] == "5.1.1"
    assert rcpt["Final-Recipient"].lower() == "rfc822; nobody@peer.test"
    assert "550 5.1.1 no such user here" in rcpt["Diagnostic-Code"]
    assert len(status) == 2  # erin was delivered: not in the report
    returned = parts[2]
    assert "doomed@a.test" in returned.as_string()
    # erin got it, nobody did not; the report was not sent anywhere else
    assert [e[1] for e in peer.envelopes] == [["erin@peer.test"]]
    wait_until(lambda: spool_empty(w), 10, what="spool empty")
    assert log_lines(w, r"to=<nobody@peer\.test>.*dsn=5\.1\.1, status=bounced \(550 5\.1\.1")


def test_expired_message_bounces(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "451 4.4.5 busy",
                             {"mta_queue_lifetime": "3s", "mta_delay_warning": "0"})
    submit(w, "alice@a.test", ["frank@peer.test"], b"Subject: too late\r\n\r\nx\r\n")
    got = wait_until(lambda: inbox(w, "alice@a.test") or None, 40, what="the expiry bounce")
    _, _, status = parse_report(got[0])
    assert status[1]["Action"] == "failed"
    assert status[1]["Status"] == "4.4.5"
    assert peer.attempts >= 2 and peer.envelopes == []
    wait_until(lambda: spool_empty(w), 10, what="spool empty")


def test_many_recipients_for_one_peer_go_in_one_transaction(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: None)
    rcpts = [f"user{i}@peer.test" for i in range(40)]
    submit(w, "alice@a.test", rcpts, b"Subject: crowd\r\n\r\nfor all\r\n")
    wait_until(lambda: peer.envelopes, 30, what="delivery to the peer")
    wait_until(lambda: spool_empty(w), 10, what="spool empty")
    assert len(peer.envelopes) == 1 and peer.attempts == 1
    assert sorted(peer.envelopes[0][1]) == sorted(rcpts)
    assert peer.envelopes[0][2].endswith(b"\r\n\r\nfor all\r\n")
    assert len(log_lines(w, r"to=<user\d+@peer\.test>.*status=sent")) == 40


def queue_entry(server):
    lines = server.wharf("queue", "list", "--json").stdout.splitlines()
    return json.loads(lines[0]) if lines else None


def test_queue_commands_steer_a_deferred_message(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "451 4.3.0 not yet" if attempt <= 3 else None,
                             {"mta_retry_min": "1h"})
    submit(w, "alice@a.test", ["gina@peer.test"], b"Subject: steer\r\n\r\nsteered\r\n")
    e = wait_until(lambda: (lambda e: e if e and e.get("attempts") == 1 else None)(
        queue_entry(w)), 20, what="the first deferral")
    qid = e["queue_id"]
    shown = w.wharf("queue", "show", qid).stdout.decode()
    assert "state: deferred" in shown and "recipient: <gina@peer.test> pending" in shown
    assert "reason: 127.0.0.1[127.0.0.1]:" in shown and "451 4.3.0 not yet" in shown
    assert w.wharf("queue", "show", qid, "--body").stdout.endswith(b"\r\n\r\nsteered\r\n")
    # flush: tried again at once, in spite of the one-hour back-off
    w.wharf("queue", "flush", qid)
    wait_until(lambda: (queue_entry(w) or {}).get("attempts") == 2, 20, what="flushed attempt")
    # hold: flush does nothing to a held entry; mailq marks it with '!'
    w.wharf("queue", "hold", qid)
    wait_until(lambda: (queue_entry(w) or {}).get("queue_name") == "hold", 20, what="hold")
    assert re.search(rf"^{qid}!\s", w.wharf("mailq").stdout.decode(), re.M)
    w.wharf("queue", "flush", "ALL")
    # release: due at once -> third attempt, still refused
    w.wharf("queue", "release", qid)
    wait_until(lambda: (queue_entry(w) or {}).get("attempts") == 3, 20, what="released attempt")
    assert peer.attempts == 3  # the flush of the held entry did not reach the peer
    # requeue: the retry state is forgotten, and the fourth attempt is accepted
    w.wharf("queue", "requeue", qid)
    wait_until(lambda: peer.envelopes, 20, what="delivery after requeue")
    wait_until(lambda: spool_empty(w), 10, what="spool empty")
    # delete: an entry goes away without delivery; unknown ids are refused
    peer.rcpt_reply = lambda attempt, addr: "451 4.3.0 never"
    submit(w, "alice@a.test", ["hank@peer.test"], b"Subject: gone\r\n\r\nx\r\n")
    e = wait_until(lambda: (lambda e: e if e and e.get("attempts") == 1 else None)(
        queue_entry(w)), 20, what="second message deferred")
    w.wharf("queue", "delete", e["queue_id"])
    wait_until(lambda: spool_empty(w), 10, what="deleted")
    assert w.wharf("queue", "hold", "NOSUCHID", check=False).returncode != 0
    assert w.wharf("queue", "frobnicate", "ALL", check=False).returncode != 0
    assert len(peer.envelopes) == 1


def test_a_restart_keeps_the_retry_schedule(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "451 4.3.0 later" if attempt == 1 else None,
                             {"mta_retry_min": "1h"})
    submit(w, "alice@a.test", ["ivy@peer.test"], b"Subject: restart\r\n\r\nx\r\n")
    e = wait_until(lambda: (lambda e: e if e and e.get("attempts") == 1 else None)(
        queue_entry(w)), 20, what="the first deferral")
    assert w.stop() == 0
    start(w)
    # the mta reads the entry at start and leaves it for its time (an hour)
    wait_until(lambda: log_lines(w, rf"{e['queue_id']}: deferred, next attempt in \d+s"), 20,
               what="the entry to wait after the restart")
    assert peer.attempts == 1 and queue_entry(w)["attempts"] == 1
    w.wharf("queue", "flush", e["queue_id"])
    wait_until(lambda: peer.envelopes, 20, what="delivery after the flush")


def test_delay_warning_is_sent_once(peer_and_wharf):
    peer, w = peer_and_wharf(lambda attempt, addr: "451 4.2.1 slow down" if attempt <= 3 else None,
                             {"mta_delay_warning": "1s"})
    submit(w, "alice@a.test", ["jo@peer.test"], b"Subject: slow\r\n\r\nx\r\n")
    wait_until(lambda: peer.envelopes, 40, what="final delivery")
    got = wait_until(lambda: inbox(w, "alice@a.test") or None, 20, what="the delay report")
    _, _, status = parse_report(got[0])
    assert status[1]["Action"] == "delayed"
    assert status[1]["Status"] == "4.2.1"
    assert status[1]["Will-Retry-Until"]
    wait_until(lambda: spool_empty(w), 10, what="spool empty")
    assert len(inbox(w, "alice@a.test")) == 1  # once, not at every attempt



class BrokenTlsPeer:
    """Offers STARTTLS, answers 220 to it, then sends bytes that are no TLS
    handshake; a session that does not ask for TLS is accepted as usual."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sessions = []  # per connection: the commands received
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.session(conn.makefile("rwb"))

    def session(self, f):
        cmds = []
        self.sessions.append(cmds)

        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        say("220 broken.peer.test ESMTP")
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.decode().strip()
            cmds.append(cmd.split(" ")[0].upper())
            verb = cmds[-1]
            if verb == "EHLO":
                say("250-broken.peer.test")
                say("250 STARTTLS")
            elif verb == "STARTTLS":
                say("220 go ahead")
                f.write(b"this is not a TLS server hello\r\n" * 4)
                f.flush()
                return
            elif verb == "DATA":
                say("354 go on")
                while f.readline() not in (b".\r\n", b""):
                    pass
                cmds.append("<message>")
                say("250 2.0.0 queued")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")

    def stop(self):
        self.sock.close()


def test_failed_tls_handshake_under_may_is_retried_in_clear_text(wharf_factory):
    peer = BrokenTlsPeer()
    try:
        w = start(make_server(wharf_factory, "w", "127.0.0.2", "a.test", {
            "transport_routes": f"broken.test=[127.0.0.1]:{peer.port} may"}))
        if not add_user(w, "alice@a.test", PW):
            pytest.skip("directory not built")
        submit(w, "alice@a.test", ["kai@broken.test"], b"Subject: clear\r\n\r\nx\r\n")
        wait_until(lambda: spool_empty(w), 30, what="delivery in clear text")
        assert len(peer.sessions) == 2
        assert peer.sessions[0][-1] == "STARTTLS"
        assert "STARTTLS" not in peer.sessions[1] and "<message>" in peer.sessions[1]
        assert log_lines(w, r"4\.7\.5 .*\(trying again without TLS\)")
        assert log_lines(w, r"to=<kai@broken\.test>.*status=sent")
    finally:
        peer.stop()
