"""JMAP /queryChanges (RFC 8620 5.6) for Email and Mailbox against a real
wharfd, with http.client.

Each check applies the answer to the result the client had (drop removed,
insert added at their indexes, in index order) and compares it with the
query run afresh: that is the contract, whatever the server lists.
"""
from test_jmap import Jmap, server  # noqa: F401 (the fixture)


def apply(old, ch):
    out = [i for i in old if i not in set(ch["removed"])]
    for a in sorted(ch["added"], key=lambda a: a["index"]):
        out.insert(a["index"], a["id"])
    return out


def create(j, mailbox, subject, received, **extra):
    o = {"mailboxIds": {mailbox: True}, "subject": subject, "receivedAt": received,
         "textBody": [{"partId": "1", "type": "text/plain"}],
         "bodyValues": {"1": {"value": subject}}}
    o.update(extra)
    a = j.ok("Email/set", {"create": {"x": o}})
    assert "x" in a["created"], a
    return a["created"]["x"]["id"]


def check(j, query, old_ids, old_state, **extra):
    """queryChanges since old_state applied to old_ids == the query now."""
    args = dict(query)
    args.update({"sinceQueryState": old_state, "calculateTotal": True})
    args.update(extra)
    ch = j.ok("Email/queryChanges", args)
    now = j.ok("Email/query", dict(query, calculateTotal=True))
    assert ch["oldQueryState"] == old_state
    assert ch["newQueryState"] == now["queryState"]
    assert ch["total"] == now["total"]
    assert apply(old_ids, ch) == now["ids"], (ch, now["ids"])
    return ch, now


def test_email_query_changes(server):
    j = Jmap(server)
    inbox = j.mailbox("inbox")
    e = [create(j, inbox, f"note {i}", f"2026-11-0{i + 1}T10:00:00Z") for i in range(4)]
    q = {"filter": {"inMailbox": inbox}, "sort": [{"property": "receivedAt",
                                                     "isAscending": False}]}
    first = j.ok("Email/query", q)
    assert first["canCalculateChanges"] is True
    assert first["ids"] == e[::-1]
    # nothing changed: nothing to do
    ch, _ = check(j, q, first["ids"], first["queryState"])
    assert ch["removed"] == [] and ch["added"] == []
    # a flag change, a new newest Email, one destroyed, one moved out of the inbox
    archive = j.ok("Mailbox/set", {"create": {"a": {"name": "Archive2"}}})["created"]["a"]["id"]
    j.ok("Email/set", {"update": {e[1]: {"keywords/$flagged": True}}})
    new = create(j, inbox, "note new", "2026-11-20T10:00:00Z")
    j.ok("Email/set", {"destroy": [e[0]]})
    j.ok("Email/set", {"update": {e[2]: {"mailboxIds": {archive: True}}}})
    ch, now = check(j, q, first["ids"], first["queryState"])
    assert now["ids"] == [new, e[3], e[1]]
    assert {"id": new, "index": 0} in ch["added"]
    assert e[0] in ch["removed"] and e[2] in ch["removed"]
    # a keyword filter: an Email flagged now joins the result
    fq = {"filter": {"hasKeyword": "$flagged"}}
    f0 = j.ok("Email/query", fq)
    j.ok("Email/set", {"update": {e[3]: {"keywords/$flagged": True}}})
    check(j, fq, f0["ids"], f0["queryState"])
    # maxChanges smaller than the changes: tooManyChanges
    n, a = j.call("Email/queryChanges", dict(q, sinceQueryState=first["queryState"],
                                            maxChanges=1))
    assert n == "error" and a["type"] == "tooManyChanges"
    # a state that is not one of ours, or from the future
    for bad in ("nope", "999999999"):
        n, a = j.call("Email/queryChanges", dict(q, sinceQueryState=bad))
        assert n == "error" and a["type"] == "cannotCalculateChanges"


