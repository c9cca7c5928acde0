"""Results: medians over rounds, Markdown tables, ratios and the chart."""

import datetime
import json
import os
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CHART_SCRIPT = os.path.join(HERE, "chart.gp")

NAMES = {"portvakt": "portvakt", "nginx": "NGINX", "haproxy": "HAProxy"}

# (figure, column header, format). Each figure is the median over rounds,
# except errors, which are summed: one error in any round matters.
MAIN_COLUMNS = [
    ("rps", "req/s", "{:,.0f}"),
    ("rps_range", "req/s min–max", "{}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p95_ms", "p95 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("cpu_us", "CPU µs/req", "{:.1f}"),
    ("proxy_cpu_pct", "proxy CPU %", "{:.0f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ("idle_bytes", "bytes/idle conn", "{:,.0f}"),
    ("upstream_per_100k", "upstream conns/100k req", "{:,.0f}"),
    ("errors", "errors", "{:.0f}"),
    ("other_cpu_pct", "other load %", "{:.0f}"),
]
KEEPALIVE_COLUMNS = [
    ("rps", "req/s", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p95_ms", "p95 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("p999_ms", "p99.9 ms", "{:.2f}"),
    ("upstream_per_100k", "upstream conns/100k req", "{:,.0f}"),
    ("time_wait", "TIME_WAIT after run", "{:,.0f}"),
    ("cpu_us", "CPU µs/req", "{:.1f}"),
    ("errors", "errors", "{:.0f}"),
    ("other_cpu_pct", "other load %", "{:.0f}"),
]
# Tables for groups other than "main" and "keepalive": title, text, columns.
# A group not listed here gets its name as title and the main columns.
GROUPS = {
    "pool overflow": (
        "More clients than pooled connections",
        "64 client connections against `keepalive 32` (pool-max-conn 32 for "
        "HAProxy), one worker. Requests in flight beyond the pool need upstream "
        "connections of their own, which are closed again when they come back "
        "to a full pool: the upstream connections column shows how much each "
        "proxy churns.",
        [c for c in MAIN_COLUMNS if c[0] != "idle_bytes"]),
    "policy": (
        "Cost of auth_jwt and limit_req",
        "portvakt, one worker, with an access check or a rate limit added to the "
        "route, beside the plain proxy (the 1-worker row above, measured in the same "
        "rounds). Every request carries a valid token (`Authorization: Bearer`); "
        "before the load, one request with it must get 200 and one without it and "
        "one with a forged signature 401. limit_req's rate (10 000 000 r/s) is far "
        "above the load, so nothing is delayed or refused and only its bookkeeping "
        "is measured.",
        [c for c in MAIN_COLUMNS if c[0] not in ("upstream_per_100k", "idle_bytes")]),
}
# Other load (in % of one CPU, median over a table's runs) above which the
# policy section says that the machine was busy with other work.
NOISY_OTHER_PCT = 20
# (figure, name, which way is better) for the ratio table.
RATIOS = [
    ("rps", "req/s", "higher"),
    ("p50_ms", "p50 latency", "lower"),
    ("p95_ms", "p95 latency", "lower"),
    ("p99_ms", "p99 latency", "lower"),
    ("cpu_us", "CPU per request", "lower"),
    ("peak_rss_kb", "peak RSS", "lower"),
    ("idle_bytes", "memory per idle connection", "lower"),
    ("upstream_per_100k", "upstream connections opened", "lower"),
]


# ------------------------------------------------------------ figures


def summarize(recs):
    """Median of every figure over the rounds that produced figures."""
    ok = [r for r in recs if "rps" in r]
    out = {"rounds": len(ok), "failed_rounds": len(recs) - len(ok)}
    keys = {k for r in ok for k, v in r.items() if isinstance(v, (int, float))}
    for key in keys:
        values = [r[key] for r in ok if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["errors"] = sum(r["errors"] for r in ok)
    if ok:
        out["rps_range"] = "%.0fk–%.0fk" % (min(r["rps"] for r in ok) / 1000,
                                           max(r["rps"] for r in ok) / 1000)
    if out.get("peak_rss_kb") is not None:
        out["peak_rss_mib"] = out["peak_rss_kb"] / 1024
    return out


def _fmt(value, spec):
    return "–" if value is None else spec.format(value)


def _row_name(c):
    label = c.label
    if label.startswith(c.proxy):
        label = NAMES[c.proxy] + label[len(c.proxy):]
    return "%s, %d worker%s" % (label, c.workers, "" if c.workers == 1 else "s")


def _table(rows, columns, first="contestant"):
    """A Markdown table: rows are (name, summary) pairs."""
    head = "| %s | %s |\n" % (first, " | ".join(h for _, h, _ in columns))
    rule = "|---|%s\n" % ("---:|" * len(columns))
    body = "".join("| %s | %s |\n" % (name, " | ".join(_fmt(s.get(k), f) for k, _, f in columns))
                   for name, s in rows)
    return head + rule + body


def _plain(c):
    """Whether a contestant is the brief's config with nothing added."""
    return c.keepalive and not (c.http_extra or c.location_extra or c.haproxy_extra)


def _plain_key(plan, proxy, workers):
    """Key of the main-table row of a proxy at a worker count, if planned."""
    for c in plan:
        if c.group == "main" and c.proxy == proxy and c.workers == workers and _plain(c):
            return c.key
    return None


def _find(plan, summaries, proxy, workers):
    """The summary of the plain row of a proxy at a worker count, if it ran."""
    key = _plain_key(plan, proxy, workers)
    return summaries[key] if key and summaries[key]["rounds"] else None


def _paired_ratio(mine, theirs, key):
    """Median over rounds of mine ÷ theirs within each round: the two ran
    seconds apart, under the same background load."""
    ratios = [a[key] / b[key] for a, b in zip(mine, theirs)
              if a.get(key) is not None and b.get(key)]
    return statistics.median(ratios) if ratios else None


def _ratio_table(plan, runs):
    """portvakt against NGINX and HAProxy, per worker count."""
    cols = []
    for w in sorted({c.workers for c in plan if c.group == "main"}):
        mine = _plain_key(plan, "portvakt", w)
        for other in ("nginx", "haproxy"):
            theirs = _plain_key(plan, other, w)
            if mine and theirs:
                cols.append(("%d worker%s: ÷ %s" % (w, "" if w == 1 else "s", NAMES[other]),
                             runs[mine], runs[theirs]))
    if not cols:
        return ""
    out = "| portvakt ÷ | better | %s |\n" % " | ".join(n for n, _, _ in cols)
    out += "|---|---|%s\n" % ("---:|" * len(cols))
    for key, name, better in RATIOS:
        cells = [_fmt(_paired_ratio(mine, theirs, key), "{:.2f}×") for _, mine, theirs in cols]
        out += "| %s | %s | %s |\n" % (name, better, " | ".join(cells))
    return out


def _paired_diff(mine, theirs, key):
    """Per round, mine - theirs within the round: (median, min, max)."""
    diffs = [a[key] - b[key] for a, b in zip(mine, theirs)
             if a.get(key) is not None and b.get(key) is not None]
    return (statistics.median(diffs), min(diffs), max(diffs)) if diffs else (None,) * 3


def _policy_cost(plan, runs, base_key):
    """Each policy row against the plain proxy: extra CPU µs per request
    and the ratios, each paired within a round."""
    base = runs[base_key]
    cols = [("CPU µs/req", "{:.1f}"), ("extra CPU µs/req", "{:+.1f}"),
            ("extra, min–max over rounds", "{}"), ("CPU ÷ plain", "{:.2f}×"),
            ("req/s ÷ plain", "{:.2f}×")]
    out = "| 1 worker | %s |\n|---|%s\n" % (" | ".join(h for h, _ in cols), "---:|" * len(cols))
    for c in plan:
        if c.group != "policy":
            continue
        mine = runs[c.key]
        extra, low, high = _paired_diff(mine, base, "cpu_us")
        cells = [summarize(mine).get("cpu_us"), extra,
                 None if low is None else "%+.1f to %+.1f" % (low, high),
                 _paired_ratio(mine, base, "cpu_us"), _paired_ratio(mine, base, "rps")]
        out += "| %s | %s |\n" % (_row_name(c), " | ".join(
            _fmt(v, spec) for v, (_, spec) in zip(cells, cols)))
    return out


def _policy_section(plan, runs, summaries):
    """The policy rows beside the plain proxy, then what they cost it."""
    title, text, columns = GROUPS["policy"]
    policy = [c for c in plan if c.group == "policy"]
    base_key = _plain_key(plan, "portvakt", 1)
    rows = ([("portvakt, plain proxy, 1 worker", summaries[base_key])] if base_key else [])
    rows += [(_row_name(c), summaries[c.key]) for c in policy]
    out = "### %s\n\n%s\n\n%s\n" % (title, text, _table(rows, columns))
    if not base_key:
        return out + ("No cost over the plain proxy: the 1-worker portvakt row of the "
                      "main table was not part of this run.\n\n")
    out += ("Cost over the plain proxy, per request. Each figure is the median over "
            "rounds of the row's figure against the plain proxy's in the same round "
            "(difference or ratio); the min–max column shows how far single rounds "
            "strayed.\n\n" + _policy_cost(plan, runs, base_key) + "\n")
    return out + _noisy([(_row_name(c), summaries[c.key]) for c in policy]
                        + [("the plain proxy", summaries[base_key])])


def _noisy(rows):
    """A warning when other processes were busy during some rows' runs."""
    busy = ["%s (%.0f%%)" % (name, s["other_cpu_pct"]) for name, s in rows
            if (s.get("other_cpu_pct") or 0) > NOISY_OTHER_PCT]
    if not busy:
        return ""
    return ("The machine was shared and noisy: other processes used a median of more "
            "than %d%% of one CPU during the runs of %s. Their req/s and latency moved "
            "with that load and their CPU µs/req is less certain; the min–max column "
            "shows how far it strayed.\n\n" % (NOISY_OTHER_PCT, ", ".join(busy)))


def _keepalive_section(plan, summaries):
    """The brief's experiment: each keepalive-off row beside its plain row."""
    rows, lines = [], []
    for c in plan:
        if c.group != "keepalive" or not summaries[c.key]["rounds"]:
            continue
        on = _find(plan, summaries, c.proxy, c.workers)
        off = summaries[c.key]
        if on:
            rows.append(("%s, keepalive 32 (on)" % NAMES[c.proxy], on))
        rows.append(("%s, no keepalive (off)" % NAMES[c.proxy], off))
        if on:
            lines.append(
                "- %s, keepalive off → on: p95 %.2f → %.2f ms, p99 %.2f → %.2f ms, "
                "%s → %s req/s, CPU %.1f → %.1f µs/req, upstream connections opened "
                "%s → %s per 100 000 requests."
                % (NAMES[c.proxy], off["p95_ms"], on["p95_ms"], off["p99_ms"], on["p99_ms"],
                   _fmt(off["rps"], "{:,.0f}"), _fmt(on["rps"], "{:,.0f}"),
                   off["cpu_us"], on["cpu_us"], _fmt(off["upstream_per_100k"], "{:,.0f}"),
                   _fmt(on["upstream_per_100k"], "{:,.0f}")))
    if not rows:
        return ""
    return (_table(rows, KEEPALIVE_COLUMNS, "1 worker") + "\n" + "\n".join(lines) + "\n\n"
            "The brief reports p95 going from 400 ms to 45 ms on a real platform when "
            "upstream keepalive was turned on: there every new upstream connection costs "
            "a network round trip, and under load the churn exhausts ephemeral ports and "
            "fills the listen backlogs. Here the upstream is on loopback, where a TCP "
            "handshake costs tens of microseconds, so the switch shows less in latency and "
            "more in connections opened, sockets left in TIME_WAIT and CPU per request. With "
            "keepalive off, every request opens a connection that the upstream closes "
            "after the response and that then sits in TIME_WAIT for 60 s.\n")


def tables_markdown(plan, runs, settings):
    """Every results table, as Markdown (also printed by run.py)."""
    summaries = {c.key: summarize(runs[c.key]) for c in plan}
    out = []
    main = [c for c in plan if c.group == "main"]
    if main:
        out.append("### Side by side (%d client connections, median of %d rounds)\n\n"
                   % (settings["connections"], settings["rounds"]))
        for w in sorted({c.workers for c in main}):
            rows = [(_row_name(c), summaries[c.key]) for c in main if c.workers == w]
            out.append(_table(rows, MAIN_COLUMNS) + "\n")
        ratios = _ratio_table(plan, runs)
        if ratios:
            out.append("### Ratios\n\n" + ratios + "\n"
                       "Each ratio is the median over rounds of portvakt's figure ÷ the "
                       "other's in the same round, where the two ran seconds apart under "
                       "the same background load. When that load varied between rounds, "
                       "it can differ from the ratio of the medians above.\n\n")
    keepalive = _keepalive_section(plan, summaries)
    if keepalive:
        out.append("### Upstream keepalive on and off (the brief's experiment)\n\n"
                   + keepalive + "\n")
    for group in sorted({c.group for c in plan} - {"main", "keepalive", "policy"}):
        title, text, columns = GROUPS.get(group, (group, "", MAIN_COLUMNS))
        rows = [(_row_name(c), summaries[c.key]) for c in plan if c.group == group]
        out.append("### %s\n\n%s" % (title, text + "\n\n" if text else "")
                   + _table(rows, columns) + "\n")
    if any(c.group == "policy" for c in plan):
        out.append(_policy_section(plan, runs, summaries))
    return "".join(out)


# ------------------------------------------------------------ document


def _problems(plan, runs):
    out = []
    for c in plan:
        for rec in runs[c.key]:
            for p in rec["problems"]:
                out.append("- **%s, round %d**: %s" % (_row_name(c), rec["round"],
                                                          p.replace("\n", "\n  ")))
            if rec["problems"] and (rec.get("stderr") or rec.get("error_log")):
                out.append("  proxy stderr / error log (tail):\n\n  ```\n  %s\n  ```"
                           % (rec.get("stderr", "") + rec.get("error_log", "")
                              ).strip().replace("\n", "\n  "))
    return "\n".join(out) + "\n" if out else "None: no errors, non-2xx replies or crashes.\n"


def _notes(plan, runs, settings):
    """What to keep in mind reading the figures, as Markdown bullets: the
    latency artefacts of the setup, where the figures show them, and what
    else ran on the machine."""
    summaries = {c.key: summarize(runs[c.key]) for c in plan}
    notes = []
    pin = settings["pinning"].get(1)
    if pin and not pin["shared"]:
        notes.append(
            "With one worker, wrk and the upstream share CPU %s. Where the proxy CPU %% "
            "is well below 100, that CPU, not the proxy, was the bottleneck, and latency "
            "then mostly measures how long requests waited for it (the scheduler's time "
            "slices between wrk and the upstream are milliseconds long). CPU µs/req is "
            "the figure least affected by the machine; compare proxies on it first."
            % pin["load"])
    for c in plan:
        on = _find(plan, summaries, c.proxy, c.workers) if c.group == "keepalive" else None
        off = summaries[c.key]
        if on and off["rounds"] and off["p95_ms"] < on["p95_ms"]:
            notes.append(
                "%s's p95 is lower with keepalive off than on here: without keepalive "
                "the proxy spends %.1f instead of %.1f µs per request and becomes the "
                "bottleneck on its own CPU, so the CPU shared by wrk and the upstream "
                "is no longer saturated and its queueing tail goes away, at the price "
                "of throughput." % (NAMES[c.proxy], off["cpu_us"], on["cpu_us"]))
    done = [(r, c) for c in plan for r in runs[c.key] if "rps" in r]
    if done:
        worst, who = max(done, key=lambda rc: rc[0]["other_cpu_pct"])
        notes.append(
            "Other processes on the machine used a median %.0f%% of one CPU during the "
            "measured runs (at most %.0f%%, in a %s run: %s); hypervisor steal time was "
            "at most %.1f%%. Rows with more other load are less reliable; every figure "
            "is a median of rounds to damp it."
            % (statistics.median(r["other_cpu_pct"] for r, _ in done),
               worst["other_cpu_pct"], _row_name(who),
               worst["other_top"] or "processes that did not outlive the run",
               max(r["steal_pct"] for r, _ in done)))
    return "".join("- %s\n" % n for n in notes)


POLICY_METHOD = """\
- **Policy rows**: the same config with, in the location, `auth_jwt "bench";
  auth_jwt_key_file jwks.json;` and/or `limit_req zone=bench burst=1000
  nodelay;` (zone: `limit_req_zone $binary_remote_addr zone=bench:10m
  rate=10000000r/s;`). The key set and the token are made for every run by
  `bench/tokens.py`: HS256 with a 32-byte secret, RS256 with a fresh 2048-bit
  RSA key (`openssl genpkey`, signed by `openssl dgst -sha256 -sign`); the
  claims are iss, sub, aud, iat and exp, the header has a kid. wrk sends the
  token with every request (`-H "Authorization: Bearer ..."`), in the
  warm-up too; no idle test. Before the load, a request with the token
  must get 200 with the upstream's body, and one without it and one with a
  forged signature must get 401, or the round fails without figures. **Extra CPU
  µs/req**: per round, the row's CPU µs/req minus the plain 1-worker
  portvakt's from the same round; the median over rounds is shown.
"""


def _method(settings, plan):
    pin = settings["pinning"]
    pins = "; ".join("%d worker%s: proxy on CPU %s, wrk and the upstream on CPU %s%s"
                     % (w, "" if w == 1 else "s", p["proxy"], p["load"],
                        " (shared: this machine has no CPU left over, so the proxy, "
                        "wrk and the upstream contend for the same CPUs)" if p["shared"] else "")
                     for w, p in sorted(pin.items()))
    return """\
- **Upstream**: NGINX 1.22, one process, `return 200` with a 45-byte JSON body,
  access log off, `keepalive_requests 10000000` so that it never closes a
  connection itself. A fresh upstream, proxy and set of ports for every run.
- **Contestants**: the auth route of the brief's gateway config
  (`reference/seed-gateway.conf`: `keepalive 32`, `proxy_http_version 1.1`,
  `Connection ""`, `X-Real-IP`, `X-Forwarded-For`, `keepalive_timeout 65`,
  `keepalive_requests 100000`) with **access logging off for all three**
  (`access_log off`; HAProxy has no `log` line). portvakt and NGINX run the
  same text (`worker_processes N`, `events {{ worker_connections 20000; }}`);
  HAProxy runs its equivalent (`nbthread N`, `http-reuse always`,
  `pool-max-conn` 32 per thread, `option forwardfor`, `X-Real-IP` by
  `http-request set-header`). NGINX runs with its master process; its figures
  sum the master and the workers. The generated configs are in
  `build/bench/runs/`.
- **Pinning** (`taskset`): {pins}.
- **Load**: wrk with {conns} connections (one thread per load CPU), {warmup:g} s of
  warm-up that is not measured, then {duration:g} s measured, {rounds} round(s);
  contestants run in a rotated order each round. wrk is closed-loop, so
  latencies do not include the queueing an open-loop client would see.
- **req/s**: wrk's requests ÷ its run time. **p50/p95/p99**: wrk's latency
  histogram, read by `bench/latency.lua`'s `done()`.
- **CPU µs/req**: the proxy's utime + stime (`/proc/PID/stat`, all threads,
  all processes) over the measured run ÷ requests. **proxy CPU %**: the same
  ÷ wall time; 100 % is one CPU fully busy, so below 100 × workers the proxy
  was not the bottleneck and req/s says more about wrk and the upstream.
- **peak RSS**: `VmHWM` of the proxy's processes after the load. For NGINX
  that adds the master's and the workers', so pages they share (the binary,
  libraries) count more than once.
- **bytes/idle conn**: {idle:,} keepalive client connections opened one after
  another, each having made one request, then `VmRSS` compared with before,
  ÷ the connections still open. Kernel socket buffers are not in RSS.
  (RLIMIT_NOFILE here: {nofile:,}; the count is capped at half of it because
  HAProxy needs two descriptors per connection.)
- **upstream conns/100k req**: the upstream NGINX's `stub_status` `accepts`
  counter before and after the run (minus the status query's own connection)
  ÷ requests × 100 000. NGINX and portvakt close a pooled connection after
  1 000 requests (upstream `keepalive_requests` default), and `keepalive 32`
  caches 32 idle connections per worker: when more requests are in flight
  than that, the extra connections are opened and closed again.
- **TIME_WAIT after run**: sockets in TIME_WAIT with the upstream's port at
  either end (`/proc/net/tcp`), read right after the run.
- **Other load**: the machine's busy CPU time (`/proc/stat`) during the run
  minus that of the proxy, the upstream and wrk, in % of one CPU; the
  processes named are the top users by `/proc/PID/stat` over the same time.
- **Ratios**: per round, portvakt's figure ÷ the other proxy's from the same
  round; the table shows the median of those.
""".format(pins=pins, conns=settings["connections"], warmup=settings["warmup"],
           duration=settings["duration"], rounds=settings["rounds"],
           idle=settings["idle"], nofile=settings["nofile"]) + (
               POLICY_METHOD if any(c.group == "policy" for c in plan) else "")


def document(facts, plan, runs, settings, when, chart):
    """The whole results page."""
    kind = ("quick check" if settings["quick"] else
            "partial run" if settings["partial"] else "full run")
    head = ("# portvakt beside NGINX and HAProxy\n\n"
            "Measured %s by `make bench` (%s, %.1f minutes). Each figure is the "
            "median of %d round(s) of %g s.\n\n"
            % (when.strftime("%Y-%m-%d %H:%M UTC"), kind, settings["elapsed"] / 60,
               settings["rounds"], settings["duration"]))
    machine = ("| machine | |\n|---|---|\n"
               + "".join("| %s | %s |\n" % (k, v.replace("|", "/")) for k, v in facts) + "\n")
    parts = [head, "## Machine and versions\n\n", machine,
             "## Results\n\n", tables_markdown(plan, runs, settings)]
    if chart:
        parts.append("![throughput and p99 per proxy](%s)\n\n" % chart)
    parts += ["## Problems\n\n", _problems(plan, runs), "\n",
              "## Notes\n\n", _notes(plan, runs, settings), "\n",
              "## Method\n\n", _method(settings, plan)]
    return "".join(parts)


def _chart(outdir, plan, runs, subtitle):
    """latest.png: req/s and p99 per proxy at 1 and 2 workers, by gnuplot."""
    summaries = {c.key: summarize(runs[c.key]) for c in plan}
    rows = []
    for proxy in ("portvakt", "nginx", "haproxy"):
        cells = [_find(plan, summaries, proxy, w) for w in (1, 2)]
        if any(cells):
            rows.append(" ".join([NAMES[proxy]] + [
                "%.3f" % s[key] if s and s.get(key) is not None else "?"
                for key in ("rps", "p99_ms") for s in cells]))
    if not rows:
        return None
    data = os.path.join(outdir, ".chart.dat")
    png = os.path.join(outdir, "latest.png")
    with open(data, "w") as f:
        f.write("# proxy rps_1w rps_2w p99_1w p99_2w\n" + "\n".join(rows) + "\n")
    try:
        subprocess.run(["gnuplot", "-e", "data='%s'; out='%s'; subtitle='%s'"
                        % (data, png, subtitle.replace("'", "")), CHART_SCRIPT],
                       check=True, capture_output=True, text=True)
    finally:
        os.unlink(data)
    return png


def write(outdir, facts, plan, runs, settings):
    """latest.md, a dated copy, latest.json (every round) and latest.png."""
    os.makedirs(outdir, exist_ok=True)
    when = datetime.datetime.now(datetime.timezone.utc)
    png = _chart(outdir, plan, runs, "%s, %d client connections on loopback"
                 % (when.strftime("%Y-%m-%d"), settings["connections"]))
    paths = []
    for name, chart in (("latest.md", png and "latest.png"),
                        (when.strftime("%Y-%m-%d.md"), None)):
        path = os.path.join(outdir, name)
        with open(path, "w") as f:
            f.write(document(facts, plan, runs, settings, when, chart))
        paths.append(path)
    raw = {"when": when.isoformat(), "machine": dict(facts), "settings": settings,
           "contestants": {c.key: {"contestant": c.__dict__, "rounds": runs[c.key],
                                   "median": summarize(runs[c.key])} for c in plan}}
    path = os.path.join(outdir, "latest.json")
    with open(path, "w") as f:
        # A contestant's setup hook is stored by its name.
        json.dump(raw, f, indent=1, sort_keys=True,
                  default=lambda o: getattr(o, "__name__", str(o)))
        f.write("\n")
    paths.append(path)
    if png:
        paths.append(png)
    return paths
