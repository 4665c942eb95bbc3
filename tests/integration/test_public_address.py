"""Mail-enabled public folders: `wharf public address NAME ADDRESS` (doc/accounts.md).

Mail sent over SMTP (smtplib) to a public folder's address is read over NNTP
(nntplib: GROUP, ARTICLE by number and by Message-ID, OVER) and over IMAP in
`Public Folders/...`, and fed to a peer (INN 2.7, innpeer.py); the RCPT
answer is 250 for the address and 550 5.1.1 once it is removed, or once its
folder is deleted; a folder renamed over IMAP keeps its address (mail reaches
it, and its group, under the new name); a folder deleted behind the address's
back makes the mail bounce, never land in an INBOX.
"""
import email.utils
import imaplib
import json
import os
import smtplib
import warnings

import pytest

from conftest import tls_context, wait_until
from innpeer import INN_HOST, INND, WHARF_HOST, Inn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

ALICE = "alice@example.test"
PASSWORD = "correct horse battery"
DEV = "dev@example.test"


@pytest.fixture
def server(wharf_factory):
    # every worker asks the directory each time: removals are seen at once
    s = wharf_factory(enable={"smtp", "nntp", "imap"},
                      extra={"directory_client_cache_ttl": "0",
                             "directory_client_negative_ttl": "0"}).start()
    s.wharf("domain", "add", "example.test")
    s.wharf("user", "add", ALICE, "--password-stdin", input=PASSWORD.encode() + b"\n")
    s.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    s.wharf("public", "add", "News/dev")
    s.wharf("acl", "set", "#public", "News/dev", "anyone", "lr")
    return s


def rcpt(server, address):
    with smtplib.SMTP(server.host, server.ports["smtp"], timeout=30) as c:
        c.ehlo("client.example.net")
        c.mail("sender@example.net")
        code, text = c.rcpt(address)
        return code, text.decode()


def send(server, to, subject, msgid=None):
    """Mail with a Message-ID and a Date, or (msgid None) with neither."""
    head = f"From: Sender <sender@example.net>\r\nTo: {to}\r\nSubject: {subject}\r\n"
    if msgid:
        head += f"Message-ID: {msgid}\r\nDate: {email.utils.formatdate()}\r\n"
    with smtplib.SMTP(server.host, server.ports["smtp"], timeout=30) as c:
        c.sendmail("sender@example.net", [to], (head + f"\r\nabout {subject}\r\n").encode())


def group_count(server):
    n = nntplib.NNTP("127.0.0.1", server.ports["nntp"], timeout=20)
    try:
        return n.group("comp.wharf.dev")[1]
    finally:
        n.quit()


def folders(server, user):
    data = json.loads(server.wharf("mailbox", "list", user, "--json").stdout)
    return {f["name"]: f["messages"] for f in data["folders"]}


def inbox_count(server, user):
    return folders(server, user).get("INBOX", 0)


