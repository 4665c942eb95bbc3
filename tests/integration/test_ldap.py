"""The LDAP directory driver against a real OpenLDAP slapd from Debian.

Each test starts slapd on a free loopback port with its own data directory
(slapd.conf, mdb backend, the tree loaded with slapadd) and a wharfd with
directory_driver = ldap reading it every second. Changes to the tree are
made with ldapadd/ldapdelete while both run; every wait polls (ldapsearch
until slapd answers, SMTP RCPT until wharf sees a change), never sleeps.

- accounts, an alias (mailLocalAddress) and a group (groupOfNames) are
  expanded on SMTP delivery; an address nobody has gets 550 5.1.1;
- a user added in LDAP receives mail within the sync interval, a user
  removed stops receiving, a changed address takes effect: polled
  (modifyTimestamp deltas, DN listings) from a slapd without syncprov, and
  pushed at once by a slapd with it (syncrepl, RFC 4533), which wharf
  follows again, resuming with its cookie, after slapd was killed;
- IMAP LOGIN and SMTP AUTH (PLAIN and LOGIN) are checked by LDAP bind as
  the user's DN; a wrong password and an unknown user are refused;
- slapd stopped: a user who logged in before still can, deliveries go on,
  and the log says the directory is served stale; slapd back: fresh again;
  the logins kept for that (DATA/auth/login-cache) outlive a `wharf reload`,
  a restart of wharfd and a crash of the auth process; a login renews its
  entry, and an old password LDAP refused is dropped;
- `wharf user list` lists the accounts with their source;
- ldap_password_check = hash: {SSHA} and {CRYPT} userPassword values read
  by the search account (allowed by slapd's ACL) check IMAP LOGIN and SMTP
  AUTH without a bind as the user (one whose own bind slapd refuses still
  logs in), a cleartext value is refused and the log says why, the mirror
  never holds a hash, the workers' socket is refused the question that
  brings one, and an outage is ridden out as with bind.

Wharf searches as an account slapd answers 2 entries at a time: every read
goes through paged results (RFC 2696).
"""
import http.client
import imaplib
import json
import os
import pwd
import shutil
import signal
import smtplib
import struct
import subprocess
import time
from pathlib import Path

import pytest

import authwire
from conftest import free_port, tls_context, wait_until
from smtp_helpers import wait_smtp_ready

SLAPD = "/usr/sbin/slapd"
BASE = "dc=example,dc=test"
ADMIN = f"cn=admin,{BASE}"
ADMIN_PW = "admin-secret"
# Wharf's search account: slapd gives it at most 2 entries per search and per
# page, so every read of the tree needs paged results (as AD's 1000 would).
SERVICE = f"cn=wharf,{BASE}"
SERVICE_PW = "wharf-secret"
# A user slapd lets nobody bind as (hash_reader's ACL): only a hash check logs it in.
NOBIND = f"uid=nobind,ou=people,{BASE}"

pytestmark = pytest.mark.skipif(not Path(SLAPD).exists(), reason="slapd not installed")


def person(uid, mail, password, extra=""):
    return (f"dn: uid={uid},ou=people,{BASE}\n"
            "objectClass: inetOrgPerson\nobjectClass: inetLocalMailRecipient\n"
            f"uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {mail}\nuserPassword: {password}\n{extra}\n")


# A small schema of our own for quotas (doc/directory.md ships the same).
SCHEMA = """attributetype ( 1.3.6.1.4.1.32473.17.1.1 NAME 'wharfQuota'
  DESC 'mailbox quota in bytes (k, M, G suffixes)'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.17.1.2 NAME 'wharfQuotaMessages'
  DESC 'mailbox quota in messages'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.17.2.1 NAME 'wharfMailbox' SUP top AUXILIARY
  MAY ( wharfQuota $ wharfQuotaMessages ) )
"""

TREE = (f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
        f"dn: {SERVICE}\nobjectClass: person\ncn: wharf\nsn: wharf\nuserPassword: {SERVICE_PW}\n\n"
        f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n"
        f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
        + person("alice", "alice@example.test", "alice pw",
                 "mailLocalAddress: ali@example.test\nmailLocalAddress: a.smith@example.test\n")
        + person("bob", "bob@example.test", "bob pw")
        + person("dave", "dave@example.test", "dave pw",
                 "objectClass: wharfMailbox\nwharfQuota: 200M\nwharfQuotaMessages: 5000\n"
                 "mailHost: mail2.example.test\n")
        + f"dn: cn=team,ou=groups,{BASE}\nobjectClass: groupOfNames\n"
        "objectClass: inetLocalMailRecipient\ncn: team\nmailLocalAddress: team@example.test\n"
        f"member: uid=alice,ou=people,{BASE}\nmember: uid=bob, ou=people, {BASE}\n\n")


