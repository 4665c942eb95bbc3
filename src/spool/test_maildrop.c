/*
 * test_maildrop.c - unit tests of the maildrop file format: round trip,
 * every truncation and every kind of damage refused, the careful read
 * (links, FIFOs, a uid that is not the owner), names and spool ids.
 */
#include "base/testdir.h"
#include "base/alloc.h"
#include "spool/maildrop.h"
#include "spool/spool.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static struct wharf_config cfg;
static char dir[] = "/tmp/wharf-maildrop-test-XXXXXX";
static const struct maildrop_limits lim = {.max_rcpts = 3, .max_data = 64};

static void fill(struct maildrop_entry *e)
{
    *e = (struct maildrop_entry){.uid = (uint32_t)getuid(), .data = BUF_INIT};
    e->sender = xstrdup("a@example.org");
    e->n_rcpts = 2;
    e->rcpts = xcalloc(2, sizeof(char *));
    e->rcpts[0] = xstrdup("b@example.test");
    e->rcpts[1] = xstrdup("c\xc3\xa9@example.test");
    buf_append(&e->data, "Subject: x\r\n\r\nbody\0nul\r\n", 25);
}

static int open_maildrop(void)
{
    char *d = maildrop_dir(&cfg);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    free(d);
    return fd;
}

static void test_roundtrip(void **state)
{
    struct maildrop_entry e, r;
    const char *why = NULL;
    struct buf b = BUF_INIT;
    fill(&e);
    maildrop_encode(&e, &b);
    assert_int_equal(maildrop_decode(b.data, b.len, &lim, &r, &why), 0);
    assert_int_equal(r.uid, e.uid);
    assert_string_equal(r.sender, "a@example.org");
    assert_int_equal(r.n_rcpts, 2);
    assert_string_equal(r.rcpts[1], "c\xc3\xa9@example.test");
    assert_int_equal(r.data.len, 25);
    assert_memory_equal(r.data.data, e.data.data, 25);
    maildrop_entry_free(&r);
    /* the null sender */
    free(e.sender);
    e.sender = xstrdup("");
    buf_reset(&b);
    maildrop_encode(&e, &b);
    assert_int_equal(maildrop_decode(b.data, b.len, &lim, &r, &why), 0);
    assert_string_equal(r.sender, "");
    maildrop_entry_free(&r);
    /* every truncation is damage */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(maildrop_decode(b.data, cut, &lim, &r, &why), -1);
        assert_non_null(why);
    }
    /* so is anything after the end record */
    buf_append_byte(&b, 'x');
    assert_int_equal(maildrop_decode(b.data, b.len, &lim, &r, &why), -1);
    buf_free(&b);
    maildrop_entry_free(&e);
}

/* A file made of records, for the damage cases. */
static size_t make(unsigned char *out, const char *recs)
{
    size_t n = 0;
    memcpy(out, "WMDR\0\0\0\1", 8);
    n = 8;
    for (const char *t = recs; *t; t++) {
        out[n++] = (unsigned char)*t;
        const char *v = *t == 'U'                ? "\0\0\0\0"
                        : *t == 'S' || *t == 'R' ? "a@b"
                        : *t == 'M'              ? "hi\r\n"
                                                 : "";
        size_t l = *t == 'U' ? 4 : strlen(v);
        out[n++] = 0, out[n++] = 0, out[n++] = 0, out[n++] = (unsigned char)l;
        memcpy(out + n, v, l);
        n += l;
    }
    return n;
}

static void test_damage(void **state)
{
    unsigned char f[256];
    struct maildrop_entry r;
    const char *why;
    size_t n = make(f, "USRRMZ");
    assert_int_equal(maildrop_decode(f, n, &lim, &r, &why), 0);
    maildrop_entry_free(&r);
    static const char *const bad[] = {
        "SURMZ",    /* out of order */
        "USMZ",     /* no recipient */
        "UUSRMZ",   /* repeated */
        "USSRMZ",   /* repeated */
        "USRMRZ",   /* recipient after the message */
        "USRMMZ",   /* two messages */
        "USRRRRMZ", /* more recipients than the limit */
        "USRM",     /* no end */
        "USRMZZ",   /* after the end */
        "USRXMZ",   /* unknown record */
        "USRZ",     /* no message */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = make(f, bad[i]);
        why = NULL;
        assert_int_equal(maildrop_decode(f, n, &lim, &r, &why), -1);
        assert_non_null(why);
    }
    n = make(f, "USRMZ");
    f[3] = 'X'; /* magic */
    assert_int_equal(maildrop_decode(f, n, &lim, &r, &why), -1);
    f[3] = 'R';
    f[7] = 2; /* version */
    assert_int_equal(maildrop_decode(f, n, &lim, &r, &why), -1);
    f[7] = 1;
    f[8 + 5 + 4 + 5 + 1] = '\n'; /* a control character in the sender */
    assert_int_equal(maildrop_decode(f, n, &lim, &r, &why), -1);
    /* a length past the end of the file */
    n = make(f, "USRMZ");
    f[8 + 9 + 8 + 8 + 4] = 0xff;
    assert_int_equal(maildrop_decode(f, n, &lim, &r, &why), -1);
    /* a message past the limit */
    struct maildrop_entry e;
    fill(&e);
    buf_append(&e.data, "................................................", 48);
    struct buf b = BUF_INIT;
    maildrop_encode(&e, &b);
    assert_int_equal(maildrop_decode(b.data, b.len, &lim, &r, &why), -1);
    assert_string_equal(why, "message too large");
    buf_free(&b);
    maildrop_entry_free(&e);
}

