/* Directives of the preaccess and access phases: rate limits
 * (limit_req_zone, limit_req, limit_conn_zone, limit_conn and their
 * status, log level and dry-run switches), authentication (auth_request,
 * auth_request_set, auth_basic, auth_jwt, API keys, auth_delay),
 * allow/deny and satisfy. The
 * syntax is NGINX's (NGINX Plus's for auth_jwt); key files are loaded at
 * config load, and zones outlive a reload when their name, size and rate
 * stay the same. */
#include "conf_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "../core/file.h"
#include "../core/log.h"
#include "../policy/apikey.h"
#include "../policy/jwt.h"
#include "../policy/limit.h"
#include "../policy/zones.h"

/* A limit line waiting for its zone, which may be declared later. */
typedef struct zref_s {
    pv_zone_t **slot;     /* where the zone goes */
    void *line;           /* pv_limit_req_t / pv_limit_conn_t to point at the zone's state */
    int kind;             /* PV_ZONE_* wanted */
    const char *name;     /* zone name as written */
    pv_conf_src_t src;    /* the limit line */
    struct zref_s *next;
} zref_t;

/* Loading is single-threaded; the list lives in the loader's scratch arena. */
static zref_t *zrefs;

static pv_policy_conf_t *pol(pv_conf_ctx_t *cx)
{
    return &cx->lc->policy;
}

#define add_cleanup pv_conf_add_cleanup

static int compile(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_str_t s, pv_cv_t *cv)
{
    char e[256];
    if (pv_cv_compile(cv, cx->a, s.p, s.len, e, sizeof(e)) != PV_OK)
        return pv_conf_error(cx, &nd->src, "%s", e);
    return PV_OK;
}

/* Whether a variable of cv has one of the PV_VAR_F_* flags. */
static int has_var_flag(const pv_cv_t *cv, unsigned flag)
{
    for (int i = 0; i < cv->nparts; i++)
        if (cv->parts[i].var && (cv->parts[i].var->flags & flag))
            return 1;
    return 0;
}

/* ---- zones ---------------------------------------------------------------- */

/* HOST[:PORT] of a Redis server or Sentinel (default port given). */
static int redis_addr(pv_conf_ctx_t *cx, const char *s, size_t len, int dflt, pv_redis_addr_t *out)
{
    char *host;
    int port;
    if (pv_conf_split_hostport(cx->a, s, len, &host, &port) != 0 || !*host)
        return PV_ERR;
    *out = (pv_redis_addr_t){.host = host, .port = port ? port : dflt};
    return PV_OK;
}

/* The password: the file's first line, read now into *out; never logged. */
static int redis_password(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *file, const char **out)
{
    char err[512];
    size_t len;
    char *buf = pv_file_read(pv_conf_full_path(cx, file), 4096, &len, err, sizeof(err));
    if (!buf)
        return pv_conf_error(cx, &nd->src, "%s", err);
    size_t n = 0;
    while (n < len && buf[n] != '\n' && buf[n] != '\r')
        n++;
    if (n == 0 || memchr(buf, '\0', n)) {
        OPENSSL_cleanse(buf, len);
        free(buf);
        return pv_conf_error(cx, &nd->src, "no password in the first line of \"%s\"", file);
    }
    *out = pv_arena_strndup(cx->a, buf, n);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return PV_OK;
}

/* One redis... parameter of limit_req_zone into t: PV_OK, PV_ERR
 * (reported), or PV_AGAIN when a is none of them. */