def test_mail_to_the_folders_address_is_an_article(server):
    server.wharf("public", "address", "News/dev", DEV)
    listed = server.wharf("public", "list").stdout.decode()
    assert f"News/dev\t0 messages\n\taddress {DEV}\n" in listed
    js = {f["name"]: f for f in json.loads(server.wharf("public", "list", "--json").stdout)}
    assert js["News/dev"]["addresses"] == [DEV] and js["News"]["addresses"] == []
    # one address, one meaning; a folder that is not there takes none
    r = server.wharf("public", "address", "News/dev", ALICE, check=False)
    assert r.returncode == 73 and b"already an account" in r.stderr
    r = server.wharf("public", "address", "News/nothing", "x@example.test", check=False)
    assert r.returncode == 66 and b"no such public folder" in r.stderr
    r = server.wharf("alias", "add", DEV, ALICE, check=False)
    assert r.returncode == 73 and b"public folder News/dev" in r.stderr

    assert rcpt(server, DEV)[0] == 250
    send(server, DEV, "by mail", msgid="<mail1@example.net>")
    send(server, DEV, "no id")  # port 25 adds no Message-ID: delivery gives one
    wait_until(lambda: group_count(server) == 2, what="both mails in comp.wharf.dev")

    n = nntplib.NNTP("127.0.0.1", server.ports["nntp"], timeout=20)
    resp, count, first, last, name = n.group("comp.wharf.dev")
    assert (count, first, last) == (2, 1, 2)
    art = n.article(1)[1]
    text = b"\r\n".join(art.lines)
    assert b"Subject: by mail" in text and art.lines[-1] == b"about by mail"
    assert art.message_id == "<mail1@example.net>"
    # a mail is made an article as it is read: the Path and Newsgroups a newsreader
    # needs (to follow up, say), which the mail did not have
    assert art.lines[:2] == [b"Path: mail.example.test!not-for-mail",
                             b"Newsgroups: comp.wharf.dev"], art.lines[:3]
    assert n.body(1)[1].lines == [b"about by mail"]
    assert n.article("<mail1@example.net>")[1].lines[-1] == b"about by mail"
    second = n.stat(2)[2]
    assert second.endswith(".public@mail.example.test>"), second
    head = n.head(second)[1].lines  # found by the Message-ID delivery gave it
    assert [ln for ln in head if ln.startswith(b"Date: ")]  # and a Date (none was sent)
    assert b"Newsgroups: comp.wharf.dev" in head
    over = n.over((1, 2))[1]
    assert [o[1]["subject"] for o in over] == ["by mail", "no id"]
    assert over[0][1]["message-id"] == "<mail1@example.net>"
    # :bytes counts the Path, Newsgroups and Xref it is read with (RFC 3977 8.5.2)
    for num, fields in over:
        lines = n.article(num)[1].lines
        assert int(fields[":bytes"]) == sum(len(ln) + 2 for ln in lines), (num, fields)
    assert [o[1]["xref"] for o in over] == ["mail.example.test comp.wharf.dev:1",
                                            "mail.example.test comp.wharf.dev:2"]
    n.quit()

    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(ALICE, PASSWORD)
    assert m.select('"Public Folders/News/dev"', readonly=True)[1] == [b"2"]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: by mail" in data[0][1]
    m.logout()
    assert inbox_count(server, ALICE) == 0

    # removed: nobody's address again (550 5.1.1)
    server.wharf("public", "address-del", DEV)
    assert b"address" not in server.wharf("public", "list").stdout
    code, text = rcpt(server, DEV)
    assert code == 550 and text.startswith("5.1.1"), (code, text)
    r = server.wharf("public", "address-del", DEV, check=False)
    assert r.returncode == 67


def test_a_deleted_folder_takes_no_mail(server):
    # deleted by the admin: its address goes with it
    server.wharf("public", "add", "News/old")
    server.wharf("public", "address", "News/old", "old@example.test")
    assert rcpt(server, "old@example.test")[0] == 250
    out = server.wharf("public", "del", "News/old").stdout.decode()
    assert "address old@example.test (of News/old) removed" in out
    code, text = rcpt(server, "old@example.test")
    assert code == 550 and text.startswith("5.1.1"), (code, text)

    # deleted over IMAP behind the address's back: the mail bounces, no INBOX takes it
    server.wharf("public", "add", "News/gone")
    server.wharf("public", "address", "News/gone", "gone@example.test")
    server.wharf("acl", "set", "#public", "News/gone", ALICE, "lrx")
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(ALICE, PASSWORD)
    assert m.delete('"Public Folders/News/gone"')[0] == "OK"
    m.logout()
    assert rcpt(server, "gone@example.test")[0] == 250  # the directory cannot know
    send(server, "gone@example.test", "to a gone folder", msgid="<gone1@example.net>")
    wait_until(lambda: "to=<gone@example.test>, relay=local" in server.log(),
               what="the delivery attempt")
    line = [ln for ln in server.log().splitlines() if "to=<gone@example.test>, relay=local" in ln]
    assert "dsn=5.1.1, status=bounced (no such public folder: News/gone)" in line[0], line
    assert inbox_count(server, ALICE) == 0
    pub = folders(server, "#public")
    assert "News/gone" not in pub and "INBOX" not in pub and pub["News/dev"] == 0
    # the admin hears of the address left behind, with what to do about it
    err = server.wharf("public", "list").stderr.decode()
    assert "address gone@example.test names News/gone, which is not there" in err, err