static void test_names_and_ids(void **state)
{
    char id[32], id2[32];
    assert_true(maildrop_name_valid("06B104CC0964B0001936001"));
    assert_false(maildrop_name_valid("t06B104CC0964B0001936001"));
    assert_false(maildrop_name_valid("06b104CC0964B0001936001")); /* lower case */
    assert_false(maildrop_name_valid("06B104CC0964B000193600"));
    assert_false(maildrop_name_valid(".."));
    maildrop_spool_id("06B104CC0964B0001936001", 0, id);
    assert_string_equal(id, "06B104CC0964B0001936001m0");
    maildrop_spool_id("06B104CC0964B0001936001", 65534, id);
    assert_string_equal(id, "06B104CC0964B0001936001m1eke");
    maildrop_spool_id("06B104CC0964B0001936001", 4294967295u, id2);
    assert_string_equal(id2, "06B104CC0964B0001936001m1z141z3");
    assert_true(strlen(id2) < 32);
    /* a spool id smtp makes has no lower-case letter */
    spool_new_id(id);
    for (const char *p = id; *p; p++)
        assert_false(*p >= 'a' && *p <= 'z');
}

static void test_write_read_list(void **state)
{
    struct maildrop_entry e, r;
    struct buf err = BUF_INIT;
    struct stat st;
    char name[32], name2[32];
    fill(&e);
    assert_int_equal(maildrop_write(&cfg, &e, name, &err), 0);
    assert_true(maildrop_name_valid(name));
    assert_int_equal(maildrop_write(&cfg, &e, name2, &err), 0);
    assert_string_not_equal(name, name2);
    int dfd = open_maildrop();
    assert_true(dfd >= 0);
    assert_int_equal(maildrop_read(dfd, name, &lim, &r, &st, &err), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_string_equal(r.rcpts[0], "b@example.test");
    maildrop_entry_free(&r);
    assert_int_equal(maildrop_read(dfd, "0000000000000000000000F", &lim, &r, &st, &err), 1);
    /* a young temporary file is left to its writer; junk and old ones are listed */
    assert_int_equal(mkdirat(dfd, "junkdir", 0700), 0);
    int t = openat(dfd, "t0000000000000000000000A", O_CREAT | O_WRONLY, 0600);
    close(t);
    char **names;
    size_t n;
    assert_int_equal(maildrop_list(dfd, false, &names, &n, &err), 0);
    assert_int_equal(n, 2);
    spool_list_free(names, n);
    assert_int_equal(maildrop_list(dfd, true, &names, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[2], "junkdir");
    spool_list_free(names, n);
    /* not through a symbolic link, not a FIFO, not a file with two links */
    assert_int_equal(symlinkat(name, dfd, "0000000000000000000000A"), 0);
    assert_int_equal(maildrop_read(dfd, "0000000000000000000000A", &lim, &r, &st, &err), -1);
    assert_int_equal(mkfifoat(dfd, "0000000000000000000000B", 0600), 0);
    assert_int_equal(maildrop_read(dfd, "0000000000000000000000B", &lim, &r, &st, &err), -1);
    assert_int_equal(linkat(dfd, name2, dfd, "0000000000000000000000C", 0), 0);
    assert_int_equal(maildrop_read(dfd, name2, &lim, &r, &st, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "links"));
    /* a file whose U record is not its owner */
    buf_reset(&err);
    e.uid += 1;
    struct buf b = BUF_INIT;
    maildrop_encode(&e, &b);
    int fd = openat(dfd, "0000000000000000000000D", O_CREAT | O_WRONLY, 0600);
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);
    assert_int_equal(maildrop_read(dfd, "0000000000000000000000D", &lim, &r, &st, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "claims uid"));
    /* a file larger than the limits allow is not even read */
    fd = openat(dfd, "0000000000000000000000E", O_CREAT | O_WRONLY, 0600);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    buf_reset(&err);
    assert_int_equal(maildrop_read(dfd, "0000000000000000000000E", &lim, &r, &st, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "larger than"));
    /* a damaged file goes to spool/corrupt */
    assert_int_equal(spool_set_aside(&cfg, dfd, "0000000000000000000000E", &err), 0);
    assert_int_equal(faccessat(dfd, "0000000000000000000000E", F_OK, 0), -1);
    buf_free(&b);
    close(dfd);
    maildrop_entry_free(&e);
    buf_free(&err);
}

int main(void)
{
    struct buf err = BUF_INIT;
    if (testdir_open(&cfg, dir) != 0)
        return 1;
    char *md = maildrop_dir(&cfg);
    if (spool_init(&cfg, &err) != 0 || mkdir(md, 0700) != 0)
        return 1;
    free(md);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_names_and_ids),
        cmocka_unit_test(test_write_read_list),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (testdir_close(&cfg, dir) != 0)
        rc = 1;
    buf_free(&err);
    return rc;
}
