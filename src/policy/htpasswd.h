/* HTTP Basic authentication (auth_basic_user_file): the password file
 * NGINX reads, and the "Authorization: Basic" credentials.
 *
 * File format, as NGINX's: one "user:password-hash[:comment]" per line;
 * lines starting with '#' and blank lines are skipped; CRLF is accepted.
 * Stricter than NGINX, so mistakes show at load instead of as 401s: a
 * line without ':', an empty user, a user listed twice, or a hash in a
 * format not listed below is a load error "... in FILE:LINE".
 *
 * Hashes: bcrypt "$2y$" "$2b$" "$2a$", SHA-512 crypt "$6$", SHA-256 crypt
 * "$5$", yescrypt "$y$", MD5 crypt "$1$" (all through libcrypt's crypt_rn),
 * Apache MD5 "$apr1$" (computed here with OpenSSL's MD5), "{SHA}"
 * base64(SHA-1), "{SSHA}" base64(SHA-1(password salt) salt) and "{PLAIN}".
 * Every comparison is constant-time. Traditional DES crypt is refused:
 * it silently ignores all but the first 8 password bytes.
 *
 * Cost: bcrypt, SHA-crypt and yescrypt are slow on purpose (tens to
 * hundreds of milliseconds at common costs). A caller on an event loop
 * should run pv_htpasswd_check off the loop or keep a small cache of
 * recent successes keyed by a keyed hash of (user, password); this module
 * keeps no such cache itself. bcrypt only reads the first 72 password
 * bytes (a property of the algorithm). */
#ifndef PV_HTPASSWD_H
#define PV_HTPASSWD_H

#include "../core/common.h"

#define PV_HTPASSWD_FILE_MAX (64u << 20) /* largest password file accepted */
#define PV_HTPASSWD_PASS_MAX 4096         /* longest password checked */

/* A loaded password file: immutable, shareable between workers. Opaque. */
typedef struct pv_htpasswd_s pv_htpasswd_t;

/* Load a password file. NULL on error with a message in err:
 * `open() "F" failed (...)`, or "... in F:LINE". */
pv_htpasswd_t *pv_htpasswd_load(const char *path, char *err, size_t errlen);

/* Load a password file as NGINX reads it per request: lines that cannot
 * be taken are skipped (no ':', an empty user, a user already listed:
 * the first line counts), a hash in a format refused or unknown above
 * never matches. NULL only when the file cannot be read (err). */
pv_htpasswd_t *pv_htpasswd_load_lenient(const char *path, char *err, size_t errlen);

/* Load from memory; name stands for the file in messages. */
pv_htpasswd_t *pv_htpasswd_load_text(const char *text, size_t len, const char *name, char *err,
                                     size_t errlen);

/* Release a loaded file (NULL is fine); stored hashes are wiped. */
void pv_htpasswd_free(pv_htpasswd_t *h);

/* Number of users. */
size_t pv_htpasswd_count(const pv_htpasswd_t *h);

/* PV_OK if user is in the file and password matches its hash, else
 * PV_ERR (unknown user, wrong password, or a password containing a NUL
 * byte or longer than PV_HTPASSWD_PASS_MAX). */
int pv_htpasswd_check(const pv_htpasswd_t *h, pv_str_t user, pv_str_t password);

/* Check one password against one hash in any of the formats above:
 * PV_OK on a match, PV_ERR otherwise (also for an unknown format). */
int pv_htpasswd_verify(pv_str_t hash, pv_str_t password);

/* Parse an Authorization header value "Basic <base64(user:password)>"
 * (scheme in any case, RFC 7617). The credentials are decoded into
 * buf[0..cap); user is what precedes the first ':' and must not be empty,
 * password what follows; neither may hold control characters. Base64 is
 * the standard alphabet, padded or not, with no stray bits. PV_OK or
 * PV_ERR (also when buf is too small: 3/4 of the base64 length
 * suffices). */
int pv_htpasswd_basic_parse(pv_str_t value, char *buf, size_t cap, pv_str_t *user, pv_str_t *password);

#endif
