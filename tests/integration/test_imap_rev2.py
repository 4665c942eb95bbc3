"""IMAP4rev2 (RFC 9051), SEARCHRES (RFC 5182), the SENT* search keys and
modified UTF-7 mailbox names (RFC 3501 5.1.3) against a real wharfd.

Raw sockets (from test_imap) for exact responses and UTF-8 on the wire,
imaplib where it suffices, and two real clients that know nothing of Wharf:
offlineimap3 (a two-way Maildir sync) and curl (APPEND with -T, FETCH back),
both on a folder whose name is not ASCII.
"""
import base64
import email
import hashlib
import re
import shutil
import ssl
import subprocess

import pytest

from test_imap import MSG, MSG2, PASSWORD, USER, Raw, deliver, imap, login  # noqa: F401

UMLAUT = "Entw\u00fcrfe"          # stored (and sent to IMAP4rev2) as UTF-8
UMLAUT7 = "Entw&APw-rfe"          # what an IMAP4rev1 client says and hears
JAPANESE = "\u65e5\u672c\u8a9e"   # RFC 3501 5.1.3's example
JAPANESE7 = "&ZeVnLIqe-"


def mutf7(name):
    """Modified UTF-7, written here from the RFC's rules (an oracle independent of the server)."""
    out, run = [], []

    def flush():
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            run.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def rev2(server):
    r = Raw(server.ports["imaps"], tls=True)
    r.login()
    lines, ok = r.cmd("e", "ENABLE IMAP4rev2")
    assert lines == ["* ENABLED IMAP4rev2"] and ok.startswith("e OK"), (lines, ok)
    return r


def rev1(server):
    r = Raw(server.ports["imaps"], tls=True)
    r.login()
    return r


def cmd8(r, tag, text):
    """A command with UTF-8 on the wire (Raw.cmd would do too; this says it)."""
    r.send(f"{tag} {text}\r\n".encode("utf-8"))
    return r.until(tag)


def list_names(lines):
    return [re.match(r'\* LIST \([^)]*\) "/" (.*)$', ln).group(1).strip('"')
            for ln in lines if ln.startswith("* LIST")]


def msg(n, date=None):
    head = f"From: x{n}@example.test\r\nTo: {USER}\r\nSubject: m{n}\r\n"
    if date:
        head += f"Date: {date}\r\n"
    return (head + f"Message-ID: <m{n}@example.test>\r\n\r\nbody {n}\r\n").encode()


# ---- IMAP4rev2 ----

