"""What is measured: the contestant table and the configs made from it.

Every contestant runs the auth route of the brief's gateway config
(reference/seed-gateway.conf in the design brief; the README's example) in
front of the same upstream. portvakt and NGINX get the
same NGINX-dialect text; HAProxy gets the closest equivalent it has.

Adding a variant is one entry in CONTESTANTS: extra config lines, a group
(report.py shows any group it does not know as a plain table) and, when
the config names files or the requests need headers, a setup hook; the
"policy" rows (auth_jwt, limit_req) are the example.
"""

from dataclasses import dataclass

import tokens

# The upstream's reply. Small, so that the proxies, not the bytes, are measured.
UPSTREAM_BODY = '{"user":"demo","token":"5f2b8e0c7a1d4e6f"}\n'

# The one route of the brief's config that is exercised, and a target on it.
ROUTE = "/api/auth/"
TARGET = "/api/auth/token"

# Per worker, as `events { worker_connections N; }` / HAProxy maxconn: room
# for the idle-connection test (10 000 clients) plus upstream connections.
WORKER_CONNECTIONS = 20000

# NGINX's `keepalive 32` is per worker; HAProxy's pool-max-conn is per server.
KEEPALIVE_POOL = 32

# The "policy" rows: what an access check or a rate limit adds per request
# to the plain proxy (the 1-worker portvakt row of the main table). The
# rate is far above any load here, so no request is delayed or refused and
# only the limit's bookkeeping is measured; all of wrk's connections come
# from 127.0.0.1, so they share one bucket, as clients behind one NAT would.
# No idle test for them: a check holds nothing between requests (a quick
# run showed the plain proxy's bytes per idle connection), and it keeps
# `make bench` under ten minutes.
JWT_LINES = ('auth_jwt "bench";', "auth_jwt_key_file %s;" % tokens.KEY_SET)
LIMIT_ZONE = ("limit_req_zone $binary_remote_addr zone=bench:10m rate=10000000r/s;",)
LIMIT_LINES = ("limit_req zone=bench burst=1000 nodelay;",)


@dataclass(frozen=True)
class Contestant:
    """One proxy setup; a row in the results."""

    label: str                 # row name (the worker count is shown beside it)
    proxy: str                 # "portvakt", "nginx" or "haproxy"
    workers: int = 1           # worker threads / processes
    keepalive: bool = True     # upstream keepalive as in the brief; False is
                               # NGINX's default: HTTP/1.0, Connection: close
    group: str = "main"        # which results table the row belongs to
    idle_test: bool = True     # also measure memory per idle client connection
    connections: int = 0       # wrk connections; 0: the run's setting
    http_extra: tuple = ()     # NGINX-dialect lines for http {} (portvakt, nginx)
    location_extra: tuple = () # lines for the proxied location (portvakt, nginx)
    upstream_extra: tuple = () # lines for the upstream block (portvakt's own directives)
    haproxy_extra: tuple = ()  # lines for HAProxy's backend, when it has one
    binary: str = ""           # another portvakt build (a "before" row); "" = the one under test
    setup: object = None       # setup(workdir) writes the files the config
                               # names and returns the request headers (see
                               # tokens.py); the load and the checks send them

    @property
    def key(self):
        """Unique id, used for directories and the raw results."""
        slug = "-".join(self.label.replace(",", " ").replace("+", " ").split())
        return "%s-w%d" % (slug, self.workers)


CONTESTANTS = [
    Contestant("portvakt", "portvakt", 1),
    Contestant("nginx", "nginx", 1),
    Contestant("haproxy", "haproxy", 1),
    Contestant("portvakt", "portvakt", 2),
    Contestant("nginx", "nginx", 2),
    Contestant("haproxy", "haproxy", 2),
    # Twice as many clients as pooled connections: requests beyond the pool
    # need upstream connections that are closed again when the pool is full.
    Contestant("portvakt, 64 clients", "portvakt", 1, group="pool overflow",
               idle_test=False, connections=64),
    # NGINX's strict pool cap (no grace for connections beyond the pool).
    Contestant("portvakt, 64 clients, keepalive_grace off", "portvakt", 1, group="pool overflow",
               idle_test=False, connections=64, upstream_extra=("keepalive_grace off;",)),
    Contestant("nginx, 64 clients", "nginx", 1, group="pool overflow",
               idle_test=False, connections=64),
    Contestant("haproxy, 64 clients", "haproxy", 1, group="pool overflow",
               idle_test=False, connections=64),
    # The brief's experiment: the same load with upstream keepalive off. The
    # "on" side is the 1-worker row of the main table.
    Contestant("portvakt, keepalive off", "portvakt", 1, keepalive=False,
               group="keepalive", idle_test=False),
    Contestant("nginx, keepalive off", "nginx", 1, keepalive=False,
               group="keepalive", idle_test=False),
    Contestant("portvakt + auth_jwt HS256", "portvakt", 1, group="policy", idle_test=False,
               location_extra=JWT_LINES, setup=tokens.hs256),
    # Asymmetric: an RSA signature check costs far more than an HMAC.
    Contestant("portvakt + auth_jwt RS256", "portvakt", 1, group="policy", idle_test=False,
               location_extra=JWT_LINES, setup=tokens.rs256),
    Contestant("portvakt + limit_req", "portvakt", 1, group="policy", idle_test=False,
               http_extra=LIMIT_ZONE, location_extra=LIMIT_LINES),
    Contestant("portvakt + auth_jwt HS256 + limit_req", "portvakt", 1, group="policy",
               idle_test=False, http_extra=LIMIT_ZONE, location_extra=JWT_LINES + LIMIT_LINES,
               setup=tokens.hs256),
]