def test_email_query_changes_up_to_id(server):
    j = Jmap(server)
    inbox = j.mailbox("inbox")
    e = [create(j, inbox, f"page {i}", f"2026-10-1{i}T10:00:00Z") for i in range(5)]
    q = {"sort": [{"property": "receivedAt", "isAscending": False}]}
    first = j.ok("Email/query", q)
    assert first["ids"] == e[::-1]
    # the client holds the first two; an Email older than all of them comes
    # (after upToId: left out), and a newest one (before it: given)
    old = create(j, inbox, "page old", "2026-09-01T10:00:00Z")
    newest = create(j, inbox, "page newest", "2026-12-01T10:00:00Z")
    ch = j.ok("Email/queryChanges", dict(q, sinceQueryState=first["queryState"],
                                         upToId=first["ids"][1]))
    assert ch["added"] == [{"id": newest, "index": 0}]
    assert old not in ch["removed"]
    held = first["ids"][:2]
    assert apply(held, ch) == j.ok("Email/query", q)["ids"][:3]
    # with a mutable filter (inMailbox) upToId is ignored: everything is given
    mq = dict(q, filter={"inMailbox": inbox})
    m0 = first  # the same result set: everything is in the inbox
    ch = j.ok("Email/queryChanges", dict(mq, sinceQueryState=m0["queryState"],
                                         upToId=m0["ids"][1]))
    assert {"id": old, "index": 6} in ch["added"]


def test_email_query_changes_collapsed_threads(server):
    j = Jmap(server)
    inbox = j.mailbox("inbox")
    p = create(j, inbox, "Budget", "2026-11-01T10:00:00Z", messageId=["budget@example.test"])
    o = create(j, inbox, "Other", "2026-11-02T10:00:00Z")
    q = {"collapseThreads": True, "sort": [{"property": "receivedAt", "isAscending": False}]}
    first = j.ok("Email/query", q)
    assert first["ids"] == [o, p]
    # a reply (newest) becomes the thread's representative: the parent leaves
    r = create(j, inbox, "Re: Budget", "2026-11-03T10:00:00Z",
               inReplyTo=["budget@example.test"], references=["budget@example.test"])
    ch, now = check(j, q, first["ids"], first["queryState"])
    assert now["ids"] == [r, o]
    assert p in ch["removed"]


def test_mailbox_query_changes(server):
    j = Jmap(server)
    q0 = j.ok("Mailbox/query", {})
    assert q0["canCalculateChanges"] is True
    a = j.ok("Mailbox/set", {"create": {"x": {"name": "Zeta"}, "y": {"name": "Alpha"}}})
    zeta, alpha = a["created"]["x"]["id"], a["created"]["y"]["id"]

    def check_mb(query, old):
        ch = j.ok("Mailbox/queryChanges", dict(query, sinceQueryState=old["queryState"]))
        now = j.ok("Mailbox/query", query)
        assert ch["newQueryState"] == now["queryState"]
        assert apply(old["ids"], ch) == now["ids"], (ch, now)
        return now

    q1 = check_mb({}, q0)
    # a rename moves it in the name order; a destroy removes it
    j.ok("Mailbox/set", {"update": {zeta: {"name": "Beta"}}})
    q2 = check_mb({}, q1)
    j.ok("Mailbox/set", {"destroy": [alpha]})
    check_mb({}, q2)
    check_mb({}, q0)
    # a filtered query: by role
    r0 = j.ok("Mailbox/query", {"filter": {"hasAnyRole": False}})
    j.ok("Mailbox/set", {"create": {"z": {"name": "Gamma"}}})
    check_mb({"filter": {"hasAnyRole": False}}, r0)
    n, e = j.call("Mailbox/queryChanges", {"sinceQueryState": "x"})
    assert n == "error" and e["type"] == "cannotCalculateChanges"
    n, e = j.call("Mailbox/queryChanges", {"sinceQueryState": q0["queryState"], "maxChanges": 1})
    assert n == "error" and e["type"] == "tooManyChanges"
