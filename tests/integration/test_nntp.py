"""NNTP on 119 (STARTTLS) and 563 (implicit TLS): public folders as newsgroups.

Clients: Python's nntplib (Debian's 3.11), sinntp, slrn (on a pseudo-terminal),
`openssl s_client -starttls nntp`,
imaplib for the same articles seen over IMAP, and raw sockets for what the
libraries will not send (bare-LF dots inside POST, pipelining, bad input).
The groups are public folders made with `wharf public add ... --newsgroups`.
"""
import base64
import imaplib
import os
import pty
import re
import select
import signal
import subprocess
import threading
import warnings
import zlib

import pytest

from conftest import LineClient, tls_context, wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "correct horse battery"


def make_news(wharf_factory, extra=None):
    server = wharf_factory(enable={"nntp", "nntps", "imap", "imaps"}, extra=extra or {}).start()
    server.wharf("domain", "add", "example.test")
    for u in (ALICE, BOB):
        server.wharf("user", "add", u, "--password-stdin", input=PASSWORD.encode() + b"\n")
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    server.wharf("public", "add", "News/dev")
    server.wharf("public", "add", "News/misc")
    server.wharf("public", "add", "Private")  # not under the anchor: no group
    # dev: everyone reads, alice posts; misc: alice only
    server.wharf("acl", "set", "#public", "News/dev", "anyone", "lr")
    server.wharf("acl", "set", "#public", "News/dev", ALICE, "lrip")
    server.wharf("acl", "set", "#public", "News/misc", ALICE, "lrip")
    server.wharf("acl", "set", "#public", "Private", "anyone", "lr")
    return server


@pytest.fixture
def news(wharf_factory):
    return make_news(wharf_factory)


def reader(server, login=None, implicit=False):
    if implicit:
        n = nntplib.NNTP_SSL("127.0.0.1", server.ports["nntps"], ssl_context=tls_context(),
                             timeout=20)
    else:
        n = nntplib.NNTP("127.0.0.1", server.ports["nntp"], timeout=20)
    if login:
        if not implicit:
            n.starttls(context=tls_context())
        n.login(login, PASSWORD)
    return n


def article(groups="comp.wharf.dev", subject="hello", msgid=None, body="first post\r\n"):
    head = f"From: Alice <{ALICE}>\r\nNewsgroups: {groups}\r\nSubject: {subject}\r\n"
    if msgid:
        head += f"Message-ID: {msgid}\r\n"
    return (head + "\r\n" + body).encode()


class Raw(LineClient):
    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def multiline(self):
        lines = []
        while True:
            ln = self.line()
            if ln == ".":
                return lines
            lines.append(ln)


def test_capabilities_date_help_mode_quit(news):
    n = reader(news)
    caps = n.getcapabilities()
    assert caps["VERSION"] == ["2"] and "READER" in caps and "STARTTLS" in caps
    assert "OVER" in caps and "HDR" in caps and "POST" in caps
    assert "AUTHINFO" not in caps  # no passwords in clear on 119
    assert n.date()[1].year >= 2024
    assert "ARTICLE" in "".join(n.help()[1])
    n.starttls(context=tls_context())
    caps = n.getcapabilities()
    assert "STARTTLS" not in caps and caps["AUTHINFO"] == ["USER", "SASL"]
    assert caps["SASL"] == ["PLAIN"]
    assert n.quit().startswith("205")
    r = Raw(news.ports["nntp"])
    assert r.greeting.startswith("200 ")
    assert r.cmd("MODE READER").startswith("200 ")
    assert r.cmd("XYZZY").startswith("500 ")
    assert r.cmd("GROUP").startswith("501 ")
    assert r.cmd("A" * 600).startswith("501 ")  # too long; the session goes on
    assert r.cmd("DATE").startswith("111 ")
    assert r.cmd("AUTHINFO USER alice").startswith("483 ")
    assert r.cmd("QUIT").startswith("205 ")
    r.close()


def test_anonymous_reading_follows_the_acl(news):
    n = reader(news)
    names = [g.group for g in n.list()[1]]
    assert names == ["comp.wharf.dev"]  # misc is alice's, Private is no group
    resp, count, first, last, name = n.group("comp.wharf.dev")
    assert (count, name) == (0, "comp.wharf.dev")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        n.group("comp.wharf.misc")
    assert str(e.value).startswith("480")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        n.group("comp.wharf.nothing")
    assert str(e.value).startswith("411")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        n.post(article())  # anyone may read dev, not post
    assert str(e.value).startswith("441")
    n.quit()


