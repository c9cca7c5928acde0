/* Cluster-wide limit_req over Redis: a hiredis async connection on the
 * worker's epoll loop, the leaky bucket as a Lua script, outage handling.
 *
 * The loop is edge-triggered and registers a socket once for both
 * directions, while hiredis expects level-triggered add/del hooks. The
 * adapter therefore reads until the socket is drained (hiredis reads at
 * most 16 KB per call), writes until hiredis is done or the socket is full
 * (the next EPOLLOUT edge resumes), and turns hiredis's "add write" into a
 * 0 ms timer so every command issued during one loop iteration leaves in
 * one write(2). */
#include "redis.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../core/log.h"

/* Checks in flight on one connection before new ones fail fast. */
#define PV_REDIS_MAX_INFLIGHT 65536
/* Error replies logged at most once per this many ms. */
#define PV_REDIS_ERRLOG_MS 1000

/* The local zone's arithmetic (ngx_http_limit_req_lookup) on Redis's clock.
 * Returns {rejected, excess}; a rejected request changes nothing. The key
 * expires when its state would read like a new key's. */
static const char pv_redis_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local s = redis.call('HMGET', KEYS[1], 'e', 'l')\n"
    "local excess = 0\n"
    "local last = now\n"
    "if s[1] then\n"
    "  last = tonumber(s[2])\n"
    "  local ms = now - last\n"
    "  if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end\n"
    "  excess = tonumber(s[1]) - math.floor(rate * ms / 1000) + 1000\n"
    "  if excess < 0 then excess = 0 end\n"
    "  if excess > burst then return {1, excess} end\n"
    "  if ms ~= 0 then last = now end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'e', excess, 'l', last)\n"
    "redis.call('PEXPIRE', KEYS[1], math.floor((excess + 1000) * 1000 / rate) + 1)\n"
    "return {0, excess}\n";

/* Connection states. */
enum {
    RS_DOWN,       /* no connection; the timer brings the next attempt */
    RS_CONNECTING, /* connecting, or connected and waiting for Redis's first answer */
    RS_UP          /* Redis answers; checks are sent */
};

struct pv_redis_req_s {
    pv_redis_t *r;                /* owning client */
    pv_redis_req_t *prev;         /* in-flight list, towards the oldest */
    pv_redis_req_t *next;         /* in-flight list towards the newest; freelist link */
    pv_redis_limit_cb cb;         /* NULL once cancelled */
    void *arg;                    /* cb's argument */
    const pv_limit_req_t *limit;  /* the caller's limit; not touched once cancelled */
    char *key;                    /* "pv:lr:<zone>:<key>", kept for a NOSCRIPT retry */
    size_t klen;                  /* its length */
    size_t kcap;                  /* its buffer size (reused across checks) */
    uint64_t sent;                /* loop ms when queued, for the reply timeout */
    int retried;                  /* already resent with EVAL after NOSCRIPT */
};

/* A Sentinel's resolved address. */
typedef struct {
    char ip[INET6_ADDRSTRLEN];
    int port;
} sentinel_t;

struct pv_redis_s {
    pv_loop_t *loop;              /* the worker's loop */
    pv_redis_target_t t;          /* as configured (a deep copy) */
    char addr[INET6_ADDRSTRLEN];  /* resolved address hiredis connects to (the master's, with Sentinel) */
    int port;                     /* TCP port */
    char name[300];               /* "host:port", "unix:PATH" or "master NAME", for logs */
    sentinel_t *sentinels;        /* resolved Sentinels */
    int sentinel_next;            /* the one asked next (round robin) */
    int master_known;             /* addr holds what a Sentinel said */
    int asking;                   /* the connection is to a Sentinel */
    int switching;                /* a Sentinel answered: its connection closes, the master's opens */
    redisAsyncContext *ac;        /* current connection; NULL when down */
    pv_io_t io;                   /* its socket in the loop */
    int state;                    /* RS_* */
    int want_write;               /* hiredis has output queued */
    int writing;                  /* inside do_write(): a full socket waits for EPOLLOUT, not the timer */
    int outage;                   /* an outage was logged and has not ended */
    int closing;                  /* pv_redis_free() running: no reconnect */
    uint64_t outage_since;        /* loop ms the outage began */
    uint64_t errlog_at;           /* loop ms of the last logged error reply */
    const char *reason;           /* why we are dropping the connection ourselves */
    pv_timer_t timer;             /* DOWN: reconnect; CONNECTING: connect timeout; UP: reply watchdog */
    pv_timer_t flush;             /* 0 ms: write what this iteration queued */
    uint64_t connect_ms;          /* connect timeout */
    uint64_t reply_ms;            /* reply timeout */
    uint64_t backoff_min;         /* first reconnect delay */
    uint64_t backoff_max;         /* reconnect delay cap */
    uint64_t backoff;             /* next reconnect delay */
    uint64_t rng;                 /* xorshift state for the backoff jitter */
    uint64_t attempts;            /* connection attempts made (tests, metrics) */
    pv_redis_req_t *head;         /* oldest check in flight */
    pv_redis_req_t *tail;         /* newest check in flight */
    size_t inflight;              /* checks in flight */
    pv_redis_req_t *free;         /* recycled checks */
    char sha[41];                 /* SHA1 of the script, hex */
};