def make_ca(base: Path, name):
    """A CA and, signed by it, a certificate for 127.0.0.1 (PEM files in base)."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=base)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} CA",
         "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", f"{name}.key", "-out", f"{name}.csr")
    (base / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return base / f"{name}-ca.pem"


class Slapd:
    """OpenLDAP's slapd on a loopback port, with its own config and database
    (tls: also LDAPS on a second port, and StartTLS, with a certificate of its own CA)."""

    def __init__(self, base: Path, tls=False, syncprov=False, hash_reader=False, extra_tree=""):
        self.base = base
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.listen = self.uri + "/"
        self.proc = None
        tls_conf = ""
        if tls:
            base.mkdir(parents=True)
            self.ca = make_ca(base, "slapd")
            self.ldaps_uri = f"ldaps://127.0.0.1:{free_port()}"
            self.listen += " " + self.ldaps_uri + "/"
            tls_conf = (f"TLSCACertificateFile {self.ca}\nTLSCertificateFile {base}/slapd.pem\n"
                        f"TLSCertificateKeyFile {base}/slapd.key\n")
        db = base / "db"
        db.mkdir(parents=True, exist_ok=True)
        self.conf = base / "slapd.conf"
        (base / "wharf.schema").write_text(SCHEMA)
        self.conf.write_text(
            "".join(f"include /etc/ldap/schema/{s}.schema\n"
                    for s in ("core", "cosine", "inetorgperson", "misc"))
            + f"include {base}/wharf.schema\n"
            + tls_conf + f"pidfile {base}/slapd.pid\nargsfile {base}/slapd.args\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            + ("moduleload syncprov\n" if syncprov else "")
            + f'database mdb\nmaxsize 104857600\nsuffix "{BASE}"\nrootdn "{ADMIN}"\n'
            f"rootpw {ADMIN_PW}\ndirectory {db}\nindex objectClass eq\n"
            # syncrepl: the search account reads the tree in one refresh, as a
            # replica's account does (no pages in a refreshAndPersist search)
            + (f'limits dn.exact="{SERVICE}" size=unlimited\n'
               "index entryUUID,entryCSN eq\noverlay syncprov\n" if syncprov else
               f'limits dn.exact="{SERVICE}" size.soft=2 size.hard=2 size.pr=2 '
               "size.prtotal=unlimited\n")
            # hash_reader: the search account reads the hashes
            # (ldap_password_check = hash), and one user may not bind at all
            + (f'access to dn.exact="{NOBIND}" attrs=userPassword by dn.exact="{SERVICE}" read '
               "by * none\n"
               f'access to attrs=userPassword by dn.exact="{SERVICE}" read by self write '
               "by anonymous auth by * none\n" if hash_reader else "")
            # users bind with their own password; nobody reads another's
            + "access to attrs=userPassword by self write by anonymous auth by * none\n"
            "access to * by * read\n")
        ldif = base / "tree.ldif"
        ldif.write_text(TREE + extra_tree)
        subprocess.run(["slapadd", "-f", str(self.conf), "-l", str(ldif)], check=True,
                       capture_output=True)

    def start(self):
        self.log = open(self.base / "slapd.log", "ab")
        self.proc = subprocess.Popen([SLAPD, "-f", str(self.conf), "-h", self.listen, "-d", "0"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.search("(uid=alice)").returncode == 0, 20,
                   what="slapd to answer ldapsearch")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
            self.log.close()

    def search(self, filt):
        return subprocess.run(["ldapsearch", "-x", "-H", self.uri, "-b", BASE, "-LLL", filt],
                              capture_output=True, timeout=10)

    def modify(self, tool, text):
        subprocess.run([tool, "-x", "-H", self.uri, "-D", ADMIN, "-w", ADMIN_PW],
                       input=text.encode(), check=True, capture_output=True, timeout=10)


@pytest.fixture
def slapd(tmp_path):
    s = Slapd(tmp_path / "slapd").start()
    yield s
    s.stop()


@pytest.fixture
def slapd_syncprov(tmp_path):
    """A slapd with the syncprov overlay: it offers syncrepl (RFC 4533)."""
    s = Slapd(tmp_path / "slapd", syncprov=True).start()
    yield s
    s.stop()


def bind_password_file(server, password=SERVICE_PW):
    """The search password in a file the directory process's user alone reads
    (ldap_bind_password_file; test_frontend.py's servers use it too)."""
    pw = server.base / "ldap-bind.pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    user = pwd.getpwnam(server.settings.get("wharf_user", "wharf"))
    shutil.chown(pw, user.pw_uid, user.pw_gid)
    server.settings["ldap_bind_password_file"] = str(pw)


def start_wharf(wharf_factory, slapd, name="w", read=True,
                services=("smtp", "submission", "imap", "pop3"), bind_pw=SERVICE_PW, **extra):
    settings = {
        "directory_driver": "ldap",
        "ldap_uris": slapd.uri,
        "ldap_base_dn": BASE,
        "ldap_bind_dn": SERVICE,
        "ldap_page_size": "2",
        "ldap_sync_interval": "1s",
        "ldap_quota_attribute": "wharfQuota",
        "ldap_quota_messages_attribute": "wharfQuotaMessages",
        "ldap_timeout": "2s",
        "directory_client_cache_ttl": "0",
        "directory_client_negative_ttl": "0",
        "auth_fail_delay": "0",
        "auth_fail_delay_max": "0",
        "smtp_auth_plaintext": "yes",
        "imap_plaintext_auth": "yes",
    }
    settings.update(extra)
    server = wharf_factory(name, enable=set(services), extra=settings)
    bind_password_file(server, bind_pw)
    if "ldap_tls_ca_file" in extra:  # where the directory and auth users can read it
        ca = server.base / "ldap-ca.pem"
        shutil.copy(extra["ldap_tls_ca_file"], ca)
        ca.chmod(0o644)
        server.settings["ldap_tls_ca_file"] = str(ca)
    server.write_config()
    server.start(wait=False)
    wait_smtp_ready(server)
    if read:
        try:
            wait_until(lambda: rcpt(server, "alice@example.test") == 250, 20,
                       what="wharf to read the tree")
        except AssertionError as e:
            raise AssertionError(f"{e}\n" + "\n".join(
                line for line in server.log().splitlines() if "ldap" in line)) from None
    return server


def rcpt(server, address):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("client.example")
        c.mail("sender@example.org")
        return c.rcpt(address)[0]


def send(server, rcpts, subject):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("client.example")
        c.mail("sender@example.org")
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        assert c.data(f"Subject: {subject}\r\n\r\nhello\r\n".encode())[0] == 250


def inbox(server, user):
    r = server.wharf("mailbox", "stats", user, "--json", check=False)
    return json.loads(r.stdout)["messages"] if r.returncode == 0 else 0


def test_accounts_aliases_and_groups_from_ldap(wharf_factory, slapd):
    server = start_wharf(wharf_factory, slapd)
    assert rcpt(server, "nobody@example.test") == 550
    send(server, ["alice@example.test"], "direct")
    send(server, ["ali@example.test"], "alias")
    send(server, ["team@example.test"], "group")
    wait_until(lambda: inbox(server, "alice@example.test") == 3, 15, what="alice's three")
    wait_until(lambda: inbox(server, "bob@example.test") == 1, 15, what="bob's group copy")
    out = server.wharf("user", "list").stdout.decode()
    assert "alice@example.test" in out and "bob@example.test" in out and " ldap " in out
    users = {u["account"]: u for u in json.loads(server.wharf("user", "list", "--json").stdout)}
    assert users["alice@example.test"]["source"] == "ldap"
    dave = users["dave@example.test"]
    assert (dave["quota_bytes"], dave["quota_messages"]) == (200 << 20, 5000)
    assert dave["home"] == "mail2.example.test" and users["alice@example.test"]["home"] == ""
    # The outbound LDAP row is live, towards the configured server; LDAPS is not used.
    rows = {r["service"]: r for r in server.port_map()["ports"]}
    assert rows["ldap"]["address"] == f"127.0.0.1:{slapd.port}"
    assert rows["ldap"]["state"] == "running"
    assert rows["ldaps"]["state"] == "not configured"
    aliases = server.wharf("alias", "list").stdout.decode()
    assert "team@example.test" in aliases and "a.smith@example.test" in aliases
    # The tree is LDAP's: the wharf command cannot change it.
    r = server.wharf("user", "add", "eve@example.test", "--password-stdin", input=b"pw\n",
                     check=False)
    assert r.returncode != 0 and b"ldap" in r.stderr


def test_added_user_receives_and_removed_user_is_refused(wharf_factory, slapd):
    server = start_wharf(wharf_factory, slapd)
    assert rcpt(server, "carol@example.test") == 550
    slapd.modify("ldapadd", person("carol", "carol@example.test", "carol pw"))
    # Seen within the sync interval (1s here): polled, with room for a busy machine.
    wait_until(lambda: rcpt(server, "carol@example.test") == 250, 15, what="carol to exist")
    send(server, ["carol@example.test"], "welcome")
    wait_until(lambda: inbox(server, "carol@example.test") == 1, 15, what="carol's mail")
    slapd.modify("ldapdelete", f"uid=bob,ou=people,{BASE}\n")
    wait_until(lambda: rcpt(server, "bob@example.test") == 550, 15, what="bob to be gone")
    assert_unknown(server, "bob@example.test")
    # A modify: seen by the next round's modifyTimestamp filter (only every
    # 60th round reads the whole tree).
    change_alias(slapd, "alice", "ali@example.test", "alice.new@example.test")
    wait_until(lambda: rcpt(server, "alice.new@example.test") == 250, 15, what="the new alias")
    assert rcpt(server, "ali@example.test") == 550
    log = server.log()
    assert "ldap: directory read" in log
    assert "ldap: polling the tree for changes every 1000 ms (the server does not offer syncrepl)" in log


def assert_unknown(server, address):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("client.example")
        c.mail("sender@example.org")
        code, text = c.rcpt(address)
        assert code == 550 and b"5.1.1" in text, (code, text)


def change_alias(slapd, uid, old, new):
    slapd.modify("ldapmodify", f"dn: uid={uid},ou=people,{BASE}\nchangetype: modify\n"
                 f"delete: mailLocalAddress\nmailLocalAddress: {old}\n-\n"
                 f"add: mailLocalAddress\nmailLocalAddress: {new}\n")


# With syncrepl a change is pushed by slapd: seen in about the time a mirror
# takes to write, never an interval (an hour here). Generous for a loaded
# machine, far below any polling.
PROMPT = 5


def test_syncrepl_sees_adds_modifies_and_deletes_at_once(wharf_factory, slapd_syncprov):
    slapd = slapd_syncprov
    server = start_wharf(wharf_factory, slapd, ldap_sync_interval="1h", ldap_page_size="0")
    assert "ldap: following the tree's changes by syncrepl" in server.log()
    assert rcpt(server, "team@example.test") == 250
    slapd.modify("ldapadd", person("carol", "carol@example.test", "carol pw"))
    wait_until(lambda: rcpt(server, "carol@example.test") == 250, PROMPT, what="carol to exist")
    send(server, ["carol@example.test"], "welcome")
    wait_until(lambda: inbox(server, "carol@example.test") == 1, 15, what="carol's mail")
    assert imap_login(server, "carol@example.test", "carol pw")
    change_alias(slapd, "alice", "ali@example.test", "alice.new@example.test")
    wait_until(lambda: rcpt(server, "alice.new@example.test") == 250, PROMPT, what="the new alias")
    assert rcpt(server, "ali@example.test") == 550
    slapd.modify("ldapdelete", f"uid=bob,ou=people,{BASE}\n")
    wait_until(lambda: rcpt(server, "bob@example.test") == 550, PROMPT, what="bob to be gone")
    assert_unknown(server, "bob@example.test")
    # The group follows its members: bob's delete leaves alice alone in it.
    send(server, ["team@example.test"], "team")
    wait_until(lambda: inbox(server, "alice@example.test") == 1, 15, what="alice's team copy")
    assert "polling" not in server.log()


def test_syncrepl_reconnects_and_resumes(wharf_factory, slapd_syncprov):
    slapd = slapd_syncprov
    server = start_wharf(wharf_factory, slapd, ldap_sync_interval="1h", ldap_page_size="0")
    slapd.proc.kill()  # no goodbye: the persistent search just ends
    slapd.proc.wait(20)
    slapd.log.close()
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")
    assert rcpt(server, "bob@example.test") == 250  # served as last read
    # A change made while wharf is away (offline, into slapd's database): the
    # refresh resumed from wharf's cookie brings it, and it alone.
    (slapd.base / "erin.ldif").write_text(person("erin", "erin@example.test", "erin pw"))
    subprocess.run(["slapadd", "-w", "-f", str(slapd.conf), "-l", str(slapd.base / "erin.ldif")],
                   check=True, capture_output=True)
    slapd.start()
    wait_until(lambda: "ldap: directory read again, fresh" in server.log(), 20,
               what="the directory to be fresh again")
    assert "syncrepl refresh done, resumed from the last connection's cookie: 1 entries sent" \
        in server.log()
    assert rcpt(server, "erin@example.test") == 250
    assert rcpt(server, "bob@example.test") == 250 and rcpt(server, "team@example.test") == 250
    # And the persistent search goes on: a change now is seen at once.
    slapd.modify("ldapdelete", f"uid=erin,ou=people,{BASE}\n")
    wait_until(lambda: rcpt(server, "erin@example.test") == 550, PROMPT, what="erin to be gone")
    assert rcpt(server, "alice@example.test") == 250


def test_sync_mode_poll_is_forced_by_the_option(wharf_factory, slapd_syncprov):
    server = start_wharf(wharf_factory, slapd_syncprov, ldap_sync_mode="poll",
                         ldap_page_size="0")
    slapd_syncprov.modify("ldapdelete", f"uid=bob,ou=people,{BASE}\n")
    wait_until(lambda: rcpt(server, "bob@example.test") == 550, 15, what="bob to be gone")
    log = server.log()
    assert "polling the tree for changes every 1000 ms (ldap_sync_mode = poll)" in log
    assert "syncrepl" not in log


def imap_login(server, user, password):
    with imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20) as c:
        try:
            c.login(user, password)
        except imaplib.IMAP4.error:
            return False
        c.logout()
        return True


