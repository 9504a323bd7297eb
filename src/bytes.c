/* Growable byte buffers (see bytes.h). */
#include "bytes.h"

#include <stdlib.h>

cp_err bytes_reserve(unsigned char **buf, size_t *cap, size_t need, size_t first_cap)
{
    if (need <= *cap)
        return CP_OK;
    size_t c = *cap ? *cap : (first_cap ? first_cap : 4096);
    while (c < need) {
        if (c > ((size_t)-1) / 2)
            return CP_ERR_NOMEM;
        c *= 2;
    }
    unsigned char *b = realloc(*buf, c);
    if (b == NULL)
        return CP_ERR_NOMEM;
    *buf = b;
    *cap = c;
    return CP_OK;
}
