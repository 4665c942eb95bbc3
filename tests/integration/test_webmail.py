"""The webmail (doc/webmail.md) against a real wharfd.

Server side with http.client: its files under /webmail/ with their
headers, the form sign-in (a session cookie checked by the auth process),
the CSRF defence, sign-out. Then the app itself in Debian's chromium,
driven by npm playwright-core under node:test (tests/webmail, installed by
`make deps-test`): mail delivered by smtplib, hostile HTML that must neither
run nor load anything (a recording HTTP server on loopback counts every
request), sending to a second user who sees it arrive live, the settings (out of
office: two messages from one outside sender, one reply at an aiosmtpd peer), sign-out.
"""
import base64
import http.client
import imaplib
import http.server
import json
import shutil
import smtplib
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import pytest

from conftest import WHARF, free_port, sanitizer_env, self_signed, tls_context, wait_until
from test_mta_out import Peer, spool_empty

ALICE = "alice@example.test"
BOB = "bob@example.test"
OLGA = "olga@outside.test"  # outside senders: their replies go to the aiosmtpd peer
PAT = "pat@outside.test"
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "src" / "http" / "webmail"
BROWSER_TESTS = ROOT / "tests" / "webmail"


@pytest.fixture
def server(wharf_factory):
    # outside.test is an aiosmtpd peer that takes everything: the mail the mta sends out
    outside = Peer(pytest.importorskip("aiosmtpd.controller"), lambda attempt, address: None)
    s = wharf_factory(enable={"https", "smtp", "imaps"},
                      extra={"http_auth_failure_delay": "0", "webmail_dir": str(APP),
                             "test_hooks": "yes",  # wharf token age: the app password rule
                             "smtp_max_message_size": "64M",
                             "transport_routes": f"outside.test=[127.0.0.1]:{outside.port} none"}
                      ).start()
    s.outside = outside
    s.wharf("domain", "add", "example.test")
    for user in (ALICE, BOB):
        s.wharf("user", "add", user, "--password-stdin", input=PASSWORD.encode() + b"\n")
    yield s
    outside.stop()


def request(server, method, path, body=None, headers=None):
    c = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], context=tls_context(),
                                    timeout=20)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def origin(server):
    return f"https://127.0.0.1:{server.ports['https']}"


def sign_in(server, user=ALICE, password=PASSWORD):
    body = json.dumps({"username": user, "password": password})
    return request(server, "POST", "/webmail/session", body,
                   {"Content-Type": "application/json", "Origin": origin(server),
                    "Host": f"127.0.0.1:{server.ports['https']}"})


def imap_as(server, user):
    """An IMAP connection to server, logged in as user (a context manager)."""
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(user, PASSWORD)
    return m


def unseen_one(m, subject):
    """The one message of the selected mailbox with subject is there, and unread."""
    [n] = m.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
    assert b"\\Seen" not in m.fetch(n, "(FLAGS)")[1][0]


def cookie_of(r):
    v = r.getheader("Set-Cookie")
    return v.split(";")[0]


