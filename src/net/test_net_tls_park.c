/*
 * test_net_tls_park.c - unit tests of the parked TLS 1.3 record layer: a real
 * OpenSSL client talks over a socketpair to a server SSL that is parked after
 * some traffic, then to net_tls_park alone: data both ways, the client's
 * KeyUpdate (requested and not), close_notify, a corrupted record, large
 * writes split into records, each suite, and TLS 1.2 never parked.
 */
#include "net/net_tls_park.h"

#include "base/buf.h"
#include "net/testtls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static SSL_CTX *server_ctx;

static int setup(void **state)
{
    (void)state;
    server_ctx = testtls_server_ctx();
    if (server_ctx == NULL)
        return -1;
    SSL_CTX_set_mode(server_ctx, SSL_MODE_RELEASE_BUFFERS);
    net_tls_park_ctx_setup(server_ctx);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    return 0;
}

struct pair {
    SSL_CTX *cctx;
    SSL *cli, *srv;
    int cfd, sfd;
    struct net_tls_park *park;
};

/* Client SSL_write, the server's SSL_read of the same bytes (before parking). */
static void ssl_exchange(SSL *from, SSL *to, const char *msg)
{
    size_t len = strlen(msg);
    assert_int_equal(SSL_write(from, msg, (int)len), (int)len);
    char got[256];
    size_t have = 0;
    for (int i = 0; i < 1000 && have < len; i++) {
        int r = SSL_read(to, got + have, (int)(sizeof(got) - have));
        if (r > 0)
            have += (size_t)r;
        else
            assert_true(testtls_want_retry(to, r));
    }
    assert_int_equal(have, len);
    assert_memory_equal(got, msg, len);
}

static void pair_open(struct pair *pp, const char *suites, int max_version)
{
    memset(pp, 0, sizeof(*pp));
    pp->cctx = SSL_CTX_new(TLS_client_method());
    if (suites)
        assert_int_equal(SSL_CTX_set_ciphersuites(pp->cctx, suites), 1);
    SSL_CTX_set_max_proto_version(pp->cctx, max_version);
    pp->cli = SSL_new(pp->cctx);
    pp->srv = SSL_new(server_ctx);
    pp->park = net_tls_park_attach(pp->srv);
    testtls_connect(pp->cli, pp->srv, &pp->cfd, &pp->sfd);
    /* Traffic before parking, so that the counted sequence numbers matter. */
    ssl_exchange(pp->cli, pp->srv, "a1 NOOP\r\n");
    ssl_exchange(pp->srv, pp->cli, "a1 OK NOOP completed\r\n");
    ssl_exchange(pp->cli, pp->srv, "a2 IDLE\r\n");
    ssl_exchange(pp->srv, pp->cli, "+ idling\r\n");
}

static void pair_park(struct pair *pp)
{
    bool never;
    assert_null(net_tls_park_check(pp->park, pp->srv, &never));
    uint8_t ekm[32], ekm_parked[32];
    assert_int_equal(
        SSL_export_keying_material(pp->srv, ekm, sizeof(ekm), "EXPORTER-test", 13, NULL, 0, 0), 1);
    const char *err = NULL;
    assert_int_equal(net_tls_park_begin(pp->park, pp->srv, &err), 0);
    assert_true(net_tls_park_parked(pp->park));
    /* The channel binding outlives the SSL (a front-end's hand-over MAC). */
    assert_true(net_tls_park_export(pp->park, "EXPORTER-test", ekm_parked, sizeof(ekm_parked)));
    assert_memory_equal(ekm, ekm_parked, sizeof(ekm));
    /* A connection no hand-over is checked on gives the exporter up: a 224-byte
     * state, and the records below carried without it. */
    size_t with = net_tls_park_memory(pp->park);
    net_tls_park_drop_exporter(pp->park);
    assert_false(net_tls_park_export(pp->park, "EXPORTER-test", ekm_parked, sizeof(ekm_parked)));
    assert_int_equal(net_tls_park_memory(pp->park) + 48, with);
    assert_true(net_tls_park_memory(pp->park) <= 224);
    SSL_free(pp->srv);
    pp->srv = NULL;
}