def smtp_auth(server, user, password, mech):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=20) as c:
        c.ehlo("client.example")
        c.user, c.password = user, password
        code, _ = c.auth(mech, getattr(c, "auth_" + mech.lower()), initial_response_ok=True)
        return code


def test_logins_are_checked_by_ldap_bind(wharf_factory, slapd):
    # Another login name (AD's userPrincipalName; here the first mailLocalAddress).
    server = start_wharf(wharf_factory, slapd, ldap_login_attribute="mailLocalAddress")
    assert imap_login(server, "alice@example.test", "alice pw")
    assert imap_login(server, "ali@example.test", "alice pw")
    assert "user=<ali@example.test> rip=127.0.0.1 account=alice@example.test" in server.log()
    assert not imap_login(server, "alice@example.test", "bob pw")
    assert not imap_login(server, "nobody@example.test", "alice pw")
    assert smtp_auth(server, "bob@example.test", "bob pw", "PLAIN") == 235
    assert smtp_auth(server, "bob@example.test", "bob pw", "LOGIN") == 235
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_auth(server, "bob@example.test", "alice pw", "PLAIN")
    # A password changed in LDAP is the one that works at once.
    slapd.modify("ldapmodify", f"dn: uid=bob,ou=people,{BASE}\nchangetype: modify\n"
                 "replace: userPassword\nuserPassword: new bob pw\n")
    assert imap_login(server, "bob@example.test", "new bob pw")
    assert not imap_login(server, "bob@example.test", "bob pw")
    log = server.log()
    assert "auth ok: service=imap user=<alice@example.test>" in log
    assert "user=<nobody@example.test> rip=127.0.0.1 reason=unknown user" in log
    assert "user=<alice@example.test> rip=127.0.0.1 reason=wrong password" in log
    assert "alice pw" not in log and "bob pw" not in log, "a password reached the log"


