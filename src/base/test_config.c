/*
 * test_config.c - unit tests for wharf.conf parsing: values, every error path,
 * drop-ins, formatting and the option table itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"

static int load(struct wharf_config *cfg, const char *text, struct buf *err)
{
    config_init(cfg);
    buf_reset(err);
    return config_load_string(cfg, "t.conf", text, err);
}

static void expect_error(const char *text, const char *msg)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    assert_int_equal(load(&cfg, text, &err), -1);
    if (strstr(buf_cstr(&err), msg) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.data, msg);
    config_free(&cfg);
    buf_free(&err);
}

static void test_defaults_parse(void **state)
{
    struct wharf_config cfg;
    config_init(&cfg);
    assert_int_equal(cfg.config_version, 1);
    assert_string_equal(cfg.data_directory, "./var");
    assert_int_equal(cfg.smtp_listen.n, 1);
    assert_string_equal(cfg.smtp_listen.v[0], "*:25");
    assert_int_equal(cfg.shutdown_timeout, 30000);
    for (size_t i = 0; i < OPTID__COUNT; i++) {
        assert_true(config_is_default(&cfg, &config_options[i]));
        assert_non_null(config_options[i].help);
        assert_true(strlen(config_options[i].help) > 10);
    }
    config_free(&cfg);
}

static void test_option_names_unique(void **state)
{
    for (size_t i = 0; i < OPTID__COUNT; i++)
        for (size_t j = i + 1; j < OPTID__COUNT; j++)
            assert_string_not_equal(config_options[i].name, config_options[j].name);
}

static void test_values(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    assert_int_equal(load(&cfg,
                          "# comment\n"
                          "\n"
                          "data_directory = /srv/wharf\n"
                          "workers=4\r\n"
                          "   # indented comment\n"
                          "log_debug = yes\n"
                          "shutdown_timeout = 5m\n"
                          "ipc_max_frame = 10M\n"
                          "mydomains = example.org,\n"
                          "    example.net example.com\n"
                          "smtp_listen = 127.0.0.1:2525, [::1]:2525\n"
                          "imap_listen = off\n",
                          &err),
                     0);
    assert_string_equal(cfg.data_directory, "/srv/wharf");
    assert_int_equal(cfg.workers, 4);
    assert_true(cfg.log_debug);
    assert_int_equal(cfg.shutdown_timeout, 300000);
    assert_int_equal(cfg.ipc_max_frame, 10 * 1024 * 1024);
    assert_int_equal(cfg.mydomains.n, 3);
    assert_string_equal(cfg.mydomains.v[2], "example.com");
    assert_int_equal(cfg.smtp_listen.n, 2);
    assert_string_equal(cfg.smtp_listen.v[1], "[::1]:2525");
    assert_int_equal(cfg.imap_listen.n, 0);
    assert_false(config_is_default(&cfg, config_find("workers")));
    assert_string_equal(cfg.origin[OPTID_workers], "t.conf:4");
    assert_string_equal(cfg.origin[OPTID_mydomains], "t.conf:9");
    config_free(&cfg);
    buf_free(&err);
}

static void test_errors(void **state)
{
    expect_error("nosuch = 1\n", "t.conf:1: unknown parameter 'nosuch'");
    expect_error("\n\nworkers\n", "t.conf:3: expected 'name = value'");
    expect_error("Bad-Name = 1\n", "t.conf:1: 'Bad-Name' is not a parameter name");
    expect_error("= 1\n", "t.conf:1: '' is not a parameter name");
    expect_error("  indented = 1\n", "t.conf:1: continuation line without a parameter");
    expect_error("workers = four\n", "t.conf:1: workers: 'four' is not an integer");
    expect_error("workers = 65\n", "t.conf:1: workers: 65 is out of range (0..64)");
    expect_error("workers = -1\n", "out of range");
    expect_error("workers = 99999999999999999999\n", "is not an integer");
    expect_error("config_version = 2\n", "config_version: 2 is out of range");
    expect_error("log_debug = maybe\n", "log_debug: 'maybe' is not yes or no");
    expect_error("ipc_max_frame = 10X\n", "ipc_max_frame: '10X' is not a size");
    expect_error("ipc_max_frame = 1\n", "ipc_max_frame: 1 is out of range");
    expect_error("ipc_max_frame = 99999999999999999G\n", "is not a size");
    expect_error("shutdown_timeout = soon\n", "shutdown_timeout: 'soon' is not a duration");
    expect_error("shutdown_timeout = 5w\n", "is not a duration");
    expect_error("restart_backoff_max = 10ms\n", "restart_backoff_max: 10ms is out of range");
    expect_error("smtp_listen = 25\n", "smtp_listen: '25' is not ADDRESS:PORT");
    expect_error("smtp_listen = *:0\n", "is not ADDRESS:PORT");
    expect_error("smtp_listen = *:65536\n", "is not ADDRESS:PORT");
    expect_error("smtp_listen = ::1:25\n", "is not ADDRESS:PORT");
    expect_error("smtp_listen = [::1]25\n", "is not ADDRESS:PORT");
    expect_error("workers = 1\nworkers = x\n", "t.conf:2:");
    /* The line number is the first line of a continued value. */
    expect_error("workers =\n  x\n", "t.conf:1: workers: 'x' is not an integer");
}

