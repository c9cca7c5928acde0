#include "access.h"
#include "phases.h"

#include <errno.h>
#include <netinet/in.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "../config/conf.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../proc/worker.h"
#include "../policy/apikey.h"
#include "../policy/htpasswd.h"
#include "../policy/userfile.h"
#include "../policy/jwt.h"
#include "../policy/redis.h"
#include "headers.h"
#include "router.h"
#include "script.h"
#include "server.h"
#include "stats.h"
#include "uri.h"
#include "vars.h"
#include "accesslog.h"

/* The steps, in order. */
enum {
    ACC_LIMIT_REQ = 0,  /* limit_req whose keys are known now */
    ACC_LIMIT_CONN,     /* limit_conn, likewise */
    ACC_AUTH,           /* auth_basic, API key, auth_jwt */
    ACC_AUTH_REQUEST,   /* the auth subrequest */
    ACC_LIMIT_REQ_LATE, /* limits keyed by what authentication found */
    ACC_LIMIT_CONN_LATE,
    ACC_DONE,
    ACC_REFUSE          /* auth_delay is over: send the 401 */
};

static int run(pv_hreq_t *hr);
static void resume(pv_hreq_t *hr);

/* ---- per-worker Redis clients, by address ------------------------------------ */

typedef struct rlink_s {
    pv_redis_t *r;        /* its configuration outlives the config generation that made it */
    struct rlink_s *next;
} rlink_t;

static __thread rlink_t *rlinks;

static pv_redis_t *redis_for(pv_worker_t *w, const pv_zone_t *z)
{
    for (rlink_t *l = rlinks; l; l = l->next)
        if (pv_redis_target_eq(pv_redis_target(l->r), z->redis))
            return l->r;
    rlink_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->r = pv_redis_new(w->loop, z->redis);
    if (!l->r) {
        free(l);
        return NULL;
    }
    l->next = rlinks;
    rlinks = l;
    return l->r;
}

void pv_access_thread_cleanup(void)
{
    while (rlinks) {
        rlink_t *l = rlinks;
        rlinks = l->next;
        pv_redis_free(l->r);
        free(l);
    }
}

/* ---- helpers ------------------------------------------------------------------- */

static const pv_policy_conf_t *policy(pv_hreq_t *hr)
{
    return &hr->r.loc->conf.policy;
}

static pv_str_t eval(pv_hreq_t *hr, const pv_cv_t *cv)
{
    if (cv->is_const)
        return cv->nparts ? cv->parts[0].text : (pv_str_t){"", 0};
    size_t need = pv_cv_eval(cv, &hr->r, PV_ESCAPE_NONE, NULL, 0);
    char *p = pv_arena_alloc(&hr->arena, need + 1);
    pv_cv_eval(cv, &hr->r, PV_ESCAPE_NONE, p, need + 1);
    p[need] = '\0';
    return (pv_str_t){p, need};
}

/* Append a header line to what every response of this request carries. */
static void add_header(pv_hreq_t *hr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_header(pv_hreq_t *hr, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 2)
        return;
    memcpy(line + n, "\r\n", 2);
    n += 2;
    pv_access_t *a = &hr->acc;
    char *p = pv_arena_alloc(&hr->arena, a->xhdr.len + (size_t)n);
    if (a->xhdr.len)
        memcpy(p, a->xhdr.p, a->xhdr.len);
    memcpy(p + a->xhdr.len, line, (size_t)n);
    a->xhdr = (pv_str_t){p, a->xhdr.len + (size_t)n};
}

/* NGINX's context for policy log lines. */
static void log_context(pv_hreq_t *hr, char *buf, size_t cap)
{
    pv_request_t *r = &hr->r;
    pv_str_t sname = r->srv->nnames ? r->srv->names[0].name : (pv_str_t){"", 0};
    const pv_header_t *host = pv_request_header(r, "host", 4);
    int n = snprintf(buf, cap, ", client: %s, server: %.*s, request: \"%.*s\"", pv_log_client(r), (int)sname.len,
                     sname.p, (int)r->request_line.len, r->request_line.p);
    if (host && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, ", host: \"%.*s\"", (int)host->value.len, host->value.p);
}

