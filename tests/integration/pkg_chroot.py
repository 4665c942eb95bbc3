"""The Debian package's life in a throw-away copy of this machine (run by test_install.py).

Usage (as root): unshare --mount --net --fork python3 pkg_chroot.py DEBDIR

In its own mount and network namespaces it mounts an overlay of / with a tmpfs
as the writable layer: a chroot that is this machine (its dpkg database, its
libraries, adduser) where every write vanishes with the namespace. There it
runs the real maintainer path with dpkg: install (user created, conffile),
`systemd-analyze verify` of the unit, wharfd started from /usr/sbin with the
installed /etc/wharf/wharf.conf on its real ports (25, 110, 143 of the
namespace's own loopback), mail in over SMTP and out over POP3 and IMAP, an
upgrade to a newer build that keeps the data and the admin's configuration,
remove (data and configuration stay) and purge (both gone).

Prints one line per step and exits non-zero with the reason on the first
failure. Not a pytest module: it must run inside the namespaces.
"""
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

USER = "alice@example.test"
PASSWORD = "correct horse battery"


def step(text):
    print(f"pkg_chroot: {text}", flush=True)


def fail(text):
    print(f"pkg_chroot: FAILED: {text}", flush=True)
    sys.exit(1)


def run(cmd, input=None, check=True, timeout=120):
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n"
             f"{r.stdout.decode(errors='replace')}{r.stderr.decode(errors='replace')}")
    return r


def wait_until(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = predicate()
            if v:
                return v
        except Exception as exc:  # not checkable yet (connection refused, ...)
            last = exc
        time.sleep(0.05)
    fail(f"timed out waiting for {what}" + (f": {last!r}" if last else ""))


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Root:
    """The overlay chroot."""

    def __init__(self, top: Path):
        self.top = top
        self.path = top / "root"

    def setup(self):
        run(["mount", "-t", "tmpfs", "tmpfs", str(self.top)])
        for d in ("upper", "work", "root"):
            (self.top / d).mkdir()
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir=/,upperdir={self.top}/upper,workdir={self.top}/work", str(self.path)])
        run(["mount", "-t", "proc", "proc", str(self.path / "proc")])
        run(["mount", "--rbind", "/dev", str(self.path / "dev")])
        for d in ("run", "tmp"):
            run(["mount", "-t", "tmpfs", "tmpfs", str(self.path / d)])
        run(["ip", "link", "set", "lo", "up"])

    def __truediv__(self, rel):
        return self.path / rel.lstrip("/")

    def ch(self, *cmd, input=None, check=True, timeout=120):
        env_cmd = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
                   "DEBIAN_FRONTEND=noninteractive"]
        return run(["chroot", str(self.path), *env_cmd, *cmd], input=input, check=check,
                   timeout=timeout)


def repack(deb: Path, version: str, out: Path) -> Path:
    """The same package under a newer version: the upgrade path without a second build."""
    tree = out / "tree"
    run(["dpkg-deb", "-R", str(deb), str(tree)])
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text()))
    new = out / f"wharf_{version}_amd64.deb"
    run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(new)])
    shutil.rmtree(tree)
    return new


def wharfd_pid(root: Root):
    p = root / "/run/wharf/wharfd.pid"
    return int(p.read_text()) if p.exists() else None


def alive(pid):
    return pid is not None and Path(f"/proc/{pid}").exists() and \
        "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def start_wharfd(root: Root):
    # No -c and no -f: the installed program finds /etc/wharf/wharf.conf and
    # daemonizes with its pid file, as it does without systemd.
    root.ch("/usr/sbin/wharfd")
    pid = wharfd_pid(root)
    if not alive(pid):
        fail(f"wharfd did not stay up (pid file says {pid})")

    def ready():
        r = root.ch("wharf", "status", "--json", check=False)
        if r.returncode != 0:
            return None
        import json
        st = json.loads(r.stdout)
        return st if all(c["state"] in ("running", "not built yet", "disabled")
                         for c in st["components"]) else None
    st = wait_until(ready, what="every component running")
    if st["config"] != "/etc/wharf/wharf.conf" or st["data_directory"] != "/var/lib/wharf":
        fail(f"wharfd runs on {st['config']} / {st['data_directory']}")
    return pid


