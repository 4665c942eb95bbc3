"""IMAP header searches from the search records written at delivery (issue 19).

SEARCH FROM/TO/CC/BCC/SUBJECT/HEADER read the record the store keeps per
message (decoded header fields, parsed once when the message arrived), and
FETCH ENVELOPE the ENVELOPE stored with it. Address fields also match on their
addresses with comments removed, as Dovecot (and imaptest's search-addresses
script) expect. Clients: Python's imaplib against a real wharfd; messages
arrive through `wharf deliver` and IMAP APPEND.
"""
import base64
import imaplib
import sqlite3

import pytest

from conftest import tls_context

USER = "alice@example.test"
PASSWORD = "correct horse battery"

# The From forms of imaptest's search-addresses script, and a few more.
FROMS = [
    b"user-from@domain.org",
    b"<user-from@domain.org>",
    b"Real Name <user-from@domain.org>",
    b"<user-from (comment)@ (comment) domain.org>",
    b"other@domain.org",
    b"user-from@domain.org (Comment Name)",
    b"=?utf-8?q?J=C3=B6rg_Sch=C3=B6n?= <user-from@domain.org>",
]


def msg(frm, subject=b"hello", extra=b""):
    return (b"From: " + frm + b"\r\nTo: alice@example.test\r\nCc: Carol <carol@example.test>\r\n"
            b"Subject: " + subject + b"\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n" + extra +
            b"Message-ID: <m@example.test>\r\n\r\nbody\r\n")


@pytest.fixture
def imap(wharf_factory):
    server = wharf_factory(enable={"imaps"}).start()
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    return server


def login(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=20)
    m.login(USER, PASSWORD)
    return m


def store_db(server):
    return sqlite3.connect(str(server.data / "store" / "store.db"), timeout=10)


def test_search_addresses_without_comments_and_by_name(imap):
    for f in FROMS:
        imap.wharf("deliver", USER, input=msg(f))
    m = login(imap)
    m.select("INBOX")
    # the address with its comments removed, whatever form it came in
    assert m.search(None, "FROM", "user-from@domain.org")[1] == [b"1 2 3 4 6 7"]
    assert m.search(None, "FROM", "USER-FROM@DOMAIN.ORG")[1] == [b"1 2 3 4 6 7"]
    assert m.search(None, "FROM", "domain.org")[1] == [b"1 2 3 4 5 6 7"]
    # the display name, decoded (RFC 2047), and the raw field's comment text
    assert m.search(None, "FROM", '"real name"')[1] == [b"3"]
    assert m.search(None, "FROM", "comment")[1] == [b"4 6"]
    m.literal = "Jörg".encode()
    assert m.search("UTF-8", "FROM")[1] == [b"7"]
    assert m.search(None, "FROM", "nobody")[1] == [b""]
    assert m.search(None, "CC", "carol@example.test")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "TO", "alice")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "BCC", "alice")[1] == [b""]
    assert m.search(None, "HEADER", "FROM", "user-from@domain.org")[1] == [b"1 2 3 4 6 7"]
    assert m.search(None, "HEADER", "Message-ID", "m@example")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "SENTON", "27-Nov-2026")[1] == [b"1 2 3 4 5 6 7"]
    m.logout()


def test_records_and_envelope_written_at_delivery_and_append(imap):
    imap.wharf("deliver", USER, input=msg(b"Bob <bob@example.test>", b"=?utf-8?q?caf=C3=A9?="))
    m = login(imap)
    assert m.append("INBOX", None, None, msg(b"dave@example.test", b"appended"))[0] == "OK"
    db = store_db(imap)
    # the parsed structure (src/mime's mime_struct, tagged "\\0WS" + version)
    # in the bodystructure column; no IMAP text any more
    rows = db.execute("SELECT uid, envelope IS NULL, substr(bodystructure, 1, 4) = X'00575301',"
                      " search IS NOT NULL FROM messages ORDER BY uid").fetchall()
    db.close()
    assert rows == [(1, 1, 1, 1), (2, 1, 1, 1)]
    m.select("INBOX")
    m.literal = "café".encode()
    assert m.search("UTF-8", "SUBJECT")[1] == [b"1"]
    assert m.search(None, "SUBJECT", "appended")[1] == [b"2"]
    typ, data = m.fetch("1:*", "(ENVELOPE)")
    assert typ == "OK"
    text = b" ".join(d if isinstance(d, bytes) else b"".join(d) for d in data)
    assert b'"bob" "example.test"' in text and b'"dave" "example.test"' in text
    m.logout()
    body_and_text_from_the_index(imap)


# A word only in a base64 text part, one only in an HTML part: BODY and TEXT
# answer from the store's full-text index (3 characters or more).
INDEXED = (b"From: Dora <dora@example.test>\r\nTo: alice@example.test\r\n"
           b"Subject: the harbour report\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/alternative; boundary=zz\r\n\r\n--zz\r\n"
           b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode("Zeppelinfeld an der Schleuse, Grüße\r\n".encode()) +
           b"\r\n--zz\r\nContent-Type: text/html\r\n\r\n"
           b"<p>The <b>harbour</b>master<script>hiddenscript()</script></p>\r\n--zz--\r\n")


