"""JMAP (RFC 8620, RFC 8621) over HTTPS against a real wharfd.

Clients: Python's http.client (TLS, Basic auth) and curl for uploads.
Mail also arrives by SMTP on port 25 (smtplib) and is read back over IMAP
(imaplib), so that changes made beside JMAP show in JMAP and the other way.
"""
import base64
import hashlib
import http.client
import imaplib
import json
import os
import smtplib
import subprocess
import time

import pytest

from conftest import tls_context, wait_until
from sse import sse_event

USER = "alice@example.test"
OTHER = "bob@example.test"
PASSWORD = "correct horse battery"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
CORE = "urn:ietf:params:jmap:core"

MSG = (b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
       b"Subject: crane on Monday\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
       b"Message-ID: <crane@example.test>\r\n\r\n"
       b"The crane arrives on Monday.\r\n")


@pytest.fixture
def server(wharf_factory):
    s = wharf_factory(enable={"https", "smtp", "imaps"},
                      extra={"http_auth_failure_delay": "0",
                             "jmap_max_objects_in_get": "5",
                             "jmap_max_size_request": "8k",
                             "jmap_max_size_upload": "1M",
                             # the view counters the tests read must not see an idle release
                             "jmap_cache_idle": "1h"}).start()
    s.wharf("domain", "add", "example.test")
    for user in (USER, OTHER):
        s.wharf("user", "add", user, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return s


def account_id(user):
    return "a" + user.encode().hex()


class Jmap:
    """A JMAP client on http.client: one HTTPS connection, Basic auth."""

    def __init__(self, server, user=USER, password=PASSWORD):
        self.server = server
        self.port = server.ports["https"]
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.user = user
        self.account = account_id(user)

    def request(self, method, path, body=None, headers=None, auth=True):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=tls_context(),
                                           timeout=20)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = self.auth
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r, data

    def session(self):
        r, data = self.request("GET", "/.well-known/jmap")
        assert r.status == 200, data
        return json.loads(data)

    def api(self, calls, using=(CORE, MAIL, SUBMISSION), status=200):
        body = json.dumps({"using": list(using), "methodCalls": calls}).encode()
        r, data = self.request("POST", "/jmap/api/", body,
                               {"Content-Type": "application/json"})
        assert r.status == status, data
        return json.loads(data)

    def call(self, name, args):
        """One method call; returns its (name, arguments)."""
        args = dict(args)
        args.setdefault("accountId", self.account)
        out = self.api([[name, args, "c"]])
        n, a, _ = out["methodResponses"][0]
        return n, a

    def ok(self, name, args):
        n, a = self.call(name, args)
        assert n == name, a
        return a

    def mailbox(self, role):
        q = self.ok("Mailbox/query", {"filter": {"role": role}})
        return q["ids"][0]


def test_session(server):
    j = Jmap(server)
    s = j.session()
    base = f"https://127.0.0.1:{j.port}"
    assert s["apiUrl"].startswith(base)
    assert s["uploadUrl"].startswith(base) and "{accountId}" in s["uploadUrl"]
    assert s["downloadUrl"].startswith(base) and "{blobId}" in s["downloadUrl"]
    assert s["eventSourceUrl"].startswith(base)
    core = s["capabilities"][CORE]
    assert core["maxObjectsInGet"] == 5 and core["maxSizeRequest"] == 8192
    assert s["primaryAccounts"][MAIL] == j.account
    assert s["username"] == USER
    # GET of the API URL is the session too
    r, data = j.request("GET", "/jmap/api/")
    assert r.status == 200 and json.loads(data)["apiUrl"] == s["apiUrl"]
    # no credentials, or wrong ones: 401
    r, _ = j.request("GET", "/.well-known/jmap", auth=False)
    assert r.status == 401
    r, _ = Jmap(server, password="wrong").request("GET", "/.well-known/jmap")
    assert r.status == 401


def test_request_level_errors(server):
    j = Jmap(server)
    r, data = j.request("POST", "/jmap/api/", b"{nope", {"Content-Type": "application/json"})
    assert r.status == 400
    assert json.loads(data)["type"] == "urn:ietf:params:jmap:error:notJSON"
    out = j.api([], using=["urn:example:nothing"], status=400)
    assert out["type"] == "urn:ietf:params:jmap:error:unknownCapability"
    big = [["Core/echo", {"pad": "x" * 9000}, "c"]]
    out = j.api(big, status=400)
    assert out["type"] == "urn:ietf:params:jmap:error:limit"
    assert out["limit"] == "maxSizeRequest"
    r, data = j.request("POST", "/jmap/api/", b'{"using": 1}', {"Content-Type": "application/json"})
    assert r.status == 400 and json.loads(data)["type"].endswith(":notRequest")


def test_methods_and_errors(server):
    j = Jmap(server)
    # echo and an unknown method
    out = j.api([["Core/echo", {"x": [1]}, "a"], ["Foo/bar", {}, "b"]])
    assert out["methodResponses"][0] == ["Core/echo", {"x": [1]}, "a"]
    assert out["methodResponses"][1][0] == "error"
    assert out["methodResponses"][1][1]["type"] == "unknownMethod"
    # invalidArguments
    n, a = j.call("Mailbox/get", {"ids": "nope"})
    assert n == "error" and a["type"] == "invalidArguments"
    # requestTooLarge: more ids than maxObjectsInGet (5)
    n, a = j.call("Email/get", {"ids": [f"e{i}" for i in range(6)]})
    assert n == "error" and a["type"] == "requestTooLarge"
    # stateMismatch
    n, a = j.call("Mailbox/set", {"ifInState": "1", "create": {"x": {"name": "X"}}})
    assert n == "error" and a["type"] == "stateMismatch"
    # notFound in a /set
    a = j.ok("Email/set", {"update": {"e" + "0" * 64: {"keywords": {}}}})
    assert a["notUpdated"]["e" + "0" * 64]["type"] == "notFound"
    # a one-part Email from bodyStructure
    inbox = j.mailbox("inbox")
    a = j.ok("Email/set", {"create": {"big": {
        "mailboxIds": {inbox: True}, "subject": "big",
        "bodyStructure": {"partId": "1", "type": "text/plain"},
        "bodyValues": {"1": {"value": "y" * 10}}}}})
    assert "big" in a["created"]
    # Mailbox set, get, query, changes
    st = j.ok("Mailbox/get", {"ids": []})["state"]
    a = j.ok("Mailbox/set", {"create": {"p": {"name": "Projects"},
                                        "c": {"name": "Wharf", "parentId": "#p"}}})
    child = a["created"]["c"]["id"]
    # the server-set properties come back (RFC 8621 2.5), its rights among them
    rights = a["created"]["c"]["myRights"]
    assert all(rights.values()) and len(rights) == 9, rights
    ch = j.ok("Mailbox/changes", {"sinceState": st})
    assert sorted(ch["created"]) == sorted([a["created"]["p"]["id"], child])
    g = j.ok("Mailbox/get", {"ids": [child], "properties": ["name", "parentId"]})
    assert g["list"][0]["name"] == "Wharf"
    n, e = j.call("Mailbox/set", {"destroy": [a["created"]["p"]["id"]]})
    assert e["notDestroyed"][a["created"]["p"]["id"]]["type"] == "mailboxHasChild"