static void refuse(pv_hreq_t *hr, int status)
{
    hr->acc.waiting = 0;
    pv_resp_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

/* ---- limit_req --------------------------------------------------------------------- */

/* RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers) for
 * the limit that decided, and Retry-After on a rejection. */
static void ratelimit_headers(pv_hreq_t *hr, const pv_zone_t *z, const pv_limit_req_result_t *res, int headers)
{
    uint64_t t = (res->reset_ms + 999) / 1000;
    if (res->action == PV_LIMIT_REJECT)
        add_header(hr, "Retry-After: %llu", (unsigned long long)(t ? t : 1));
    if (!headers || !z)
        return;
    uint64_t q, w;
    if (z->rate % 1000 == 0) {
        q = z->rate / 1000;
        w = 1;
    } else {
        q = PV_MAX((z->rate * 60 + 500) / 1000, (uint64_t)1); /* NGINX keeps 1r/m as 0.016 r/s */
        w = 60;
    }
    add_header(hr, "RateLimit-Policy: \"%s\";q=%llu;w=%llu", z->name, (unsigned long long)q, (unsigned long long)w);
    add_header(hr, "RateLimit: \"%s\";r=%llu;t=%llu", z->name, (unsigned long long)res->remaining,
               (unsigned long long)t);
}

/* limit_req's outcome into the zones' metrics: the deciding zone's, or
 * a pass in every zone checked. */
static void limit_req_counted(pv_hreq_t *hr, const char *st, pv_zone_t *const *zones, int n, const pv_zone_t *z)
{
    int out = -1;
    for (int i = 0; st && i < PV_SLIM_N && out < 0; i++)
        if (strcasecmp(st, pv_stats_limit_outcomes[i]) == 0)
            out = i;
    if (out < 0)
        return;
    if (z && out != PV_SLIM_PASSED)
        pv_stats_limit(hr, z, out);
    else
        for (int i = 0; i < n; i++)
            pv_stats_limit(hr, zones[i], out);
}

/* The outcome of the limit_req lines of one step (all local lines in one
 * check, then each Redis line). */
static int limit_req_apply(pv_hreq_t *hr, const pv_limit_req_t *limits, pv_zone_t *const *zones, int n,
                           const pv_limit_req_result_t *res, int which_base)
{
    const pv_policy_conf_t *p = policy(hr);
    int dry = p->limit_req_dry_run;
    const char *st = pv_limit_req_status(res, dry);
    if (st)
        hr->r.limit_req_status = st;
    if (res->action != PV_LIMIT_PASS) {
        char ctx[1024];
        log_context(hr, ctx, sizeof(ctx));
        pv_limit_req_log(limits, res, p->limit_req_log_level, dry, ctx);
    }
    const pv_zone_t *z = res->which >= 0 && res->which < n ? zones[res->which] : NULL;
    PV_UNUSED(which_base);
    limit_req_counted(hr, st, zones, n, z);
    if (res->action == PV_LIMIT_REJECT && !dry) {
        ratelimit_headers(hr, z, res, p->limit_req_headers);
        refuse(hr, p->limit_req_status);
        return -1;
    }
    if (res->which >= 0 && p->limit_req_headers && !dry)
        ratelimit_headers(hr, z, res, 1);
    if (res->action == PV_LIMIT_DELAY && !dry)
        return (int)PV_MIN(res->delay_ms, (uint64_t)INT32_MAX);
    return 0;
}

static void delay_cb(pv_timer_t *t)
{
    pv_hreq_t *hr = t->data;
    pv_log_req_set(&hr->r);
    hr->acc.waiting = 0;
    resume(hr);
    pv_log_req_set(NULL);
}

static void park_delay(pv_hreq_t *hr, int ms)
{
    hr->acc.waiting = 1;
    pv_timer_set(hr->w->loop, &hr->acc.timer, (uint64_t)ms);
}

static void redis_cb(void *arg, const pv_limit_req_result_t *res, const char *err);

/* Check the Redis lines of this step from index i on; returns -1 when the
 * request was answered or is waiting, else the delay in ms. */
static int limit_req_redis(pv_hreq_t *hr, int late, int from, int delay)
{
    const pv_policy_conf_t *p = policy(hr);
    for (int i = from; i < p->nlreq; i++) {
        pv_zone_t *z = p->lreq_zone[i];
        if (!z->redis || z->key_late != late)
            continue;
        pv_str_t key = eval(hr, &z->key);
        if (!key.len)
            continue;
        pv_redis_t *rc = redis_for(hr->w, z);
        const char *err = "redis client unavailable";
        if (rc) {
            hr->acc.rlimit = i;
            int rv = pv_redis_limit(rc, &p->lreq[i], key, redis_cb, hr, &hr->acc.rreq, &err);
            if (rv == PV_AGAIN) {
                hr->acc.waiting = 1;
                hr->acc.step = late ? ACC_LIMIT_REQ_LATE : ACC_LIMIT_REQ;
                /* remember the delay so far in the code field while waiting */
                hr->acc.code = delay;
                return -1;
            }
        }
        /* Redis is unreachable: fall back to the local zone or refuse */
        pv_limit_req_result_t res;
        if (z->redis_fail_closed) {
            pv_log(PV_LOG_INFO, "limit_req zone \"%s\": %s, refusing (redis_fail=closed)", z->name, err);
            ratelimit_headers(hr, z, &(pv_limit_req_result_t){.action = PV_LIMIT_REJECT, .reset_ms = 1000}, 0);
            refuse(hr, p->limit_req_status);
            return -1;
        }
        pv_limit_req_check(&p->lreq[i], &key, 1, pv_now_ms(), &res);
        int d = limit_req_apply(hr, &p->lreq[i], &p->lreq_zone[i], 1, &res, i);
        if (d < 0)
            return -1;
        delay = PV_MAX(delay, d);
    }
    return delay;
}

static void redis_reply(pv_hreq_t *hr, const pv_limit_req_result_t *res, const char *err);

static void redis_cb(void *arg, const pv_limit_req_result_t *res, const char *err)
{
    pv_hreq_t *hr = arg;
    pv_log_req_set(&hr->r);
    redis_reply(hr, res, err);
    pv_log_req_set(NULL);
}

static void redis_reply(pv_hreq_t *hr, const pv_limit_req_result_t *res, const char *err)
{
    pv_access_t *a = &hr->acc;
    const pv_policy_conf_t *p = policy(hr);
    int i = a->rlimit;
    pv_zone_t *z = p->lreq_zone[i];
    int late = a->step == ACC_LIMIT_REQ_LATE;
    int delay = a->code;
    a->rreq = NULL;
    a->waiting = 0;
    pv_limit_req_result_t local;
    if (!res) {
        if (z->redis_fail_closed) {
            pv_log(PV_LOG_INFO, "limit_req zone \"%s\": %s, refusing (redis_fail=closed)", z->name, err);
            ratelimit_headers(hr, z, &(pv_limit_req_result_t){.action = PV_LIMIT_REJECT, .reset_ms = 1000}, 0);
            refuse(hr, p->limit_req_status);
            return;
        }
        pv_str_t key = eval(hr, &z->key);
        pv_limit_req_check(&p->lreq[i], &key, 1, pv_now_ms(), &local);
        res = &local;
    }
    int d = limit_req_apply(hr, &p->lreq[i], &p->lreq_zone[i], 1, res, i);
    if (d < 0)
        return;
    delay = limit_req_redis(hr, late, i + 1, PV_MAX(delay, d));
    if (delay < 0)
        return;
    a->step = late ? ACC_LIMIT_CONN_LATE : ACC_LIMIT_CONN;
    if (delay > 0) {
        park_delay(hr, delay);
        return;
    }
    resume(hr);
}

/* One limit_req step over the lines whose key timing matches. Returns -1
 * when answered or waiting, else the delay to apply in ms. */
static int limit_req_step(pv_hreq_t *hr, int late)
{
    const pv_policy_conf_t *p = policy(hr);
    pv_limit_req_t lim[16];
    pv_zone_t *zs[16];
    pv_str_t keys[16];
    int n = 0, any_redis = 0;
    for (int i = 0; i < p->nlreq && n < 16; i++) {
        pv_zone_t *z = p->lreq_zone[i];
        if (z->key_late != late)
            continue;
        if (z->redis) {
            any_redis = 1;
            continue;
        }
        lim[n] = p->lreq[i];
        zs[n] = z;
        keys[n] = eval(hr, &z->key);
        n++;
    }
    int delay = 0;
    if (n) {
        pv_limit_req_result_t res;
        pv_limit_req_check(lim, keys, n, pv_now_ms(), &res);
        delay = limit_req_apply(hr, lim, zs, n, &res, 0);
        if (delay < 0)
            return -1;
    }
    if (any_redis)
        return limit_req_redis(hr, late, 0, delay);
    return delay;
}

/* ---- limit_conn --------------------------------------------------------------------- */

static int limit_conn_step(pv_hreq_t *hr, int late)
{
    const pv_policy_conf_t *p = policy(hr);
    pv_access_t *a = &hr->acc;
    pv_limit_conn_t lim[16];
    const pv_zone_t *zs[16];
    pv_str_t keys[16];
    int n = 0;
    for (int i = 0; i < p->nlconn && n < 16; i++) {
        if (p->lconn_zone[i]->key_late != late)
            continue;
        lim[n] = p->lconn[i];
        zs[n] = p->lconn_zone[i];
        keys[n] = eval(hr, &p->lconn_zone[i]->key);
        n++;
    }
    if (!n)
        return 0;
    pv_limit_conn_ref_t *refs = pv_arena_calloc(&hr->arena, sizeof(*refs) * (size_t)n);
    int which = -1;
    int rc = pv_limit_conn_check(lim, keys, n, refs, &which);
    if (rc == PV_LIMIT_PASS) {
        /* keep the slots until the request ends (earlier step's too) */
        pv_limit_conn_ref_t *all = pv_arena_alloc(&hr->arena, sizeof(*all) * (size_t)(a->nconn_refs + n));
        if (a->nconn_refs)
            memcpy(all, a->conn_refs, sizeof(*all) * (size_t)a->nconn_refs);
        memcpy(all + a->nconn_refs, refs, sizeof(*refs) * (size_t)n);
        a->conn_refs = all;
        a->nconn_refs += n;
        hr->r.limit_conn_status = "PASSED";
        for (int i = 0; i < n; i++)
            pv_stats_limit(hr, zs[i], PV_SLIM_PASSED);
        return 0;
    }
    int dry = p->limit_conn_dry_run;
    if (rc == PV_LIMIT_REJECT && which >= 0) {
        char ctx[1024];
        log_context(hr, ctx, sizeof(ctx));
        pv_limit_conn_log(&lim[which], p->limit_conn_log_level, dry, ctx);
    }
    hr->r.limit_conn_status = dry ? "REJECTED_DRY_RUN" : "REJECTED";
    if (which >= 0)
        pv_stats_limit(hr, zs[which], dry ? PV_SLIM_REJECTED_DRY_RUN : PV_SLIM_REJECTED);
    if (dry)
        return 0;
    refuse(hr, p->limit_conn_status);
    return -1;
}

/* ---- authentication ------------------------------------------------------------------ */

/* A failed check: under satisfy all the answer, under any a candidate
 * (401 wins over 403, as NGINX keeps it). */
static int auth_fail(pv_hreq_t *hr, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int auth_fail(pv_hreq_t *hr, int status, const char *fmt, ...)
{
    pv_access_t *a = &hr->acc;
    a->last_fail = status;
    if (a->code != 401)
        a->code = status;
    if (fmt && status == 401) {
        /* every refusing method adds its challenge, in the order the
         * checks ran, as NGINX's handlers each add theirs */
        char v[600];
        memcpy(v, "WWW-Authenticate: ", 18);
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(v + 18, sizeof(v) - 20, fmt, ap);
        va_end(ap);
        if (n > 0) {
            size_t len = 18 + PV_MIN((size_t)n, sizeof(v) - 21);
            memcpy(v + len, "\r\n", 2);
            len += 2;
            char *p = pv_arena_alloc(&hr->arena, a->www_auth.len + len);
            if (a->www_auth.len)
                memcpy(p, a->www_auth.p, a->www_auth.len);
            memcpy(p + a->www_auth.len, v, len);
            a->www_auth = (pv_str_t){p, a->www_auth.len + len};
        }
    }
    return -1;
}

/* bcrypt and friends cost milliseconds on purpose; a worker remembers the
 * credentials it verified recently (as a SHA-256 of file, user and
 * password) so a client sending the same ones does not stall the loop on
 * every request. Cleared on reload; entries last a minute. */
#define BASIC_CACHE 256
typedef struct {
    unsigned char digest[SHA256_DIGEST_LENGTH]; /* of the file's read, user, password */
    uint64_t until_ms;                          /* valid until (loop ms) */
} basic_ok_t;

static __thread basic_ok_t basic_cache[BASIC_CACHE];

void pv_access_cache_clear(void)
{
    memset(basic_cache, 0, sizeof(basic_cache));
}

static basic_ok_t *basic_slot(uint64_t file, pv_str_t user, pv_str_t pass, unsigned char *d)
{
    unsigned char in[sizeof(file) + 2 * 1024 + 1];
    size_t n = 0;
    memcpy(in, &file, sizeof(file));
    n += sizeof(file);
    size_t ul = PV_MIN(user.len, (size_t)1024), pl = PV_MIN(pass.len, (size_t)1024);
    memcpy(in + n, user.p, ul);
    n += ul;
    in[n++] = '\0';
    memcpy(in + n, pass.p, pl);
    n += pl;
    EVP_Digest(in, n, d, NULL, EVP_sha256(), NULL);
    OPENSSL_cleanse(in, n);
    uint32_t h;
    memcpy(&h, d, sizeof(h));
    return &basic_cache[h % BASIC_CACHE];
}

static int check_basic(pv_hreq_t *hr)
{
    const pv_policy_conf_t *p = policy(hr);
    pv_str_t realm = eval(hr, p->auth_basic);
    const pv_header_t *h = pv_request_header(&hr->r, "authorization", 13);
    char buf[1024];
    pv_str_t user, pass;
    if (!h || pv_htpasswd_basic_parse(h->value, buf, sizeof(buf), &user, &pass) != PV_OK) {
        if (h)
            pv_log_r(&hr->r, PV_LOG_INFO, "client sent invalid Basic credentials, client: %s", pv_log_client(&hr->r));
        return auth_fail(hr, 401, "Basic realm=\"%.*s\"", (int)realm.len, realm.p);
    }
    /* the file, as it is now (userfile.h): missing 403, else unusable 500 */
    pv_str_t name = eval(hr, p->auth_basic_user_file);
    char path[4096], msg[600];
    pv_htpasswd_t *file = NULL;
    uint64_t gen = 0;
    int err = 0;
    int pn = snprintf(path, sizeof(path), "%s%.*s", p->user_file_prefix, (int)name.len, name.p);
    if (pn < 0 || (size_t)pn >= sizeof(path) || memchr(name.p, '\0', name.len)) {
        snprintf(msg, sizeof(msg), "invalid password file name \"%.*s\"", (int)PV_MIN(name.len, 256), name.p);
    } else if (pv_userfile_get(path, &file, &gen, &err, msg, sizeof(msg)) == PV_OK) {
        msg[0] = '\0';
    }
    if (!file) {
        pv_log_r(&hr->r, err == ENOENT ? PV_LOG_ERR : PV_LOG_CRIT, "%s, client: %s", msg, pv_log_client(&hr->r));
        if (err == ENOENT)
            return auth_fail(hr, 403, NULL);
        refuse(hr, 500);
        return -2;
    }
    unsigned char d[SHA256_DIGEST_LENGTH];
    basic_ok_t *slot = basic_slot(gen, user, pass, d);
    uint64_t now = pv_loop_now(hr->w->loop);
    if (slot->until_ms > now && CRYPTO_memcmp(slot->digest, d, sizeof(d)) == 0)
        return 0;
    if (pv_htpasswd_check(file, user, pass) != PV_OK) {
        pv_log_r(&hr->r, PV_LOG_ERR, "user \"%.*s\": password mismatch or not found, client: %s", (int)user.len, user.p,
               pv_log_client(&hr->r));
        return auth_fail(hr, 401, "Basic realm=\"%.*s\"", (int)realm.len, realm.p);
    }
    memcpy(slot->digest, d, sizeof(d));
    slot->until_ms = now + 60000;
    return 0;
}

static int check_api_key(pv_hreq_t *hr)
{
    const pv_policy_conf_t *p = policy(hr);
    pv_str_t name = p->api_key_header.p ? p->api_key_header : PV_STR("X-API-Key");
    hr->r.hide_header = name;
    const pv_header_t *h = pv_request_header(&hr->r, name.p, name.len);
    pv_str_t consumer;
    if (!h || pv_apikey_lookup(p->api_keys, h->value, &consumer) != PV_OK) {
        if (h)
            pv_log_r(&hr->r, PV_LOG_INFO, "unknown API key, client: %s", pv_log_client(&hr->r));
        return auth_fail(hr, 401, "Key realm=\"%.*s\"", (int)name.len, name.p);
    }
    hr->r.consumer = consumer;
    return 0;
}

static int check_jwt(pv_hreq_t *hr)
{
    const pv_policy_conf_t *p = policy(hr);
    pv_str_t realm = eval(hr, p->auth_jwt);
    pv_str_t tok = {NULL, 0};
    if (p->auth_jwt_token) {
        tok = eval(hr, p->auth_jwt_token);
    } else {
        const pv_header_t *h = pv_request_header(&hr->r, "authorization", 13);
        if (h && h->value.len > 7 && pv_str_ieq((pv_str_t){h->value.p, 7}, "bearer ", 7)) {
            tok = (pv_str_t){h->value.p + 7, h->value.len - 7};
            while (tok.len && tok.p[0] == ' ') {
                tok.p++;
                tok.len--;
            }
        }
    }
    if (!tok.len)
        return auth_fail(hr, 401, "Bearer realm=\"%.*s\"", (int)realm.len, realm.p);
    size_t mem = pv_jwt_mem_size(tok.len);
    pv_jwt_t *t = pv_arena_alloc(&hr->arena, sizeof(*t));
    pv_jwt_init(t, pv_arena_alloc(&hr->arena, mem), mem);
    const char *why = NULL;
    if (pv_jwt_verify(p->jwks, tok.p, tok.len, (int64_t)time(NULL), p->auth_jwt_leeway / 1000, t, &why) != PV_OK) {
        pv_log_r(&hr->r, PV_LOG_INFO, "JWT rejected: %s, client: %s", why ? why : "invalid", pv_log_client(&hr->r));
        return auth_fail(hr, 401, "Bearer realm=\"%.*s\", error=\"invalid_token\", error_description=\"%s\"",
                         (int)realm.len, realm.p, why ? why : "invalid token");
    }
    hr->r.jwt = t;
    for (int i = 0; i < p->nauth_jwt_require; i++) {
        pv_str_t v = eval(hr, &p->auth_jwt_require[i]);
        if (!v.len || (v.len == 1 && v.p[0] == '0')) {
            hr->r.jwt = NULL;
            pv_log_r(&hr->r, PV_LOG_INFO, "JWT rejected by auth_jwt_require, client: %s", pv_log_client(&hr->r));
            return auth_fail(hr, 401,
                             "Bearer realm=\"%.*s\", error=\"insufficient_scope\", error_description=\"a required "
                             "claim is missing\"",
                             (int)realm.len, realm.p);
        }
    }
    return 0;
}

/* Send the access refusal collected in acc; a 401 waits auth_delay first
 * (NGINX's ngx_http_core_auth_delay), the request parked meanwhile. */
static void refuse_auth(pv_hreq_t *hr)
{
    pv_access_t *a = &hr->acc;
    int64_t delay = policy(hr)->auth_delay;
    if (a->code == 401 && delay > 0 && a->step != ACC_REFUSE) {
        a->step = ACC_REFUSE;
        park_delay(hr, (int)PV_MIN(delay, (int64_t)INT32_MAX));
        return;
    }
    if (a->code == 401 && a->www_auth.len) {
        char *p = pv_arena_alloc(&hr->arena, a->xhdr.len + a->www_auth.len);
        if (a->xhdr.len)
            memcpy(p, a->xhdr.p, a->xhdr.len);
        memcpy(p + a->xhdr.len, a->www_auth.p, a->www_auth.len);
        a->xhdr = (pv_str_t){p, a->xhdr.len + a->www_auth.len};
    }
    refuse(hr, a->code ? a->code : 403);
}

/* allow / deny, first matching rule wins (ngx_http_access_module): 0
 * allowed, -1 denied, 1 no rule matched (the module declines). An
 * IPv4-mapped IPv6 client is checked against the IPv4 rules, as NGINX
 * does. */
static int check_rules(pv_hreq_t *hr)
{
    const pv_policy_conf_t *p = policy(hr);
    const struct sockaddr *sa = hr->r.peer;
    const uint8_t *ip = NULL;
    int kind = PV_RULE_UNIX;
    if (sa && sa->sa_family == AF_INET) {
        ip = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        kind = PV_RULE_V4;
    } else if (sa && sa->sa_family == AF_INET6) {
        ip = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        kind = PV_RULE_V6;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ip)) {
            ip += 12;
            kind = PV_RULE_V4;
        }
    }
    for (int i = 0; i < p->nrules; i++) {
        const pv_access_rule_t *r = &p->rules[i];
        if (r->kind != PV_RULE_ALL && r->kind != kind)
            continue;
        int n = kind == PV_RULE_V4 ? 4 : kind == PV_RULE_V6 ? 16 : 0, k = 0;
        while (r->kind != PV_RULE_ALL && k < n && (ip[k] & r->mask[k]) == r->addr[k])
            k++;
        if (r->kind != PV_RULE_ALL && k < n)
            continue;
        if (!r->deny)
            return 0;
        if (p->satisfy == PV_SATISFY_ALL) {
            char ctx[1024];
            log_context(hr, ctx, sizeof(ctx));
            pv_log_r(&hr->r, PV_LOG_ERR, "access forbidden by rule%s", ctx);
        }
        return auth_fail(hr, 403, NULL);
    }
    return 1;
}

