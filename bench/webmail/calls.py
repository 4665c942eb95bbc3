#!/usr/bin/env python3
"""bench/webmail/calls.py - the webmail's JMAP requests one by one, timed at
the client (wall ms) and at the server (CPU ms of wharfd's http workers, from
/proc/PID/stat: less sensitive to a busy machine than wall time).

usage: calls.py SUPERVISOR_PID PORT USER PASSWORD 'DELIVER COMMAND' [ROUNDS [deliveries]]
  deliveries: only a delivery and the list after it, ROUNDS times (the mean printed)

Each request is the one app.js sends (start-up, a page of the Inbox list,
the list again after a delivery, a folder switch); over one keep-alive HTTP/1.1
connection, so one worker answers all of them, as one browser tab's would.
"""
import base64, http.client, json, os, ssl, subprocess, sys, time

sup, port, user, password, deliver = sys.argv[1:6]
rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 3
TICK = os.sysconf("SC_CLK_TCK")


def workers():
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if s.split(") ")[1].split()[1] == sup and b"http worker" in cmd:
            out.append(int(p))
    return out


def cpu_ms():
    t = 0
    for p in workers():
        with open(f"/proc/{p}/stat") as f:
            x = f.read().split(") ")[1].split()
        t += int(x[11]) + int(x[12])
    return t * 1000 / TICK


ctx = ssl._create_unverified_context()
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx)
auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
        "Content-Type": "application/json"}
c.request("GET", "/.well-known/jmap", headers=auth)
account = json.loads(c.getresponse().read())["primaryAccounts"]["urn:ietf:params:jmap:mail"]
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission"]


def call(calls):
    body = json.dumps({"using": USING, "methodCalls": [[n, {"accountId": account, **a}, t] for n, a, t in calls]})
    t0, c0 = time.monotonic(), cpu_ms()
    c.request("POST", "/jmap/api/", body, auth)
    r = json.loads(c.getresponse().read())
    wall, cpu = (time.monotonic() - t0) * 1000, cpu_ms() - c0
    for n, a, t in r["methodResponses"]:
        if n == "error":
            raise SystemExit(f"{t}: {a}")
    return {t: a for n, a, t in r["methodResponses"]}, wall, cpu


MB = [["Mailbox/get", {"properties": ["name", "role", "parentId", "unreadEmails", "totalEmails", "sortOrder"]}, "m"]]
SETTINGS = [["Email/query", {"filter": {"hasKeyword": "$wharfsettings"}, "limit": 1}, "sq"],
            ["Email/get", {"#ids": {"resultOf": "sq", "name": "Email/query", "path": "/ids"},
                           "properties": ["textBody", "bodyValues"], "fetchTextBodyValues": True}, "sg"]]
PROPS = ["from", "subject", "receivedAt", "keywords", "preview", "hasAttachment", "mailboxIds", "threadId", "size"]


def page(mailbox, n, total):
    return [["Email/query", {"filter": {"operator": "AND", "conditions": [{"inMailbox": mailbox}, {"notKeyword": "$wharfsettings"}]},
                             "sort": [{"property": "receivedAt", "isAscending": False}], "collapseThreads": True,
                             "position": n * 50, "limit": 50, "calculateTotal": total}, "q"],
            ["Email/get", {"#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": PROPS}, "g"],
            ["Thread/get", {"#ids": {"resultOf": "g", "name": "Email/get", "path": "/list/*/threadId"}}, "t"]]


def deliver_one():
    """A new message (its own body: the same bytes twice would be one Email with two
    copies, which no list can bring forward as new mail)."""
    subject = f"calls {time.time_ns()}".encode()
    subprocess.run(deliver, shell=True, check=True,
                   input=b"From: <x@bench.test>\r\nSubject: " + subject + b"\r\n\r\nx\r\n")


def show(name, w, cpu):
    print(f"{name:48} wall {w:7.1f} ms  server cpu {cpu:6.0f} ms", flush=True)


if len(sys.argv) > 7 and sys.argv[7] == "deliveries":
    r, w, cpu = call(MB)
    inbox = [m["id"] for m in r["m"]["list"] if m["role"] == "inbox"][0]
    call(MB + page(inbox, 0, True))
    tw = tc = 0
    for k in range(rounds):
        deliver_one()
        r, w, cpu = call(MB + page(inbox, 0, True))
        print(f"  round {k}: wall {w:.0f} ms, server cpu {cpu:.0f} ms", flush=True)
        tw, tc = tw + w, tc + cpu
    show(f"after a delivery, mean of {rounds}", tw / rounds, tc / rounds)
    rounds = 0
for k in range(rounds):
    r, w, cpu = call(MB)
    show("Mailbox/get", w, cpu)
    boxes = {m["role"] or m["name"]: m["id"] for m in r["m"]["list"]}
    r, w, cpu = call(SETTINGS)
    show("settings (Email/query hasKeyword, Email/get)", w, cpu)
    r, w, cpu = call(page(boxes["inbox"], 0, True))
    show(f"Inbox page 0 (total {r['q']['total']})", w, cpu)
    r, w, cpu = call(page(boxes["inbox"], 1000, False))
    show("Inbox page 1000", w, cpu)
    r, w, cpu = call(page(boxes["Projects"], 0, True))
    show("Projects page 0", w, cpu)
    r, w, cpu = call(page(boxes["inbox"], 0, True))
    show("Inbox page 0 again", w, cpu)
    deliver_one()
    r, w, cpu = call(MB + page(boxes["inbox"], 0, True))
    show("after a delivery: Mailbox/get + Inbox page 0", w, cpu)
    r, w, cpu = call(MB + page(boxes["inbox"], 0, True))
    show("the same again", w, cpu)