def test_a_renamed_folder_keeps_its_address(server):
    """The address names the folder in the directory, which an IMAP RENAME does not
    reach: the store remembers the folder's former name, and the mta follows it."""
    server.wharf("public", "address", "News/dev", DEV)
    server.wharf("acl", "set", "#public", "News", ALICE, "lrk")
    server.wharf("acl", "set", "#public", "News/dev", ALICE, "lrx")
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(ALICE, PASSWORD)
    assert m.rename('"Public Folders/News/dev"', '"Public Folders/News/devel"')[0] == "OK"
    m.logout()
    send(server, DEV, "after the rename", msgid="<renamed1@example.net>")
    wait_until(lambda: folders(server, "#public").get("News/devel") == 1,
               what="the mail in the renamed folder")
    assert "public folder News/dev is called News/devel now" in server.log()
    n = nntplib.NNTP("127.0.0.1", server.ports["nntp"], timeout=20)
    assert n.group("comp.wharf.devel")[1] == 1
    assert n.article("<renamed1@example.net>")[1].lines[-1] == b"about after the rename"
    n.quit()
    # the admin sees the address under the folder it reaches, and no warning
    r = server.wharf("public", "list")
    out = r.stdout.decode()
    assert f"News/devel\t1 messages\n\taddress {DEV} (given to News/dev, renamed since)\n" \
        in out, out
    assert b"not there" not in r.stderr, r.stderr
    js = {f["name"]: f for f in json.loads(server.wharf("public", "list", "--json").stdout)}
    assert js["News/devel"]["addresses"] == [DEV]
    # deleting another folder leaves the address alone
    server.wharf("public", "add", "News/other")
    assert "removed" not in server.wharf("public", "del", "News/other").stdout.decode()
    assert rcpt(server, DEV)[0] == 250
    # a folder created under the old name takes the mail from then on
    server.wharf("public", "add", "News/dev")
    send(server, DEV, "to the new dev", msgid="<renamed2@example.net>")
    wait_until(lambda: folders(server, "#public").get("News/dev") == 1,
               what="the mail in the folder now called News/dev")
    assert folders(server, "#public")["News/devel"] == 1
    # which the admin deleting that folder takes away with it
    out = server.wharf("public", "del", "News/dev").stdout.decode()
    assert f"address {DEV} (of News/dev) removed" in out, out
    # given again to News/devel, renamed over IMAP, then deleted by the admin under its
    # new name: the address given to the old one goes
    server.wharf("public", "address", "News/devel", DEV)
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(ALICE, PASSWORD)
    assert m.rename('"Public Folders/News/devel"', '"Public Folders/News/dev2"')[0] == "OK"
    m.logout()
    assert rcpt(server, DEV)[0] == 250
    out = server.wharf("public", "del", "News/dev2").stdout.decode()
    assert f"address {DEV} (of News/devel) removed" in out, out
    code, text = rcpt(server, DEV)
    assert code == 550 and text.startswith("5.1.1"), (code, text)


@pytest.mark.skipif(not INND.exists() or os.geteuid() != 0,
                    reason="needs Debian's inn2 (make deps-test) and root to run innd")
def test_mail_to_a_fed_folder_reaches_the_peer(wharf_factory, request):
    server = wharf_factory(enable={"smtp", "nntp"}, extra={
        "nntp_feed_retry_min": "200ms", "nntp_feed_retry_max": "1s",
        "nntp_feed_timeout": "5s"})
    inn = Inn(feed_to=server.ports["nntp"])
    request.addfinalizer(inn.cleanup)
    server.settings["nntp_feed_to"] = f"{INN_HOST}=nntp://127.0.0.1:{inn.port}/comp.wharf.*"
    server.write_config()
    server.start()
    server.wharf("domain", "add", "example.test")
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    server.wharf("public", "add", "News/dev")
    server.wharf("acl", "set", "#public", "News/dev", "anyone", "lr")
    server.wharf("public", "address", "News/dev", DEV)
    inn.start()
    send(server, DEV, "fed by mail", msgid="<fed1@example.net>")
    send(server, DEV, "fed without id")
    # the second has neither Message-ID nor Date: INN refuses such an article (439)
    wait_until(lambda: inn.count("comp.wharf.dev") == 2, what="both mails on INN")
    r = inn.reader()
    r.group("comp.wharf.dev")
    head = b"\n".join(r.head("<fed1@example.net>")[1].lines)
    assert b"Subject: fed by mail" in head and b"Newsgroups: comp.wharf.dev" in head
    assert f"Path: {INN_HOST}!{WHARF_HOST}!".encode() in head
    r.quit()


def test_with_an_ldap_directory_the_addresses_are_kept_locally(wharf_factory, request):
    """directory_driver = ldap: the tree has no place for a folder's address, and
    its mirror is rewritten whole; the addresses stay in directory.db."""
    ldap = pytest.importorskip("test_ldap")
    if not os.path.exists(ldap.SLAPD):
        pytest.skip("slapd not installed")
    slapd = ldap.Slapd(request.getfixturevalue("tmp_path") / "slapd").start()
    request.addfinalizer(slapd.stop)
    server = ldap.start_wharf(wharf_factory, slapd)
    server.wharf("public", "add", "News")
    server.wharf("public", "address", "News", "news@example.test")
    r = server.wharf("public", "address", "News", "alice@example.test", check=False)
    assert r.returncode == 73 and b"already an account" in r.stderr  # alice is LDAP's
    assert ldap.rcpt(server, "news@example.test") == 250
    ldap.send(server, ["news@example.test"], "to the folder")
    wait_until(lambda: folders(server, "#public")["News"] == 1, what="the mail in News")
    server.wharf("public", "address-del", "news@example.test")
    assert ldap.rcpt(server, "news@example.test") == 550
