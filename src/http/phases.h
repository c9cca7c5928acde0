/* The request phases, as NGINX runs them: post-read, server rewrite, find
 * config, rewrite, access, precontent, content, log. Modules register handlers into
 * phases once at start (pv_module_t.init); a request walks the flattened
 * list, so the server side never calls a module by name. */
#ifndef PV_PHASES_H
#define PV_PHASES_H

#include "../config/conf.h"
#include "request.h"

struct pv_hreq_s;

enum {
    PV_PHASE_POST_READ = 0,  /* the head is read: check it, pick the server block */
    PV_PHASE_SERVER_REWRITE, /* the server's rewrite module script */
    PV_PHASE_FIND_CONFIG,    /* pick the location */
    PV_PHASE_REWRITE,        /* the location's script; a changed URI goes back to find config */
    PV_PHASE_ACCESS,         /* limits and authentication */
    PV_PHASE_PRECONTENT,     /* try_files, mirror */
    PV_PHASE_CONTENT,        /* the location's content handler */
    PV_PHASE_LOG,            /* the request has ended */
    PV_PHASE__COUNT
};

/* What a handler returns. */
#define PV_PHASE_NEXT 0   /* go on with the next handler */
#define PV_PHASE_DONE 1   /* the request was answered (or closed): stop */
#define PV_PHASE_PARKED 2 /* waiting on an event; pv_phases_resume() goes on */

typedef int (*pv_phase_handler_t)(struct pv_hreq_s *hr);

/* Called when a subrequest ends: its status, or the status the gateway
 * would have answered (502, 504) when it failed. sr's upstream_headers
 * hold the response's fields while it runs. */
typedef void (*pv_sub_done_cb)(struct pv_hreq_s *hr, pv_request_t *sr, int status);

/* A content handler claims the locations it serves (proxy_pass, later
 * static files, cache, metrics); the first that claims one runs it. */
typedef struct pv_content_s {
    const char *name;                          /* for logs */
    int (*claims)(const pv_location_t *loc);   /* whether loc is served by this handler */
    pv_phase_handler_t handler;                /* produces the response */
    /* Run the subrequest sr (hr's, rewritten for loc) and call done once
     * its response is read; NULL when the handler serves none. */
    void (*subrequest)(struct pv_hreq_s *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done);
} pv_content_t;

/* What the server side calls on the content handler that is producing a
 * request's response, once the handler has parked it (h2o's generator).
 * The handler sets hr->handler and hr->handling when it takes over, and
 * clears handling when it is done (pv_resp_finish(), an answer). */
typedef struct pv_handler_s {
    const char *name;                     /* for logs */
    void (*proceed)(struct pv_hreq_s *hr);  /* everything queued to the client was written: send more */
    void (*readable)(struct pv_hreq_s *hr); /* the client sent more (body bytes) or closed */
    void (*abort)(struct pv_hreq_s *hr);   /* the request ends early (client gone, timeout): drop everything */
    void (*cleanup)(struct pv_hreq_s *hr); /* the request is freed: release the handler's state */
} pv_handler_t;

/* Add h at the end of phase (start-up only, before any worker runs). */
void pv_phases_register(int phase, pv_phase_handler_t h);
/* Add a content handler (start-up only). */
void pv_phases_content(const pv_content_t *c);
/* Register the core's handlers of the server rewrite, find config and
 * rewrite phases (the rewrite module's scripts, location choice). */
void pv_phases_core_init(void);
/* Run a request's phases from post-read. */
void pv_phases_run(struct pv_hreq_s *hr);
/* From a handler: go on with the first handler of phase (the rewrite
 * phase sends a request whose URI changed back to find config). */
void pv_phases_goto(struct pv_hreq_s *hr, int phase);
/* Run hr's phases again from the first handler of phase (an internal
 * redirect: server rewrite; a named location: rewrite). */
void pv_phases_restart(struct pv_hreq_s *hr, int phase);
/* A handler that parked the request is done with PV_PHASE_NEXT: go on
 * with the handler after it. */
void pv_phases_resume(struct pv_hreq_s *hr);
/* The request r enters loc: the scope of a residency it is in, and
 * whether its logs anonymise the client (PV_REQ_F_RES_ANON). A request
 * that went through two scopes that differ may go only where both allow:
 * the proxy checks each exchange of it against that set
 * (pv_proxy_residency()). Callers test loc->conf.residency first. */
void pv_phases_res_enter(pv_request_t *r, const pv_location_t *loc);
/* Send the subrequest sr to the content handler of loc (auth_request);
 * done is called when it ends. PV_ERR when no handler of loc serves
 * subrequests (done is not called). */
int pv_phases_subrequest(struct pv_hreq_s *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done);
/* Run the log phase (the request has ended). */
void pv_phases_log(struct pv_hreq_s *hr);
/* The same for a request whose connection closed before it ended: 499
 * when no byte of an answer left; nothing when its head was not whole. */
void pv_phases_log_closed(struct pv_hreq_s *hr);

#endif
