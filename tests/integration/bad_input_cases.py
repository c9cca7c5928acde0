"""The case table for test_bad_input.py: malformed and ambiguous requests,
as raw bytes, and what the gateway must do with each.

Every case has an action:

  reject     the gateway answers an error status, closes the connection,
             and the upstream receives nothing at all;
  normalise  the request was irregular or ambiguous in a way the RFCs let
             a recipient resolve; the gateway accepts it and the upstream
             receives exactly one canonical request (one framing, chosen
             by the gateway; listed fields dropped) -- asserted field by
             field;
  forward    a valid request, passed on (controls, mostly from the corpus).

Whatever the action, the upstream must never see a smuggled second request
(every ambiguous body below hides a "GET /smuggled" that a parser taking
the other reading would find), a Content-Length beside a
Transfer-Encoding, two framing fields, a field whose name folds ("_" to
"-", any case) to a framing field without being it, or a field name that
is not a token. test_bad_input.py checks that for every request the
upstream received.

Where NGINX 1.22 answers differently but also safely (another error
status, or dropping a field instead of rejecting), the case carries an
`nginx=` override that says why, so PV_TARGET=nginx checks NGINX too.
Where NGINX accepts what the RFCs forbid, the case is `only=` (portvakt
only) with the reason. `defect=` marks a case portvakt gets wrong today
(an expected failure until it is fixed).

Two sources: the hand-written cases from RFC 9112 and RFC 9110 (CASES),
and the http-desync-guardian corpus (corpus_cases(), mapping below).
"""

import glob
import os

REJECT, NORMALISE, FORWARD = "reject", "normalise", "forward"

HOST = b"Host: x\r\n"
SMUGGLE = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED_ABC = b"3\r\nabc\r\n0\r\n\r\n"
# A body that is empty when read as chunked and hides a request after it:
# a parser that takes the chunked reading where another one was meant (or
# the other way round) forwards GET /smuggled.
HIDDEN = b"0\r\n\r\n" + SMUGGLE


class Up:
    """What the upstream must have received for an accepted case. body is
    the decoded body; absent lists field names that must not be there;
    present is ((name, value), ...) that must be there exactly once."""

    def __init__(self, method="POST", target="/t", body=b"", absent=(), present=()):
        self.method = method
        self.target = target
        self.body = body
        self.absent = tuple(absent)
        self.present = tuple(present)


class Expect:
    """The resolved expectation of a case for one target."""

    def __init__(self, status, action, close, up, data):
        self.status = status
        self.action = action
        self.close = close
        self.up = up
        self.data = data


class Case:
    """One raw request (data: bytes, or a function of the resolved Expect
    returning bytes) and the status/action/upstream view it must produce.
    nginx: dict overriding status/action/close/up/why under PV_TARGET=nginx.
    only: reason the case is skipped for NGINX. defect: reason portvakt
    fails it today (xfail, strict). group: category for the summary.
    http09: the request line has no version, so the answer is HTTP/0.9:
    the body alone, then the connection closes."""

    def __init__(self, id, data, status, action, close=None, up=None, nginx=None,
                 only=None, defect=None, group=None, method=None, http09=False):
        self.id = id
        self.data = data
        self.status = status
        self.action = action
        self.close = (action == REJECT) if close is None else close
        self.up = up
        self.nginx = nginx
        self.only = only
        self.defect = defect
        self.group = group or id.split("-")[0]
        self.method = method
        self.http09 = http09
        if http09:
            self.close = True

    def expect(self, target):
        status, action, close, up = self.status, self.action, self.close, self.up
        if target == "nginx" and self.nginx:
            o = self.nginx
            status = o.get("status", status)
            action = o.get("action", REJECT if status >= 400 else action)
            close = o.get("close", action == REJECT)
            up = o.get("up", up)
        e = Expect(status, action, close, up, None)
        e.data = self.data(e) if callable(self.data) else self.data
        return e

    def request_method(self, data):
        if self.method:
            return self.method
        return data.split(b" ", 1)[0].lstrip(b"\r\n").decode("latin-1")

    def __repr__(self):
        return "<Case %s %s %s>" % (self.id, self.status, self.action)


def reject(id, data, status=400, **kw):
    return Case(id, data, status, REJECT, **kw)


def normalise(id, data, up, **kw):
    return Case(id, data, 200, NORMALISE, up=up, **kw)


def forward(id, data, up, **kw):
    return Case(id, data, 200, FORWARD, up=up, **kw)


def nginx_says(status, why, **kw):
    """The override for a case NGINX answers differently but safely."""
    return dict(kw, status=status, why=why)


def req(fields=b"", body=b"", line=b"POST /t HTTP/1.1", host=True):
    """A request: line, Host (unless host=False), fields, blank line, body."""
    return line + b"\r\n" + (HOST if host else b"") + fields + b"\r\n" + body


def cl(n):
    return b"Content-Length: %d\r\n" % n


TE = b"Transfer-Encoding: chunked\r\n"

# Notes reused below.
NG_TE_501 = ("NGINX answers 501 to any Transfer-Encoding value but exactly 'chunked', "
             "before looking at Content-Length")
NG_DROPS = "NGINX drops fields with invalid names (ignore_invalid_headers on) instead of rejecting"
PV_CTL = "NGINX passes control characters other than NUL, CR and LF in field values"
PV_LF = "NGINX accepts a bare LF as a line end in chunked framing"


# ---------------------------------------------------------------- RFC cases