/* The synchronous checks. Returns -1 when the request was answered, 1 when
 * access is granted already (satisfy any), 0 to go on. */
static int auth_step(pv_hreq_t *hr)
{
    const pv_policy_conf_t *p = policy(hr);
    int any = p->satisfy == PV_SATISFY_ANY;
    /* NGINX's order in the access phase: the access module first */
    int (*const checks[])(pv_hreq_t *) = {check_rules, check_basic, check_api_key, check_jwt};
    const int on[] = {p->nrules > 0, p->auth_basic != NULL, p->api_keys != NULL, p->auth_jwt != NULL};
    int ran = 0;
    for (size_t i = 0; i < PV_NELEM(checks); i++) {
        if (!on[i])
            continue;
        int rc = checks[i](hr);
        if (rc > 0)
            continue; /* declined: no rule matched */
        if (rc == -2)
            return -1; /* answered (500) whatever satisfy says, as NGINX */
        ran++;
        if (i > 0) /* basic, API key, JWT; allow/deny is no authentication */
            pv_stats_auth(hr, PV_SAUTH_BASIC + (int)i - 1,
                          rc == 0 ? PV_SAUTH_PASSED : hr->acc.last_fail == 401 ? PV_SAUTH_401 : PV_SAUTH_403);
        if (rc == 0) {
            if (any) {
                hr->acc.passed = 1;
                return 1;
            }
        } else if (!any) {
            refuse_auth(hr);
            return -1;
        }
    }
    if (any && ran && !(p->auth_request && *p->auth_request)) {
        refuse_auth(hr);
        return -1;
    }
    return 0;
}

