/* Compile "text $var ${var}text" into literal and variable parts once, at
 * load time. The rules are NGINX's script compiler's: a name is
 * [A-Za-z0-9_]+ and case-insensitive, and a '$' not followed by a name is
 * an error ("invalid variable name"), not a literal. */
#include "../obs/vars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name; /* variable name, lowercase */
    uint16_t id;      /* PV_VAR_* */
} pv_var_name_t;

static const pv_var_name_t pv_var_names[] = {
    {"remote_addr", PV_VAR_REMOTE_ADDR},
    {"remote_port", PV_VAR_REMOTE_PORT},
    {"binary_remote_addr", PV_VAR_BINARY_REMOTE_ADDR},
    {"proxy_add_x_forwarded_for", PV_VAR_PROXY_ADD_X_FORWARDED_FOR},
    {"host", PV_VAR_HOST},
    {"scheme", PV_VAR_SCHEME},
    {"request_uri", PV_VAR_REQUEST_URI},
    {"uri", PV_VAR_URI},
    {"document_uri", PV_VAR_DOCUMENT_URI},
    {"args", PV_VAR_ARGS},
    {"query_string", PV_VAR_QUERY_STRING},
    {"is_args", PV_VAR_IS_ARGS},
    {"request_method", PV_VAR_REQUEST_METHOD},
    {"request", PV_VAR_REQUEST},
    {"request_id", PV_VAR_REQUEST_ID},
    {"server_port", PV_VAR_SERVER_PORT},
    {"server_addr", PV_VAR_SERVER_ADDR},
    {"server_name", PV_VAR_SERVER_NAME},
    {"server_protocol", PV_VAR_SERVER_PROTOCOL},
    {"proxy_host", PV_VAR_PROXY_HOST},
    {"proxy_port", PV_VAR_PROXY_PORT},
    {"upstream_addr", PV_VAR_UPSTREAM_ADDR},
    {"upstream_status", PV_VAR_UPSTREAM_STATUS},
    {"status", PV_VAR_STATUS},
    {"request_time", PV_VAR_REQUEST_TIME},
    {"upstream_response_time", PV_VAR_UPSTREAM_RESPONSE_TIME},
    {"upstream_connect_time", PV_VAR_UPSTREAM_CONNECT_TIME},
    {"time_iso8601", PV_VAR_TIME_ISO8601},
    {"time_local", PV_VAR_TIME_LOCAL},
    {"msec", PV_VAR_MSEC},
    {"body_bytes_sent", PV_VAR_BODY_BYTES_SENT},
    {"bytes_sent", PV_VAR_BYTES_SENT},
    {"request_length", PV_VAR_REQUEST_LENGTH},
    {"content_length", PV_VAR_CONTENT_LENGTH},
    {"content_type", PV_VAR_CONTENT_TYPE},
    {"remote_user", PV_VAR_REMOTE_USER},
    {"connection", PV_VAR_CONNECTION},
    {"connection_requests", PV_VAR_CONNECTION_REQUESTS},
    {"pid", PV_VAR_PID},
    {"hostname", PV_VAR_HOSTNAME},
    {"nginx_version", PV_VAR_NGINX_VERSION},
    {"consumer", PV_VAR_CONSUMER},
    {"limit_req_status", PV_VAR_LIMIT_REQ_STATUS},
    {"limit_conn_status", PV_VAR_LIMIT_CONN_STATUS},
};

/* Names declared by auth_request_set in the config being loaded. */
static char *declared[256];
static int ndeclared;

void pv_cv_declare(const char *name, size_t len)
{
    for (int i = 0; i < ndeclared; i++)
        if (strlen(declared[i]) == len && strncasecmp(declared[i], name, len) == 0)
            return;
    if (ndeclared < (int)PV_NELEM(declared))
        declared[ndeclared++] = strndup(name, len);
}

void pv_cv_declared_reset(void)
{
    while (ndeclared)
        free(declared[--ndeclared]);
}

static int is_name_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* Copy a prefixed variable's suffix; header names turn '_' into '-'. */
static pv_str_t suffix_text(pv_arena_t *a, const char *s, size_t n, int header)
{
    char *t = pv_arena_strndup(a, s, n);
    for (size_t i = 0; header && i < n; i++)
        t[i] = t[i] == '_' ? '-' : t[i];
    return (pv_str_t){t, n};
}

