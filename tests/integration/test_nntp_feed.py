"""NNTP feeds between Wharf and INN 2.7 (Debian's inn2), both ways.

The test starts its own innd on a free loopback port, with every path of
inn.conf in a temporary directory (INNCONF), as the news user; innd starts
innfeed for the feed to Wharf. Wharf feeds INN through its nntpfeed process
(nntp_feed_to). Articles are read back with nntplib from each side (INN's
reader is nnrpd, after MODE READER).
"""
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

from conftest import free_port, wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

INND = Path("/usr/lib/news/bin/innd")
INN_HOST = "inn.test"          # INN's pathhost: its name in Path, Wharf's name for it
WHARF_HOST = "mail.example.test"  # the harness's myhostname: INN's name for Wharf
ALICE = "alice@example.test"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    not INND.exists() or os.geteuid() != 0,
    reason="needs Debian's inn2 (make deps) and root to run innd as the news user")


def holds(n, msgid):
    """Whether the server of reader n has msgid (STAT); closes n."""
    try:
        n.stat(msgid)
        return True
    except nntplib.NNTPTemporaryError:
        return False
    finally:
        n.quit()


class Inn:
    """One innd with its own configuration, spool and history in a temp dir."""

    def __init__(self, wharf_port, streaming=True):
        self.port = free_port()
        self.top = Path(tempfile.mkdtemp(prefix="wharf-inn-"))
        self.top.chmod(0o755)
        t = self.top
        for d in ("etc", "db", "run", "log", "tmp", "http", "filter", "spool/articles",
                  "spool/overview", "spool/incoming/bad", "spool/outgoing", "spool/innfeed",
                  "spool/archive"):
            (t / d).mkdir(parents=True)
        paths = "".join(f"{k}: {t / v}\n" for k, v in {
            "pathfilter": "filter", "pathetc": "etc", "pathdb": "db", "pathrun": "run",
            "pathlog": "log", "pathhttp": "http", "pathtmp": "tmp", "pathspool": "spool",
            "patharticles": "spool/articles", "pathoverview": "spool/overview",
            "pathoutgoing": "spool/outgoing", "pathincoming": "spool/incoming",
            "patharchive": "spool/archive"}.items())
        (t / "etc/inn.conf").write_text(
            f"organization: \"wharf test\"\npathhost: {INN_HOST}\ndomain: test\n"
            f"server: 127.0.0.1\nbindaddress: 127.0.0.1\nport: {self.port}\n"
            "mta: \"/bin/true %s\"\novmethod: tradindexed\nhismethod: hisv6\n"
            "pathnews: /usr/lib/news\npathbin: /usr/lib/news/bin\n"
            "pathcontrol: /usr/lib/news/bin/control\n" + paths +
            "enableoverview: true\nwireformat: true\nartcutoff: 0\ndocancels: none\n"
            "pgpverify: false\ndoinnwatch: false\nmaxlisten: 128\nnnrpdloadlimit: 0\n")
        # Wharf feeds us from 127.0.0.1; readers from there get nnrpd after MODE READER
        (t / "etc/incoming.conf").write_text(
            f"peer wharf {{ hostname: \"127.0.0.1\" streaming: {'true' if streaming else 'false'} }}\n")
        (t / "etc/readers.conf").write_text(
            "auth \"local\" { hosts: \"127.0.0.1\" default: \"<local>\" }\n"
            "access \"local\" { users: \"<local>\" newsgroups: \"*\" access: RPA }\n")
        (t / "etc/storage.conf").write_text("method tradspool { newsgroups: * class: 0 }\n")
        (t / "etc/newsfeeds").write_text(
            "ME:*::\n"
            "innfeed!:!*:Tc,Wnm*:/usr/lib/news/bin/innfeed\n"
            f"{WHARF_HOST}/{WHARF_HOST}:comp.wharf.dev:Tm:innfeed!\n")
        (t / "etc/innfeed.conf").write_text(
            f"peer {WHARF_HOST} {{\n  ip-name: 127.0.0.1\n  port-number: {wharf_port}\n"
            "  streaming: true\n  initial-reconnect-time: 1\n  max-reconnect-time: 2\n}\n")
        for f in ("control.ctl", "distrib.pats", "expire.ctl", "moderators"):
            if Path("/etc/news", f).exists():
                shutil.copy(Path("/etc/news", f), t / "etc" / f)
        (t / "db/active").write_text(
            "control 0000000000 0000000001 n\ncontrol.cancel 0000000000 0000000001 n\n"
            "junk 0000000000 0000000001 n\ncomp.wharf.dev 0000000000 0000000001 y\n"
            "comp.wharf.misc 0000000000 0000000001 y\n")
        (t / "db/newsgroups").write_text("comp.wharf.dev\tdev\ncomp.wharf.misc\tmisc\n")
        (t / "db/active.times").write_text("")
        (t / "db/history").write_text("")
        subprocess.run(["chown", "-R", "news:news", str(t)], check=True)
        self.env = dict(os.environ, INNCONF=str(t / "etc/inn.conf"))
        subprocess.run(["runuser", "-u", "news", "--", "/usr/lib/news/bin/makedbz", "-i", "-o",
                        "-f", str(t / "db/history")], env=self.env, check=True)
        self.proc = None

    def start(self):
        for f in (self.top / "run").iterdir():
            f.unlink()
        self.proc = subprocess.Popen(["runuser", "-u", "news", "--", str(INND), "-f", "-d"],
                                     env=self.env, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.reader().quit() or True, what="innd to answer")
        return self

    def stop(self):
        """Down hard (innd and its innfeed), as a crashed peer."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def reader(self):
        return nntplib.NNTP("127.0.0.1", self.port, readermode=True, timeout=10)

    def has(self, msgid):
        return holds(self.reader(), msgid)

    def count(self, group):
        n = self.reader()
        try:
            return n.group(group)[1]
        finally:
            n.quit()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture
def pair(wharf_factory):
    """A Wharf that feeds comp.wharf.* to INN and takes INN's feed, and that INN."""
    server = wharf_factory(enable={"nntp"}, extra={
        "nntp_feed_peers": "127.0.0.1/32",
        "nntp_feed_retry_min": "200ms",
        "nntp_feed_retry_max": "1s",
        "nntp_feed_timeout": "5s",
    })
    inn = Inn(server.ports["nntp"])
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
    yield server, inn
    inn.cleanup()


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


def test_ihave_when_the_peer_does_not_stream(wharf_factory):
    server = wharf_factory(enable={"nntp"}, extra={
        "nntp_feed_retry_min": "200ms", "nntp_feed_retry_max": "1s"})
    inn = Inn(server.ports["nntp"], streaming=False)
    try:
        server.settings["nntp_feed_to"] = f"{INN_HOST}=nntp://127.0.0.1:{inn.port}/comp.wharf.*"
        server.write_config()
        server.start()
        server.wharf("public", "add", "News", "--newsgroups", "comp.wharf")
        server.wharf("public", "add", "News/dev")
        server.wharf("acl", "set", "#public", "News/dev", "anyone", "lrp")
        inn.start()
        n = wharf_reader(server)
        post(n, "<h1@example.test>", "by ihave")
        n.quit()
        wait_until(lambda: inn.has("<h1@example.test>"), what="the article on INN")
        wait_until(lambda: f"feed {INN_HOST}: connected to 127.0.0.1:{inn.port}, IHAVE"
                   in server.log(), what="the IHAVE line in the log")
        assert not feed_status(server)["peers"][INN_HOST]["streaming"]
    finally:
        inn.cleanup()