CASES = [
    # -- RFC 9112 6.1 / 6.3: Content-Length beside Transfer-Encoding. The
    # classic CL.TE / TE.CL desync; the body hides a second request.
    reject("cl-te-both", req(cl(len(HIDDEN)) + TE, HIDDEN)),
    reject("cl-te-both-te-first", req(TE + cl(len(HIDDEN)), HIDDEN)),
    reject("cl-te-both-te-http10", req(TE + cl(len(HIDDEN)), HIDDEN, line=b"POST /t HTTP/1.0")),

    # -- RFC 9110 8.6 / RFC 9112 6.3: invalid or repeated Content-Length.
    # Identical repeats may be folded by the RFC; portvakt and NGINX refuse
    # them, which is the safe side.
    reject("cl-repeated-same", req(cl(3) + cl(3), b"abc")),
    reject("cl-repeated-differ", req(cl(3) + cl(len(HIDDEN)), HIDDEN)),
    reject("cl-list-same", req(b"Content-Length: 3, 3\r\n", b"abc")),
    reject("cl-list-differ", req(b"Content-Length: 3, 40\r\n", HIDDEN)),
    reject("cl-plus-sign", req(b"Content-Length: +3\r\n", b"abc")),
    reject("cl-hex", req(b"Content-Length: 0x3\r\n", b"abc")),
    reject("cl-negative", req(b"Content-Length: -3\r\n", b"abc")),
    reject("cl-empty", req(b"Content-Length: \r\n", b"abc")),
    reject("cl-inner-space", req(b"Content-Length: 1 0\r\n", b"abc")),
    reject("cl-decimal-point", req(b"Content-Length: 3.0\r\n", b"abc")),
    # beyond 2^64 and just beyond 2^63: must not wrap to a small number
    reject("cl-huge", req(b"Content-Length: 18446744073709551619\r\n", b"abc")),
    reject("cl-int64-overflow", req(b"Content-Length: 9223372036854775808\r\n", b"abc")),
    # valid, but over client_max_body_size (8m here)
    reject("cl-int64-max", req(b"Content-Length: 9223372036854775807\r\n", b"abc"), 413),
    # OWS around the value is not part of it; leading zeros are digits
    normalise("cl-ows", req(b"Content-Length:   3  \r\n", b"abc"),
              Up(body=b"abc", present=(("Content-Length", "3"),))),
    normalise("cl-leading-zeros", req(b"Content-Length: 003\r\n", b"abc"),
              Up(body=b"abc", present=(("Content-Length", "3"),))),

    # -- RFC 9112 6.1: Transfer-Encoding variants. Only "chunked", once, as
    # the final coding, is something a gateway can frame. A coding it does
    # not implement is 501 (6.1: SHOULD); 6.3 would also allow 400 where
    # chunked is not final. Both portvakt and NGINX answer 501 and close.
    reject("te-chunked-twice-list", req(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_ABC), 501),
    # a repeated Transfer-Encoding field is a duplicate (400) before its
    # value is looked at, as in NGINX
    reject("te-chunked-twice-fields", req(TE + TE, CHUNKED_ABC)),
    reject("te-two-fields-gzip-first", req(b"Transfer-Encoding: gzip\r\n" + TE, CHUNKED_ABC)),
    reject("te-identity", req(b"Transfer-Encoding: identity\r\n", b"abc"), 501),
    reject("te-identity-chunked", req(b"Transfer-Encoding: identity, chunked\r\n", CHUNKED_ABC), 501),
    reject("te-chunked-param", req(b"Transfer-Encoding: chunked;q=1\r\n", CHUNKED_ABC), 501),
    reject("te-xchunked", req(b"Transfer-Encoding: xchunked\r\n", CHUNKED_ABC), 501),
    reject("te-chunk", req(b"Transfer-Encoding: chunk\r\n", CHUNKED_ABC), 501),
    # RFC 9112 6.1: TE in an HTTP/1.0 request means the framing is faulty
    reject("te-http10", req(TE, HIDDEN, line=b"POST /t HTTP/1.0")),
    # obs-fold in TE (RFC 9112 5.2): refused, as any obs-fold
    reject("te-obs-fold", req(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_ABC)),
    reject("te-obs-fold-value", req(b"Transfer-Encoding: identity\r\n chunked\r\n", CHUNKED_ABC)),
    reject("te-empty", req(b"Transfer-Encoding: \r\n", HIDDEN), 400,
           nginx=nginx_says(501, NG_TE_501)),
    # OWS before the value is not part of it
    normalise("te-leading-space", req(b"Transfer-Encoding:  chunked\r\n", CHUNKED_ABC),
              Up(body=b"abc")),
    normalise("te-leading-tab", req(b"Transfer-Encoding:\tchunked\r\n", CHUNKED_ABC),
              Up(body=b"abc"), nginx=nginx_says(501, NG_TE_501)),
    normalise("te-uppercase", req(b"Transfer-Encoding: CHUNKED\r\n", CHUNKED_ABC),
              Up(body=b"abc")),
    # RFC 9110 5.6.1.2: a recipient MUST accept empty list elements
    normalise("te-empty-element-first", req(b"Transfer-Encoding: , chunked\r\n", CHUNKED_ABC),
              Up(body=b"abc"), nginx=nginx_says(501, NG_TE_501)),
    # RFC 9110 5.6.1.2 wants empty list elements ignored, but the parser
    # (llhttp) and NGINX both take "chunked," as an unknown coding: 501,
    # listed in the README among the known limits.
    reject("te-empty-element-last", req(b"Transfer-Encoding: chunked,\r\n", CHUNKED_ABC), 501),
    # TE on GET/HEAD: a body without defined semantics, but unambiguous framing
    normalise("te-on-get", req(TE, CHUNKED_ABC, line=b"GET /t HTTP/1.1"),
              Up("GET", body=b"abc")),

    # -- RFC 9112 7.1: chunk syntax.
    reject("chunk-size-garbage", req(TE, b"3x\r\nabc\r\n0\r\n\r\n")),
    reject("chunk-size-missing", req(TE, b"\r\nabc\r\n0\r\n\r\n")),
    reject("chunk-size-negative", req(TE, b"-3\r\nabc\r\n0\r\n\r\n")),
    reject("chunk-size-0x", req(TE, b"0x3\r\nabc\r\n0\r\n\r\n")),
    reject("chunk-size-leading-space", req(TE, b" 3\r\nabc\r\n0\r\n\r\n")),
    # 2^64+3 and 2^64-1: too large to frame; a parser that wraps reads the
    # first as 3 and then finds the hidden request
    reject("chunk-size-wraps-to-3", req(TE, b"10000000000000003\r\nabc\r\n0\r\n\r\n" + SMUGGLE)),
    reject("chunk-size-2to64", req(TE, b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n")),
    # a size line longer than any sane one (4 KiB of zeros)
    reject("chunk-size-line-too-long", req(TE, b"0" * 5000 + b"3\r\nabc\r\n0\r\n\r\n"),
           nginx=nginx_says(200, "NGINX puts no bound on leading zeros in a chunk size",
                            action=NORMALISE, up=Up(body=b"abc"))),
    # BWS is allowed only before ';' (chunk-ext), not before the CRLF
    reject("chunk-size-trailing-space", req(TE, b"3 \r\nabc\r\n0\r\n\r\n"),
           only="NGINX accepts whitespace after a chunk size"),
    # data longer or shorter than announced: the CRLF is not where it must be
    reject("chunk-missing-crlf", req(TE, b"3\r\nabc3\r\ndef\r\n0\r\n\r\n")),
    reject("chunk-data-short", req(TE, b"4\r\nabc\r\n0\r\n\r\n" + SMUGGLE),
           only="NGINX accepts a bare LF after chunk data (here it takes 'abc\\r' as the data)"),
    # bare LF anywhere in chunked framing (RFC 9112 2.2)
    reject("chunk-bare-lf-size", req(TE, b"3\nabc\r\n0\r\n\r\n"), only=PV_LF),
    reject("chunk-bare-lf-data", req(TE, b"3\r\nabc\n0\r\n\r\n"), only=PV_LF),
    reject("chunk-bare-lf-last", req(TE, b"3\r\nabc\r\n0\n\n"), only=PV_LF),
    reject("chunk-bare-lf-trailer", req(TE, b"3\r\nabc\r\n0\r\nX-T: 1\n\r\n"), only=PV_LF),
    # chunk extensions: a name without value is valid; "=" needs a value
    normalise("chunk-ext-no-value", req(TE, b"3;foo\r\nabc\r\n0\r\n\r\n"), Up(body=b"abc")),
    normalise("chunk-ext-quoted", req(TE, b'3;foo="a b";bar=c\r\nabc\r\n0;z\r\n\r\n'), Up(body=b"abc")),
    normalise("chunk-ext-bws", req(TE, b"3 ; a=b\r\nabc\r\n0\r\n\r\n"), Up(body=b"abc")),
    reject("chunk-ext-empty-value", req(TE, b"3;foo=\r\nabc\r\n0\r\n\r\n"),
           only="NGINX accepts chunk extensions without the value after '='"),
    reject("chunk-ext-too-long", req(TE, b"3;" + b"a" * 5000 + b"\r\nabc\r\n0\r\n\r\n"),
           nginx=nginx_says(200, "NGINX puts no bound on chunk extensions",
                            action=NORMALISE, up=Up(body=b"abc"))),
    # trailers are checked and dropped: a Content-Length or Transfer-Encoding
    # there must not reach the upstream as a field
    normalise("chunk-trailer", req(TE, b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
              Up(body=b"abc", absent=("X-T",))),
    # (NGINX frames the body it forwards with Content-Length: 3; the check
    # that any Content-Length matches the body catches a forwarded 50)
    normalise("chunk-trailer-content-length", req(TE, b"3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n"),
              Up(body=b"abc")),
    normalise("chunk-trailer-transfer-encoding",
              req(TE, b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
              Up(body=b"abc")),
    reject("chunk-trailer-obs-fold", req(TE, b"3\r\nabc\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
           only="NGINX does not parse trailer lines"),

    # -- RFC 9110 5.1, 5.5 / RFC 9112 5: field syntax.
    # whitespace between name and colon: RFC 9112 5.1 MUST 400
    reject("field-space-before-colon", req(b"Transfer-Encoding : chunked\r\n" + cl(len(HIDDEN)), HIDDEN)),
    reject("field-tab-before-colon", req(b"Content-Length\t: 40\r\n" + TE, HIDDEN)),
    reject("field-empty-name", req(b": chunked\r\n" + cl(3), b"abc")),
    reject("field-no-colon", req(b"X-A\r\n", line=b"GET /t HTTP/1.1"),
           only="NGINX takes a line without a colon as a field with an empty value"),
    # whitespace before the first field: RFC 9112 2.2
    reject("field-leading-space", req(b" X-A: b\r\n", line=b"GET /t HTTP/1.1", host=False)),
    reject("field-obs-fold-tab", req(b"X-A: a\r\n\tb\r\n", line=b"GET /t HTTP/1.1")),
    reject("field-name-bad-char", req(b"X(A): b\r\n", line=b"GET /t HTTP/1.1"),
           nginx=nginx_says(200, NG_DROPS, action=NORMALISE, up=Up("GET", absent=("X(A)",)))),
    reject("field-name-vt", req(b"Transfer-Encoding\x0b: chunked\r\n" + cl(3), b"abc")),
    reject("field-name-nul", req(b"X\x00A: b\r\n", line=b"GET /t HTTP/1.1")),
    reject("field-name-obs-text", req(b"Transfer-Encoding\xe9: chunked\r\n" + cl(3), b"abc"),
           nginx=nginx_says(200, NG_DROPS, action=NORMALISE,
                            up=Up(body=b"abc", present=(("Content-Length", "3"),)))),
    reject("field-value-nul", req(b"X-A: a\x00b\r\n", line=b"GET /t HTTP/1.1")),
    reject("field-value-bare-cr", req(b"X-A: a\rTransfer-Encoding: chunked\r\n" + cl(3), b"abc")),
    reject("field-value-soh", req(b"X-A: a\x01b\r\n", line=b"GET /t HTTP/1.1"), only=PV_CTL),
    reject("field-value-esc", req(b"X-A: \x1b[31m\r\n", line=b"GET /t HTTP/1.1"), only=PV_CTL),
    reject("field-value-del", req(b"X-A: a\x7fb\r\n", line=b"GET /t HTTP/1.1"), only=PV_CTL),
    # obs-text (0x80-0xff) is allowed in values (RFC 9110 5.5) and passed on
    forward("field-value-obs-text", req(b"X-A: caf\xe9\r\n", line=b"GET /t HTTP/1.1"),
            Up("GET", present=(("X-A", "caf\xe9"),))),
    # very long names: one over large_client_header_buffers (8k) is 431
    reject("field-name-too-long", req(b"X" * 9000 + b": b\r\n", line=b"GET /t HTTP/1.1"), 431,
           only="NGINX answers 400 for too-large header fields; RFC 6585 has 431"),
    forward("field-name-long", req(b"X" * 4000 + b": b\r\n", line=b"GET /t HTTP/1.1"),
            Up("GET", present=(("X" * 4000, "b"),))),
    # max_headers (1000 by default) counts Host too: 1001 fields are refused
    reject("field-too-many", req(b"".join(b"X-%d: a\r\n" % i for i in range(1000)), line=b"GET /t HTTP/1.1")),
    forward("field-many", req(b"".join(b"X-%d: a\r\n" % i for i in range(999)), line=b"GET /t HTTP/1.1"),
            Up("GET", present=(("X-998", "a"),))),
    # a bare CR at the start of a line after the fields: RFC 9112 2.2 makes
    # it invalid. Taken as the end of the head, it splits one request in two.
    reject("field-bare-cr-ends-head",
           req(b"\rXGET /smuggled HTTP/1.1\r\nHost: x\r\n", line=b"GET /t HTTP/1.1")),
    reject("field-bare-cr-before-body",
           b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r!hello"),
    reject("field-bare-cr-name", req(b"X-A\r: b\r\n", line=b"GET /t HTTP/1.1")),
    # names that fold to a framing field: dropped, as NGINX does by default
    normalise("field-lookalike-te", req(b"Transfer_Encoding: chunked\r\n" + cl(5), b"hello"),
              Up(body=b"hello", absent=("Transfer_Encoding",))),
    normalise("field-lookalike-cl", req(b"Content_Length: 40\r\n" + TE, CHUNKED_ABC),
              Up(body=b"abc", absent=("Content_Length",))),

    # -- Fields NGINX 1.22 takes once only: Host and the ngx_http_headers_in[]
    # entries handled by ngx_http_process_unique_header_line (Content-Length
    # and Transfer-Encoding are above). A second one is 400, whatever the
    # values and the case of the names: auth_jwt checks the first
    # Authorization, a backend may read the last.
    reject("dup-host", req(b"Host: x\r\nhost: y\r\n", line=b"GET /t HTTP/1.1", host=False)),
    reject("dup-authorization", req(b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n",
                                    line=b"GET /t HTTP/1.1")),
    reject("dup-authorization-same", req(b"Authorization: Basic YTpi\r\nauthorization: Basic YTpi\r\n",
                                         line=b"GET /t HTTP/1.1")),
    reject("dup-expect", req(b"Expect: 100-continue\r\nExpect: 100-continue\r\n" + cl(3), b"abc")),
    reject("dup-content-range", req(b"Content-Range: bytes 0-2/3\r\nContent-Range: bytes 0-2/3\r\n" + cl(3),
                                    b"abc")),
    reject("dup-if-modified-since", req(b"If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n" * 2,
                                        line=b"GET /t HTTP/1.1")),
    reject("dup-if-unmodified-since", req(b"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n" * 2,
                                          line=b"GET /t HTTP/1.1")),
    reject("dup-if-match", req(b'If-Match: "a"\r\nIf-Match: "b"\r\n', line=b"GET /t HTTP/1.1")),
    reject("dup-if-none-match", req(b'If-None-Match: "a"\r\nIf-None-Match: "b"\r\n', line=b"GET /t HTTP/1.1")),
    reject("dup-if-range", req(b'If-Range: "a"\r\nIf-Range: "a"\r\n', line=b"GET /t HTTP/1.1")),
    # a field dropped for its name does not count (NGINX: ignore_invalid_headers)
    forward("dup-authorization-underscore", req(b"Authorization: Bearer a\r\nAuthorization_: x\r\n",
                                                line=b"GET /t HTTP/1.1"),
            Up("GET", present=(("Authorization", "Bearer a"),), absent=("Authorization_",))),
    # fields NGINX lets repeat are forwarded as they came
    forward("dup-allowed", req(b"Cookie: a=1\r\nCookie: b=2\r\nAccept: a/b\r\nAccept: c/d\r\n"
                               b"User-Agent: a\r\nUser-Agent: b\r\nRange: bytes=0-1\r\nRange: bytes=0-1\r\n",
                               line=b"GET /t HTTP/1.1"), Up("GET")),

    # -- RFC 9112 3: the request line.
    reject("line-method-bad-char", req(line=b"G(T /t HTTP/1.1")),
    reject("line-method-lowercase", req(line=b"get /t HTTP/1.1")),
    reject("line-method-nul", req(line=b"\x00GET /t HTTP/1.1")),
    # RFC 9110 9.1: methods are extensible; a gateway forwards one it does
    # not know (as NGINX does), or at least answers 501, not 400
    # An extension method llhttp does not know: 501 (RFC 9110 15.6.2), not
    # a 400 for a well-formed line. NGINX forwards it.
    reject("line-method-extension", req(line=b"FROBNICATE /t HTTP/1.1"), 501,
           only="NGINX forwards methods it does not know; portvakt answers 501"),
    # CONNECT needs authority-form (RFC 9112 3.2.3); a gateway must not
    # pass CONNECT on to an upstream as if it were an ordinary request
    reject("line-connect-authority", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"),
    reject("line-connect-origin-form", req(line=b"CONNECT /t HTTP/1.1"),
           nginx=nginx_says(405, "NGINX refuses CONNECT with 405")),
    # no version: HTTP/0.9, as NGINX serves it. GET only; no fields are read
    # (what follows the line is ignored) and the answer is the body alone,
    # then the connection closes. Other methods get a 400 page, headless.
    forward("line-version-missing", req(line=b"GET /t"), Up("GET"), http09=True),
    forward("line-09-alone", b"GET /t\r\n", Up("GET"), http09=True),
    forward("line-09-trailing-spaces", b"GET /t  \r\n", Up("GET"), http09=True),
    forward("line-09-absolute", b"GET http://x/t\r\n", Up("GET"), http09=True),
    reject("line-09-post", req(cl(len(HIDDEN)), HIDDEN, line=b"POST /t"), http09=True),
    reject("line-09-head", b"HEAD /t\r\n", http09=True),
    reject("line-09-unknown-method", b"FOO /t\r\n", http09=True),
    forward("line-09-bare-lf", b"GET /t\n", Up("GET"), http09=True),
    # a control character in the target is a malformed line, answered with a head
    reject("line-09-target-ctl", b"GET /t\x01\r\n"),
    reject("line-09-no-target", b"GET\r\n"),
    # RFC 9110 2.5: a higher minor version of HTTP/1 is processed as 1.1
    forward("line-version-1.2", req(line=b"GET /t HTTP/1.2"), Up("GET")),
    reject("line-version-2.0", req(line=b"GET /t HTTP/2.0"), 505),
    reject("line-version-3.0", req(line=b"GET /t HTTP/3.0"), 505),
    reject("line-version-0.9", req(line=b"GET /t HTTP/0.9")),
    reject("line-version-two-digits", req(line=b"GET /t HTTP/10.1"),
           nginx=nginx_says(505, "NGINX parses multi-digit versions and answers 505")),
    reject("line-version-lowercase", req(line=b"GET /t http/1.1")),
    reject("line-version-trailing-space", req(line=b"GET /t HTTP/1.1 "),
           nginx=nginx_says(200, "NGINX ignores whitespace after the version (RFC 9112 3 allows it)",
                            action=NORMALISE, up=Up("GET"))),
    reject("line-h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    reject("line-asterisk-get", req(line=b"GET * HTTP/1.1")),
    reject("line-target-space", req(line=b"GET /a b HTTP/1.1")),
    reject("line-target-tab", req(line=b"GET /a\tHTTP/1.1 HTTP/1.1")),
    reject("line-target-ctl", req(line=b"GET /a\x01b HTTP/1.1")),
    reject("line-bare-cr", b"GET /t HTTP/1.1\rHost: x\r\n\r\n"),
    reject("line-cr-before-crlf", b"GET /t HTTP/1.1\r\r\nHost: x\r\n\r\n"),
    # absolute-form with a bad host: the authority is checked
    reject("line-absolute-host-space", req(line=b"GET http://a%20b/t HTTP/1.1")),
    reject("line-absolute-host-underscore", req(line=b"GET http://a_b/t HTTP/1.1")),
    reject("line-absolute-host-empty", req(line=b"GET http:///t HTTP/1.1")),
    reject("line-absolute-host-bad-port", req(line=b"GET http://x:abc/t HTTP/1.1")),
    reject("line-absolute-host-ipv6-open", req(line=b"GET http://[::1/t HTTP/1.1")),
    reject("line-absolute-host-backslash", req(line=b"GET http://x\\y/t HTTP/1.1")),
    # RFC 9110 4.2.4: userinfo in an http URI is to be treated as an error
    reject("line-absolute-userinfo", req(line=b"GET http://u:p@x/t HTTP/1.1")),
    reject("line-absolute-no-slashes", req(line=b"GET http:x/t HTTP/1.1")),
    # RFC 9112 2.2: empty lines before the request line SHOULD be ignored
    normalise("line-leading-crlf", b"\r\n" + req(line=b"GET /t HTTP/1.1"), Up("GET")),
    normalise("line-leading-lf", b"\n\n" + req(line=b"GET /t HTTP/1.1"), Up("GET")),
    # RFC 9112 2.2: a recipient MAY take a bare LF as a line end, and NGINX
    # does: in the request line, the fields, the blank line, or all of
    # them. The upstream gets a CRLF head; the body is left as it came.
    normalise("lf-request-line", b"GET /t HTTP/1.1\n" + HOST + b"X-A: b\r\n\r\n",
              Up("GET", present=(("x-a", "b"),))),
    normalise("lf-fields", b"GET /t HTTP/1.1\r\nHost: x\nX-A: b\n\r\n", Up("GET", present=(("x-a", "b"),))),
    normalise("lf-head-end", b"GET /t HTTP/1.1\r\n" + HOST + b"X-A: b\r\n\n", Up("GET", present=(("x-a", "b"),))),
    normalise("lf-all", b"GET /t HTTP/1.1\nHost: x\nX-A: b\n\n", Up("GET", present=(("x-a", "b"),))),
    normalise("lf-mixed", b"GET /t HTTP/1.1\nHost: x\r\nX-A: b\n\r\n", Up("GET", present=(("x-a", "b"),))),
    normalise("lf-body", b"POST /t HTTP/1.1\nHost: x\nContent-Length: 7\n\na\nb\r\n\n\n",
              Up(body=b"a\nb\r\n\n\n")),
    normalise("lf-body-chunked", b"POST /t HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n" + b"4\r\na\n\nb\r\n0\r\n\r\n",
              Up(body=b"a\n\nb")),
    # bare CR, obs-fold and a bare LF in chunked framing stay refused
    reject("lf-bare-cr-value", b"GET /t HTTP/1.1\nHost: x\nX-A: a\rb\n\n"),
    reject("lf-obs-fold", b"GET /t HTTP/1.1\nHost: x\nX-A: a\n b\n\n"),
    reject("lf-chunked-framing", b"POST /t HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
           only=PV_LF),
    # RFC 9112 3: recipients MAY split the request line on runs of spaces
    normalise("line-double-space", req(line=b"GET  /t HTTP/1.1"), Up("GET")),
    # GET/HEAD with a body: unusual semantics, unambiguous framing
    forward("line-get-with-body", req(cl(3), b"abc", line=b"GET /t HTTP/1.1"), Up("GET", body=b"abc")),
    forward("line-head-with-body", req(cl(3), b"abc", line=b"HEAD /t HTTP/1.1"), Up("HEAD", body=b"abc")),
]


# ---------------------------------------------------------------- corpus
#
# http-desync-guardian (aws/http-desync-guardian tests/, Apache-2.0) lists
# requests as method, uri, version and headers with a verdict: Compliant,
# Acceptable (deviations without desync risk), Ambiguous (framing unclear:
# reject, or close both sides after the response) and Severe (reject).
# Every case is a request, so every case is used.
#
# Translation to bytes: "METHOD URI VERSION" (no version: "METHOD URI", an
# HTTP/0.9 line); "Host: x" is added first unless the case has a Host, so
# a case is not just "400, missing Host"; each header is "name: value" (no
# extra space when the value starts with SP/HTAB); text is encoded as
# latin-1 when it fits ("\x88" is the single byte 0x88, as the corpus
# means) and UTF-8 otherwise. The body depends on the expectation: the
# exact body the accepted framing announces (chunked "hello", or as many
# bytes as Content-Length says), nothing when there is no framing, and
# for rejected cases HIDDEN (a chunked end followed by GET /smuggled).
#
# Verdict to expectation: the corpus judges a proxy's safety; the table
# below says what this gateway must answer, case by case:
#   Severe      reject (400; 501 for a transfer coding it does not know)
#   Ambiguous   reject, or normalise where the framing is in fact clear
#               (a GET/HEAD with a body, fields that are valid tokens but
#               only look like framing fields -- those must be dropped)
#   Acceptable  reject where an RFC says so (whitespace before a colon,
#               control characters, HTTP/0.9), else normalise
#   Compliant   forward, except transfer codings the gateway does not
#               implement (gzip, deflate, ...: 501) and an empty target
#               (not a valid request-target: 400)

CORPUS_DIR = os.environ.get("PV_DESYNC_CORPUS", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "fixtures", "http-desync-guardian"))


def x(expect, nginx=None, only=None, defect=None, http09=False, target=None):
    """One corpus expectation: 400/413/501 (reject), "fwd" or "norm";
    http09 when the line has no version (the answer has no head); target
    when the upstream sees another one than the case's uri."""
    return dict(expect=expect, nginx=nginx, only=only, defect=defect, http09=http09, target=target)


# nginx= for the corpus: (expect, why)
NG_CTL_TE = (501, NG_TE_501 + "; it does not look at control characters first")
NG_DROP = ("norm", NG_DROPS)

CORPUS_EXPECT = {
    "acceptable.yaml": [
        x(400),  # 0 space before colon in a name: RFC 9112 5.1 MUST 400
        x(400),  # 1 same, with TE
        x(400),  # 2 \x01 in a name: not a token
        x(400),  # 3 space before colon, with CL
        x("norm"),  # 4 GET with Content-Length: 0
        x("norm"),  # 5 HEAD with Content-Length: 0
        x(400),  # 6 HTTP/0.9 with a version string
        x("fwd", http09=True),  # 7 no version: HTTP/0.9, served as NGINX does
        x("norm"),  # 8 HTTP/1.2 is served as HTTP/1.1 (RFC 9110 2.5)
    ],
    "ambiguous.yaml": [
        x(400),  # 0 "Transfer-Encoding " (space before colon)
        x(400),  # 1 "Transfer-Encoding\t"
        x(400),  # 2 \x01 before the name
        x(400),  # 3 \x01\x01 before the name
        x(400),  # 4 \x01\x01Content-Length
        x(400),  # 5 \x01Content-Length
        x(400),  # 6 "Transfer- Encoding"
        x("norm"),  # 7 Transfer_Encoding: must not reach the upstream
        x("norm"),  # 8 Content_Length: must not reach the upstream
        x(400),  # 9 duplicate Content-Length
        x(400),  # 10 TE chunked and CL
        x(400, nginx=(501, NG_TE_501)),  # 11 TE gzip and CL
        x("norm"),  # 12 GET with CL 1000: the body is forwarded
        x("norm"),  # 13 GET with TE chunked
        x("norm"),  # 14 HEAD with CL 1000
        x("norm"),  # 15 HEAD with TE chunked
        x(400),  # 16 "Transfer-Encoding " and CL
        x(400),  # 17 " Transfer-Encoding" (leading space: obs-fold of the line before)
        x(400),  # 18 same for both fields
        x(400),  # 19 trailing spaces on both names
        x(400),  # 20 empty name
        x(400),  # 21 name starting with ":"
        x(400),  # 22 whitespace-only name
        x(400),  # 23 TE on HTTP/1.0
        x(400),  # 24 TE on HTTP/0.9
        x(400),  # 25 CL on HTTP/0.9
        x(400, http09=True),  # 26 POST, TE, no version: HTTP/0.9 is GET only
        x(400, http09=True),  # 27 POST, CL, no version
        x(400, nginx=NG_DROP),  # 28 Tran\u017ffer-Encoding (long s): not a token
        x(400, nginx=NG_DROP),  # 29 dotless i: not a token
        x("norm"),  # 30 Transfer---Encoding: a valid, unrelated token
        x("norm"),  # 31 Transfer___Encoding: valid token, folds to nothing we know
        x(400),  # 32 UTF-8 spaces before the name
        x(400),  # 33 UTF-8 spaces after Content-Length
        x(400, nginx=NG_DROP),  # 34 UTF-8 dash in the name
        x(400, nginx=NG_DROP),  # 35 \x88 after the name
        x(400, nginx=NG_DROP),  # 36 \xa0 before Content-Length
    ],
    "bad-header-characters.yaml": [
        x(400),  # 0 \x01Transfer-Encoding
        x(400, nginx=NG_CTL_TE),  # 1 TE: \x01chunked
        x(400, nginx=NG_CTL_TE),  # 2 TE: chunked\x01
        x(501),  # 3 TE: \xa0chunked: obs-text is allowed, the coding is unknown
        x(501),  # 4 TE: chunked\xa0
        x(400),  # 5 Transfer-Encoding\x01
        x(400),  # 6 \x01Content-Length
        x(400),  # 7 Content-Length\x01
        x(400),  # 8 CL: \x011000
        x(400),  # 9 CL: 1000\x01
        x(400),  # 10 CL: 1000\xa0
        x(400),  # 11 name with \x01, then TE
        x(400),  # 12 \x01 before a name, then TE
        x(400, only=PV_CTL),  # 13 \x01 at the start of a value
        x(400, only=PV_CTL),  # 14 \x01 at the end of a value
    ],
    "edge-cases.yaml": [
        x(400),  # 0 bad custom value does not hide a bad CL
        x(400, nginx=NG_CTL_TE),  # 1 ... nor a bad TE (chunked\x7f)
        x(400),  # 2 tab before colon and NUL in a value
        x(400, only=PV_CTL),  # 3 GET with TE and \x01 in another value
        x(400, only=PV_CTL),  # 4 HEAD with CL and \x01 in another value
        x(400),  # 5 TE chunked\x80 and CL $9000
        x(400),  # 6 same with a backslash in the target
        x(400, only=PV_CTL),  # 7 GET with CL and \x01 in another value
    ],
    "more-compliant-tests.yaml": [
        x("fwd"),  # 0 PUT with CL 22220
        x("fwd"),  # 1 many fields
        x("fwd"),  # 2 PUT with TE chunked
        x("fwd"),  # 3 POST with a query, TE chunked
        x("fwd"),  # 4 POST with CL 5
        x(501),  # 5 TE gzip, chunked: gzip is not implemented (RFC 9112 6.1: 501)
        x("fwd"),  # 6 CL 4000000 and "X-test: Transfer-Encoding: chunked" as a value
        x(501),  # 7 TE deflate, identity, chunked
        x(400),  # 8 five TE fields
        x(501),  # 9 TE chunked;custom_param; (a parameter on chunked)
    ],
    "real-life-test-cases.yaml": [
        x("norm"),  # 0 GET with CL 22
        x("norm"),  # 1 GET with TE chunked
        x(400),  # 2 HTTP/1.0 with TE
        x(400),  # 3 two identical CL fields
        x(400),  # 4 two TE chunked fields and CL
        x(400),  # 5 CL and TE
        x(400),  # 6 NUL in a value
        x(400),  # 7 \x00Transfer-Encoding
        x(400),  # 8 bare CR inside a value
        x(400),  # 9 "Transfer-Encoding\t"
        x(400),  # 10 line starting with CR: \rTransfer-Encoding, CL
        x(400),  # 11 \rTransfer-Encoding alone
        x(400),  # 12 \rContent-Length and Content-Length
        x(400, nginx=(501, NG_TE_501)),  # 13 TE chunk and CL
        x(400, nginx=(501, NG_TE_501)),  # 14 TE deflate and CL
        x(400, nginx=(501, NG_TE_501)),  # 15 TE xchunked and CL
        x(400),  # 16 five TE fields and CL
        x(400, nginx=(501, NG_TE_501)),  # 17 TE with params and CL
        x(501),  # 18 TE chunked,chunked and CL
        x(400),  # 19 mixed-case TE and CL
        x(400),  # 20 TE chunked, TE cow and CL
        x(400),  # 21 \x00Transfer-Encoding
        x(400),  # 22 TE: \x00chunked
        x(400),  # 23 mixed-case TE and CL 6
    ],
    "rfc-compliant.yaml": [
        x("fwd"),  # 0 no fields
        x("fwd"),  # 1 TE chunked
        x("fwd"),  # 2 CL 1000
        x("fwd"),  # 3 obs-text and tabs in a value
        x("fwd"),  # 4 every tchar in a name
        x("fwd"),  # 5 underscores in a name (NGINX drops the field; not asserted)
        x("fwd"),  # 6 dots in a name
        x("fwd"),  # 7 digits in a name
        x(400),  # 8 five TE fields ending in chunked: gzip not implemented
        x(501),  # 9 the same as one list
        x(400),  # 10 codings with parameters
        x("fwd"),  # 11 odd but accepted characters in the target
        x("fwd"),  # 12 raw UTF-8 in the target
        x(400),  # 13 empty target: not a request-target
    ],
    "severe.yaml": [
        x(400),  # 0 two different CL
        x(400),  # 1 CL 1000,1000
        x(400),  # 2 CL 1000 1000
        x(400),  # 3 CL 1000.1000
        x(400),  # 4 CL beyond 2^64
        x(501),  # 5 TE xchunked
        x(400, nginx=NG_CTL_TE),  # 6 TE chunked\x11
        x(400),  # 7 CL 1000\x11
        x(400),  # 8 two TE chunked fields
        x(501),  # 9 TE chunked,chunked
        x(400),  # 10 obs-fold hiding a TE
        x(400),  # 11 the same with bare LF
        x(400),  # 12 bare CR in a value
        x(400),  # 13 bare LF in a value
        x(400),  # 14 CR in a name
        x(400),  # 15 LF in a name, hiding CL and TE
        x(400),  # 16 NUL in a name
        x(400),  # 17 CR in a value hiding a CL
        x(400),  # 18 LF in a value hiding a CL
        x(400),  # 19 NUL in a value
        x(400),  # 20 NUL at the start of a line
        x(400),  # 21 NUL at the start of a value
        x(400),  # 22 NUL at the end of a value
        x(400),  # 23 "Content-Length " and Content-Length
        x(400),  # 24 " Content-Length" and Content-Length
        x(400),  # 25 "Transfer-Encoding " and Transfer-Encoding
        x(400),  # 26 method bad_method (lowercase, underscore)
    ],
    "single-case.yaml": [
        x(400),  # 0 TE chunked and CL
    ],
    "uri-specific-test-cases.yaml": [
        x(400),  # 0 tab in the target
        x(400, nginx=("norm", "NGINX ignores whitespace after the version (RFC 9112 3 allows it)")),  # 1
        x(400),  # 2 \x01 in the target
        x(400),  # 3 space in the target
        x(400),  # 4 two versions
        x(400),  # 5 CR in the target
        x("fwd", http09=True, target="/endpoint_a"),  # 6 LF in the target: the line before it is HTTP/0.9
        x(400),  # 7 a whole request hidden in the target
        x(400),  # 8 NUL in the target
        x(400),  # 9 NUL at the start of the target
        x("fwd"),  # 10 %09
        x("fwd"),  # 11 %20
        x("fwd"),  # 12 %0D
        x("fwd"),  # 13 %0A
    ],
}


def _enc(v):
    s = str(v)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def _framing(case):
    """The body the accepted reading of a corpus case announces:
    ("chunked", None), ("length", n) or ("none", None). Only accepted
    cases use it, and none of those has both framings or a bad length."""
    for h in case.get("headers") or []:
        name = str(h["name"]).lower()
        if name == "transfer-encoding":
            return "chunked", None
        if name == "content-length" and str(h["value"]).strip().isdigit():
            return "length", int(str(h["value"]).strip())
    return "none", None


def _corpus_head(case):
    line = _enc(case["method"]) + b" " + _enc(case["uri"])
    if case["version"]:
        line += b" " + _enc(case["version"])
    out = line + b"\r\n"
    headers = case.get("headers") or []
    if not any(str(h["name"]).lower() == "host" for h in headers):
        out += HOST
    for h in headers:
        v = _enc(h["value"])
        out += _enc(h["name"]) + (b":" if v[:1] in (b" ", b"\t") else b": ") + v + b"\r\n"
    return out + b"\r\n"


def _corpus_case(fname, index, case, ex):
    head = _corpus_head(case)
    kind, n = _framing(case)

    def body():
        return {"chunked": b"5\r\nhello\r\n0\r\n\r\n", "length": b"x" * (n or 0), "none": b""}[kind]

    decoded = b"hello" if kind == "chunked" else b""
    if kind == "length" and n <= 8 << 20:
        decoded = body()
    up = Up(str(case["method"]), ex["target"] or _enc(case["uri"]).decode("latin-1"), decoded)

    def data(e):
        return head + (HIDDEN if e.action == REJECT else body())

    def action_of(v):
        if v == "fwd":
            return 200, FORWARD
        if v == "norm":
            return 200, NORMALISE
        return v, REJECT

    status, action = action_of(ex["expect"])
    nginx = None
    if ex["nginx"]:
        nst, nact = action_of(ex["nginx"][0])
        nginx = dict(status=nst, action=nact, why=ex["nginx"][1])
    cid = "corpus-%s-%d" % (fname[:-5], index)
    return Case(cid, data, status, action, up=up, nginx=nginx, only=ex["only"],
                defect=ex["defect"], group="corpus-" + case["expected"]["tier"].lower(),
                method=str(case["method"]), http09=ex["http09"])


def corpus_cases():
    """Every case of the corpus with its expectation, or None when the
    corpus is not on this machine. Fails if the table and the corpus do
    not line up (a changed corpus must be looked at, not half-used)."""
    if not os.path.isdir(CORPUS_DIR):
        return None
    import yaml
    out = []
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CORPUS_DIR, "*.yaml")))
    if sorted(CORPUS_EXPECT) != files:
        raise AssertionError("corpus files %s != table %s" % (files, sorted(CORPUS_EXPECT)))
    for fname in files:
        with open(os.path.join(CORPUS_DIR, fname), encoding="utf-8") as f:
            cases = yaml.safe_load(f)
        table = CORPUS_EXPECT[fname]
        if len(cases) != len(table):
            raise AssertionError("%s has %d cases, the table %d" % (fname, len(cases), len(table)))
        for i, (case, ex) in enumerate(zip(cases, table)):
            out.append(_corpus_case(fname, i, case, ex))
    return out