def https(server, method, path, headers=None, body=None):
    """(status, body) of one request to the server's https listener."""
    c = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], context=tls_context(),
                                    timeout=20)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, r.read(), r.getheader("Set-Cookie"))
    c.close()
    return out


def test_app_passwords_and_webmail_sessions(wharf_factory, slapd):
    """An app password's or a webmail session's account is asked of the directory
    process: the auth process cannot read the LDAP mirror (both once got a
    temporary failure whatever the token, and `wharf token add` failed)."""
    server = start_wharf(wharf_factory, slapd, services=("smtp", "https"),
                         webmail_dir=str(Path(__file__).resolve().parents[2] / "src/http/webmail"),
                         http_auth_failure_delay="0", test_hooks="yes")
    r = server.wharf("token", "add", "alice@example.test", check=False)
    assert r.returncode == 0, r.stderr
    token = r.stdout.decode().strip()
    assert https(server, "GET", "/_test/whoami",
                 {"Authorization": f"Bearer {token}"})[:2] == (200, b"alice@example.test\n")
    r = server.wharf("token", "add", "nobody@example.test", check=False)
    assert r.returncode != 0 and b"no such account" in r.stderr
    # The webmail's sign-in (a password, by LDAP bind), then its cookie on JMAP.
    origin = f"https://127.0.0.1:{server.ports['https']}"
    status, body, cookie = https(server, "POST", "/webmail/session",
                                 {"Content-Type": "application/json", "Origin": origin},
                                 json.dumps({"username": "bob@example.test", "password": "bob pw"}))
    assert status == 200 and json.loads(body)["account"] == "bob@example.test"
    cookie = cookie.split(";")[0]
    status, body, _ = https(server, "GET", "/.well-known/jmap", {"Cookie": cookie})
    assert status == 200, body
    assert json.loads(body)["username"] == "bob@example.test"
    # LDAP down: the mirror still says who exists.
    slapd.stop()
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")
    assert https(server, "GET", "/_test/whoami",
                 {"Authorization": f"Bearer {token}"})[:2] == (200, b"alice@example.test\n")
    assert "directory unavailable" not in server.log()