def test_upload_download_byte_for_byte(server, tmp_path):
    j = Jmap(server)
    blob = os.urandom(300 * 1024) + b"\x00\r\n\xff"
    f = tmp_path / "blob.bin"
    f.write_bytes(blob)
    url = f"https://127.0.0.1:{j.port}/jmap/upload/{j.account}/"
    r = subprocess.run(["curl", "-sk", "-u", f"{USER}:{PASSWORD}", "-H",
                        "Content-Type: application/octet-stream", "--data-binary", f"@{f}", url],
                       capture_output=True, timeout=60, check=True)
    up = json.loads(r.stdout)
    assert up["size"] == len(blob) and up["accountId"] == j.account
    r, data = j.request("GET", f"/jmap/download/{j.account}/{up['blobId']}/x.bin"
                        "?type=application/octet-stream")
    assert r.status == 200 and data == blob
    # the same again: the same blob id (content-addressed)
    r2 = subprocess.run(["curl", "-sk", "-u", f"{USER}:{PASSWORD}", "--data-binary", f"@{f}", url],
                        capture_output=True, timeout=60, check=True)
    assert json.loads(r2.stdout)["blobId"] == up["blobId"]
    # another user cannot read it
    b = Jmap(server, user=OTHER)
    r, _ = b.request("GET", f"/jmap/download/{b.account}/{up['blobId']}/x.bin?type=x/y")
    assert r.status == 404
    # over maxSizeUpload (1M): refused
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * (1024 * 1024 + 1))
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                        f"{USER}:{PASSWORD}", "--data-binary", f"@{big}", url],
                       capture_output=True, timeout=60, check=True)
    assert r.stdout == b"413"
    # a delivered message's parts: sizes are those of the decoded bytes (base64 and
    # quoted-printable counted, not decoded, by the server), and the download agrees
    att = blob[:3001]
    text = "caf\u00e9 = soft".encode()
    msg = (b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: parts sizes\r\n"
           b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="s"\r\n\r\n'
           b"--s\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =3D so=\r\nft\r\n"
           b"--s\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
           b'Content-Disposition: attachment; filename="a.bin"\r\n\r\n'
           + base64.encodebytes(att).replace(b"\n", b"\r\n") + b"--s--\r\n")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.sendmail("bob@example.test", [USER], msg)
    ids = wait_until(lambda: j.ok("Email/query", {"filter": {"subject": "parts sizes"}})["ids"],
                     what="the message with parts")
    e = j.ok("Email/get", {"ids": ids, "properties": ["textBody", "attachments"]})["list"][0]
    assert [p["size"] for p in e["textBody"]] == [len(text)]
    assert [p["size"] for p in e["attachments"]] == [len(att)]
    r, data = j.request("GET", f"/jmap/download/{j.account}/{e['attachments'][0]['blobId']}/a.bin"
                        "?type=application/octet-stream")
    assert r.status == 200 and data == att


def test_email_created_over_jmap_is_read_over_imap(server):
    j = Jmap(server)
    drafts = j.mailbox("drafts")
    a = j.ok("Email/set", {"create": {"d": {
        "mailboxIds": {drafts: True}, "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Alice", "email": USER}], "to": [{"email": OTHER}],
        "subject": "plans for the wharf",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "Meet at the crane.\n"}}}}})
    assert "d" in a["created"], a
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(USER, PASSWORD)
    m.select("Drafts")
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
    assert typ == "OK"
    raw = data[0][1]
    assert b"Subject: plans for the wharf" in raw
    assert b"Meet at the crane." in raw
    assert b"\\Draft" in data[0][0] and b"\\Seen" in data[0][0]
    # and the other way: a flag set over IMAP shows in JMAP
    m.store("1", "+FLAGS", "\\Flagged")
    m.logout()
    g = j.ok("Email/get", {"ids": [a["created"]["d"]["id"]], "properties": ["keywords"]})
    assert g["list"][0]["keywords"].get("$flagged") is True


def test_smtp_delivery_shows_in_changes(server):
    j = Jmap(server)
    st = j.ok("Email/get", {"ids": []})["state"]
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
        s.sendmail("bob@example.test", [USER], MSG)

    def created():
        ch = j.ok("Email/changes", {"sinceState": st})
        return ch["created"] or None
    ids = wait_until(created, what="the SMTP delivery in Email/changes")
    g = j.ok("Email/get", {"ids": ids, "properties": ["subject", "from", "preview"]})
    assert g["list"][0]["subject"] == "crane on Monday"
    assert g["list"][0]["from"][0]["email"] == "bob@example.test"
    q = j.ok("Email/query", {"filter": {"text": "crane"}})
    assert ids[0] in q["ids"]
    text_query_uses_the_index(server, j)


# A word only in a base64 text part, one only in an HTML part (split by a tag),
# one only in bob's mail: the text filters answer from the store's full-text index.
INDEXED = (b"From: Dora <dora@example.test>\r\nTo: alice@example.test, bob@example.test\r\n"
           b"Subject: the harbour report\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/alternative; boundary=zz\r\n\r\n--zz\r\n"
           b"Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode("Zeppelinfeld à l'\u00e9cluse\r\n".encode("latin-1")) +
           b"\r\n--zz\r\nContent-Type: text/html\r\n\r\n"
           b"<p>The <b>harbour</b>master<script>hiddenscript()</script></p>\r\n--zz--\r\n")
BOBS = (b"From: Carl <carl@example.test>\r\nTo: bob@example.test\r\n"
        b"Subject: for bob only\r\n\r\nquartermasterword\r\n")


