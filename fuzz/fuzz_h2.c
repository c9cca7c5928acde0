/* libFuzzer target: HTTP/2 frames as a client sends them. The input,
 * after the client preface, is written into one end of a socket pair and
 * an HTTP/2 connection reads it from the other exactly as from a client:
 * nghttp2's frame and HPACK decoding, portvakt's stream events, the
 * request model of each stream (pseudo-header checks, fields, target),
 * routing, local responses, body flow control, floods and timeouts' set-up.
 * The config routes to `return` locations only, so nothing leaves the
 * process. Built by `make fuzz` (see the Makefile). */
#include "../src/http/h2.c"

#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "../src/http/vars.h"
#include "../src/proxy/proxy.h"
#include "../src/upstream/upstream.h"

static const char conf_text[] =
    "http {\n"
    "  access_log off;\n"
    "  client_max_body_size 100;\n"
    "  large_client_header_buffers 4 1k;\n"
    "  server {\n"
    "    listen 127.0.0.1:1 http2;\n"
    "    http2_max_concurrent_streams 16;\n"
    "    http2_body_preread_size 1k;\n"
    "    http2_chunk_size 100;\n"
    "    server_name example.com *.example.org;\n"
    "    location = /exact { return 200 \"exact $uri $args $host $http_cookie\"; }\n"
    "    location ^~ /static/ { return 204; }\n"
    "    location /r { return 302 /elsewhere?$args; }\n"
    "    location / { return 200 \"$request_method $request_uri $server_protocol $http_x_a\"; }\n"
    "  }\n"
    "}\n";

static pv_worker_t fw;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[512];
    pv_http_vars_init();
    pv_conf_t *conf = pv_conf_load_text("fuzz.conf", conf_text, sizeof(conf_text) - 1, PV_CONF_F_NO_DNS, err,
                                        sizeof(err));
    if (!conf) {
        fprintf(stderr, "fuzz config: %s\n", err);
        abort();
    }
    pv_log_open("/dev/null", PV_LOG_EMERG);
    static pv_module_t *const mods[] = {&pv_http_module, &pv_h2_module, &pv_access_module, &pv_proxy_module,
                                        &pv_upstream_module, NULL};
    if (pv_worker_modules(mods) != PV_OK || pv_worker_init(&fw, 1, conf, NULL, 0) != PV_OK ||
        pv_worker_gen_start(&fw) != PV_OK)
        abort();
    pv_conf_unref(conf); /* the worker holds its own reference */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    ssize_t w = write(sv[0], preface, sizeof(preface) - 1);
    w = size ? write(sv[0], data, size) : 0;
    (void)w;
    shutdown(sv[0], SHUT_WR);

    struct sockaddr_in6 peer = {.sin6_family = AF_INET6};
    pv_xprt_t x;
    pv_xprt_init(&x, sv[1], NULL, NULL);
    pv_h2_accept(&fw, &x, 0, &peer);
    pv_h2conn_t *hc = conns;
    if (hc && !hc->closed) {
        hc->x.readable = hc->x.writable = hc->x.fin = 1;
        h2_io_cb(&hc->x.io, PV_EV_READ | PV_EV_WRITE);
    }
    /* the work left for the worker's before-sleep hook */
    for (int i = 0; i < 64 && dirty_head; i++)
        pv_h2_reap(&fw);
    mod_close_all(&fw);
    pv_h2_reap(&fw);
    close(sv[0]);
    return 0;
}