/* Error paths not covered above: every message names the file, the line and the option. */
static void test_more_errors(void **state)
{
    expect_error("workers =\n", "t.conf:1: workers: '' is not an integer");
    /* a comment after a value would be part of it: refused, whatever the option's type */
    expect_error("workers = 4 # four\n", "t.conf:1: \"#\" after a value");
    expect_error("tls_cert_file = /etc/wharf/x.pem\t# ours\n", "t.conf:1: \"#\" after a value");
    expect_error("mynetworks = 10.0.0.0/8,\n  192.0.2.0/24  # office\n",
                 "t.conf:2: \"#\" after a value");
    struct wharf_config cfg; /* a "#" inside a value is the value's */
    struct buf err = BUF_INIT;
    assert_int_equal(load(&cfg, "# a comment\nldap_user_filter = (description=#1)\n", &err), 0);
    assert_string_equal(cfg.ldap_user_filter, "(description=#1)");
    config_free(&cfg);
    buf_free(&err);
    expect_error("workers = 0x10\n", "is not an integer");
    expect_error("workers = +\n", "is not an integer");
    expect_error("log_debug =\n", "log_debug: '' is not yes or no");
    expect_error("ipc_max_frame = -1M\n", "ipc_max_frame: '-1M' is not a size");
    expect_error("ipc_max_frame = 1.5G\n", "is not a size");
    expect_error("ipc_max_frame = 2G\n", "ipc_max_frame: 2G is out of range");
    expect_error("shutdown_timeout = 2h\n", "shutdown_timeout: 2h is out of range");
    expect_error("shutdown_timeout = 1.5s\n", "is not a duration");
    expect_error("shutdown_timeout = 999999999999999999d\n", "is not a duration");
    expect_error("smtp_listen = *:25, 127.0.0.1\n", "smtp_listen: '127.0.0.1' is not ADDRESS:PORT");
    expect_error("smtp_listen = []:25\n", "is not ADDRESS:PORT");
    expect_error("smtp_listen = *:\n", "is not ADDRESS:PORT");
    expect_error("smtp_listen = *:smtp\n", "is not ADDRESS:PORT");
    expect_error("smtp_listen = "
                 "a234567890123456789012345678901234567890123456789012345678901234:25\n",
                 "is not ADDRESS:PORT");
    expect_error("smtp_max_connections = 0\n", "smtp_max_connections: 0 is out of range");
    expect_error("name with space = 1\n", "'name with space' is not a parameter name");
    expect_error("\tworkers = 1\n", "t.conf:1: continuation line without a parameter");
    /* An error stops at the first bad line; a later good line does not hide it. */
    expect_error("workers = x\nworkers = 1\n", "t.conf:1:");
    /* CRLF files and comments between continuation lines still count lines right. */
    expect_error("a = 1\r\n", "t.conf:1: unknown parameter 'a'");
    expect_error("# c\r\n\r\nworkers = y\r\n", "t.conf:3: workers: 'y'");

    /* A line longer than the limit is refused, not truncated. */
    size_t n = 70 * 1024;
    char *big = malloc(n + 16);
    memcpy(big, "myhostname = ", 13);
    memset(big + 13, 'a', n);
    memcpy(big + 13 + n, "\n", 2);
    expect_error(big, "t.conf:1: line longer than");
    free(big);
}

static void expect_read_error(char **assignments, size_t n, const char *msg)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    assert_int_equal(config_read(&cfg, NULL, assignments, n, &err), -1);
    if (strstr(buf_cstr(&err), msg) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.data, msg);
    config_free(&cfg);
    buf_free(&err);
}

