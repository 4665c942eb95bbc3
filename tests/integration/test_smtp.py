"""SMTP server (issue 4, receiving side) against a real wharfd: extensions,
durable queueing, relay and submission policy, STARTTLS, smuggling, limits,
BDAT, DSN, 8-bit/SMTPUTF8, logs. Clients: smtplib, raw sockets, swaks and
openssl s_client."""
import re
import signal
import smtplib
import ssl
import subprocess

import pytest

from conftest import free_port, wait_until
from smtp_helpers import (Raw, add_user, wait_smtp_ready, log_has, mailq, message_bytes, queued_id, spool_ids,
                          tls_context)

SMTP_SERVICES = {"smtp", "submission", "smtps"}
LOCAL_USERS = ["bob@example.test", "carol@example.test", "dave@example.test"]


def start(wharf_factory, **extra):
    closed = free_port()
    settings = {"mynetworks": "192.0.2.0/24",  # loopback is NOT trusted: relay tests mean it
                # hermetic: the mta sends the remote domain to a closed port, so its
                # mail is deferred and stays queued for the envelope checks below;
                # mail.example.test, the server's own host name but not one of its
                # domains, is where sendmail's bare addresses go
                "transport_routes": f"elsewhere.example=[127.0.0.1]:{closed} none, "
                                    f"mail.example.test=[127.0.0.1]:{closed} none"}
    settings.update({k: str(v) for k, v in extra.items()})
    s = wharf_factory(enable=SMTP_SERVICES, extra=settings).start(wait=False)
    wait_smtp_ready(s)
    # With the directory built in, local recipients must exist; without it every
    # address in mydomains is accepted (smtp_policy.c).
    s.has_directory = all(add_user(s, u, "pw-" + u) for u in LOCAL_USERS)
    s.has_auth = "started auth" in s.log()
    return s


@pytest.fixture
def server(wharf_factory):
    return start(wharf_factory)


# Envelope checks read the queue through `wharf mailq`; mail for a remote domain
# stays queued (its route leads to a closed port: deferred), so the mta cannot take it first.
REMOTE = "bob@elsewhere.example"


@pytest.fixture
def relay_server(wharf_factory):
    return start(wharf_factory, mynetworks="127.0.0.0/8")


def send_ok(port, rcpts=("bob@example.test",), sender="alice@example.org",
            body=b"Subject: t\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.example")
        c.mail(sender)
        for r in rcpts:
            assert c.rcpt(r)[0] == 250
        code, text = c.data(body)
        assert code == 250, text
        return queued_id(text.decode())


# ---- extensions and basic commands -----------------------------------------