static void sub_done(pv_hreq_t *hr, pv_request_t *sr, int status)
{
    const pv_policy_conf_t *p = policy(hr);
    hr->acc.waiting = 0;
    if ((status >= 200 && status < 300) || status == 401 || status == 403)
        pv_stats_auth(hr, PV_SAUTH_REQUEST, status == 401 ? PV_SAUTH_401 : status == 403 ? PV_SAUTH_403 : PV_SAUTH_PASSED);
    if (status >= 200 && status < 300) {
        /* auth_request_set: evaluated against the subrequest's response */
        if (p->nauth_sets) {
            /* after the values an earlier location's subrequest set (an
             * internal redirect): the later ones win */
            pv_header_t *uv = pv_arena_alloc(&hr->arena, sizeof(pv_header_t) * (size_t)(hr->r.nuvars + p->nauth_sets));
            if (hr->r.nuvars)
                memcpy(uv, hr->r.uvars, sizeof(pv_header_t) * (size_t)hr->r.nuvars);
            hr->r.uvars = uv;
            for (int i = 0; i < p->nauth_sets; i++) {
                size_t need = pv_cv_eval(&p->auth_sets[i].value, sr, PV_ESCAPE_NONE, NULL, 0);
                char *v = pv_arena_alloc(&hr->arena, need + 1);
                pv_cv_eval(&p->auth_sets[i].value, sr, PV_ESCAPE_NONE, v, need + 1);
                if (p->auth_sets[i].slot)
                    pv_script_set_builtin(&hr->r, p->auth_sets[i].slot, (pv_str_t){v, need});
                else
                    hr->r.uvars[hr->r.nuvars++] = (pv_header_t){p->auth_sets[i].var, (pv_str_t){v, need}};
            }
        }
        hr->acc.step = hr->acc.again ? ACC_DONE : ACC_LIMIT_REQ_LATE;
        resume(hr);
        return;
    }
    if (status == 401 || status == 403) {
        const pv_header_t *wa = NULL;
        for (int i = 0; status == 401 && i < sr->nupstream_headers; i++)
            if (PV_STR_IEQ(sr->upstream_headers[i].name, "www-authenticate"))
                wa = &sr->upstream_headers[i];
        /* under satisfy any the earlier checks' refusals still count:
         * 401 wins over 403, with every challenge */
        if (wa)
            auth_fail(hr, 401, "%.*s", (int)wa->value.len, wa->value.p);
        else
            auth_fail(hr, status, NULL);
        refuse_auth(hr);
        return;
    }
    pv_log_r(&hr->r, PV_LOG_ERR, "auth request unexpected status: %d while sending to client, client: %s", status,
           pv_log_client(&hr->r));
    refuse(hr, 500);
}