/* Checks made after loading: -o values and listeners that would collide. */
static void test_read_errors(void **state)
{
    char *unknown[] = {"nosuch=1"};
    expect_read_error(unknown, 1, "-o: unknown parameter 'nosuch'");
    char *bad[] = {"workers=many"};
    expect_read_error(bad, 1, "-o: workers: 'many' is not an integer");
    char *empty[] = {"data_directory="};
    expect_read_error(empty, 1, "data_directory: must not be empty");
    char *same[] = {"imap_listen=127.0.0.1:25"};
    expect_read_error(same, 1, "-o: imap_listen: 127.0.0.1:25 conflicts with *:25 in smtp_listen");
    char *dup[] = {"smtp_listen=127.0.0.1:2525, 127.0.0.1:2525"};
    expect_read_error(dup, 1, "smtp_listen: 127.0.0.1:2525 conflicts with 127.0.0.1:2525");
    /* Different addresses on one port do not collide; neither do different ports. */
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    char *ok[] = {"smtp_listen=127.0.0.1:2525", "imap_listen=127.0.0.2:2525",
                  "submission_listen=[::1]:2525"};
    assert_int_equal(config_read(&cfg, NULL, ok, 3, &err), 0);
    config_free(&cfg);
    buf_free(&err);
}

static void test_parsers(void **state)
{
    int64_t ms;
    uint64_t sz;
    assert_true(config_parse_duration("500ms", &ms));
    assert_int_equal(ms, 500);
    assert_true(config_parse_duration("30", &ms));
    assert_int_equal(ms, 30000);
    assert_true(config_parse_duration("5d", &ms));
    assert_int_equal(ms, 5LL * 86400 * 1000);
    assert_false(config_parse_duration("", &ms));
    assert_false(config_parse_duration("-1s", &ms));
    assert_true(config_parse_size("64k", &sz));
    assert_int_equal(sz, 65536);
    assert_true(config_parse_size("1G", &sz));
    assert_int_equal(sz, 1ULL << 30);
    struct listen_addr la;
    assert_true(config_parse_listen_addr("*:25", &la));
    assert_string_equal(la.host, "");
    assert_int_equal(la.port, 25);
    assert_true(config_parse_listen_addr("[::1]:143", &la));
    assert_string_equal(la.host, "::1");
    bool b;
    assert_true(config_parse_bool("On", &b));
    assert_true(b);
    assert_true(config_parse_bool("0", &b));
    assert_false(b);
    assert_false(config_parse_bool("y", &b));
    long long v;
    assert_false(config_parse_int(" 1", &v));
    assert_false(config_parse_int("", &v));
    assert_true(config_parse_int("-5", &v));
    assert_int_equal(v, -5);
    assert_true(config_parse_size("10 M", &sz));
    assert_int_equal(sz, 10 * 1024 * 1024);
    assert_false(config_parse_size("18446744073709551615k", &sz));
    assert_false(config_parse_listen_addr("[::1:25", &la));
    assert_true(config_parse_listen_addr("127.0.0.2:587", &la));
    assert_string_equal(la.host, "127.0.0.2");
    assert_int_equal(la.port, 587);
}

static void test_format_roundtrip(void **state)
{
    struct wharf_config cfg, cfg2;
    struct buf err = BUF_INIT, text = BUF_INIT;
    assert_int_equal(load(&cfg, "shutdown_timeout = 90s\nipc_max_frame = 2048k\n", &err), 0);
    for (size_t i = 0; i < OPTID__COUNT; i++) {
        buf_printf(&text, "%s = ", config_options[i].name);
        config_format_value(&cfg, &config_options[i], &text);
        buf_append_cstr(&text, "\n");
    }
    assert_non_null(strstr(text.data, "shutdown_timeout = 90s\n"));
    assert_non_null(strstr(text.data, "ipc_max_frame = 2M\n"));
    assert_non_null(strstr(text.data, "imap_listen = *:143\n"));
    assert_int_equal(load(&cfg2, text.data, &err), 0);
    assert_int_equal(cfg2.shutdown_timeout, 90000);
    assert_int_equal(cfg2.ipc_max_frame, 2 * 1024 * 1024);
    config_free(&cfg);
    config_free(&cfg2);
    buf_free(&err);
    buf_free(&text);
}