static int redis_param(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *a, pv_redis_target_t *t)
{
    const char *v;
    if ((v = pv_conf_param(a, "redis"))) {
        if (t->addr.host || t->unix_path)
            return pv_conf_error(cx, &nd->src, "duplicate \"redis\" parameter");
        if (strncmp(v, "unix:", 5) == 0 && v[5] == '/')
            t->unix_path = pv_arena_strdup(cx->a, v + 5);
        else if (redis_addr(cx, v, strlen(v), 6379, &t->addr) != PV_OK)
            return pv_conf_error(cx, &nd->src, "invalid redis address \"%s\"", a);
    } else if ((v = pv_conf_param(a, "redis_db"))) {
        int64_t n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid redis_db \"%s\"", v);
        t->db = (int)n;
    } else if ((v = pv_conf_param(a, "redis_user"))) {
        if (!*v)
            return pv_conf_error(cx, &nd->src, "empty redis_user");
        t->user = pv_arena_strdup(cx->a, v);
    } else if ((v = pv_conf_param(a, "redis_password_file"))) {
        return redis_password(cx, nd, v, &t->password);
    } else if ((v = pv_conf_param(a, "redis_sentinel_user"))) {
        if (!*v)
            return pv_conf_error(cx, &nd->src, "empty redis_sentinel_user");
        t->sentinel_user = pv_arena_strdup(cx->a, v);
    } else if ((v = pv_conf_param(a, "redis_sentinel_password_file"))) {
        return redis_password(cx, nd, v, &t->sentinel_password);
    } else if ((v = pv_conf_param(a, "redis_master"))) {
        if (!*v)
            return pv_conf_error(cx, &nd->src, "empty redis_master");
        t->master = pv_arena_strdup(cx->a, v);
    } else if ((v = pv_conf_param(a, "redis_sentinel"))) {
        for (const char *p = v;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            pv_redis_addr_t *s = pv_conf_push(cx->a, (pv_redis_addr_t **)&t->sentinels, &t->nsentinels,
                                              sizeof(*s));
            if (redis_addr(cx, p, len, 26379, s) != PV_OK)
                return pv_conf_error(cx, &nd->src, "invalid redis_sentinel address \"%.*s\"", (int)len, p);
            if (!comma)
                break;
            p = comma + 1;
        }
    } else {
        return PV_AGAIN;
    }
    return PV_OK;
}

/* The redis parameters hang together. */
static int redis_check(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const pv_redis_target_t *t, int fail)
{
    int server = t->addr.host || t->unix_path;
    if (server && t->nsentinels)
        return pv_conf_error(cx, &nd->src, "\"redis\" and \"redis_sentinel\" are exclusive");
    if (t->nsentinels && !t->master)
        return pv_conf_error(cx, &nd->src, "\"redis_sentinel\" needs \"redis_master\"");
    if (t->master && !t->nsentinels)
        return pv_conf_error(cx, &nd->src, "\"redis_master\" needs \"redis_sentinel\"");
    if (t->user && !t->password)
        return pv_conf_error(cx, &nd->src, "\"redis_user\" needs \"redis_password_file\"");
    if (t->sentinel_user && !t->sentinel_password)
        return pv_conf_error(cx, &nd->src, "\"redis_sentinel_user\" needs \"redis_sentinel_password_file\"");
    if ((t->sentinel_user || t->sentinel_password) && !t->nsentinels)
        return pv_conf_error(cx, &nd->src, "\"%s\" needs \"redis_sentinel\"",
                             t->sentinel_user ? "redis_sentinel_user" : "redis_sentinel_password_file");
    if (!server && !t->nsentinels && (fail || t->db || t->user || t->password))
        return pv_conf_error(cx, &nd->src, "\"%s\" needs \"redis\" or \"redis_sentinel\"",
                             fail ? "redis_fail" : t->db ? "redis_db" : t->user ? "redis_user"
                                                                             : "redis_password_file");
    return PV_OK;
}

/* The Redis server's or the Sentinels' names, resolved now, as NGINX
 * resolves an upstream's server names: a worker never waits on a name.
 * A reload resolves them again, and a new address gets a new client.
 * Without DNS (PV_CONF_F_NO_DNS) only an address literal passes. */
static int redis_resolve(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_redis_target_t *t)
{
    pv_redis_addr_t *sentinels = (pv_redis_addr_t *)t->sentinels;
    for (int i = -1; i < t->nsentinels; i++) {
        pv_redis_addr_t *a = i < 0 ? &t->addr : &sentinels[i];
        unsigned char bin[sizeof(struct in6_addr)];
        char err[256] = "not looked up";
        if (!a->host || inet_pton(AF_INET, a->host, bin) == 1 || inet_pton(AF_INET6, a->host, bin) == 1)
            continue; /* the client takes a literal as it is */
        if ((cx->flags & PV_CONF_F_NO_DNS) || pv_redis_resolve(a, err, sizeof(err)) != 0)
            return pv_conf_error(cx, &nd->src, "host not found in %s \"%s:%d\" (%s)",
                                 i < 0 ? "redis" : "redis_sentinel", a->host, a->port, err);
    }
    return PV_OK;
}