def test_app_files_and_their_headers(server):
    r, data = request(server, "GET", "/webmail/")
    assert r.status == 200 and b'<script type="module" src="app.js">' in data
    csp = r.getheader("Content-Security-Policy")
    assert "script-src 'self';" in csp and "unsafe-inline'; img" in csp  # styles only
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Content-Type") == "text/html; charset=utf-8"
    assert r.getheader("Cache-Control") == "no-cache"
    etag = r.getheader("ETag")
    r, data = request(server, "GET", "/webmail/index.html", headers={"If-None-Match": etag})
    assert r.status == 304 and data == b""
    r, data = request(server, "GET", "/webmail/vendor/purify.js")
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/javascript")
    assert b"DOMPurify" in data
    # the German catalog (doc/webmail.md, "Languages"): served like the app's modules
    r, data = request(server, "GET", "/webmail/lang-de.js")
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/javascript")
    assert "'Sign out': 'Abmelden'".encode() in data
    for bad in ("/webmail/nothing.js", "/webmail/../wharf.conf", "/webmail/vendor/",
                "/webmail/package.json", "/webmailx", "/webmail/node_modules/dompurify/package.json"):
        r, _ = request(server, "GET", bad)
        assert r.status in (400, 404), bad
    for entry in ("/webmail", "/"):  # https://HOST/ is the webmail
        r, _ = request(server, "GET", entry)
        assert r.status == 302 and r.getheader("Location") == "/webmail/", entry
    # ... the root only: other paths are still unknown, other methods not allowed
    for method in ("GET", "POST"):  # not 405: the root route is not a prefix of every path
        r, _ = request(server, method, "/nothing-here", "x" if method == "POST" else None)
        assert r.status == 404, method
    r, _ = request(server, "POST", "/", "x")
    assert r.status == 405 and "GET" in r.getheader("Allow")