def test_a_wrong_search_password_is_not_called_an_outage(wharf_factory, slapd):
    """The search account's bind refused (a wrong ldap_bind_password_file) is the
    admin's to fix: the log says so and names the options, instead of "no LDAP
    server answers"; mail waits (4xx), as in an outage, until the tree is read."""
    server = start_wharf(wharf_factory, slapd, read=False, bind_pw="not the password")
    wait_until(lambda: "refuses the search account" in server.log(), 20,
               what="the log to name the refused bind")
    line = next(ln for ln in server.log().splitlines() if "refuses the search account" in ln)
    assert "Invalid credentials" in line and "ldap_bind_password_file" in line, line
    assert "lookups fail temporarily" in line, line
    assert "no LDAP server answers" not in server.log()
    assert rcpt(server, "alice@example.test") == 451


def test_ldap_down_serves_stale_then_fresh(wharf_factory, slapd):
    server = start_wharf(wharf_factory, slapd)
    assert imap_login(server, "alice@example.test", "alice pw")
    slapd.stop()
    # Every further round fails; the directory is served as last read.
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")
    assert imap_login(server, "alice@example.test", "alice pw")
    assert not imap_login(server, "alice@example.test", "wrong pw")
    assert not imap_login(server, "bob@example.test", "bob pw")  # never logged in: not cached
    assert "checked against their last password (stale)" in server.log()
    send(server, ["team@example.test"], "during the outage")
    wait_until(lambda: inbox(server, "alice@example.test") == 1, 15, what="alice's mail")
    wait_until(lambda: inbox(server, "bob@example.test") == 1, 15, what="bob's mail")
    assert rcpt(server, "nobody@example.test") == 550
    slapd.start()
    wait_until(lambda: "ldap: directory read again, fresh" in server.log(), 20,
               what="the directory to be fresh again")
    assert imap_login(server, "bob@example.test", "bob pw")
    # The auth process keeps its bind connection; slapd restarted under it, the
    # next login (of a user never cached) is checked on a new connection.
    slapd.stop()
    slapd.start()
    assert imap_login(server, "dave@example.test", "dave pw")


def imap_refusal(server, user, password):
    """None when the IMAP login works, else the server's NO text: [UNAVAILABLE] for a
    temporary failure (nobody could check the password), [AUTHENTICATIONFAILED] for a
    wrong one."""
    with imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20) as c:
        try:
            c.login(user, password)
        except imaplib.IMAP4.error as e:
            return str(e)
        c.logout()
        return None


def wait_login_cache_read(server, since):
    """Waits until the auth process that owns the login cache's file now (the one
    after a reload or a restart, once the one before it has ended) has read it."""
    def read():
        return any("auth: login cache: " in line and " read from " in line
                   and "still runs" not in line
                   for line in server.log()[since:].splitlines())
    wait_until(read, 30, what="the new auth process to read the login cache")


