"""The admin API under /admin on 443 (doc/admin-api.md) against a real wharfd.

Clients: Python's http.client and curl for the API, imaplib for the proof
that an account made over the API is a real account. Every resource, its
errors (400, 401, 403, 404, 405, 409), and the refusals: nobody without
credentials (401), a plain user (403).
"""
import base64
import http.client
import imaplib
import json
import subprocess

import pytest

from conftest import tls_context

ADMIN = "admin@example.test"
ADMIN_PW = "admin secret 1"
USER = "bob@example.test"
USER_PW = "bob secret 2"


@pytest.fixture
def srv(wharf_factory):
    server = wharf_factory(enable={"https", "imaps"},
                           extra={"admin_accounts": ADMIN, "http_auth_failure_delay": "0"})
    server.start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", ADMIN, "--password-stdin", input=ADMIN_PW.encode() + b"\n")
    server.wharf("user", "add", USER, "--password-stdin", input=USER_PW.encode() + b"\n")
    return server


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def api(server, method, path, body=None, auth=None, raw=None):
    """(status, decoded JSON body or None)."""
    c = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], timeout=60,
                                    context=tls_context())
    headers = {"Authorization": auth or basic(ADMIN, ADMIN_PW)}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        headers["Content-Type"] = "application/json"
    c.request(method, "/admin" + path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read()
    c.close()
    if r.status == 204:
        assert text == b""
        return 204, None
    if r.status == 401:  # the http worker's login layer, as for every route: a challenge
        assert "Basic" in r.getheader("WWW-Authenticate")
        return 401, None
    assert r.getheader("Content-Type") == "application/json", (r.status, text)
    return r.status, json.loads(text)


def test_unauthenticated_is_401_and_plain_user_403(srv):
    out = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                          f"https://127.0.0.1:{srv.ports['https']}/admin/users"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "401"
    st, body = api(srv, "GET", "/users", auth=basic(ADMIN, "wrong password"))
    assert st == 401
    st, body = api(srv, "GET", "/users", auth=basic(USER, USER_PW))
    assert st == 403 and "admin" in body["error"]
    st, body = api(srv, "POST", "/users", {"account": "eve@example.test", "password": "x"},
                   auth=basic(USER, USER_PW))
    assert st == 403
    assert srv.wharf("user", "list", "--json").stdout.count(b"eve@") == 0


def test_domains(srv):
    st, body = api(srv, "GET", "/domains")
    assert st == 200 and {"domain": "example.test", "source": "directory"} in body["domains"]
    st, body = api(srv, "POST", "/domains", {"domain": "other.test"})
    assert (st, body) == (201, {"domain": "other.test"})
    assert b"other.test" in srv.wharf("domain", "list").stdout  # the CLI sees it
    assert f"admin api: user=<{ADMIN}> POST /admin/domains: status 201" in srv.log()
    st, body = api(srv, "POST", "/domains", {"domain": "other.test"})
    assert st == 409 and body["error"]
    st, body = api(srv, "POST", "/domains", {"domain": "not a domain!"})
    assert st == 400
    st, body = api(srv, "POST", "/domains", {"domain": "--json"})
    assert st == 400  # never an option of the command
    st, body = api(srv, "POST", "/domains", {})
    assert st == 400
    st, _ = api(srv, "DELETE", "/domains/other.test")
    assert st == 204
    st, body = api(srv, "DELETE", "/domains/other.test")
    assert st == 404
    st, body = api(srv, "PUT", "/domains")
    assert st == 405


def test_users_and_imap_login(srv):
    new = "carol@example.test"
    st, body = api(srv, "POST", "/users", {"account": new, "password": "first pw",
                                           "quota_bytes": "1G", "quota_messages": 500})
    assert st == 201, body
    assert body["account"] == new and body["quota_bytes"] == 1 << 30
    assert body["quota_messages"] == 500 and "hash" not in json.dumps(body)
    st, body = api(srv, "POST", "/users", {"account": new, "password": "again"})
    assert st == 409
    st, body = api(srv, "POST", "/users", {"account": "dan@nowhere.test", "password": "pw"})
    assert st == 404 and "domain" in body["error"]
    st, body = api(srv, "POST", "/users", {"account": "dan@example.test"})
    assert st == 400 and "password" in body["error"]
    st, body = api(srv, "POST", "/users", raw=b"{not json")
    assert st == 400 and "JSON" in body["error"]
    st, body = api(srv, "GET", "/users")
    assert st == 200 and {u["account"] for u in body["users"]} >= {ADMIN, USER, new}
    st, body = api(srv, "GET", "/users?domain=example.test")
    assert st == 200 and len(body["users"]) == 3
    st, body = api(srv, "GET", "/users/" + new.replace("@", "%40"))
    assert st == 200 and body["account"] == new
    # The account is real: IMAP logs in with the password set over the API.
    with imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=tls_context()) as m:
        assert m.login(new, "first pw")[0] == "OK"
    st, body = api(srv, "PATCH", "/users/" + new, {"password": "second pw", "quota_messages": 7})
    assert st == 200 and body["quota_messages"] == 7 and body["quota_bytes"] == 1 << 30
    with imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=tls_context()) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(new, "first pw")
    with imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=tls_context()) as m:
        assert m.login(new, "second pw")[0] == "OK"
    st, body = api(srv, "PATCH", "/users/" + new, {})
    assert st == 400
    st, body = api(srv, "PATCH", "/users/" + new, {"password": "two\nlines"})
    assert st == 400
    st, body = api(srv, "GET", "/users/" + new + "/mailboxes")
    assert st == 200 and any(f["name"] == "INBOX" for f in body["folders"])
    st, _ = api(srv, "DELETE", "/users/" + new)
    assert st == 204
    st, body = api(srv, "GET", "/users/" + new)
    assert st == 404
    st, body = api(srv, "DELETE", "/users/" + new)
    assert st == 404
    st, body = api(srv, "GET", "/users/nodomain")
    assert st == 400


