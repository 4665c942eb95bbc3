"""IMAP ACL (RFC 4314) and the "Other Users" / "Public Folders" namespaces
against a real wharfd: alice shares her mailboxes with bob, the admin makes
public folders with the wharf command, and nobody learns of a mailbox that
they may not see.

Clients: Python's imaplib for the owner, raw lines (Raw, from test_imap) where
the exact response matters, and for IDLE.
"""
import imaplib
import time

import pytest

from test_imap import MSG, MSG2, OTHER, USER, Raw, imap, login  # noqa: F401 (imap is a fixture)

ALICE, BOB = USER, OTHER
TEAM = f'"Other Users/{ALICE}/Team"'
imaplib.Commands.setdefault("LISTRIGHTS", ("AUTH", "SELECTED"))


def ok(resp):
    typ, data = resp
    assert typ == "OK", data
    return data


def raw(server, user):
    r = Raw(server.ports["imaps"], tls=True)
    r.login(user)
    return r


def no(r, tag, text):
    """The tagged NO of a command, without its tag."""
    _, tagged = r.cmd(tag, text)
    assert tagged.startswith(f"{tag} NO "), tagged
    return tagged[len(tag) + 4:]


def append(name, body):
    """An APPEND command with a non-synchronizing literal (LITERAL+)."""
    return f"APPEND {name} {{{len(body.encode())}+}}\r\n{body}"


def setup_team(server):
    a = login(server, ALICE)
    ok(a.create("Team"))
    ok(a.append("Team", None, None, MSG))
    ok(a.append("Team", None, None, MSG2))
    return a


def listed(r, tag="l"):
    lines, tagged = r.cmd(tag, 'LIST "" "*"')
    assert tagged.startswith(f"{tag} OK")
    return lines


def test_namespace_and_capabilities(imap):
    r = raw(imap, BOB)
    caps, _ = r.cmd("c", "CAPABILITY")
    assert "ACL" in caps[0].split() and "RIGHTS=texk" in caps[0].split()
    lines, tagged = r.cmd("n", "NAMESPACE")
    assert lines == ['* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Public Folders/" "/"))']
    r.close()


def test_share_read_only_then_insert_then_revoke(imap):
    a = setup_team(imap)
    b = raw(imap, BOB)
    # nothing shared yet: invisible, and answered as a missing mailbox is
    assert not any("Other Users" in ln for ln in listed(b))
    assert no(b, "s", f"SELECT {TEAM}") == no(b, "s", f'SELECT "Other Users/{ALICE}/Nope"')

    ok(a.setacl("Team", BOB, "lr"))
    lines = listed(b)
    assert f'* LIST (\\HasNoChildren) "/" "Other Users/{ALICE}/Team"' in lines
    assert f'* LIST (\\Noselect \\HasChildren) "/" "Other Users/{ALICE}"' in lines
    assert not any("Other Users" in ln and "INBOX" in ln for ln in lines)  # only what is shared
    lines, tagged = b.cmd("s", f"SELECT {TEAM}")
    assert "* 2 EXISTS" in lines and tagged.startswith("s OK [READ-ONLY]")
    lines, tagged = b.cmd("f", "FETCH 1 (BODY[TEXT])")  # (Raw reads an empty line as EOF)
    assert any("with a needle" in ln for ln in lines)
    lines, _ = b.cmd("g", "FETCH 1 (FLAGS)")
    assert "\\Seen" not in lines[0]  # a body fetch sets \Seen only with "s"
    assert no(b, "t", "STORE 1 +FLAGS (\\Flagged)").startswith("[READ-ONLY]")
    assert no(b, "e", "EXPUNGE").startswith("[READ-ONLY]")
    assert no(b, "a", append(TEAM, "hi\n")).startswith("[NOPERM]")
    _, tagged = b.cmd("c", "COPY 1 INBOX")  # into his own mailbox: fine
    assert tagged.startswith("c OK [COPYUID ")
    assert no(b, "m", "MOVE 1 INBOX").startswith("[READ-ONLY]")

    # "i": APPEND works, and alice sees the message
    ok(a.setacl("Team", BOB, "lri"))
    _, tagged = b.cmd("a", append(TEAM, "Subject: from bob\r\n\r\nhi"))
    assert tagged.startswith("a OK [APPENDUID "), tagged
    ok(a.select("Team"))
    assert ok(a.search(None, "SUBJECT", '"from bob"')) == [b"3"]
    assert ok(a.getacl("Team")) == [f'Team "{ALICE}" lrswipkxteacd "{BOB}" lri'.encode()]
    lines, _ = b.cmd("r", f"MYRIGHTS {TEAM}")
    assert lines == [f"* MYRIGHTS {TEAM} lri"]
    # without "a" bob may neither read nor change the ACL
    assert no(b, "g", f"GETACL {TEAM}").startswith("[NOPERM]")
    assert no(b, "x", f"SETACL {TEAM} {BOB} lrswipkxtea").startswith("[NOPERM]")
    assert no(b, "d", f"DELETE {TEAM}").startswith("[NOPERM]")

    # revoked: invisible again, the selected view included at its next SELECT
    ok(a.deleteacl("Team", BOB))
    assert not any("Team" in ln for ln in listed(b))
    assert no(b, "s", f"SELECT {TEAM}") == no(b, "s", f'SELECT "Other Users/{ALICE}/Nope"')
    a.logout()
    b.close()