/* limit_req_zone KEY zone=NAME:SIZE rate=R [redis=HOST:PORT [redis_fail=...]]
 * limit_conn_zone KEY zone=NAME:SIZE */
static int zone_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int kind = cmd->data ? PV_ZONE_CONN : PV_ZONE_REQ;
    pv_zone_t *z = pv_arena_calloc(cx->a, sizeof(*z));
    z->kind = kind;
    z->src = nd->src;
    z->size = -1;
    if (compile(cx, nd, nd->args[1], &z->key) != PV_OK)
        return PV_ERR;
    z->key_late = has_var_flag(&z->key, PV_VAR_F_LATE);
    int redis_fail = -1, rc;
    pv_redis_target_t redis = {0};
    for (int i = 2; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (strncmp(a, "zone=", 5) == 0) {
            const char *colon = strrchr(a + 5, ':');
            if (!colon || colon == a + 5)
                return pv_conf_error(cx, &nd->src, "invalid zone size \"%s\"", a);
            z->name = pv_arena_strndup(cx->a, a + 5, (size_t)(colon - a - 5));
            z->size = pv_conf_parse_size((pv_str_t){colon + 1, strlen(colon + 1)});
            if (z->size < 0)
                return pv_conf_error(cx, &nd->src, "invalid zone size \"%s\"", a);
            if (z->size < PV_LIMIT_ZONE_MIN)
                return pv_conf_error(cx, &nd->src, "zone \"%s\" is too small", a);
        } else if (kind == PV_ZONE_REQ && strncmp(a, "rate=", 5) == 0) {
            if (pv_limit_rate_parse((pv_str_t){a + 5, strlen(a + 5)}, &z->rate) != PV_OK || z->rate == 0)
                return pv_conf_error(cx, &nd->src, "invalid rate \"%s\"", a);
        } else if (kind == PV_ZONE_REQ && strncmp(a, "redis_fail=", 11) == 0) {
            if (strcmp(a + 11, "open") == 0)
                redis_fail = 0;
            else if (strcmp(a + 11, "closed") == 0)
                redis_fail = 1;
            else
                return pv_conf_error(cx, &nd->src, "invalid redis_fail \"%s\", it must be \"open\" or \"closed\"",
                                     a + 11);
        } else if (kind == PV_ZONE_REQ && (rc = redis_param(cx, nd, a, &redis)) != PV_AGAIN) {
            if (rc != PV_OK)
                return rc;
        } else {
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
        }
    }
    if (!z->name)
        return pv_conf_error(cx, &nd->src, "\"%s\" must have \"zone\" parameter", ARG(nd, 0));
    if (kind == PV_ZONE_REQ && !z->rate)
        return pv_conf_error(cx, &nd->src, "\"%s\" must have \"rate\" parameter", ARG(nd, 0));
    if (redis_check(cx, nd, &redis, redis_fail >= 0) != PV_OK || redis_resolve(cx, nd, &redis) != PV_OK)
        return PV_ERR;
    if (redis.addr.host || redis.unix_path || redis.nsentinels)
        z->redis = memcpy(pv_arena_alloc(cx->a, sizeof(redis)), &redis, sizeof(redis));
    z->redis_fail_closed = redis_fail == 1;
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < h->nzones; i++)
        if (strcmp(h->zones[i]->name, z->name) == 0)
            return pv_conf_error(cx, &nd->src, "duplicate zone \"%s\"", z->name);
    z->index = h->nzones;
    *(pv_zone_t **)pv_conf_push(cx->a, &h->zones, &h->nzones, sizeof(pv_zone_t *)) = z;
    PV_UNUSED(base);
    return PV_OK;
}

static void zref_add(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_zone_t **slot, void *line, int kind,
                     const char *name)
{
    zref_t *r = pv_arena_calloc(cx->tmp, sizeof(*r));
    r->slot = slot;
    r->line = line;
    r->kind = kind;
    r->name = name;
    r->src = nd->src;
    r->next = zrefs;
    zrefs = r;
}

