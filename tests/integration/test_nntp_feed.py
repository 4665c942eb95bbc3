"""NNTP feeds between Wharf and INN 2.7 (Debian's inn2), both ways.

The test starts its own innd (innpeer.py) on a free loopback port; innd starts
innfeed for the feed to Wharf. Wharf feeds INN through its nntpfeed process
(nntp_feed_to). Articles are read back with nntplib from each side (INN's
reader is nnrpd, after MODE READER).
"""
import os
import warnings

import pytest

from conftest import wait_until
from innpeer import INN_HOST, INND, WHARF_HOST, Inn, holds

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

ALICE = "alice@example.test"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    not INND.exists() or os.geteuid() != 0,
    reason="needs Debian's inn2 (make deps-test) and root to run innd as the news user")


@pytest.fixture
def pair(wharf_factory, request):
    """A Wharf that feeds comp.wharf.* to INN and takes INN's feed, and that INN."""
    server = wharf_factory(enable={"nntp"}, extra={
        "nntp_feed_peers": "127.0.0.1/32",
        "nntp_feed_retry_min": "200ms",
        "nntp_feed_retry_max": "1s",
        "nntp_feed_timeout": "5s",
    })
    inn = Inn(feed_to=server.ports["nntp"])
    request.addfinalizer(inn.cleanup)  # also when a step below fails
    server.settings["nntp_feed_to"] = f"{INN_HOST}=nntp://127.0.0.1:{inn.port}/comp.wharf.*"
    server.write_config()
    server.start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", ALICE, "--password-stdin", input=PASSWORD.encode() + b"\n")
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    for g in ("dev", "misc"):
        server.wharf("public", "add", f"News/{g}")
        server.wharf("acl", "set", "#public", f"News/{g}", "anyone", "lrp")
    inn.start()
    return server, inn


def wharf_reader(server):
    return nntplib.NNTP("127.0.0.1", server.ports["nntp"], timeout=20)


def post(n, msgid, subject="hello", group="comp.wharf.dev"):
    n.post(f"From: Alice <{ALICE}>\r\nNewsgroups: {group}\r\nSubject: {subject}\r\n"
           f"Message-ID: {msgid}\r\n\r\nbody of {subject}\r\n".encode())


def wharf_has(server, msgid):
    return holds(wharf_reader(server), msgid)


def feed_status(server):
    """The feeder's own figures (its status hook): peers, backlog, sent, ..."""
    return server.component("nntpfeed")["processes"][0]["status"]


def test_ports_row_is_live(pair):
    server, inn = pair
    row = next(r for r in server.port_map()["ports"] if r["service"] == "nntp-feed")
    assert row["component"] == "nntpfeed" and row["direction"] == "outbound"
    assert row["state"] == "running"
    assert f"127.0.0.1:{inn.port}" in row["address"]


def test_wharf_to_inn_and_inn_to_wharf_streaming(pair):
    server, inn = pair
    # Wharf -> INN: a POST to Wharf reaches INN once, by CHECK/TAKETHIS
    n = wharf_reader(server)
    post(n, "<w1@example.test>", "from wharf")
    n.quit()
    wait_until(lambda: inn.has("<w1@example.test>"), what="the article on INN")
    wait_until(lambda: "streaming (CHECK/TAKETHIS)" in server.log(), what="streaming in the log")
    r = inn.reader()
    r.group("comp.wharf.dev")
    _, info = r.article("<w1@example.test>")
    head = b"\n".join(info.lines)
    assert b"Subject: from wharf" in head
    assert f"Path: {INN_HOST}!{WHARF_HOST}!".encode() in head
    r.quit()

    # INN -> Wharf: a POST to INN reaches Wharf through innfeed (streaming)
    r = inn.reader()
    post(r, "<i1@inn.test>", "from inn")
    r.quit()
    wait_until(lambda: wharf_has(server, "<i1@inn.test>"), what="INN's article on Wharf")
    # each article once on each side, and nothing sent back where it came from
    assert wait_until(lambda: inn.count("comp.wharf.dev") == 2, what="two articles on INN")
    n = wharf_reader(server)
    assert n.group("comp.wharf.dev")[1] == 2
    n.quit()
    st = wait_until(lambda: (lambda s: s if s["peers"][INN_HOST]["backlog"] == 0 else None)(
        feed_status(server)), what="an empty backlog")
    peer = st["peers"][INN_HOST]
    assert peer["sent"] == 1 and peer["duplicates"] == 0 and peer["streaming"]