def test_sign_in_cookie_csrf_and_sign_out(server):
    r, data = sign_in(server, password="wrong")
    assert r.status == 401 and r.getheader("Set-Cookie") is None
    assert r.getheader("WWW-Authenticate") is None  # a browser would prompt
    # Login CSRF: another origin cannot sign the browser in.
    r, _ = request(server, "POST", "/webmail/session",
                   json.dumps({"username": ALICE, "password": PASSWORD}),
                   {"Origin": "https://evil.example"})
    assert r.status == 403 and r.getheader("Set-Cookie") is None

    r, data = sign_in(server)
    assert r.status == 200, data
    set_cookie = r.getheader("Set-Cookie")
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attr in set_cookie
    cookie = cookie_of(r)
    token = cookie.split("=", 1)[1]
    assert token.startswith("whs_") and len(token) > 60
    body = json.loads(data)
    assert body["account"] == ALICE and len(body["csrf"]) == 64
    assert token not in data.decode()
    # The auth process keeps a hash of it, as for `wharf token`; never the secret.
    tokens = subprocess.run(["cat", str(server.data / "auth" / "tokens")], capture_output=True,
                            text=True).stdout
    assert "\tsession" in tokens and token.split("_", 2)[2] not in tokens
    listed = json.loads(server.wharf("token", "list", "--json").stdout)
    assert [t["kind"] for t in listed] == ["session"]

    csrf = body["csrf"]
    good = {"Cookie": cookie, "X-Wharf-CSRF": csrf, "Origin": origin(server),
            "Host": f"127.0.0.1:{server.ports['https']}", "Content-Type": "application/json"}
    r, data = request(server, "GET", "/.well-known/jmap", headers={"Cookie": cookie})
    assert r.status == 200 and json.loads(data)["username"] == ALICE
    # the sign-in's answer carried that session resource and the Inbox's id: the page's
    # first JMAP request is its only one, even in a browser that never signed in here
    assert body["jmapSession"] == json.loads(data), body
    r, data = request(server, "GET", "/webmail/session", headers={"Cookie": cookie})
    assert r.status == 200 and json.loads(data)["csrf"] == csrf
    assert "jmapSession" not in json.loads(data)  # only a sign-in's answer
    call = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                       "methodCalls": [["Core/echo", {"x": 1}, "0"],
                                       ["Mailbox/get", {"accountId": body["jmapSession"][
                                           "primaryAccounts"]["urn:ietf:params:jmap:mail"],
                                           "properties": ["role"]}, "1"]]})
    r, data = request(server, "POST", "/jmap/api/", call, good)
    assert r.status == 200
    [inbox] = [m["id"] for m in json.loads(data)["methodResponses"][1][1]["list"]
               if m["role"] == "inbox"]
    assert body["inbox"] == inbox, body
    # A state-changing request with the cookie but without the CSRF token, with a wrong one,
    # or from another origin is refused before anything runs.
    for drop, value in (("X-Wharf-CSRF", None), ("X-Wharf-CSRF", "0" * 64),
                        ("Origin", None), ("Origin", "https://evil.example")):
        h = dict(good)
        if value is None:
            del h[drop]
        else:
            h[drop] = value
        r, _ = request(server, "POST", "/jmap/api/", call, h)
        assert r.status == 403, (drop, value)

    # The user's own app passwords, from the session only: made (the secret this once),
    # listed without the sessions and without any hash, revoked; nobody else's.
    r, data = request(server, "POST", "/webmail/tokens", b"", good)
    assert r.status == 201, data
    token = json.loads(data)["token"]
    assert token.startswith("wht_")
    tid = token.split("_")[1]
    r, data = request(server, "GET", "/webmail/tokens", headers={"Cookie": cookie})
    assert r.status == 200, data
    [mine] = json.loads(data)["tokens"]
    assert mine["id"] == tid and mine["kind"] == "app" and set(mine) <= {"id", "account", "created", "kind"}
    assert token.split("_", 2)[2] not in data.decode()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()}
    for h in (auth, {"Authorization": f"Bearer {token}"}):  # an app password makes none
        r, _ = request(server, "POST", "/webmail/tokens", b"", h)
        assert r.status == 403, h
    for drop in ("X-Wharf-CSRF", "Origin"):  # the CSRF defence of every state change
        h = {k: v for k, v in good.items() if k != drop}
        r, _ = request(server, "POST", "/webmail/tokens", b"", h)
        assert r.status == 403, drop
    theirs = server.wharf("token", "add", BOB).stdout.decode().strip().split("_")[1]
    r, data = request(server, "GET", "/webmail/tokens", headers={"Cookie": cookie})
    assert theirs not in data.decode()
    r, _ = request(server, "DELETE", f"/webmail/tokens/{theirs}", None, good)
    assert r.status == 404
    r, _ = request(server, "DELETE", f"/webmail/tokens/{tid}", None, good)
    assert r.status == 204
    r, _ = request(server, "GET", "/.well-known/jmap", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401
    server.wharf("token", "revoke", theirs)

    # Sign-out revokes the session at the auth process: the old cookie is refused after.
    r, _ = request(server, "POST", "/webmail/signout", b"", good)
    assert r.status == 204 and "Max-Age=0" in r.getheader("Set-Cookie")
    r, _ = request(server, "GET", "/.well-known/jmap", headers={"Cookie": cookie})
    assert r.status == 401 and r.getheader("WWW-Authenticate") is None
    r, _ = request(server, "POST", "/jmap/api/", call, good)
    assert r.status == 401
    assert json.loads(server.wharf("token", "list", "--json").stdout) == []


# ---- the app in a real browser ----

class Recorder(http.server.BaseHTTPRequestHandler):
    """Records the path of every request; GET /_log answers the list (JSON)."""
    seen = []

    def do_GET(self):
        if self.path == "/_log":
            body = json.dumps(Recorder.seen).encode()
        else:
            Recorder.seen.append(self.path)
            body = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def recorder(tmp):
    """A loopback HTTPS server (a page on https would upgrade or block plain http images)."""
    self_signed(tmp / "rec.key", tmp / "rec.crt", "127.0.0.1", days=1)
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "rec.crt", tmp / "rec.key")
    Recorder.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"https://127.0.0.1:{srv.server_address[1]}"