def test_ehlo_lists_every_extension_and_simple_commands_answer(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        code, text = c.ehlo("client.example")
        assert code == 250
        for ext in ("PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                    "CHUNKING", "DSN", "STARTTLS", "HELP"):
            assert ext.encode() in text.split(b"\n"), (ext, text)
        assert b"AUTH" not in text  # never offered in clear
        assert c.docmd("VRFY bob@example.test")[0] == 252
        assert c.docmd("NOOP") == (250, b"2.0.0 Ok")
        assert c.docmd("RSET") == (250, b"2.0.0 Ok")
        assert c.docmd("HELP")[0] == 214
        assert c.docmd("XYZZY")[0] == 502
        assert c.docmd("EXPN staff")[0] == 502
    assert spool_ids(server) == []


def test_queued_only_once_durable_and_listed_by_mailq(relay_server):
    server = relay_server
    rcpts = [REMOTE, "carol@elsewhere.example"]
    qid = send_ok(server.ports["smtp"], rcpts=rcpts)
    # The 250 came after the rename and the directory fsync: the file is there
    # the instant the client has its answer (or the mta already took it).
    assert qid in spool_ids(server) or f"{qid}: to=<" in server.log()
    if qid in spool_ids(server):
        raw = message_bytes(server, qid)
        assert raw.startswith(b"WSPL") and b"\r\nhello\r\n" in raw
        entry = [m for m in mailq(server) if m["queue_id"] == qid][0]
        assert entry["sender"] == "alice@example.org"
        assert [r["address"] for r in entry["recipients"]] == rcpts
        text = server.wharf("mailq").stdout.decode()
        assert re.search(rf"^{qid}\s+\d+ .* alice@example.org$", text, re.M), text
        assert "-- 1 Kbytes in 1 Request." in text
    log_has(server, f"{qid}: from=<alice@example.org>, size=")
    log_has(server, f"{qid}: client=unknown[127.0.0.1]")


def test_received_header_names_tls_version_and_cipher(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.starttls(context=tls_context())
        c.ehlo("client.example")
        c.mail("alice@example.org")
        c.rcpt("bob@example.test")
        code, text = c.data(b"Subject: tls\r\n\r\nx\r\n")
        assert code == 250
        version = c.sock.version()
        cipher = c.sock.cipher()[0]
    raw = message_bytes(server, queued_id(text.decode()))
    assert re.search(rb"Received: from client\.example \(unknown \[127\.0\.0\.1\]\)\r\n\t\(using "
                     + version.encode() + rb" with cipher " + cipher.encode(), raw), raw[:400]
    assert b"with ESMTPS id" in raw
    assert b"Message-ID:" not in raw  # added only on submission


# ---- STARTTLS ---------------------------------------------------------------

def test_commands_pipelined_behind_starttls_are_discarded(server):
    r = Raw(server.ports["smtp"])
    assert r.reply()[0] == 220
    assert r.cmd("EHLO client.example")[0] == 250
    # An attacker's plaintext rides in the same packet as STARTTLS (CVE-2011-0411 family).
    r.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\n")
    assert r.reply()[0] == 220
    r.starttls()
    code, text = r.cmd("EHLO again.example")
    assert code == 250 and "again" not in text and "PIPELINING" in text, text
    # The injected MAIL was never seen: RCPT now needs a MAIL of its own.
    assert r.cmd("RCPT TO:<bob@example.test>")[0] == 503
    assert r.cmd("QUIT")[0] == 221


def test_starttls_resets_helo_and_offers_auth_only_after(server):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.ehlo("x")
        assert not c.has_extn("auth")
        c.starttls(context=tls_context())
        # smtplib forgets EHLO too; the server must refuse MAIL before a new EHLO.
        assert c.docmd("MAIL FROM:<a@example.test>")[0] == 503
        c.ehlo("x")
        assert c.has_extn("auth") and "PLAIN" in c.esmtp_features["auth"]
        assert not c.has_extn("starttls")


def test_openssl_s_client_starttls_smtp(server):
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        f"127.0.0.1:{server.ports['smtp']}", "-quiet", "-ign_eof"],
                       input=b"EHLO s-client.example\r\nQUIT\r\n", capture_output=True, timeout=20)
    assert b"250-PIPELINING" in r.stdout and b"221 2.0.0 Bye" in r.stdout, r.stdout + r.stderr
    assert b"STARTTLS" not in r.stdout.split(b"250-mail.example.test", 1)[1]


def test_implicit_tls_on_465_requires_auth(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["smtps"], timeout=10,
                          context=tls_context()) as c:
        c.ehlo("x")
        assert c.has_extn("auth") and not c.has_extn("starttls")
        assert c.docmd("MAIL FROM:<bob@example.test>")[0] == 530


# ---- relay and submission policy -------------------------------------------

def test_relay_refused_for_strangers_and_logged_like_postfix(server):
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO stranger.example")
    assert r.cmd("MAIL FROM:<spam@example.org>")[0] == 250
    code, text = r.cmd("RCPT TO:<victim@elsewhere.example>")
    assert code == 554 and "5.7.1" in text and "Relay access denied" in text
    log_has(server, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
                    "<victim@elsewhere.example>: Relay access denied; from=<spam@example.org> "
                    "to=<victim@elsewhere.example> proto=ESMTP helo=<stranger.example>")
    assert r.cmd("QUIT")[0] == 221
    log_has(server, "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=4")
    assert spool_ids(server) == []


def test_relay_allowed_from_mynetworks(wharf_factory):
    s = start(wharf_factory, mynetworks="127.0.0.0/8")
    qid = send_ok(s.ports["smtp"], rcpts=["someone@elsewhere.example"])
    assert qid in spool_ids(s) or qid in s.log()


def test_unknown_local_recipient_550_5_1_1(server):
    if not server.has_directory:
        pytest.skip("needs the directory (branch directory) merged")
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    r.cmd("MAIL FROM:<alice@example.org>")
    code, text = r.cmd("RCPT TO:<nobody@example.test>")
    assert code == 550 and "5.1.1" in text
    log_has(server, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 "
                    "<nobody@example.test>: Recipient address rejected:")


def test_submission_requires_starttls_then_auth(server):
    r = Raw(server.ports["submission"])
    r.reply()
    r.cmd("EHLO client.example")
    code, text = r.cmd("MAIL FROM:<bob@example.test>")
    assert code == 530 and "STARTTLS" in text
    assert r.cmd("AUTH PLAIN AGJvYgBwdw==")[0] == 538  # no AUTH in clear
    assert r.cmd("STARTTLS")[0] == 220
    r.starttls()
    r.cmd("EHLO client.example")
    code, text = r.cmd("MAIL FROM:<bob@example.test>")
    assert code == 530 and "Authentication required" in text
    assert r.cmd("AUTH LOGIN") == (334, "334 VXNlcm5hbWU6")
    assert r.cmd("*")[0] == 501  # cancelled
    assert r.cmd("AUTH PLAIN not-base64!")[0] == 501
    assert r.cmd("AUTH CRAM-MD5")[0] == 504
    code, _ = r.cmd("AUTH PLAIN AGJvYgB3cm9uZw==")  # bob / wrong
    assert code in (535, 454)  # 454 while the auth process is not built in
    if code == 535:
        log_has(server, "warning: unknown[127.0.0.1]: SASL PLAIN authentication failed")


def test_submission_auth_and_sender_must_belong_to_user(server):
    if not (server.has_directory and server.has_auth):
        pytest.skip("needs the directory and auth process (branch directory) merged")
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.starttls(context=tls_context())
        c.login("bob@example.test", "pw-bob@example.test")
        assert c.mail("carol@example.test")[0] == 553  # not bob's address
        c.rset()
        c.mail("bob@example.test")
        c.rcpt("someone@elsewhere.example")  # authenticated: may relay
        code, text = c.data(b"Subject: sub\r\n\r\nno id, no date\r\n")
        assert code == 250
    raw = message_bytes(server, queued_id(text.decode()))
    assert b"\r\nMessage-ID: <" in raw and b"\r\nDate: " in raw and b"ESMTPSA" in raw


def test_auth_login_exchange_on_465(server):
    if not (server.has_directory and server.has_auth):
        pytest.skip("needs the auth process (branch directory) merged")
    r = Raw(server.ports["smtps"], tls=True)
    r.reply()
    r.cmd("EHLO x")
    assert r.cmd("AUTH LOGIN") == (334, "334 VXNlcm5hbWU6")
    assert r.cmd("Ym9iQGV4YW1wbGUudGVzdA==") == (334, "334 UGFzc3dvcmQ6")
    assert r.cmd("cHctYm9iQGV4YW1wbGUudGVzdA==")[0] == 235


# ---- message hygiene: smuggling, sizes, limits -----------------------------

SMUGGLING = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_variants_refused(server, name):
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    r.cmd("MAIL FROM:<alice@example.org>")
    r.cmd("RCPT TO:<bob@example.test>")
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: first\r\n\r\nhello" + SMUGGLING[name] +
           b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
           b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
    code, text = r.reply()
    assert code == 550 and "bare" in text, text
    # Nothing smuggled ran: the next reply is for our NOOP, and nothing was queued.
    assert r.cmd("NOOP") == (250, "250 2.0.0 Ok")
    assert spool_ids(server) == []


def test_bare_newlines_normalized_when_configured(wharf_factory):
    s = start(wharf_factory, smtp_bare_newline="normalize")
    r = Raw(s.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    r.cmd("MAIL FROM:<alice@example.org>")
    r.cmd("RCPT TO:<bob@example.test>")
    r.cmd("DATA")
    r.send(b"Subject: n\r\n\r\none\ntwo\n.\nthree\r\n.\r\n")
    code, text = r.reply()
    assert code == 250, text
    raw = message_bytes(s, queued_id(text))
    assert b"\r\none\r\ntwo\r\n.\r\nthree\r\n" in raw  # "\n.\n" did not end the data


def test_oversize_refused_by_size_and_while_reading(wharf_factory):
    s = start(wharf_factory, smtp_max_message_size="2k")
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.ehlo("x")
        assert b"SIZE 2048" in c.ehlo_resp
        assert c.docmd("MAIL FROM:<a@example.org> SIZE=100000")[0] == 552
        c.mail("a@example.org")
        c.rcpt("bob@example.test")
        code, text = c.data(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 200)
        assert code == 552 and b"5.3.4" in text
        assert c.noop()[0] == 250
    assert spool_ids(s) == []


def test_too_many_hops_is_a_loop(wharf_factory):
    """RFC 5321 6.3: a message that has passed smtp_max_hops servers is refused, not relayed on."""
    s = start(wharf_factory, smtp_max_hops=10)
    hops = lambda n: "".join(f"Received: from hop{i}.example by hop{i + 1}.example; "
                             f"Sat, 5 Dec 2026 10:00:00 +0000\r\n" for i in range(n))
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.ehlo("x")
        c.mail("a@example.org")
        c.rcpt("bob@example.test")
        code, text = c.data((hops(10) + "Subject: loop\r\n\r\nround and round\r\n").encode())
        assert code == 554 and b"5.4.6" in text
        # the session goes on; one hop fewer passes, with this server's Received: the tenth
        c.mail("a@example.org")
        c.rcpt("bob@example.test")
        code, text = c.data((hops(9) + "Subject: fine\r\n\r\nonce\r\n").encode())
        assert code == 250, text
    raw = message_bytes(s, queued_id(text.decode()))
    assert raw.count(b"Received: ") == 10  # the spool entry: envelope, then the message
    log_has(s, "reject: 10 or more Received: fields (smtp_max_hops)")
    # counted as refused, the one that passed as queued
    st = s.component("smtp")["processes"][0]["status"]
    assert (st["rejected"], st["queued"]) == (1, 1)


def test_line_too_long_and_too_many_errors(wharf_factory):
    s = start(wharf_factory, smtp_max_errors=3)
    r = Raw(s.ports["smtp"])
    r.reply()
    r.send(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert r.reply()[0] == 500
    assert r.cmd("BOGUS")[0] == 502
    r.send(b"BOGUS\r\n")
    assert r.reply()[0] == 502
    code, text = r.reply()
    assert code == 421 and "too many errors" in text
    assert r.closed()
    log_has(s, "too many errors after UNKNOWN from unknown[127.0.0.1]")


def test_connections_per_client_limited(wharf_factory):
    s = start(wharf_factory, smtp_max_connections_per_ip=2, connection_evict_idle="1h")
    a, b = Raw(s.ports["smtp"]), Raw(s.ports["smtp"])
    assert a.reply()[0] == 220 and b.reply()[0] == 220
    c = Raw(s.ports["smtp"])
    code, text = c.reply()
    assert code == 421 and "too many connections" in text
    a.cmd("QUIT")
    wait_until(lambda: "disconnect from" in s.log(), what="first session gone")
    d = Raw(s.ports["smtp"])
    assert d.reply()[0] == 220


def test_command_timeout_says_421(wharf_factory):
    s = start(wharf_factory, smtp_command_timeout="1s")
    r = Raw(s.ports["smtp"])
    r.reply()
    code, text = r.reply()  # nothing sent: the server gives up first
    assert code == 421 and "4.4.2" in text
    assert r.closed()
    log_has(s, "timeout after CONNECT from unknown[127.0.0.1]")


# ---- 8-bit, SMTPUTF8, DSN, BDAT ---------------------------------------------

def test_8bit_and_smtputf8_kept_intact(relay_server):
    server = relay_server
    body = "Subject: Grüße\r\n\r\nÄpfel und Öl — ✓\r\n".encode()
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    assert r.cmd("MAIL FROM:<jörg@example.org>")[0] == 553  # needs SMTPUTF8
    r.send("MAIL FROM:<jörg@example.org> SMTPUTF8 BODY=8BITMIME\r\n".encode())
    assert r.reply()[0] == 250
    assert r.cmd("RCPT TO:<bob@elsewhere.example>")[0] == 250
    r.cmd("DATA")
    r.send(body + b".\r\n")
    code, text = r.reply()
    assert code == 250
    qid = queued_id(text)
    assert body in message_bytes(server, qid)
    entry = [m for m in mailq(server) if m["queue_id"] == qid][0]
    assert entry["sender"] == "jörg@example.org" and entry["smtputf8"]
    assert entry["body"] == "8BITMIME"


def test_dsn_parameters_kept_in_the_envelope(relay_server):
    server = relay_server
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    assert r.cmd("MAIL FROM:<alice@example.org> RET=HDRS ENVID=QQ+2B1")[0] == 250
    assert r.cmd("RCPT TO:<bob@elsewhere.example> NOTIFY=SUCCESS,FAILURE "
                 "ORCPT=rfc822;bob+2Bx@example.test")[0] == 250
    assert r.cmd("RCPT TO:<carol@elsewhere.example> NOTIFY=NEVER,SUCCESS")[0] == 501
    assert r.cmd("RCPT TO:<carol@elsewhere.example> FOO=1")[0] == 555
    r.cmd("DATA")
    r.send(b"Subject: dsn\r\n\r\nx\r\n.\r\n")
    code, text = r.reply()
    assert code == 250
    entry = [m for m in mailq(server) if m["queue_id"] == queued_id(text)][0]
    assert entry["dsn_ret"] == "HDRS" and entry["dsn_envid"] == "QQ+1"
    assert entry["recipients"][0]["orcpt"] == "rfc822;bob+x@example.test"
    assert entry["recipients"][0]["notify"] == 2 | 4  # SUCCESS | FAILURE


def test_bdat_chunks_pipelined(server):
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    part1 = b"Subject: chunks\r\n\r\nfirst "
    part2 = b"second\r\n.\r\nno dot magic\r\n"
    r.send(b"MAIL FROM:<alice@example.org> BODY=BINARYMIME\r\nRCPT TO:<bob@example.test>\r\n"
           + b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert r.reply()[0] == 250
    assert r.reply()[0] == 250
    assert r.reply()[0] == 250  # first chunk
    code, text = r.reply()
    assert code == 250 and "queued as" in text
    assert part1 + part2 in message_bytes(server, queued_id(text))
    # BDAT without a transaction: the chunk is read and thrown away, then 503.
    r.send(b"BDAT 5 LAST\r\nHELLO")
    assert r.reply()[0] == 503
    assert r.cmd("NOOP")[0] == 250


# ---- other clients -----------------------------------------------------------

def test_swaks_pipelining_and_tls(server):
    for extra in ([], ["--tls"]):
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.ports['smtp']}",
                            "--from", "alice@example.org", "--to", "bob@example.test",
                            "--pipeline", "--helo", "swaks.example", *extra],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
        assert b"queued as" in r.stdout
    assert len(spool_ids(server)) == 2 or "to=<bob@example.test>" in server.log()


def test_sendmail_command_for_cron(relay_server):
    server = relay_server
    msg = b"To: Bob <bob@elsewhere.example>\nBcc: carol@elsewhere.example\nSubject: cron\n\nout\n.\nafter\n"
    r = server.wharf("sendmail", "-t", "-oi", "-odi", "-oem", "-f", "cron@example.test",
                     "-F", "Cron Daemon", input=msg)
    assert r.returncode == 0
    [entry] = [m for m in mailq(server) if m["sender"] == "cron@example.test"]
    assert [x["address"] for x in entry["recipients"]] == ["bob@elsewhere.example",
                                                           "carol@elsewhere.example"]
    raw = message_bytes(server, entry["queue_id"])
    assert b"Bcc:" not in raw and b"\r\n.\r\nafter\r\n" in raw  # -oi: "." is text
    assert b"From: Cron Daemon <cron@example.test>\r\n" in raw
    # Without -i a lone dot ends the input; no recipients is a usage error.
    r = server.wharf("sendmail", "bob@example.test", input=b"Subject: x\n\nbody\n.\nlost\n")
    assert r.returncode == 0
    assert server.wharf("sendmail", input=b"x\n", check=False).returncode == 64
    # Bare local parts (cron's MAILTO=root, -f cron) are this host's, as Postfix's
    # append_at_myorigin; -t takes them from the header too.
    server.wharf("sendmail", "-f", "cron", "root", input=b"Subject: bare\n\nx\n")
    server.wharf("sendmail", "-t", "-f", "cron2", input=b"To: root (Cron Daemon)\nSubject: bare -t\n\nx\n")
    for who in ("cron", "cron2"):
        [entry] = [m for m in mailq(server) if m["sender"] == f"{who}@mail.example.test"]
        assert [x["address"] for x in entry["recipients"]] == ["root@mail.example.test"]
    # A refused recipient is EX_NOUSER (67).
    if server.has_directory:
        r = server.wharf("sendmail", "nobody@example.test", input=b"x\n", check=False)
        assert r.returncode == 67, r.stderr
        # All or none: with one recipient refused, the others get nothing either
        # (the mta's SMTP client pipelines, so DATA must wait for every RCPT reply).
        r = server.wharf("sendmail", "-f", "allornone@example.test", REMOTE,
                         "nobody@example.test", input=b"Subject: x\n\nx\n", check=False)
        assert r.returncode == 67 and b"nobody@example.test" in r.stderr, r.stderr
        assert not [m for m in mailq(server) if m["sender"] == "allornone@example.test"]


def test_shutdown_lets_the_session_finish_its_message_then_says_421(server):
    r = Raw(server.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM" in server.log() or "terminating" in server.log(),
               what="wharfd to take the signal")
    assert r.cmd("NOOP")[0] == 250  # the open session goes on
    r.cmd("MAIL FROM:<alice@example.org>")
    r.cmd("RCPT TO:<bob@example.test>")
    r.cmd("DATA")
    r.send(b"Subject: last one\r\n\r\nx\r\n.\r\n")
    code, text = r.reply()
    assert code == 250, text
    code, text = r.reply()  # ... but starts no next message in this generation
    assert code == 421 and "4.3.2" in text
    assert r.closed()
    assert server.proc.wait(30) == 0


def test_invoked_as_sendmail_and_mailq(relay_server, tmp_path):
    from conftest import WHARF, sanitizer_env
    for name in ("sendmail", "mailq"):
        (tmp_path / name).symlink_to(WHARF)
    env = dict(sanitizer_env(), WHARF_CONFIG=str(relay_server.conf))
    r = subprocess.run([str(tmp_path / "sendmail"), "-oi", "-f", "script@example.test",
                        REMOTE], input=b"Subject: via argv0\n\nhi\n", env=env,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for cmd in ([str(tmp_path / "mailq")], [str(tmp_path / "sendmail"), "-bp"]):
        out = subprocess.run(cmd, env=env, capture_output=True, timeout=30).stdout.decode()
        assert "script@example.test" in out and REMOTE in out, out


def test_kill_9_before_250_leaves_nothing_after_250_loses_nothing(relay_server):
    import os
    import signal
    s = relay_server
    pid = int(re.findall(r"started smtp \(worker 1/1\), pid (\d+)", s.log())[-1])
    r = Raw(s.ports["smtp"])
    r.reply()
    r.cmd("EHLO client.example")
    r.cmd("MAIL FROM:<alice@example.org>")
    r.cmd(f"RCPT TO:<{REMOTE}>")
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: half\r\n\r\n" + b"x" * 20000 + b"\r\n")  # no end of data
    os.kill(pid, signal.SIGKILL)
    assert r.closed()
    assert spool_ids(s) == []  # nothing half-written under a final name
    wait_smtp_ready(s)  # wharfd restarted the worker
    qid = send_ok(s.ports["smtp"], rcpts=[REMOTE])
    s.kill_all()  # everything dies at once, right after the 250
    assert qid in [m["queue_id"] for m in mailq(s)]


def test_status_reports_connections_and_queued(server):
    r = Raw(server.ports["smtp"])
    r.reply()
    send_ok(server.ports["smtp"])

    def smtp_status():
        [c] = [c for c in server.status()["components"] if c["name"] == "smtp"]
        return c
    c = wait_until(lambda: (lambda c: c if c["connections"] == 1 else None)(smtp_status()),
                   what="one open smtp connection in wharf status")
    assert c["processes"][0]["status"]["queued"] == 1


def test_pipelined_flood_from_a_client_that_reads_late(server):
    """200,000 NOOPs sent before reading a byte: the server stops reading while
    its replies pile up (net's write high-water mark), then answers every one."""
    import threading
    r = Raw(server.ports["smtp"], timeout=60)
    r.reply()
    n = 200000
    t = threading.Thread(target=r.send, args=(b"NOOP\r\n" * n + b"QUIT\r\n",))
    t.start()
    # Read late: let the sender run ahead until it finishes or the server stops
    # reading (the outcome must be the same either way, only the path differs).
    t.join(timeout=1)
    got = 0
    while True:
        code, _ = r.reply()
        if code == 221:
            break
        assert code == 250
        got += 1
    t.join()
    assert got == n


def test_sendmail_without_a_running_server_goes_to_the_maildrop(relay_server):
    """More in test_sendmail_maildrop.py."""
    relay_server.stop()
    r = relay_server.wharf("sendmail", REMOTE, input=b"Subject: x\n\nx\n", check=False)
    assert r.returncode == 0, r.stderr
    [entry] = mailq(relay_server)
    assert entry["queue_name"] == "maildrop" and entry["recipients"][0]["address"] == REMOTE