/* limit_req zone=NAME [burst=N] [nodelay | delay=N] */
static int limit_req_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    const char *zname = NULL;
    int64_t burst = 0, delay = 0;
    int nodelay = 0, has_delay = 0;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (strncmp(a, "zone=", 5) == 0) {
            zname = pv_arena_strdup(cx->a, a + 5);
        } else if (strncmp(a, "burst=", 6) == 0) {
            burst = pv_conf_parse_num((pv_str_t){a + 6, strlen(a + 6)});
            if (burst <= 0)
                return pv_conf_error(cx, &nd->src, "invalid burst value \"%s\"", a);
        } else if (strncmp(a, "delay=", 6) == 0) {
            delay = pv_conf_parse_num((pv_str_t){a + 6, strlen(a + 6)});
            if (delay <= 0)
                return pv_conf_error(cx, &nd->src, "invalid delay value \"%s\"", a);
            has_delay = 1;
        } else if (strcmp(a, "nodelay") == 0) {
            nodelay = 1;
        } else {
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
        }
    }
    if (!zname)
        return pv_conf_error(cx, &nd->src, "\"%s\" must have \"zone\" parameter", ARG(nd, 0));
    if (nodelay && has_delay)
        return pv_conf_error(cx, &nd->src, "\"delay\" and \"nodelay\" cannot be used together");
    for (int i = 0; i < p->nlreq; i++)
        if (strcmp(p->lreq_zone[i]->name, zname) == 0)
            return pv_conf_error(cx, &nd->src, "\"%s\" directive is duplicate", ARG(nd, 0));
    /* arrays grow by powers of two in the arena: keep them in step */
    int n = p->nlreq;
    pv_limit_req_t *l = pv_conf_push(cx->a, &p->lreq, &n, sizeof(*l));
    pv_zone_t **zs = pv_conf_push(cx->a, &p->lreq_zone, &p->nlreq, sizeof(*zs));
    *zs = pv_arena_calloc(cx->a, sizeof(pv_zone_t));
    (*zs)->name = zname; /* the name only, until the zone is resolved after the walk */
    l->burst = (uint64_t)burst * 1000;
    l->delay = nodelay ? PV_LIMIT_NODELAY : (uint64_t)delay * 1000;
    zref_add(cx, nd, zs, l, PV_ZONE_REQ, zname);
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

/* limit_conn zone N */
static int limit_conn_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    int64_t n = pv_conf_parse_num(nd->args[2]);
    if (n <= 0 || n > PV_LIMIT_CONN_MAX)
        return pv_conf_error(cx, &nd->src, "invalid number of connections \"%s\"", ARG(nd, 2));
    for (int i = 0; i < p->nlconn; i++)
        if (strcmp(p->lconn_zone[i]->name, ARG(nd, 1)) == 0)
            return pv_conf_error(cx, &nd->src, "\"%s\" directive is duplicate", ARG(nd, 0));
    int cnt = p->nlconn;
    pv_limit_conn_t *l = pv_conf_push(cx->a, &p->lconn, &cnt, sizeof(*l));
    pv_zone_t **zs = pv_conf_push(cx->a, &p->lconn_zone, &p->nlconn, sizeof(*zs));
    *zs = pv_arena_calloc(cx->a, sizeof(pv_zone_t));
    (*zs)->name = pv_arena_strdup(cx->a, ARG(nd, 1));
    l->conn = (unsigned)n;
    zref_add(cx, nd, zs, l, PV_ZONE_CONN, (*zs)->name);
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

/* limit_req_status / limit_conn_status CODE: 400..599 as NGINX */
static int status_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)&pol(cx)->limit_req_status + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 400 || v > 599)
        return pv_conf_error(cx, &nd->src, "value must be between 400 and 599");
    *f = (int)v;
    PV_UNUSED(base);
    return PV_OK;
}

static int log_level_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)&pol(cx)->limit_req_status + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    static const char *const names[] = {"info", "notice", "warn", "error"};
    static const int levels[] = {PV_LOG_INFO, PV_LOG_NOTICE, PV_LOG_WARN, PV_LOG_ERR};
    for (size_t i = 0; i < PV_NELEM(names); i++) {
        if (strcmp(ARG(nd, 1), names[i]) == 0) {
            *f = levels[i];
            return PV_OK;
        }
    }
    PV_UNUSED(base);
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\"", ARG(nd, 1), ARG(nd, 0));
}

static int onoff_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(base);
    return pv_conf_flag(cx, nd, (int *)((char *)&pol(cx)->limit_req_status + cmd->offset));
}