def hostile_html(rec):
    return f"""<html><head><meta http-equiv="refresh" content="0;url={rec}/refresh">
<link rel="stylesheet" href="{rec}/link.css"><base href="{rec}/base/">
<style>body {{ background: url({rec}/style.png); }} @import url({rec}/import.css);</style>
<script>parent.pwned = 1; new Image().src = "{rec}/script";</script></head>
<body onload="parent.pwned = 2">
<p>Figures attached, see <a href="https://example.invalid/report">the report</a>.</p>
<img src="{rec}/img.png" alt="chart" onerror="parent.pwned = 3">
<img srcset="{rec}/srcset.png 1x" alt="">
<div style="background-image: url('{rec}/css.png')">styled</div>
<a href="javascript:parent.pwned=4">click me</a>
<form action="{rec}/form" method="post"><input name="password"><button>Log in</button></form>
<svg><image href="{rec}/svg.png"/><script>parent.pwned = 5</script></svg>
<iframe src="{rec}/frame"></iframe>
<video poster="{rec}/poster.png"></video>
<table background="{rec}/table.png"><tr><td>cell</td></tr></table>
</body></html>"""


def deliver(server, subject, body, subtype="plain", frm=f"Bob <{BOB}>", headers=""):
    msg = (f"From: {frm}\r\nTo: {ALICE}\r\nSubject: {subject}\r\n{headers}"
           f"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/{subtype}; charset=utf-8\r\n\r\n{body}\r\n")
    deliver_raw(server, msg)


def deliver_raw(server, msg):
    if isinstance(msg, str):
        msg = msg.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=120) as s:
        s.sendmail(BOB, [ALICE], msg)


