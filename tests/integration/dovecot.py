"""A private Dovecot (Debian's dovecot-imapd, dovecot-lda) for migration tests.

Runs `dovecot -F -c CONF` from a temporary directory on a free loopback
port, with passwd-file users ({PLAIN} passwords) whose mail files belong to
the wharf user, so that `wharf import`/`wharf export` (which drop to that
user) read and write the same Maildirs Dovecot serves. Readiness is the IMAP
greeting, never a sleep.
"""
import imaplib
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import free_port, wait_until

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
LDA = "/usr/lib/dovecot/dovecot-lda"


def available():
    return Path(DOVECOT).exists() and Path(LDA).exists()


class Dovecot:
    def __init__(self, base: Path, users, mail_location="maildir:{base}/mail/%u", owner="wharf"):
        if not available():
            pytest.skip("dovecot-imapd/dovecot-core not installed (make deps-test)")
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        pw = pwd.getpwnam(owner)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.port = free_port()
        self.users = users
        for d in ("run", "state", "mail", "home"):
            (base / d).mkdir(exist_ok=True)
        for d in ("mail", "home"):
            shutil.chown(base / d, self.uid, self.gid)
        (base / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in users.items()))
        self.conf = base / "dovecot.conf"
        self.conf.write_text(f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = {mail_location.format(base=base)}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {base}/users
  default_fields = uid={self.uid} gid={self.gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        self.proc = None

    def maildir(self, user):
        return self.base / "mail" / user

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def greets():
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited: {self.log()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(5).startswith(b"* OK")
        wait_until(greets, 30, what="dovecot greeting")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def log(self):
        p = self.base / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def deliver(self, user, message: bytes, sender="sender@example.net"):
        """Delivers with Dovecot's own LDA (as root: it switches to the user's uid)."""
        r = subprocess.run([LDA, "-c", str(self.conf), "-d", user, "-f", sender],
                           input=message, capture_output=True, timeout=60)
        assert r.returncode == 0, (r.returncode, r.stderr, self.log())

    def imap(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.port)
        m.login(user, self.users[user])
        return m