def test_a_duplicate_offered_is_refused_once(pair):
    server, inn = pair
    # INN has <d1> already (posted there; comp.wharf.misc is not fed back to Wharf)
    r = inn.reader()
    post(r, "<d1@example.test>", "the first copy", group="comp.wharf.misc")
    r.quit()
    # Wharf gets its own article with the same id and offers it: INN says 438
    n = wharf_reader(server)
    post(n, "<d1@example.test>", "the second copy", group="comp.wharf.misc")
    n.quit()
    st = wait_until(lambda: (lambda s: s if s["peers"][INN_HOST]["duplicates"] == 1 else None)(
        feed_status(server)), what="the duplicate refused")
    assert st["peers"][INN_HOST]["backlog"] == 0 and st["peers"][INN_HOST]["sent"] == 0
    r = inn.reader()
    _, info = r.article("<d1@example.test>")
    assert b"Subject: the first copy" in b"\n".join(info.lines)
    assert r.group("comp.wharf.misc")[1] == 1
    r.quit()
    # and an article offered twice to Wharf by a peer is taken once (435/438 the second time)
    n = wharf_reader(server)
    post(n, "<d2@example.test>", "once")
    n.quit()
    wait_until(lambda: inn.has("<d2@example.test>"), what="<d2> on INN")
    assert inn.count("comp.wharf.dev") == 1


def test_backlog_survives_peer_down_and_kill_9(pair):
    server, inn = pair
    inn.stop()
    n = wharf_reader(server)
    ids = [f"<b{i}@example.test>" for i in range(3)]
    for i, m in enumerate(ids):
        post(n, m, f"backlog {i}")
    n.quit()
    wait_until(lambda: feed_status(server)["peers"][INN_HOST]["backlog"] == 3,
               what="three articles queued")
    # the whole server killed hard: the queue is in the store
    server.kill_all()
    server.start()
    assert feed_status(server)["peers"][INN_HOST]["backlog"] == 3
    inn.start()
    wait_until(lambda: all(inn.has(m) for m in ids), timeout=30, what="the backlog on INN")
    wait_until(lambda: feed_status(server)["peers"][INN_HOST]["backlog"] == 0,
               what="the backlog emptied")
    assert inn.count("comp.wharf.dev") == 3


def feeding(wharf_factory, request, extra, option="nntp_feed_to", **inn_args):
    """A Wharf that feeds comp.wharf.dev (open to all) to a private INN (Inn(**inn_args)),
    or pulls from it (option nntp_pull_from), both started."""
    server = wharf_factory(enable={"nntp"}, extra={
        "nntp_feed_retry_min": "200ms", "nntp_feed_retry_max": "1s", **extra})
    inn = Inn(**inn_args)
    request.addfinalizer(inn.cleanup)
    server.settings[option] = f"{INN_HOST}=nntp://127.0.0.1:{inn.port}/comp.wharf.*"
    server.write_config()
    server.start()
    server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
    server.wharf("public", "add", "News/dev")
    server.wharf("acl", "set", "#public", "News/dev", "anyone", "lrp")
    inn.start()
    return server, inn


def test_ihave_when_the_peer_does_not_stream(wharf_factory, request):
    server, inn = feeding(wharf_factory, request, {}, streaming=False)
    n = wharf_reader(server)
    post(n, "<h1@example.test>", "by ihave")
    n.quit()
    wait_until(lambda: inn.has("<h1@example.test>"), what="the article on INN")
    wait_until(lambda: f"feed {INN_HOST}: connected to 127.0.0.1:{inn.port}, IHAVE"
               in server.log(), what="the IHAVE line in the log")
    assert not feed_status(server)["peers"][INN_HOST]["streaming"]


