/* The SSI command parser: NGINX's grammar of `<!--# command name="value"
 * ... -->` read from a response body stream in pieces of any size. A
 * command may be split across pieces at any byte; memory is bounded (the
 * parser's own fields and a value area of PV_SSI_PARAMS_MAX + 1 values of
 * at most value_len bytes each, ssi_value_length). Text outside commands
 * is handed back as spans into the input, or into a constant for the
 * bytes of a "<!--" held back at the end of a piece that turned out not to
 * start a command: nothing is copied. */
#ifndef PV_SSI_PARSE_H
#define PV_SSI_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "../core/common.h"

#define PV_SSI_COMMAND_LEN 32 /* longest command name */
#define PV_SSI_PARAM_LEN 32   /* longest parameter name */
#define PV_SSI_PARAMS_MAX 16  /* parameters a command may have */

typedef struct pv_ssi_param_s {
    char name[PV_SSI_PARAM_LEN + 1];
    uint8_t nlen;
    uint32_t vlen; /* the value is at pv_ssi_value() */
} pv_ssi_param_t;

typedef struct pv_ssi_parser_s {
    uint8_t state;
    uint8_t saved_state;   /* the quoted value a backslash was seen in */
    uint8_t looked;        /* bytes of "<!--" matched so far */
    uint8_t held;          /* of them, bytes from earlier pieces (not in the input) */
    uint8_t too_many;      /* more than PV_SSI_PARAMS_MAX parameters */
    uint8_t cmdlen;
    char cmd[PV_SSI_COMMAND_LEN + 1];
    int nparams;           /* parameters stored (at most PV_SSI_PARAMS_MAX) */
    pv_ssi_param_t params[PV_SSI_PARAMS_MAX + 1];
    size_t value_len;      /* longest value (ssi_value_length) */
    char *vbuf;            /* (PV_SSI_PARAMS_MAX + 1) * value_len bytes, the caller's */
} pv_ssi_parser_t;

/* What pv_ssi_parse() found. */
#define PV_SSI_AGAIN 0   /* the input is used up; text spans (if any) are given */
#define PV_SSI_COMMAND 1 /* a command ended: cmd, params; text before it given */
#define PV_SSI_BAD 2     /* a malformed command ended (its "-->" was read): the error message goes here */

/* Start p; vbuf must hold pv_ssi_vbuf_size(value_len) bytes. */
void pv_ssi_init(pv_ssi_parser_t *p, size_t value_len, char *vbuf);
size_t pv_ssi_vbuf_size(size_t value_len);
/* Parse in[0..len): stops after a command (or a malformed one) ends, or
 * at the end of the input. Sets *used to the bytes consumed and text[0..
 * *ntext) (at most 2 spans) to the text that precedes, in order. A
 * command's parameters stay valid until the next call. */
int pv_ssi_parse(pv_ssi_parser_t *p, const char *in, size_t len, size_t *used, pv_str_t text[2], int *ntext);
/* The value of parameter i of the last command. */
pv_str_t pv_ssi_value(const pv_ssi_parser_t *p, int i);
/* Whether bytes are held: a "<!--" or a command not ended yet. At the
 * end of the stream NGINX outputs nothing of them, nor does the filter. */
int pv_ssi_pending(const pv_ssi_parser_t *p);

/* A parameter's value evaluated as NGINX evaluates it: "$name" and
 * "${name}" (letters, digits, '_') replaced by the variable's value
 * (nothing when it has none), a backslash before \ ' " or $ taking that
 * character, any other kept with its backslash. With PV_SSI_ADD_PREFIX a
 * value that does not start with '/' is taken relative to the directory
 * of base (the including page's URI: include virtual=). lookup answers 1
 * with the value of the variable named (compared without case), 0 when
 * it has none. */
#define PV_SSI_ADD_PREFIX 1
typedef int (*pv_ssi_lookup_cb)(void *ctx, pv_str_t name, pv_str_t *val);
/* Write the value of text into out (at most cap bytes; out NULL: only
 * measure). Returns its length, PV_SSI_EVAL_BAD for an invalid variable
 * name or a missing '}', PV_SSI_EVAL_LONG when it does not fit cap. */
#define PV_SSI_EVAL_BAD (-1)
#define PV_SSI_EVAL_LONG (-2)
ssize_t pv_ssi_eval(pv_str_t text, int flags, pv_str_t base, pv_ssi_lookup_cb lookup, void *ctx, char *out,
                    size_t cap);

/* An `if` or `elif` expr, split as NGINX splits it: the left operand
 * (letters, digits, '$', '{', '}', '_' and quotes; its capitals made
 * small in place), then nothing, or "=" / "!=" and the right operand, a
 * regular expression when between slashes ("\\/" starts a plain one
 * with '/'). Both operands are evaluated with pv_ssi_eval() (no flags)
 * by the caller. */
#define PV_SSI_IF_TEST 0 /* true when the left operand is not empty */
#define PV_SSI_IF_EQ 1
#define PV_SSI_IF_NE 2
typedef struct pv_ssi_if_s {
    pv_str_t left, right;
    uint8_t op;    /* PV_SSI_IF_* */
    uint8_t regex; /* right is a regular expression */
} pv_ssi_if_t;
/* PV_OK, or PV_ERR for an invalid expression. */
int pv_ssi_if_split(char *expr, size_t len, pv_ssi_if_t *out);

#endif