def text_query_uses_the_index(server, j):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
        s.sendmail("dora@example.test", [USER, OTHER], INDEXED)
        s.sendmail("carl@example.test", [OTHER], BOBS)
    b = Jmap(server, user=OTHER)
    wait_until(lambda: b.ok("Email/query", {"filter": {"subject": "for bob only"}})["ids"] or None,
               what="bob's mail")
    # delivered: found at once, by a word of the base64 part, case and accents folded
    ids = j.ok("Email/query", {"filter": {"text": "ZEPPELINFELD"}})["ids"]
    assert len(ids) == 1
    assert j.ok("Email/query", {"filter": {"body": "l'ÉCLUSE"}})["ids"] == ids
    assert j.ok("Email/query", {"filter": {"text": "harbourmaster"}})["ids"] == ids
    assert j.ok("Email/query", {"filter": {"body": "hiddenscript"}})["ids"] == []
    assert j.ok("Email/query", {"filter": {"body": "harbour report"}})["ids"] == []
    assert j.ok("Email/query", {"filter": {"subject": "harbour rep"}})["ids"] == ids
    assert j.ok("Email/query", {"filter": {"from": "dora@exa"}})["ids"] == ids
    assert j.ok("Email/query", {"filter": {"to": "bob@example"}})["ids"] == ids
    assert j.ok("Email/query", {"filter": {"cc": "bob@example"}})["ids"] == []
    # shorter than the index answers for: the scan, same answer
    assert ids[0] in j.ok("Email/query", {"filter": {"body": "ep"}})["ids"]
    # one body, two accounts: each finds its copy; bob's own mail is bob's only
    assert b.ok("Email/query", {"filter": {"text": "zeppelinfeld"}})["ids"] == ids
    assert b.ok("Email/query", {"filter": {"text": "quartermasterword"}})["ids"]
    assert j.ok("Email/query", {"filter": {"text": "quartermasterword"}})["ids"] == []
    n, sn = j.call("SearchSnippet/get", {"filter": {"text": "harbour"}, "emailIds": ids})
    assert n == "SearchSnippet/get" and "<mark>harbour</mark>" in sn["list"][0]["subject"], sn
    # gone from alice's results with her copy, still bob's
    assert j.ok("Email/set", {"destroy": ids})["destroyed"] == ids
    assert j.ok("Email/query", {"filter": {"text": "zeppelinfeld"}})["ids"] == []
    assert b.ok("Email/query", {"filter": {"text": "zeppelinfeld"}})["ids"] == ids
    text_query_sorted_by_the_store(server, j)


def text_query_sorted_by_the_store(server, j):
    """One text condition (with inMailbox), sorted by receivedAt: the store
    answers it sorted (store_text_emails), the same as the general path."""
    inbox = j.mailbox("inbox")
    # delivered just before the query (`wharf deliver` returns once stored):
    # the query's top-up of the index finds them
    for i in range(3):
        server.wharf("deliver", USER, input=b"From: x@example.test\r\nSubject: tide %d\r\n\r\n"
                     b"springtide number %d\r\n" % (i, i))
    newest = [{"property": "receivedAt", "isAscending": False}]
    fast = j.ok("Email/query", {"filter": {"inMailbox": inbox, "text": "SPRINGTIDE"},
                                "sort": newest, "calculateTotal": True})
    assert fast["total"] == 3
    general = j.ok("Email/query", {"filter": {"operator": "AND", "conditions": [
        {"inMailbox": inbox}, {"text": "springtide"}]}, "sort": newest})
    assert fast["ids"] == general["ids"]
    got = {e["id"]: e["subject"]
           for e in j.ok("Email/get", {"ids": fast["ids"], "properties": ["subject"]})["list"]}
    assert [got[i] for i in fast["ids"]] == ["tide 2", "tide 1", "tide 0"]
    oldest = j.ok("Email/query", {"filter": {"body": "springtide"}, "position": 1, "limit": 1,
                                  "sort": [{"property": "receivedAt", "isAscending": True}]})
    assert oldest["ids"] == [fast["ids"][1]] and oldest["position"] == 1
    assert j.ok("Email/query", {"filter": {"inMailbox": j.mailbox("sent"),
                                           "text": "springtide"}})["ids"] == []
    # deleted: no longer returned
    assert j.ok("Email/set", {"destroy": fast["ids"][:1]})["destroyed"] == fast["ids"][:1]
    assert j.ok("Email/query", {"filter": {"inMailbox": inbox, "text": "springtide"},
                                "sort": newest})["ids"] == fast["ids"][1:]


