/*
 * test_mime_samples.h - real-world-shaped messages shared by the mime unit tests
 * (written with LF; sample_crlf() makes the CRLF form). Expected IMAP strings
 * were produced by Dovecot 2.3.19 (doveadm fetch imap.envelope imap.bodystructure)
 * and are compared byte for byte.
 */
#ifndef WHARF_MIME_TEST_SAMPLES_H
#define WHARF_MIME_TEST_SAMPLES_H

#include "base/alloc.h"
#include <string.h>

static const char SAMPLE_A[] =
    "Return-Path: <alice@example.org>\n"
    "Received: from mx.example.org (mx.example.org [192.0.2.1])\n"
    "\tby mail.example.net with ESMTPS id 4Xyz\n"
    "\tfor <bob@example.net>; Tue, 12 Mar 2024 10:15:02 +0100\n"
    "From: =?UTF-8?B?QWxpY2Ugw4VrZXJtYW4=?= <alice@example.org>\n"
    "To: Bob <bob@example.net>, \"Carol, C.\" <carol@example.net>\n"
    "Cc: team: dave@example.net, erin@example.net;\n"
    "Subject: =?UTF-8?Q?R=C3=A9union_du_lundi?= =?UTF-8?Q?_=E2=80=94_ordre?=\n"
    " du jour\n"
    "Date: Tue, 12 Mar 2024 10:15:00 +0100\n"
    "Message-ID: <20240312091500.12345@example.org>\n"
    "In-Reply-To: <prev@example.net>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"=_outer_1\"\n"
    "\n"
    "This is a multi-part message in MIME format.\n"
    "\n"
    "--=_outer_1\n"
    "Content-Type: multipart/alternative;\n"
    " boundary=\"=_inner_2\"\n"
    "\n"
    "--=_inner_2\n"
    "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Bonjour =C3=A0 tous,\n"
    "voici l'ordre du jour.=20\n"
    "Alice\n"
    "\n"
    "--=_inner_2\n"
    "Content-Type: text/html; charset=UTF-8\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "<html><body><p>Bonjour</p></body></html>\n"
    "\n"
    "--=_inner_2--\n"
    "\n"
    "--=_outer_1\n"
    "Content-Type: application/pdf;\n"
    " name*0*=UTF-8''R%C3%A9union%20du;\n"
    " name*1*=%20lundi.pdf\n"
    "Content-Disposition: attachment;\n"
    " filename*0*=UTF-8''R%C3%A9union%20du;\n"
    " filename*1*=%20lundi.pdf; size=12\n"
    "Content-Transfer-Encoding: base64\n"
    "Content-ID: <att1@example.org>\n"
    "Content-Description: =?ISO-8859-1?Q?R=E9union?=\n"
    "\n"
    "JVBERi0xLjQK\n"
    "--=_outer_1--\n";

static const char SAMPLE_B[] =
    "From: =?windows-1252?Q?Fran=E7ois_=93Frank=94?= <frank@example.com>\n"
    "To: undisclosed-recipients:;\n"
    "Subject: =?ISO-8859-1?Q?Fwd:_caf=E9?=\n"
    "Date: Wed, 13 Mar 2024 08:00:00 -0500\n"
    "Message-ID: <fwd@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=b1\n"
    "\n"
    "--b1\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "See b\xe9"
    "low.\n"
    "\n"
    "--b1\n"
    "Content-Type: message/rfc822\n"
    "Content-Disposition: inline\n"
    "\n"
    "From: Alice <alice@example.org>\n"
    "To: Frank <frank@example.com>\n"
    "Subject: Lunch?\n"
    "Date: Tue, 12 Mar 2024 12:00:00 +0000\n"
    "Message-ID: <inner@example.org>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/alternative; boundary=b2\n"
    "\n"
    "--b2\n"
    "Content-Type: text/plain\n"
    "\n"
    "Lunch at noon?\n"
    "--b2\n"
    "Content-Type: text/html\n"
    "\n"
    "<b>Lunch</b> at noon?\n"
    "--b2--\n"
    "\n"
    "--b1--\n";

static const char SAMPLE_D[] = "From: broken@example.com\n"
                               "Subject: truncated\n"
                               "Content-Type: multipart/mixed; boundary=zz\n"
                               "\n"
                               "--zz\n"
                               "Content-Type: text/plain\n"
                               "\n"
                               "first part\n"
                               "--zz\n"
                               "Content-Type: multipart/related; boundary=yy\n"
                               "\n"
                               "--yy\n"
                               "Content-Type: text/html\n"
                               "\n"
                               "<p>never closed\n"
                               "--zz\n"
                               "Content-Type: image/png; name=\"a.png\"\n"
                               "Content-Transfer-Encoding: base64\n"
                               "\n"
                               "iVBORw0KGgo=\n";

