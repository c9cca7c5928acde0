/* The logs and traces directives: log_anonymize, trace_context,
 * request_id_header, request_id_trust and server_timing, merged from
 * http to server to location like the other location settings; and the
 * ready-made log formats "json" and "otel" every http block starts with
 * (a log_format of the same name replaces one). */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

/* One JSON object per line; numbers unquoted (a numeric variable with no
 * value is null under escape=json). */
static const char json_format[] =
    "{\"time\":\"$time_iso8601\",\"remote_addr\":\"$remote_addr\",\"request_id\":\"$request_id\","
    "\"method\":\"$request_method\",\"uri\":\"$request_uri\",\"protocol\":\"$server_protocol\","
    "\"host\":\"$host\",\"status\":$status,\"request_length\":$request_length,"
    "\"bytes_sent\":$bytes_sent,\"body_bytes_sent\":$body_bytes_sent,"
    "\"request_duration_ms\":$request_duration_ms,\"upstream_addr\":\"$upstream_addr\","
    "\"upstream_status\":\"$upstream_status\","
    "\"upstream_connect_duration_ms\":$upstream_connect_duration_ms,"
    "\"upstream_header_duration_ms\":$upstream_header_duration_ms,"
    "\"upstream_duration_ms\":$upstream_duration_ms,\"referer\":\"$http_referer\","
    "\"user_agent\":\"$http_user_agent\",\"trace_id\":\"$trace_id\",\"span_id\":\"$span_id\"}";

#define OTEL_STR(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"

/* One OTLP/JSON ExportTraceServiceRequest per line (the shape the
 * OpenTelemetry Collector's otlpjsonfile receiver reads): the request's
 * server span. */
static const char otel_format[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[" OTEL_STR("service.name", "portvakt") "]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"portvakt\"},\"spans\":[{"
    "\"traceId\":\"$trace_id\",\"spanId\":\"$span_id\",\"parentSpanId\":\"$parent_span_id\","
    "\"name\":\"$request_method\",\"kind\":2,"
    "\"startTimeUnixNano\":\"$request_start_unix_nano\",\"endTimeUnixNano\":\"$request_end_unix_nano\","
    "\"attributes\":[" OTEL_STR("http.request.method", "$request_method") ","
    OTEL_STR("url.path", "$uri") "," OTEL_STR("url.scheme", "$scheme") ","
    OTEL_STR("server.address", "$host") "," OTEL_STR("client.address", "$remote_addr") ","
    OTEL_STR("user_agent.original", "$http_user_agent") ","
    "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"$status\"}},"
    OTEL_STR("portvakt.request_id", "$request_id") ","
    OTEL_STR("portvakt.upstream.address", "$upstream_addr") ","
    OTEL_STR("portvakt.upstream.status", "$upstream_status") "],"
    "\"status\":{\"code\":$otel_status_code}}]}]}]}";

static int add_format(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *name, const char *text,
                      size_t len)
{
    pv_log_format_t *f = pv_arena_calloc(cx->a, sizeof(*f));
    f->name = name;
    f->escape = PV_ESCAPE_JSON;
    f->builtin = 1;
    if (pv_conf_compile(cx, nd, &f->value, text, len) != PV_OK)
        return PV_ERR;
    *(pv_log_format_t **)pv_conf_push(cx->a, &cx->http->formats, &cx->http->nformats, sizeof(f)) = f;
    return PV_OK;
}

int pv_conf_trace_formats(pv_conf_ctx_t *cx, const pv_conf_node_t *nd)
{
    if (add_format(cx, nd, "json", json_format, sizeof(json_format) - 1) != PV_OK)
        return PV_ERR;
    return add_format(cx, nd, "otel", otel_format, sizeof(otel_format) - 1);
}

void pv_conf_trace_init(pv_trace_conf_t *c)
{
    c->anonymize = PV_UNSET;
    c->context = PV_UNSET;
    c->rid_header = NULL;
    c->rid_header_len = 0;
    c->rid_trust = PV_UNSET;
    c->server_timing = PV_UNSET;
}

static pv_trace_conf_t *tconf(void *base)
{
    return &((pv_loc_conf_t *)base)->trace;
}

static int set_anonymize_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    return pv_conf_flag(cx, nd, &tconf(base)->anonymize);
}

static int set_context_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    return pv_conf_flag(cx, nd, &tconf(base)->context);
}

static int set_rid_trust_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    return pv_conf_flag(cx, nd, &tconf(base)->rid_trust);
}

static int set_server_timing_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                void *base)
{
    return pv_conf_flag(cx, nd, &tconf(base)->server_timing);
}

/* A field name: RFC 9110 token characters. */
static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

/* Fields the gateway writes itself, which a request id may not replace. */
static int reserved_field(const char *s)
{
    static const char *const names[] = {"host", "connection", "content-length", "transfer-encoding",
                                        "traceparent", "tracestate", "server-timing", "upgrade",
                                        "keep-alive", "te", "trailer", "proxy-connection"};
    for (size_t i = 0; i < PV_NELEM(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

static int set_rid_header_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                             void *base)
{
    pv_trace_conf_t *c = tconf(base);
    if (c->rid_header)
        return DUP(cx, nd);
    const char *v = ARG(nd, 1);
    if (strcmp(v, "off") == 0) {
        c->rid_header = "";
        return PV_OK;
    }
    if (!is_token(v) || reserved_field(v))
        return pv_conf_error(cx, &nd->src, "invalid header name \"%s\" in \"%s\" directive", v, ARG(nd, 0));
    c->rid_header = pv_arena_strdup(cx->a, v);
    c->rid_header_len = strlen(v);
    return PV_OK;
}

#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t trace_cmds[] = {
    {"log_anonymize", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_anonymize_cb, NONE, NULL},
    {"trace_context", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_context_cb, NONE, NULL},
    {"request_id_header", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_TAKE1, set_rid_header_cb, NONE, NULL},
    {"request_id_trust", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_rid_trust_cb, NONE, NULL},
    {"server_timing", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_server_timing_cb, NONE, NULL},
};

const pv_conf_module_t pv_conf_trace_module = {"trace", trace_cmds, PV_NELEM(trace_cmds)};

#define TMERGE(f, def)                                                                             \
    do {                                                                                           \
        if (c->f == PV_UNSET)                                                                      \
            c->f = p ? p->f : (def);                                                               \
    } while (0)

void pv_conf_trace_merge(pv_trace_conf_t *c, const pv_trace_conf_t *p)
{
    TMERGE(anonymize, 0);
    TMERGE(context, 0);
    TMERGE(rid_trust, 0);
    TMERGE(server_timing, 0);
    if (!c->rid_header) {
        c->rid_header = p ? p->rid_header : "";
        c->rid_header_len = p ? p->rid_header_len : 0;
    }
    c->upstream = c->context || c->rid_header_len;
    c->response = c->server_timing || c->rid_header_len;
}