static int auth_delay_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    if (p->auth_delay != PV_UNSET)
        return DUP(cx, nd);
    p->auth_delay = pv_conf_parse_msec(nd->args[1]);
    if (p->auth_delay < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

static int satisfy_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    if (p->satisfy != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(ARG(nd, 1), "all") == 0)
        p->satisfy = PV_SATISFY_ALL;
    else if (strcmp(ARG(nd, 1), "any") == 0)
        p->satisfy = PV_SATISFY_ANY;
    else
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"satisfy\" directive, it must be \"all\" or \"any\"",
                             ARG(nd, 1));
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

/* ---- allow / deny --------------------------------------------------------- */

/* `allow|deny ADDRESS[/BITS] | unix: | all`, NGINX's ngx_ptocidr: a
 * network with host bits set is used masked, with NGINX's warning. */
static int rule_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    const char *a = ARG(nd, 1);
    pv_access_rule_t *r = pv_conf_push(cx->a, &p->rules, &p->nrules, sizeof(*r));
    r->deny = cmd->data != NULL;
    if (strcmp(a, "all") == 0) {
        r->kind = PV_RULE_ALL;
        return PV_OK;
    }
    if (strcmp(a, "unix:") == 0) {
        r->kind = PV_RULE_UNIX;
        return PV_OK;
    }
    char host[64];
    const char *slash = strchr(a, '/');
    size_t hl = slash ? (size_t)(slash - a) : strlen(a);
    if (hl >= sizeof(host))
        return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    memcpy(host, a, hl);
    host[hl] = '\0';
    int v6 = strchr(host, ':') != NULL;
    r->kind = v6 ? PV_RULE_V6 : PV_RULE_V4;
    int len = v6 ? 16 : 4;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, r->addr) != 1)
        return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    int64_t bits = len * 8;
    if (slash) {
        bits = pv_conf_parse_num((pv_str_t){slash + 1, strlen(slash + 1)});
        if (bits < 0 || bits > len * 8)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    }
    int masked = 0;
    for (int i = 0; i < len; i++) {
        int b = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? (int)bits - 8 * i : 0;
        r->mask[i] = (uint8_t)(b ? 0xff << (8 - b) : 0);
        if (r->addr[i] & ~r->mask[i])
            masked = 1;
        r->addr[i] &= r->mask[i];
    }
    if (masked)
        pv_log(PV_LOG_WARN, "low address bits of %s are meaningless in %s:%d", a, nd->src.file, nd->src.line);
    PV_UNUSED(base);
    return PV_OK;
}

/* ---- authentication ----------------------------------------------------- */

static int auth_request_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    if (p->auth_request)
        return DUP(cx, nd);
    if (strcmp(ARG(nd, 1), "off") == 0)
        p->auth_request = "";
    else if (ARG(nd, 1)[0] != '/')
        return pv_conf_error(cx, &nd->src, "invalid URI \"%s\" in \"auth_request\"", ARG(nd, 1));
    else
        p->auth_request = pv_arena_strdup(cx->a, ARG(nd, 1));
    p->auth_request_src = nd->src;
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

static int auth_request_set_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_policy_conf_t *p = pol(cx);
    const char *v = ARG(nd, 1);
    if (v[0] != '$' || !v[1])
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", v);
    pv_auth_set_t *s = pv_conf_push(cx->a, &p->auth_sets, &p->nauth_sets, sizeof(*s));
    s->var = (pv_str_t){pv_arena_strdup(cx->a, v + 1), strlen(v + 1)};
    if (strcasecmp(s->var.p, "args") == 0)
        s->slot = -1;
    else if (strcasecmp(s->var.p, "limit_rate") == 0)
        s->slot = PV_RW_SLOT_LIMIT_RATE;
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return compile(cx, nd, nd->args[2], &s->value);
}

/* auth_basic "realm" | off ; auth_jwt "realm" [token=$var] | off */
static int realm_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    int jwt = cmd->data != NULL;
    int *set = jwt ? &p->auth_jwt_set : &p->auth_basic_set;
    pv_cv_t **realm = jwt ? &p->auth_jwt : &p->auth_basic;
    if (*set)
        return DUP(cx, nd);
    *set = 1;
    if (strcmp(ARG(nd, 1), "off") == 0) {
        if (nd->nargs > 2)
            return pv_conf_error(cx, &nd->src, "invalid number of arguments in \"%s\" directive", ARG(nd, 0));
        return PV_OK;
    }
    if (!jwt && nd->nargs > 2)
        return pv_conf_error(cx, &nd->src, "invalid number of arguments in \"%s\" directive", ARG(nd, 0));
    *realm = pv_arena_calloc(cx->a, sizeof(pv_cv_t));
    if (compile(cx, nd, nd->args[1], *realm) != PV_OK)
        return PV_ERR;
    if (nd->nargs > 2) {
        const char *t = ARG(nd, 2);
        if (strncmp(t, "token=", 6) != 0 || t[6] != '$')
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", t);
        p->auth_jwt_token = pv_arena_calloc(cx->a, sizeof(pv_cv_t));
        if (compile(cx, nd, (pv_str_t){t + 6, strlen(t + 6)}, p->auth_jwt_token) != PV_OK)
            return PV_ERR;
    }
    PV_UNUSED(base);
    return PV_OK;
}