static const char A_BODYSTRUCTURE[] =
    "(((\"text\" \"plain\" (\"charset\" \"UTF-8\" \"format\" \"flowed\") NIL NIL "
    "\"quoted-printable\" 56 3 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"UTF-8\") NIL NIL "
    "\"7bit\" 42 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"=_inner_2\") NIL NIL "
    "NIL)(\"application\" \"pdf\" (\"name*\" \"UTF-8''R%C3%A9union%20du%20lundi.pdf\") "
    "\"<att1@example.org>\" \"=?ISO-8859-1?Q?R=E9union?=\" \"base64\" 12 NIL (\"attachment\" "
    "(\"size\" \"12\" \"filename*\" \"UTF-8''R%C3%A9union%20du%20lundi.pdf\")) NIL NIL) \"mixed\" "
    "(\"boundary\" \"=_outer_1\") NIL NIL NIL)";
static const char A_ENVELOPE[] =
    "(\"Tue, 12 Mar 2024 10:15:00 +0100\" {70}\r\n=?UTF-8?Q?R=C3=A9union_du_lundi?= "
    "=?UTF-8?Q?_=E2=80=94_ordre?= du jour ((\"=?UTF-8?B?QWxpY2Ugw4VrZXJtYW4=?=\" NIL \"alice\" "
    "\"example.org\")) ((\"=?UTF-8?B?QWxpY2Ugw4VrZXJtYW4=?=\" NIL \"alice\" \"example.org\")) "
    "((\"=?UTF-8?B?QWxpY2Ugw4VrZXJtYW4=?=\" NIL \"alice\" \"example.org\")) ((\"Bob\" NIL \"bob\" "
    "\"example.net\")(\"Carol, C.\" NIL \"carol\" \"example.net\")) ((NIL NIL \"team\" NIL)(NIL "
    "NIL \"dave\" \"example.net\")(NIL NIL \"erin\" \"example.net\")(NIL NIL NIL NIL)) NIL "
    "\"<prev@example.net>\" \"<20240312091500.12345@example.org>\")";
static const char B_BODYSTRUCTURE[] =
    "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"8bit\" 12 1 NIL NIL NIL "
    "NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 338 (\"Tue, 12 Mar 2024 12:00:00 +0000\" "
    "\"Lunch?\" ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" "
    "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Frank\" NIL \"frank\" "
    "\"example.com\")) NIL NIL NIL \"<inner@example.org>\") ((\"text\" \"plain\" (\"charset\" "
    "\"us-ascii\") NIL NIL \"7bit\" 14 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" "
    "\"us-ascii\") NIL NIL \"7bit\" 21 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"b2\") "
    "NIL NIL NIL) 17 NIL (\"inline\" NIL) NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)";
static const char B_ENVELOPE[] =
    "(\"Wed, 13 Mar 2024 08:00:00 -0500\" \"=?ISO-8859-1?Q?Fwd:_caf=E9?=\" "
    "((\"=?windows-1252?Q?Fran=E7ois_=93Frank=94?=\" NIL \"frank\" \"example.com\")) "
    "((\"=?windows-1252?Q?Fran=E7ois_=93Frank=94?=\" NIL \"frank\" \"example.com\")) "
    "((\"=?windows-1252?Q?Fran=E7ois_=93Frank=94?=\" NIL \"frank\" \"example.com\")) ((NIL NIL "
    "\"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL \"<fwd@example.com>\")";
static const char D_BODYSTRUCTURE[] =
    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL "
    "NIL)((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 15 0 NIL NIL NIL NIL) "
    "\"related\" (\"boundary\" \"yy\") NIL NIL NIL)(\"image\" \"png\" (\"name\" \"a.png\") NIL NIL "
    "\"base64\" 14 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"zz\") NIL NIL NIL)";
static const char D_ENVELOPE[] =
    "(NIL \"truncated\" ((NIL NIL \"broken\" \"example.com\")) ((NIL NIL \"broken\" "
    "\"example.com\")) ((NIL NIL \"broken\" \"example.com\")) NIL NIL NIL NIL NIL)";

/* The sample with every LF made CRLF (caller frees). */
static inline char *sample_crlf(const char *lf, size_t *len_r)
{
    size_t n = strlen(lf), k = 0;
    char *s = xmalloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        if (lf[i] == '\n')
            s[k++] = '\r';
        s[k++] = lf[i];
    }
    s[k] = '\0';
    *len_r = k;
    return s;
}

#endif
