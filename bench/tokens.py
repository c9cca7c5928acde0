"""JSON Web Tokens for the auth_jwt rows: a key set file and a signed token.

Each function is a contestant's setup hook: called with the run's working
directory (the proxy's cwd and its config's directory, so the config can
name `jwks.json` relatively), it writes the key set and returns the request
headers that wrk and the checks send. The tokens look like ordinary
access tokens (kid, iss, sub, aud, iat, exp), so the proxy parses and
checks as much as it would in production.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

KID = "k1"
KEY_SET = "jwks.json"
# 32 bytes: HS256 refuses keys shorter than its hash (RFC 7518 section 3.2).
HMAC_SECRET = b"portvakt-bench-hs256-secret-0123"


def b64url(data):
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_input(alg):
    header = {"alg": alg, "typ": "JWT", "kid": KID}
    now = int(time.time())
    claims = {"iss": "https://issuer.example", "sub": "bench-user", "aud": "portvakt",
              "iat": now, "exp": now + 86400}
    return "%s.%s" % (b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()))


def _write_key_set(workdir, key):
    with open(os.path.join(workdir, KEY_SET), "w") as f:
        json.dump({"keys": [dict(key, kid=KID)]}, f)


def _bearer(token):
    return ("Authorization: Bearer " + token,)


def hs256(workdir):
    """An HMAC key set and an HS256 token."""
    _write_key_set(workdir, {"kty": "oct", "alg": "HS256", "k": b64url(HMAC_SECRET)})
    signing_input = _signing_input("HS256")
    mac = hmac.new(HMAC_SECRET, signing_input.encode(), hashlib.sha256).digest()
    return _bearer(signing_input + "." + b64url(mac))


def _openssl(*args, data=None):
    return subprocess.run(("openssl",) + args, input=data, capture_output=True,
                          check=True).stdout


def rs256(workdir):
    """A fresh 2048-bit RSA key, its public half as the key set, and an
    RS256 token. 2048 bits: the smallest size portvakt accepts, and the
    most common one."""
    pem = os.path.join(workdir, "rs256.pem")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", pem)
    modulus = _openssl("rsa", "-in", pem, "-noout", "-modulus").decode()
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    # genpkey's default public exponent is 65537.
    _write_key_set(workdir, {"kty": "RSA", "alg": "RS256", "n": b64url(n),
                             "e": b64url((65537).to_bytes(3, "big"))})
    signing_input = _signing_input("RS256")
    signature = _openssl("dgst", "-sha256", "-sign", pem, data=signing_input.encode())
    return _bearer(signing_input + "." + b64url(signature))


def forged(headers):
    """The headers with the bearer token's signature altered in its first
    character (the last one may hold only padding bits), or None when
    there is no bearer token."""
    out, changed = [], False
    for h in headers:
        if h.startswith("Authorization: Bearer "):
            head, _, sig = h.rpartition(".")
            h = head + "." + ("B" if sig[0] == "A" else "A") + sig[1:]
            changed = True
        out.append(h)
    return tuple(out) if changed else None
