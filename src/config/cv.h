/* Compiled values ("complex values" in NGINX's terms), the part of the
 * variables that belongs to the config language. A string such as
 * "$remote_addr, $http_x_real_ip" is compiled once at config load into
 * literal and variable parts; a variable part points at its entry in a
 * table of getters, so evaluating it per request (http/vars.h) is one
 * indirect call.
 *
 * The config knows no variable by name: the tables are handed to it with
 * pv_cv_vars() before any config is loaded, as NGINX's http core module
 * adds its variables before the configuration is parsed. Until then every
 * name is unknown and compiling it fails. */
#ifndef PV_CV_H
#define PV_CV_H

#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/common.h"

struct pv_request_s;
typedef struct pv_var_s pv_var_t;

/* escaping applied to variable values when evaluating (log_format escape=) */
enum { PV_ESCAPE_NONE = 0, PV_ESCAPE_DEFAULT, PV_ESCAPE_JSON };
/* OR-ed into pv_cv_eval()'s escape: the client address variables give
 * their anonymised forms (log_anonymize). */
#define PV_CV_ANON 0x100

/* One piece of a compiled value. */
typedef struct pv_cv_part_s {
    const pv_var_t *var; /* NULL for a literal */
    pv_str_t text;       /* literal text; for a prefixed variable the rest of
                            its name ("x-real-ip" for $http_x_real_ip:
                            lowercase, '_' already turned to '-' in header
                            names); for a declared one its name */
    int index;           /* a user variable's slot (set, map, named
                            captures); a capture's number for $1..$9 */
} pv_cv_part_t;

typedef struct pv_cv_s {
    pv_cv_part_t *parts; /* in order */
    int nparts;
    int is_const;        /* no variables: parts[0].text is the whole value */
} pv_cv_t;

/* Output cursor of an evaluation: writes what fits, counts everything
 * (snprintf-style), escapes variable values. */
typedef struct pv_var_out_s {
    char *out;         /* destination */
    size_t cap;        /* its size */
    size_t len;        /* bytes the value needs so far */
    int escape;        /* PV_ESCAPE_* applied to variable values */
    int anon;          /* client addresses anonymised (log_anonymize) */
    char *scratch;     /* room for a value the getter formats (>= 64 bytes) */
    size_t scratchlen; /* its size */
} pv_var_out_t;

/* What a getter returns. NGINX tells "not found" from "found but empty":
 * the access log prints "-" for the first only, and only with the default
 * escaping (escape=json and escape=none print nothing). */
enum {
    PV_VAL_MISSING = 0, /* not found */
    PV_VAL_FOUND,       /* found; the value is the slice *v */
    PV_VAL_WRITTEN      /* found; made of pieces written with pv_var_put() */
};

/* A variable's value for request r. A slice may point into the request or
 * into o->scratch; a getter that writes through o leaves scratch alone
 * (pv_var_get() passes the same buffer as both). */
typedef int (*pv_var_get_pt)(struct pv_request_s *r, const pv_cv_part_t *part, pv_var_out_t *o,
                             pv_str_t *v);

/* PV_VAR_F_*: what compiling and the config need to know of a variable. */
#define PV_VAR_F_PREFIX 0x1 /* name is a prefix; the rest becomes part->text */
#define PV_VAR_F_HEADER 0x2 /* the rest is a header name: '_' becomes '-' */
#define PV_VAR_F_LATE 0x4   /* known only after authentication ($consumer) */
#define PV_VAR_F_NUMBER 0x8 /* a number: null under escape=json when not found */
#define PV_VAR_F_PLAIN 0x10 /* its values are printable ASCII no escaping changes: copied as they are */
#define PV_VAR_F_UPSTREAM 0x20 /* reads the upstream response's fields ($upstream_http_, $upstream_cookie_) */
/* Set once a value names a PV_VAR_F_UPSTREAM variable: the proxy then
 * keeps each proxied response's fields for the rest of the request. */
extern int pv_cv_upstream_fields;

/* One variable. Adding a variable is one entry in a table (http/vars.h)
 * plus its getter. */
struct pv_var_s {
    pv_str_t name;     /* lowercase name, or the prefix with PV_VAR_F_PREFIX */
    pv_var_get_pt get; /* its value */
    unsigned flags;    /* PV_VAR_F_* */
};

/* An entry of a table, and the entry that ends it. */
#define PV_VAR(name, get, flags) {{(name), sizeof(name) - 1}, (get), (flags)}
#define PV_VAR_END {{NULL, 0}, NULL, 0}

/* The entries the compiler hands out for names it makes itself: a name
 * pv_cv_declare() adds (auth_request_set), a user variable
 * (pv_cv_declare_user(): set, map, named captures; part->index is its
 * slot) and a positional capture $1..$9 (part->index is the number). */
typedef struct pv_cv_special_s {
    const pv_var_t *declared;
    const pv_var_t *user;
    const pv_var_t *capture;
} pv_cv_special_t;

/* Make the variables known to the compiler: tables is a NULL-terminated
 * list of tables, each ended by PV_VAR_END, searched in that order.
 * Replaces what an earlier call set, so calling it again is harmless;
 * once, before any config is loaded (the arrays must outlive every
 * snapshot). */
void pv_cv_vars(const pv_var_t *const *tables, const pv_cv_special_t *special);

/* The variable named low[0..n) (lowercase), or NULL. Exact names win over
 * prefixes; a prefix matches only with a non-empty rest, which goes to
 * *rest. A linear search, for config load only. */
const pv_var_t *pv_var_find(const char *low, size_t n, pv_str_t *rest);

/* Declare a variable name that directives such as auth_request_set
 * create, so pv_cv_compile() accepts it anywhere in the same config (NGINX
 * resolves variable names after the whole file is read). Cleared by
 * pv_cv_declared_reset(); config loading is single-threaded. */
void pv_cv_declare(const char *name, size_t len);
void pv_cv_declared_reset(void);
/* Declare a user variable (NGINX's ngx_http_add_variable: `set`, `map`, a
 * named capture); returns its slot, the same for the same name
 * (case-insensitive), or -1 when there are too many. Cleared with the
 * names above. */
int pv_cv_declare_user(const char *name, size_t len);
/* How many user variables are declared, and the name of slot i. */
int pv_cv_user_count(void);
const char *pv_cv_user_name(int i);
/* The slot of a declared user variable, or -1. */
int pv_cv_user_find(const char *name, size_t len);
/* Compile src into cv (allocating from arena). Recognises $name,
 * ${name} and, as NGINX's script compiler does, '$' and one digit 1-9 as
 * a regex capture ("$10" is capture 1 and a literal "0"). Unknown variables are an error: returns PV_ERR and writes a
 * message ("unknown \"foo\" variable") into err. */
int pv_cv_compile(pv_cv_t *cv, pv_arena_t *arena, const char *src, size_t len,
                  char *err, size_t errlen);

#endif
