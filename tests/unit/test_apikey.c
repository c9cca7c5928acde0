/* API keys: lookups, file syntax and its errors, many keys, and that no
 * key survives in clear in the loaded set (includes apikey.c to look). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/policy/apikey.c"

static pv_apikeys_t *load(const char *text)
{
    char err[256] = "";
    pv_apikeys_t *ks = pv_apikey_load_text(text, strlen(text), "keys", err, sizeof(err));
    if (!ks)
        fail_msg("%s", err);
    return ks;
}

/* The consumer of key as a C string, NULL when unknown. */
static const char *who(const pv_apikeys_t *ks, const char *key)
{
    static char out[128];
    pv_str_t c;
    if (pv_apikey_lookup(ks, (pv_str_t){key, strlen(key)}, &c) != PV_OK)
        return NULL;
    memcpy(out, c.p, c.len);
    out[c.len] = '\0';
    return out;
}

static const char FILE_TEXT[] = "# key              consumer\n"
                                "\n"
                                "k-7f3a9c01d2e4   billing\n"
                                "\tk-55aa55aa55aa\tsearch-api\t\r\n"
                                "   # indented comment\n"
                                "k-7f3a9c01d2e    billing-old\n"
                                "K-7F3A9C01D2E4 mobile\n"
                                "x billing";

static void test_lookup(void **state)
{
    (void)state;
    pv_apikeys_t *ks = load(FILE_TEXT);
    assert_int_equal(pv_apikey_count(ks), 5);
    assert_string_equal(who(ks, "k-7f3a9c01d2e4"), "billing");
    assert_string_equal(who(ks, "k-55aa55aa55aa"), "search-api");
    assert_string_equal(who(ks, "k-7f3a9c01d2e"), "billing-old"); /* a prefix is another key */
    assert_string_equal(who(ks, "K-7F3A9C01D2E4"), "mobile");     /* keys are case-sensitive */
    assert_string_equal(who(ks, "x"), "billing");
    assert_null(who(ks, "k-7f3a9c01d2e45"));
    assert_null(who(ks, "k-7f3a9c01d2e4 "));
    assert_null(who(ks, "billing"));
    assert_null(who(ks, "#"));
    pv_str_t c;
    assert_int_equal(pv_apikey_lookup(ks, (pv_str_t){"", 0}, &c), PV_ERR);
    assert_int_equal(pv_apikey_lookup(ks, (pv_str_t){"x\0", 2}, &c), PV_ERR);
    assert_int_equal(pv_apikey_lookup(NULL, PV_STR("x"), &c), PV_ERR);
    pv_apikey_free(ks);
    pv_apikey_free(NULL);
    assert_int_equal(pv_apikey_count(NULL), 0);

    ks = load("");
    assert_int_equal(pv_apikey_count(ks), 0);
    assert_null(who(ks, "x"));
    pv_apikey_free(ks);
}

/* Keys are held only as digests: no key's bytes appear anywhere in the
 * loaded structure, and each slot holds the SHA-256 of its key. */
static void test_only_digests_kept(void **state)
{
    (void)state;
    pv_apikeys_t *ks = load(FILE_TEXT);
    static const char *keys[] = {"k-7f3a9c01d2e4", "k-55aa55aa55aa", "K-7F3A9C01D2E4"};
    size_t slots_len = (ks->mask + 1) * sizeof(ak_slot_t);
    size_t blob_len = 0;
    for (size_t i = 0; i < ks->n; i++)
        blob_len += ks->names[i].len;
    for (size_t i = 0; i < 3; i++) {
        assert_null(memmem(ks->slots, slots_len, keys[i], strlen(keys[i])));
        assert_null(memmem(ks->blob, blob_len, keys[i], strlen(keys[i])));
        unsigned char d[32];
        assert_int_equal(sha256(keys[i], strlen(keys[i]), d), PV_OK);
        const ak_slot_t *s = probe(ks, d);
        assert_int_not_equal(s->consumer, 0);
        assert_memory_equal(s->digest, d, 32);
    }
    pv_apikey_free(ks);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"a one\nb two\n\n# c\na three\n", "duplicate API key (first at line 1) in keys:5"},
        {"a one\nb\n", "expected \"KEY CONSUMER\", found 1 field in keys:2"},
        {"a one two\n", "expected \"KEY CONSUMER\", found 3 fields in keys:1"},
        {"a\xc3\xa9 one\n", "invalid character in API key or consumer name in keys:1"},
        {"a on\x7f\n", "invalid character in API key or consumer name in keys:1"},
        {"a one\vx\n", "invalid character in API key or consumer name in keys:1"},
        {"a one\r\r\n", "invalid character in API key or consumer name in keys:1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        pv_apikeys_t *ks = pv_apikey_load_text(bad[i].text, strlen(bad[i].text), "keys", err, sizeof(err));
        if (ks) {
            pv_apikey_free(ks);
            fail_msg("loaded %s", bad[i].text);
        }
        assert_string_equal(err, bad[i].err);
    }
    /* the same key text with different consumers is still a duplicate;
     * the message never shows the key */
    char err[256];
    assert_null(pv_apikey_load_text("sekrit a\nsekrit b\n", 18, "keys", err, sizeof(err)));
    assert_null(strstr(err, "sekrit"));
}

static void test_many_keys(void **state)
{
    (void)state;
    size_t n = 20000;
    char *text = malloc(n * 48);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(text + o, "key-%zu-%zx consumer-%zu\n", i, i * 2654435761u, i % 97);
    char err[256];
    pv_apikeys_t *ks = pv_apikey_load_text(text, o, "many", err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(pv_apikey_count(ks), n);
    for (size_t i = 0; i < n; i++) {
        char k[64], want[32];
        snprintf(k, sizeof(k), "key-%zu-%zx", i, i * 2654435761u);
        snprintf(want, sizeof(want), "consumer-%zu", i % 97);
        const char *got = who(ks, k);
        assert_non_null(got);
        assert_string_equal(got, want);
        snprintf(k, sizeof(k), "key-%zu-%zx", i, i * 2654435761u + 1);
        assert_null(who(ks, k));
    }
    pv_apikey_free(ks);
    free(text);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pv_apikeys_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, FILE_TEXT, sizeof(FILE_TEXT) - 1), (ssize_t)(sizeof(FILE_TEXT) - 1));
    close(fd);
    char err[256];
    pv_apikeys_t *ks = pv_apikey_load(path, err, sizeof(err));
    assert_non_null(ks);
    assert_string_equal(who(ks, "k-55aa55aa55aa"), "search-api");
    pv_apikey_free(ks);
    unlink(path);
    assert_null(pv_apikey_load("/nonexistent/keys", err, sizeof(err)));
    assert_string_equal(err, "open() \"/nonexistent/keys\" failed (2: No such file or directory)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),      cmocka_unit_test(test_only_digests_kept), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_many_keys),   cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