def test_no_rights_looks_exactly_like_missing(imap):
    a = setup_team(imap)
    ok(a.create("Secret"))
    b = raw(imap, BOB)
    secret, ghost = f'"Other Users/{ALICE}/Secret"', f'"Other Users/{ALICE}/Ghost"'
    for cmd in ("SELECT {}", "EXAMINE {}", "DELETE {}", "GETACL {}", "MYRIGHTS {}",
                "STATUS {} (MESSAGES)", "RENAME {} Mine", append("{}", "hi\n"),
                "CREATE {}", "SETACL {} anyone lr", "LISTRIGHTS {} " + BOB):
        real = no(b, "x", cmd.replace("{}", secret))
        assert real == no(b, "x", cmd.replace("{}", ghost)), cmd
        assert "[NONEXISTENT]" in real or "[TRYCREATE]" in real or "[NOPERM]" in real
    assert no(b, "y", f'SELECT "Other Users/{ALICE}/INBOX"').startswith("[NONEXISTENT]")
    # with "l" only, he may know that it exists, but not read it
    ok(a.setacl("Secret", BOB, "l"))
    assert no(b, "z", f"SELECT {secret}").startswith("[NOPERM]")
    assert any("Secret" in ln for ln in listed(b))
    a.logout()
    b.close()


def test_rights_parsing_listrights_and_negative_rights(imap):
    a = setup_team(imap)
    assert ok(a.myrights("INBOX")) == [b"INBOX lrswipkxteacd"]
    typ, data = a._simple_command("LISTRIGHTS", "Team", BOB)
    assert a._untagged_response(typ, data, "LISTRIGHTS")[1] == [
        f'Team "{BOB}" "" l r s w i p k x t e a c d'.encode()]
    typ, data = a._simple_command("LISTRIGHTS", "Team", ALICE)
    assert a._untagged_response(typ, data, "LISTRIGHTS")[1] == [
        f'Team "{ALICE}" lrswipkxtea'.encode()]
    typ, data = a.setacl("Team", ALICE, "l")
    assert typ == "NO" and b"CANNOT" in data[0]  # the owner keeps every right
    with pytest.raises(imaplib.IMAP4.error):
        a.setacl("Team", BOB, "lrz")  # unknown right: BAD
    ok(a.setacl("Team", BOB, "lrd"))  # RFC 2086 "d" is x t e
    ok(a.setacl("Team", BOB, "-x"))   # and rights can be taken away one by one
    assert ok(a.getacl("Team")) == [f'Team "{ALICE}" lrswipkxteacd "{BOB}" lrted'.encode()]
    ok(a.setacl("Team", "anyone", "lr"))
    ok(a.setacl("Team", "-" + BOB, "r"))  # everyone reads, except bob
    b = raw(imap, BOB)
    lines, _ = b.cmd("r", f"MYRIGHTS {TEAM}")
    assert lines == [f"* MYRIGHTS {TEAM} lted"]
    assert no(b, "s", f"SELECT {TEAM}").startswith("[NOPERM]")
    a.logout()
    b.close()


