"""JMAP threads (RFC 8621 3) against a real wharfd.

A reply delivered over SMTP (smtplib) joins its parent's thread by
In-Reply-To/References when the base subject (RFC 5256) matches; a message
with the same subject and no references, or a reply whose subject changed,
starts its own. Read with http.client (Email/get threadId, Thread/get,
Thread/changes, Email/query collapseThreads and the thread keyword
filters), and the same threads seen over IMAP APPEND.
"""
import imaplib
import smtplib

import pytest

from conftest import tls_context, wait_until
from test_jmap import Jmap, PASSWORD, USER, server  # noqa: F401 (the fixture)

PARENT = (b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
          b"Subject: Site visit\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n"
          b"Message-ID: <visit@example.test>\r\n\r\nCan we visit on Tuesday?\r\n")
REPLY = (b"From: Carol <carol@example.test>\r\nTo: alice@example.test\r\n"
         b"Subject: Re: Site visit\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
         b"Message-ID: <visit-re@example.test>\r\nIn-Reply-To: <visit@example.test>\r\n"
         b"References: <visit@example.test>\r\n\r\nTuesday works.\r\n")
SAME_SUBJECT = (b"From: Dan <dan@example.test>\r\nTo: alice@example.test\r\n"
                b"Subject: Site visit\r\nDate: Mon, 30 Nov 2026 11:00:00 +0000\r\n"
                b"Message-ID: <other-visit@example.test>\r\n\r\nA different visit.\r\n")
CHANGED = (b"From: Carol <carol@example.test>\r\nTo: alice@example.test\r\n"
           b"Subject: Lunch after?\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
           b"Message-ID: <lunch@example.test>\r\nIn-Reply-To: <visit@example.test>\r\n"
           b"\r\nAnd lunch?\r\n")
APPENDED = (b"From: alice@example.test\r\nTo: bob@example.test\r\n"
            b"Subject: RE: [site] Re: Site visit\r\nDate: Mon, 30 Nov 2026 13:00:00 +0000\r\n"
            b"Message-ID: <visit-re2@example.test>\r\n"
            b"References: <visit@example.test> <visit-re@example.test>\r\n\r\nSee you.\r\n")


def deliver(server, msg):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
        s.sendmail("bob@example.test", [USER], msg)


def email_by_msgid(j, msgid):
    """The Email (id, threadId) whose Message-ID is msgid, once it is there."""
    def find():
        q = j.ok("Email/query", {})
        if not q["ids"]:
            return None
        g = j.ok("Email/get", {"ids": q["ids"], "properties": ["messageId", "threadId",
                                                                "receivedAt"]})
        for e in g["list"]:
            if e["messageId"] == [msgid]:
                return e
        return None
    return wait_until(find, what=f"<{msgid}> in Email/query")