def test_cached_logins_outlive_a_reload_and_a_restart_during_an_outage(wharf_factory, slapd):
    """The hashes of the last LDAP logins are kept in DATA/auth/login-cache: a
    `wharf reload` or a restart of wharfd during an outage (often what an admin
    tries) once started an auth process with an empty cache, and nobody could log
    in until LDAP was back."""
    server = start_wharf(wharf_factory, slapd)
    assert imap_login(server, "alice@example.test", "alice pw")
    assert imap_login(server, "bob@example.test", "bob pw")
    # A password changed in LDAP replaces the kept hash at the next login.
    slapd.modify("ldapmodify", f"dn: uid=bob,ou=people,{BASE}\nchangetype: modify\n"
                 "replace: userPassword\nuserPassword: new bob pw\n")
    assert imap_login(server, "bob@example.test", "new bob pw")
    slapd.stop()
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")

    def check_outage_logins():
        assert imap_refusal(server, "alice@example.test", "alice pw") is None
        assert imap_refusal(server, "bob@example.test", "new bob pw") is None
        assert "[AUTHENTICATIONFAILED]" in imap_refusal(server, "alice@example.test", "wrong pw")
        assert "[AUTHENTICATIONFAILED]" in imap_refusal(server, "bob@example.test", "bob pw")
        # never logged in: nothing to check against, a temporary failure
        assert "[UNAVAILABLE]" in imap_refusal(server, "dave@example.test", "dave pw")

    mark = len(server.log())
    server.wharf("reload")
    wait_login_cache_read(server, mark)
    check_outage_logins()
    # The file is the auth user's alone, and holds hashes, never a password.
    cache = server.data / "auth" / "login-cache"
    st = cache.stat()
    assert st.st_mode & 0o777 == 0o600
    assert st.st_uid == pwd.getpwnam(server.settings.get("auth_user", "wharf-auth")).pw_uid
    text = cache.read_text()
    assert "alice@example.test\t$y$" in text and " pw" not in text

    # An auth process that has not ended yet (held here) still owns the file: the next
    # one reads it at once, and again once that one has ended and written it last.
    old = next(p["pid"] for p in server.component("auth")["processes"] if p["state"] == "running")
    os.kill(old, signal.SIGSTOP)
    try:
        mark = len(server.log())
        server.wharf("reload")
        wait_until(lambda: "read again once it has ended" in server.log()[mark:], 30,
                   what="the new auth process to read the file while the old one runs")
        assert imap_refusal(server, "alice@example.test", "alice pw") is None
    finally:
        os.kill(old, signal.SIGCONT)
    wait_login_cache_read(server, mark)
    check_outage_logins()

    mark = len(server.log())
    server.stop()
    server.start(wait=False)
    wait_smtp_ready(server)
    wait_login_cache_read(server, mark)
    check_outage_logins()

    # ldap_login_cache_ttl = 0: no cache, and no file left behind.
    server.settings["ldap_login_cache_ttl"] = "0"
    server.write_config()
    server.wharf("reload")
    wait_until(lambda: not cache.exists(), 30, what="the login cache's file to be removed")
    assert "[UNAVAILABLE]" in imap_refusal(server, "alice@example.test", "alice pw")
    log = server.log()
    assert "alice pw" not in log and "$y$" not in log, "a password or a hash reached the log"


def test_a_password_changed_in_ldap_is_not_let_in_by_the_cache(wharf_factory, slapd):
    """A user's old password, refused by LDAP after it was changed there, was still
    let in by the login cache during an outage until the TTL ended (or the user
    logged in with the new one): what LDAP refuses while it answers is dropped from
    the cache, and stays dropped across a reload."""
    server = start_wharf(wharf_factory, slapd)
    assert imap_login(server, "alice@example.test", "alice pw")
    slapd.modify("ldapmodify", f"dn: uid=alice,ou=people,{BASE}\nchangetype: modify\n"
                 "replace: userPassword\nuserPassword: new alice pw\n")
    assert "[AUTHENTICATIONFAILED]" in imap_refusal(server, "alice@example.test", "alice pw")
    slapd.stop()
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")
    assert "[UNAVAILABLE]" in imap_refusal(server, "alice@example.test", "alice pw")
    mark = len(server.log())
    server.wharf("reload")
    wait_login_cache_read(server, mark)
    assert "[UNAVAILABLE]" in imap_refusal(server, "alice@example.test", "alice pw")
    assert "alice@example.test" not in (server.data / "auth" / "login-cache").read_text()


def test_the_login_cache_is_written_soon_after_a_login_and_outlives_a_crash(wharf_factory,
                                                                            slapd):
    """A login reaches the file within seconds, written by the auth process's own
    thread while it runs: a crash (kill -9, restarted by wharfd) during an outage
    keeps it too."""
    server = start_wharf(wharf_factory, slapd)
    assert imap_login(server, "alice@example.test", "alice pw")
    cache = server.data / "auth" / "login-cache"
    wait_until(lambda: cache.exists() and "alice@example.test" in cache.read_text(), 30,
               what="the login to be written")
    slapd.stop()
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")
    auth = next(p["pid"] for p in server.component("auth")["processes"]
                if p["state"] == "running")
    mark = len(server.log())
    os.kill(auth, signal.SIGKILL)
    wait_login_cache_read(server, mark)
    assert imap_refusal(server, "alice@example.test", "alice pw") is None
    assert "[AUTHENTICATIONFAILED]" in imap_refusal(server, "alice@example.test", "wrong pw")
    assert "[UNAVAILABLE]" in imap_refusal(server, "bob@example.test", "bob pw")


def login_cache_entries(server):
    """{account: (date, hash)} of the auth process's login cache file."""
    lines = (server.data / "auth" / "login-cache").read_text().splitlines()
    assert lines[0] == "wharf-login-cache 1"
    return {account: (int(date), h) for date, account, h in (ln.split("\t") for ln in lines[1:])}