/* Start the auth subrequest: NGINX's is a GET of the URI with the client's
 * header fields and no body, routed like any request (internal allowed). */
static int auth_request_step(pv_hreq_t *hr)
{
    const pv_policy_conf_t *p = policy(hr);
    if (!p->auth_request || !*p->auth_request || hr->acc.passed)
        return 0;
    pv_request_t *sr = pv_arena_alloc(&hr->arena, sizeof(*sr));
    *sr = hr->r;
    const char *u = p->auth_request;
    const char *q = strchr(u, '?');
    size_t plen = q ? (size_t)(q - u) : strlen(u);
    sr->uri = (pv_str_t){u, plen};
    sr->args = q ? (pv_str_t){q + 1, strlen(q + 1)} : (pv_str_t){"", 0};
    sr->has_args = q != NULL;
    sr->upstream_method = PV_STR("GET"); /* $request_method stays the client's, as in NGINX */
    sr->method_id = HTTP_GET;
    sr->content_length = -1;
    sr->flags &= ~(unsigned)(PV_REQ_F_CHUNKED | PV_REQ_F_HAS_CL | PV_REQ_F_EXPECT_CONTINUE | PV_REQ_F_HEAD);
    /* the client's target is not the subrequest's: a proxy_pass without a
     * URI part sends the subrequest's URI (NGINX: valid_unparsed_uri is 0) */
    sr->flags |= PV_REQ_F_REWRITTEN;
    sr->upstream_addr[0] = '\0';
    sr->upstream_status[0] = '\0';
    sr->upstream_headers = NULL;
    sr->nupstream_headers = 0;
    sr->pcache = NULL; /* its location's cache, if any, is its own */
    sr->cache_zone = NULL;
    sr->cache_status = PV_CACHE_NONE;
    pv_script_out_t out;
    hr->acc.waiting = 1;
    if (pv_script_subrequest(sr, &out) == PV_SCRIPT_ANSWER) {
        /* a return, redirect or error of the rewrite module is its status */
        sub_done(hr, sr, out.code);
        return -1;
    }
    pv_location_t *loc = sr->loc;
    if (!loc || pv_phases_subrequest(hr, sr, loc, sub_done) != PV_OK) {
        /* no handler that runs subrequests claims the location */
        sub_done(hr, sr, 404);
    }
    return -1;
}