def body_and_text_from_the_index(imap):
    other = "bob@example.test"
    imap.wharf("user", "add", other, "--password-stdin", input=PASSWORD.encode() + b"\n")
    imap.wharf("deliver", other, input=msg(b"carl@example.test", b"bobs", b"X-Note: quartermaster\r\n"))
    m = login(imap)
    m.select("INBOX")
    imap.wharf("deliver", USER, input=INDEXED)  # UID 3, searched right after its delivery
    m.noop()
    assert m.search(None, "BODY", "ZEPPELINFELD")[1] == [b"3"]
    assert m.uid("SEARCH", "TEXT", "schleuse")[1] == [b"3"]
    assert m.search(None, "BODY", "harbourmaster")[1] == [b"3"]
    assert m.search(None, "BODY", "hiddenscript")[1] == [b""]
    assert m.search(None, "BODY", '"harbour report"')[1] == [b""]  # the subject is no body
    assert m.search(None, "TEXT", '"harbour report"')[1] == [b"3"]  # but TEXT has the header
    assert m.search(None, "TEXT", '"Dora <dora@"')[1] == [b"3"]
    assert m.search(None, "OR", "BODY", "zeppelin", "SUBJECT", "appended")[1] == [b"2 3"]
    assert m.search(None, "NOT", "BODY", "zeppelin")[1] == [b"1 2"]
    m.literal = "GRÜSSE".encode()
    assert m.search("UTF-8", "BODY")[1] == [b""]  # no ß = ss folding
    m.literal = "grüße".encode()
    assert m.search("UTF-8", "BODY")[1] == [b"3"]
    m.literal = "GRÜßE".encode()  # the index folds case beyond ASCII
    assert m.search("UTF-8", "BODY")[1] == [b"3"]
    assert m.search(None, "BODY", "ze")[1] == [b"3"]  # short: scanned, same text
    assert m.search(None, "TEXT", "quartermaster")[1] == [b""]  # bob's mail is bob's
    # expunged: gone at once
    m.store("3", "+FLAGS", "\\Deleted")
    m.expunge()
    assert m.search(None, "BODY", "zeppelinfeld")[1] == [b""]
    # a word in an attachment (a part that is not text, which the index does not
    # hold): BODY and TEXT still find it, by a scan of those parts
    imap.wharf("deliver", USER, input=ATTACHED)  # UID 4
    m.noop()
    assert m.uid("SEARCH", "BODY", "cargohold")[1] == [b"4"]
    assert m.uid("SEARCH", "TEXT", "CARGOHOLD")[1] == [b"4"]
    assert m.uid("SEARCH", "BODY", '"see attached"')[1] == [b"4"]
    assert m.uid("SEARCH", "BODY", "nowhereword")[1] == [b""]
    m.logout()


ATTACHED = (b"From: x@example.test\r\nSubject: a file\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=aa\r\n\r\n--aa\r\n"
            b"Content-Type: text/plain\r\n\r\nsee attached\r\n--aa\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(b"inventory of the cargohold\r\n") + b"\r\n--aa--\r\n")


def test_older_messages_without_records_are_searched_and_given_one(imap):
    """A store migrated from before search records: the first search reads
    the messages, answers the same, and writes their records."""
    for f in FROMS:
        imap.wharf("deliver", USER, input=msg(f))
    db = store_db(imap)
    db.execute("UPDATE messages SET search = NULL, envelope = NULL, bodystructure = NULL")
    db.commit()
    m = login(imap)
    m.select("INBOX")
    # (FROM of 3 characters or more is the full-text index's: a date key reads the records)
    assert m.search(None, "SENTON", "27-Nov-2026")[1] == [b"1 2 3 4 5 6 7"]
    assert db.execute("SELECT COUNT(*) FROM messages WHERE search IS NULL").fetchone() == (0,)
    db.close()
    assert m.search(None, "FROM", "user-from@domain.org")[1] == [b"1 2 3 4 6 7"]
    typ, data = m.fetch("4", "(ENVELOPE)")
    assert typ == "OK" and b'"user-from" "domain.org"' in data[0]
    m.logout()


NESTED = (b"From: Ann <ann@example.test>\r\nTo: alice@example.test\r\nSubject: fwd\r\n"
          b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <n@example.test>\r\n"
          b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
          b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee below\r\n"
          b"--b1\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment;"
          b" filename*=utf-8''n%C3%A9.eml\r\n\r\n"
          b"From: Bob <bob@example.test>\r\nSubject: inner\r\n\r\ninner body\r\n"
          b"--b1--\r\n")


def fetch_forms(server):
    m = login(server)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "(ENVELOPE BODY BODYSTRUCTURE)")
    m.logout()
    assert typ == "OK"
    return b"".join(d if isinstance(d, bytes) else b"".join(d) for d in data)


def test_cache_of_older_versions_is_parsed_again_and_rewritten(imap):
    """Stores of older versions kept ENVELOPE and BODYSTRUCTURE as IMAP text
    (or nothing, or bytes damaged on disk): FETCH refuses such a cache, parses
    the message, answers exactly as from a fresh cache, and writes the new form."""
    imap.wharf("deliver", USER, input=NESTED)
    fresh = fetch_forms(imap)
    assert b'"message" "rfc822"' in fresh and b'"inner"' in fresh
    assert b'("attachment" ("filename*" "utf-8\'\'n%C3%A9.eml"))' in fresh
    db = store_db(imap)
    olds = [("(NIL \"stale\" NIL NIL NIL NIL NIL NIL NIL NIL)",
             "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"),
            (None, None),
            (None, b"\x00WS\x01\x05garbage")]
    for env, bs in olds:
        db.execute("UPDATE messages SET envelope = ?, bodystructure = ?", (env, bs))
        db.commit()
        assert fetch_forms(imap) == fresh
        row = db.execute("SELECT envelope IS NULL, substr(bodystructure, 1, 4) = X'00575301'"
                         " FROM messages").fetchone()
        assert row == (1, 1)
    db.close()
