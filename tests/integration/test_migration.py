"""Migration in and out, against Debian's Dovecot and mutt (no mocks).

- A Maildir written by real Dovecot (messages delivered with dovecot-lda,
  flagged, expunged, copied into folders and subscribed through Dovecot's
  IMAP) is imported with `wharf import maildir`; an IMAP client that synced
  against Dovecot then finds on Wharf the same UIDVALIDITY, UIDs, flags,
  keywords and bodies in every folder. Rerunning the import resumes: only
  mail delivered since is imported, and an IMAP session idling on Wharf
  sees it arrive (bus event).
- `wharf export maildir` is served by Dovecot with the same UIDs and flags.
- `wharf import imap` copies a live Dovecot account and resumes.
- An mbox written by mutt (batch mode, Fcc) is imported, and `wharf export
  mbox` is read by Dovecot's mbox driver with the same messages and flags.
- `wharf import passwd-file`: Dovecot's {SHA512-CRYPT}, {BLF-CRYPT} and
  {PLAIN} users log in to Wharf with their old passwords.
"""
import imaplib
import re
import shutil
import socket
import subprocess

import pytest

from conftest import tls_context, wait_until
from dovecot import Dovecot
from smtp_helpers import add_user

PW = "pw-wharf-1"
DPW = "pw-dove-1"
USER = "carol@example.test"


def wharf_imap(server, user, password=PW):
    m = imaplib.IMAP4(server.host, server.ports["imap"])
    m.starttls(tls_context())
    m.login(user, password)
    return m


def snapshot(m, folders):
    """{folder: (UIDVALIDITY, [(uid, flags, body)])} as an IMAP client sees it."""
    out = {}
    for f in folders:
        typ, _ = m.select(f, readonly=True)
        assert typ == "OK", f
        uv = int(m.response("UIDVALIDITY")[1][0])
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        flags = {}
        for line in data:
            if not line:
                continue
            line = line.decode() if isinstance(line, bytes) else line[0].decode()
            uid = re.search(r"UID (\d+)", line)
            fl = re.search(r"FLAGS \(([^)]*)\)", line)
            if uid and fl:
                flags[int(uid.group(1))] = frozenset(x for x in fl.group(1).split()
                                                     if x != "\\Recent")
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
        msgs = []
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                msgs.append((uid, flags[uid], item[1]))
        out[f] = (uv, sorted(msgs))
    return out


def message(i, extra=b""):
    return (b"From: Sender <sender@example.net>\nTo: carol@example.test\n"
            b"Subject: message %d\nMessage-ID: <m%d@example.net>\n\n" % (i, i)
            + b"line one\nFrom the start of a line\n" + extra + b"end %d\n" % i)


@pytest.fixture
def wharf(wharf_factory):
    w = wharf_factory("w", enable={"imap"}).start()
    assert add_user(w, USER, PW)
    return w


@pytest.fixture
def dovecot_account(wharf):
    """A Dovecot account built through Dovecot itself: LDA deliveries, IMAP flags,
    an expunge (UIDs with a gap), keywords, folders and a subscription."""
    dv = Dovecot(wharf.base / "dovecot", {USER: DPW, "dave@example.test": DPW}).start()
    for i in range(1, 7):
        dv.deliver(USER, message(i))
    m = dv.imap(USER)
    m.select("INBOX")
    m.uid("STORE", "1", "+FLAGS", "(\\Flagged $Important)")
    m.uid("STORE", "2", "+FLAGS", "(\\Seen \\Answered)")
    m.uid("STORE", "4", "+FLAGS", "(\\Draft $Label1 $Important)")
    m.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    m.expunge()
    assert m.create("Work")[0] == "OK" and m.create("Work.Sub")[0] == "OK"
    m.subscribe("Work.Sub")
    m.uid("COPY", "5:6", "Work.Sub")
    m.select("Work.Sub")
    m.uid("STORE", "2", "+FLAGS", "(\\Seen)")
    m.logout()
    yield dv
    dv.stop()


def as_wharf_names(snap):
    return {("INBOX" if f == "INBOX" else f.replace(".", "/")): v for f, v in snap.items()}


