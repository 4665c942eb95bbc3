"""Shared and public folders over JMAP against a real wharfd: the mailboxes
alice shares with bob over IMAP (SETACL, RFC 4314) are a second account in
bob's JMAP session (RFC 8620 2, isPersonal false), with the rights of the
ACL as myRights (RFC 8621 2.1); the public folders are one more account.

Clients: imaplib for alice (the owner) and the admin's wharf command for the
public folders; the JMAP client of test_jmap (http.client over TLS) for bob
and carol. Every refusal is checked to leave the store as it was (IMAP).
Push: bob's EventSource stream, read with the helper of test_jmap (sse.py).
"""
import http.client
import json

import pytest

from conftest import tls_context
from sse import sse_event
from test_imap import login as imap
from test_jmap import MAIL, PASSWORD, Jmap, account_id

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"

TEAM1 = (b"From: Dan <dan@example.test>\r\nTo: alice@example.test\r\n"
         b"Subject: team plan\r\nMessage-ID: <plan@example.test>\r\n\r\nThe plan for Monday.\r\n")
TEAM2 = (b"From: Eve <eve@example.test>\r\nTo: alice@example.test\r\n"
         b"Subject: team lunch\r\nMessage-ID: <lunch@example.test>\r\n\r\nLunch at noon.\r\n")
PRIVATE = (b"From: Doc <doc@example.test>\r\nTo: alice@example.test\r\n"
           b"Subject: private results\r\nMessage-ID: <private@example.test>\r\n\r\nOnly alice.\r\n")