static void pair_close(struct pair *pp)
{
    SSL_free(pp->cli);
    SSL_free(pp->srv);
    SSL_CTX_free(pp->cctx);
    net_tls_park_free(pp->park);
    close(pp->cfd);
    close(pp->sfd);
}

/* What the socket holds for the parked side, appended to in. */
static void raw_read(int fd, struct evbuffer *in)
{
    while (evbuffer_read(in, fd, 65536) > 0)
        ;
}

/* Writes out to the parked side's socket while the client reads want bytes. */
static void client_read(struct pair *pp, struct evbuffer *out, char *got, size_t want)
{
    size_t have = 0;
    for (int i = 0; i < 100000 && have < want; i++) {
        if (evbuffer_get_length(out) > 0)
            evbuffer_write(out, pp->sfd);
        int r = SSL_read(pp->cli, got + have, (int)(want - have));
        if (r > 0)
            have += (size_t)r;
        else
            assert_true(testtls_want_retry(pp->cli, r));
    }
    assert_int_equal(have, want);
}

/* Client writes msg; the parked side opens it. */
static enum net_tls_park_result to_parked(struct pair *pp, const char *msg, struct evbuffer *plain,
                                          struct evbuffer *out, const char **err)
{
    assert_int_equal(SSL_write(pp->cli, msg, (int)strlen(msg)), (int)strlen(msg));
    struct evbuffer *in = evbuffer_new();
    raw_read(pp->sfd, in);
    enum net_tls_park_result r = net_tls_park_open(pp->park, in, plain, 1 << 20, out, err);
    evbuffer_free(in);
    return r;
}

static void expect_plain(struct evbuffer *plain, const char *msg)
{
    size_t n = evbuffer_get_length(plain);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(evbuffer_pullup(plain, -1), msg, n);
    evbuffer_drain(plain, n);
}

/* The client sends msg to the parked side, which opens it and answers reply. */
static void parked_round(struct pair *pp, const char *msg, const char *reply)
{
    struct evbuffer *plain = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    assert_int_equal(to_parked(pp, msg, plain, out, &err), NET_TLS_PARK_OK);
    expect_plain(plain, msg);
    assert_true(net_tls_park_seal(pp->park, reply, strlen(reply), out));
    char got[64];
    client_read(pp, out, got, strlen(reply));
    assert_memory_equal(got, reply, strlen(reply));
    evbuffer_free(plain);
    evbuffer_free(out);
}

static void data_both_ways(const char *suites)
{
    struct pair pp;
    pair_open(&pp, suites, 0);
    pair_park(&pp);
    struct evbuffer *plain = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    assert_int_equal(to_parked(&pp, "DONE\r\n", plain, out, &err), NET_TLS_PARK_OK);
    expect_plain(plain, "DONE\r\n");
    evbuffer_free(plain);
    evbuffer_free(out);
    parked_round(&pp, "a3 NOOP\r\n", "* 3 EXISTS\r\na3 OK NOOP completed\r\n");
    pair_close(&pp);
}

static void test_data_aes128(void **state)
{
    (void)state;
    data_both_ways("TLS_AES_128_GCM_SHA256");
}

static void test_data_aes256(void **state)
{
    (void)state;
    data_both_ways("TLS_AES_256_GCM_SHA384");
}

static void test_data_chacha(void **state)
{
    (void)state;
    data_both_ways("TLS_CHACHA20_POLY1305_SHA256");
}

