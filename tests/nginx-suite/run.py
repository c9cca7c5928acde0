#!/usr/bin/python3
"""Run NGINX's own test suite (its unmodified .t files and lib/) against
build/portvakt and against NGINX on the same machine, and print per file:
tests, passed, failed, skipped for each.

    tests/nginx-suite/run.py [--only portvakt|nginx] [--write FILE]
                             [--check BASELINE] [--record BASELINE] [GLOB...]

PORTVAKT names another build (default build/portvakt). The suite is found
in NGINX_TESTS, else in shared/corpora/nginx-tests in a
parent directory of the repository. Each .t file runs as `perl -Ilib FILE`
with TEST_NGINX_BINARY set, several at a time (NGINX_SUITE_JOBS, default
6; each file picks its own free ports). A file that insists on the exact
ports it asks for (it skips as a whole when port() had to pick others,
as http_listen*.t do) runs alone after the rest, one binary at a time, so
that no other file holds them. As root, the files run as user
nobody, as NGINX's suite expects (NGINX as root would switch its workers to
nobody, who could not read the test's directory).

Counting, from the TAP each file prints: `ok` is passed, `not ok` (a TODO
one too) is failed, `ok # skip` is skipped; tests a file planned but never
reported (it died) are failed, and so are its closing "no alerts" checks
when the server never started. A file that skips as a whole (`1..0 #
SKIP`, e.g. a module that is missing) counts as many skipped tests as the
other binary planned for it. NGINX passing nothing means the harness is
broken (exit 2).

The harness learns which modules exist from `-V`: portvakt answers from
its table of NGINX modules (src/main.c). For NGINX, a wrapper drops from
its `-V` the dynamic modules whose .so is not installed, since the harness
would otherwise try to load them.

--check BASELINE fails (exit 1) when a file passes fewer tests on portvakt
than BASELINE records; --record BASELINE writes today's counts there. Only
the harness failing otherwise makes the exit status non-zero.
"""
import argparse
import concurrent.futures
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTVAKT = os.path.abspath(os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt")))
NGINX = "/usr/sbin/nginx"
NGINX_MODULES = "/usr/lib/nginx/modules"
FILE_TIMEOUT = 300  # seconds for one .t file

# The files that concern the gateway: TLS (ssl*) and HTTP/2 (h2*) skip
# until portvakt has them; then static files (static, index, autoindex,
# range, not_modified, etag, try_files), charset, sub_filter, SSI, addition
# and FastCGI.
PATTERNS = ["proxy*", "ssi*", "addition*", "upstream*", "http_*", "auth_*", "limit_*", "access*", "body*",
            "rewrite*", "map*", "realip*", "ssl*", "h2*",
            "static*", "index*", "autoindex*", "range*", "not_modified*", "etag*", "try_files*",
            "sub_filter*", "charset*", "fastcgi*", "mirror*"]


def find_suite():
    env = os.environ.get("NGINX_TESTS")
    if env:
        return env
    d = ROOT
    while True:
        cand = os.path.join(d, "shared", "corpora", "nginx-tests")
        if os.path.isdir(os.path.join(cand, "lib")):
            return cand
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def nginx_wrapper(tmp):
    """A TEST_NGINX_BINARY for NGINX whose -V lists only dynamic modules
    that are installed; anything else runs NGINX itself."""
    out = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    installed = set(os.listdir(NGINX_MODULES)) if os.path.isdir(NGINX_MODULES) else set()
    names = {"http_geoip": "ngx_http_geoip_module.so", "image_filter": "ngx_http_image_filter_module.so",
             "perl": "ngx_http_perl_module.so", "xslt": "ngx_http_xslt_filter_module.so",
             "mail": "ngx_mail_module.so", "stream": "ngx_stream_module.so",
             "stream_geoip": "ngx_stream_geoip_module.so"}

    def keep(arg):
        m = re.match(r"--with-(\w+?)(?:_module)?=dynamic$", arg)
        return not m or names.get(m.group(1)) in installed

    lines = []
    for line in out.splitlines():
        if line.startswith("configure arguments:"):
            args = re.findall(r"--\S+(?:'[^']*')?", line)
            line = "configure arguments: " + " ".join(a for a in args if keep(a))
        lines.append(line)
    vfile = os.path.join(tmp, "nginx-V.txt")
    with open(vfile, "w") as f:
        f.write("\n".join(lines) + "\n")
    path = os.path.join(tmp, "nginx")
    with open(path, "w") as f:
        f.write('#!/bin/sh\nif [ "$1" = "-V" ]; then cat %s >&2; exit 0; fi\nexec %s "$@"\n' % (vfile, NGINX))
    os.chmod(path, 0o755)
    os.chmod(vfile, 0o644)
    return path


def count_tap(text):
    """(planned or None, passed, failed, skipped, skip_all reason or None,
    the number and name of each test that passed)"""
    planned, passed, failed, skipped, skip_all = None, 0, 0, 0, None
    oks = set()
    # the harness checks the error log for alerts at exit: after a server
    # that never started, that check says nothing
    died = "Can't start nginx" in text
    for line in text.splitlines():
        m = re.match(r"^1\.\.(\d+)(.*)", line)
        if m:
            planned = int(m.group(1))
            if planned == 0:
                r = re.search(r"#\s*skip\S*\s*(.*)", m.group(2), re.I)
                skip_all = r.group(1).strip() if r else "skipped"
            continue
        m = re.match(r"^(not )?ok\b\s*(\d*)(.*)", line)
        if not m:
            continue
        if m.group(1) or (died and re.match(r"\s*-\s*no (alerts|sanitizer errors)\s*$", m.group(3))):
            failed += 1
        elif re.search(r"#\s*skip", m.group(3), re.I):
            skipped += 1
        else:
            passed += 1
            # number and name: a file that died early reports its closing
            # checks under the numbers its first tests have elsewhere
            oks.add((m.group(2), re.sub(r"^\s*-\s*", "", m.group(3)).strip()))
    if planned and passed + failed + skipped < planned:
        failed += planned - (passed + failed + skipped)
    return planned, passed, failed, skipped, skip_all, oks


def run_file(suite, name, binary, extra_env):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TEST_NGINX_BINARY": binary,
           "TMPDIR": "/tmp", "LANG": "C"}
    env.update(extra_env)
    t0 = time.time()
    user = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
    p = subprocess.Popen(["perl", "-Ilib", name], cwd=suite, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True, text=True,
                         errors="replace", **user)
    try:
        out, _ = p.communicate(timeout=FILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out += "\nnot ok - the file timed out after %d s\n" % FILE_TIMEOUT
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # servers a died file left behind
        except ProcessLookupError:
            pass
    return count_tap(out) + (out, time.time() - t0)


def wants_own_ports(suite, name):
    """Whether the file skips as a whole unless port() gave it the very
    numbers it asked for: run in parallel, another file may hold them."""
    with open(os.path.join(suite, name), errors="replace") as fh:
        return re.search(r'ne\s+"\d{4,}"', fh.read()) is not None


def select(suite, globs):
    files = sorted(f for f in os.listdir(suite) if f.endswith(".t"))
    pats = globs or PATTERNS
    return [f for f in files if any(fnmatch.fnmatch(f, p if p.endswith(".t") or p.endswith("*") else p + ".t")
                                    for p in pats)]


def row_counts(mine, other):
    """tests, passed, failed, skipped for one binary; a whole-file skip
    counts the other binary's plan as skipped."""
    planned, passed, failed, skipped, skip_all = mine[:5]
    if skip_all is not None or planned is None:
        n = other[0] if other and other[0] else 0
        if skip_all is None:  # no plan at all: the file died before planning
            return n, 0, n, 0
        return n, 0, 0, n
    return planned, passed, failed, skipped


def load_baseline(path):
    base = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                base[line[0]] = int(line[1])
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["portvakt", "nginx"])
    ap.add_argument("--write", help="write the markdown table here")
    ap.add_argument("--check", help="baseline file: fail when a file passes fewer tests")
    ap.add_argument("--record", help="write portvakt's passes per file here")
    ap.add_argument("--logs", help="keep each file's TAP output in this directory")
    ap.add_argument("globs", nargs="*")
    a = ap.parse_args()

    suite = find_suite()
    if not suite:
        print("nginx-suite: NGINX's test suite not found (set NGINX_TESTS)", file=sys.stderr)
        return 2
    if not os.access(PORTVAKT, os.X_OK) and a.only != "nginx":
        print("nginx-suite: %s is not built" % PORTVAKT, file=sys.stderr)
        return 2
    if shutil.which("perl") is None or subprocess.run(["perl", "-MTest::More", "-e1"]).returncode:
        print("nginx-suite: perl with Test::More is needed", file=sys.stderr)
        return 2
    files = select(suite, a.globs)
    if not files:
        print("nginx-suite: no file matches", file=sys.stderr)
        return 2

    # the files run from a copy that user nobody can surely read, with a
    # copy of the binary it can surely run
    tmp = tempfile.mkdtemp(prefix="pv-nginx-suite-")
    os.chmod(tmp, 0o755)
    copy = os.path.join(tmp, "suite")
    shutil.copytree(os.path.join(suite, "lib"), os.path.join(copy, "lib"), copy_function=shutil.copyfile)
    for f in files:
        shutil.copyfile(os.path.join(suite, f), os.path.join(copy, f))
    for d, _, names in os.walk(copy):  # the suite may come without write bits
        os.chmod(d, 0o755)
        for n in names:
            os.chmod(os.path.join(d, n), 0o644)
    suite = copy
    targets = []
    if a.only != "nginx":
        os.mkdir(os.path.join(tmp, "bin"))
        shutil.copy(PORTVAKT, os.path.join(tmp, "bin", "portvakt"))
        targets.append(("portvakt", os.path.join(tmp, "bin", "portvakt"), {}))
    if a.only != "portvakt" and os.access(NGINX, os.X_OK):
        targets.append(("nginx", nginx_wrapper(tmp), {"TEST_NGINX_MODULES": NGINX_MODULES}))
    jobs = int(os.environ.get("NGINX_SUITE_JOBS", "6"))
    t0 = time.time()
    results = {}
    alone = [f for f in files if wants_own_ports(suite, f)]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(run_file, suite, f, b, e): (t, f)
                    for t, b, e in targets for f in files if f not in alone}
            for fut in concurrent.futures.as_completed(futs):
                results[futs[fut]] = fut.result()
        for f in alone:
            for t, b, e in targets:
                results[(t, f)] = run_file(suite, f, b, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.logs:
        os.makedirs(a.logs, exist_ok=True)
        for (t, f), r in results.items():
            with open(os.path.join(a.logs, "%s.%s.log" % (f, t)), "w") as fh:
                fh.write(r[6])

    names = [t for t, _, _ in targets]
    rows, totals = [], {t: [0, 0, 0, 0] for t in names}
    for f in files:
        row = [f]
        for t in names:
            other = [results.get((o, f)) for o in names if o != t]
            c = row_counts(results[(t, f)], other[0] if other else None)
            row.append(c)
            totals[t] = [x + y for x, y in zip(totals[t], c)]
        rows.append(row)

    both = None
    if names == ["portvakt", "nginx"]:
        both = {f: len(results[("portvakt", f)][5] & results[("nginx", f)][5]) for f in files}
    groups = summarize(files, names, rows, both)

    head = "%-44s" % "file" + "".join("  %-24s" % ("%s t/p/f/s" % t) for t in names)
    print(head)
    for row in rows:
        print("%-44s" % row[0] + "".join("  %-24s" % "/".join(map(str, c)) for c in row[1:]))
    print("%-44s" % "total" + "".join("  %-24s" % "/".join(map(str, totals[t])) for t in names))
    for t in names:
        tt = totals[t]
        print("%s: %d passed, %d failed, %d skipped of %d tests in %d files" % (t, tt[1], tt[2], tt[3], tt[0], len(files)))
    if both is not None:
        n = totals["nginx"][1]
        print("portvakt passes %d of the %d tests NGINX passes (%.0f %%)" % (sum(both.values()), n, 100.0 * sum(both.values()) / max(n, 1)))
    print("nginx-suite: %d files in %.0f s" % (len(files), time.time() - t0))

    if "portvakt" in names:
        print_causes(files, results, "nginx" in names)
    if "nginx" in names and totals["nginx"][1] == 0:
        print("nginx-suite: NGINX passed no test: the harness does not work here", file=sys.stderr)
        return 2
    if a.write:
        write_markdown(a.write, names, rows, totals, groups)
    if a.record and "portvakt" in names:
        with open(a.record, "w") as fh:
            fh.write("# NGINX test suite: tests each file passes on portvakt (tests/nginx-suite/run.py --record)\n")
            for row in rows:
                fh.write("%s %d\n" % (row[0], row[1 + names.index("portvakt")][1]))
    if a.check and "portvakt" in names:
        base, worse = load_baseline(a.check), []
        for row in rows:
            have = row[1 + names.index("portvakt")][1]
            if have < base.get(row[0], 0):
                worse.append("%s: %d passed, the baseline has %d" % (row[0], have, base[row[0]]))
        for w in worse:
            print("nginx-suite: fewer passes than the baseline: " + w)
        if worse:
            return 1
    return 0


def print_causes(files, results, with_nginx):
    """Why files did not run on portvakt: the skip reason, or the first
    error that stopped it from starting; with the tests NGINX passes there."""
    causes = {}
    for f in files:
        r = results[("portvakt", f)]
        if r[4] is not None:
            cause = "skipped: " + r[4]
        elif "Can't start nginx" in r[6]:
            m = re.search(r"\[emerg\] (.*?)(?: in /\S*)?$", r[6], re.M)
            cause = "did not start: " + (m.group(1) if m else "no message")
        else:
            continue
        c = causes.setdefault(cause, [0, 0])
        c[0] += 1
        c[1] += results[("nginx", f)][1] if with_nginx else 0
    if causes:
        print("portvakt: files that did not run, by cause (files%s):" % (", tests NGINX passes in them" if with_nginx else ""))
        for cause, c in sorted(causes.items(), key=lambda kv: (-kv[1][1], -kv[1][0])):
            print("  %4d %5s  %s" % (c[0], c[1] if with_nginx else "", cause))


def summarize(files, names, rows, both):
    """Per group of files (PATTERNS): [group, files, {name: counts}, both]"""
    out = []
    for pat in PATTERNS:
        sel = [r for r in rows if fnmatch.fnmatch(r[0], pat) and
               not any(fnmatch.fnmatch(r[0], q) for q in PATTERNS[:PATTERNS.index(pat)])]
        if not sel:
            continue
        c = {n: [sum(r[1 + i][k] for r in sel) for k in range(4)] for i, n in enumerate(names)}
        out.append([pat, len(sel), c, sum(both[r[0]] for r in sel) if both else None])
    return out


def write_markdown(path, names, rows, totals, groups):
    with open(path, "w") as fh:
        fh.write("# NGINX's test suite: portvakt beside NGINX\n\n")
        fh.write("Written by `make nginx-suite-record` (tests/nginx-suite/run.py) from NGINX's\n"
                 "own unmodified test files, NGINX being Debian's 1.22 on the same machine.\n"
                 "Per file: passed, failed, skipped. A file whose module portvakt lacks\n"
                 "skips as a whole, counted with NGINX's plan. \"both\" counts the tests\n"
                 "NGINX passes that portvakt passes too.\n\n")
        fh.write("| files | count | " + " | ".join("%s passed | failed | skipped" % n for n in names)
                 + (" | both |" if groups and groups[0][3] is not None else " |") + "\n")
        fh.write("| --- | --- |" + " --- | --- | --- |" * len(names)
                 + (" --- |" if groups and groups[0][3] is not None else "") + "\n")
        for g in groups:
            fh.write("| `%s` | %d | " % (g[0], g[1]) + " | ".join("%d | %d | %d" % tuple(g[2][n][1:]) for n in names)
                     + (" | %d |" % g[3] if g[3] is not None else " |") + "\n")
        tb = sum(g[3] for g in groups) if groups and groups[0][3] is not None else None
        fh.write("| **total** | %d | " % sum(g[1] for g in groups)
                 + " | ".join("**%d** | %d | %d" % tuple(totals[n][1:]) for n in names)
                 + (" | **%d** |" % tb if tb is not None else " |") + "\n")
        fh.write("\n## Per file\n\n")
        fh.write("| file | " + " | ".join("%s passed | failed | skipped" % n for n in names) + " | tests |\n")
        fh.write("| --- |" + " --- | --- | --- |" * len(names) + " --- |\n")
        for row in rows:
            tests = max(c[0] for c in row[1:])
            fh.write("| %s | " % row[0] + " | ".join("%d | %d | %d" % tuple(c[1:]) for c in row[1:])
                     + " | %d |\n" % tests)
        fh.write("| **total** | " + " | ".join("**%d** | %d | %d" % tuple(totals[n][1:]) for n in names)
                 + " | %d |\n" % max(totals[n][0] for n in names))


if __name__ == "__main__":
    sys.exit(main())
