/* Reading libmicrohttpd's in-place copy of request fields for signs of what it
 * misread (see rawfields.h). */
#include "rawfields.h"

#include <string.h>

bool rawfields_folded(const char *name, const char *value, const char *end)
{
    const char *p = name + strlen(name) + 1;
    if (value < p)
        return true; /* the name was moved (or grew past its value) */
    for (; p < value; p++)
        if (*p != ' ' && *p != '\t')
            return true;
    if (end == NULL)
        return false;
    const char *next = value + strlen(value) + 1;
    if (next < end && *next == '\0')
        next++; /* the LF of a CRLF */
    return next < end && (*next == ' ' || *next == '\t');
}
