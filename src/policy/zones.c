#include "zones.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"

typedef struct zent_s {
    int kind;            /* PV_ZONE_* */
    char *name;          /* zone name */
    size_t size;         /* bytes */
    uint64_t rate;       /* PV_ZONE_REQ: milli-requests per second */
    void *impl;          /* the zone */
    int refs;            /* snapshots holding it */
    struct zent_s *next;
} zent_t;

static pthread_mutex_t zlock = PTHREAD_MUTEX_INITIALIZER;
static zent_t *zents;

void *pv_zones_acquire(int kind, const char *name, size_t size, uint64_t rate)
{
    pthread_mutex_lock(&zlock);
    for (zent_t *e = zents; e; e = e->next) {
        if (e->kind == kind && e->size == size && e->rate == rate && strcmp(e->name, name) == 0) {
            e->refs++;
            pthread_mutex_unlock(&zlock);
            return e->impl;
        }
    }
    zent_t *e = calloc(1, sizeof(*e));
    if (e) {
        e->name = strdup(name);
        e->impl = kind == PV_ZONE_REQ ? (void *)pv_limit_req_zone_new(name, size, rate)
                                      : (void *)pv_limit_conn_zone_new(name, size);
    }
    if (!e || !e->name || !e->impl) {
        if (e) {
            free(e->name);
            free(e);
        }
        pthread_mutex_unlock(&zlock);
        return NULL;
    }
    e->kind = kind;
    e->size = size;
    e->rate = rate;
    e->refs = 1;
    e->next = zents;
    zents = e;
    pthread_mutex_unlock(&zlock);
    return e->impl;
}

void pv_zones_release(void *impl)
{
    pthread_mutex_lock(&zlock);
    for (zent_t **pp = &zents; *pp; pp = &(*pp)->next) {
        zent_t *e = *pp;
        if (e->impl != impl)
            continue;
        if (--e->refs == 0) {
            *pp = e->next;
            if (e->kind == PV_ZONE_REQ)
                pv_limit_req_zone_free(e->impl);
            else
                pv_limit_conn_zone_free(e->impl);
            free(e->name);
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&zlock);
}