static void test_files_and_dropins(void **state)
{
    char dir[] = "/tmp/wharf-config-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], dpath[256], f1[300], f2[300];
    snprintf(path, sizeof(path), "%s/wharf.conf", dir);
    snprintf(dpath, sizeof(dpath), "%s/conf.d", dir);
    snprintf(f1, sizeof(f1), "%s/10-a.conf", dpath);
    snprintf(f2, sizeof(f2), "%s/20-b.conf", dpath);
    FILE *f = fopen(path, "w");
    fputs("workers = 2\nlog_debug = yes\n", f);
    fclose(f);
    mkdir(dpath, 0755);
    f = fopen(f2, "w");
    fputs("workers = 8\n", f);
    fclose(f);
    f = fopen(f1, "w");
    fputs("workers = 4\n", f);
    fclose(f);

    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    config_init(&cfg);
    assert_int_equal(config_load_file(&cfg, path, &err), 0);
    assert_int_equal(cfg.workers, 8); /* 20-b.conf is read last */
    assert_true(cfg.log_debug);
    char origin[400];
    snprintf(origin, sizeof(origin), "%s:1", f2);
    assert_string_equal(cfg.origin[OPTID_workers], origin);
    config_free(&cfg);

    /* An error in a drop-in names the drop-in. */
    f = fopen(f1, "w");
    fputs("\nbogus = 1\n", f);
    fclose(f);
    config_init(&cfg);
    buf_reset(&err);
    assert_int_equal(config_load_file(&cfg, path, &err), -1);
    snprintf(origin, sizeof(origin), "%s:2: unknown parameter 'bogus'", f1);
    assert_string_equal(buf_cstr(&err), origin);
    config_free(&cfg);

    /* Only NAME.conf drop-ins count: others and hidden files are ignored. */
    char f3[300], f4[300];
    snprintf(f3, sizeof(f3), "%s/30-c.conf.bak", dpath);
    snprintf(f4, sizeof(f4), "%s/.40-d.conf", dpath);
    f = fopen(f1, "w");
    fputs("workers = 4\n", f);
    fclose(f);
    f = fopen(f3, "w");
    fputs("bogus = 1\n", f);
    fclose(f);
    f = fopen(f4, "w");
    fputs("bogus = 1\n", f);
    fclose(f);
    config_init(&cfg);
    buf_reset(&err);
    assert_int_equal(config_load_file(&cfg, path, &err), 0);
    assert_int_equal(cfg.workers, 8);
    config_free(&cfg);
    unlink(f3);
    unlink(f4);

    /* A NUL byte means this is not a text file. */
    f = fopen(f2, "w");
    fwrite("workers = 1\n\0\n", 1, 14, f);
    fclose(f);
    config_init(&cfg);
    buf_reset(&err);
    assert_int_equal(config_load_file(&cfg, path, &err), -1);
    assert_non_null(strstr(err.data, "contains a NUL byte"));
    config_free(&cfg);

    /* A missing main file is an error. */
    config_init(&cfg);
    buf_reset(&err);
    assert_int_equal(config_load_file(&cfg, "/nonexistent/wharf.conf", &err), -1);
    assert_non_null(strstr(err.data, "cannot open"));
    config_free(&cfg);

    unlink(f1);
    unlink(f2);
    rmdir(dpath);
    unlink(path);
    rmdir(dir);
    buf_free(&err);
}

static void test_finalize_and_assign(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    char *a[] = {"data_directory = /tmp/wd/", "myhostname=mx.example.org"};
    assert_int_equal(config_read(&cfg, NULL, a, 2, &err), 0);
    assert_string_equal(cfg.data_directory, "/tmp/wd");
    assert_string_equal(cfg.control_socket, "/tmp/wd/run/control.sock");
    assert_string_equal(cfg.tls_cert_file, "/tmp/wd/tls/cert.pem");
    assert_int_equal(cfg.mydomains.n, 1);
    assert_string_equal(cfg.mydomains.v[0], "mx.example.org");
    assert_string_equal(cfg.origin[OPTID_myhostname], "-o");
    config_free(&cfg);

    char *bad[] = {"workers"};
    buf_reset(&err);
    assert_int_equal(config_read(&cfg, NULL, bad, 1, &err), -1);
    assert_string_equal(buf_cstr(&err), "-o workers: expected name=value");
    config_free(&cfg);
    char *bad2[] = {"tls_min_version=SSLv3"};
    buf_reset(&err);
    assert_int_equal(config_read(&cfg, NULL, bad2, 1, &err), -1);
    assert_non_null(strstr(err.data, "tls_min_version"));
    config_free(&cfg);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_parse),
        cmocka_unit_test(test_option_names_unique),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_files_and_dropins),
        cmocka_unit_test(test_finalize_and_assign),
        cmocka_unit_test(test_more_errors),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