DV_FOLDERS = ["INBOX", "Work", "Work.Sub"]
WH_FOLDERS = ["INBOX", "Work", "Work/Sub"]


def test_dovecot_maildir_import_keeps_uids_flags_and_folders(wharf, dovecot_account):
    dv = dovecot_account
    m = dv.imap(USER)
    synced = as_wharf_names(snapshot(m, DV_FOLDERS))  # what the client knows
    m.logout()
    assert [u for u, _, _ in synced["INBOX"][1]] == [1, 2, 4, 5, 6]
    out = wharf.wharf("import", "maildir", USER, str(dv.maildir(USER))).stdout.decode()
    assert "7 messages" in out, out
    c = wharf_imap(wharf, USER)
    assert snapshot(c, WH_FOLDERS) == synced
    typ, subs = c.lsub()
    assert any(b'"Work/Sub"' in s or b" Work/Sub" in s for s in subs), subs

    # resume: mail Dovecot received since; a Wharf session idling on INBOX sees it
    dv.deliver(USER, message(7))
    dv.deliver(USER, message(8))
    c.select("INBOX")
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+")
    out = wharf.wharf("import", "maildir", USER, str(dv.maildir(USER))).stdout.decode()
    assert "2 messages" in out and "7 already there" in out, out
    c.sock.settimeout(20)
    seen = b""
    while b" 7 EXISTS" not in seen:
        seen += c.readline()
    c.send(b"DONE\r\n")
    m = dv.imap(USER)
    assert snapshot(c, ["INBOX"])["INBOX"] == snapshot(m, ["INBOX"])["INBOX"]
    m.logout()
    c.logout()


def test_export_maildir_is_served_by_dovecot_with_the_same_uids(wharf, dovecot_account):
    dv = dovecot_account
    wharf.wharf("import", "maildir", USER, str(dv.maildir(USER)))
    # and a message that was born on Wharf, with flags set over Wharf's IMAP
    c = wharf_imap(wharf, USER)
    c.append("Work", "(\\Flagged $Todo)", None, message(9).replace(b"\n", b"\r\n"))
    want = snapshot(c, WH_FOLDERS)
    c.logout()
    target = dv.maildir("dave@example.test")
    out = wharf.wharf("export", "maildir", USER, str(target)).stdout.decode()
    assert "exported" in out
    m = dv.imap("dave@example.test")
    got = as_wharf_names(snapshot(m, DV_FOLDERS))
    assert got == want
    typ, subs = m.lsub()
    assert any(b"Work.Sub" in s for s in subs), subs
    m.logout()


def test_import_imap_from_a_running_dovecot(wharf, dovecot_account, tmp_path):
    dv = dovecot_account
    pwfile = wharf.base / "dovecot-password"
    pwfile.write_text(DPW + "\n")
    pwfile.chmod(0o644)
    args = ["import", "imap", USER, "--host", "127.0.0.1", "--port", str(dv.port),
            "--user", USER, "--password-file", str(pwfile)]
    out = wharf.wharf(*args, timeout=120).stdout.decode()
    assert "7 messages" in out, out
    m = dv.imap(USER)
    want = as_wharf_names(snapshot(m, DV_FOLDERS))
    c = wharf_imap(wharf, USER)
    got = snapshot(c, WH_FOLDERS)
    # flags, keywords, bodies, internal dates and folders; UIDs are Wharf's own
    for f in WH_FOLDERS:
        assert [(fl, b) for _, fl, b in got[f][1]] == [(fl, b) for _, fl, b in want[f][1]], f
    typ, a = m.uid("FETCH", "1:*", "(INTERNALDATE)")
    c.select("INBOX", readonly=True)
    typ, b = c.uid("FETCH", "1:*", "(INTERNALDATE)")
    dates = lambda d: [re.search(rb'INTERNALDATE "([^"]+)"', x).group(1) for x in d if x]
    m.select("INBOX", readonly=True)
    typ, a = m.uid("FETCH", "1:*", "(INTERNALDATE)")
    assert dates(a) == dates(b)
    # resumable: nothing twice, then only what is new
    out = wharf.wharf(*args, timeout=120).stdout.decode()
    assert "0 messages" in out, out
    dv.deliver(USER, message(10))
    out = wharf.wharf(*args, timeout=120).stdout.decode()
    assert "1 messages" in out, out
    c.select("INBOX", readonly=True)
    assert int(c.response("EXISTS")[1][-1]) == 6
    m.logout()
    c.logout()


