"""Milters (issue 18, src/smtp/smtp_milter.c): Debian's rspamd, started by
the test on a loopback port in milter mode, adds its header to mail it
finds spammy and rejects the GTUBE test message; a filter that is down or
never answers gets milter_default_action; mail of listeners not named in
milter_services never reaches the filter.

rspamd runs with a small configuration of its own (no Redis, no network
lookups: its DNS points at a port where nothing answers) and one local rule
that scores a test subject, so what it does is known.
"""
import grp
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading

import pytest
from conftest import free_port, wait_until
from smtp_helpers import add_user, tls_context

PW = "pw-secret"
RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

RSPAMD_CONF = """
options {{
    pidfile = "{d}/rspamd.pid";
    dns {{ nameserver = ["127.0.0.1:{deadport}"]; timeout = 0.2s; retransmits = 1; }}
    filters = "";
    disable_hyperscan = true;
    url_tld = "{d}/tld.dat";
}}
lua = "{d}/rules.lua";
actions {{ reject = 15; add_header = 6; greylist = 4; }}
logging {{ type = "file"; filename = "{d}/rspamd.log"; level = "info"; }}
worker "rspamd_proxy" {{
    bind_socket = "127.0.0.1:{port}";
    milter = yes;
    timeout = 60s;
    count = 1;
    upstream "local" {{ default = yes; self_scan = yes; }}
}}
"""

RULES = """
rspamd_config.WHARF_TEST_SPAMMY = {
  callback = function(task)
    local s = task:get_header('Subject')
    return s ~= nil and s:find('wharf%-spammy') ~= nil
  end,
  score = 7.0,
  description = 'test rule of the Wharf suite',
}
"""