def test_threads_by_references_and_subject(server):
    j = Jmap(server)
    st0 = j.ok("Thread/get", {"ids": []})["state"]
    deliver(server, PARENT)
    parent = email_by_msgid(j, "visit@example.test")
    st1 = j.ok("Thread/get", {"ids": []})["state"]
    deliver(server, REPLY)
    reply = email_by_msgid(j, "visit-re@example.test")
    deliver(server, SAME_SUBJECT)
    other = email_by_msgid(j, "other-visit@example.test")
    deliver(server, CHANGED)
    changed = email_by_msgid(j, "lunch@example.test")

    # the reply joins; the same subject without references and the changed subject do not
    assert reply["threadId"] == parent["threadId"]
    assert other["threadId"] != parent["threadId"]
    assert changed["threadId"] not in (parent["threadId"], other["threadId"])

    # Thread/get: emailIds oldest receivedAt first
    g = j.ok("Thread/get", {"ids": [parent["threadId"], other["threadId"], "t999999", "x"]})
    threads = {t["id"]: t["emailIds"] for t in g["list"]}
    assert threads[parent["threadId"]] == [parent["id"], reply["id"]]
    assert threads[other["threadId"]] == [other["id"]]
    assert sorted(g["notFound"]) == ["t999999", "x"]

    # an APPEND over IMAP with References to both (and a "RE: [site] Re:" subject) joins too
    with imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context()) as m:
        m.login(USER, PASSWORD)
        typ, _ = m.append("Sent", None, None, APPENDED)
        assert typ == "OK"
    appended = email_by_msgid(j, "visit-re2@example.test")
    assert appended["threadId"] == parent["threadId"]

    # Thread/changes: the parent's thread was created after st0, updated after st1
    ch = j.ok("Thread/changes", {"sinceState": st0})
    assert parent["threadId"] in ch["created"]
    assert other["threadId"] in ch["created"] and changed["threadId"] in ch["created"]
    ch = j.ok("Thread/changes", {"sinceState": st1})
    assert parent["threadId"] in ch["updated"] and parent["threadId"] not in ch["created"]

    # collapseThreads: one Email per thread (the newest, with the default sort)
    q = j.ok("Email/query", {"collapseThreads": True, "calculateTotal": True})
    assert q["total"] == 3
    assert appended["id"] in q["ids"] and parent["id"] not in q["ids"]
    q = j.ok("Email/query", {"calculateTotal": True})
    assert q["total"] == 5

    # Mailbox counts (RFC 8621 2.1): threads, not Emails. INBOX holds 4 Emails in
    # 3 threads (parent and reply share one); Sent holds 1 Email of that thread.
    def counts():
        g = j.ok("Mailbox/get", {"properties": ["role", "totalEmails", "unreadEmails",
                                                "totalThreads", "unreadThreads"]})
        return {m["role"]: (m["totalEmails"], m["unreadEmails"], m["totalThreads"],
                            m["unreadThreads"]) for m in g["list"] if m["role"] in ("inbox", "sent")}
    assert counts() == {"inbox": (4, 4, 3, 3), "sent": (1, 1, 1, 1)}
    # reading the parent leaves its thread unread (the reply is not); reading both does not
    j.ok("Email/set", {"update": {parent["id"]: {"keywords/$seen": True}}})
    assert counts()["inbox"] == (4, 3, 3, 3)
    # two Emails with the same keyword patch in one Email/set (changed together)
    s = j.ok("Email/set", {"update": {reply["id"]: {"keywords/$seen": True},
                                      other["id"]: {"keywords/$seen": True}}})
    assert sorted(s["updated"]) == sorted([reply["id"], other["id"]]) and not s["notUpdated"]
    assert counts()["inbox"] == (4, 1, 3, 1)
    g = j.ok("Email/get", {"ids": [reply["id"], other["id"], changed["id"]],
                           "properties": ["keywords"]})
    assert [e["keywords"] for e in g["list"]] == [{"$seen": True}, {"$seen": True}, {}]
    s = j.ok("Email/set", {"update": {reply["id"]: {"keywords/$seen": None},
                                      other["id"]: {"keywords/$seen": None}}})
    assert counts()["inbox"] == (4, 3, 3, 3)

    # the thread keyword filters: flag only the reply
    st2 = j.ok("Thread/get", {"ids": []})["state"]
    j.ok("Email/set", {"update": {reply["id"]: {"keywords/$flagged": True}}})
    q = j.ok("Email/query", {"filter": {"someInThreadHaveKeyword": "$flagged"}})
    assert sorted(q["ids"]) == sorted([parent["id"], reply["id"], appended["id"]])
    q = j.ok("Email/query", {"filter": {"allInThreadHaveKeyword": "$flagged"}})
    assert q["ids"] == []
    q = j.ok("Email/query", {"filter": {"noneInThreadHaveKeyword": "$flagged"}})
    assert sorted(q["ids"]) == sorted([other["id"], changed["id"]])
    ch = j.ok("Thread/changes", {"sinceState": st2})
    assert ch["updated"] == [parent["threadId"]] and ch["created"] == []

    # destroying the only Email of a thread destroys the thread
    st3 = j.ok("Thread/get", {"ids": []})["state"]
    a = j.ok("Email/set", {"destroy": [other["id"]]})
    assert a["destroyed"] == [other["id"]]
    ch = j.ok("Thread/changes", {"sinceState": st3})
    assert ch["destroyed"] == [other["threadId"]]
    g = j.ok("Thread/get", {"ids": [other["threadId"]]})
    assert g["notFound"] == [other["threadId"]]
    # destroying one Email of a thread updates it
    st4 = j.ok("Thread/get", {"ids": []})["state"]
    j.ok("Email/set", {"destroy": [appended["id"]]})
    ch = j.ok("Thread/changes", {"sinceState": st4})
    assert ch["updated"] == [parent["threadId"]] and ch["destroyed"] == []


def test_email_set_and_import_report_the_thread(server):
    j = Jmap(server)
    deliver(server, PARENT)
    parent = email_by_msgid(j, "visit@example.test")
    inbox = j.mailbox("inbox")
    a = j.ok("Email/set", {"create": {"r": {
        "mailboxIds": {inbox: True}, "subject": "Re: Site visit",
        "inReplyTo": ["visit@example.test"], "references": ["visit@example.test"],
        "textBody": [{"partId": "1", "type": "text/plain"}],
        "bodyValues": {"1": {"value": "count me in"}}}}})
    assert a["created"]["r"]["threadId"] == parent["threadId"]
    g = j.ok("Email/get", {"ids": [a["created"]["r"]["id"]], "properties": ["threadId"]})
    assert g["list"][0]["threadId"] == parent["threadId"]
    n, e = j.call("Email/query", {"filter": {"someInThreadHaveKeyword": 3}})
    assert n == "error" and e["type"] == "unsupportedFilter"