static void connect_now(pv_redis_t *r);

/* ---- small helpers -------------------------------------------------------- */

static void script_sha(char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    EVP_Digest(pv_redis_script, sizeof(pv_redis_script) - 1, md, &mdlen, EVP_sha1(), NULL);
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

/* Reconnect delay with jitter in [backoff/2, backoff], so the workers of
 * every instance do not knock on a recovering Redis in step. */
static uint64_t backoff_next(pv_redis_t *r)
{
    uint64_t b = r->backoff;
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    r->backoff = PV_MIN(r->backoff * 2, r->backoff_max);
    return b / 2 + r->rng % (b / 2 + 1);
}

static void went_down(pv_redis_t *r, const char *why)
{
    if (r->outage)
        return;
    r->outage = 1;
    r->outage_since = pv_loop_now(r->loop);
    pv_log(PV_LOG_ERR, "redis %s unavailable: %s; its limit_req zones fail fast until it is back",
           r->name, why);
}

static void came_up(pv_redis_t *r)
{
    r->state = RS_UP;
    r->backoff = r->backoff_min;
    pv_timer_del(r->loop, &r->timer);
    if (r->head)
        pv_timer_set(r->loop, &r->timer, r->reply_ms);
    if (r->outage) {
        r->outage = 0;
        pv_log(PV_LOG_NOTICE, "redis %s is back after %llu ms", r->name,
               (unsigned long long)(pv_loop_now(r->loop) - r->outage_since));
    }
}

/* Drop the connection on our own initiative (timeouts, shutdown). Only
 * from outside hiredis callbacks: hiredis frees at once, which runs every
 * pending reply callback with NULL and then ev_cleanup(). */
static void drop(pv_redis_t *r, const char *why)
{
    if (!r->ac)
        return;
    r->reason = why;
    redisAsyncFree(r->ac); /* from a callback: once it returns */
}

/* ---- the in-flight list ----------------------------------------------------- */

static void inflight_push(pv_redis_t *r, pv_redis_req_t *q)
{
    q->sent = pv_loop_now(r->loop);
    q->next = NULL;
    q->prev = r->tail;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
    r->inflight++;
    if (r->state == RS_UP && !pv_timer_armed(&r->timer))
        pv_timer_set(r->loop, &r->timer, r->reply_ms);
}

static void inflight_unlink(pv_redis_t *r, pv_redis_req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        r->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        r->tail = q->prev;
    q->prev = q->next = NULL;
    r->inflight--;
}

static void req_recycle(pv_redis_t *r, pv_redis_req_t *q)
{
    q->cb = NULL;
    q->arg = NULL;
    q->limit = NULL;
    q->next = r->free;
    r->free = q;
}

/* ---- hiredis event hooks ------------------------------------------------------ */

/* Reads need no hook: the socket is registered once for both directions
 * and do_read() drains it on every edge. */
static void ev_add_read(void *p)
{
    PV_UNUSED(p);
}

static void ev_del_read(void *p)
{
    PV_UNUSED(p);
}

static void ev_add_write(void *p)
{
    pv_redis_t *r = p;
    r->want_write = 1;
    if (!r->writing && r->ac && (r->ac->c.flags & REDIS_CONNECTED) && !pv_timer_armed(&r->flush))
        pv_timer_set(r->loop, &r->flush, 0);
}

static void ev_del_write(void *p)
{
    pv_redis_t *r = p;
    r->want_write = 0;
}

/* hiredis is about to free the connection (error, EOF, or our drop()):
 * every pending callback has already run. Plan the next attempt. */
static void ev_cleanup(void *p)
{
    pv_redis_t *r = p;
    char why[128];

    if (r->reason)
        snprintf(why, sizeof(why), "%s", r->reason);
    else if (r->ac && r->ac->err && r->ac->errstr)
        snprintf(why, sizeof(why), "%s", r->ac->errstr);
    else
        snprintf(why, sizeof(why), "connection closed");
    r->reason = NULL;
    if (r->io.fd >= 0) {
        pv_loop_del(r->loop, &r->io);
        r->io.fd = -1;
    }
    pv_timer_del(r->loop, &r->flush);
    pv_timer_del(r->loop, &r->timer);
    r->ac = NULL;
    r->want_write = 0;
    r->state = RS_DOWN;
    if (r->closing)
        return;
    if (r->switching) {
        /* a Sentinel named the master: connect to it now */
        r->switching = 0;
        pv_timer_set(r->loop, &r->timer, 0);
        return;
    }
    /* with Sentinel, whatever ended the connection, ask again */
    r->master_known = 0;
    went_down(r, why);
    pv_timer_set(r->loop, &r->timer, backoff_next(r));
}

/* ---- reading and writing ----------------------------------------------------- */

static void do_write(pv_redis_t *r)
{
    r->writing = 1;
    while (r->ac && r->want_write) {
        size_t before = sdslen(r->ac->c.obuf);
        int was_connected = r->ac->c.flags & REDIS_CONNECTED;
        redisAsyncHandleWrite(r->ac);
        if (!r->ac || !(r->ac->c.flags & REDIS_CONNECTED))
            break;
        /* no progress: the socket is full, the next EPOLLOUT edge resumes */
        if (was_connected && r->want_write && sdslen(r->ac->c.obuf) == before)
            break;
    }
    r->writing = 0;
}

static void do_read(pv_redis_t *r)
{
    while (r->ac) {
        redisAsyncHandleRead(r->ac);
        if (!r->ac)
            return;
        char c;
        ssize_t n = recv(r->ac->c.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* more bytes, EOF or a socket error: hiredis reads it next round */
    }
}

static void io_cb(pv_io_t *io, unsigned events)
{
    pv_redis_t *r = io->data;

    if (!r->ac)
        return;
    if (!(r->ac->c.flags & REDIS_CONNECTED)) {
        /* the connect(2) outcome: hiredis checks SO_ERROR on a write event */
        do_write(r);
        if (!r->ac || !(r->ac->c.flags & REDIS_CONNECTED))
            return;
    } else if (events & PV_EV_WRITE) {
        do_write(r);
    }
    if (r->ac && (events & PV_EV_READ))
        do_read(r);
}

static void flush_cb(pv_timer_t *t)
{
    pv_redis_t *r = t->data;
    do_write(r);
}

/* ---- replies ------------------------------------------------------------------- */

static void log_error_reply(pv_redis_t *r, const char *what, const char *msg)
{
    uint64_t now = pv_loop_now(r->loop);
    if (r->errlog_at && now - r->errlog_at < PV_REDIS_ERRLOG_MS)
        return;
    r->errlog_at = now;
    pv_log(PV_LOG_ERR, "redis %s: %s: %s", r->name, what, msg);
}

static int send_check(pv_redis_t *r, pv_redis_req_t *q, int full_script);

static void deliver(pv_redis_req_t *q, const pv_limit_req_result_t *res, const char *err)
{
    if (q->cb)
        q->cb(q->arg, res, err);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    pv_redis_req_t *q = priv;
    pv_redis_t *r = q->r;
    redisReply *rep = reply;

    PV_UNUSED(ac);
    inflight_unlink(r, q);
    if (!q->cb) {
        /* cancelled: the caller and its limit may be gone */
        req_recycle(r, q);
        return;
    }
    if (!rep) {
        deliver(q, NULL, r->reason ? r->reason : "redis connection lost");
        req_recycle(r, q);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR && !q->retried && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* the script cache was flushed: send the script itself once */
        q->retried = 1;
        if (send_check(r, q, 1) == PV_OK)
            return;
        deliver(q, NULL, "redis connection lost");
        req_recycle(r, q);
        return;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[1]->type == REDIS_REPLY_INTEGER) {
        pv_limit_req_result_t res;
        long long excess = rep->element[1]->integer;
        pv_limit_req_decide(q->limit, excess < 0 ? 0 : (uint64_t)excess,
                            rep->element[0]->integer != 0, &res);
        deliver(q, &res, NULL);
    } else {
        log_error_reply(r, "unexpected reply to the limit_req script",
                        rep->type == REDIS_REPLY_ERROR ? rep->str : "not {rejected, excess}");
        deliver(q, NULL, "redis error reply");
    }
    req_recycle(r, q);
}

/* The answer to SCRIPT LOAD is Redis's first answer on a new connection:
 * only then is the server taken as up (a stopped server still completes
 * the TCP handshake from its backlog). */
static void script_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    pv_redis_t *r = ac->ev.data;
    redisReply *rep = reply;

    PV_UNUSED(priv);
    if (!rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR)
        log_error_reply(r, "SCRIPT LOAD failed", rep->str);
    else if (rep->type == REDIS_REPLY_STRING && strcmp(rep->str, r->sha) != 0)
        log_error_reply(r, "SCRIPT LOAD returned another digest", rep->str);
    came_up(r);
}

/* AUTH and SELECT: an error reply ends the connection (checks would
 * only fail on it). The reply's text is logged; it never holds the
 * password. */
static void login_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    pv_redis_t *r = ac->ev.data;
    redisReply *rep = reply;
    const char *what = priv;

    if (!rep || rep->type != REDIS_REPLY_ERROR)
        return;
    pv_log(PV_LOG_ERR, "redis %s: %s failed: %s", r->name, what, rep->str);
    drop(r, strcmp(what, "AUTH") == 0            ? "redis AUTH failed"
            : strcmp(what, "Sentinel AUTH") == 0 ? "redis Sentinel AUTH failed"
                                                 : "redis SELECT failed");
}