def test_a_login_with_the_same_password_renews_the_cached_entry(wharf_factory, slapd):
    """The TTL runs from a user's last login: a login with the same password kept the
    first login's date (the hash was not made again, nor its entry renewed), so a user
    who logged in every hour could not log in during an outage a day after the first."""
    server = start_wharf(wharf_factory, slapd)
    assert imap_login(server, "alice@example.test", "alice pw")
    mark = len(server.log())
    server.wharf("reload")  # the old auth process writes the file as it ends
    wait_login_cache_read(server, mark)
    first, hash1 = login_cache_entries(server)["alice@example.test"]
    wait_until(lambda: time.time() >= first + 1, 5, what="the next second")
    assert imap_login(server, "alice@example.test", "alice pw")
    mark = len(server.log())
    server.wharf("reload")
    wait_login_cache_read(server, mark)
    second, hash2 = login_cache_entries(server)["alice@example.test"]
    assert second > first
    assert hash2 == hash1  # the same password keeps its hash: one yescrypt per login


def test_ldaps_and_starttls_check_the_certificate_and_fail_over(wharf_factory, tmp_path):
    slapd = Slapd(tmp_path / "slapd", tls=True).start()
    try:
        # The first server does not answer: the second one (LDAPS) is used,
        # for the searches and for the binds of the logins.
        dead = f"ldaps://127.0.0.1:{free_port()}"
        server = start_wharf(wharf_factory, slapd, ldap_uris=f"{dead} {slapd.ldaps_uri}",
                             ldap_tls_ca_file=str(slapd.ca))
        assert imap_login(server, "alice@example.test", "alice pw")
        # StartTLS on the plain port, the certificate checked the same way.
        starttls = start_wharf(wharf_factory, slapd, "starttls", ldap_starttls="yes",
                               ldap_tls_ca_file=str(slapd.ca))
        assert imap_login(starttls, "bob@example.test", "bob pw")
        # A certificate signed by another CA is refused: nothing is read, and a
        # recipient is deferred (4xx), never refused for good.
        other_dir = tmp_path / "other"
        other_dir.mkdir()
        other = make_ca(other_dir, "other")
        bad = start_wharf(wharf_factory, slapd, "bad", read=False, ldap_uris=slapd.ldaps_uri,
                          ldap_tls_ca_file=str(other))
        wait_until(lambda: "no LDAP server answers" in bad.log(), 20, what="the TLS failure")
        assert rcpt(bad, "alice@example.test") // 100 == 4
    finally:
        slapd.stop()


def test_a_server_that_dies_fails_over_to_the_next(wharf_factory, slapd, tmp_path):
    second = Slapd(tmp_path / "second").start()
    try:
        server = start_wharf(wharf_factory, slapd, ldap_uris=f"{slapd.uri} {second.uri}")
        assert imap_login(server, "alice@example.test", "alice pw")
        slapd.stop()
        # Only the second server knows carol: seen there, without an outage.
        second.modify("ldapadd", person("carol", "carol@example.test", "carol pw"))
        wait_until(lambda: rcpt(server, "carol@example.test") == 250, 15, what="carol via the second")
        assert imap_login(server, "carol@example.test", "carol pw")
        assert imap_login(server, "alice@example.test", "alice pw")
        log = server.log()
        assert "no LDAP server answers" not in log and "(stale)" not in log
    finally:
        second.stop()


def slappasswd(password, scheme, crypt_format=None):
    """A userPassword value as OpenLDAP's own tool makes it."""
    args = ["slappasswd", "-o", "module-path=/usr/lib/ldap", "-o", "module-load=pw-sha2",
            "-h", scheme, "-s", password]
    if crypt_format:
        args += ["-c", crypt_format]
    return subprocess.run(args, check=True, capture_output=True, timeout=10).stdout.decode().strip()


def bind_as(slapd, dn, password):
    """ldapwhoami's exit status binding as dn (49: invalid credentials)."""
    return subprocess.run(["ldapwhoami", "-x", "-H", slapd.uri, "-D", dn, "-w", password],
                          capture_output=True, timeout=10).returncode


def directory_ask(path, rid, query, key):
    """One IPC_DIRECTORY_LOOKUP on the socket at path: the answer's payload, or None
    when the directory process closed the connection instead (directory_proto.h)."""
    with authwire.connect(path, timeout=20) as s:
        payload = struct.pack(">QQ", rid, query) + authwire.field(key)
        s.sendall(authwire.frame(400, payload))
        try:
            length, ftype, _ = struct.unpack(">IHH", authwire.recv_exact(s, 8))
        except EOFError:
            return None
        assert ftype == 401
        return authwire.recv_exact(s, length)


DIRECTORY_Q_LOGIN = 3


@pytest.fixture
def slapd_hashes(tmp_path):
    """A slapd whose search account may read userPassword, with users of each scheme."""
    users = {
        "sam": slappasswd("sam pw", "{SSHA}"),
        "cris": slappasswd("cris pw", "{CRYPT}", "$6$%.16s"),
        "sha2": slappasswd("sha2 pw", "{SSHA512}"),
        "nobind": slappasswd("nobind pw", "{SSHA}"),
        "cleo": "cleo pw",  # cleartext: never compared
    }
    extra = "".join(person(uid, f"{uid}@example.test", value) for uid, value in users.items())
    s = Slapd(tmp_path / "slapd", hash_reader=True, extra_tree=extra).start()
    s.hashes = users
    yield s
    s.stop()