/* The client's KeyUpdate: not requested, then requested (we answer with ours). */
static void test_key_update(void **state)
{
    (void)state;
    struct pair pp;
    pair_open(&pp, NULL, 0);
    pair_park(&pp);
    struct evbuffer *plain = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    assert_int_equal(SSL_key_update(pp.cli, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    assert_int_equal(to_parked(&pp, "one\r\n", plain, out, &err), NET_TLS_PARK_OK);
    expect_plain(plain, "one\r\n");
    assert_int_equal(evbuffer_get_length(out), 0);
    assert_int_equal(SSL_key_update(pp.cli, SSL_KEY_UPDATE_REQUESTED), 1);
    assert_int_equal(to_parked(&pp, "two\r\n", plain, out, &err), NET_TLS_PARK_OK);
    expect_plain(plain, "two\r\n");
    assert_true(evbuffer_get_length(out) > 0); /* our KeyUpdate */
    assert_int_equal(net_tls_park_write_seq(pp.park), 0);
    assert_true(net_tls_park_seal(pp.park, "three\r\n", 7, out));
    char got[8];
    client_read(&pp, out, got, 7);
    assert_memory_equal(got, "three\r\n", 7);
    /* and the client still reads us and we it after that */
    assert_int_equal(to_parked(&pp, "four\r\n", plain, out, &err), NET_TLS_PARK_OK);
    expect_plain(plain, "four\r\n");
    evbuffer_free(plain);
    evbuffer_free(out);
    pair_close(&pp);
}

static void test_close_notify(void **state)
{
    (void)state;
    struct pair pp;
    pair_open(&pp, NULL, 0);
    pair_park(&pp);
    struct evbuffer *plain = evbuffer_new(), *out = evbuffer_new(), *in = evbuffer_new();
    const char *err = NULL;
    assert_int_equal(SSL_shutdown(pp.cli), 0); /* sent ours, not yet received the peer's */
    raw_read(pp.sfd, in);
    assert_int_equal(net_tls_park_open(pp.park, in, plain, 1 << 20, out, &err), NET_TLS_PARK_CLOSE);
    assert_string_equal(err, "close_notify");
    /* Ours reaches the client as a clean shutdown. */
    net_tls_park_close_notify(pp.park, out);
    evbuffer_write(out, pp.sfd);
    assert_int_equal(SSL_shutdown(pp.cli), 1);
    evbuffer_free(in);
    evbuffer_free(plain);
    evbuffer_free(out);
    pair_close(&pp);
}

/* One flipped bit anywhere in a record: rejected, no plaintext, an alert out. */
static void test_corrupted(void **state)
{
    (void)state;
    for (size_t at = 0; at < 40; at += 7) {
        struct pair pp;
        pair_open(&pp, NULL, 0);
        pair_park(&pp);
        struct evbuffer *plain = evbuffer_new(), *out = evbuffer_new(), *in = evbuffer_new();
        const char *msg = "a4 LOGOUT and more bytes\r\n";
        assert_int_equal(SSL_write(pp.cli, msg, (int)strlen(msg)), (int)strlen(msg));
        raw_read(pp.sfd, in);
        size_t n = evbuffer_get_length(in);
        assert_true(at < n);
        unsigned char *b = evbuffer_pullup(in, -1);
        b[at] ^= 0x01;
        const char *err = NULL;
        enum net_tls_park_result r = net_tls_park_open(pp.park, in, plain, 1 << 20, out, &err);
        /* a bit of the length may only make the record incomplete: nothing out yet */
        if (at == 3 || at == 4)
            assert_true(r == NET_TLS_PARK_ERROR || evbuffer_get_length(plain) == 0);
        else
            assert_int_equal(r, NET_TLS_PARK_ERROR);
        assert_int_equal(evbuffer_get_length(plain), 0);
        evbuffer_free(in);
        evbuffer_free(plain);
        evbuffer_free(out);
        pair_close(&pp);
    }
}

/* A wrong read sequence number (what a miscount would be) fails authentication. */
static void test_wrong_sequence(void **state)
{
    (void)state;
    uint8_t s1[32], s2[32];
    memset(s1, 1, sizeof(s1));
    memset(s2, 2, sizeof(s2));
    struct net_tls_park *cli = net_tls_park_new_raw(0x1301, s2, s1, 32, 0, 5);
    struct net_tls_park *srv = net_tls_park_new_raw(0x1301, s1, s2, 32, 4, 0);
    struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new(), *out = evbuffer_new();
    assert_true(net_tls_park_seal(cli, "x", 1, wire));
    const char *err = NULL;
    assert_int_equal(net_tls_park_open(srv, wire, plain, 1 << 20, out, &err), NET_TLS_PARK_ERROR);
    assert_string_equal(err, "record failed authentication");
    assert_int_equal(evbuffer_get_length(plain), 0);
    net_tls_park_free(cli);
    net_tls_park_free(srv);
    evbuffer_free(wire);
    evbuffer_free(plain);
    evbuffer_free(out);
}

static void test_large_write(void **state)
{
    (void)state;
    struct pair pp;
    pair_open(&pp, NULL, 0);
    pair_park(&pp);
    size_t len = 300000;
    char *big = malloc(len), *got = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    struct evbuffer *out = evbuffer_new();
    assert_true(net_tls_park_seal(pp.park, big, len, out));
    /* Records of at most 16 KiB of plaintext, each well formed. */
    size_t off = 0, records = 0, total = evbuffer_get_length(out);
    unsigned char *b = evbuffer_pullup(out, -1);
    while (off < total) {
        size_t clen = (size_t)b[off + 3] << 8 | b[off + 4];
        assert_int_equal(b[off], 23);
        assert_true(clen <= 16384 + 1 + 16);
        off += 5 + clen;
        records++;
    }
    assert_int_equal(off, total);
    assert_int_equal(records, (len + 16383) / 16384);
    client_read(&pp, out, got, len);
    assert_memory_equal(got, big, len);
    free(big);
    free(got);
    evbuffer_free(out);
    pair_close(&pp);
}

/* Records of other inner types, padding, junk: the parser's rules. */
static void test_inner_types(void **state)
{
    (void)state;
    uint8_t s1[48], s2[48];
    memset(s1, 3, sizeof(s1));
    memset(s2, 4, sizeof(s2));
    struct {
        uint8_t type;
        const char *data;
        size_t len, pad;
        enum net_tls_park_result want;
    } cases[] = {
        {23, "padded", 6, 100, NET_TLS_PARK_OK},
        {23, "", 0, 0, NET_TLS_PARK_OK},
        {22, "\x04\x00\x00\x01\x00", 5, 0, NET_TLS_PARK_ERROR}, /* NewSessionTicket */
        {22, "\x18\x00\x00\x01\x02", 5, 0, NET_TLS_PARK_ERROR}, /* bad request value */
        {22, "\x18\x00\x00\x01", 4, 0, NET_TLS_PARK_ERROR},     /* fragmented */
        {20, "\x01", 1, 0, NET_TLS_PARK_ERROR},                 /* protected CCS */
        {21, "\x02\x28", 2, 0, NET_TLS_PARK_CLOSE},             /* handshake_failure */
        {21, "\x01", 1, 0, NET_TLS_PARK_ERROR},                 /* short alert */
        {0, "", 0, 10, NET_TLS_PARK_ERROR},                     /* no content type */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct net_tls_park *cli = net_tls_park_new_raw(0x1302, s2, s1, 48, 0, 0);
        struct net_tls_park *srv = net_tls_park_new_raw(0x1302, s1, s2, 48, 0, 0);
        struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new(), *out = evbuffer_new();
        if (cases[i].type == 0) {
            /* all padding: sealed as type 0 with zeros, i.e. no type byte at all */
            assert_true(net_tls_park_seal_record(cli, 0, "", 0, cases[i].pad, wire));
        } else {
            assert_true(net_tls_park_seal_record(cli, cases[i].type, cases[i].data, cases[i].len,
                                                 cases[i].pad, wire));
        }
        const char *err = NULL;
        assert_int_equal(net_tls_park_open(srv, wire, plain, 1 << 20, out, &err), cases[i].want);
        if (cases[i].type == 23)
            assert_int_equal(evbuffer_get_length(plain), cases[i].len);
        else
            assert_int_equal(evbuffer_get_length(plain), 0);
        net_tls_park_free(cli);
        net_tls_park_free(srv);
        evbuffer_free(wire);
        evbuffer_free(plain);
        evbuffer_free(out);
    }
    /* An unprotected record, and one over 2^14 + 256 bytes. */
    struct net_tls_park *srv = net_tls_park_new_raw(0x1303, s1, s2, 32, 0, 0);
    struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    evbuffer_add(wire, "\x15\x03\x03\x00\x02\x01\x00", 7);
    assert_int_equal(net_tls_park_open(srv, wire, plain, 1 << 20, out, &err), NET_TLS_PARK_ERROR);
    net_tls_park_free(srv);
    srv = net_tls_park_new_raw(0x1303, s1, s2, 32, 0, 0);
    evbuffer_drain(wire, evbuffer_get_length(wire));
    evbuffer_add(wire, "\x17\x03\x03\x41\x01", 5);
    assert_int_equal(net_tls_park_open(srv, wire, plain, 1 << 20, out, &err), NET_TLS_PARK_ERROR);
    assert_string_equal(err, "record too long");
    /* A partial record waits. */
    net_tls_park_free(srv);
    srv = net_tls_park_new_raw(0x1303, s1, s2, 32, 0, 0);
    evbuffer_drain(wire, evbuffer_get_length(wire));
    evbuffer_add(wire, "\x17\x03\x03\x00\x20\x00", 6);
    assert_int_equal(net_tls_park_open(srv, wire, plain, 1 << 20, out, &err), NET_TLS_PARK_OK);
    assert_int_equal(evbuffer_get_length(wire), 6);
    net_tls_park_free(srv);
    evbuffer_free(wire);
    evbuffer_free(plain);
    evbuffer_free(out);
}

static void test_tls12_not_parked(void **state)
{
    (void)state;
    bool never = false;
    struct pair pp;
    pair_open(&pp, NULL, TLS1_2_VERSION);
    assert_string_equal(net_tls_park_check(pp.park, pp.srv, &never), "not TLS 1.3");
    assert_true(never);
    pair_close(&pp);
}

/*
 * KeyUpdates OpenSSL read and answered before parking (the peer parked first,
 * or asked): parking goes on from the generations reached, both ways.
 */
static void test_key_update_before_parking(void **state)
{
    (void)state;
    struct pair pp;
    pair_open(&pp, NULL, 0);
    assert_int_equal(SSL_key_update(pp.cli, SSL_KEY_UPDATE_REQUESTED), 1);
    ssl_exchange(pp.cli, pp.srv, "x"); /* the server reads it, owes its own */
    ssl_exchange(pp.srv, pp.cli, "y"); /* and sends it before "y" */
    assert_int_equal(SSL_key_update(pp.cli, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    ssl_exchange(pp.cli, pp.srv, "z"); /* a second generation on the client's side */
    pair_park(&pp);
    parked_round(&pp, "a4 NOOP\r\n", "a4 OK\r\n");
    pair_close(&pp);
}

/*
 * The peer parked first (both ends quiet together): its KeyUpdate is read
 * by OpenSSL, whose SSL_read then blocks for more (SSL_want: SSL_READING).
 * A read that blocked holds no byte: this end parks too, at the generation
 * the peer moved to (it once stayed unparked for good).
 */
static void test_peer_parked_first(void **state)
{
    (void)state;
    struct pair pp;
    pair_open(&pp, NULL, 0);
    /* What net_tls_park_begin makes OpenSSL send on the other end. */
    assert_int_equal(SSL_key_update(pp.cli, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    assert_int_equal(SSL_do_handshake(pp.cli), 1);
    char b[16];
    int r = SSL_read(pp.srv, b, sizeof(b));
    assert_int_equal(r, -1);
    assert_int_equal(SSL_get_error(pp.srv, r), SSL_ERROR_WANT_READ);
    assert_int_equal(SSL_want(pp.srv), SSL_READING);
    pair_park(&pp);
    parked_round(&pp, "DONE\r\n", "a2 OK IDLE terminated\r\n");
    pair_close(&pp);
}

/* A record half received: not parked (OpenSSL holds bytes we cannot have). */
static void test_pending_not_parked(void **state)
{
    (void)state;
    bool never = false;
    struct pair pp;
    pair_open(&pp, NULL, 0);
    assert_int_equal(SSL_write(pp.cli, "abcdef", 6), 6);
    char b;
    /* SSL_read of 1 byte leaves 5 decrypted bytes in OpenSSL */
    for (int i = 0; i < 100 && SSL_read(pp.srv, &b, 1) != 1; i++)
        ;
    assert_string_equal(net_tls_park_check(pp.park, pp.srv, &never), "pending data");
    assert_false(never);
    pair_close(&pp);
}

/*
 * The client side parked (a front-end's connection to its back-end): the
 * server's NewSessionTickets, read before parking and sent after it, change
 * nothing; data both ways; the exporter as OpenSSL's.
 */
static void test_client_side(void **state)
{
    (void)state;
    int sv[2];
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    net_tls_park_ctx_setup(cctx);
    SSL *cli = SSL_new(cctx), *srv = SSL_new(server_ctx);
    struct net_tls_park *park = net_tls_park_attach(cli);
    testtls_connect(cli, srv, &sv[0], &sv[1]);
    ssl_exchange(cli, srv, "W XWHARFPROXY\r\n"); /* the server writes its tickets here */
    ssl_exchange(srv, cli, "W OK\r\n");          /* and the client reads them */
    bool never = false;
    assert_null(net_tls_park_check(park, cli, &never));
    uint8_t ekm[32], ekm_parked[32];
    assert_int_equal(
        SSL_export_keying_material(cli, ekm, sizeof(ekm), "EXPORTER-test", 13, NULL, 0, 0), 1);
    const char *err = NULL;
    assert_int_equal(net_tls_park_begin(park, cli, &err), 0);
    SSL_free(cli);
    assert_true(net_tls_park_export(park, "EXPORTER-test", ekm_parked, sizeof(ekm_parked)));
    assert_memory_equal(ekm, ekm_parked, sizeof(ekm));
    /* The server (OpenSSL) reads our KeyUpdate, sends a ticket and data. */
    struct evbuffer *in = evbuffer_new(), *plain = evbuffer_new(), *out = evbuffer_new();
    assert_int_equal(SSL_new_session_ticket(srv), 1);
    assert_int_equal(SSL_write(srv, "* 1 EXISTS\r\n", 12), 12);
    raw_read(sv[0], in);
    assert_int_equal(net_tls_park_open(park, in, plain, 1 << 20, out, &err), NET_TLS_PARK_OK);
    expect_plain(plain, "* 1 EXISTS\r\n");
    assert_true(net_tls_park_seal(park, "DONE\r\n", 6, out));
    assert_true(evbuffer_write(out, sv[0]) > 0);
    char got[16];
    size_t have = 0;
    for (int i = 0; i < 1000 && have < 6; i++) {
        int r = SSL_read(srv, got + have, (int)(sizeof(got) - have));
        if (r > 0)
            have += (size_t)r;
        else
            assert_true(testtls_want_retry(srv, r));
    }
    assert_int_equal(have, 6);
    assert_memory_equal(got, "DONE\r\n", 6);
    evbuffer_free(in);
    evbuffer_free(plain);
    evbuffer_free(out);
    net_tls_park_free(park);
    SSL_free(srv);
    SSL_CTX_free(cctx);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_aes128),
        cmocka_unit_test(test_data_aes256),
        cmocka_unit_test(test_data_chacha),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_wrong_sequence),
        cmocka_unit_test(test_large_write),
        cmocka_unit_test(test_inner_types),
        cmocka_unit_test(test_tls12_not_parked),
        cmocka_unit_test(test_key_update_before_parking),
        cmocka_unit_test(test_pending_not_parked),
        cmocka_unit_test(test_peer_parked_first),
        cmocka_unit_test(test_client_side),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