/* With Sentinel, the server must still be the master (a demoted one may
 * be reached before the Sentinels agree): ROLE says. */
static void role_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    pv_redis_t *r = ac->ev.data;
    redisReply *rep = reply;

    PV_UNUSED(priv);
    if (!rep)
        return;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 && rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "master") == 0)
        return;
    pv_log(PV_LOG_WARN, "redis %s: %s:%d is not the master, asking the Sentinels again", r->name, r->addr, r->port);
    drop(r, "redis server is not the master");
}

/* SENTINEL get-master-addr-by-name: {ip, port}, or nil for an unknown name. */
static void sentinel_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    pv_redis_t *r = ac->ev.data;
    redisReply *rep = reply;

    PV_UNUSED(priv);
    if (!rep)
        return;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING && rep->element[0]->len < sizeof(r->addr)) {
        int port = atoi(rep->element[1]->str);
        if (port > 0 && port <= 65535) {
            memcpy(r->addr, rep->element[0]->str, rep->element[0]->len + 1);
            r->port = port;
            r->master_known = 1;
            r->switching = 1;
            drop(r, "redis Sentinel answered");
            return;
        }
    }
    log_error_reply(r, "a Sentinel does not name the master",
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "no such master");
    drop(r, "redis Sentinel has no master");
}