def test_capability_enable_and_select_responses(imap):
    deliver(imap, MSG)
    deliver(imap, MSG2)
    r1 = rev1(imap)
    caps, _ = r1.cmd("c", "CAPABILITY")
    words = caps[0].split()
    assert {"IMAP4rev1", "IMAP4rev2", "SEARCHRES", "ESEARCH", "LITERAL+"} <= set(words)
    # rev1 sees no change: RECENT and UNSEEN, no LIST, SEARCH not ESEARCH
    lines, ok = r1.cmd("s", "SELECT INBOX")
    assert "* 2 RECENT" in lines and any("[UNSEEN 1]" in ln for ln in lines)
    assert not any(ln.startswith("* LIST") for ln in lines)
    lines, _ = r1.cmd("f", "SEARCH ALL")
    assert lines == ["* SEARCH 1 2"]

    r2 = rev2(imap)
    # enabled once: a second ENABLE says nothing more
    lines, ok = r2.cmd("e2", "ENABLE IMAP4rev2")
    assert lines == ["* ENABLED"] and ok.startswith("e2 OK")
    lines, ok = r2.cmd("s", "SELECT INBOX")
    assert ok.startswith("s OK [READ-WRITE]")
    assert '* LIST () "/" INBOX' in lines                        # RFC 9051 6.3.2
    assert "* 2 EXISTS" in lines
    assert not any("RECENT" in ln or "[UNSEEN" in ln for ln in lines)  # Appendix E 11, 12
    lines, ok = r2.cmd("x", "EXAMINE Sent")
    assert ok.startswith("x OK [READ-ONLY]")
    assert "* OK [CLOSED] Previous mailbox closed" in lines
    assert '* LIST (\\Sent) "/" Sent' in lines
    r2.cmd("s2", "SELECT INBOX")
    # SEARCH answers ESEARCH, never SEARCH (RFC 9051 6.4.4, Appendix E 4)
    assert r2.cmd("a", "SEARCH ALL")[0] == ['* ESEARCH (TAG "a") ALL 1:2']
    assert r2.cmd("b", "UID SEARCH FROM carol")[0] == ['* ESEARCH (TAG "b") UID ALL 2']
    assert r2.cmd("c", "SEARCH DELETED")[0] == ['* ESEARCH (TAG "c")']
    assert r2.cmd("d", "SEARCH RETURN (COUNT) ALL")[0] == ['* ESEARCH (TAG "d") COUNT 2']
    assert r2.cmd("g", "SEARCH RETURN () ALL")[0] == ['* ESEARCH (TAG "g") ALL 1:2']
    # STATUS DELETED and SIZE, UNSELECT: rev2 base (RFC 9051 6.3.11)
    r2.cmd("st", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    lines, ok = r2.cmd("u", "STATUS INBOX (DELETED MESSAGES)")
    assert lines == ["* STATUS INBOX (DELETED 1 MESSAGES 2)"]
    _, ok = r2.cmd("un", "UNSELECT")
    assert ok.startswith("un OK")
    # a flag change seen by rev2 carries the UID (Appendix E 21)
    r2.cmd("s3", "SELECT INBOX")
    r1.cmd("st", "STORE 1 +FLAGS.SILENT (\\Flagged)")
    lines, _ = r2.cmd("n", "NOOP")
    assert any(re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)", ln) for ln in lines), lines
    r1.close()
    r2.close()


def test_enable_rev2_only_when_authenticated_not_selected(imap):
    r = Raw(imap.ports["imaps"], tls=True)
    _, ok = r.cmd("e", "ENABLE IMAP4rev2")
    assert ok.startswith("e BAD")
    r.login()
    r.cmd("s", "SELECT INBOX")
    _, ok = r.cmd("e", "ENABLE IMAP4rev2")
    assert ok.startswith("e BAD")
    r.cmd("u", "UNSELECT")
    lines, _ = r.cmd("e", "ENABLE IMAP4rev2 UNKNOWNTHING")
    assert lines == ["* ENABLED IMAP4rev2"]
    r.close()


def test_rev2_names_are_utf8_and_rev1_sees_modified_utf7(imap):
    r2 = rev2(imap)
    _, ok = cmd8(r2, "c", f'CREATE "{UMLAUT}/{JAPANESE}"')
    assert ok.startswith("c OK"), ok
    _, ok = cmd8(r2, "c2", 'CREATE "Tom & Jerry"')   # "&" is just "&" in UTF-8 names
    assert ok.startswith("c2 OK")
    lines, _ = r2.cmd("l", 'LIST "" "*"')
    names = list_names(lines)
    assert UMLAUT in names and f"{UMLAUT}/{JAPANESE}" in names and "Tom & Jerry" in names
    lines, ok = cmd8(r2, "s", f'SELECT "{UMLAUT}/{JAPANESE}"')
    assert ok.startswith("s OK") and f'* LIST () "/" "{UMLAUT}/{JAPANESE}"' in lines, lines
    # invalid UTF-8 from a rev2 client: NO [CANNOT], nothing created, the session goes on
    r2.send(b'b CREATE "caf\xe9"\r\n')
    _, ok = r2.until("b")
    assert ok == "b NO [CANNOT] Mailbox name is not valid UTF-8"
    # Net-Unicode (RFC 9051 5.1): NFD and control characters are refused too
    _, ok = cmd8(r2, "d", 'CREATE "Entwu\u0308rfe"')
    assert ok == "d NO [CANNOT] Mailbox name is not Net-Unicode (RFC 9051 5.1: NFC, no controls)", ok
    _, ok = cmd8(r2, "d2", 'CREATE "tab\u0085"')
    assert ok.startswith("d2 NO [CANNOT]") and "Net-Unicode" in ok
    assert len(list_names(r2.cmd("l2", 'LIST "" "*"')[0])) == len(names)

    # the same mailboxes through IMAP4rev1: modified UTF-7 both ways
    r1 = rev1(imap)
    lines, _ = r1.cmd("l", 'LIST "" "*"')
    names1 = list_names(lines)
    assert UMLAUT7 in names1 and f"{UMLAUT7}/{JAPANESE7}" in names1 and "Tom &- Jerry" in names1
    assert all(ln.isascii() for ln in lines)
    lines, _ = r1.cmd("l2", f'LIST "" "{UMLAUT7}/%"')  # a pattern is decoded too
    assert list_names(lines) == [f"{UMLAUT7}/{JAPANESE7}"]
    lines, ok = r1.cmd("st", f'STATUS {UMLAUT7}/{JAPANESE7} (MESSAGES)')
    assert lines == [f"* STATUS {UMLAUT7}/{JAPANESE7} (MESSAGES 0)"], lines
    r1.close()
    r2.close()


def test_rev1_invalid_modified_utf7_is_refused(imap):
    m = login(imap)
    assert m.create(f'"{JAPANESE7}"')[0] == "OK"
    before = m.list()[1]
    r = rev1(imap)
    for bad in ["&Jjo", "&AGE-", "&Jjo!-", "&AOQ-&APY-", "&2D0-", "&AAA-"]:
        _, ok = r.cmd("c", f'CREATE "{bad}"')
        assert ok == "c NO [CANNOT] Mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)", (bad, ok)
    for bad in ["Entwu&Awg-rfe", "a&AAk-b"]:  # valid modified UTF-7, but NFD / a TAB
        _, ok = r.cmd("c", f'CREATE "{bad}"')
        assert ok.startswith("c NO [CANNOT]") and "Net-Unicode" in ok, (bad, ok)
    _, ok = r.cmd("s", 'SELECT "x&Jjo"')
    assert ok.startswith("s NO [CANNOT]") and "UTF-7" in ok
    lines, ok = r.cmd("l", 'LIST "" "&Jjo*"')  # no name is spelt so: nothing matches
    assert lines == [] and ok.startswith("l OK")
    r.send('c8 CREATE "caf\u00e9"\r\n'.encode())  # 8-bit in a rev1 name: not modified UTF-7
    _, ok = r.until("c8")
    assert ok.startswith("c8 NO [CANNOT]") and "UTF-7" in ok
    _, ok = r.cmd("n", "NOOP")  # the session goes on
    assert ok.startswith("n OK")
    assert m.list()[1] == before  # nothing garbled was created
    # the name created in UTF-7 is stored as UTF-8: a rev2 session sees Japanese
    r2 = rev2(imap)
    assert JAPANESE in list_names(r2.cmd("l", 'LIST "" "*"')[0])
    lines, ok = cmd8(r2, "r", f'RENAME "{JAPANESE}" "{UMLAUT}"')
    assert ok.startswith("r OK")
    assert any(UMLAUT7.encode() in ln for ln in m.list()[1])
    m.logout()
    r.close()
    r2.close()


# ---- SEARCHRES ----

def fetched_uids(lines):
    return sorted(int(re.search(r"UID (\d+)", ln).group(1)) for ln in lines if " FETCH " in ln)


def test_searchres_save_and_dollar(imap):
    for i in range(1, 7):
        deliver(imap, msg(i))  # UIDs 1..6
    r = rev1(imap)
    r.cmd("s", "SELECT INBOX")
    r.cmd("f", "STORE 2,4,5 +FLAGS.SILENT (\\Flagged)")
    # SAVE alone: no ESEARCH, "$" holds the result
    lines, ok = r.cmd("a", "SEARCH RETURN (SAVE) FLAGGED")
    assert lines == [] and ok.startswith("a OK")
    assert fetched_uids(r.cmd("b", "FETCH $ (UID)")[0]) == [2, 4, 5]
    assert fetched_uids(r.cmd("c", "UID FETCH $ (FLAGS)")[0]) == [2, 4, 5]
    # "$" as a search key, alone and in UID form, combined with others
    assert r.cmd("d", "SEARCH $ NOT 4")[0] == ["* SEARCH 2 5"]
    assert r.cmd("e", "UID SEARCH OR UID $ 1")[0] == ["* SEARCH 1 2 4 5"]
    # STORE, COPY use it
    r.cmd("g", "STORE $ +FLAGS.SILENT (\\Answered)")
    assert r.cmd("h", "SEARCH ANSWERED")[0] == ["* SEARCH 2 4 5"]
    _, ok = r.cmd("i", "COPY $ Trash")
    assert ok.startswith("i OK [COPYUID") and " 2,4:5 " in ok
    # SAVE MIN keeps only the minimum; SAVE with ALL keeps all (RFC 5182 2.1 table)
    lines, _ = r.cmd("j", "SEARCH RETURN (SAVE MIN) FLAGGED")
    assert lines == ['* ESEARCH (TAG "j") MIN 2']
    assert fetched_uids(r.cmd("k", "FETCH $ (UID)")[0]) == [2]
    lines, _ = r.cmd("l", "UID SEARCH RETURN (SAVE MIN MAX COUNT) FLAGGED")
    assert lines == ['* ESEARCH (TAG "l") UID MIN 2 MAX 5 COUNT 3']
    assert fetched_uids(r.cmd("m", "FETCH $ (UID)")[0]) == [2, 4, 5]
    # a BAD search leaves "$" alone; a NO one with SAVE empties it
    _, ok = r.cmd("n", "SEARCH RETURN (SAVE) NOSUCHKEY")
    assert ok.startswith("n BAD")
    assert fetched_uids(r.cmd("o", "FETCH $ (UID)")[0]) == [2, 4, 5]
    _, ok = r.cmd("p", "SEARCH RETURN (SAVE) CHARSET KOI8-R FLAGGED")
    assert ok.startswith("p NO [BADCHARSET")
    lines, ok = r.cmd("q", "FETCH $ (UID)")
    assert lines == [] and ok.startswith("q OK")  # empty, valid, matching nothing
    # expunged messages leave "$"; MOVE takes it
    r.cmd("r", "SEARCH RETURN (SAVE) FLAGGED")
    r.cmd("t", "UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    r.cmd("u", "EXPUNGE")
    assert fetched_uids(r.cmd("v", "UID FETCH $ (UID)")[0]) == [2, 5]
    lines, ok = r.cmd("w", "UID MOVE $ Sent")
    assert ok.startswith("w OK") and any("COPYUID" in ln and " 2,5 " in ln for ln in lines)
    # a new SELECT resets "$"
    r.cmd("x", "SEARCH RETURN (SAVE) ALL")
    r.cmd("y", "SELECT INBOX")
    lines, ok = r.cmd("z", "FETCH $ (UID)")
    assert lines == [] and ok.startswith("z OK")
    r.close()


def test_searchres_pipelined_under_rev2(imap):
    for i in range(1, 4):
        deliver(imap, msg(i))
    r = rev2(imap)
    r.cmd("s", "SELECT INBOX")
    # RFC 5182 example: SEARCH (SAVE) pipelined with commands using "$"
    r.send(b"a UID SEARCH RETURN (SAVE) NOT 2\r\nb UID FETCH $ (FLAGS)\r\n"
           b"c SEARCH RETURN (SAVE ALL) UID $\r\n")
    lines, ok = r.until("a")
    assert lines == [] and ok.startswith("a OK")
    lines, ok = r.until("b")
    assert fetched_uids(lines) == [1, 3]
    lines, ok = r.until("c")
    assert lines == ['* ESEARCH (TAG "c") ALL 1,3']
    # UID EXPUNGE takes "$" too; the expunged message leaves it
    r.cmd("d", "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    lines, ok = r.cmd("e", "UID EXPUNGE $")
    assert lines == ["* 1 EXPUNGE", "* 2 EXPUNGE"], lines  # UIDs 1 and 3
    assert fetched_uids(r.cmd("f", "UID FETCH 1:* (UID)")[0]) == [2]
    lines, ok = r.cmd("g", "FETCH $ (UID)")
    assert lines == [] and ok.startswith("g OK")
    r.close()


# ---- SENTBEFORE, SENTON, SENTSINCE ----

def test_sent_date_keys_use_the_date_field_in_its_own_zone(imap):
    deliver(imap, msg(1, "Mon, 1 Feb 2021 23:30:00 -0800"))  # 2 Feb 07:30 UTC: sent on 1 Feb
    deliver(imap, msg(2, "Wed, 3 Feb 2021 00:15:00 +0200"))  # 2 Feb 22:15 UTC: sent on 3 Feb
    deliver(imap, msg(3))                                     # no Date: field
    deliver(imap, msg(4, "not a date"))
    m = login(imap)
    m.select("INBOX")

    def search(*keys):
        return m.search(None, *keys)[1][0].split()
    assert search("SENTON", "1-Feb-2021") == [b"1"]
    assert search("SENTON", "2-Feb-2021") == []
    assert search("SENTON", "3-Feb-2021") == [b"2"]
    assert search("SENTBEFORE", "3-Feb-2021") == [b"1"]
    assert search("SENTSINCE", "2-Feb-2021") == [b"2"]
    assert search("SENTSINCE", "1-Jan-1990") == [b"1", b"2"]
    # without a valid Date: none of the three matches, so NOT does
    assert search("NOT", "SENTSINCE", "1-Jan-1990") == [b"3", b"4"]
    # the delivery date is still what BEFORE/ON/SINCE look at
    assert search("SENTON", "1-Feb-2021", "SINCE", "1-Jan-2025") == [b"1"]
    with pytest.raises(m.error, match="Invalid date"):
        m.search(None, "SENTON", "31-Feb-2021x")
    m.logout()


# ---- real clients ----

def offlineimap_config(server, tmp, local):
    rc = tmp / "offlineimaprc"
    pem = (server.data / "tls" / "cert.pem").read_text()
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    rc.write_text(f"""[general]
accounts = wharf
metadata = {tmp}/offlineimap-meta
ui = basic

[Account wharf]
localrepository = near
remoterepository = far
utf8foldernames = yes

[Repository near]
type = Maildir
localfolders = {local}
sep = /

[Repository far]
type = IMAP
remotehost = 127.0.0.1
remoteport = {server.ports['imaps']}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {fingerprint}
ssl_version = tls1_2
createfolders = True
folderfilter = lambda f: f in ['INBOX', '{UMLAUT}', 'Notizen {JAPANESE}']
""")
    return rc


def offlineimap(rc):
    r = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"], capture_output=True,
                       timeout=180)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0 and "ERROR" not in out, out
    return out


def maildir_messages(folder):
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).glob("*"))


