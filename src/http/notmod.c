/* The not-modified filter (notmod.h). */
#include "notmod.h"

#include "range.h"
#include "server.h"

static int modified_since(pv_str_t v, int ims, time_t mtime)
{
    if (mtime == -1 || ims == PV_IMS_OFF)
        return 1;
    time_t t = pv_http_time_parse(v);
    return t != mtime && (ims == PV_IMS_EXACT || t < mtime);
}

int pv_notmod_test(const pv_request_t *r, int ims, pv_str_t etag, time_t mtime)
{
    const pv_header_t *ius = pv_request_header(r, "If-Unmodified-Since", 19);
    const pv_header_t *im = pv_request_header(r, "If-Match", 8);
    const pv_header_t *ims_h = pv_request_header(r, "If-Modified-Since", 17);
    const pv_header_t *inm = pv_request_header(r, "If-None-Match", 13);
    if (ius) {
        time_t t = pv_http_time_parse(ius->value);
        if (mtime == -1 || t == -1 || t < mtime)
            return 412;
    }
    if (im && !pv_etag_match(im->value, etag, 0))
        return 412;
    if (!ims_h && !inm)
        return 0;
    if (ims_h && modified_since(ims_h->value, ims, mtime))
        return 0;
    if (inm && !pv_etag_match(inm->value, etag, 1))
        return 0;
    return 304;
}

int pv_notmod_filter(pv_hreq_t *hr, pv_resp_head_t *h)
{
    pv_request_t *r = &hr->r;
    /* the status error_page gives counts (NGINX sets it before the filters) */
    if (r->notmod_off || (r->err_status ? r->err_status : h->status) != 200 || hr->sub || hr->bg || !r->loc)
        return PV_OK;
    pv_str_t etag = {NULL, 0};
    time_t mtime = -1;
    for (int i = 0; i < h->nfields; i++) {
        if (PV_STR_IEQ(h->fields[i].name, "ETag"))
            etag = h->fields[i].value;
        else if (PV_STR_IEQ(h->fields[i].name, "Last-Modified"))
            mtime = pv_http_time_parse(h->fields[i].value);
    }
    int pre = pv_notmod_test(r, r->loc->conf.st.if_modified_since, etag, mtime);
    if (pre == 412)
        return PV_RESP_PRECONDITION;
    if (pre != 304)
        return PV_OK;
    pv_header_t *f = pv_arena_alloc(r->arena, (size_t)(h->nfields + 1) * sizeof(*f));
    int n = 0;
    for (int i = 0; f && i < h->nfields; i++)
        if (!PV_STR_IEQ(h->fields[i].name, "Accept-Ranges") && !PV_STR_IEQ(h->fields[i].name, "Content-Encoding"))
            f[n++] = h->fields[i];
    if (!f)
        return PV_RESP_NOMEM;
    h->fields = f;
    h->nfields = n;
    h->status = 304;
    r->err_status = 0; /* the 304 is the answer, error_page's code or not */
    h->reason = (pv_str_t){NULL, 0};
    h->content_type = (pv_str_t){NULL, 0};
    h->content_length = -1;
    h->frame = PV_FRAME_NONE;
    hr->header_only = 1;
    r->allow_ranges = 0;
    return PV_OK;
}