/* AUTH [user] password on ac; what names it in the log ("AUTH" for the
 * server, "Sentinel AUTH"). */
static int send_auth(redisAsyncContext *ac, const char *user, const char *password, const char *what)
{
    const char *argv[3] = {"AUTH", user, password};
    size_t lens[3] = {4, user ? strlen(user) : 0, strlen(password)};
    if (!user) {
        argv[1] = argv[2];
        lens[1] = lens[2];
    }
    return redisAsyncCommandArgv(ac, login_cb, (void *)what, user ? 3 : 2, argv, lens) == REDIS_OK ? PV_OK : PV_ERR;
}

/* What a new connection to the server sends before any check. */
static int login(pv_redis_t *r, redisAsyncContext *ac)
{
    if (r->t.password && send_auth(ac, r->t.user, r->t.password, "AUTH") != PV_OK)
        return PV_ERR;
    if (r->t.db && redisAsyncCommand(ac, login_cb, "SELECT", "SELECT %d", r->t.db) != REDIS_OK)
        return PV_ERR;
    if (r->t.nsentinels && redisAsyncCommand(ac, role_cb, NULL, "ROLE") != REDIS_OK)
        return PV_ERR;
    /* Redis's answer to this one marks the server as up; checks queued
     * behind it find the script */
    if (redisAsyncCommand(ac, script_cb, NULL, "SCRIPT LOAD %s", pv_redis_script) != REDIS_OK)
        return PV_ERR;
    return PV_OK;
}