def test_public_folder_made_with_the_cli(imap):
    imap.wharf("public", "add", "News")
    imap.wharf("acl", "set", "#public", "News", "anyone", "lr")
    imap.wharf("acl", "set", "#public", "News", BOB, "lrswite")
    listing = imap.wharf("public", "list").stdout.decode()
    assert "News" in listing and "anyone lr" in listing
    assert imap.wharf("acl", "get", "#public", "News").stdout.decode().splitlines() == [
        "anyone lr", f"{BOB} lrswite"]
    bad = imap.wharf("acl", "set", "#public", "News", "anyone", "lq", check=False)
    assert bad.returncode != 0 and b"unknown ACL right" in bad.stderr
    b = raw(imap, BOB)
    _, tagged = b.cmd("a", append('"Public Folders/News"', "Subject: news\r\n\r\nnews body"))
    assert tagged.startswith("a OK [APPENDUID ")
    a = raw(imap, ALICE)
    lines = listed(a)
    assert '* LIST (\\HasNoChildren) "/" "Public Folders/News"' in lines
    assert '* LIST (\\Noselect \\HasChildren) "/" "Public Folders"' in lines
    lines, tagged = a.cmd("s", 'SELECT "Public Folders/News"')
    assert "* 1 EXISTS" in lines and tagged.startswith("s OK [READ-ONLY]")
    lines, _ = a.cmd("f", "FETCH 1 (BODY.PEEK[TEXT])")
    assert any("news body" in ln for ln in lines)
    assert no(a, "c", 'CREATE "Public Folders/Mine"').startswith("[NOPERM]")
    assert no(a, "a", append('"Public Folders/News"', "hi\n")).startswith("[NOPERM]")
    imap.wharf("acl", "del", "#public", "News", "anyone")
    assert not any("News" in ln for ln in listed(a))
    assert no(a, "s", 'SELECT "Public Folders/News"').startswith("[NONEXISTENT]")
    a.close()
    b.close()


def test_live_update_reaches_the_other_users_idle(imap):
    a = setup_team(imap)
    ok(a.setacl("Team", BOB, "lrs"))
    r = raw(imap, BOB)
    lines, tagged = r.cmd("s", f"SELECT {TEAM}")
    assert "* 2 EXISTS" in lines and tagged.startswith("s OK [READ-WRITE]")
    assert "* OK [PERMANENTFLAGS (\\Seen)] Flags permitted" in lines
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    r.sock.settimeout(5)  # a bound for the failure case; the time is checked below
    ok(a.append("Team", None, None, b"Subject: three\r\n\r\n3\r\n"))
    t0 = time.monotonic()
    assert r.line() == "* 3 EXISTS"
    assert time.monotonic() - t0 < 1.0
    assert r.line() == "* 3 RECENT"  # bob's is the only session on Team: it takes them
    imap.wharf("deliver", "-m", "Team", ALICE, input=MSG)  # the mta's path (deliver.sock)
    t0 = time.monotonic()
    assert r.line() == "* 4 EXISTS"
    assert time.monotonic() - t0 < 1.0
    assert r.line() == "* 4 RECENT"
    ok(a.select("Team"))
    ok(a.store("1", "+FLAGS", "(\\Deleted)"))
    assert "\\Deleted" in r.line()
    ok(a.expunge())
    assert r.line() == "* 1 EXPUNGE"
    r.send(b"DONE\r\n")
    _, tagged = r.until("i")
    assert tagged.startswith("i OK")
    # with "s" only bob may set \Seen, not other flags, and not expunge
    _, tagged = r.cmd("f", "STORE 1 +FLAGS (\\Seen \\Flagged)")
    assert tagged.startswith("f OK")
    lines, _ = r.cmd("g", "FETCH 1 (FLAGS)")
    assert "\\Seen" in lines[0] and "\\Flagged" not in lines[0]
    assert no(r, "h", "STORE 1 +FLAGS (\\Flagged)").startswith("[NOPERM]")
    assert no(r, "e", "EXPUNGE").startswith("[NOPERM]")
    r.close()
    a.logout()