def test_feed_leaves_from_nntp_feed_source_address(wharf_factory, request):
    """On a machine with several addresses, INN takes a feed only from the one its
    incoming.conf names: nntp_feed_source_address makes the feeder connect from it."""
    server, inn = feeding(wharf_factory, request, {"nntp_feed_source_address": "127.0.0.2"},
                          wharf_addr="127.0.0.2")
    n = wharf_reader(server)
    post(n, "<src1@example.test>", "from 127.0.0.2")
    n.quit()
    wait_until(lambda: inn.has("<src1@example.test>"), what="the article on INN")
    assert feed_status(server)["peers"][INN_HOST]["sent"] == 1
    r = server.wharf("-o", "nntp_feed_source_address=mail.example.test", "config", "check",
                     check=False)
    assert r.returncode != 0 and "nntp_feed_source_address: mail.example.test is not an IP address" \
        in (r.stdout + r.stderr).decode(), r


def test_a_refusal_is_logged_with_the_peers_reason(wharf_factory):
    """A streaming peer repeats the Message-ID before its reason (439 <id> why): the
    feeder's log line and last refusal keep the reason, not the Message-ID cut short.
    The peer here is a second Wharf that takes smaller articles."""
    b = wharf_factory("b", enable={"nntp"}, extra={"nntp_feed_peers": "127.0.0.1/32",
                                                   "nntp_max_article_size": "1k"}).start()
    a = wharf_factory("a", enable={"nntp"}, extra={
        "nntp_feed_to": f"wharf-b=nntp://127.0.0.1:{b.ports['nntp']}/comp.wharf.*",
        "nntp_feed_retry_min": "200ms", "nntp_feed_retry_max": "1s"}).start()
    for server in (a, b):
        server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
        server.wharf("public", "add", "News/dev")
        server.wharf("acl", "set", "#public", "News/dev", "anyone", "lrp")
    n = wharf_reader(a)
    post(n, "<big@example.test>", "x" * 2000)
    n.quit()
    wait_until(lambda: feed_status(a)["peers"]["wharf-b"]["refused"] == 1,
               what="the article refused by the peer")
    assert "<big@example.test> refused: 439 Article too large (nntp_max_article_size=1024)" \
        in a.log()


def test_newnews_pull_from_a_read_only_peer(wharf_factory, request):
    """nntp_pull_from: INN only lets Wharf read; the nntpfeed process asks it NEWNEWS
    since its last successful pull and fetches what the history lacks with ARTICLE.
    Articles posted on INN appear in Wharf's group each once (one Wharf already had is
    not fetched), one in a group Wharf does not carry does not; after a restart the
    pull asks from the date it kept, not from the start, and new ones still come."""
    server, inn = feeding(wharf_factory, request, {"nntp_pull_interval": "1s",
                                                   "nntp_feed_timeout": "5s"},
                          option="nntp_pull_from")
    n = wharf_reader(server)
    post(n, "<both@example.test>", "posted on both")  # Wharf has it: not fetched
    n.quit()
    r = inn.reader()
    for i in range(3):
        post(r, f"<pull{i}@inn.test>", f"pulled {i}")
    post(r, "<both@example.test>", "posted on both")
    post(r, "<misc@inn.test>", "not carried", group="comp.wharf.misc")
    r.quit()
    ids = [f"<pull{i}@inn.test>" for i in range(3)]
    wait_until(lambda: all(wharf_has(server, m) for m in ids), timeout=60,
               what="INN's articles pulled into Wharf")
    n = wharf_reader(server)
    _, count, first, last, _ = n.group("comp.wharf.dev")
    _, over = n.over((first, last))
    got = [o["message-id"] for _, o in over]
    assert sorted(got) == sorted(ids + ["<both@example.test>"])  # each once
    head = n.head("<pull0@inn.test>")[1].lines
    assert any(ln.startswith(f"Path: {WHARF_HOST}!{INN_HOST}".encode()) for ln in head)
    n.quit()
    assert not wharf_has(server, "<misc@inn.test>")
    st = feed_status(server)["pulls"][INN_HOST]
    assert st["stored"] == 3 and st["pulls"] >= 1
    # the date is kept: after a restart the pull does not ask from 1970 again
    server.stop()
    server.start()
    r = inn.reader()
    post(r, "<after@inn.test>", "after the restart")
    r.quit()
    wait_until(lambda: wharf_has(server, "<after@inn.test>"), timeout=60,
               what="an article posted after the restart")
    assert server.log().count(" since 19700101 000000") == 1
    n = wharf_reader(server)
    assert n.group("comp.wharf.dev")[1] == 5
    n.quit()