static int send_check(pv_redis_t *r, pv_redis_req_t *q, int full_script)
{
    char rate[24], burst[24];
    const char *argv[6];
    size_t lens[6];

    snprintf(rate, sizeof(rate), "%llu", (unsigned long long)pv_limit_req_zone_rate(q->limit->zone));
    snprintf(burst, sizeof(burst), "%llu", (unsigned long long)q->limit->burst);
    argv[0] = full_script ? "EVAL" : "EVALSHA";
    lens[0] = full_script ? 4 : 7;
    argv[1] = full_script ? pv_redis_script : r->sha;
    lens[1] = full_script ? sizeof(pv_redis_script) - 1 : 40;
    argv[2] = "1";
    lens[2] = 1;
    argv[3] = q->key; /* binary: not NUL-terminated */
    lens[3] = q->klen;
    argv[4] = rate;
    lens[4] = strlen(rate);
    argv[5] = burst;
    lens[5] = strlen(burst);
    if (!r->ac || redisAsyncCommandArgv(r->ac, reply_cb, q, 6, argv, lens) != REDIS_OK)
        return PV_ERR;
    inflight_push(r, q);
    return PV_OK;
}

/* ---- connection management ------------------------------------------------------ */

/* One timer, three jobs: reconnect when down, give up a connection that
 * does not answer, and watch the oldest check in flight when up. */
static void timer_cb(pv_timer_t *t)
{
    pv_redis_t *r = t->data;
    uint64_t now = pv_loop_now(r->loop);

    if (r->state == RS_DOWN) {
        connect_now(r);
    } else if (r->state == RS_CONNECTING) {
        drop(r, "redis connect timed out");
    } else if (r->head) {
        if (now - r->head->sent >= r->reply_ms)
            drop(r, "redis reply timed out");
        else
            pv_timer_set(r->loop, &r->timer, r->head->sent + r->reply_ms - now);
    }
}

static void connect_now(pv_redis_t *r)
{
    redisAsyncContext *ac;

    r->attempts++;
    r->asking = r->t.nsentinels && !r->master_known;
    if (r->asking) {
        const sentinel_t *st = &r->sentinels[r->sentinel_next++ % r->t.nsentinels];
        ac = redisAsyncConnect(st->ip, st->port);
    } else if (r->t.unix_path) {
        ac = redisAsyncConnectUnix(r->t.unix_path);
    } else {
        ac = redisAsyncConnect(r->addr, r->port);
    }
    if (!ac || ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        went_down(r, why);
        pv_timer_set(r->loop, &r->timer, backoff_next(r));
        return;
    }
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    r->ac = ac;
    r->state = RS_CONNECTING;
    r->io.fd = ac->c.fd;
    if (pv_loop_add(r->loop, &r->io) != 0) {
        r->io.fd = -1;
        drop(r, "cannot watch the socket");
        return;
    }
    pv_timer_set(r->loop, &r->timer, r->connect_ms);
    if (r->asking) {
        if ((r->t.sentinel_password &&
             send_auth(ac, r->t.sentinel_user, r->t.sentinel_password, "Sentinel AUTH") != PV_OK) ||
            redisAsyncCommand(ac, sentinel_cb, NULL, "SENTINEL get-master-addr-by-name %s", r->t.master) !=
                REDIS_OK)
            drop(r, "cannot queue the Sentinel query");
        return;
    }
    if (login(r, ac) != PV_OK)
        drop(r, "cannot queue the first commands");
}

/* ---- API ------------------------------------------------------------------------ */

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int pv_redis_target_eq(const pv_redis_target_t *a, const pv_redis_target_t *b)
{
    if (!str_eq(a->addr.host, b->addr.host) || a->addr.port != b->addr.port || strcmp(a->addr.ip, b->addr.ip) ||
        !str_eq(a->unix_path, b->unix_path) ||
        a->nsentinels != b->nsentinels || !str_eq(a->master, b->master) || a->db != b->db ||
        !str_eq(a->user, b->user) || !str_eq(a->password, b->password) ||
        !str_eq(a->sentinel_user, b->sentinel_user) || !str_eq(a->sentinel_password, b->sentinel_password))
        return 0;
    for (int i = 0; i < a->nsentinels; i++)
        if (!str_eq(a->sentinels[i].host, b->sentinels[i].host) || a->sentinels[i].port != b->sentinels[i].port ||
            strcmp(a->sentinels[i].ip, b->sentinels[i].ip))
            return 0;
    return 1;
}