def test_folder_names_beyond_ascii_both_ways(wharf, dovecot_account):
    """Dovecot keeps "Entwürfe" on disk and on the wire in modified UTF-7
    (".Entw&APw-rfe"): every import reads it as the UTF-8 name the store
    keeps, and the export writes it back so Dovecot serves the same folder."""
    dv = dovecot_account
    name = "Entw&APw-rfe"  # "Entwürfe" in modified UTF-7 (RFC 3501 5.1.3)
    m = dv.imap(USER)
    assert m.create(name)[0] == "OK"
    m.subscribe(name)
    m.select("INBOX")
    m.uid("COPY", "1", name)
    m.logout()
    assert (dv.maildir(USER) / f".{name}").is_dir()
    wharf.wharf("import", "maildir", USER, str(dv.maildir(USER)))
    listed = wharf.wharf("mailbox", "list", USER).stdout.decode()
    assert "Entwürfe" in listed and name not in listed, listed
    c = wharf_imap(wharf, USER)  # an IMAP4rev1 client sees it in modified UTF-7 again
    assert c.select(name, readonly=True) == ("OK", [b"1"])
    assert any(name.encode() in s for s in c.lsub()[1])
    c.logout()
    # the other way: exported for dave, served by Dovecot under the same name
    wharf.wharf("export", "maildir", USER, str(dv.maildir("dave@example.test")))
    d = dv.imap("dave@example.test")
    assert d.select(name, readonly=True) == ("OK", [b"1"])
    assert any(name.encode() in s for s in d.lsub()[1])
    d.logout()
    # and from a live server over IMAP, into a second account
    wharf.wharf("user", "add", "erin@example.test", "--password-stdin", input=b"pw-erin\n")
    pwfile = wharf.base / "dovecot-password"
    pwfile.write_text(DPW + "\n")
    pwfile.chmod(0o644)
    wharf.wharf("import", "imap", "erin@example.test", "--host", "127.0.0.1", "--port",
                str(dv.port), "--user", USER, "--password-file", str(pwfile), timeout=120)
    assert "Entwürfe" in wharf.wharf("mailbox", "list", "erin@example.test").stdout.decode()


MUTTRC = """set record="{record}"
set mbox_type=mbox
set sendmail="/bin/true"
set from="Mutt User <mutt@example.test>"
set use_from=yes
set copy=yes
set charset="utf-8"
set send_charset="us-ascii:utf-8"
"""


