/* The updater fixture of the unit tests (see upfix.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tmpdir.h"
#include "upfix.h"

int upfix_setup(void **state)
{
    struct upfix *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    if (tmpdir_make(f->dir, sizeof f->dir, "update") != 0 ||
        url_parse_origin("http://o.test", &f->origin) != CP_OK ||
        store_open(f->dir, 0, &f->store) != CP_OK ||
        cache_new(store_generation_ptr(f->store), 0, &f->cache) != CP_OK)
        return -1;
    f->up = (struct updater){.cache = f->cache,
                             .store = f->store,
                             .origin = &f->origin,
                             .popts = {.default_ttl = 0, .max_object_size = 1 << 20}};
    *state = f;
    return 0;
}

int upfix_teardown(void **state)
{
    struct upfix *f = *state;
    cache_free(f->cache);
    store_close(f->store);
    url_origin_free(&f->origin);
    int rc = tmpdir_remove(f->dir);
    free(f);
    return rc;
}

void upfix_write_record(struct upfix *f, const char *key, unsigned char *body, size_t len)
{
    struct entry *e = entry_new();
    assert_non_null(e);
    e->key = strdup(key);
    e->vary_key = strdup("");
    e->status = 200;
    e->lifetime = 60;
    e->response_time = time(NULL);
    e->generation = cache_generation(f->cache);
    e->body = body;
    e->body_len = len;
    assert_non_null(e->body);
    assert_int_equal(store_write(f->store, e), CP_OK);
    entry_unref(e);
}