static void target_free(pv_redis_target_t *t)
{
    free((char *)t->addr.host);
    free((char *)t->unix_path);
    for (int i = 0; i < t->nsentinels; i++)
        free((char *)t->sentinels[i].host);
    free((pv_redis_addr_t *)t->sentinels);
    free((char *)t->master);
    free((char *)t->user);
    free((char *)t->sentinel_user);
    for (int i = 0; i < 2; i++) {
        char *pw = (char *)(i ? t->sentinel_password : t->password);
        if (pw)
            OPENSSL_cleanse(pw, strlen(pw));
        free(pw);
    }
}

static int dup_str(const char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst ? 0 : -1;
}

static int target_copy(pv_redis_target_t *d, const pv_redis_target_t *t)
{
    *d = (pv_redis_target_t){.addr = t->addr, .db = t->db};
    int bad = dup_str(&d->addr.host, t->addr.host) | dup_str(&d->unix_path, t->unix_path) |
              dup_str(&d->master, t->master) | dup_str(&d->user, t->user) | dup_str(&d->password, t->password) |
              dup_str(&d->sentinel_user, t->sentinel_user) | dup_str(&d->sentinel_password, t->sentinel_password);
    if (t->nsentinels) {
        pv_redis_addr_t *s = calloc((size_t)t->nsentinels, sizeof(*s));
        d->sentinels = s;
        for (int i = 0; s && i < t->nsentinels; i++, d->nsentinels++) {
            s[i] = t->sentinels[i];
            bad |= dup_str(&s[i].host, t->sentinels[i].host);
        }
        bad |= !s;
    }
    return bad ? -1 : 0;
}

int pv_redis_resolve(pv_redis_addr_t *a, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(a->host, NULL, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    if (ai->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, a->ip, sizeof(a->ip));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, a->ip, sizeof(a->ip));
    freeaddrinfo(ai);
    return 0;
}

/* The address a connection goes to: what pv_redis_resolve() found, or
 * the host when it is an address literal; 0, or -1 (logged). */
static int address_of(const char *name, const pv_redis_addr_t *a, char ip[INET6_ADDRSTRLEN])
{
    unsigned char bin[sizeof(struct in6_addr)];
    if (a->ip[0]) {
        memcpy(ip, a->ip, INET6_ADDRSTRLEN);
        return 0;
    }
    if (inet_pton(AF_INET, a->host, bin) == 1 || inet_pton(AF_INET6, a->host, bin) == 1) {
        snprintf(ip, INET6_ADDRSTRLEN, "%s", a->host);
        return 0;
    }
    pv_log(PV_LOG_ERR, "redis %s: \"%s\" was not resolved when the config was loaded", name, a->host);
    return -1;
}

pv_redis_t *pv_redis_new(pv_loop_t *loop, const pv_redis_target_t *t)
{
    if (!loop || !t || (!t->addr.host && !t->unix_path && !t->nsentinels) ||
        (t->addr.host && (t->addr.port <= 0 || t->addr.port > 65535)) || (t->nsentinels && !t->master))
        return NULL;
    pv_redis_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (target_copy(&r->t, t) != 0)
        goto fail;
    if (t->nsentinels)
        snprintf(r->name, sizeof(r->name), "master %s", t->master);
    else if (t->unix_path)
        snprintf(r->name, sizeof(r->name), "unix:%s", t->unix_path);
    else
        snprintf(r->name, sizeof(r->name), "%s:%d", t->addr.host, t->addr.port);
    if (t->addr.host && address_of(r->name, &t->addr, r->addr) != 0)
        goto fail;
    r->port = t->addr.port;
    if (t->nsentinels) {
        r->sentinels = calloc((size_t)t->nsentinels, sizeof(*r->sentinels));
        if (!r->sentinels)
            goto fail;
        for (int i = 0; i < t->nsentinels; i++) {
            if (address_of(r->name, &t->sentinels[i], r->sentinels[i].ip) != 0)
                goto fail;
            r->sentinels[i].port = t->sentinels[i].port;
        }
    }
    r->loop = loop;
    r->io.fd = -1;
    r->io.cb = io_cb;
    r->io.data = r;
    r->connect_ms = 1000;
    r->reply_ms = 1000;
    r->backoff_min = r->backoff = 100;
    r->backoff_max = 5000;
    r->rng = pv_now_ns() ^ (uintptr_t)r;
    if (!r->rng)
        r->rng = 1;
    script_sha(r->sha);
    pv_timer_init(&r->timer, timer_cb, r);
    pv_timer_init(&r->flush, flush_cb, r);
    connect_now(r);
    return r;
fail:
    target_free(&r->t);
    free(r->sentinels);
    free(r);
    return NULL;
}

