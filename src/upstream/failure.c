#include "failure.h"

#include "../config/conf.h"

/* Texts follow NGINX's error log wording, so existing log filters match. */
static const pv_upfail_info_t table[PV_UPF_COUNT] = {
    [PV_UPF_NONE] = {"none", 502, 0, 0, "upstream failed"},
    [PV_UPF_CONNECT] = {"connect", 502, PV_NEXT_F_ERROR, PV_UPF_F_TRANSPORT | PV_UPF_F_SERVER, "connect() failed"},
    [PV_UPF_CONNECT_TIMEOUT] = {"connect_timeout", 504, PV_NEXT_F_TIMEOUT, PV_UPF_F_SERVER, "upstream timed out"},
    [PV_UPF_SEND] = {"send", 502, PV_NEXT_F_ERROR, PV_UPF_F_TRANSPORT | PV_UPF_F_SERVER, "writev() failed"},
    [PV_UPF_SEND_TIMEOUT] = {"send_timeout", 504, PV_NEXT_F_TIMEOUT, PV_UPF_F_SERVER, "upstream timed out"},
    [PV_UPF_RESET] = {"reset", 502, PV_NEXT_F_ERROR, PV_UPF_F_TRANSPORT | PV_UPF_F_SERVER, "recv() failed"},
    [PV_UPF_PREMATURE_CLOSE] = {"premature_close", 502, PV_NEXT_F_ERROR, PV_UPF_F_TRANSPORT | PV_UPF_F_SERVER,
                                "upstream prematurely closed connection"},
    [PV_UPF_READ_TIMEOUT] = {"read_timeout", 504, PV_NEXT_F_TIMEOUT, PV_UPF_F_SERVER, "upstream timed out"},
    [PV_UPF_INVALID_HEADER] = {"invalid_header", 502, PV_NEXT_F_INVALID_HEADER, PV_UPF_F_SERVER,
                               "upstream sent invalid header"},
    [PV_UPF_HEADER_TOO_BIG] = {"header_too_big", 502, PV_NEXT_F_INVALID_HEADER, PV_UPF_F_SERVER,
                               "upstream sent too big header"},
    [PV_UPF_INVALID_BODY] = {"invalid_body", 502, PV_NEXT_F_INVALID_HEADER, PV_UPF_F_SERVER,
                             "upstream sent invalid chunked response"},
    [PV_UPF_NO_LIVE] = {"no_live_upstreams", 502, 0, 0, "no live upstreams"},
    [PV_UPF_CLIENT_BAD_BODY] = {"client_bad_body", 400, 0, PV_UPF_F_CLIENT, ""},
    [PV_UPF_CLIENT_BODY_LARGE] = {"client_body_too_large", 413, 0, PV_UPF_F_CLIENT, ""},
    [PV_UPF_RESOLVE] = {"resolve", 502, 0, 0, ""},
    [PV_UPF_BAD_URL] = {"bad_url", 500, 0, 0, ""},
};

const pv_upfail_info_t *pv_upfail_info(pv_upfail_t f)
{
    return (unsigned)f < PV_UPF_COUNT ? &table[f] : &table[PV_UPF_NONE];
}
