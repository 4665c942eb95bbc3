"""Writes a Dovecot-style Maildir++ of N messages for bench/import/run:
INBOX plus three folders, sizes from 1 KiB to 64 KiB (mean ~6 KiB, mail-like),
a quarter Seen, some Flagged/Answered, a keyword, and dovecot-uidlist files
so the import keeps UIDs (the work a real migration does).

    mkmaildir.py PATH N
"""
import os
import random
import sys

root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20)
folders = ["", ".Archive", ".Work", ".Work.Projects"]
uids = {f: [] for f in folders}
for f in folders:
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, f, sub), exist_ok=True)
line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n"
t0 = 1700000000
for i in range(n):
    f = folders[0] if i % 2 == 0 else folders[1 + i % 3]
    size = min(65536, int(rnd.expovariate(1 / 6000)) + 1024)
    head = (b"From: Sender %d <s%d@example.net>\nTo: bench@example.test\n"
            b"Subject: message %d\nMessage-ID: <%d@bench.example>\n"
            b"Date: Tue, 14 Nov 2023 22:13:20 +0000\n\n" % (i % 97, i % 97, i, i))
    body = line * (max(0, size - len(head)) // len(line) + 1)
    flags = ""
    if i % 4 == 0:
        flags += "S"
    if i % 10 == 0:
        flags += "F"
    if i % 13 == 0:
        flags += "R"
    if i % 17 == 0:
        flags += "a"
    base = "%d.M%dP1.bench,S=%d" % (t0 + i, i, len(head) + len(body))
    uids[f].append(base)
    name = base + ":2," + "".join(sorted(flags))
    path = os.path.join(root, f, "cur", name)
    with open(path, "wb") as out:
        out.write(head)
        out.write(body)
    os.utime(path, (t0 + i, t0 + i))
for f, bases in uids.items():
    with open(os.path.join(root, f, "dovecot-uidlist"), "w") as out:
        out.write("3 V%d N%d\n" % (t0 + len(f), len(bases) + 1))
        for k, b in enumerate(bases):
            out.write("%d :%s\n" % (k + 1, b))
    with open(os.path.join(root, f, "dovecot-keywords"), "w") as out:
        out.write("0 $Important\n")
with open(os.path.join(root, "subscriptions"), "w") as out:
    out.write("Archive\nWork\nWork.Projects\n")
