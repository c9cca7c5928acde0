/* Basic authentication: every hash format against published or
 * independently made hashes (openssl passwd for $apr1$ and $1$, the
 * SHA-crypt specification's examples, crypt_blowfish's test vector),
 * file loading with its errors, and the Authorization header parser.
 * Includes htpasswd.c to compare its MD5 crypt with libcrypt's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/policy/htpasswd.c"

static int ok(const char *hash, const char *pw)
{
    return pv_htpasswd_verify((pv_str_t){hash, strlen(hash)}, (pv_str_t){pw, strlen(pw)}) == PV_OK;
}

/* Hashes made with `openssl passwd -apr1 -salt SALT PASSWORD`. */
static void test_apr1(void **state)
{
    (void)state;
    static const char *v[][2] = {
        {"", "$apr1$x$tMwYqBfQwi3FYAr0aJc8M/"},
        {"", "$apr1$abcdefgh$L.PT565ESX4Tp2bqNs7Ie."},
        {"a", "$apr1$r31....7$HuttiK3LlwZk2KE.cabCY/"},
        {"myPassword", "$apr1$x$emfkPELvvteF79VFFM8Tw1"},
        {"myPassword", "$apr1$r31....7$eFGyPo4syda3W1ZeaJCQL0"},
        {"myPassword", "$apr1$abcdefgh$EfExgQSMBXioDhIVk8IOb1"},
        {"a much longer password that spans several MD5 blocks!", "$apr1$x$4cBzm4MoiXh27R.oeZ2EO."},
        {"a much longer password that spans several MD5 blocks!", "$apr1$abcdefgh$ciWbH/kLV6KM02vbZk4.x0"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (!ok(v[i][1], v[i][0]))
            fail_msg("%s does not match %s", v[i][1], v[i][0]);
        assert_false(ok(v[i][1], "wrong"));
    }
    assert_false(ok("$apr1$x$emfkPELvvteF79VFFM8Tw1", "mypassword"));
    assert_false(ok("$apr1$x$emfkPELvvteF79VFFM8Tw1", "myPassword "));
    /* the same algorithm with "$1$" is libcrypt's MD5 crypt */
    static const char *pws[] = {"", "x", "password", "0123456789abcdef", "0123456789abcdef0", "\xc3\xa9t\xc3\xa9"};
    static const char *salts[] = {"", "a", "saltsalt"};
    for (size_t i = 0; i < sizeof(pws) / sizeof(pws[0]); i++) {
        for (size_t j = 0; j < 3; j++) {
            char mine[64], setting[32];
            assert_int_equal(md5_crypt(pws[i], strlen(pws[i]), salts[j], strlen(salts[j]), "$1$", mine, sizeof(mine)),
                             PV_OK);
            snprintf(setting, sizeof(setting), "$1$%s$", salts[j]);
            struct crypt_data cd;
            memset(&cd, 0, sizeof(cd));
            const char *theirs = crypt_rn(pws[i], setting, &cd, sizeof(cd));
            assert_non_null(theirs);
            assert_string_equal(mine, theirs);
        }
    }
    assert_true(ok("$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/", "password")); /* openssl passwd -1 */
    char small[8];
    assert_int_equal(md5_crypt("x", 1, "s", 1, "$apr1$", small, sizeof(small)), PV_ERR);
}

static void test_crypt_family(void **state)
{
    (void)state;
    /* crypt_blowfish's test vector */
    assert_true(ok("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"));
    assert_false(ok("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*V"));
    /* the SHA-crypt specification's examples */
    static const char *hw = "Hello world!";
    assert_true(ok("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", hw));
    assert_true(ok("$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA", hw));
    assert_true(ok("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                   hw));
    assert_true(ok("$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/"
                   "YTBmSK6H9qs/y3RnOaw5v.",
                   hw));
    assert_false(ok("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                    "Hello world"));
    /* $2y$, $2b$ and yescrypt hashes made here with libcrypt */
    static const char *prefixes[] = {"$2y$", "$2b$", "$y$"};
    for (size_t i = 0; i < 3; i++) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        assert_non_null(crypt_gensalt_rn(prefixes[i], 0, NULL, 0, salt, sizeof(salt)));
        struct crypt_data cd;
        memset(&cd, 0, sizeof(cd));
        const char *h = crypt_rn("s3cret:with colon", salt, &cd, sizeof(cd));
        assert_non_null(h);
        char hash[CRYPT_OUTPUT_SIZE];
        snprintf(hash, sizeof(hash), "%s", h);
        if (!ok(hash, "s3cret:with colon"))
            fail_msg("%s", hash);
        assert_false(ok(hash, "s3cret:with colo"));
    }
    /* a NUL inside the password would cut it short for crypt: never a match */
    pv_str_t h = PV_STR("$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/");
    assert_int_equal(pv_htpasswd_verify(h, (pv_str_t){"password\0x", 10}), PV_ERR);
    assert_int_equal(pv_htpasswd_verify(h, (pv_str_t){"password", 8}), PV_OK);
    /* over the length limit */
    char *longpw = malloc(PV_HTPASSWD_PASS_MAX + 2);
    memset(longpw, 'a', PV_HTPASSWD_PASS_MAX + 1);
    longpw[PV_HTPASSWD_PASS_MAX + 1] = '\0';
    assert_false(ok(h.p, longpw));
    free(longpw);
    /* traditional DES is not accepted, nor malformed hashes */
    assert_false(ok("abJnggxhB/yWI", "password"));
    assert_false(ok("$2y$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"));
    assert_false(ok("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe", "U*U"));
    assert_false(ok("$6$saltstring$short", "x"));
    assert_false(ok("$1$saltsaltX$qjXMvbEw8oaL.CzflDtaK/", "password"));
    assert_false(ok("$apr1$123456789$emfkPELvvteF79VFFM8Tw1", "x"));
    assert_false(ok("", ""));
}

static void test_sha_plain(void **state)
{
    (void)state;
    assert_true(ok("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret")); /* base64(SHA-1("secret")) */
    assert_false(ok("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "Secret"));
    assert_false(ok("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ", "secret")); /* unpadded */
    assert_false(ok("{SHA}5en6G6MezRroT3XKqkdPOmY/Bf==", "secret"));
    assert_true(ok("{SSHA}M240ap6vmxsF0WmYlS1TsUdZ1q5TQUxUMQ==", "secret")); /* salt "SALT1" */
    assert_false(ok("{SSHA}M240ap6vmxsF0WmYlS1TsUdZ1q5TQUxUMQ==", "secreT"));
    assert_false(ok("{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret")); /* no salt */
    assert_true(ok("{PLAIN}open sesame", "open sesame"));
    assert_false(ok("{PLAIN}open sesame", "open sesame!"));
    assert_false(ok("{PLAIN}open sesame", "open"));
    assert_true(ok("{PLAIN}", ""));
}

static void test_file(void **state)
{
    (void)state;
    static const char text[] = "# users\n"
                               "\n"
                               "   \n"
                               "alice:$apr1$r31....7$eFGyPo4syda3W1ZeaJCQL0\r\n"
                               "bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=:Bob, second floor\n"
                               "carol:{PLAIN}pa ss\n"
                               "dave:$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/\n"
                               "eve smith:{SSHA}M240ap6vmxsF0WmYlS1TsUdZ1q5TQUxUMQ==\n"
                               "frank:$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    char err[256] = "";
    pv_htpasswd_t *h = pv_htpasswd_load_text(text, sizeof(text) - 1, "users", err, sizeof(err));
    if (!h)
        fail_msg("%s", err);
    assert_int_equal(pv_htpasswd_count(h), 6);
    static const char *good[][2] = {{"alice", "myPassword"}, {"bob", "secret"},  {"carol", "pa ss"},
                                    {"dave", "password"},    {"eve smith", "secret"}, {"frank", "U*U"}};
    for (size_t i = 0; i < 6; i++) {
        pv_str_t u = {good[i][0], strlen(good[i][0])}, p = {good[i][1], strlen(good[i][1])};
        assert_int_equal(pv_htpasswd_check(h, u, p), PV_OK);
        assert_int_equal(pv_htpasswd_check(h, u, PV_STR("nope")), PV_ERR);
    }
    assert_int_equal(pv_htpasswd_check(h, PV_STR("Alice"), PV_STR("myPassword")), PV_ERR);
    assert_int_equal(pv_htpasswd_check(h, PV_STR("mallory"), PV_STR("secret")), PV_ERR);
    assert_int_equal(pv_htpasswd_check(h, PV_STR(""), PV_STR("")), PV_ERR);
    assert_int_equal(pv_htpasswd_check(NULL, PV_STR("alice"), PV_STR("myPassword")), PV_ERR);
    pv_htpasswd_free(h);
    /* an empty file has no users but loads */
    h = pv_htpasswd_load_text("", 0, "empty", err, sizeof(err));
    assert_non_null(h);
    assert_int_equal(pv_htpasswd_count(h), 0);
    assert_int_equal(pv_htpasswd_check(h, PV_STR("a"), PV_STR("b")), PV_ERR);
    pv_htpasswd_free(h);
    pv_htpasswd_free(NULL);
    /* from a file */
    char path[] = "/tmp/pv_htpasswd_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    h = pv_htpasswd_load(path, err, sizeof(err));
    assert_non_null(h);
    assert_int_equal(pv_htpasswd_check(h, PV_STR("carol"), PV_STR("pa ss")), PV_OK);
    pv_htpasswd_free(h);
    unlink(path);
    assert_null(pv_htpasswd_load("/nonexistent/htpasswd", err, sizeof(err)));
    assert_string_equal(err, "open() \"/nonexistent/htpasswd\" failed (2: No such file or directory)");
}

static void test_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"# c\nalice:{PLAIN}x\nbob\n", "no ':' between user and password in users:3"},
        {":{PLAIN}x\n", "empty user name in users:1"},
        {"alice:{PLAIN}x\n\nalice:{PLAIN}y\n", "duplicate user \"alice\" in users:3"},
        {"alice:abJnggxhB/yWI\n", "unsupported or malformed password hash for user \"alice\" in users:1"},
        {"alice:\n", "unsupported or malformed password hash for user \"alice\" in users:1"},
        {"a:{PLAIN}x\nb:{SHA}abc\n", "malformed password hash for user \"b\" in users:2"},
        {"b:{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n", "malformed password hash for user \"b\" in users:1"},
        {"c:$2y$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n",
         "unsupported or malformed password hash for user \"c\" in users:1"},
        {"d:$6$rounds=$salt$x\n", "unsupported or malformed password hash for user \"d\" in users:1"},
        {"e:$5$saltsaltsaltsaltsalt$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA\n",
         "unsupported or malformed password hash for user \"e\" in users:1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        pv_htpasswd_t *h = pv_htpasswd_load_text(bad[i].text, strlen(bad[i].text), "users", err, sizeof(err));
        if (h) {
            pv_htpasswd_free(h);
            fail_msg("loaded %s", bad[i].text);
        }
        assert_string_equal(err, bad[i].err);
    }
}

/* Parse value; returns the rc and copies user and password out. */
static int basic(const char *value, char *user, char *pass)
{
    char buf[64];
    pv_str_t u, p;
    int rc = pv_htpasswd_basic_parse((pv_str_t){value, strlen(value)}, buf, sizeof(buf), &u, &p);
    if (rc == PV_OK) {
        memcpy(user, u.p, u.len);
        user[u.len] = '\0';
        memcpy(pass, p.p, p.len);
        pass[p.len] = '\0';
    }
    return rc;
}

static void test_basic_header(void **state)
{
    (void)state;
    char u[64], p[64];
    assert_int_equal(basic("Basic dXNlcjpwYXNz", u, p), PV_OK); /* user:pass */
    assert_string_equal(u, "user");
    assert_string_equal(p, "pass");
    static const char *same[] = {"basic dXNlcjpwYXNz", "BASIC   dXNlcjpwYXNz", " Basic dXNlcjpwYXNz \t"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(basic(same[i], u, p), PV_OK);
        assert_string_equal(u, "user");
    }
    assert_int_equal(basic("Basic dXNlcjpwYXNzMQ==", u, p), PV_OK); /* user:pass1 */
    assert_string_equal(p, "pass1");
    assert_int_equal(basic("Basic dXNlcjpwYXNzMQ", u, p), PV_OK); /* unpadded */
    assert_string_equal(p, "pass1");
    assert_int_equal(basic("Basic dTpwYTpzcw==", u, p), PV_OK); /* u:pa:ss: the first ':' splits */
    assert_string_equal(u, "u");
    assert_string_equal(p, "pa:ss");
    assert_int_equal(basic("Basic dTo=", u, p), PV_OK); /* "u:": an empty password */
    assert_string_equal(p, "");
    assert_int_equal(basic("Basic w6k6w6k=", u, p), PV_OK); /* UTF-8 "é:é" */
    assert_string_equal(u, "\xc3\xa9");
    static const char *bad[] = {
        "Basic dXNlcjpwYXNzMQ=",    /* half padding */
        "Basic dXNlcjpwYXNzMR==",   /* stray bits */
        "Basic dXNlcjpwYXNz=",      /* padding after a full group */
        "Basic dXNlc",              /* 4k+1 characters */
        "Basic dXNl*jpwYXNz",       /* outside the alphabet */
        "Basic dXNlcjpw YXNz",      /* space inside */
        "Basic dXNlcnBhc3M=",       /* "userpass": no ':' */
        "Basic OnBhc3M=",           /* ":pass": empty user */
        "Basic dTpwCg==",           /* "u:p\n": a control character */
        "Basic AHU6cA==",           /* "\0u:p" */
        "Basic",
        "Basic ",
        "Basic\tdXNlcjpwYXNz",
        "Basicx dXNlcjpwYXNz",
        "Bearer dXNlcjpwYXNz",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (basic(bad[i], u, p) != PV_ERR)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* buffer too small */
    char tiny[4];
    pv_str_t uu, pp;
    assert_int_equal(pv_htpasswd_basic_parse(PV_STR("Basic dXNlcjpwYXNz"), tiny, sizeof(tiny), &uu, &pp), PV_ERR);
    char exact[9];
    assert_int_equal(pv_htpasswd_basic_parse(PV_STR("Basic dXNlcjpwYXNz"), exact, sizeof(exact), &uu, &pp), PV_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apr1),          cmocka_unit_test(test_crypt_family), cmocka_unit_test(test_sha_plain),
        cmocka_unit_test(test_file),          cmocka_unit_test(test_file_errors),  cmocka_unit_test(test_basic_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
