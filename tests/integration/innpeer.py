"""A private INN 2.7 (Debian's inn2) for the NNTP feed tests and bench/nntp.

innd runs as the news user on a free loopback port with every path of its
inn.conf in a temporary directory (INNCONF); with feed_to it starts innfeed
to push comp.wharf.dev to that port (a Wharf). Readers get nnrpd after MODE
READER.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from pathlib import Path

from conftest import free_port, wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

INND = Path("/usr/lib/news/bin/innd")
INN_HOST = "inn.test"          # INN's pathhost: its name in Path, Wharf's name for it
WHARF_HOST = "mail.example.test"  # the harness's myhostname: INN's name for Wharf


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

    def __init__(self, feed_to=None, streaming=True, host=WHARF_HOST, wharf_addr="127.0.0.1"):
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
        # Wharf feeds us from wharf_addr, only; readers from 127.0.0.1 get nnrpd after MODE READER
        (t / "etc/incoming.conf").write_text(
            f"peer wharf {{ hostname: \"{wharf_addr}\" streaming: {'true' if streaming else 'false'} }}\n")
        (t / "etc/readers.conf").write_text(
            "auth \"local\" { hosts: \"127.0.0.1\" default: \"<local>\" }\n"
            # N: NEWNEWS (Wharf's pulls, nntp_pull_from); an access string overrides allownewnews
            "access \"local\" { users: \"<local>\" newsgroups: \"*\" access: RPAN }\n")
        (t / "etc/storage.conf").write_text("method tradspool { newsgroups: * class: 0 }\n")
        feeds = "ME:*::\n"
        if feed_to:
            feeds += ("innfeed!:!*:Tc,Wnm*:/usr/lib/news/bin/innfeed\n"
                      f"{host}/{host}:comp.wharf.dev:Tm:innfeed!\n")
            (t / "etc/innfeed.conf").write_text(
                f"peer {host} {{\n  ip-name: 127.0.0.1\n  port-number: {feed_to}\n"
                "  streaming: true\n  initial-reconnect-time: 1\n  max-reconnect-time: 2\n}\n")
        (t / "etc/newsfeeds").write_text(feeds)
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