void pv_redis_set_timeouts(pv_redis_t *r, uint64_t connect_ms, uint64_t reply_ms,
                           uint64_t backoff_min_ms, uint64_t backoff_max_ms)
{
    if (connect_ms)
        r->connect_ms = connect_ms;
    if (reply_ms)
        r->reply_ms = reply_ms;
    if (backoff_min_ms)
        r->backoff_min = r->backoff = backoff_min_ms;
    if (backoff_max_ms)
        r->backoff_max = backoff_max_ms;
    if (r->backoff_max < r->backoff_min)
        r->backoff_max = r->backoff_min;
}

int pv_redis_limit(pv_redis_t *r, const pv_limit_req_t *limit, pv_str_t key,
                   pv_redis_limit_cb cb, void *arg, pv_redis_req_t **req, const char **err)
{
    static const char prefix[] = "pv:lr:";
    pv_redis_req_t *q;

    if (req)
        *req = NULL;
    if (!r->ac || r->asking || r->state == RS_DOWN || (r->state == RS_CONNECTING && r->outage)) {
        *err = "redis unavailable";
        return PV_ERR;
    }
    if (r->inflight >= PV_REDIS_MAX_INFLIGHT) {
        *err = "redis overloaded";
        return PV_ERR;
    }
    q = r->free;
    if (q) {
        r->free = q->next;
    } else {
        q = calloc(1, sizeof(*q));
        if (!q) {
            *err = "out of memory";
            return PV_ERR;
        }
    }
    const char *zone = pv_limit_req_zone_name(limit->zone);
    size_t zlen = strlen(zone);
    size_t need = sizeof(prefix) - 1 + zlen + 1 + key.len;
    if (need > q->kcap) {
        char *k = realloc(q->key, need);
        if (!k) {
            q->next = r->free;
            r->free = q;
            *err = "out of memory";
            return PV_ERR;
        }
        q->key = k;
        q->kcap = need;
    }
    if (!q->key) {
        q->next = r->free;
        r->free = q;
        *err = "out of memory";
        return PV_ERR;
    }
    memcpy(q->key, prefix, sizeof(prefix) - 1);
    memcpy(q->key + sizeof(prefix) - 1, zone, zlen);
    q->key[sizeof(prefix) - 1 + zlen] = ':';
    if (key.len)
        memcpy(q->key + sizeof(prefix) + zlen, key.p, key.len);
    q->klen = need;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->limit = limit;
    q->retried = 0;
    if (send_check(r, q, 0) != PV_OK) {
        req_recycle(r, q);
        *err = "redis unavailable";
        return PV_ERR;
    }
    if (req)
        *req = q;
    return PV_AGAIN;
}

void pv_redis_cancel(pv_redis_req_t *req)
{
    if (!req)
        return;
    req->cb = NULL;
    req->arg = NULL;
    req->limit = NULL;
}

const pv_redis_target_t *pv_redis_target(const pv_redis_t *r)
{
    return &r->t;
}

int pv_redis_up(const pv_redis_t *r)
{
    return r->state == RS_UP;
}

void pv_redis_free(pv_redis_t *r)
{
    if (!r)
        return;
    r->closing = 1;
    pv_timer_del(r->loop, &r->timer);
    pv_timer_del(r->loop, &r->flush);
    drop(r, "redis client closed");
    while (r->free) {
        pv_redis_req_t *q = r->free;
        r->free = q->next;
        free(q->key);
        free(q);
    }
    target_free(&r->t);
    free(r->sentinels);
    free(r);
}