/* ---- driver ---------------------------------------------------------------------- */

/* Why run() stopped: a step parked the request, or answered it. */
static int stopped(const pv_access_t *a)
{
    return a->waiting ? PV_PHASE_PARKED : PV_PHASE_DONE;
}

static int run(pv_hreq_t *hr)
{
    pv_access_t *a = &hr->acc;
    for (;;) {
        int rc;
        switch (a->step) {
        case ACC_LIMIT_REQ:
        case ACC_LIMIT_REQ_LATE:
            rc = limit_req_step(hr, a->step == ACC_LIMIT_REQ_LATE);
            if (rc < 0)
                return stopped(a);
            a->step++;
            if (rc > 0) {
                park_delay(hr, rc);
                return PV_PHASE_PARKED;
            }
            break;
        case ACC_LIMIT_CONN:
        case ACC_LIMIT_CONN_LATE:
            if (limit_conn_step(hr, a->step == ACC_LIMIT_CONN_LATE) < 0)
                return stopped(a);
            a->step = a->step == ACC_LIMIT_CONN ? ACC_AUTH : ACC_DONE;
            break;
        case ACC_AUTH:
            a->code = 0;
            rc = auth_step(hr);
            if (rc < 0)
                return stopped(a);
            a->step = ACC_AUTH_REQUEST;
            break;
        case ACC_AUTH_REQUEST:
            a->step = a->again ? ACC_DONE : ACC_LIMIT_REQ_LATE;
            if (auth_request_step(hr) < 0)
                return stopped(a);
            break;
        case ACC_REFUSE:
            refuse_auth(hr);
            return PV_PHASE_DONE;
        default:
            return PV_PHASE_NEXT;
        }
    }
}