def test_mutt_mbox_imported_and_export_read_by_dovecot(wharf, tmp_path):
    mutt = shutil.which("mutt")
    if mutt is None:
        pytest.skip("mutt not installed (make deps-test)")
    record = tmp_path / "sent.mbox"
    rc = tmp_path / "muttrc"
    rc.write_text(MUTTRC.format(record=record))
    bodies = []
    for i in range(3):
        # (a body line ">From" cannot be told from a quoted "From" in mutt's mboxo;
        # the mboxrd round trip below covers it)
        text = f"hello {i}\nFrom the start of a line\n\nlast line {i}\n"
        bodies.append(text)
        (tmp_path / "body").write_text(text)
        r = subprocess.run([mutt, "-n", "-F", str(rc), "-s", f"mutt message {i}", "--",
                            "carol@example.test"], stdin=open(tmp_path / "body"),
                           capture_output=True, timeout=60, env={"HOME": str(tmp_path),
                                                                  "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
    data = record.read_bytes()
    assert data.count(b"\nFrom ") + data.startswith(b"From ") >= 3
    shutil.copy(record, wharf.base / "sent.mbox")
    (wharf.base / "sent.mbox").chmod(0o644)
    out = wharf.wharf("import", "mbox", USER, str(wharf.base / "sent.mbox"), "Sent").stdout
    assert b"3 messages" in out, out
    c = wharf_imap(wharf, USER)
    got = snapshot(c, ["Sent"])["Sent"][1]
    assert len(got) == 3
    for (uid, flags, raw), text in zip(got, bodies):
        assert raw.endswith(text.replace("\n", "\r\n").encode()), raw  # ">From " unquoted
        assert b"Status:" not in raw and b"Content-Length:" not in raw
        assert b"Subject: mutt message %d" % (uid - 1) in raw
    # export: Dovecot's mbox driver reads it with the same messages and flags
    c.select("Sent")
    c.uid("STORE", "1", "+FLAGS", "(\\Seen \\Answered)")
    c.uid("STORE", "2", "+FLAGS", "(\\Flagged $Todo)")
    c.append("Sent", "(\\Seen)", None, b"Subject: rd\r\n\r\nFrom x\r\n>From y\r\n>>From z\r\n")
    want = snapshot(c, ["Sent"])["Sent"][1]
    c.logout()
    mbox_dir = wharf.base / "mboxes"
    mbox_dir.mkdir()
    shutil.chown(mbox_dir, "wharf", "wharf")
    wharf.wharf("export", "mbox", USER, str(mbox_dir / "inbox"), "Sent")
    dv = Dovecot(wharf.base / "dovecot-mbox", {"erin@example.test": DPW},
                 mail_location=f"mbox:{wharf.base}/dovecot-mbox/mail/%u:INBOX={mbox_dir}/inbox")
    dv.start()
    try:
        m = dv.imap("erin@example.test")
        got = snapshot(m, ["INBOX"])["INBOX"][1]
        m.logout()
    finally:
        dv.stop()
    # Dovecot's mbox driver shows mboxrd's quoting as is (it does not unquote '>From ')
    unquote = lambda b: re.sub(rb"(?m)^>(>*From )", rb"\1", b)
    assert [(u, f, unquote(b)) for u, f, b in got] == want  # X-UID: the same UIDs
    # mboxrd: what export writes, import reads back byte for byte (">From" lines too)
    shutil.copy(mbox_dir / "inbox", wharf.base / "again.mbox")
    (wharf.base / "again.mbox").chmod(0o644)
    wharf.wharf("import", "mbox", USER, str(wharf.base / "again.mbox"), "Again")
    c = wharf_imap(wharf, USER)
    again = snapshot(c, ["Again"])
    c.logout()
    assert again["Again"][1] == want
    # a rerun finds every X-UID below UIDNEXT: nothing twice
    out = wharf.wharf("import", "mbox", USER, str(wharf.base / "again.mbox"), "Again").stdout
    assert b"0 messages" in out and b"4 already there" in out, out


def doveadm_pw(scheme, password):
    r = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", password], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_passwd_file_users_log_in_with_their_old_passwords(wharf):
    if shutil.which("doveadm") is None:
        pytest.skip("dovecot-core not installed (make deps-test)")
    users = {"sha@example.test": ("SHA512-CRYPT", "pw-sha-512"),
             "blf@example.test": ("BLF-CRYPT", "pw-blowfish"),
             "plain@example.test": ("PLAIN", "pw-plain-text")}
    lines = [f"{u}:{doveadm_pw(s, p)}:1000:1000::/home/x::" for u, (s, p) in users.items()]
    lines.append("md5@example.test:{PLAIN-MD5}1a1dc91c907325c69271ddf0c944bc72:1000:1000::::")
    lines.append("# a comment")
    f = wharf.base / "passwd"
    f.write_text("\n".join(lines) + "\n")
    f.chmod(0o644)
    out = wharf.wharf("import", "passwd-file", str(f)).stdout.decode()
    assert "4 accounts added" in out and "1 without a usable password" in out, out
    for u, (_, p) in users.items():
        wharf_imap(wharf, u, p).logout()
        with pytest.raises(imaplib.IMAP4.error):
            wharf_imap(wharf, u, p + "x")
    with pytest.raises(imaplib.IMAP4.error):
        wharf_imap(wharf, "md5@example.test", "pass")