def test_quotas(srv):
    st, body = api(srv, "GET", "/quotas/" + USER)
    assert st == 200, body
    assert body == {"account": USER, "bytes": 0, "messages": 0, "bytes_used": 0,
                    "messages_used": 0}
    st, body = api(srv, "PUT", "/quotas/" + USER, {"bytes": 1048576, "messages": 10})
    assert st == 200 and body["bytes"] == 1048576 and body["messages"] == 10
    assert b"1M" in srv.wharf("user", "list").stdout
    st, body = api(srv, "PUT", "/quotas/" + USER, {"bytes": -5})
    assert st == 400
    st, body = api(srv, "GET", "/quotas/nobody@example.test")
    assert st == 404
    st, body = api(srv, "GET", "/quotas")
    assert st == 404


def test_aliases(srv):
    st, body = api(srv, "POST", "/aliases", {"address": "sales@example.test",
                                             "targets": [USER, ADMIN]})
    assert st == 201, body
    st, body = api(srv, "GET", "/aliases")
    assert st == 200 and sorted(body["aliases"]["sales@example.test"]) == sorted([USER, ADMIN])
    st, body = api(srv, "POST", "/aliases", {"address": "x@example.test", "targets": []})
    assert st == 400
    st, body = api(srv, "POST", "/aliases", {"address": "x@example.test", "targets": ["-f"]})
    assert st == 400
    st, _ = api(srv, "DELETE", "/aliases/sales@example.test")
    assert st == 204
    st, body = api(srv, "GET", "/aliases?domain=example.test")
    assert st == 200 and "sales@example.test" not in body["aliases"]
    st, body = api(srv, "DELETE", "/aliases/sales@example.test")
    assert st == 404


def test_public_folders_and_acls(srv):
    st, body = api(srv, "POST", "/public", {"name": "Shared"})
    assert st == 201, body
    # it exists already: 409 (like users, domains and aliases), and it is left as it was
    st, body = api(srv, "POST", "/public", {"name": "Shared", "newsgroups": "x.y"})
    assert st == 409 and "exists" in body["error"], body
    st, body = api(srv, "GET", "/public")
    assert st == 200 and [f["name"] for f in body["folders"]] == ["Shared"]
    st, body = api(srv, "PUT", "/acl", {"owner": "#public", "mailbox": "Shared",
                                        "identifier": USER, "rights": "lrs"})
    assert st == 200, body
    st, body = api(srv, "GET", "/acl?owner=%23public&mailbox=Shared")
    assert st == 200 and body["acl"][USER] == "lrs"
    st, body = api(srv, "GET", "/public")
    assert body["folders"][0]["acl"][USER] == "lrs"
    # The ACL is the store's: bob sees the folder over IMAP.
    with imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=tls_context()) as m:
        m.login(USER, USER_PW)
        assert m.select('"Public Folders/Shared"', readonly=True)[0] == "OK"
    st, body = api(srv, "PUT", "/acl", {"owner": "#public", "mailbox": "Shared"})
    assert st == 400
    st, body = api(srv, "GET", "/acl?owner=%23public")
    assert st == 400
    st, _ = api(srv, "DELETE", f"/acl?owner=%23public&mailbox=Shared&identifier={USER}")
    assert st == 204
    st, body = api(srv, "GET", "/acl?owner=%23public&mailbox=Shared")
    assert USER not in body["acl"]
    st, body = api(srv, "GET", "/acl?owner=nobody%40example.test&mailbox=INBOX")
    assert st == 404
    st, _ = api(srv, "DELETE", "/public/Shared")
    assert st == 204
    st, body = api(srv, "GET", "/public")
    assert body["folders"] == []