def test_submission_to_another_local_user(server):
    j = Jmap(server)
    sent = j.mailbox("sent")
    out = j.api([
        ["Email/set", {"accountId": j.account, "create": {"m": {
            "mailboxIds": {sent: True}, "keywords": {"$seen": True},
            "from": [{"email": USER}], "to": [{"email": OTHER}],
            "subject": "from jmap to bob",
            "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "hi bob"}}}}}, "0"],
        ["Identity/get", {"accountId": j.account}, "1"],
        ["EmailSubmission/set", {"accountId": j.account, "create": {"s": {
            "identityId": "i0", "emailId": "#m"}}}, "2"]])
    sub = out["methodResponses"][2]
    assert sub[0] == "EmailSubmission/set" and "s" in sub[1]["created"], sub
    # forbiddenFrom: alice may not send as carol
    out = j.api([
        ["Email/set", {"accountId": j.account, "create": {"x": {
            "mailboxIds": {sent: True}, "from": [{"email": "carol@example.test"}],
            "to": [{"email": OTHER}], "subject": "forged"}}}, "0"],
        ["EmailSubmission/set", {"accountId": j.account, "create": {"s": {
            "identityId": "i0", "emailId": "#x"}}}, "1"]])
    assert out["methodResponses"][1][1]["notCreated"]["s"]["type"] == "forbiddenFrom"
    b = Jmap(server, user=OTHER)

    def arrived():
        q = b.ok("Email/query", {"filter": {"subject": "from jmap to bob"}})
        return q["ids"] or None
    ids = wait_until(arrived, what="the submission in bob's mailbox")
    g = b.ok("Email/get", {"ids": ids, "properties": ["from"]})
    assert g["list"][0]["from"][0]["email"] == USER
    assert not b.ok("Email/query", {"filter": {"subject": "forged"}})["ids"]


def test_eventsource_state_change_on_smtp_delivery(server):
    j = Jmap(server)
    conn = http.client.HTTPSConnection("127.0.0.1", j.port, context=tls_context(), timeout=20)
    conn.request("GET", "/jmap/eventsource/?types=*&closeafter=no&ping=0",
                 headers={"Authorization": j.auth, "Accept": "text/event-stream"})
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("text/event-stream")

    def event():
        return sse_event(r.readline)
    first = event()
    assert "event: state" in first
    first_id = int(next(x for x in first if x.startswith("id: "))[4:])
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
        s.sendmail("bob@example.test", [USER], MSG)
        sent_at = time.monotonic()
    ev = event()
    latency = time.monotonic() - sent_at
    assert "event: state" in ev
    data = json.loads(next(x for x in ev if x.startswith("data: "))[6:])
    assert data["@type"] == "StateChange"
    assert "Email" in data["changed"][j.account]
    assert int(next(x for x in ev if x.startswith("id: "))[4:]) > first_id
    # the mta delivers after the 250; the push follows the store commit
    assert latency < 1.0, f"StateChange {latency * 1000:.0f} ms after the SMTP delivery"
    conn.close()
    # closeafter=state: the stream (its request freed once it is set up) ends with the
    # next change, and its keep-alive connection serves the next requests, another
    # user's credentials checked afresh.
    conn = http.client.HTTPSConnection("127.0.0.1", j.port, context=tls_context(), timeout=20)
    conn.request("GET", "/jmap/eventsource/?types=Email&closeafter=state&ping=0",
                 headers={"Authorization": j.auth})
    r = conn.getresponse()
    assert r.status == 200
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
        s.sendmail("bob@example.test", [USER], MSG)
    ev = event()
    assert "event: state" in ev and "Email" in ev[-1], ev
    assert r.read() == b""  # the stream's last chunk
    b = Jmap(server, OTHER)
    for who in (b, j, b):
        conn.request("GET", "/.well-known/jmap", headers={"Authorization": who.auth})
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["username"] == who.user
    conn.close()
    # bad arguments: 400
    r2, _ = j.request("GET", "/jmap/eventsource/?types=*&closeafter=maybe&ping=0")
    assert r2.status == 400


JAM = os.path.join(os.path.dirname(__file__), "..", "jmap-client")


def test_jmap_jam_client(server):
    """npm jmap-jam (pinned in tests/jmap-client/package-lock.json; `make deps-test`
    installs it) runs its own requests under node:test."""
    if not os.path.isdir(os.path.join(JAM, "node_modules", "jmap-jam")):
        pytest.fail("jmap-jam is not installed: run `make deps-test` "
                    "(npm ci in tests/jmap-client)")
    env = dict(os.environ)
    env.update({
        "WHARF_JMAP_URL": f"https://127.0.0.1:{server.ports['https']}/.well-known/jmap",
        "WHARF_USER": USER, "WHARF_PASSWORD": PASSWORD,
        # the test server's certificate is self-signed
        "NODE_TLS_REJECT_UNAUTHORIZED": "0",
    })
    r = subprocess.run(["node", "--test", "jam.test.mjs"], cwd=JAM, env=env,
                       capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    assert "# pass 6" in out, out


CAROL = "carol@example.test"
VACATION = "urn:ietf:params:jmap:vacationresponse"


def vacation_mail(sender, subject, extra=b""):
    return (f"From: <{sender}>\r\nTo: Alice <{USER}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n").encode() + extra + \
        b"\r\nAre you there?\r\n"


def test_vacation_response_set_and_reply(server):
    server.wharf("user", "add", CAROL, "--password-stdin", input=PASSWORD.encode() + b"\n")
    j = Jmap(server)
    using = (CORE, MAIL, VACATION)

    def vcall(name, args):
        args = dict(args, accountId=j.account)
        n, a, _ = j.api([[name, args, "v"]], using=using)["methodResponses"][0]
        return n, a
    n, g = vcall("VacationResponse/get", {"ids": ["singleton", "other"]})
    assert n == "VacationResponse/get" and g["notFound"] == ["other"]
    assert g["list"][0]["isEnabled"] is False and g["list"][0]["toDate"] is None
    # the singleton is neither created nor destroyed; bad values are refused
    n, s = vcall("VacationResponse/set", {
        "create": {"x": {"isEnabled": True}}, "destroy": ["singleton"],
        "update": {"singleton": {"isEnabled": "yes"}}})
    assert s["notCreated"]["x"]["type"] == "singleton"
    assert s["notDestroyed"]["singleton"]["type"] == "singleton"
    assert s["notUpdated"]["singleton"]["type"] == "invalidProperties"
    assert s["notUpdated"]["singleton"]["properties"] == ["isEnabled"]
    n, s = vcall("VacationResponse/set", {"update": {"singleton": {"toDate": "tomorrow"}}})
    assert s["notUpdated"]["singleton"]["properties"] == ["toDate"]
    n, s = vcall("VacationResponse/set", {"update": {"singleton": {
        "isEnabled": True, "fromDate": "2020-01-01T00:00:00Z", "toDate": "2999-01-01T00:00:00Z",
        "subject": "Away until Monday", "textBody": "I read mail on Monday.\n",
        "htmlBody": None}}})
    assert s["updated"] == {"singleton": None}, s
    assert s["newState"] != s["oldState"]
    n, g = vcall("VacationResponse/get", {"properties": ["isEnabled", "toDate", "subject"]})
    v = g["list"][0]
    assert v == {"id": "singleton", "isEnabled": True, "toDate": "2999-01-01T00:00:00Z",
                 "subject": "Away until Monday"}
    assert g["state"] == s["newState"]

    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.sendmail(OTHER, [USER], vacation_mail(OTHER, "first question"))
        c.sendmail(OTHER, [USER], vacation_mail(OTHER, "second question"))
        c.sendmail(OTHER, [USER], vacation_mail(OTHER, "list news",
                                                b"List-Id: <news.example.test>\r\n"))
        c.sendmail(OTHER, [USER], vacation_mail(OTHER, "bulk news", b"Precedence: bulk\r\n"))
        # carol writes last: her reply comes after any second one to bob would
        c.sendmail(CAROL, [USER], vacation_mail(CAROL, "carol asks"))

    def replies(client):
        q = client.ok("Email/query", {"filter": {"subject": "Away until Monday"}})
        return q["ids"]
    b, c = Jmap(server, user=OTHER), Jmap(server, user=CAROL)
    wait_until(lambda: replies(c), what="carol's vacation reply")
    assert len(j.ok("Email/query", {})["ids"]) == 5
    ids = replies(b)
    assert len(ids) == 1, "one reply per sender and period, none to list or bulk mail"
    g = b.ok("Email/get", {"ids": ids, "properties": [
        "from", "to", "subject", "inReplyTo", "header:Auto-Submitted:asText",
        "header:Return-Path:asText", "textBody", "bodyValues"], "fetchTextBodyValues": True})
    e = g["list"][0]
    assert e["from"][0]["email"] == USER and e["to"][0]["email"] == OTHER
    assert e["header:Auto-Submitted:asText"] == "auto-replied"
    assert e["header:Return-Path:asText"] == "<>"
    assert e["inReplyTo"] == ["first.question@example.test"]
    assert "I read mail on Monday." in e["bodyValues"][e["textBody"][0]["partId"]]["value"]


def test_identity_set_changes_and_submission(server):
    server.wharf("alias", "add", "sales@example.test", USER)
    j = Jmap(server)
    g = j.ok("Identity/get", {})
    assert [(i["id"], i["email"], i["mayDelete"]) for i in g["list"]] == [("i0", USER, False)]
    st = g["state"]
    a = j.ok("Identity/set", {"create": {
        "me": {"email": USER, "name": "Alice Liddell", "textSignature": "-- \nAlice",
               "replyTo": [{"name": "Desk", "email": "desk@example.test"}]},
        "sales": {"email": "sales@example.test", "name": "Sales"},
        "forged": {"email": "carol@example.test"},
        "bad": {"email": USER, "bcc": "nobody"},
        "noemail": {"name": "x"}}})
    me, sales = a["created"]["me"]["id"], a["created"]["sales"]["id"]
    assert a["created"]["me"]["mayDelete"] is True
    assert a["notCreated"]["forged"]["type"] == "forbiddenFrom"
    assert a["notCreated"]["bad"]["properties"] == ["bcc"]
    assert a["notCreated"]["noemail"]["properties"] == ["email"]
    g = j.ok("Identity/get", {"ids": [me, "i0", "c999999"]})
    assert g["notFound"] == ["c999999"]
    got = {i["id"]: i for i in g["list"]}
    assert got[me]["name"] == "Alice Liddell" and got[me]["textSignature"] == "-- \nAlice"
    assert got[me]["replyTo"] == [{"name": "Desk", "email": "desk@example.test"}]
    assert got[me]["bcc"] is None and got["i0"]["name"] == ""
    ch = j.ok("Identity/changes", {"sinceState": st})
    assert sorted(ch["created"]) == sorted([me, sales]) and not ch["updated"]
    st = ch["newState"]
    # update, immutable email, the fixed address identity, destroy
    a = j.ok("Identity/set", {"update": {me: {"name": "A. Liddell"},
                                         sales: {"email": "other@example.test"},
                                         "i0": {"name": "x"}},
                              "destroy": ["c999999"]})
    assert me in a["updated"]
    assert a["notUpdated"][sales]["properties"] == ["email"]
    assert a["notUpdated"]["i0"]["type"] == "forbidden"
    assert a["notDestroyed"]["c999999"]["type"] == "notFound"
    ch = j.ok("Identity/changes", {"sinceState": st})
    assert ch["updated"] == [me] and not ch["created"] and not ch["destroyed"]
    # a submission must come from its identity's address
    sent = j.mailbox("sent")

    def submit(identity, frm):
        out = j.api([
            ["Email/set", {"accountId": j.account, "create": {"m": {
                "mailboxIds": {sent: True}, "from": [{"email": frm}], "to": [{"email": OTHER}],
                "subject": f"as {identity}"}}}, "0"],
            ["EmailSubmission/set", {"accountId": j.account, "create": {"s": {
                "identityId": identity, "emailId": "#m"}}}, "1"]])
        return out["methodResponses"][1][1]
    assert "s" in submit(sales, "sales@example.test")["created"]
    assert submit(sales, USER)["notCreated"]["s"]["type"] == "forbiddenFrom"
    assert submit("c999999", USER)["notCreated"]["s"]["type"] == "invalidProperties"
    st = j.ok("Identity/get", {"ids": []})["state"]
    a = j.ok("Identity/set", {"destroy": [sales]})
    assert a["destroyed"] == [sales]
    ch = j.ok("Identity/changes", {"sinceState": st})
    assert ch["destroyed"] == [sales]
    assert submit(sales, "sales@example.test")["notCreated"]["s"]["type"] == "invalidProperties"


def test_search_snippet_highlighting(server):
    j = Jmap(server)
    inbox = j.mailbox("inbox")
    body = ("Minutes of the site meeting. " * 6 +
            "The Crane arrives on Monday & needs <clearance>; the crane operator calls first.")
    a = j.ok("Email/set", {"create": {
        "m": {"mailboxIds": {inbox: True}, "subject": "crane & <scaffold> plan",
              "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": body}}},
        "o": {"mailboxIds": {inbox: True}, "subject": "lunch",
              "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "sandwiches"}}}}})
    m, o = a["created"]["m"]["id"], a["created"]["o"]["id"]
    q = j.ok("Email/query", {"filter": {"text": "crane"}})
    assert q["ids"] == [m]
    n, s = j.call("SearchSnippet/get", {"filter": {"text": "crane"}, "emailIds": [m, o, "e" + "0" * 64]})
    assert n == "SearchSnippet/get", s
    assert s["notFound"] == ["e" + "0" * 64]
    got = {x["emailId"]: x for x in s["list"]}
    assert got[m]["subject"] == "<mark>crane</mark> &amp; &lt;scaffold&gt; plan"
    p = got[m]["preview"]
    assert "<mark>Crane</mark> arrives on Monday &amp; needs &lt;clearance&gt;" in p
    assert "the <mark>crane</mark> operator" in p
    assert len(p.encode()) <= 255 and not p.startswith("Minutes")
    assert got[o]["subject"] is None and got[o]["preview"] is None
    # subject and body conditions highlight only their own part; NOT highlights nothing
    n, s = j.call("SearchSnippet/get", {"filter": {"operator": "AND", "conditions": [
        {"subject": "plan"}, {"body": "operator"},
        {"operator": "NOT", "conditions": [{"text": "lunch"}]}]}, "emailIds": [m]})
    x = s["list"][0]
    assert x["subject"] == "crane &amp; &lt;scaffold&gt; <mark>plan</mark>"
    assert "crane <mark>operator</mark> calls" in x["preview"] and "lunch" not in x["preview"]
    n, s = j.call("SearchSnippet/get", {"emailIds": [m]})
    assert s["list"][0]["subject"] is None and s["list"][0]["preview"] is None


def test_preview_of_html_shows_only_text(server):
    """The preview of an HTML-only message leaves out what a reader never
    sees: <style>, <script>, <title>, comments; entities are decoded."""
    j = Jmap(server)
    inbox = j.mailbox("inbox")
    html = ("<html><head><title>Newsletter</title><style>p { color: red; }</style></head>"
            "<body><script>var x = 1;</script><p>Hello&nbsp;<b>world</b></p>"
            "<!-- tracking --><div>fish &amp; chips</div><SCRIPT type=x>more()</SCRIPT>"
            "</body></html>")
    a = j.ok("Email/set", {"create": {"h": {
        "mailboxIds": {inbox: True}, "subject": "html only",
        "htmlBody": [{"partId": "1", "type": "text/html"}],
        "bodyValues": {"1": {"value": html}}}}})
    g = j.ok("Email/get", {"ids": [a["created"]["h"]["id"]], "properties": ["preview"]})
    assert g["list"][0]["preview"] == "Hello world fish & chips"


def test_query_follows_changes_made_beside_it(server):
    """Email/query, Thread/get and Email/changes read the worker's account
    view, brought forward from the store's change records after each change
    (jmap_view.c): after each change made over SMTP and IMAP, the list of
    each folder is what IMAP shows, with the flags IMAP shows."""
    j = Jmap(server)
    inbox = j.mailbox("inbox")

    def deliver(subject, extra=b""):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as s:
            s.sendmail(OTHER, [USER], b"From: <bob@example.test>\r\nTo: <alice@example.test>\r\n"
                       b"Subject: " + subject.encode() + b"\r\n" + extra +
                       b"\r\nabout " + subject.encode() + b"\r\n")

    def listing(mailbox):
        """(subject, seen) of each row of the folder's list, newest first, via JMAP."""
        q = j.ok("Email/query", {"filter": {"inMailbox": mailbox}, "collapseThreads": True,
                                 "sort": [{"property": "receivedAt", "isAscending": False}],
                                 "calculateTotal": True})
        assert q["total"] == len(q["ids"])
        g = j.ok("Email/get", {"ids": q["ids"], "properties": ["subject", "keywords"]}) \
            if q["ids"] else {"list": []}
        return sorted((e["subject"], "$seen" in e["keywords"]) for e in g["list"])

    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(USER, PASSWORD)

    def imap_listing(folder):
        typ, _ = m.select(folder)
        assert typ == "OK"
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        out = []
        for part in data:
            if isinstance(part, tuple):
                subject = part[1].decode().split(":", 1)[1].strip()
                out.append((subject, b"\\Seen" in part[0]))
        return sorted(out)

    def same(folder, mailbox, want):
        assert imap_listing(folder) == want
        assert listing(mailbox) == want

    for s in ("one", "two", "three"):
        deliver(s)
    wait_until(lambda: len(j.ok("Email/query", {"filter": {"inMailbox": inbox}})["ids"]) == 3,
               what="three deliveries in Email/query")
    same("INBOX", inbox, [("one", False), ("three", False), ("two", False)])
    st = j.ok("Email/get", {"ids": []})["state"]
    # a flag set over IMAP
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Seen")
    same("INBOX", inbox, [("one", True), ("three", False), ("two", False)])
    assert len(j.ok("Email/query", {"filter": {"operator": "AND", "conditions": [
        {"inMailbox": inbox}, {"notKeyword": "$seen"}]}})["ids"]) == 2
    # a move to another folder
    m.create("Later")
    m.select("INBOX")
    m.copy("2", "Later")
    m.store("2", "+FLAGS", "\\Deleted")
    m.expunge()
    later = j.ok("Mailbox/query", {"filter": {"name": "Later"}})["ids"][0]
    same("INBOX", inbox, [("one", True), ("three", False)])
    same("Later", later, [("two", False)])
    # a reply in a thread: one row for the two, Thread/get names both
    mid = b"Message-ID: <t1@example.test>\r\n"
    deliver("plan", mid)
    deliver("Re: plan", b"In-Reply-To: <t1@example.test>\r\nReferences: <t1@example.test>\r\n")
    wait_until(lambda: len(j.ok("Email/query", {"filter": {"inMailbox": inbox}})["ids"]) == 4,
               what="the thread in Email/query")
    rows = j.ok("Email/query", {"filter": {"inMailbox": inbox}, "collapseThreads": True})["ids"]
    assert len(rows) == 3
    g = j.ok("Email/get", {"ids": rows, "properties": ["threadId", "subject"]})
    t = [e["threadId"] for e in g["list"] if "plan" in e["subject"]]
    assert len(t) == 1
    assert len(j.ok("Thread/get", {"ids": t})["list"][0]["emailIds"]) == 2
    # a folder deleted over IMAP: its Email gone
    m.delete("Later")
    ch = j.ok("Email/changes", {"sinceState": st, "maxChanges": 50})
    assert len(ch["destroyed"]) == 1 and len(ch["created"]) == 2
    assert len(j.ok("Email/query", {})["ids"]) == 4
    m.logout()


def test_list_after_delivery_brought_forward(server):
    """The webmail's mail list asked for again after a delivery, on one
    keep-alive connection (one http worker, as a browser tab's): the worker's
    account view is brought forward from the store's change records and the
    kept list result by placing the new Email (jmap_query.c, qcache_grow),
    neither read again; the worker's status counts which path each took."""
    j = Jmap(server)
    inbox = j.mailbox("inbox")
    for i in range(3):
        server.wharf("deliver", USER, input=b"From: <bob@example.test>\r\nSubject: old %d\r\n\r\n"
                     b"x\r\n" % i)
    conn = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], context=tls_context(),
                                       timeout=20)
    listing = ["Email/query", {"accountId": j.account, "filter": {"operator": "AND", "conditions": [
        {"inMailbox": inbox}, {"notKeyword": "$wharfsettings"}]},
        "sort": [{"property": "receivedAt", "isAscending": False}], "collapseThreads": True,
        "position": 0, "limit": 50, "calculateTotal": True}, "q"]

    def api(calls):
        conn.request("POST", "/jmap/api/", json.dumps({"using": [CORE, MAIL], "methodCalls": calls}),
                     {"Authorization": j.auth, "Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body
        return {t: a for _, a, t in json.loads(body)["methodResponses"]}

    def counts():
        return {k: server.worker_count("http", "jmap_" + k)
                for k in ("view_reads", "view_patches", "query_grown", "query_runs")}

    mb = ["Mailbox/get", {"accountId": j.account, "properties": ["totalEmails"]}, "m"]
    # the worker holds the view (a sort only the view answers): on a cold worker the
    # first list is answered cold and the first change after it reads the view
    by_size = ["Email/query", {"accountId": j.account, "sort": [{"property": "size"}]}, "s"]
    before = api([mb, by_size, listing])["q"]
    assert before["total"] == 3
    c0 = counts()
    server.wharf("deliver", USER, input=b"From: <bob@example.test>\r\nSubject: new\r\n\r\nx\r\n")
    after = api([mb, listing])["q"]
    c1 = counts()
    assert after["total"] == 4 and after["ids"][1:] == before["ids"]
    assert c1["query_grown"] == c0["query_grown"] + 1, (c0, c1)
    assert c1["query_runs"] == c0["query_runs"], (c0, c1)
    assert c1["view_patches"] == c0["view_patches"] + 1 and c1["view_reads"] == c0["view_reads"]
    conn.close()


def test_idle_worker_drops_account_view(wharf_factory):
    """An http worker keeps the account it last read for Email/query and
    Thread/get (its view) and its query results; once no request used them
    for jmap_cache_idle they are freed (the worker's status counts them, over
    every worker), and the view read again answers as the one dropped."""
    s = wharf_factory(enable={"https", "smtp"},
                      extra={"http_auth_failure_delay": "0", "jmap_cache_idle": "3s",
                             "workers": "1"}).start()
    s.wharf("domain", "add", "example.test")
    s.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    j = Jmap(s)
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=20) as c:
        for i in range(5):
            c.sendmail(OTHER, [USER], b"From: <bob@example.test>\r\nTo: <alice@example.test>\r\n"
                       b"Subject: note %d\r\n\r\nbody %d\r\n" % (i, i))
    wait_until(lambda: len(j.ok("Email/query", {})["ids"]) == 5, what="five deliveries")
    # two with keywords, three with none (the store hands those over as NULL, not "")
    ids = j.ok("Email/query", {})["ids"]
    j.ok("Email/set", {"update": {ids[0]: {"keywords/$flagged": True, "keywords/project": True},
                                  ids[3]: {"keywords/$seen": True, "keywords/project": True}}})
    mailbox = [m["id"] for m in j.ok("Mailbox/get", {})["list"] if m["role"] == "inbox"][0]

    def answers():
        out = j.api([["Email/query", {"accountId": j.account, "collapseThreads": True,
                                      "sort": [{"property": "receivedAt", "isAscending": False}]},
                      "q"],
                     ["Email/get", {"accountId": j.account, "properties": ["threadId", "keywords"],
                                    "#ids": {"resultOf": "q", "name": "Email/query",
                                             "path": "/ids"}}, "g"],
                     ["Thread/get", {"accountId": j.account,
                                     "#ids": {"resultOf": "g", "name": "Email/get",
                                              "path": "/list/*/threadId"}}, "t"],
                     # the webmail's list and settings queries
                     ["Email/query", {"accountId": j.account, "filter": {"operator": "AND",
                                      "conditions": [{"inMailbox": mailbox},
                                                     {"notKeyword": "project"}]},
                                      "collapseThreads": True, "calculateTotal": True,
                                      "sort": [{"property": "receivedAt", "isAscending": False}],
                                      "position": 1, "limit": 2}, "l"],
                     ["Email/query", {"accountId": j.account, "filter": {"hasKeyword": "PROJECT"}},
                      "k"]])
        return out["methodResponses"]

    before = answers()
    r = {t: a for _, a, t in before}
    assert sorted(r["k"]["ids"]) == sorted([ids[0], ids[3]])
    assert r["l"]["total"] == 3 and r["l"]["ids"] == [i for i in r["q"]["ids"]
                                                      if i not in (ids[0], ids[3])][1:3]
    assert {e["id"]: e["keywords"] for e in r["g"]["list"]}[ids[2]] == {}
    # kept just after (the idle time is seconds away): one view, its queries
    assert s.worker_count("http", "jmap_views") == 1
    assert s.worker_count("http", "jmap_queries") >= 1
    wait_until(lambda: s.worker_count("http", "jmap_views") == 0
               and s.worker_count("http", "jmap_queries") == 0,
               what="the idle worker's view and queries freed")
    assert answers() == before
    # A client with a push stream open (the webmail, all day) keeps its view past the
    # idle time (its next click must not read the whole account again); its query
    # results still go. One worker: the stream and the requests meet there.
    conn = http.client.HTTPSConnection("127.0.0.1", j.port, context=tls_context(), timeout=20)
    conn.request("GET", "/jmap/eventsource/?types=*&closeafter=no&ping=0",
                 headers={"Authorization": j.auth, "Accept": "text/event-stream"})
    stream = conn.getresponse()
    assert stream.status == 200
    assert "event: state" in sse_event(stream.readline)
    assert answers() == before
    wait_until(lambda: s.worker_count("http", "jmap_queries") == 0,
               what="the query results freed while the stream is open")
    assert s.worker_count("http", "jmap_views") == 1
    conn.close()
    wait_until(lambda: s.worker_count("http", "jmap_views") == 0,
               what="the view freed once the stream is gone")


def test_cold_worker_answers_as_the_view(wharf_factory):
    """A worker that keeps no view of the account (a first sign-in, or after
    jmap_cache_idle) answers a mail list's queries and Thread/get from the
    store's messages_date index (jmap_cold_reads) instead of reading the whole
    view first; the answers are the view's, byte for byte: an Email's date and
    keywords are its first copy's (lowest mailbox, then UID) even when another
    copy's differ, its mailboxes all its copies', receivedAt's ties go by
    arrival then id, collapseThreads keeps the newest of each thread and
    total counts threads. Before that, a webmail's start-up queries on a
    fresh worker are answered from the store's indexes (jmap_index_answers:
    a walk of the lowest mailbox, keyword candidates, a small folder, the
    threads asked for), with the same answers, and the view is then read in
    the worker's builder thread (jmap_view_builds)."""
    s = wharf_factory(enable={"https", "imaps"},
                      extra={"http_auth_failure_delay": "0", "jmap_cache_idle": "1h",
                             "workers": "1"}).start()
    s.wharf("domain", "add", "example.test")
    s.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    j = Jmap(s)
    inbox, archive = j.mailbox("inbox"), j.mailbox("archive")
    m = imaplib.IMAP4_SSL("127.0.0.1", s.ports["imaps"], ssl_context=tls_context(), timeout=20)
    m.login(USER, PASSWORD)

    def msg(name, subject, refs=None):
        head = (f"From: Bob <bob@example.test>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
                f"Message-ID: <{name}@example.test>\r\n")
        if refs:
            head += f"In-Reply-To: <{refs}@example.test>\r\nReferences: <{refs}@example.test>\r\n"
        return (head + f"\r\n{name}\r\n").encode()

    def put(folder, data, at, flags=""):
        typ, _ = m.append(folder, flags, imaplib.Time2Internaldate(1_800_000_000 + at), data)
        assert typ == "OK"

    def eid(data):
        return "e" + hashlib.sha256(data).hexdigest()

    a1, a2, a3 = msg("a1", "plans"), msg("a2", "Re: plans", "a1"), msg("a3", "Re: plans", "a2")
    b1, c1, d1, e1, f1 = (msg(n, "note " + n) for n in ("b1", "c1", "d1", "e1", "f1"))
    put("INBOX", a1, 100)
    put("INBOX", a2, 200)
    put("INBOX", b1, 200)  # receivedAt ties: arrival, then id
    put("INBOX", a3, 200)
    put("INBOX", c1, 50, "(\\Seen)")
    put("INBOX", d1, 150)  # two copies in one mailbox: the first UID's date and keywords
    put("INBOX", d1, 300, "(project)")
    put("INBOX", e1, 120)  # a copy elsewhere with its own keyword and date
    put("Archive", e1, 400, "(project \\Flagged)")
    put("Archive", f1, 10, "(project)")
    m.logout()

    def q(flt, **kw):
        return ["Email/query", {"accountId": j.account, "filter": flt,
                                "sort": [{"property": "receivedAt",
                                          "isAscending": kw.pop("asc", False)}], **kw}]

    calls = [
        q({"operator": "AND", "conditions": [{"inMailbox": inbox}, {"notKeyword": "project"}]},
          collapseThreads=True, calculateTotal=True, limit=50),
        q({"operator": "AND", "conditions": [{"inMailbox": inbox}, {"notKeyword": "$seen"}]},
          asc=True, calculateTotal=True),
        q({"operator": "AND", "conditions": [{"inMailbox": inbox}, {"notKeyword": "project"}]},
          collapseThreads=True, calculateTotal=True, position=1, limit=2),
        q({"hasKeyword": "project"}, limit=1),
        q({"hasKeyword": "PROJECT"}, calculateTotal=True),
        q({"hasKeyword": "$flagged"}),
        q(None, collapseThreads=True, calculateTotal=True),
        q(None, asc=True),
        q({"inMailbox": archive}, calculateTotal=True),
    ]
    calls = [[n, a, f"q{i}"] for i, (n, a) in enumerate(calls)]
    calls += [["Email/get", {"accountId": j.account, "properties": ["threadId", "keywords",
                                                                     "receivedAt", "mailboxIds"],
                             "#ids": {"resultOf": "q7", "name": "Email/query", "path": "/ids"}},
               "g"],
              ["Thread/get", {"accountId": j.account,
                              "#ids": {"resultOf": "g", "name": "Email/get",
                                       "path": "/list/*/threadId"}}, "t"]]

    def answers(these=None):
        return j.api(these or calls)["methodResponses"]

    # first, what a webmail's start-up asks (a page of the lowest mailbox, keyword queries,
    # a small folder, the page's threads): from the store's indexes, neither account read
    first = [[n, dict(a, limit=a.get("limit", 50)), t] for n, a, t in calls
             if t in ("q0", "q1", "q2", "q3", "q4", "q5", "q8")] + [
        # a page that is not the whole result: walked, the total counted by the store
        q({"operator": "AND", "conditions": [{"inMailbox": inbox}, {"notKeyword": "Other"}]},
          collapseThreads=True, calculateTotal=True, limit=2) + ["q9"],
        ["Email/get", {"accountId": j.account, "properties": ["threadId"],
                       "#ids": {"resultOf": "q0", "name": "Email/query", "path": "/ids"}}, "g0"],
        ["Thread/get", {"accountId": j.account,
                        "#ids": {"resultOf": "g0", "name": "Email/get",
                                 "path": "/list/*/threadId"}}, "t0"]]
    def counts():
        return {k: s.worker_count("http", "jmap_" + k)
                for k in ("cold_reads", "view_reads", "index_answers", "view_builds")}

    n0 = counts()
    by_index = answers(first)
    # eight: q2 is q0's query (another page), whose whole result the walk read and kept
    # (view_builds: the thread may be done already)
    assert dict(counts(), view_builds=0) == dict(n0, index_answers=n0["index_answers"] + 8,
                                                 view_builds=0)
    q9 = {t: a for _, a, t in by_index}["q9"]
    assert q9["ids"] == [eid(a3), eid(b1)] and q9["total"] == 5
    # meanwhile the builder's thread reads the view, which the next request finds
    wait_until(lambda: counts()["view_builds"] == n0["view_builds"] + 1, what="view built")
    assert answers(first) == by_index
    assert counts() == dict(n0, index_answers=n0["index_answers"] + 8,
                            view_builds=n0["view_builds"] + 1)
    # a fresh worker again: queries the indexes do not answer (no filter), asked before any
    # they do (whose answers start the builder, which such a query would then wait for)
    s.stop()
    s.start()
    n0 = counts()
    cold_calls = [c for c in calls if c[2] in ("q6", "q7", "g", "t")]
    cold = answers(cold_calls)
    assert counts() == dict(n0, cold_reads=n0["cold_reads"] + 1)
    # the same calls once the worker holds the view (read for a sort only it answers)
    j.ok("Email/query", {"sort": [{"property": "size"}]})
    assert counts() == dict(n0, cold_reads=n0["cold_reads"] + 1, view_reads=n0["view_reads"] + 1)
    assert answers(cold_calls) == cold
    assert answers(first) == by_index
    r = {t: a for _, a, t in answers()}
    # what the view's rules give, checked once by hand
    newest_first = [eid(x) for x in (a3, b1, a2, d1, e1, a1, c1)]
    assert r["q6"]["ids"] == [eid(x) for x in (a3, b1, d1, e1, c1, f1)]
    assert r["q6"]["total"] == 6
    assert r["q0"]["ids"] == [eid(x) for x in (a3, b1, d1, e1, c1)] and r["q0"]["total"] == 5
    assert r["q2"]["ids"] == [eid(x) for x in (b1, d1)] and r["q2"]["total"] == 5
    assert r["q3"]["ids"] == [eid(f1)]
    assert r["q4"]["ids"] == [eid(f1)] and r["q4"]["total"] == 1
    assert r["q5"]["ids"] == []
    assert r["q1"]["ids"] == list(reversed([i for i in newest_first if i != eid(c1)]))
    assert r["q8"]["ids"] == [eid(e1), eid(f1)]
    got = {e["id"]: e for e in r["g"]["list"]}
    assert got[eid(e1)]["keywords"] == {} and sorted(got[eid(e1)]["mailboxIds"]) == sorted(
        [inbox, archive])
    threads = {t["id"]: t["emailIds"] for t in r["t"]["list"]}
    assert threads[got[eid(a1)]["threadId"]] == [eid(a1), eid(a2), eid(a3)]
    idx = {t: a for _, a, t in by_index}
    for t in ("q0", "q1", "q2", "q3", "q4", "q5", "q8"):
        assert (idx[t]["ids"], idx[t].get("total")) == (r[t]["ids"], r[t].get("total")), t

