"""Link state over the bridgeheads' SMTP sessions (doc/routing.md, "Link state over SMTP").

Two groups whose bridgeheads reach each other only on their SMTP ports: the
691 addresses the organization names for them are dead ports, and the second
server gets the configuration as a file, not from a 691 seed. Connectors with
`--ls-transport smtp` make a1's routing process dial b1's SMTP port, EHLO,
STARTTLS, EHLO, `X-WHARF-LINKSTATE 1 a1`, and run the 691 peering inside.
A third "server" c1 of the configuration is a recording SMTP peer that is
not Wharf: it must never see the verb. Every wait polls `wharf routes --json`
or the logs against a deadline.
"""
import os
import re
import shutil
import smtplib
import socket
import ssl
import struct
import threading

from conftest import free_port, self_signed, tls_context, wait_until
from prometheus import sample, scrape
from smtp_helpers import Raw
from orgharness import TIMERS, converged, org_show, route_to, routes
from test_routing import AUTH, ERROR, HELLO, closed, error_code, field, frame, read_frames


class Recorder:
    """A minimal SMTP server that is not Wharf (EHLO, STARTTLS, QUIT; 500 to the rest),
    keeping every command line it gets."""

    def __init__(self, cert, key):
        self.lines = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.sessions = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        self.sessions += 1
        c.settimeout(20)
        f = c.makefile("rwb")
        try:
            f.write(b"220 recorder ESMTP\r\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    return
                self.lines.append(line.decode(errors="replace").strip())
                verb = line.split(b" ")[0].strip().upper()
                if verb == b"EHLO":
                    f.write(b"250-recorder\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                elif verb == b"STARTTLS":
                    f.write(b"220 go ahead\r\n")
                    f.flush()
                    c = self.ctx.wrap_socket(c, server_side=True)
                    f = c.makefile("rwb")
                    continue
                elif verb == b"QUIT":
                    f.write(b"221 bye\r\n")
                    f.flush()
                    return
                else:
                    f.write(b"500 5.5.2 command not recognized\r\n")
                f.flush()
        except (OSError, ssl.SSLError):
            return
        finally:
            c.close()

    def stop(self):
        self.sock.close()


class Inner:
    """The TLS session the routing processes run inside the SMTP session's TLS after 220
    (Python's memory BIOs over the outer TLS socket)."""

    def __init__(self, outer):
        self.outer = outer
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = tls_context().wrap_bio(self.inc, self.out)
        self._pump(self.obj.do_handshake)

    def _flush(self):
        data = self.out.read()
        if data:
            self.outer.sendall(data)

    def _pump(self, op):
        while True:
            try:
                r = op()
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                chunk = self.outer.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed")
                self.inc.write(chunk)

    def settimeout(self, t):
        self.outer.settimeout(t)

    def sendall(self, b):
        self._pump(lambda: self.obj.write(b))

    def recv(self, n=65536):
        return self._pump(lambda: self.obj.read(n))


def ehlo_keywords(reply_text):
    return [ln[4:].split(" ")[0].upper() for ln in reply_text.split("\n")[1:]]


def linkstate_session(w, name="zz9"):
    """An SMTP session to w's SMTP port up to the 220 of X-WHARF-LINKSTATE."""
    r = Raw(w.ports["smtp"], host=w.host)
    assert r.reply()[0] == 220
    r.cmd("EHLO client.test")
    assert r.cmd("STARTTLS")[0] == 220
    r.sock = tls_context().wrap_socket(r.sock)
    r.cmd("EHLO client.test")
    code, text = r.cmd(f"X-WHARF-LINKSTATE 1 {name}")
    assert code == 220, text
    return r


def peers_by_transport(st):
    return {p["name"]: p["transport"] for p in st["peers"]}


def conn_state(st, group, conn):
    rec = st["records"].get(group) or {}
    return next((c["state"] for c in rec.get("connectors", []) if c["name"] == conn), None)


def test_link_state_over_smtp_with_691_blocked(wharf_factory):
    # a1's SMTP sessions, the link state's among them, leave from 127.0.0.2
    a1 = wharf_factory("a1", host="127.0.0.2", enable=["routing", "smtp", "https"],
                       extra={**TIMERS, "mta_source_address": "127.0.0.2"})
    b1 = wharf_factory("b1", host="127.0.0.3", enable=["routing", "smtp"], extra=TIMERS)
    # 691 between the groups is blocked: the addresses the organization names are dead ports
    dead_a, dead_b, dead_c = (f"{h}:{free_port(h)}" for h in ("127.0.0.2", "127.0.0.3",
                                                                "127.0.0.4"))
    out = a1.wharf("org", "create", "acme", "--server", "a1", "--group", "rg-a",
                   "--address", dead_a).stdout.decode()
    key = out.split()[-1]
    a1.wharf("org", "group", "add", "rg-b")
    a1.wharf("org", "group", "add", "rg-c")
    a1.wharf("org", "server", "add", "b1", "--group", "rg-b", "--address", dead_b,
             "--smtp", f"{b1.host}:{b1.ports['smtp']}")
    for name, frm, to, src, tgt in (("ab", "rg-a", "rg-b", "a1", "b1"),
                                    ("ba", "rg-b", "rg-a", "b1", "a1")):
        a1.wharf("org", "connector", "add", name, "--from", frm, "--to", to, "--cost", "1",
                 "--source", src, "--target", tgt, "--ls-transport", "smtp")
    # b1 joins with a seed it cannot reach; the configuration comes as a file
    b1.wharf("org", "join", "acme", "--key", key, "--server", "b1", "--peer", dead_a)
    src, dst = a1.data / "routing" / "org.json", b1.data / "routing" / "org.json"
    shutil.copyfile(src, dst)
    st = os.stat(b1.data / "routing" / "org.key")
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, 0o600)
    a1.start()
    b1.start()
    # the keyword is offered once b1's routing process listens on run/routing.sock,
    # which may come after the smtp listener the start waits for
    sock = b1.data / "run" / "routing.sock"
    wait_until(sock.is_socket, what="b1's routing process listening")

    # the transcript: the keyword only after STARTTLS
    r = Raw(b1.ports["smtp"], host=b1.host)
    assert r.reply()[0] == 220
    code, text = r.cmd("EHLO client.test")
    assert code == 250 and "STARTTLS" in ehlo_keywords(text)
    assert "X-WHARF-LINKSTATE" not in ehlo_keywords(text)
    assert r.cmd("X-WHARF-LINKSTATE 1 zz9")[0] == 530  # before STARTTLS
    assert r.cmd("STARTTLS")[0] == 220
    r.sock = tls_context().wrap_socket(r.sock)
    code, text = r.cmd("EHLO client.test")
    assert "X-WHARF-LINKSTATE 1" in text.split("\n")[ehlo_keywords(text).index(
        "X-WHARF-LINKSTATE") + 1]
    r.cmd("QUIT")
    r.sock.close()

    # a1 and b1 peer over SMTP only and agree; a1 routes to rg-b over ab
    def smtp_only(name, st):
        other = "b1" if name == "a1" else "a1"
        return peers_by_transport(st) == {other: "smtp"} and \
            (name != "a1" or (route_to(st, "rg-b") or {}).get("path") == ["ab"])
    servers = {"a1": a1, "b1": b1}
    sts = wait_until(converged(servers, smtp_only), 30, what="a peering over SMTP")
    since = sts["a1"]["peers"][0]["since"]
    assert "X-WHARF-LINKSTATE accepted" in a1.log()
    assert "link state of a1 handed to the routing process" in b1.log()
    assert re.search(r"connect from \S*\[127\.0\.0\.2\]", b1.log()), "a1's source address"
    assert sts["a1"]["peers"][0]["addr"] == f"{b1.host}:{b1.ports['smtp']}"
    text = a1.wharf("routes").stdout.decode()
    assert any(ln.split()[:1] == ["b1"] and "smtp" in ln.split() for ln in text.splitlines()), text
    m = scrape(a1)
    assert sample(m, "wharf_routing_peers") == 1 and sample(m, "wharf_routing_peers_smtp") == 1

    # a change made in group B reaches group A over the SMTP peering
    # the serial the change writes, not state.json's: b1's routing process may not have
    # read the new org.json yet, and then the old serial would never match again
    serial = org_show(b1)["config"]["serial"] + 1
    b1.wharf("org", "connector", "disable", "ba")
    wait_until(converged(servers, lambda n, st: st["config_serial"] == serial
                         and conn_state(st, "rg-b", "ba") == "ADMIN_DOWN"), 20,
               what="b1's change at a1")

    # bad input on the verb: each refused with its code, the server goes on
    r = Raw(b1.ports["smtp"], host=b1.host)
    r.reply()
    assert r.cmd("X-WHARF-LINKSTATE 1 zz9")[0] == 530  # before STARTTLS, even before EHLO
    r.cmd("EHLO client.test")
    r.cmd("STARTTLS")
    r.sock = tls_context().wrap_socket(r.sock)
    r.cmd("EHLO client.test")
    assert r.cmd("MAIL FROM:<x@client.test>")[0] == 250
    code, text = r.cmd("X-WHARF-LINKSTATE 1 zz9")  # inside a transaction
    assert code == 503 and "5.5.1" in text
    assert r.cmd("RSET")[0] == 250
    for bad in ("X-WHARF-LINKSTATE", "X-WHARF-LINKSTATE 2 zz9", "X-WHARF-LINKSTATE 1 a b",
                "X-WHARF-LINKSTATE 1 " + "z" * 65, "X-WHARF-LINKSTATE 1 z/9"):
        code, text = r.cmd(bad)
        assert code == 501 and "5.5.4" in text, (bad, code, text)
    code, text = r.cmd("X-WHARF-LINKSTATE 1 " + "z" * 5000)  # over smtp_max_line_length
    assert code == 500 and "5.5.2" in text
    r.cmd("QUIT")
    r.sock.close()

    # the wrong org key: refused inside, and the connection closed
    r = linkstate_session(b1)
    s = Inner(r.sock)
    s.sendall(frame(HELLO, field("acme") + field("zz9") + field(os.urandom(32))
                    + struct.pack(">Q", 0)))
    s.sendall(frame(AUTH, field(os.urandom(32))))
    frames = read_frames(s)
    assert frames[0][0] == HELLO and error_code(frames) == "AUTH_FAILED"
    assert closed(r.sock)
    r.sock.close()
    # a garbage frame (a header over the limit): ERROR BAD_FRAME and a close
    r = linkstate_session(b1)
    s = Inner(r.sock)
    s.sendall(struct.pack(">IHH", 10 * 1024 * 1024, HELLO, 0))
    assert error_code(read_frames(s)) == "BAD_FRAME"
    assert closed(r.sock)
    r.sock.close()
    # bytes that are not TLS at all after the 220: closed
    r = linkstate_session(b1)
    r.send(b"EHLO again\r\n")
    assert closed(r.sock)
    r.sock.close()

    # a mail transaction on another connection works all along
    body = "From: alice@example.test\r\nTo: bob@elsewhere.test\r\nSubject: s\r\n\r\nhi\r\n"
    with smtplib.SMTP(b1.host, b1.ports["smtp"], timeout=20) as c:
        c.starttls(context=tls_context())
        c.ehlo("client.test")
        assert c.sendmail("alice@example.test", ["bob@elsewhere.test"], body) == {}
    # the real peering was not disturbed, and b1 logged the refusals
    st = routes(a1)
    assert peers_by_transport(st) == {"b1": "smtp"} and st["peers"][0]["since"] == since
    assert st["digest"] == routes(b1)["digest"]
    log = b1.log()
    assert "AUTH_FAILED" in log and "BAD_FRAME" in log


def test_link_state_never_sent_to_a_peer_that_is_not_wharf(wharf_factory):
    """A connector over SMTP to a server that does not offer X-WHARF-LINKSTATE (here a
    recording SMTP peer, as Postfix or Exchange would be): EHLO, STARTTLS, EHLO, and no verb."""
    a1 = wharf_factory("a1", host="127.0.0.2", enable=["routing"], extra=TIMERS)
    self_signed(a1.base / "rec.key", a1.base / "rec.pem", "recorder.test", days=1)
    rec = Recorder(str(a1.base / "rec.pem"), str(a1.base / "rec.key"))
    try:
        a1.wharf("org", "create", "acme", "--server", "a1", "--group", "rg-a",
                 "--address", f"127.0.0.2:{free_port('127.0.0.2')}")
        a1.wharf("org", "group", "add", "rg-c")
        a1.wharf("org", "server", "add", "c1", "--group", "rg-c",
                 "--address", f"127.0.0.4:{free_port('127.0.0.4')}",
                 "--smtp", f"127.0.0.1:{rec.port}")
        a1.wharf("org", "connector", "add", "ac", "--from", "rg-a", "--to", "rg-c", "--cost",
                 "1", "--source", "a1", "--target", "c1", "--ls-transport", "smtp")
        a1.start()
        wait_until(lambda: "does not offer X-WHARF-LINKSTATE" in a1.log(), 20,
                   what="a1 giving up on the recorder")
        verbs = [ln.split(" ")[0].upper() for ln in rec.lines]
        assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], rec.lines
        assert not any("LINKSTATE" in ln.upper() or "LINK2STATE" in ln.upper()
                       for ln in rec.lines), rec.lines
        assert (route_to(routes(a1), "rg-c") or {}).get("reachable") is not True
    finally:
        rec.stop()
