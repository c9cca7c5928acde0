/* Every directive in the code's directive tables (the module list of
 * directives.c) is documented in the README's directive reference: the
 * "## Directives" section, where a directive is named in the first cell
 * of a table row. The man page portvakt.conf(5) is made from that
 * section (scripts/manpage.py), so this also keeps the man page whole.
 * The test runs from the top of the tree (make unit); PV_README names
 * another file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/config/directives.c"

static char *readme;  /* the whole file */
static char *section; /* "## Directives" up to the next "## " heading */

static int setup(void **state)
{
    const char *path = getenv("PV_README") ? getenv("PV_README") : "README.md";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s: run from the top of the tree\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    readme = malloc((size_t)n + 1);
    if (!readme || fread(readme, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    readme[n] = '\0';
    fclose(f);
    section = strstr(readme, "\n## Directives\n");
    if (!section)
        return -1;
    section++;
    char *end = strstr(section + 3, "\n## ");
    if (end)
        end[1] = '\0';
    return 0;
}

static int teardown(void **state)
{
    free(readme);
    return 0;
}

/* Is NAME a whole word in the first cell of a table row of the section? */
static int documented(const char *name)
{
    size_t len = strlen(name);
    for (const char *ln = section; ln && *ln; ln = strchr(ln, '\n'), ln = ln ? ln + 1 : NULL) {
        const char *p = ln;
        while (*p == ' ')
            p++;
        if (*p != '|')
            continue;
        const char *cell = p + 1, *end = cell;
        while (*end && *end != '\n' && !(*end == '|' && end[-1] != '\\'))
            end++;
        for (const char *w = cell; w + len <= end; w++) {
            if (strncmp(w, name, len) != 0)
                continue;
            int before = w > cell && (isalnum((unsigned char)w[-1]) || w[-1] == '_');
            int after = isalnum((unsigned char)w[len]) || w[len] == '_';
            if (!before && !after)
                return 1;
        }
    }
    return 0;
}

static void every_directive_is_documented(void **state)
{
    int missing = 0, total = 0;
    for (size_t m = 0; m < PV_NELEM(modules); m++) {
        for (size_t i = 0; i < modules[m]->ncmds; i++) {
            total++;
            if (!documented(modules[m]->cmds[i].name)) {
                fprintf(stderr, "directive \"%s\" (module %s) is missing from the README's "
                        "directive reference\n", modules[m]->cmds[i].name, modules[m]->name);
                missing++;
            }
        }
    }
    assert_true(total > 50);
    assert_int_equal(missing, 0);
}

/* The check itself: a name only in prose, or only as part of a longer
 * name, is not documented. */
static void the_check_finds_gaps(void **state)
{
    assert_true(documented("proxy_pass"));
    assert_true(documented("worker_connections"));
    assert_false(documented("proxy"));
    assert_false(documented("no_such_directive_here"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_directive_is_documented),
        cmocka_unit_test(the_check_finds_gaps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