/* A parked step is over: go on, and on to the next phase once every
 * check has passed. */
static void resume(pv_hreq_t *hr)
{
    if (run(hr) == PV_PHASE_NEXT)
        pv_phases_resume(hr);
}

/* The access phase handler. */
static int access_handler(pv_hreq_t *hr)
{
    if (hr->sub)
        return PV_PHASE_NEXT; /* NGINX runs no access checks for subrequests */
    const pv_policy_conf_t *p = policy(hr);
    /* after an internal redirect, the new location's authentication and
     * allow/deny apply; limits are counted once per request, as NGINX's
     * limit_req and limit_conn do */
    int again = (hr->r.flags & PV_REQ_F_ACCESS_DONE) != 0;
    int auth = p->auth_basic || p->auth_jwt || p->api_keys || p->nrules || (p->auth_request && *p->auth_request);
    if (!auth && (again || (!p->nlreq && !p->nlconn)))
        return PV_PHASE_NEXT;
    if (!hr->acc.active)
        pv_timer_init(&hr->acc.timer, delay_cb, hr);
    hr->acc.active = 1;
    hr->acc.again = (uint8_t)again;
    hr->acc.passed = 0;
    hr->acc.www_auth = (pv_str_t){NULL, 0};
    hr->acc.step = again ? ACC_AUTH : ACC_LIMIT_REQ;
    return run(hr);
}

void pv_access_end(pv_hreq_t *hr)
{
    pv_access_t *a = &hr->acc;
    if (!a->active)
        return;
    if (a->rreq)
        pv_redis_cancel(a->rreq);
    pv_timer_del(hr->w->loop, &a->timer);
    pv_limit_conn_release_all(a->conn_refs, a->nconn_refs);
    memset(a, 0, sizeof(*a));
}

/* ---- worker module ---------------------------------------------------------------- */

static void mod_reload(pv_worker_t *w, const int *map, int nmap)
{
    PV_UNUSED(w), PV_UNUSED(map), PV_UNUSED(nmap);
    pv_access_cache_clear();
}

static void mod_exit(pv_worker_t *w)
{
    PV_UNUSED(w);
    pv_access_thread_cleanup();
    pv_userfile_clear();
}

static int mod_init(void)
{
    pv_phases_register(PV_PHASE_ACCESS, access_handler);
    return PV_OK;
}

pv_module_t pv_access_module = {
    .name = "access",
    .init = mod_init,
    .reload = mod_reload,
    .worker_exit = mod_exit,
};