def stop_wharfd(root: Root, pid):
    os.kill(pid, 15)
    wait_until(lambda: not alive(pid), what=f"wharfd {pid} to exit")


def process_titles(pid):
    """cmdline and comm of wharfd's children."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append(((p / "cmdline").read_bytes().split(b"\0")[0].decode(),
                            (p / "comm").read_text().strip()))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return out


def send_mail(token):
    with smtplib.SMTP("127.0.0.1", 25, timeout=20) as s:
        s.ehlo("client.example.net")
        s.sendmail("bob@example.net", [USER],
                   f"From: bob@example.net\r\nTo: {USER}\r\nSubject: {token}\r\n\r\n"
                   f"body {token}\r\n")


def pop3_messages():
    p = poplib.POP3("127.0.0.1", 110, timeout=20)
    p.stls(context=tls_context())
    p.user(USER)
    p.pass_(PASSWORD)
    msgs = [b"\n".join(p.retr(i + 1)[1]) for i in range(len(p.list()[1]))]
    p.quit()
    return msgs


def imap_messages():
    i = imaplib.IMAP4("127.0.0.1", 143, timeout=20)
    i.starttls(ssl_context=tls_context())
    i.login(USER, PASSWORD)
    i.select("INBOX")
    typ, data = i.search(None, "ALL")
    msgs = []
    for n in data[0].split():
        typ, d = i.fetch(n, "(BODY.PEEK[])")
        msgs.append(d[0][1])
    i.logout()
    return msgs


def main():
    debdir = Path(sys.argv[1]).resolve()
    deb = next(debdir.glob("wharf_*_amd64.deb"))
    top = Path(tempfile.mkdtemp(prefix="wharf-pkg-"))
    root = Root(top)
    try:
        root.setup()
        check_package(root, deb, top)
    finally:
        # a wharfd left by a failed step must not outlive the test
        pid = wharfd_pid(root) if (root / "/run").exists() else None
        if alive(pid):
            for p in [pid] + children(pid):
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
        subprocess.run(["umount", "-R", "-l", str(top)], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
    print("pkg_chroot: OK", flush=True)


def children(pid):
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and \
                    int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return out


def check_package(root, deb, top):
    step(f"overlay root of / at {root.path}")
    if (root / "/usr/sbin/wharfd").exists():
        fail("wharf is already installed on this machine; the test needs a machine without it")
    shutil.copy(deb, root / "/tmp/wharf.deb")
    # a wharf user of this machine (a wharfd run here made one) must not hide the postinst's
    root.ch("userdel", "wharf", check=False)
    root.ch("groupdel", "wharf", check=False)

    # ---- install
    root.ch("dpkg", "-i", "/tmp/wharf.deb")
    status = root.ch("dpkg-query", "-W", "-f=${Status} ${Version}", "wharf").stdout.decode()
    if not status.startswith("install ok installed"):
        fail(f"dpkg says {status}")
    pw = root.ch("getent", "passwd", "wharf").stdout.decode()
    if not pw.rstrip().endswith(":/var/lib/wharf:/usr/sbin/nologin"):
        fail(f"the postinst did not make the system user wharf: {pw}")
    conffiles = root.ch("dpkg-query", "-W", "-f=${Conffiles}", "wharf").stdout.decode()
    if "/etc/wharf/wharf.conf" not in conffiles:
        fail(f"wharf.conf is not a conffile: {conffiles}")
    step(f"installed: {status}; user {pw.strip()}")

    # ---- the unit, checked where its program and man pages exist
    root.ch("systemd-analyze", "verify", "--man=no", "/lib/systemd/system/wharf.service")
    sec = root.ch("systemd-analyze", "security", "--offline=true",
                  "/lib/systemd/system/wharf.service").stdout.decode()
    m = re.search(r"Overall exposure level for wharf.service: ([0-9.]+)", sec)
    if not m or float(m.group(1)) > 3.0:
        fail(f"systemd-analyze security: {m.group(0) if m else sec[-500:]}")
    step(f"systemd-analyze verify: ok; security exposure {m.group(1)}")

    # ---- run it from the installed paths; mail in and out
    pid = start_wharfd(root)
    run_dir = (root / "/run/wharf").stat()
    if run_dir.st_mode & 0o777 != 0o750:
        fail(f"/run/wharf has mode {oct(run_dir.st_mode & 0o777)}")
    titles = process_titles(pid)
    names = sorted(t[0] for t in titles)
    if "wharfd: supervisor" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode():
        fail("wharfd's title is not 'wharfd: supervisor'")
    for want in ("wharf: smtp worker 1/", "wharf: imap worker 1/", "wharf: pop3 worker 1/",
                 "wharf: mta", "wharf: auth"):
        if not any(n.startswith(want) for n in names):
            fail(f"no process titled '{want}...' among {names}")
    if not any(comm == "wharf-smtp" for _, comm in titles):
        fail(f"no process named wharf-smtp for top: {titles}")
    step(f"wharfd {pid} running; processes: {', '.join(names)}")

    root.ch("wharf", "domain", "add", "example.test")
    root.ch("wharf", "user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    token = uuid.uuid4().hex
    send_mail(token)
    msgs = wait_until(lambda: [m for m in pop3_messages() if token.encode() in m],
                      what="the message in POP3")
    if not any(token.encode() in m for m in imap_messages()):
        fail("the message is not in IMAP")
    step("SMTP in, POP3 and IMAP out: ok")

    # ---- the admin's configuration; upgrade to the next build
    conf = root / "/etc/wharf/wharf.conf"
    conf.write_text(conf.read_text() + "\n# local edit by the admin\n")
    (root / "/etc/wharf/conf.d/local.conf").write_text("imap_max_connections = 999\n")
    stop_wharfd(root, pid)
    new = repack(deb, "0.1.0+upgrade1", top)
    shutil.copy(new, root / "/tmp/wharf-new.deb")
    root.ch("dpkg", "-i", "/tmp/wharf-new.deb")
    version = root.ch("dpkg-query", "-W", "-f=${Version}", "wharf").stdout.decode()
    if version != "0.1.0+upgrade1":
        fail(f"upgrade left version {version}")
    if "# local edit by the admin" not in conf.read_text():
        fail("the upgrade replaced the admin's wharf.conf")
    if not (root / "/etc/wharf/conf.d/local.conf").exists():
        fail("the upgrade removed conf.d/local.conf")
    pid = start_wharfd(root)
    dump = root.ch("wharf", "config", "dump").stdout.decode()
    if "imap_max_connections = 999" not in dump:
        fail(f"conf.d/local.conf is not read after the upgrade:\n{dump}")
    if not any(token.encode() in m for m in pop3_messages()):
        fail("the message was lost in the upgrade")
    step(f"upgraded to {version}: configuration and mail kept")

    # ---- remove (wharfd still running: prerm stops it), then purge
    root.ch("dpkg", "-r", "wharf")
    if alive(pid):
        fail("dpkg -r left wharfd running")
    if (root / "/usr/sbin/wharfd").exists():
        fail("dpkg -r left /usr/sbin/wharfd")
    if not (root / "/var/lib/wharf/store").is_dir() or not conf.exists():
        fail("dpkg -r removed the data or the configuration")
    step("removed: program gone, data and configuration kept")
    root.ch("dpkg", "-P", "wharf")
    for gone in ("/var/lib/wharf", "/etc/wharf", "/run/wharf"):
        if (root / gone).exists():
            fail(f"dpkg -P left {gone}")
    status = root.ch("dpkg-query", "-W", "-f=${Status}", "wharf", check=False).stdout.decode()
    if "installed" in status and "not-installed" not in status:
        fail(f"dpkg still lists wharf after purge: {status}")
    step("purged: data and configuration gone")


if __name__ == "__main__":
    main()