def test_offlineimap_both_ways_with_a_non_ascii_folder(imap, tmp_path):
    if shutil.which("offlineimap") is None:
        pytest.skip("offlineimap3 not installed")
    m = login(imap)
    assert m.create(UMLAUT7)[0] == "OK"
    assert m.append(UMLAUT7, None, None, MSG)[0] == "OK"
    deliver(imap, MSG2)
    local = tmp_path / "mail"
    local.mkdir()
    rc = offlineimap_config(imap, tmp_path, local)
    offlineimap(rc)
    # server -> Maildir: the folder arrives under its real (UTF-8) name
    [copy] = maildir_messages(local / UMLAUT)
    assert email.message_from_bytes(copy.read_bytes())["Subject"] == "hello there"
    assert len(maildir_messages(local / "INBOX")) == 1
    # Maildir -> server: a new message in the umlaut folder, a new folder, a flag
    new = (b"From: me@example.test\r\nTo: alice@example.test\r\nSubject: drafted offline\r\n"
           b"Message-ID: <offline@example.test>\r\n\r\nwritten on the train\r\n")
    (local / UMLAUT / "new" / "1.offline").write_bytes(new)
    notes = local / ("Notizen " + JAPANESE)
    for sub in ("cur", "new", "tmp"):
        (notes / sub).mkdir(parents=True)
    (notes / "new" / "2.offline").write_bytes(new.replace(b"drafted", b"noted"))
    copy.rename(copy.parent.parent / "cur" / (copy.name.split(":")[0] + ":2,F"))
    offlineimap(rc)
    # checked on the server, through both name encodings
    m.select(UMLAUT7)
    assert m.search(None, "SUBJECT", "\"drafted offline\"")[1] == [b"2"]
    assert m.search(None, "FLAGGED")[1] == [b"1"]
    r2 = rev2(imap)
    assert "Notizen " + JAPANESE in list_names(r2.cmd("l", 'LIST "" "*"')[0])
    lines, ok = cmd8(r2, "s", f'SELECT "Notizen {JAPANESE}"')
    assert ok.startswith("s OK") and "* 1 EXISTS" in lines
    assert r2.cmd("f", "SEARCH SUBJECT noted")[0] == ['* ESEARCH (TAG "f") ALL 1']
    r2.close()
    m.logout()