class Rspamd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wharf-rspamd-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        with open(os.path.join(self.dir, "rspamd.conf"), "w") as f:
            f.write(RSPAMD_CONF.format(d=self.dir, port=self.port, deadport=free_port()))
        with open(os.path.join(self.dir, "rules.lua"), "w") as f:
            f.write(RULES)
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("com\nnet\norg\ntest\n")
        cmd = [RSPAMD, "-f", "-c", os.path.join(self.dir, "rspamd.conf"),
               f"--var=DBDIR={self.dir}", f"--var=RUNDIR={self.dir}",
               f"--var=LOGDIR={self.dir}", f"--var=LOCAL_CONFDIR={self.dir}"]
        if os.geteuid() == 0:
            user = "_rspamd" if _user_exists("_rspamd") else "nobody"
            pw = pwd.getpwnam(user)
            for name in os.listdir(self.dir) + [""]:
                os.chown(os.path.join(self.dir, name), pw.pw_uid, pw.pw_gid)
            cmd += ["-u", user, "-g", grp.getgrgid(pw.pw_gid).gr_name]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._listening, 120, what="rspamd's milter port")
        if self.proc.poll() is not None:
            raise AssertionError("rspamd exited: " + self.proc.stderr.read().decode(errors="replace")
                                 + self.log())

    def _listening(self):
        if self.proc.poll() is not None:
            return True  # it exited: said above, not waited for
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        try:
            with open(os.path.join(self.dir, "rspamd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def rspamd():
    if not os.path.exists(RSPAMD):
        pytest.skip("rspamd not installed (make deps-test installs it)")
    r = Rspamd()
    yield r
    r.stop()


def start(factory, milters, extra=None, name="b"):
    settings = {"myhostname": "mail.b.test", "mydomains": "b.test", "milters": milters,
                "mailauth_checks": "no", "milter_timeout": "20s"}
    settings.update(extra or {})
    w = factory(name, host="127.0.0.1", enable={"smtp", "submission"}, extra=settings)
    w.start()
    if not add_user(w, "bob@b.test", PW):
        pytest.skip("directory not built")
    return w


def message(subject, body="Hello Bob,\r\nthis is a test.\r\n"):
    return (f"From: Sam <sam@sender.test>\r\nTo: bob@b.test\r\nSubject: {subject}\r\n"
            f"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@sender.test>\r\n"
            f"\r\n{body}").encode()


def send(w, msg, port="smtp"):
    """The client's view: the code and text of the end-of-data reply."""
    with smtplib.SMTP(w.host, w.ports[port], timeout=60) as c:
        c.ehlo("mx.sender.test")
        if port != "smtp":
            c.starttls(context=tls_context())
            c.ehlo("mx.sender.test")
            c.login("bob@b.test", PW)
        c.mail("sam@sender.test" if port == "smtp" else "bob@b.test")
        code, text = c.rcpt("bob@b.test")
        assert code == 250, (code, text)
        return c.data(msg)


def inbox(w, user="bob@b.test"):
    import json
    r = w.wharf("mailbox", "stats", user, "--json", check=False)
    n = json.loads(r.stdout)["messages"] if r.returncode == 0 else 0
    return [w.wharf("mailbox", "show", user, "INBOX", str(i + 1)).stdout for i in range(n)]


def header(msg, name):
    """The unfolded values of the header fields called name."""
    import re
    head = re.sub(r"\r\n[ \t]+", " ", msg.split(b"\r\n\r\n", 1)[0].decode())
    return [l.split(":", 1)[1].strip() for l in head.split("\r\n")
            if l.lower().startswith(name.lower() + ":")]


def test_rspamd_adds_its_header_and_rejects_gtube(wharf_factory, rspamd):
    w = start(wharf_factory, f"inet:127.0.0.1:{rspamd.port}")
    # scored 7 by the local rule: rspamd's add_header action
    code, text = send(w, message("wharf-spammy offer"))
    assert code == 250, (code, text, w.log()[-3000:], rspamd.log()[-3000:])
    # a clean message goes through untouched
    code, _ = send(w, message("lunch"))
    assert code == 250
    got = wait_until(lambda: (lambda m: m if len(m) == 2 else None)(inbox(w)), 30,
                     what="two deliveries")
    spammy = [m for m in got if b"wharf-spammy" in m][0]
    clean = [m for m in got if b"Subject: lunch" in m][0]
    assert header(spammy, "X-Spam") == ["Yes"], (spammy[:900].decode() + rspamd.log()[-3000:])
    assert header(clean, "X-Spam") == [], clean[:600]
    # GTUBE: rspamd's reject action, answered at the end of data, nothing kept
    code, text = send(w, message("gtube", f"{GTUBE}\r\n"))
    assert 500 <= code < 600, (code, text)
    assert b"5.7.1" in text, text
    assert len(inbox(w)) == 2
    assert "milter inet:127.0.0.1:" in w.log()


def test_two_milters_in_a_row(wharf_factory, rspamd):
    """Each filter in turn: the second is shown the message as the checks
    left it and changes the field the first added, so one X-Spam remains;
    a refusal by either refuses the message."""
    spec = f"inet:127.0.0.1:{rspamd.port}"
    w = start(wharf_factory, f"{spec} {spec}")
    code, text = send(w, message("wharf-spammy twice"))
    assert code == 250, (code, text)
    got = wait_until(lambda: inbox(w) or None, 30, what="delivery")[0]
    assert header(got, "X-Spam") == ["Yes"], got[:900]
    code, text = send(w, message("gtube twice", f"{GTUBE}\r\n"))
    assert 500 <= code < 600, (code, text)


def test_submission_goes_through_the_milter_when_named(wharf_factory, rspamd):
    w = start(wharf_factory, f"inet:127.0.0.1:{rspamd.port}",
              {"milter_services": "smtp submission"})
    code, text = send(w, message("gtube-sub", f"{GTUBE}\r\n"), port="submission")
    assert 500 <= code < 600, (code, text)
    w2 = start(wharf_factory, f"inet:127.0.0.1:{rspamd.port}", name="b2")
    # milter_services = smtp only: submitted mail never reaches the filter
    code, text = send(w2, message("gtube-sub2", f"{GTUBE}\r\n"), port="submission")
    assert code == 250, (code, text)


def test_a_milter_that_is_down_gets_the_default_action(wharf_factory):
    dead = free_port()  # nothing listens there
    w = start(wharf_factory, f"inet:127.0.0.1:{dead}")
    code, text = send(w, message("down"))
    assert code == 451 and b"4.7.1" in text, (code, text)
    assert inbox(w) == []
    w.settings["milter_default_action"] = "accept"
    w.write_config()
    w.wharf("reload")
    wait_until(lambda: send(w, message("down-accept"))[0] == 250, 30,
               what="accept once reloaded")
    wait_until(lambda: len(inbox(w)) == 1 or None, 30, what="delivery")


def test_a_milter_that_never_answers_times_out(wharf_factory):
    """A filter that accepts the connection and says nothing: the message
    gets milter_default_action (reject here) once milter_timeout is over,
    and the worker serves the next client meanwhile."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    held = []
    stop = threading.Event()

    def accept_and_hold():
        lsock.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept_and_hold, daemon=True)
    t.start()
    try:
        w = start(wharf_factory, f"inet:127.0.0.1:{lsock.getsockname()[1]}",
                  {"milter_timeout": "2s", "milter_default_action": "reject"})
        result = {}
        th = threading.Thread(target=lambda: result.update(r=send(w, message("silent"))))
        th.start()
        # while that message waits for the filter, another client is served
        with smtplib.SMTP(w.host, w.ports["smtp"], timeout=10) as c:
            assert c.noop()[0] == 250
        th.join(60)
        code, text = result["r"]
        assert code == 550 and b"5.7.1" in text, (code, text)
        assert "timed out" in w.log()
        assert inbox(w) == []
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        lsock.close()



class OpenDkim(Rspamd):
    """Debian's opendkim in verify mode as a milter; the keys it looks up
    come from TestDNSData (no DNS at all), the records `wharf dkim keygen`
    printed. Waited for and stopped as rspamd is."""

    def __init__(self, records):
        self.dir = tempfile.mkdtemp(prefix="wharf-opendkim-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        with open(os.path.join(self.dir, "dns"), "w") as f:
            for name, txt in records.items():
                f.write(f"{name} {txt}\n")
        conf = os.path.join(self.dir, "opendkim.conf")
        with open(conf, "w") as f:
            f.write(f"Syslog no\nMode v\nSocket inet:{self.port}@127.0.0.1\n"
                    f"AuthservID opendkim.b.test\nTestDNSData file:{self.dir}/dns\n"
                    f"PidFile {self.dir}/pid\nAlwaysAddARHeader yes\n"
                    + ("UserID opendkim\n" if os.geteuid() == 0 and _user_exists("opendkim")
                       else ""))
        self.proc = subprocess.Popen(["/usr/sbin/opendkim", "-f", "-x", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._listening, 60, what="opendkim's milter port")
        if self.proc.poll() is not None:
            raise AssertionError("opendkim exited: " + self.proc.stderr.read().decode())



def keygen_records(output):
    """{name: TXT} from the records `wharf dkim keygen` prints."""
    import re
    out = {}
    for line in output.splitlines():
        m = re.match(r'^(\S+)\. IN TXT \((.*)\)', line)
        if m:
            out[m.group(1).lower()] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return out


def test_opendkim_verifies_what_wharf_signs(wharf_factory):
    """Wharf A signs (Ed25519 and RSA) and relays to Wharf B, whose milter is
    OpenDKIM: OpenDKIM's own verifier must pass the RSA signature (and the
    Ed25519 one: OpenDKIM 2.11 knows RFC 8463)."""
    if not os.path.exists("/usr/sbin/opendkim"):
        pytest.skip("opendkim not installed (make deps-test installs it)")
    b = wharf_factory("b", host="127.0.0.3", enable={"smtp"},
                      extra={"myhostname": "mail.b.test", "mydomains": "b.test",
                             "mailauth_checks": "no", "mynetworks": "192.0.2.0/24"})
    a = wharf_factory("a", host="127.0.0.2", enable={"smtp", "submission"},
                      extra={"myhostname": "mail.a.test", "mydomains": "a.test",
                             "mta_retry_min": "1s", "mailauth_checks": "no",
                             "transport_routes": f"b.test=[127.0.0.3]:{b.ports['smtp']} may"})
    a.start()
    if not add_user(a, "alice@a.test", PW):
        pytest.skip("directory not built")
    records = keygen_records(a.wharf("dkim", "keygen", "a.test").stdout.decode())
    assert len(records) == 2, records
    od = OpenDkim(records)
    try:
        b.settings["milters"] = f"inet:127.0.0.1:{od.port}"
        b.write_config()
        b.start()
        assert add_user(b, "bob@b.test", PW)
        with smtplib.SMTP(a.host, a.ports["submission"], timeout=30) as c:
            c.starttls(context=tls_context())
            c.login("alice@a.test", PW)
            c.sendmail("alice@a.test", ["bob@b.test"],
                       b"From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: to opendkim\r\n"
                       b"\r\nHello Bob,  checked  by OpenDKIM.\r\n")
        got = wait_until(lambda: inbox(b) or None, 60, what="delivery on b")[0]
        ar = " ".join(header(got, "Authentication-Results"))
        assert ar.startswith("opendkim.b.test;"), got[:1500]
        assert "dkim=pass" in ar and "header.a=rsa-sha256" in ar, ar
        assert "dkim=fail" not in ar, ar
    finally:
        od.stop()