def _indent(lines, depth):
    return "".join("    " * depth + line + "\n" for line in lines)


def gateway_conf(c, listen_port, upstream_port, workdir, nofile):
    """The brief's gateway config for portvakt or NGINX, as one text.

    NGINX additionally needs a pid file, temp paths and `daemon off`; they
    change nothing measured. Access logging is off for every contestant."""
    nginx = c.proxy == "nginx"
    main = ["worker_processes %d;" % c.workers,
            "worker_rlimit_nofile %d;" % nofile,
            "error_log %s/error.log warn;" % workdir]
    if nginx:
        main += ["daemon off;", "master_process on;", "pid %s/nginx.pid;" % workdir]
    http = ["access_log off;",
            "keepalive_timeout 65;",
            "keepalive_requests 100000;"]
    if nginx:
        http += ["%s_temp_path %s/%s;" % (t, workdir, t)
                 for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
    http += list(c.http_extra)
    upstream = ["server 127.0.0.1:%d;" % upstream_port]
    location = ["proxy_pass http://auth_service/;"]
    if c.keepalive:
        upstream.append("keepalive %d;" % KEEPALIVE_POOL)
        upstream += list(c.upstream_extra)
        location += ["proxy_http_version 1.1;", 'proxy_set_header Connection "";']
    location += ["proxy_set_header X-Real-IP $remote_addr;",
                 "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"]
    location += list(c.location_extra)
    return ("# Made by bench/contestants.py from the brief's gateway config.\n"
            + _indent(main, 0)
            + "events { worker_connections %d; }\n" % WORKER_CONNECTIONS
            + "http {\n" + _indent(http, 1)
            + "    upstream auth_service {\n" + _indent(upstream, 2) + "    }\n"
            + "    server {\n"
            + "        listen 127.0.0.1:%d;\n" % listen_port
            + "        location %s {\n" % ROUTE + _indent(location, 3)
            + "        }\n    }\n}\n")


def haproxy_conf(c, listen_port, upstream_port, nofile):
    """HAProxy's equivalent of the brief's gateway config.

    `http-reuse always` is what NGINX's keepalive pool does: any idle upstream
    connection serves any client. pool-max-conn is per server, NGINX's
    keepalive is per worker, hence the multiplication. No `log` line: no
    logging at all."""
    if c.keepalive:
        reuse = ["http-reuse always"]
        pool = " pool-max-conn %d" % (KEEPALIVE_POOL * c.workers)
    else:
        reuse = ["http-reuse never", "option http-server-close"]
        pool = ""
    maxconn = min(WORKER_CONNECTIONS * c.workers, (nofile - 64) // 2)
    return ("# Made by bench/contestants.py: HAProxy's equivalent of the brief's\n"
            "# gateway config.\n"
            "global\n"
            + _indent(["nbthread %d" % c.workers, "maxconn %d" % maxconn], 1)
            + "defaults\n"
            + _indent(["mode http",
                       "timeout connect 60s",
                       "timeout client 65s",
                       "timeout server 60s",
                       "timeout http-keep-alive 65s"], 1)
            + "frontend gateway\n"
            + _indent(["bind 127.0.0.1:%d" % listen_port,
                       "maxconn %d" % maxconn,
                       "http-request return status 404 unless { path_beg %s }" % ROUTE,
                       "default_backend auth_service"], 1)
            + "backend auth_service\n"
            + _indent(reuse + ["option forwardfor",
                               "http-request set-header X-Real-IP %[src]",
                               r"http-request replace-path ^%s(.*) /\1" % ROUTE]
                      + list(c.haproxy_extra)
                      + ["server auth1 127.0.0.1:%d%s" % (upstream_port, pool)], 1))


def upstream_conf(port, status_port, workdir, nofile):
    """The fixed, fast upstream: NGINX, one process, `return 200` with a
    small body. A second listener serves stub_status, whose `accepts`
    counter tells how many connections the proxy opened."""
    body = UPSTREAM_BODY.replace("\n", "\\n")
    return ("# Made by bench/contestants.py: the benchmark's upstream.\n"
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "worker_rlimit_nofile %d;\n" % nofile
            + "pid %s/upstream.pid;\n" % workdir
            + "error_log %s/upstream-error.log warn;\n" % workdir
            + "events { worker_connections %d; }\n" % WORKER_CONNECTIONS
            + "http {\n"
            + _indent(["access_log off;",
                       "default_type application/json;",
                       "keepalive_timeout 65;",
                       # High, so that any upstream reconnection counted is
                       # the proxy's doing, not the upstream's.
                       "keepalive_requests 10000000;"]
                      + ["%s_temp_path %s/up_%s;" % (t, workdir, t)
                         for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")], 1)
            + "    server {\n"
            + "        listen 127.0.0.1:%d;\n" % port
            + "        location / { return 200 '%s'; }\n" % body
            + "    }\n"
            + "    server {\n"
            + "        listen 127.0.0.1:%d;\n" % status_port
            + "        location / { stub_status; }\n"
            + "    }\n}\n")