@pytest.fixture
def server(wharf_factory):
    s = wharf_factory(enable={"https", "imaps"},
                      extra={"http_auth_failure_delay": "0"}).start()
    s.wharf("domain", "add", "example.test")
    for user in (ALICE, BOB, CAROL):
        s.wharf("user", "add", user, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return s


def ok(resp):
    typ, data = resp
    assert typ == "OK", data
    return data


def alice_team(server):
    """alice's Team (two messages) and Private (one), and one message in her INBOX."""
    a = imap(server)
    for box in ("Team", "Private"):
        ok(a.create(box))
    ok(a.append("Team", None, None, TEAM1))
    ok(a.append("Team", None, None, TEAM2))
    ok(a.append("Private", None, None, PRIVATE))
    ok(a.append("INBOX", None, None, PRIVATE))
    return a


def flags(a, box):
    ok(a.select(box))
    data = ok(a.fetch("1:*", "(FLAGS)"))
    a.close()
    return [d.decode() for d in data]


def by_name(j, acc):
    got = j.ok("Mailbox/get", {"accountId": acc, "ids": None})
    return {m["name"]: m for m in got["list"]}


def emails(j, acc, mailbox=None):
    q = j.ok("Email/query", {"accountId": acc, "filter": {"inMailbox": mailbox} if mailbox else {}})
    g = j.ok("Email/get", {"accountId": acc, "ids": q["ids"], "properties": ["subject", "blobId"]})
    return {e["subject"]: e for e in g["list"]}


def download(j, acc, blob):
    r, data = j.request("GET", f"/jmap/download/{acc}/{blob}/m.eml?type=message/rfc822")
    return r.status, data


def test_shared_folder_is_a_second_account_with_its_rights(server):
    a = alice_team(server)
    b = Jmap(server, BOB)
    alice = account_id(ALICE)
    assert alice not in b.session()["accounts"]

    ok(a.setacl("Team", BOB, "lr"))
    s = b.session()
    assert s["primaryAccounts"][MAIL] == b.account
    acc = s["accounts"][alice]
    assert acc["name"] == ALICE and acc["isPersonal"] is False and acc["isReadOnly"] is True
    assert MAIL in acc["accountCapabilities"]
    assert s["accounts"][b.account]["isPersonal"] is True

    # only Team: not alice's INBOX, not Private
    boxes = by_name(b, alice)
    assert list(boxes) == ["Team"]
    team = boxes["Team"]
    assert team["totalEmails"] == 2 and team["parentId"] is None and team["role"] is None
    assert team["myRights"] == {"mayReadItems": True, "mayAddItems": False, "mayRemoveItems": False,
                                "maySetSeen": False, "maySetKeywords": False,
                                "mayCreateChild": False, "mayRename": False, "mayDelete": False,
                                "maySubmit": False}

    # bob reads Team's messages, and nothing else of alice's account
    assert set(emails(b, alice, team["id"])) == {"team plan", "team lunch"}
    assert set(emails(b, alice)) == {"team plan", "team lunch"}
    mine = Jmap(server, ALICE)
    private = emails(mine, mine.account)["private results"]
    got = b.ok("Email/get", {"accountId": alice, "ids": [private["id"]], "properties": ["subject"]})
    assert got["list"] == [] and got["notFound"] == [private["id"]]
    plan = emails(b, alice, team["id"])["team plan"]
    status, data = download(b, alice, plan["blobId"])
    assert status == 200 and data == TEAM1
    assert download(b, alice, private["blobId"])[0] == 404

    # no right to write: every change refused, and nothing changed in the store
    st = b.ok("Email/set", {"accountId": alice, "update": {plan["id"]: {"keywords/$seen": True}}})
    assert st["notUpdated"][plan["id"]]["type"] == "forbidden"
    st = b.ok("Email/set", {"accountId": alice, "update": {plan["id"]: {"keywords/$flagged": True}}})
    assert st["notUpdated"][plan["id"]]["type"] == "forbidden"
    st = b.ok("Email/set", {"accountId": alice, "destroy": [plan["id"]]})
    assert st["notDestroyed"][plan["id"]]["type"] == "forbidden"
    st = b.ok("Email/set", {"accountId": alice, "create": {"n": {
        "mailboxIds": {team["id"]: True}, "subject": "from bob",
        "bodyValues": {"1": {"value": "hi"}}, "textBody": [{"partId": "1", "type": "text/plain"}]}}})
    assert st["notCreated"]["n"]["type"] == "forbidden"
    st = b.ok("Mailbox/set", {"accountId": alice, "destroy": [team["id"]]})
    assert st["notDestroyed"][team["id"]]["type"] == "forbidden"  # no "x"
    n, err = b.call("Email/import", {"accountId": alice, "emails": {}})
    assert n == "error" and err["type"] == "accountNotSupportedByMethod"
    assert len(flags(a, "Team")) == 2 and not any("\\Seen" in f or "\\Flagged" in f
                                                  for f in flags(a, "Team"))

    # "s": bob may mark read, and only that
    ok(a.setacl("Team", BOB, "lrs"))
    assert by_name(b, alice)["Team"]["myRights"]["maySetSeen"] is True
    st = b.ok("Email/set", {"accountId": alice, "update": {plan["id"]: {"keywords/$seen": True}}})
    assert plan["id"] in st["updated"]
    st = b.ok("Email/set", {"accountId": alice, "update": {plan["id"]: {"keywords/$flagged": True}}})
    assert st["notUpdated"][plan["id"]]["type"] == "forbidden"
    assert sum("\\Seen" in f for f in flags(a, "Team")) == 1

    # "lrswite": delete too (t and e), and IMAP sees it gone
    ok(a.setacl("Team", BOB, "lrswite"))
    acc = b.session()["accounts"][alice]
    assert acc["isReadOnly"] is False
    assert by_name(b, alice)["Team"]["myRights"]["mayRemoveItems"] is True
    st = b.ok("Email/set", {"accountId": alice, "destroy": [plan["id"]]})
    assert st["destroyed"] == [plan["id"]]
    assert len(flags(a, "Team")) == 1
    assert len(flags(a, "Private")) == 1
    a.logout()


def test_no_right_no_account_no_mailbox(server):
    a = alice_team(server)
    b = Jmap(server, BOB)
    alice, carol = account_id(ALICE), account_id(CAROL)
    # nothing shared: alice's account, carol's, and ids that name nobody are all unknown
    for acc in (alice, carol, "a", "azz", "a00", account_id("#public"), "x" + alice[1:]):
        n, err = b.call("Mailbox/get", {"accountId": acc, "ids": None})
        assert n == "error" and err["type"] == "accountNotFound", acc
    # "r" without "l": still no account (nothing to list), as in IMAP
    ok(a.setacl("Team", BOB, "r"))
    assert alice not in b.session()["accounts"]
    n, err = b.call("Email/query", {"accountId": alice, "filter": {}})
    assert n == "error" and err["type"] == "accountNotFound"

    # "l" on Private, "lr" on Team: Private shows, without its messages or counts
    ok(a.setacl("Team", BOB, "lr"))
    ok(a.setacl("Private", BOB, "l"))
    boxes = by_name(b, alice)
    assert set(boxes) == {"Team", "Private"}
    private = boxes["Private"]
    assert private["myRights"]["mayReadItems"] is False and private["totalEmails"] == 0
    q = b.ok("Email/query", {"accountId": alice, "filter": {"inMailbox": private["id"]}})
    assert q["ids"] == []
    q = b.ok("Email/query", {"accountId": alice, "filter": {"text": "Only alice"}})
    assert q["ids"] == []
    # a mailbox without any right (alice's INBOX) is never named
    mine = Jmap(server, ALICE)
    inbox = mine.mailbox("inbox")
    got = b.ok("Mailbox/get", {"accountId": alice, "ids": [inbox]})
    assert got["list"] == [] and got["notFound"] == [inbox]
    q = b.ok("Email/query", {"accountId": alice, "filter": {"inMailbox": inbox}})
    assert q["ids"] == []
    # the methods of the user's own account only
    n, err = b.call("Identity/get", {"accountId": alice})
    assert n == "error" and err["type"] == "accountNotSupportedByMethod"
    # carol, whom nobody shared with, sees none of it
    c = Jmap(server, CAROL)
    assert alice not in c.session()["accounts"]
    n, err = c.call("Mailbox/get", {"accountId": alice, "ids": None})
    assert n == "error" and err["type"] == "accountNotFound"
    a.logout()


def test_changes_per_account(server):
    a = alice_team(server)
    ok(a.setacl("Team", BOB, "lr"))
    b = Jmap(server, BOB)
    alice = account_id(ALICE)
    st = b.ok("Email/get", {"accountId": alice, "ids": []})["state"]
    mine = b.ok("Email/get", {"ids": []})["state"]
    ok(a.append("Team", None, None, TEAM1.replace(b"team plan", b"team news")))
    ok(a.append("INBOX", None, None, PRIVATE.replace(b"private results", b"more private")))
    ch = b.ok("Email/changes", {"accountId": alice, "sinceState": st})
    assert ch["accountId"] == alice and ch["oldState"] == st and ch["newState"] != st
    got = b.ok("Email/get", {"accountId": alice, "ids": ch["created"], "properties": ["subject"]})
    assert [e["subject"] for e in got["list"]] == ["team news"]  # not the INBOX one
    ch = b.ok("Mailbox/changes", {"accountId": alice, "sinceState": st})
    team = by_name(b, alice)["Team"]["id"]
    assert ch["updated"] == [team] and ch["created"] == []
    # bob's own account did not move
    assert b.ok("Email/changes", {"sinceState": mine})["created"] == []
    a.logout()


def test_public_folder_visible_to_all_then_revoked(server):
    server.wharf("public", "add", "News")
    server.wharf("acl", "set", "#public", "News", "anyone", "lr")
    server.wharf("acl", "set", "#public", "News", BOB, "lrswite")
    b = imap(server, BOB)
    ok(b.append('"Public Folders/News"', None, None, TEAM2))
    b.logout()
    public = account_id("#public")
    for user in (BOB, CAROL, ALICE):
        j = Jmap(server, user)
        s = j.session()
        acc = s["accounts"][public]
        assert acc["name"] == "Public folders" and acc["isPersonal"] is False
        assert acc["isReadOnly"] is (user != BOB)
        news = by_name(j, public)["News"]
        assert news["myRights"]["mayRemoveItems"] is (user == BOB)
        assert set(emails(j, public, news["id"])) == {"team lunch"}

    # the share taken back: the account leaves carol's session (its state moves) and every call
    c = Jmap(server, CAROL)
    before = c.session()
    lunch = emails(c, public)["team lunch"]
    server.wharf("acl", "del", "#public", "News", "anyone")
    after = c.session()
    assert public not in after["accounts"] and after["state"] != before["state"]
    out = c.api([["Mailbox/get", {"accountId": public, "ids": None}, "0"]])
    assert out["methodResponses"][0][1]["type"] == "accountNotFound"
    assert out["sessionState"] == after["state"]
    assert download(c, public, lunch["blobId"])[0] == 404
    # bob keeps his own grant
    assert public in Jmap(server, BOB).session()["accounts"]


def test_revoked_share_is_gone(server):
    a = alice_team(server)
    ok(a.setacl("Team", BOB, "lr"))
    b = Jmap(server, BOB)
    alice = account_id(ALICE)
    plan = emails(b, alice)["team plan"]
    ok(a.deleteacl("Team", BOB))
    assert alice not in b.session()["accounts"]
    for name, args in (("Mailbox/get", {"ids": None}), ("Email/query", {"filter": {}}),
                       ("Email/get", {"ids": [plan["id"]]})):
        n, err = b.call(name, {"accountId": alice, **args})
        assert n == "error" and err["type"] == "accountNotFound", name
    assert download(b, alice, plan["blobId"])[0] == 404
    a.logout()


# ---- push of shared accounts ----

def eventsource(j):
    """j's EventSource stream, past its first event (the state of j's own account)."""
    conn = http.client.HTTPSConnection("127.0.0.1", j.port, context=tls_context(), timeout=20)
    conn.request("GET", "/jmap/eventsource/?types=*&closeafter=no&ping=0",
                 headers={"Authorization": j.auth})
    r = conn.getresponse()
    assert r.status == 200
    changed, _ = state_event(r)
    assert list(changed) == [j.account]
    return conn, r


def state_event(r):
    """The next state event: its changed object and its id lines."""
    ev = sse_event(r.readline)
    assert "event: state" in ev, ev
    data = json.loads(next(x for x in ev if x.startswith("data: "))[6:])
    assert data["@type"] == "StateChange"
    return data["changed"], [x for x in ev if x.startswith("id: ")]


def test_push_of_shared_mailbox_only(server):
    """bob's stream tells of alice's Team (delivery, her flag change over IMAP) under
    her account id, and never of what bob may not read: her INBOX, Private ("l" only),
    Team once the share is taken back. Each quiet change is followed, on the same IMAP
    connection (so in order on the bus), by one bob may hear of: the first event he
    gets must be that one's, at its state, or the quiet one leaked."""
    a = alice_team(server)
    ok(a.create("Notes"))
    ok(a.setacl("Team", BOB, "lr"))
    ok(a.setacl("Notes", BOB, "lr"))
    ok(a.setacl("Private", BOB, "l"))
    b = Jmap(server, BOB)
    mine = Jmap(server, ALICE)
    alice = account_id(ALICE)
    conn, r = eventsource(b)

    def alice_state():
        return mine.ok("Email/get", {"ids": []})["state"]

    ok(a.append("INBOX", None, None, TEAM1.replace(b"team plan", b"inbox only")))
    ok(a.append("Private", None, None, PRIVATE))
    ok(a.select("INBOX"))
    ok(a.store("1", "+FLAGS", "(\\Flagged)"))
    a.close()
    ok(a.append("Team", None, None, TEAM1.replace(b"team plan", b"team news")))
    changed, ids = state_event(r)
    assert changed == {alice: {"Mailbox": alice_state(), "Email": alice_state(),
                               "Thread": alice_state(), "EmailDelivery": alice_state()}}
    assert ids == []  # the id bob resumes from stays his own account's

    # alice flags a Team message over IMAP: bob's Team refreshes
    ok(a.select("Team"))
    ok(a.store("1", "+FLAGS", "(\\Flagged)"))
    a.close()
    changed, _ = state_event(r)
    assert changed[alice]["Email"] == alice_state() and list(changed) == [alice]
    got = b.ok("Email/query", {"accountId": alice, "filter": {"hasKeyword": "$flagged"}})
    assert len(got["ids"]) == 1

    # Team taken back: its changes are quiet for bob; Notes still tells
    ok(a.deleteacl("Team", BOB))
    ok(a.append("Team", None, None, TEAM2.replace(b"team lunch", b"after revoke")))
    ok(a.append("Notes", None, None, TEAM2.replace(b"team lunch", b"a note")))
    changed, _ = state_event(r)
    assert changed[alice]["Email"] == alice_state()
    conn.close()
    a.logout()


# ---- Email/copy from a shared account ----

def test_email_copy_from_shared_account(server):
    a = alice_team(server)
    ok(a.select("Team"))
    ok(a.store("1", "+FLAGS", "(\\Flagged)"))
    a.close()
    ok(a.setacl("Team", BOB, "l"))
    b = Jmap(server, BOB)
    alice = account_id(ALICE)
    inbox = b.mailbox("inbox")
    mine = Jmap(server, ALICE)
    plan_id = emails(mine, mine.account)["team plan"]["id"]

    def copy(**extra):
        return b.api([["Email/copy", {"fromAccountId": alice, "accountId": b.account,
                                      "create": {"c": {"id": plan_id,
                                                       "mailboxIds": {inbox: True}}},
                                      **extra}, "0"]])["methodResponses"]

    # "l" without "r": the Email is not bob's to read, so not to copy
    res = copy()
    assert res[0][0] == "Email/copy" and res[0][1]["notCreated"]["c"]["type"] == "notFound"
    assert emails(b, b.account) == {}

    # "r": copied into bob's INBOX with its keywords; alice's Team as it was
    ok(a.setacl("Team", BOB, "lr"))
    res = copy()
    out = res[0][1]
    assert out["fromAccountId"] == alice and out["accountId"] == b.account
    new = out["created"]["c"]
    got = b.ok("Email/get", {"ids": [new["id"]], "properties": ["subject", "keywords",
                                                               "mailboxIds"]})["list"][0]
    assert got["subject"] == "team plan" and got["keywords"] == {"$flagged": True}
    assert got["mailboxIds"] == {inbox: True}
    status, data = download(b, b.account, new["blobId"])
    assert status == 200 and data == TEAM1
    assert len(flags(a, "Team")) == 2

    # onSuccessDestroyOriginal: an implicit Email/set on alice's account, with its rights
    res = copy(onSuccessDestroyOriginal=True)
    assert res[1][0] == "Email/set"
    assert res[1][1]["notDestroyed"][plan_id]["type"] == "forbidden"  # no "t", "e"
    assert len(flags(a, "Team")) == 2
    ok(a.setacl("Team", BOB, "lrte"))
    res = copy(onSuccessDestroyOriginal=True)
    assert res[1][0] == "Email/set" and res[1][1]["destroyed"] == [plan_id]
    assert len(flags(a, "Team")) == 1

    # from an account that shares nothing with bob: refused
    n, err = b.call("Email/copy", {"fromAccountId": account_id(CAROL), "create": {}})
    assert n == "error" and err["type"] == "fromAccountNotFound"

    # from bob's own into alice's Team: "i" there, as Email/set's create asks
    team = by_name(b, alice)["Team"]["id"]

    def copy_back():
        return b.ok("Email/copy", {"accountId": alice, "fromAccountId": b.account,
                                   "create": {"k": {"id": new["id"],
                                                    "mailboxIds": {team: True}}}})
    res = copy_back()
    assert res["notCreated"]["k"]["type"] == "forbidden"  # "lrte": no "i"
    assert len(flags(a, "Team")) == 1
    ok(a.setacl("Team", BOB, "lrtei"))
    res = copy_back()
    assert "k" in res["created"], res
    got = flags(a, "Team")
    assert len(got) == 2 and any("\\Flagged" in f for f in got), got  # its keywords came along
    # and into a mailbox of alice's that bob may not see: no such mailbox for him
    private = next(m["id"] for m in Jmap(server, ALICE).ok("Mailbox/get", {"ids": None})["list"]
                   if m["name"] == "Private")
    res = b.ok("Email/copy", {"accountId": alice, "fromAccountId": b.account,
                              "create": {"p": {"id": new["id"], "mailboxIds": {private: True}}}})
    assert res["notCreated"]["p"]["type"] == "forbidden"
    assert len(flags(a, "Private")) == 1
    a.logout()


# ---- Mailbox/set in a shared account: IMAP's ACL rules ----

def alice_list(a):
    return sorted(ln.decode().rsplit(' "/" ', 1)[1].strip('"') for ln in ok(a.list()))


def test_mailbox_set_in_shared_account_asks_imap_rights(server):
    a = alice_team(server)
    ok(a.create("Team/Sub"))
    ok(a.setacl("Team", BOB, "lr"))
    ok(a.setacl("Team/Sub", BOB, "lr"))
    b = Jmap(server, BOB)
    alice = account_id(ALICE)
    before = alice_list(a)
    boxes = by_name(b, alice)
    team, sub = boxes["Team"]["id"], boxes["Sub"]["id"]

    def mbset(**args):
        return b.ok("Mailbox/set", {"accountId": alice, **args})

    # without "k" on Team no child; never a top-level mailbox; without "x" no rename/destroy
    st = mbset(create={"n": {"name": "New", "parentId": team}})
    assert st["notCreated"]["n"]["type"] == "forbidden"
    st = mbset(create={"t": {"name": "Top", "parentId": None}})
    assert st["notCreated"]["t"]["type"] == "forbidden"
    st = mbset(update={sub: {"name": "Renamed"}})
    assert st["notUpdated"][sub]["type"] == "forbidden"
    st = mbset(destroy=[sub])
    assert st["notDestroyed"][sub]["type"] == "forbidden"
    st = mbset(update={sub: {"isSubscribed": True}})
    assert st["notUpdated"][sub]["type"] == "forbidden"  # alice's subscriptions are hers
    assert alice_list(a) == before

    # "k" on Team: a child of it (as IMAP CREATE "Other Users/alice/Team/New" allows)
    ok(a.setacl("Team", BOB, "lrk"))
    assert by_name(b, alice)["Team"]["myRights"]["mayCreateChild"] is True
    st = mbset(create={"n": {"name": "New", "parentId": team}})
    assert "n" in st["created"], st
    assert "Team/New" in alice_list(a)
    # what bob may do there, as Mailbox/get will say: Team's rights, which it inherited
    made = st["created"]["n"]["myRights"]
    assert made == by_name(b, alice)["New"]["myRights"], made
    assert made["mayCreateChild"] and made["mayReadItems"] and not made["mayDelete"], made
    # still no top level with "k" below
    st = mbset(create={"t": {"name": "Top", "parentId": None}})
    assert st["notCreated"]["t"]["type"] == "forbidden"

    # "x" on Team/Sub: renamed under Team ("k" there), then destroyed
    ok(a.setacl("Team/Sub", BOB, "lrx"))
    got = by_name(b, alice)["Sub"]["myRights"]
    assert got["mayRename"] is True and got["mayDelete"] is True
    st = mbset(update={sub: {"name": "Sub2"}})
    assert sub in st["updated"], st
    assert "Team/Sub2" in alice_list(a) and "Team/Sub" not in alice_list(a)
    # moving it to the top: "k" on no parent there, as IMAP RENAME refuses
    st = mbset(update={sub: {"parentId": None}})
    assert st["notUpdated"][sub]["type"] == "forbidden"
    st = mbset(destroy=[sub])
    assert st["destroyed"] == [sub], st
    assert "Team/Sub2" not in alice_list(a)
    # bob's IMAP agrees: no "x" on Team, so no DELETE of it either
    bi = imap(server, BOB)
    typ, _ = bi.delete(f'"Other Users/{ALICE}/Team"')
    assert typ == "NO"
    bi.logout()
    assert "Team" in alice_list(a)
    a.logout()


def test_mailbox_made_in_shared_account_inherits_its_acl(server):
    """Mailbox/set create in alice's Team: the new mailbox starts with Team's ACL (the
    store's rule, as IMAP CREATE's), so bob lists it, adds to it and reads it at once."""
    a = alice_team(server)
    ok(a.setacl("Team", BOB, "lrik"))
    b = Jmap(server, BOB)
    alice = account_id(ALICE)
    team = by_name(b, alice)["Team"]
    st = b.ok("Mailbox/set", {"accountId": alice,
                              "create": {"p": {"name": "Plans", "parentId": team["id"]}}})
    plans = st["created"]["p"]["id"]
    got = by_name(b, alice)["Plans"]
    assert got["id"] == plans and got["parentId"] == team["id"]
    assert got["myRights"] == team["myRights"] == {
        "mayReadItems": True, "mayAddItems": True, "mayRemoveItems": False,
        "maySetSeen": False, "maySetKeywords": False, "mayCreateChild": True,
        "mayRename": False, "mayDelete": False, "maySubmit": False}
    st = b.ok("Email/set", {"accountId": alice, "create": {"n": {
        "mailboxIds": {plans: True}, "subject": "bob's plan",
        "bodyValues": {"1": {"value": "build it"}}, "textBody": [{"partId": "1", "type": "text/plain"}]}}})
    assert "n" in st["created"], st
    assert set(emails(b, alice, plans)) == {"bob's plan"}
    # alice owns it with every right, and her ACL shows bob's copied entry
    assert ok(a.getacl("Team/Plans")) == [f'Team/Plans "{ALICE}" lrswipkxteacd "{BOB}" lrikc'.encode()]
    ok(a.select("Team/Plans"))
    assert ok(a.search(None, "SUBJECT", "plan")) == [b"1"]
    # carol, with no right on Team, gains none on what is made in it
    c = Jmap(server, CAROL)
    assert alice not in c.session()["accounts"]
    a.logout()
