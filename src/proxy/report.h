/* The gateway's reports, content handlers of a location:
 * `portvakt_metrics;` (Prometheus text exposition, or OpenMetrics when the
 * scraper's Accept asks for it), `stub_status;` (NGINX's exact page) and
 * `portvakt_status;` (JSON in the shape of NGINX Plus's API, status.c) and
 * `portvakt_dashboard;` (a page drawing that JSON, dashboard.c). */
#ifndef PV_PROXY_REPORT_H
#define PV_PROXY_REPORT_H

#include <stddef.h>

#include "../core/module.h"

struct pv_hreq_s;

/* A growing output buffer (a mapping of its own); oom set once an append failed. */
typedef struct pv_out_s {
    char *p;
    size_t len, cap;
    int oom;
    int status;                   /* the answer's status; 0: 200 */
} pv_out_t;
void pv_out_printf(pv_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pv_out_mem(pv_out_t *o, const char *s, size_t n);
/* Give back an output buffer's text (o.p). */
void pv_out_free(char *p);

/* Whether an Accept value prefers OpenMetrics to the Prometheus text
 * format (its q-value is above 0 and not below text/plain's or
 * wildcards'). Total: any bytes (fuzzed by fuzz/fuzz_accept.c). */
int pv_report_wants_openmetrics(const char *accept, size_t len);

/* Send o's text as the answer to hr (o->status or 200, content_type), taking o's
 * buffer (freed with the request). */
void pv_report_send(struct pv_hreq_s *hr, pv_out_t *o, const char *content_type);
/* The dashboard page (dashboard.c): pv_dashboard_html_size bytes. */
extern const char pv_dashboard_html[];
extern const size_t pv_dashboard_html_size;
/* portvakt_status: the JSON document into o, or the part of it an NGINX
 * Plus API path below the location names (status.c). */
void pv_report_status(struct pv_hreq_s *hr, pv_out_t *o);

/* The part of the status document doc an NGINX Plus API path names: p
 * is the path below the location ("9/http/upstreams/app"); "" the whole
 * document, "N" or "N/" (a version, 1 to 9) the root endpoints' names,
 * "N/http/" those under http, "N/A/B..." that member; else NGINX Plus's
 * 404 error object. Takes doc; *status is 200 or 404. Total: any bytes
 * (fuzzed by fuzz/fuzz_status_path.c). */
typedef struct json_t json_t;
json_t *pv_status_api_select(json_t *doc, const char *p, size_t len, int *status);

extern pv_module_t pv_report_module;

#endif