def test_logins_checked_against_hashes_read_from_ldap(wharf_factory, slapd_hashes):
    slapd = slapd_hashes
    # slapd refuses nobind's own bind: a login that works cannot have bound as it.
    assert bind_as(slapd, NOBIND, "nobind pw") == 49
    assert bind_as(slapd, f"uid=sam,ou=people,{BASE}", "sam pw") == 0
    server = start_wharf(wharf_factory, slapd, ldap_password_check="hash")
    wait_until(lambda: rcpt(server, "nobind@example.test") == 250, 15, what="the hash users")
    assert imap_login(server, "sam@example.test", "sam pw")  # {SSHA}
    assert not imap_login(server, "sam@example.test", "sam pW")
    assert imap_login(server, "sha2@example.test", "sha2 pw")  # {SSHA512} (pw-sha2)
    assert imap_login(server, "nobind@example.test", "nobind pw")
    assert smtp_auth(server, "cris@example.test", "cris pw", "PLAIN") == 235  # {CRYPT}$6$
    assert smtp_auth(server, "cris@example.test", "cris pw", "LOGIN") == 235
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_auth(server, "cris@example.test", "sam pw", "PLAIN")
    assert not imap_login(server, "nobody@example.test", "sam pw")
    # Cleartext values are never compared: the right password is refused too.
    assert not imap_login(server, "cleo@example.test", "cleo pw")
    assert not imap_login(server, "alice@example.test", "alice pw")
    # A password changed in LDAP is the one that works at once (read at each login).
    new_sam = slappasswd("new sam pw", "{SSHA}")
    slapd.modify("ldapmodify", f"dn: uid=sam,ou=people,{BASE}\nchangetype: modify\n"
                 f"replace: userPassword\nuserPassword: {new_sam}\n")
    assert imap_login(server, "sam@example.test", "new sam pw")
    assert not imap_login(server, "sam@example.test", "sam pw")
    log = server.log()
    assert "passwords are checked against the hashes in userPassword" in log
    assert "auth ok: service=imap user=<nobind@example.test>" in log
    assert "auth ok: service=smtp user=<cris@example.test>" in log or \
        "auth ok: service=submission user=<cris@example.test>" in log
    assert "the password of cleo@example.test in LDAP cannot be checked: cleartext password " \
        "(no {SCHEME} prefix) refused" in log
    assert "user=<sam@example.test> rip=127.0.0.1 reason=wrong password" in log
    assert "user=<nobody@example.test> rip=127.0.0.1 reason=unknown user" in log
    for secret in ["sam pw", "cris pw", "cleo pw", new_sam, *slapd.hashes.values()]:
        assert secret not in log, "a password or a hash reached the log"
    # The mirror the workers' lookups read never holds a hash.
    mirror = (server.data / "directory" / "ldap.db").read_bytes()
    for uid, value in slapd.hashes.items():
        assert value.encode() not in mirror, uid
    assert b"{SSHA}" not in mirror and b"{CRYPT}" not in mirror
    # The question that brings a hash: answered on the auth process's socket,
    # refused (connection closed) on the workers' one.
    answer = directory_ask(server.data / "auth" / "directory.sock", 7, DIRECTORY_Q_LOGIN,
                           "sam@example.test")
    assert answer is not None and new_sam.encode() in answer
    assert directory_ask(server.data / "run" / "directory.sock", 8, DIRECTORY_Q_LOGIN,
                         "sam@example.test") is None
    wait_until(lambda: "LOGIN is the auth process's question" in server.log(), 10,
               what="the refusal to be logged")


def test_hash_logins_ride_out_an_ldap_outage(wharf_factory, slapd_hashes):
    slapd = slapd_hashes
    server = start_wharf(wharf_factory, slapd, ldap_password_check="hash")
    wait_until(lambda: rcpt(server, "nobind@example.test") == 250, 15, what="the hash users")
    assert imap_login(server, "sam@example.test", "sam pw")
    slapd.stop()
    wait_until(lambda: "serving the directory as last read, stale" in server.log(), 20,
               what="the log to say the directory is stale")
    assert imap_login(server, "sam@example.test", "sam pw")  # the hash kept at its last login
    assert not imap_login(server, "sam@example.test", "wrong pw")
    assert not imap_login(server, "cris@example.test", "cris pw")  # never logged in: not cached
    log = server.log()
    assert "checked against their last password (stale)" in log
    assert "directory: cannot read the password of cris@example.test" in log
    slapd.start()
    wait_until(lambda: "ldap: directory read again, fresh" in server.log(), 20,
               what="the directory to be fresh again")
    assert imap_login(server, "cris@example.test", "cris pw")


def test_hash_check_is_refused_with_the_ad_profile(wharf_factory):
    server = wharf_factory("ad", extra={"directory_driver": "ldap", "ldap_profile": "ad",
                                        "ldap_password_check": "hash"})
    server.write_config()
    r = server.wharf("config", "check", check=False)
    assert r.returncode != 0
    assert b"ldap_password_check = hash cannot work with ldap_profile = ad" in r.stderr
    server.settings.update(ldap_profile="openldap", ldap_password_check="cleartext")
    server.write_config()
    r = server.wharf("config", "check", check=False)
    assert r.returncode != 0
    assert b"ldap_password_check: unknown value 'cleartext' (known: bind, hash)" in r.stderr
    server.settings["ldap_password_check"] = "hash"
    server.write_config()
    assert server.wharf("config", "check").returncode == 0