def bad_input():
    """The issue's bad input: a 50 MB message, one of 5,000 MIME parts, a 1 MB single-line
    HTML body (quoted-printable: SMTP lines stay short), malformed charsets."""
    head = (f"From: Eve <eve@example.test>\r\nTo: {ALICE}\r\n"
            "Date: Sat, 05 Dec 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n")
    blob = base64.encodebytes(bytes(range(256)) * (37 * 4096)).replace(b"\n", b"\r\n")  # 50 MB
    big = (head + "Subject: Survey data (big)\r\n"
           'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
           "Content-Type: text/plain; charset=utf-8\r\n\r\nThe survey is attached.\r\n--b\r\n"
           "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
           'Content-Disposition: attachment; filename="survey.bin"\r\n\r\n').encode() \
        + blob + b"--b--\r\n"
    parts = [head + "Subject: Many parts\r\n"
             'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
             "--p\r\nContent-Type: text/plain\r\n\r\nFive thousand parts follow.\r\n"]
    parts += [f"--p\r\nContent-Type: text/plain\r\n"
              f'Content-Disposition: attachment; filename="p{n}.txt"\r\n\r\nPart {n}.\r\n'
              for n in range(1, 5000)]
    many = ("".join(parts) + "--p--\r\n").encode()
    line = "<p>" + "word " * 209715 + "end of the line</p>"  # 1 MB, no line break
    qp = "=\r\n".join(line[i:i + 72] for i in range(0, len(line), 72))
    long_html = (head + "Subject: One long line\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp + "\r\n").encode()
    charsets = (head.encode() + b"Subject: =?x-no-such?B?SGVsbG8=?= bad charsets\r\n"
                b'Content-Type: multipart/mixed; boundary="c"\r\n\r\n'
                b'--c\r\nContent-Type: text/plain; charset="x-no-such"\r\n'
                b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 au lait, unknown charset\r\n"
                b"--c\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n\r\nBroken \xff\xfe UTF-8\r\n--c--\r\n")
    return [big, many, long_html, charsets]


def png_2x2():
    """A 2x2 red PNG, for an inline cid: image."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def related_html(rec):
    """HTML with an inline cid: image (multipart/related) and one remote image."""
    png = base64.encodebytes(png_2x2()).decode()
    return (f"From: Dana <dana@example.test>\r\nTo: {ALICE}\r\nSubject: Site plan\r\n"
            "Date: Sat, 05 Dec 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/related; boundary="rel"\r\n\r\n'
            "--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            '<p>The plan: <img src="cid:plan@example.test" alt="plan"> and the view: '
            f'<img src="{rec}/dana.png" alt="view"></p>\r\n'
            "--rel\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-ID: <plan@example.test>\r\n"
            'Content-Disposition: inline; filename="plan.png"\r\n\r\n'
            f"{png}--rel--\r\n")


def out_of_office_replies_once(server):
    """The browser turned out-of-office on (VacationResponse): two messages from one outside
    sender get one reply, sent out by the mta to the outside peer."""
    def ask(frm, subject):
        return (f"From: <{frm}>\r\nTo: Alice <{ALICE}>\r\nSubject: {subject}\r\n"
                f"Message-ID: <{subject.replace(' ', '.')}@outside.test>\r\n\r\nAre you in?\r\n")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.sendmail(OLGA, [ALICE], ask(OLGA, "first question"))
        c.sendmail(OLGA, [ALICE], ask(OLGA, "second question"))
        c.sendmail(PAT, [ALICE], ask(PAT, "pat asks"))  # last: a second reply to Olga is before

    def to(who):
        return [e for e in server.outside.envelopes if e[1] == [who]]
    wait_until(lambda: to(PAT) and spool_empty(server), what="the reply to pat, the queue empty")
    replies = to(OLGA)
    assert len(replies) == 1, "one reply per sender"
    mail_from, _, raw = replies[0]
    assert mail_from in ("", "<>")
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Away this week" and msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<first.question@outside.test>"
    assert "Back on Monday." in msg.get_body(("plain",)).get_content()


def rich_text_reply(msg):
    """Bob's reply in rich text, as Bob's IMAP client gets it: multipart/alternative of a
    text/plain part derived from the HTML and the HTML, cleaned (DOMPurify) before it left."""
    assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
    [text, html] = msg.get_payload()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    t = text.get_content().replace("\r\n", "\n")
    h = html.get_content()
    assert t.startswith("Count me in\n- ham\n- cheese\nmenu <https://example.org/menu>"), t
    assert "\n> Sandwiches at noon, by the crane.\n" in t and "<" not in t.split("menu <", 1)[0], t
    assert "<b>Count me in</b>" in h and "<li>ham</li><li>cheese</li>" in h, h
    assert '<a href="https://example.org/menu">menu</a>' in h and "<blockquote>" in h, h
    assert "<b>pasted</b>" in h and "\npasted" in t and "styled" in h and "old" in t
    for bad in ("onclick", "style=", "<font", "<img", "<script", "alert(", "example.invalid"):
        assert bad not in h and bad not in t, bad


def run_browser_test(server, chromium, name, extra=None):
    """tests/webmail/NAME under node:test against server, every subtest passed; its
    screenshots go to doc/webmail/."""
    shots = ROOT / "doc" / "webmail"
    shots.mkdir(exist_ok=True)
    env = sanitizer_env()  # the wharf command the test runs is the sanitizer build's
    env.update({
        "WEBMAIL_URL": f"{origin(server)}/webmail/",
        "WEBMAIL_ALICE": ALICE, "WEBMAIL_BOB": BOB, "WEBMAIL_PASSWORD": PASSWORD,
        "WEBMAIL_SHOTS": str(shots), "WEBMAIL_CHROMIUM": chromium,
        "WEBMAIL_WHARF": json.dumps([str(WHARF), "-c", str(server.conf)]),
        **(extra or {}),
    })
    r = subprocess.run(["node", "--test", "--test-reporter=tap", name],
                       cwd=BROWSER_TESTS, env=env, capture_output=True, timeout=300)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    print(out)
    assert r.returncode == 0, out
    assert "# fail 0" in out, out


def test_german_catalog_covers_the_app():
    """Every English text of index.html and app.js has its German in lang-de.js, with the
    same placeholders (tests/webmail/catalog.test.mjs: node, no browser, no server)."""
    r = subprocess.run(["node", "--test", "--test-reporter=tap", "catalog.test.mjs"],
                       cwd=BROWSER_TESTS, capture_output=True, timeout=60)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0 and "# fail 0" in out, out


def test_in_chromium(server, tmp_path):
    """Sign in, read, hostile HTML, send to a second user who sees it live, sign out:
    tests/webmail/webmail.test.mjs in Debian's chromium (playwright-core)."""
    chromium = shutil.which("chromium")
    if chromium is None or not (BROWSER_TESTS / "node_modules" / "playwright-core").is_dir():
        pytest.fail("chromium or playwright-core is missing: run `make deps-test`")
    if not (APP / "node_modules" / "dompurify").is_dir():
        pytest.fail("DOMPurify is missing: run `make deps-test` (npm ci in src/http/webmail)")
    srv, rec = recorder(tmp_path)
    try:
        deliver(server, "Quarterly figures", hostile_html(rec), "html")
        deliver(server, "Site visit on Monday", "The crane arrives at 9.\r\nBring boots.")
        deliver_raw(server, related_html(rec))
        for msg in bad_input():
            deliver_raw(server, msg)
        # a conversation of two (In-Reply-To), then three more for sorting and multi-select
        deliver(server, "Scaffolding order", "We need 40 frames by Friday.",
                headers="Message-ID: <scaffold-1@example.test>\r\n")
        deliver(server, "Re: Scaffolding order", "Tuesday works for the delivery.",
                frm="Carol <carol@example.test>",
                headers=f"Cc: Dan <dan@example.test>, Alice <{ALICE.upper()}>\r\n"
                        "Message-ID: <scaffold-2@example.test>\r\n"
                        "In-Reply-To: <scaffold-1@example.test>\r\n"
                        "References: <scaffold-1@example.test>\r\n")
        for n in (7, 8, 9):
            deliver(server, f"Invoice {n}", f"Invoice number {n} is attached.",
                    frm=f"Supplier {10 - n} <billing{n}@example.test>")
        # the directory autocomplete offers: the users and aliases of Alice's domain only
        server.wharf("alias", "add", "sales@example.test", ALICE)
        server.wharf("domain", "add", "other.test")
        server.wharf("alias", "add", "sales@other.test", ALICE)
        run_browser_test(server, chromium, "webmail.test.mjs", {
            "WEBMAIL_RECORDER": rec,
            "WEBMAIL_COOKIE_FILE": str(tmp_path / "cookie"),
            "NODE_TLS_REJECT_UNAUTHORIZED": "0",  # the recorder's own certificate
        })
    finally:
        srv.shutdown()
    # What the browser did is what an IMAP client sees: the dragged message in Archive only,
    # the one marked junk then not junk (and then deleted) in Trash with $NotJunk.
    with imap_as(server, ALICE) as m:
        for box, subject, found in (("Archive", "Quarterly figures", True),
                                    ("INBOX", "Quarterly figures", False),
                                    ("Trash", "Site visit on Monday", True)):
            m.select(box, readonly=True)
            _, data = m.search(None, "SUBJECT", f'"{subject}"')
            assert bool(data[0].split()) == found, (box, subject)
        _, data = m.fetch(data[0].split()[0], "(FLAGS)")
        assert b"$notjunk" in data[0].lower() and b"$junk" not in data[0].lower(), data
        # the folders made, renamed, moved and deleted in the browser
        _, boxes = m.list()
        names = {b.decode().rsplit(' "/" ', 1)[-1].strip('"') for b in boxes}
        assert "Cranes" in names and not {"Projects", "Projects/Crane", "Crane"} & names, names
        # the bulk actions: flagged two of three invoices, one junk, one deleted, and with
        # "select all" the rest read and moved to Archive, the whole conversation with them
        def flags(box, subject):
            m.select(box, readonly=True)
            _, found = m.search(None, "SUBJECT", f'"{subject}"')
            nums = found[0].split()
            return [m.fetch(n, "(FLAGS)")[1][0].decode().lower() for n in nums]
        assert len(flags("Archive", "Scaffolding order")) == 2
        assert all("\\seen" in f for f in flags("Archive", "Scaffolding order"))
        [f] = flags("Archive", "Invoice 9")
        assert "\\flagged" in f and "\\seen" in f, f
        [f] = flags("Junk", "Invoice 8")
        assert "$junk" in f and "\\flagged" not in f, f
        [f] = flags("Trash", "Invoice 7")
        assert "\\flagged" in f, f
        m.select("INBOX", readonly=True)
        assert m.search(None, "ALL")[1][0].split() == []
        # "always load images from this sender": the settings message in Drafts, and no
        # draft left of the message sent
        m.select("Drafts", readonly=True)
        assert m.search(None, "SUBJECT", '"Lunch on the site"')[1][0].split() == []
        [n] = m.search(None, "KEYWORD", "$wharfsettings")[1][0].split()
        body = m.fetch(n, "(BODY.PEEK[TEXT])")[1][0][1].decode()
        settings = json.loads(body)
        assert settings["imagesFrom"] == ["dana@example.test"], body
        assert settings["images"] == "ask" and settings["timeZone"] == "Pacific/Kiritimati", body
    # Bob got Alice's message with her signature and the file she attached
    with imap_as(server, BOB) as m:
        m.select("INBOX", readonly=True)
        [n] = m.search(None, "SUBJECT", '"Lunch on the site"', "NOT", "SUBJECT", '"Re:"')[1][0].split()
        raw = m.fetch(n, "(RFC822)")[1][0][1]
        [n] = m.search(None, "SUBJECT", '"Re: Lunch on the site"')[1][0].split()
        rich = m.fetch(n, "(RFC822)")[1][0][1]
    import email
    import email.policy
    rich_text_reply(email.message_from_bytes(rich, policy=email.policy.default))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert "-- \nAlice\nSite office" in msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    got = {a.get_filename(): a.get_content().replace("\r\n", "\n") for a in msg.iter_attachments()}
    # each with its last line break too (not the delimiter's); the second one was dropped
    assert got == {"menu.txt": "Ham, cheese, tomato.\n", "drinks.txt": "Lemonade.\n"}, got
    # The cookie the browser held before sign-out is refused (another client, http.client).
    cookie = (tmp_path / "cookie").read_text()
    r, _ = request(server, "GET", "/.well-known/jmap", headers={"Cookie": cookie})
    assert r.status == 401
    out_of_office_replies_once(server)  # last: the Inbox is empty above


def test_shared_folders_in_chromium(server):
    """alice shares Team with bob over IMAP (SETACL "lr"), the admin makes a public News:
    bob sees both as sections of his folder tree, opens and reads their messages, finds
    the actions the rights do not allow turned off, sees a message alice gets in Team
    appear live (push), copies Team's message out by drag and drop, makes a folder inside
    Team ("k") but may not rename or delete Team (the controls off, the reason said), moves
    his own message into Team ("i"), deletes in Crew (into alice's shared Trash) and in
    the public Board (no Trash: asked first), and the shares, once taken back, leave the
    tree (tests/webmail/shared.test.mjs in Debian's chromium); IMAP then sees the results."""
    chromium = shutil.which("chromium")
    if chromium is None or not (BROWSER_TESTS / "node_modules" / "playwright-core").is_dir():
        pytest.fail("chromium or playwright-core is missing: run `make deps-test`")
    team = (b"From: Dan <dan@example.test>\r\nTo: alice@example.test\r\n"
            b"Subject: Crane schedule\r\nMessage-ID: <crane-t@example.test>\r\n\r\n"
            b"The crane comes on Tuesday.\r\n")
    news = (b"From: Office <office@example.test>\r\nTo: all@example.test\r\n"
            b"Subject: Site news\r\nMessage-ID: <news@example.test>\r\n\r\nThe canteen opens.\r\n")
    server.wharf("public", "add", "News")
    server.wharf("acl", "set", "#public", "News", "anyone", "lr")
    server.wharf("acl", "set", "#public", "News", ALICE, "lri")
    # Board: bob may remove there, and the public folders have no Trash
    server.wharf("public", "add", "Board")
    server.wharf("acl", "set", "#public", "Board", ALICE, "lri")
    server.wharf("acl", "set", "#public", "Board", BOB, "lrte")
    with imap_as(server, ALICE) as m:
        for box in ("Team", "Private", "Crew"):
            assert m.create(box)[0] == "OK"
        assert m.append("Team", None, None, team)[0] == "OK"
        assert m.append("Private", None, None, news.replace(b"Site news", b"Private"))[0] == "OK"
        assert m.append('"Public Folders/News"', None, None, news)[0] == "OK"
        assert m.append('"Public Folders/Board"', None, None, news.replace(
            b"Site news", b"Board minutes").replace(b"news@", b"board@"))[0] == "OK"
        assert m.append("Crew", None, None, team.replace(b"Crane schedule", b"Crew rota").replace(
            b"crane-t@", b"crew@"))[0] == "OK"
        # Crew: bob may remove ("t", "e"), and put what he deletes in alice's Trash ("i")
        assert m.setacl("Crew", BOB, "lrte")[0] == "OK"
        assert m.setacl("Trash", BOB, "lri")[0] == "OK"
        # read, insert, make subfolders ("i", "k"); no flags, no removal, no rename or delete
        assert m.setacl("Team", BOB, "lrik")[0] == "OK"
    moved = server.base / "team.mbox"  # imported by the browser test while bob looks at Team
    moved.write_bytes(b"From dan@example.test Thu Jan  1 00:00:00 2026\n" + team.replace(
        b"Crane schedule", b"Crane moved").replace(b"crane-t@", b"crane-m@").replace(b"\r\n", b"\n"))
    own = server.base / "bob.mbox"  # bob's own message, which he moves into alice's Team
    own.write_bytes(b"From fay@example.test Thu Jan  1 00:00:00 2026\n"
                    b"From: Fay <fay@example.test>\nTo: bob@example.test\nSubject: Site plan\n"
                    b"Message-ID: <plan-b@example.test>\n\nThe site plan, for the team.\n")
    server.wharf("import", "mbox", BOB, str(own), "INBOX")
    run_browser_test(server, chromium, "shared.test.mjs", {"WEBMAIL_TEAM_MBOX": str(moved)})
    # bob only read: Team's message is still unread for alice, and still there
    with imap_as(server, ALICE) as m:
        m.select("Team", readonly=True)
        unseen_one(m, "Crane schedule")
        # what bob put there: his message, moved in ("i"), and the folder he made ("k")
        assert len(m.search(None, 'SUBJECT "Site plan"')[1][0].split()) == 1
        boxes = [ln.decode() for ln in m.list()[1]]
        assert any(b.endswith('"Team/Plans"') or b.endswith(" Team/Plans") for b in boxes), boxes
        # not deleted
        assert any(b.endswith('"Team"') or b.endswith(" Team") for b in boxes), boxes
        # deleted in Crew: into alice's Trash; in the public Board (no Trash): gone
        m.select("Crew", readonly=True)
        assert m.search(None, "ALL")[1][0] == b""
        m.select("Trash", readonly=True)
        assert len(m.search(None, 'SUBJECT "Crew rota"')[1][0].split()) == 1
        m.select('"Public Folders/Board"', readonly=True)
        assert m.search(None, "ALL")[1][0] == b""
    with imap_as(server, BOB) as m:
        m.select("INBOX", readonly=True)
        # the copy out of Team (unread, as the original) is bob's; his own message left
        unseen_one(m, "Crane schedule")
        assert m.search(None, 'SUBJECT "Site plan"')[1][0] == b""