/* Map a lowercased name to a part; returns 0 if the name is unknown. */
static int lookup(pv_arena_t *a, const char *low, size_t n, pv_cv_part_t *part)
{
    for (size_t i = 0; i < PV_NELEM(pv_var_names); i++) {
        if (strlen(pv_var_names[i].name) == n && memcmp(pv_var_names[i].name, low, n) == 0) {
            part->var = pv_var_names[i].id;
            part->text = (pv_str_t){pv_var_names[i].name, n};
            return 1;
        }
    }
    if (n > 5 && memcmp(low, "http_", 5) == 0) {
        part->var = PV_VAR_HTTP;
        part->text = suffix_text(a, low + 5, n - 5, 1);
        return 1;
    }
    if (n > 10 && memcmp(low, "sent_http_", 10) == 0) {
        part->var = PV_VAR_SENT_HTTP;
        part->text = suffix_text(a, low + 10, n - 10, 1);
        return 1;
    }
    if (n > 4 && memcmp(low, "arg_", 4) == 0) {
        part->var = PV_VAR_ARG;
        part->text = suffix_text(a, low + 4, n - 4, 0);
        return 1;
    }
    if (n > 14 && memcmp(low, "upstream_http_", 14) == 0) {
        part->var = PV_VAR_UPSTREAM_HTTP;
        part->text = suffix_text(a, low + 14, n - 14, 1);
        return 1;
    }
    if (n > 10 && memcmp(low, "jwt_claim_", 10) == 0) {
        part->var = PV_VAR_JWT_CLAIM;
        part->text = suffix_text(a, low + 10, n - 10, 0);
        return 1;
    }
    if (n > 11 && memcmp(low, "jwt_header_", 11) == 0) {
        part->var = PV_VAR_JWT_HEADER;
        part->text = suffix_text(a, low + 11, n - 11, 0);
        return 1;
    }
    for (int i = 0; i < ndeclared; i++) {
        if (strlen(declared[i]) == n && strncasecmp(declared[i], low, n) == 0) {
            part->var = PV_VAR_USER;
            part->text = suffix_text(a, low, n, 0);
            return 1;
        }
    }
    return 0;
}

int pv_cv_compile(pv_cv_t *cv, pv_arena_t *arena, const char *src, size_t len, char *err,
                  size_t errlen)
{
    /* Every '$' starts at most one variable part and one literal part. */
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += src[i] == '$' ? 2 : 0;
    pv_cv_part_t *parts = pv_arena_calloc(arena, max * sizeof(*parts));
    int n = 0, vars = 0;
    size_t i = 0, lit = 0;
    while (i < len) {
        if (src[i] != '$') {
            i++;
            continue;
        }
        if (i > lit) {
            parts[n].var = PV_VAR_NONE;
            parts[n].text = (pv_str_t){pv_arena_strndup(arena, src + lit, i - lit), i - lit};
            n++;
        }
        size_t j = i + 1;
        int bracket = j < len && src[j] == '{';
        if (bracket)
            j++;
        size_t start = j;
        while (j < len && is_name_char((unsigned char)src[j]))
            j++;
        size_t nlen = j - start;
        if (bracket && (j >= len || src[j] != '}')) {
            snprintf(err, errlen, "the closing bracket in \"%.*s\" variable is missing", (int)nlen,
                     src + start);
            return PV_ERR;
        }
        if (nlen == 0) {
            snprintf(err, errlen, "invalid variable name");
            return PV_ERR;
        }
        char low[128];
        if (nlen >= sizeof(low)) {
            snprintf(err, errlen, "unknown \"%.*s\" variable", (int)nlen, src + start);
            return PV_ERR;
        }
        for (size_t k = 0; k < nlen; k++) {
            char c = src[start + k];
            low[k] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
        }
        if (!lookup(arena, low, nlen, &parts[n])) {
            snprintf(err, errlen, "unknown \"%.*s\" variable", (int)nlen, src + start);
            return PV_ERR;
        }
        n++;
        vars++;
        i = lit = j + (bracket ? 1 : 0);
    }
    if (len > lit) {
        parts[n].var = PV_VAR_NONE;
        parts[n].text = (pv_str_t){pv_arena_strndup(arena, src + lit, len - lit), len - lit};
        n++;
    }
    if (n == 0)
        parts[0].text = (pv_str_t){"", 0};
    cv->parts = parts;
    cv->nparts = n;
    cv->is_const = vars == 0;
    return PV_OK;
}