def test_group_made_under_the_anchor_inherits_its_acl(news):
    """A public folder made inside another starts with its ACL (the store's rule for every new
    mailbox), so a group added under an anchor reads and posts as the anchor does; the
    groups made before News had an ACL keep theirs (the fixture's)."""
    news.wharf("acl", "set", "#public", "News", "anyone", "lr")
    news.wharf("acl", "set", "#public", "News", ALICE, "lrp")
    news.wharf("public", "add", "News/new")
    acl = news.wharf("acl", "get", "#public", "News/new").stdout.decode()
    assert "anyone" in acl and ALICE in acl, acl
    n = reader(news)
    assert [g.group for g in n.list()[1]] == ["comp.wharf.dev", "comp.wharf.new"]
    n.quit()
    a = reader(news, login=ALICE)
    assert a.post(article(groups="comp.wharf.new", body="inherited\r\n")).startswith("240")
    resp, count, first, last, name = a.group("comp.wharf.new")
    assert count == 1
    a.quit()
    b = reader(news, login=BOB)  # "lr" from anyone: reads, may not post
    resp, count, first, last, name = b.group("comp.wharf.new")
    assert count == 1
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        b.post(article(groups="comp.wharf.new"))
    assert str(e.value).startswith("441")
    b.quit()


def test_rights_and_groups_changed_while_connected_apply_to_the_next_article(news):
    """The article writer checks groups and posting rights on its own store handle: what
    the CLI changes between two articles of one connection applies to the second."""
    b = reader(news, login=BOB)
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        b.post(article(body="refused\r\n"))
    assert str(e.value).startswith("441") and "not allowed" in str(e.value)
    news.wharf("acl", "set", "#public", "News/dev", BOB, "lrp")
    assert b.post(article(body="allowed now\r\n")).startswith("240")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        b.post(article(groups="comp.wharf.later"))
    assert str(e.value).startswith("441") and "No such newsgroup" in str(e.value)
    news.wharf("public", "add", "News/later")
    news.wharf("acl", "set", "#public", "News/later", BOB, "lrp")
    assert b.post(article(groups="comp.wharf.later")).startswith("240")
    news.wharf("acl", "del", "#public", "News/dev", BOB)
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        b.post(article(body="refused again\r\n"))
    assert str(e.value).startswith("441") and "not allowed" in str(e.value)
    assert b.group("comp.wharf.dev")[1] == 1 and b.group("comp.wharf.later")[1] == 1
    b.quit()


