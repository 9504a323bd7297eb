/* Unit tests for rawfields.c: buffers laid out as libmicrohttpd 0.9.75 leaves a parsed
 * header block (CR and LF replaced by NUL, the colon by NUL, the name moved or grown
 * when a continuation line was appended to it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rawfields.h"

/* Copies `raw` (its `len` bytes) into buf, replacing CR, LF and the first colon of
 * each line by NUL as libmicrohttpd does; returns the end of the block. */
static char *lay_out(char *buf, const char *raw, size_t len)
{
    memcpy(buf, raw, len);
    bool colon_done = false;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\r' || buf[i] == '\n') {
            buf[i] = '\0';
            colon_done = false;
        } else if (buf[i] == ':' && !colon_done) {
            buf[i] = '\0';
            colon_done = true;
        }
    }
    return buf + len;
}

/* Where libmicrohttpd's value of field `name` starts in buf (laid out from raw): past
 * the colon and the blanks after it. */
static const char *value_in(const char *buf, const char *raw, const char *name)
{
    size_t i = (size_t)(strstr(raw, name) - raw) + strlen(name) + 1;
    while (raw[i] == ' ' || raw[i] == '\t')
        i++;
    return buf + i;
}

static void plain_fields_not_folded(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A:1\r\nX-B:  \t v  \r\n"
                              "X-E:\r\nX-F:   \r\nX-L: w\n\r\n";
    char buf[sizeof raw];
    char *end = lay_out(buf, raw, sizeof raw - 1);
    static const char *const names[] = {"Host", "X-A", "X-B", "X-E", "X-F", "X-L"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *name = buf + (strstr(raw, names[i]) - raw);
        const char *value = value_in(buf, raw, names[i]);
        if (rawfields_folded(name, value, end) || rawfields_folded(name, value, NULL))
            fail_msg("%s read as folded", names[i]);
    }
}

/* A last field ended by a bare LF, then the body, which starts with a blank: the bound
 * keeps the body from reading as a continuation. */
static void body_after_bare_lf_not_folded(void **state)
{
    (void)state;
    static const char raw[] = "POST / HTTP/1.1\nHost: a\nX-L: w\n\n body";
    char buf[sizeof raw];
    lay_out(buf, raw, sizeof raw - 1);
    char *end = buf + (strstr(raw, "\n\n") + 2 - raw);
    const char *name = buf + (strstr(raw, "X-L") - raw);
    assert_false(rawfields_folded(name, value_in(buf, raw, "X-L"), end));
}

/* The continuation moved the name elsewhere (where libmicrohttpd could not grow it). */
static void moved_name_folded(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\nHost: a\r\n\r\n";
    char buf[sizeof raw + 16];
    char *end = lay_out(buf, raw, sizeof raw - 1);
    strcpy(end + 1, "X-A2"); /* the name's new home, past the block */
    const char *value = value_in(buf, raw, "X-A");
    assert_true(rawfields_folded(end + 1, value, end));
    assert_true(rawfields_folded(end + 1, value, NULL));
}

/* The continuation grew the name in place over the blanks after its colon: only the
 * line that follows the value tells. */
static void grown_name_folded(void **state)
{
    (void)state;
    static const char raw[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  \r\n 42\r\n\r\n";
    char buf[sizeof raw];
    char *end = lay_out(buf, raw, sizeof raw - 1);
    char *name = buf + (strstr(raw, "Content-Length") - raw);
    const char *value = value_in(buf, raw, "Content-Length"); /* empty: the CR's NUL */
    memcpy(name + strlen("Content-Length"), "42", 3); /* "Content-Length42\0" */
    assert_true(rawfields_folded(name, value, end));
    /* without the end of the block, this sign cannot be read */
    assert_false(rawfields_folded(name, value, NULL));
}

/* A tab starts a continuation as well as a space. */
static void tab_continuation_folded(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n";
    char buf[sizeof raw];
    char *end = lay_out(buf, raw, sizeof raw - 1);
    const char *name = buf + (strstr(raw, "X-A") - raw);
    assert_true(rawfields_folded(name, value_in(buf, raw, "X-A"), end));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_fields_not_folded),
        cmocka_unit_test(body_after_bare_lf_not_folded),
        cmocka_unit_test(moved_name_folded),
        cmocka_unit_test(grown_name_folded),
        cmocka_unit_test(tab_continuation_folded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