def test_queue(srv):
    st, body = api(srv, "GET", "/queue")
    assert (st, body) == (200, {"messages": []})
    st, body = api(srv, "GET", "/queue/nexthops")  # the queue by next hop (doc/mta-out.md)
    assert (st, body) == (200, {"next_hops": []})
    st, body = api(srv, "GET", "/queue/ZZZZZZZZZZ")
    assert st == 404
    st, body = api(srv, "POST", "/queue/ALL/flush")
    assert st == 202 and body == {"id": "ALL", "action": "flush"}
    st, body = api(srv, "POST", "/queue/ALL/explode")
    assert st == 404
    st, body = api(srv, "GET", "/queue/-x")
    assert st == 400


def test_status_ports_tokens(srv):
    st, body = api(srv, "GET", "/status")
    assert st == 200 and any(c["name"] == "http" and c["state"] == "running"
                             for c in body["components"])
    st, body = api(srv, "GET", "/ports")
    assert st == 200
    assert body["live"] is True
    row = next(r for r in body["ports"] if r["service"] == "https")
    assert row["state"] == "listening" and row["port"] == srv.ports["https"]
    st, body = api(srv, "GET", "")
    assert st == 200 and "users" in body
    st, body = api(srv, "GET", "/nothing")
    assert st == 404
    for bad in ("/users/%FF", "/users//x", "/users?domain=%C3"):  # not UTF-8, empty name
        st, body = api(srv, "GET", bad)
        assert st == 400 and body["error"], bad
    for bad in ("/users/%00x", "/users?domain=%zz"):  # the request parser's own 400 (http.md)
        c = http.client.HTTPSConnection("127.0.0.1", srv.ports["https"], timeout=60,
                                        context=tls_context())
        c.request("GET", "/admin" + bad, headers={"Authorization": basic(ADMIN, ADMIN_PW)})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 400, bad
    st, body = api(srv, "POST", "/status")
    assert st == 405
    # An admin's plain app token is not an admin credential (it is for JMAP and the like)...
    st, body = api(srv, "POST", "/tokens", {"account": ADMIN})
    assert st == 201 and body["token"].startswith("wht_")
    st, body = api(srv, "GET", "/status", auth="Bearer " + body["token"])
    assert st == 403 and "admin scope" in body["error"], body
    # ... a token made with the admin scope is; revoked, it is nothing.
    st, body = api(srv, "POST", "/tokens", {"account": ADMIN, "scope": "admin"})
    assert st == 201 and body["token"].startswith("wha_")
    bearer = "Bearer " + body["token"]
    st, body = api(srv, "GET", "/status", auth=bearer)
    assert st == 200
    # renamed to the admin prefix, an app token fails the check itself
    st, body = api(srv, "POST", "/tokens", {"account": ADMIN})
    st, _ = api(srv, "GET", "/status", auth="Bearer wha_" + body["token"][4:])
    assert st == 401
    st, body = api(srv, "POST", "/tokens", {"account": ADMIN, "scope": "root"})
    assert st == 400
    st, body = api(srv, "GET", "/tokens")
    assert st == 200 and len(body["tokens"]) == 3
    assert sorted(t["kind"] for t in body["tokens"]) == ["admin", "app", "app"]
    admin_id = next(t["id"] for t in body["tokens"] if t["kind"] == "admin")
    st, _ = api(srv, "DELETE", "/tokens/" + admin_id)
    assert st == 204
    st, body = api(srv, "GET", "/status", auth=bearer)
    assert st == 401