def test_post_then_read_every_way(news):
    a = reader(news, login=ALICE)
    assert a.post(article(body="line one\r\n.dotted\r\n")).startswith("240")
    a.post(article(subject="second", msgid="<second@example.test>"))
    resp, count, first, last, name = a.group("comp.wharf.dev")
    assert (count, first, last) == (2, 1, 2)
    resp, info = a.article(1)
    text = b"\r\n".join(info.lines)
    assert b"Subject: hello" in text and b".dotted" in text and b"line one" in text
    assert b"Path: mail.example.test!not-for-mail" in text
    assert b"Injection-Info: mail.example.test" in text and b"Date: " in text
    msgid = [ln for ln in info.lines if ln.lower().startswith(b"message-id:")][0].split(b" ", 1)[1]
    assert info.message_id == msgid.decode()
    assert a.head(2)[1].lines[-1] != b""
    assert a.body("<second@example.test>")[1].lines == [b"first post"]
    assert a.stat()[1:] == (2, "<second@example.test>")  # HEAD 2 made 2 the current one
    assert a.stat(1)[1:] == (1, info.message_id)
    assert a.next()[1:] == (2, "<second@example.test>")
    assert a.last()[1:] == (1, info.message_id)
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        a.last()
    assert str(e.value).startswith("422")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        a.article(99)
    assert str(e.value).startswith("423")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        a.article("<nobody@example.test>")
    assert str(e.value).startswith("430")
    over = a.over((1, 2))[1]
    assert [o[0] for o in over] == [1, 2]
    assert over[1][1]["subject"] == "second" and over[1][1]["message-id"] == "<second@example.test>"
    assert int(over[0][1][":lines"]) == 2
    assert a.xover(1, 2)[1][0][1]["from"] == f"Alice <{ALICE}>"
    assert a.xhdr("subject", "1-")[1] == [("1", "hello"), ("2", "second")]
    assert a.xhdr("subject", "<second@example.test>")[1] == ["<second@example.test> second"]
    r = Raw(news.ports["nntps"], tls=True)
    assert r.cmd("GROUP comp.wharf.dev").startswith("211 2 1 2 ")
    assert r.cmd("STAT <second@example.test>").startswith("223 2 <second@example.test>")
    assert r.cmd("STAT").startswith("223 1 ")  # a message-id does not move the current article
    assert r.cmd("HDR Subject 1-").startswith("225") and r.multiline() == ["1 hello", "2 second"]
    assert r.cmd("HDR :lines <second@example.test>").startswith("225")
    assert r.multiline() == ["0 1"]
    assert r.cmd("HDR :bytes").startswith("225") and r.multiline()[0].startswith("1 ")
    assert r.cmd("OVER 5-9").startswith("423")
    assert r.cmd("LISTGROUP comp.wharf.dev 2-").startswith("211 2 1 2 comp.wharf.dev")
    assert r.multiline() == ["2"]
    assert r.cmd("LIST OVERVIEW.FMT").startswith("215")
    assert r.multiline()[:2] == ["Subject:", "From:"]
    assert r.cmd("LIST HEADERS").startswith("215") and ":" in r.multiline()
    assert r.cmd("LIST ACTIVE.TIMES comp.*").startswith("215")
    assert [ln.split()[0] for ln in r.multiline()] == ["comp.wharf.dev"]
    assert r.cmd("LIST NEWSGROUPS").startswith("215")
    assert r.multiline()[0].startswith("comp.wharf.dev\t")
    assert r.cmd("LIST DISTRIB.PATS").startswith("215") and r.multiline() == []
    assert r.cmd("NEWGROUPS 19700101 000000 GMT").startswith("231")
    assert [ln.split()[0] for ln in r.multiline()] == ["comp.wharf.dev"]
    assert r.cmd("NEWGROUPS 20991231 000000 GMT").startswith("231") and r.multiline() == []
    assert r.cmd("NEWNEWS comp.wharf.* 19700101 000000 GMT").startswith("230")
    assert sorted(r.multiline()) == sorted([info.message_id, "<second@example.test>"])
    assert r.cmd("LIST ACTIVE").startswith("215")
    assert r.multiline() == ["comp.wharf.dev 2 1 n"]  # anonymous: no posting to dev
    r.close()
    a.quit()
    # The same articles over IMAP, in the public folder.
    m = imaplib.IMAP4("127.0.0.1", news.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(BOB, PASSWORD)
    assert m.select('"Public Folders/News/dev"', readonly=True)[1] == [b"2"]
    typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
    assert b"Subject: second" in data[0][1] and b"<second@example.test>" in data[0][1]
    m.logout()


def test_imap_append_is_read_over_nntp(news):
    m = imaplib.IMAP4("127.0.0.1", news.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(ALICE, PASSWORD)
    msg = b"From: a@example.test\r\nSubject: from imap\r\nMessage-ID: <imap1@x>\r\n\r\nhi\r\n"
    assert m.append('"Public Folders/News/dev"', None, None, msg)[0] == "OK"
    m.logout()
    n = reader(news)
    n.group("comp.wharf.dev")
    assert n.article("<imap1@x>")[1].lines[-1] == b"hi"
    n.quit()


def test_crosspost_and_duplicate(news):
    a = reader(news, login=ALICE, implicit=True)
    a.post(article(groups="comp.wharf.dev,comp.wharf.misc", msgid="<x1@example.test>"))
    for g in ("comp.wharf.dev", "comp.wharf.misc"):
        assert a.group(g)[1] == 1
        assert a.stat(1)[2] == "<x1@example.test>"
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        a.post(article(msgid="<x1@example.test>"))
    assert str(e.value).startswith("441") and "Duplicate" in str(e.value)
    for bad, why in [(b"From: a@b\r\nSubject: x\r\n\r\nb\r\n", "required"),
                     (article(groups="comp.wharf.none"), "No such newsgroup"),
                     (article(groups="comp.wharf.dev,Private"), "No such newsgroup")]:
        with pytest.raises(nntplib.NNTPTemporaryError) as e:
            a.post(bad)
        assert str(e.value).startswith("441") and why in str(e.value)
    assert a.group("comp.wharf.dev")[1] == 1  # nothing more was stored
    a.quit()


def test_an_article_without_a_body_is_refused(wharf_factory):
    """INN's rules: nnrpd refuses a post with no body, whether no blank line ends its header
    or nothing follows the blank line ("Article has no body -- just headers"); innd refuses
    a peer's article without the blank line only. A body of white space is a body."""
    server = make_news(wharf_factory, {"nntp_feed_peers": "127.0.0.1/32"})
    a = reader(server, login=ALICE)
    head = article(msgid="<nobody1@example.test>").split(b"\r\n\r\n")[0] + b"\r\n"
    for bad in (head, head + b"\r\n"):
        with pytest.raises(nntplib.NNTPTemporaryError) as e:
            a.post(bad)
        assert str(e.value) == "441 Article has no body -- just headers"
    assert a.group("comp.wharf.dev")[1] == 0  # nothing stored
    assert a.post(head + b"\r\n \r\n").startswith("240")
    a.quit()
    r = Raw(server.ports["nntp"])
    peer_head = peer_article("<nobody2@peer.test>").split(b"\r\n\r\n")[0] + b"\r\n"
    assert r.cmd("IHAVE <nobody2@peer.test>").startswith("335")
    r.send(peer_head + b".\r\n")
    assert r.line() == "437 Article has no body -- just headers"
    assert r.cmd("IHAVE <nobody2@peer.test>").startswith("335")
    r.send(peer_head + b"\r\n.\r\n")  # innd takes this one
    assert r.line().startswith("235")
    assert r.cmd("GROUP comp.wharf.dev").startswith("211 2 1 2 ")
    r.close()


def article_bytes(lines):
    """RFC 3977 8.5.2: the octets of an article as ARTICLE sends it (nntplib's lines are
    dot-unstuffed, without their CRLF)."""
    return sum(len(ln) + 2 for ln in lines)


def test_overview_bytes_and_xref(news):
    """OVER's :bytes is the size of what ARTICLE sends, the fields the server adds with it;
    Xref (LIST OVERVIEW.FMT's last field, full) names each group of a cross-posted article
    with its number there, as far as the reader may read them; ARTICLE, HEAD, HDR and XHDR
    say the same; IMAP sees the article as it was stored, with none."""
    a = reader(news, login=ALICE)
    a.post(article(subject="alone", body="one\r\n.two\r\n"))  # dev 1
    a.post(article(groups="comp.wharf.misc", subject="misc only"))  # misc 1
    a.post(article(groups="comp.wharf.misc,comp.wharf.dev", subject="both",
                   msgid="<both@example.test>"))  # misc 2, dev 2
    a.group("comp.wharf.dev")
    over = dict(a.over((1, 2))[1])
    for num in (1, 2):
        lines = a.article(num)[1].lines
        assert int(over[num][":bytes"]) == article_bytes(lines), (num, over[num])
        assert a.xhdr(":bytes", str(num))[1] == [(str(num), str(article_bytes(lines)))]
    assert over[1]["xref"] == "mail.example.test comp.wharf.dev:1"
    both = "mail.example.test comp.wharf.dev:2 comp.wharf.misc:2"
    assert over[2]["xref"] == both
    assert f"Xref: {both}".encode() in a.article(2)[1].lines
    assert f"Xref: {both}".encode() in a.head("<both@example.test>")[1].lines
    assert a.xhdr("xref", "1-")[1] == [("1", "mail.example.test comp.wharf.dev:1"), ("2", both)]
    a.group("comp.wharf.misc")
    assert dict(a.xover(2, 2)[1])[2]["xref"] == both  # the same from the other group
    r = Raw(news.ports["nntp"])
    assert r.cmd("LIST OVERVIEW.FMT").startswith("215")
    assert r.multiline()[-1] == "Xref:full"
    assert r.cmd("GROUP comp.wharf.dev").startswith("211")
    assert r.cmd("OVER 2").startswith("224")
    assert r.multiline()[0].split("\t")[-1] == "Xref: mail.example.test comp.wharf.dev:2"
    assert r.cmd("HDR Xref <both@example.test>").startswith("225")
    assert r.multiline() == ["0 mail.example.test comp.wharf.dev:2"]  # misc: alice only
    assert r.cmd("HDR :bytes 2").startswith("225")
    anon_bytes = int(r.multiline()[0].split()[1])
    r.close()
    n = reader(news)
    n.group("comp.wharf.dev")
    assert anon_bytes == article_bytes(n.article(2)[1].lines)
    n.quit()
    a.quit()
    m = imaplib.IMAP4("127.0.0.1", news.ports["imap"])
    m.starttls(ssl_context=tls_context())
    m.login(ALICE, PASSWORD)
    m.select('"Public Folders/News/dev"', readonly=True)
    typ, data = m.fetch("2", "(BODY.PEEK[HEADER])")
    assert b"Xref" not in data[0][1] and b"Subject: both" in data[0][1]
    m.logout()


def test_a_peers_xref_gives_way_to_ours(wharf_factory):
    """An article fed with the peer's Xref (innfeed sends INN's) is stored as it came and
    read with ours alone, as innd replaces it."""
    server = wharf_factory(enable={"nntp"}, extra={"nntp_feed_peers": "127.0.0.1/32"}).start()
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    server.wharf("public", "add", "News/dev")
    server.wharf("acl", "set", "#public", "News/dev", "anyone", "lr")
    r = Raw(server.ports["nntp"])
    fed = peer_article("<xref1@peer.test>").replace(
        b"Subject: fed\r\n", b"Subject: fed\r\nXref: news.peer.test comp.wharf.dev:77\r\n")
    assert r.cmd("IHAVE <xref1@peer.test>").startswith("335")
    r.send(fed + b".\r\n")
    assert r.line().startswith("235")
    r.close()
    n = reader(server)
    n.group("comp.wharf.dev")
    lines = n.article(1)[1].lines
    assert [ln for ln in lines if ln.startswith(b"Xref:")] == [
        b"Xref: mail.example.test comp.wharf.dev:1"]
    over = dict(n.over((1, 1))[1])[1]
    assert over["xref"] == "mail.example.test comp.wharf.dev:1"
    assert int(over[":bytes"]) == article_bytes(lines)
    n.quit()


def test_bare_lf_dot_does_not_end_a_post(news):
    r = Raw(news.ports["nntps"], tls=True)
    assert r.cmd("AUTHINFO USER " + ALICE).startswith("381")
    assert r.cmd("AUTHINFO PASS " + PASSWORD).startswith("281")
    assert r.cmd("POST").startswith("340")
    # "\n.\n" and "\r\n.\n" are no end: what follows is still the article, not commands.
    r.send(article()[:-2] + b"\n.\nGROUP comp.wharf.misc\r\n\r\n.\nQUIT\r\nmore\r\n.\r\n")
    assert r.line().startswith("441 ")  # bare LF: refused, whole
    assert r.cmd("DATE").startswith("111 ")  # the session read on past the real end only
    assert r.cmd("GROUP comp.wharf.dev").startswith("211 0 ")
    # Pipelined after a clean post, in one segment.
    r.send(b"POST\r\n" + article(body="a\r\n..b\r\n") + b".\r\nSTAT 1\r\n")
    assert r.line().startswith("340") and r.line().startswith("240")
    assert r.line().startswith("223 1 <")
    r.close()


def test_sasl_plain_and_openssl_starttls(news):
    r = Raw(news.ports["nntps"], tls=True)
    bad = base64.b64encode(f"\0{ALICE}\0wrong".encode()).decode()
    assert r.cmd("AUTHINFO SASL PLAIN " + bad).startswith("481")
    assert r.cmd("AUTHINFO SASL PLAIN").startswith("383")
    good = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert r.cmd(good).startswith("281")
    assert r.cmd("AUTHINFO USER x").startswith("502")
    assert r.cmd("GROUP comp.wharf.misc").startswith("211 0 ")
    r.close()
    p = subprocess.run(["openssl", "s_client", "-quiet", "-starttls", "nntp", "-connect",
                        f"127.0.0.1:{news.ports['nntp']}"], input=b"CAPABILITIES\r\nQUIT\r\n",
                       capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert "VERSION 2" in out and "AUTHINFO USER SASL" in out and "205" in out


def peer_article(msgid, groups="comp.wharf.dev,alt.elsewhere", body="from a peer\r\n"):
    return (f"Path: news.peer.test!poster\r\nFrom: p@peer.test\r\nNewsgroups: {groups}\r\n"
            f"Subject: fed\r\nMessage-ID: {msgid}\r\nDate: Sat, 5 Dec 2026 10:00:00 +0000\r\n"
            f"Injection-Info: news.peer.test; posting-host=\"192.0.2.1\"\r\n\r\n{body}").encode()


def test_feed_ihave_and_streaming_from_a_peer(wharf_factory):
    server = wharf_factory(enable={"nntp"}, extra={"nntp_feed_peers": "127.0.0.1/32"}).start()
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    server.wharf("public", "add", "News/dev")
    server.wharf("acl", "set", "#public", "News/dev", "anyone", "lr")
    r = Raw(server.ports["nntp"])
    assert r.cmd("CAPABILITIES").startswith("101")
    caps = r.multiline()
    assert "IHAVE" in caps and "STREAMING" in caps
    assert r.cmd("IHAVE <f1@peer.test>").startswith("335")
    r.send(peer_article("<f1@peer.test>") + b".\r\n")
    assert r.line().startswith("235")
    assert r.cmd("IHAVE <f1@peer.test>").startswith("435")  # the history: offered twice
    assert r.cmd("IHAVE <bad@peer.test>").startswith("335")
    r.send(peer_article("<other@peer.test>") + b".\r\n")  # not the one offered
    assert r.line().startswith("437")
    assert r.cmd("MODE STREAM").startswith("203")
    # Streaming: CHECKs and TAKETHIS pipelined in one write, answered in order.
    r.send(b"CHECK <f1@peer.test>\r\nCHECK <f2@peer.test>\r\nTAKETHIS <f2@peer.test>\r\n" +
           peer_article("<f2@peer.test>", body="a\r\n.\nQUIT\r\n") +
           b".\r\nTAKETHIS <f3@peer.test>\r\n" + peer_article("<f3@peer.test>") +
           b".\r\nTAKETHIS <f3@peer.test>\r\n" + peer_article("<f3@peer.test>") +
           b".\r\nTAKETHIS <f4@peer.test>\r\n" + peer_article("<f4@peer.test>", groups="alt.x") +
           b".\r\n")
    assert r.line() == "438 <f1@peer.test>"
    assert r.line() == "238 <f2@peer.test>"
    assert r.line().startswith("439 <f2@peer.test>")  # bare LF inside: refused whole
    assert r.line().startswith("239 <f3@peer.test>")
    assert r.line().startswith("439 <f3@peer.test>")  # a duplicate
    assert r.line().startswith("439 <f4@peer.test>")  # no group carried here
    assert r.cmd("GROUP comp.wharf.dev").startswith("211 2 1 2 ")
    assert r.cmd("HEAD 1").startswith("221 1 <f1@peer.test>")
    head = r.multiline()
    assert "Path: mail.example.test!news.peer.test!poster" in head
    assert sum(ln.startswith("Injection-Info:") for ln in head) == 1  # the peer's, kept
    r.close()


def test_feed_commands_need_a_configured_peer(news):
    r = Raw(news.ports["nntp"])
    assert r.cmd("IHAVE <x@peer.test>").startswith("502")
    assert r.cmd("CHECK <x@peer.test>").startswith("502")
    assert r.cmd("MODE STREAM").startswith("501")
    # TAKETHIS: the article that follows is read and refused, never run as commands.
    r.send(b"TAKETHIS <x@peer.test>\r\n" + peer_article("<x@peer.test>") + b".\r\n")
    assert r.line().startswith("439 ")
    assert r.cmd("DATE").startswith("111")
    r.close()


def test_compress_deflate(news):
    """RFC 8054: after 206 both directions are raw DEFLATE; replies flushed per batch."""
    r = Raw(news.ports["nntps"], tls=True)
    assert r.cmd("COMPRESS GZIP").startswith("503")
    assert r.cmd("COMPRESS DEFLATE").startswith("206")
    comp = zlib.compressobj(wbits=-15)
    dec = zlib.decompressobj(wbits=-15)
    r.sock.sendall(comp.compress(b"GROUP comp.wharf.dev\r\nCOMPRESS DEFLATE\r\n") +
                   comp.flush(zlib.Z_SYNC_FLUSH))
    got = b""
    while got.count(b"\r\n") < 2:
        got += dec.decompress(r.sock.recv(4096))
    lines = got.decode().split("\r\n")
    assert lines[0].startswith("211 0 ") and lines[1].startswith("502")
    r.close()


def test_an_article_acknowledged_survives_the_worker_killed(news):
    """240 comes after the store commit: a worker killed right after it loses nothing."""
    r = Raw(news.ports["nntps"], tls=True)
    assert r.cmd("AUTHINFO USER " + ALICE).startswith("381")
    assert r.cmd("AUTHINFO PASS " + PASSWORD).startswith("281")
    pid = news.component("nntp")["processes"][0]["pid"]
    r.send(b"POST\r\n" + article(msgid="<durable@example.test>") + b".\r\n")
    assert r.line().startswith("340") and r.line().startswith("240")
    os.kill(pid, signal.SIGKILL)
    r.close()
    wait_until(lambda: (lambda p: p["state"] == "running" and p["pid"] != pid)(
        news.component("nntp")["processes"][0]), 30, what="the supervisor to restart nntp")
    n = wait_until(lambda: reader(news), 20, what="nntp to listen again")
    n.group("comp.wharf.dev")
    assert n.stat("<durable@example.test>")[2] == "<durable@example.test>"
    n.quit()


def test_articles_group_committed_each_answered_after_commit_and_kill_9(wharf_factory):
    """Articles arriving together, streamed on several connections and POSTed on others,
    share commits (the log's batch= says how many a commit held); each 239/240 comes
    after its commit, so with every nntp worker killed hard right after the last
    answer, all acknowledged articles are there, each once; a duplicate within the
    same pipeline is refused though its first copy was not committed when it came."""
    server = wharf_factory(enable={"nntp"}, extra={"nntp_feed_peers": "127.0.0.1/32",
                                                   "nntp_plaintext_auth": "yes"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", ALICE, "--password-stdin", input=PASSWORD.encode() + b"\n")
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    server.wharf("public", "add", "News/dev")
    server.wharf("acl", "set", "#public", "News/dev", "anyone", "lr")
    server.wharf("acl", "set", "#public", "News/dev", ALICE, "lrp")
    feeds = [Raw(server.ports["nntp"]) for _ in range(3)]
    posters = [reader(server) for _ in range(4)]
    for p in posters:
        p.login(ALICE, PASSWORD)
    per = 40
    for c, r in enumerate(feeds):
        assert r.cmd("MODE STREAM").startswith("203")
    for c, r in enumerate(feeds):
        batch = b"".join(b"TAKETHIS <g%d-%d@peer.test>\r\n" % (c, i) +
                         peer_article("<g%d-%d@peer.test>" % (c, i), groups="comp.wharf.dev") +
                         b".\r\n" for i in range(per))
        # the first again, in the same pipeline
        batch += (b"TAKETHIS <g%d-0@peer.test>\r\n" % c +
                  peer_article("<g%d-0@peer.test>" % c, groups="comp.wharf.dev") + b".\r\n")
        r.send(batch)
    posted = []

    def post(i, n):
        for k in range(5):
            msgid = f"<p{i}-{k}@example.test>"
            assert n.post(article(msgid=msgid)).startswith("240")
            posted.append(msgid)

    threads = [threading.Thread(target=post, args=(i, n)) for i, n in enumerate(posters)]
    for t in threads:
        t.start()
    for c, r in enumerate(feeds):
        for i in range(per):
            assert r.line().startswith("239 <g%d-%d@peer.test>" % (c, i))
        assert r.line().startswith("439 <g%d-0@peer.test>" % c)
    for t in threads:
        t.join()
    assert len(posted) == 20
    pids = [p["pid"] for p in server.component("nntp")["processes"]]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for r in feeds:
        r.close()
    batches = wait_until(lambda: (lambda b: b if len(b) == 3 * per else None)(
        [int(b) for b in re.findall(r"TAKETHIS: .*batch=(\d+)", server.log())]),
        20, what="a log line per article taken")
    assert max(batches) > 1
    wait_until(lambda: all(p["state"] == "running" and p["pid"] not in pids
                           for p in server.component("nntp")["processes"]),
               30, what="the supervisor to restart nntp")
    n = wait_until(lambda: reader(server), 20, what="nntp to listen again")
    _, count, first, last, _ = n.group("comp.wharf.dev")
    assert count == 3 * per + 20
    _, over = n.over((first, last))
    ids = [o["message-id"] for _, o in over]
    assert len(ids) == len(set(ids)) == 3 * per + 20
    assert set(posted) <= set(ids)
    assert {"<g%d-%d@peer.test>" % (c, i) for c in range(3) for i in range(per)} <= set(ids)
    n.quit()


def test_index_topup_waits_while_articles_stream_in(news):
    """The mta's background top-up of the full-text index takes no turn while
    other processes commit to the store (a poster's articles: store_data_version
    moves between its ticks), so it neither holds the store's write lock nor a CPU
    while a poster waits for its 240; once the posts stop it indexes them."""
    n = reader(news, login=ALICE)
    deferred = news.worker_count("mta", "text_topups_deferred")
    ran = news.worker_count("mta", "text_topups")
    # posts until a tick of the mta saw the store busy (ticks: 200 ms or 5 s apart)
    for i in range(2000):
        assert n.post(article(msgid=f"<busy{i}@example.test>", body="tidal stream\r\n")
                      ).startswith("240")
        if i % 5 == 4 and news.worker_count("mta", "text_topups_deferred") > deferred:
            break
    assert news.worker_count("mta", "text_topups_deferred") > deferred
    n.quit()
    wait_until(lambda: news.worker_count("mta", "text_topups") > ran, 30,
               what="the top-up once the store is quiet")


def sinntp(tool, server, *args, home, data=None):
    """One of sinntp's tools against the server's port 119 (sinntp has no TLS)."""
    env = dict(os.environ, HOME=str(home), PYTHONWARNINGS="ignore")
    return subprocess.run([f"/usr/bin/{tool}", "-S", f"127.0.0.1:{server.ports['nntp']}", *args],
                          input=data, env=env, capture_output=True, timeout=60)


def slrn(server, home, until, keys=()):
    """slrn, a full-screen newsreader, on a pseudo-terminal against port 119 (anonymous):
    types keys once `until` is on its screen; returns everything it wrote."""
    env = dict(os.environ, HOME=str(home), TERM="vt100")
    # the e-mail address slrn makes for posting; without it slrn stops at start
    (home / ".slrnrc").write_text('set hostname "example.test"\nset username "alice"\n')
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/usr/bin/slrn", ["slrn", "-h", "127.0.0.1", "-p", str(server.ports["nntp"]),
                                    "-f", str(home / ".jnewsrc"), "--create", "-C-"], env)
    out = bytearray()

    def shows(text):
        while select.select([fd], [], [], 0)[0]:
            try:
                out.extend(os.read(fd, 65536))
            except OSError:  # slrn gone
                break
        return text in out

    try:
        for text, key in zip(until, [*keys, None]):
            wait_until(lambda: shows(text), 30, what=f"slrn to show {text!r}")
            if key is not None:
                os.write(fd, key)
        return out.decode(errors="replace")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_slrn_reads_with_xover(news, tmp_path):
    """slrn takes the overview from XOVER only when LIST OVERVIEW.FMT names the seven fields
    as RFC 2980 did (Bytes:, Lines:); otherwise it says so and asks for each article's
    headers one by one. It lists the group and shows the article's subject from it."""
    n = reader(news, login=ALICE)
    n.post(article(subject="read by slrn"))
    n.quit()
    screen = slrn(news, tmp_path, [b"comp.wharf.dev", b"read by slrn"], [b"\r"])
    assert "XOVER support disabled" not in screen


def test_sinntp_newsreader(wharf_factory, tmp_path):
    """A newsreader other than nntplib: sinntp lists the groups, posts with AUTHINFO (allowed
    in plaintext here, as an admin may for a trusted network), pulls a group into an mbox
    and fetches an article by Message-ID; refusals come back as NNTP errors."""
    server = make_news(wharf_factory, {"nntp_plaintext_auth": "yes"})
    r = sinntp("nntp-list", server, home=tmp_path)
    assert r.returncode == 0 and r.stdout.decode().split() == ["comp.wharf.dev"], r
    r = sinntp("nntp-push", server, "-U", ALICE, "-P", PASSWORD, home=tmp_path,
               data=article(subject="via sinntp", body="hello from sinntp\r\n"))
    assert r.returncode == 0, r
    mbox = tmp_path / "dev.mbox"
    r = sinntp("nntp-pull", server, f"comp.wharf.dev>{mbox}", home=tmp_path)
    assert r.returncode == 0, r
    text = mbox.read_text()
    assert "Subject: via sinntp" in text and "hello from sinntp" in text
    assert f'posting-account="{ALICE}"' in text
    msgid = re.search(r"^Message-ID: (<[^>]+>)$", text, re.M).group(1)
    r = sinntp("nntp-get", server, msgid, home=tmp_path)
    assert r.returncode == 0 and b"hello from sinntp" in r.stdout, r
    # a group alice may not post to, and a wrong password
    r = sinntp("nntp-push", server, "-U", ALICE, "-P", PASSWORD, home=tmp_path,
               data=article(groups="comp.wharf.nosuch"))
    assert r.returncode != 0 and b"441" in r.stderr, r
    r = sinntp("nntp-push", server, "-U", ALICE, "-P", "wrong", home=tmp_path,
               data=article(subject="never"))
    assert r.returncode != 0 and b"481" in r.stderr, r
    # the second pull has nothing new: the group's numbers are stable
    r = sinntp("nntp-pull", server, f"comp.wharf.dev>{tmp_path / 'again.mbox'}", home=tmp_path)
    assert r.returncode == 0 and not (tmp_path / "again.mbox").exists(), r