def test_create_delete_rename_copy_move_in_a_shared_tree(imap):
    a = setup_team(imap)
    b = raw(imap, BOB)
    ok(a.setacl("Team", BOB, "lr"))
    # "k" on the parent is needed to create below it, and nothing at another owner's top
    assert no(b, "c", f'CREATE "Other Users/{ALICE}/Team/Sub"').startswith("[NOPERM]")
    assert no(b, "c", f'CREATE "Other Users/{ALICE}/Top"').startswith("[NOPERM]")
    assert no(b, "c", 'CREATE "Other Users"').startswith("[CANNOT]")
    ok(a.setacl("Team", BOB, "lrk"))
    _, tagged = b.cmd("c", f'CREATE "Other Users/{ALICE}/Team/Sub"')
    assert tagged.startswith("c OK")
    assert ok(a.list(pattern="Team/*")) == [b'(\\HasNoChildren) "/" Team/Sub']  # alice owns it
    # the new mailbox starts with Team's ACL (test_new_mailbox_inherits_the_acl)
    lines, _ = b.cmd("r", f'MYRIGHTS "Other Users/{ALICE}/Team/Sub"')
    assert lines == [f'* MYRIGHTS "Other Users/{ALICE}/Team/Sub" lrkc']
    ok(a.setacl("Team/Sub", BOB, "lrx"))
    # RENAME needs "x" on it and "k" on the new parent; it stays with its owner
    _, tagged = b.cmd("r", f'RENAME "Other Users/{ALICE}/Team/Sub" "Other Users/{ALICE}/Team/Sub2"')
    assert tagged.startswith("r OK"), tagged
    assert no(b, "r", f'RENAME "Other Users/{ALICE}/Team/Sub2" Mine').startswith("[CANNOT]")
    assert no(b, "d", f"DELETE {TEAM}").startswith("[NOPERM]")  # no "x" on Team
    _, tagged = b.cmd("d", f'DELETE "Other Users/{ALICE}/Team/Sub2"')
    assert tagged.startswith("d OK")
    assert ok(a.list(pattern="Team/*")) == [None]
    # COPY into a shared mailbox needs "i"; MOVE out of one needs "t" and "e"
    lines, tagged = b.cmd("s", "SELECT INBOX")
    _, tagged = b.cmd("a", append("INBOX", "Subject: mine\r\n\r\nx"))
    assert tagged.startswith("a OK")
    assert no(b, "c", f"COPY 1 {TEAM}").startswith("[NOPERM]")
    ok(a.setacl("Team", BOB, "lrik"))
    _, tagged = b.cmd("c", f"COPY 1 {TEAM}")
    assert tagged.startswith("c OK [COPYUID ")
    ok(a.select("Team"))
    assert ok(a.search(None, "SUBJECT", "mine")) == [b"3"]
    lines, tagged = b.cmd("s", f"SELECT {TEAM}")
    assert "* 3 EXISTS" in lines and tagged.startswith("s OK [READ-WRITE]")  # "i" is a change
    assert no(b, "m", "MOVE 3 INBOX").startswith("[NOPERM]")
    ok(a.setacl("Team", BOB, "lrikte"))
    b.cmd("s", f"SELECT {TEAM}")  # rights are read at SELECT (RFC 4314 4 allows it)
    lines, tagged = b.cmd("m", "MOVE 3 INBOX")
    assert tagged.startswith("m OK") and "* 3 EXPUNGE" in lines
    a.logout()
    b.close()


def test_new_mailbox_inherits_the_acl(imap):
    """A mailbox made in a shared one starts with its parent's ACL (as in Cyrus): the sharee
    who made it uses it at once, and nobody else gains anything; RENAME keeps an ACL."""
    carol = "carol@example.test"
    imap.wharf("user", "add", carol, "--password-stdin", input=b"correct horse battery\n")
    a = setup_team(imap)
    ok(a.setacl("Team", BOB, "lrik"))
    ok(a.setacl("Team", "-anyone", "p"))
    b = login(imap, BOB)
    plans = f'"Other Users/{ALICE}/Team/Plans"'
    ok(b.create(plans))
    assert f'(\\HasNoChildren) "/" {plans}'.encode() in ok(b.list())
    assert ok(b.select(plans)) == [b"0"]
    typ, data = b.append(plans, None, None, b"Subject: plan\r\n\r\nbuild it\r\n")
    assert typ == "OK" and data[0].startswith(b"[APPENDUID "), data
    ok(b.noop())
    assert ok(b.search(None, "SUBJECT", "plan")) == [b"1"]
    assert ok(b.myrights(plans)) == [f"{plans} lrikc".encode()]
    # GETACL (alice: bob has no "a") shows the copied entries, negative ones too
    assert ok(a.getacl("Team/Plans")) == [
        f'Team/Plans "{ALICE}" lrswipkxteacd "-anyone" p "{BOB}" lrikc'.encode()]
    # the parents IMAP makes for a deeper CREATE inherit as well
    ok(a.create("Team/Y/Z"))
    for name in ("Team/Y", "Team/Y/Z"):
        assert ok(a.myrights(name)) == [f"{name} lrswipkxteacd".encode()]  # the owner: all
        assert ok(a.getacl(name))[0].endswith(f'"{BOB}" lrikc'.encode()), name
    # carol has no right on Team: she sees none of it, exactly as a missing mailbox
    c = raw(imap, carol)
    assert not any("Other Users" in ln for ln in listed(c))
    assert no(c, "s", f"SELECT {plans}") == no(c, "s", f'SELECT "Other Users/{ALICE}/Ghost"')
    c.close()
    # RENAME is no creation: a private folder moved into Team keeps its own (empty) ACL
    ok(a.create("Private"))
    ok(a.rename("Private", "Team/Private"))
    assert ok(a.getacl("Team/Private")) == [f'Team/Private "{ALICE}" lrswipkxteacd'.encode()]
    assert not any(b"Team/Private" in ln for ln in ok(b.list()))
    a.logout()
    b.logout()
