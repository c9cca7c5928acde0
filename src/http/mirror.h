/* The mirror module (NGINX's ngx_http_mirror_module): in the precontent
 * phase of a client's request, one background subrequest (subreq.h) per
 * `mirror` URI of its location, with the request's method, header
 * fields, args and (mirror_request_body on, the default: read whole
 * first) its body. A mirror's response is dropped; its failure is never
 * the client's. The client's answer goes out as it comes, but the
 * request ends (is logged, and its connection kept or closed) only once
 * every mirror has ended, as NGINX's main request waits for its
 * background subrequests. */
#ifndef PV_HTTP_MIRROR_H
#define PV_HTTP_MIRROR_H

#include "../proc/worker.h"

struct pv_hreq_s;

extern pv_module_t pv_mirror_module;

/* s, a background subrequest of hr started elsewhere (a cache update
 * that outlives its include, subreq.c), is held as a mirror is: hr's end
 * waits for it, and its state is freed once it ended. */
struct pv_subreq_s;
int pv_mirror_adopt(struct pv_hreq_s *hr, struct pv_subreq_s *s);
/* From the request's end (server.c): 1 when mirrors of hr still run;
 * the end is then called again once the last one has ended. */
int pv_mirror_hold(struct pv_hreq_s *hr, void (*end)(struct pv_hreq_s *hr));
/* The request state is freed: mirrors still running are aborted. */
void pv_mirror_free(struct pv_hreq_s *hr);

#endif