def curl(server, path, *args):
    url = f"imaps://127.0.0.1:{server.ports['imaps']}/{path}"
    r = subprocess.run(["curl", "-sS", "-k", "--user", f"{USER}:{PASSWORD}", *args, url],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def test_curl_append_and_fetch_with_a_non_ascii_folder(imap, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    name7 = mutf7("Caf\u00e9 & Cr\u00e8me")
    assert name7 == "Caf&AOk- &- Cr&AOg-me"
    curl(imap, "", "-X", f'CREATE "{name7}"')
    msgfile = tmp_path / "msg.eml"
    msgfile.write_bytes(MSG)
    path = name7.replace("&", "%26").replace(" ", "%20")
    curl(imap, path, "-T", str(msgfile))  # APPEND
    assert curl(imap, path + ";UID=1") == MSG  # SELECT + FETCH BODY[]
    # the server keeps the UTF-8 name: a rev2 session sees it so
    r2 = rev2(imap)
    lines, ok = cmd8(r2, "s", 'EXAMINE "Caf\u00e9 & Cr\u00e8me"')
    assert ok.startswith("s OK") and "* 1 EXISTS" in lines
    r2.close()
    # and curl's LIST (rev1) gets it back in modified UTF-7
    assert f'"{name7}"'.encode() in curl(imap, "")