static void free_jwks(void *a)
{
    pv_jwks_free(a);
}

static void free_apikeys(void *a)
{
    pv_apikey_free(a);
}

/* auth_basic_user_file / auth_jwt_key_file / auth_api_key_file FILE */
static int key_file_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    if (cmd->offset == 0) {
        /* read per request, as NGINX does: only its name is compiled */
        if (p->auth_basic_user_file)
            return DUP(cx, nd);
        pv_cv_t *cv = pv_arena_calloc(cx->a, sizeof(*cv));
        if (pv_conf_compile(cx, nd, cv, ARG(nd, 1), nd->args[1].len) != PV_OK)
            return PV_ERR;
        p->auth_basic_user_file = cv;
        p->user_file_prefix = ARG(nd, 1)[0] == '/' ? "" : pv_conf_full_path(cx, "");
        return PV_OK;
    }
    void **slot = cmd->offset == 1 ? &p->jwks : &p->api_keys;
    if (*slot)
        return DUP(cx, nd);
    const char *path = pv_conf_full_path(cx, ARG(nd, 1));
    char e[512];
    e[0] = '\0';
    if (cmd->offset == 1) {
        *slot = pv_jwks_load(path, e, sizeof(e));
        if (*slot)
            add_cleanup(cx, free_jwks, *slot);
    } else {
        *slot = pv_apikey_load(path, e, sizeof(e));
        if (*slot)
            add_cleanup(cx, free_apikeys, *slot);
    }
    if (!*slot)
        return pv_conf_error(cx, &nd->src, "%s", e);
    PV_UNUSED(base);
    return PV_OK;
}

static int jwt_leeway_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    if (p->auth_jwt_leeway != PV_UNSET)
        return DUP(cx, nd);
    p->auth_jwt_leeway = pv_conf_parse_msec(nd->args[1]);
    if (p->auth_jwt_leeway < 0)
        return pv_conf_error(cx, &nd->src, "\"auth_jwt_leeway\" directive invalid value");
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

static int jwt_require_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    for (int i = 1; i < nd->nargs; i++) {
        if (ARG(nd, i)[0] != '$')
            return pv_conf_error(cx, &nd->src, "invalid variable \"%s\" in \"auth_jwt_require\"", ARG(nd, i));
        pv_cv_t *cv = pv_conf_push(cx->a, &p->auth_jwt_require, &p->nauth_jwt_require, sizeof(*cv));
        if (compile(cx, nd, nd->args[i], cv) != PV_OK)
            return PV_ERR;
    }
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

static int api_key_header_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_policy_conf_t *p = pol(cx);
    if (p->api_key_header.p)
        return DUP(cx, nd);
    p->api_key_header = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}

#define POL(f) PV_BASE_NONE, (offsetof(pv_policy_conf_t, f) - offsetof(pv_policy_conf_t, limit_req_status))

