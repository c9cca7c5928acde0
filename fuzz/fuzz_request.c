/* libFuzzer target: the request head path as a client reaches it. The
 * input is written into one end of a socket pair and the server side reads
 * it exactly as from a client: llhttp, portvakt's own framing and field
 * checks, the header model, routing, local responses, body skipping and
 * pipelining. The config routes to `return` locations only, so nothing
 * leaves the process. Built by `make fuzz` (see the Makefile). */
#include "../src/http/server.c"

#include <signal.h>
#include <sys/socket.h>

#include "../src/proxy/proxy.h"
#include "../src/http/vars.h"
#include "../src/upstream/upstream.h"

static const char conf_text[] =
    "http {\n"
    "  access_log off;\n"
    "  client_max_body_size 100;\n"
    "  large_client_header_buffers 4 1k;\n"
    "  server {\n"
    "    listen 127.0.0.1:1;\n"
    "    server_name example.com *.example.org ~^w\\d+\\.test$;\n"
    "    location = /exact { return 200 \"exact $uri $args $host\"; }\n"
    "    location ^~ /static/ { return 204; }\n"
    "    location ~* \\.(png|gif)$ { return 403; }\n"
    "    location /r { return 302 /elsewhere?$args; }\n"
    "    location / { return 200 \"$request_method $request_uri $http_x_a\"; }\n"
    "    error_page 400 405 414 431 494 /err;\n"
    "    location = /err { return 200 \"err $status $request_method $uri\"; }\n"
    "  }\n"
    "  server { listen 127.0.0.1:1; server_name other.test; max_headers 4; return 404; }\n"
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
    static pv_module_t *const mods[] = {&pv_http_module, &pv_access_module, &pv_proxy_module, &pv_upstream_module, NULL};
    if (pv_worker_modules(mods) != PV_OK || pv_worker_init(&fw, 1, conf, NULL, 0) != PV_OK || pv_worker_gen_start(&fw) != PV_OK)
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
    ssize_t w = size ? write(sv[0], data, size) : 0;
    (void)w;
    shutdown(sv[0], SHUT_WR);

    pv_hconn_t *c = pv_slots_conn_alloc();
    c->w = &fw;
    pv_xprt_init(&c->x, sv[1], conn_io_cb, c);
    c->x.readable = c->x.writable = c->x.fin = 1;
    c->id = ++fw.next_conn_id;
    pv_timer_init(&c->timer, conn_timer_cb, c);
    conn_link(&fw, c);
    handle_input(c);
    /* serve what was pipelined, as the worker's before-sleep hook does */
    for (int i = 0; i < 1000 && ready_head; i++)
        run_ready(&fw);
    if (!(c->flags & PV_HC_F_CLOSING))
        pv_server_close(c);
    pv_server_reap(&fw);
    close(sv[0]);
    return 0;
}