static const pv_conf_cmd_t policy_cmds[] = {
    {"limit_req_zone", PV_CTX_HTTP, PV_ARGS_2MORE, zone_cb, PV_BASE_NONE, 0, NULL},
    {"limit_conn_zone", PV_CTX_HTTP, PV_ARGS_TAKE2, zone_cb, PV_BASE_NONE, 0, "conn"},
    {"limit_req", PV_CTX_ANY_LOC, PV_ARGS_1MORE, limit_req_cb, PV_BASE_NONE, 0, NULL},
    {"limit_conn", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, limit_conn_cb, PV_BASE_NONE, 0, NULL},
    {"limit_req_status", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, status_cb, POL(limit_req_status), NULL},
    {"limit_conn_status", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, status_cb, POL(limit_conn_status), NULL},
    {"limit_req_log_level", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, log_level_cb, POL(limit_req_log_level), NULL},
    {"limit_conn_log_level", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, log_level_cb, POL(limit_conn_log_level), NULL},
    {"limit_req_dry_run", PV_CTX_ANY_LOC, PV_ARGS_FLAG, onoff_cb, POL(limit_req_dry_run), NULL},
    {"limit_conn_dry_run", PV_CTX_ANY_LOC, PV_ARGS_FLAG, onoff_cb, POL(limit_conn_dry_run), NULL},
    {"limit_req_headers", PV_CTX_ANY_LOC, PV_ARGS_FLAG, onoff_cb, POL(limit_req_headers), NULL},
    {"satisfy", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, satisfy_cb, PV_BASE_NONE, 0, NULL},
    {"auth_delay", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, auth_delay_cb, PV_BASE_NONE, 0, NULL},
    {"allow", PV_CTX_ANY_LOC | PV_CTX_LMT, PV_ARGS_TAKE1, rule_cb, PV_BASE_NONE, 0, NULL},
    {"deny", PV_CTX_ANY_LOC | PV_CTX_LMT, PV_ARGS_TAKE1, rule_cb, PV_BASE_NONE, 0, "deny"},
    {"auth_request", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, auth_request_cb, PV_BASE_NONE, 0, NULL},
    {"auth_request_set", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, auth_request_set_cb, PV_BASE_NONE, 0, NULL},
    {"auth_basic", PV_CTX_ANY_LOC | PV_CTX_LMT, PV_ARGS_TAKE1, realm_cb, PV_BASE_NONE, 0, NULL},
    {"auth_basic_user_file", PV_CTX_ANY_LOC | PV_CTX_LMT, PV_ARGS_TAKE1, key_file_cb, PV_BASE_NONE, 0, NULL},
    {"auth_jwt", PV_CTX_ANY_LOC | PV_CTX_LMT, PV_ARGS_TAKE12, realm_cb, PV_BASE_NONE, 0, "jwt"},
    {"auth_jwt_key_file", PV_CTX_ANY_LOC | PV_CTX_LMT, PV_ARGS_TAKE1, key_file_cb, PV_BASE_NONE, 1, NULL},
    {"auth_jwt_leeway", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, jwt_leeway_cb, PV_BASE_NONE, 0, NULL},
    {"auth_jwt_require", PV_CTX_ANY_LOC, PV_ARGS_1MORE, jwt_require_cb, PV_BASE_NONE, 0, NULL},
    {"auth_api_key_file", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, key_file_cb, PV_BASE_NONE, 2, NULL},
    {"auth_api_key_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, api_key_header_cb, PV_BASE_NONE, 0, NULL},
};
const pv_conf_module_t pv_conf_policy_module = {"access", policy_cmds, PV_NELEM(policy_cmds)};

/* ---- load-time passes ------------------------------------------------------ */

void pv_conf_policy_declare(const pv_conf_node_t *first)
{
    zrefs = NULL;
    for (const pv_conf_node_t *nd = first; nd; nd = nd->next) {
        if (nd->nargs >= 2 && strcmp(nd->args[0].p, "auth_request_set") == 0 && nd->args[1].p[0] == '$')
            pv_cv_declare(nd->args[1].p + 1, nd->args[1].len - 1);
        pv_conf_policy_declare_children(nd->child);
    }
}

void pv_conf_policy_declare_children(const pv_conf_node_t *first)
{
    for (const pv_conf_node_t *nd = first; nd; nd = nd->next) {
        if (nd->nargs >= 2 && strcmp(nd->args[0].p, "auth_request_set") == 0 && nd->args[1].p[0] == '$')
            pv_cv_declare(nd->args[1].p + 1, nd->args[1].len - 1);
        pv_conf_policy_declare_children(nd->child);
    }
}

void pv_conf_policy_init(pv_policy_conf_t *p)
{
    memset(p, 0, sizeof(*p));
    p->limit_req_status = PV_UNSET;
    p->limit_req_log_level = PV_UNSET;
    p->limit_req_dry_run = PV_UNSET;
    p->limit_req_headers = PV_UNSET;
    p->limit_conn_status = PV_UNSET;
    p->limit_conn_log_level = PV_UNSET;
    p->limit_conn_dry_run = PV_UNSET;
    p->auth_jwt_leeway = PV_UNSET;
    p->satisfy = PV_UNSET;
    p->auth_delay = PV_UNSET;
}

#define PMERGE(f, def)                                                                                                 \
    do {                                                                                                               \
        if (c->f == PV_UNSET)                                                                                          \
            c->f = p ? p->f : (def);                                                                                   \
    } while (0)

void pv_conf_policy_merge(pv_policy_conf_t *c, const pv_policy_conf_t *p)
{
    PMERGE(limit_req_status, 503);
    PMERGE(limit_req_log_level, PV_LOG_ERR);
    PMERGE(limit_req_dry_run, 0);
    PMERGE(limit_req_headers, 0);
    PMERGE(limit_conn_status, 503);
    PMERGE(limit_conn_log_level, PV_LOG_ERR);
    PMERGE(limit_conn_dry_run, 0);
    PMERGE(auth_jwt_leeway, 0);
    PMERGE(satisfy, PV_SATISFY_ALL);
    PMERGE(auth_delay, 0);
    if (!p)
        return;
    if (!c->nlreq) {
        c->lreq = p->lreq;
        c->lreq_zone = p->lreq_zone;
        c->nlreq = p->nlreq;
    }
    if (!c->nlconn) {
        c->lconn = p->lconn;
        c->lconn_zone = p->lconn_zone;
        c->nlconn = p->nlconn;
    }
    if (!c->nrules) {
        c->rules = p->rules;
        c->nrules = p->nrules;
    }
    if (!c->auth_request) {
        c->auth_request = p->auth_request;
        c->auth_request_src = p->auth_request_src;
    }
    if (!c->nauth_sets) {
        c->auth_sets = p->auth_sets;
        c->nauth_sets = p->nauth_sets;
    }
    if (!c->auth_basic_set) {
        c->auth_basic = p->auth_basic;
        c->auth_basic_set = p->auth_basic_set;
    }
    if (!c->auth_basic_user_file) {
        c->auth_basic_user_file = p->auth_basic_user_file;
        c->user_file_prefix = p->user_file_prefix;
    }
    if (!c->auth_jwt_set) {
        c->auth_jwt = p->auth_jwt;
        c->auth_jwt_token = p->auth_jwt_token;
        c->auth_jwt_set = p->auth_jwt_set;
    }
    if (!c->jwks)
        c->jwks = p->jwks;
    if (!c->nauth_jwt_require) {
        c->auth_jwt_require = p->auth_jwt_require;
        c->nauth_jwt_require = p->nauth_jwt_require;
    }
    if (!c->api_keys)
        c->api_keys = p->api_keys;
    if (!c->api_key_header.p)
        c->api_key_header = p->api_key_header;
}

static void zone_release_cb(void *impl)
{
    pv_zones_release(impl);
}

int pv_conf_policy_finish(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < h->nzones; i++) {
        pv_zone_t *z = h->zones[i];
        z->impl = pv_zones_acquire(z->kind, z->name, (size_t)z->size, z->rate);
        if (!z->impl)
            return pv_conf_error(cx, &z->src, "could not allocate zone \"%s\"", z->name);
        add_cleanup(cx, zone_release_cb, z->impl);
    }
    for (zref_t *r = zrefs; r; r = r->next) {
        pv_zone_t *z = NULL;
        for (int i = 0; i < h->nzones && !z; i++)
            if (strcmp(h->zones[i]->name, r->name) == 0)
                z = h->zones[i];
        if (!z || z->kind != r->kind)
            return pv_conf_error(cx, &r->src, "zone \"%s\" is unknown", r->name);
        *r->slot = z;
        if (r->kind == PV_ZONE_REQ)
            ((pv_limit_req_t *)r->line)->zone = z->impl;
        else
            ((pv_limit_conn_t *)r->line)->zone = z->impl;
    }
    zrefs = NULL;
    return PV_OK;
}

int pv_conf_policy_check(pv_conf_ctx_t *cx, const pv_location_t *loc)
{
    const pv_policy_conf_t *p = &loc->conf.policy;
    if (p->auth_basic && !p->auth_basic_user_file)
        return pv_conf_error(cx, &loc->src, "\"auth_basic\" needs \"auth_basic_user_file\"");
    if (p->auth_jwt && !p->jwks)
        return pv_conf_error(cx, &loc->src, "\"auth_jwt\" needs \"auth_jwt_key_file\"");
    return PV_OK;
}
