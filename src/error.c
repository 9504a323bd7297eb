/* The one table that turns cp_err codes into words (see error.h). */
#include "error.h"

#include <stddef.h>

static const char *const messages[CP_ERR__COUNT] = {
    [CP_OK] = "success",
    [CP_ERR_NOMEM] = "out of memory",
    [CP_ERR_USAGE] = "invalid usage",
    [CP_ERR_BAD_NUMBER] = "invalid number",
    [CP_ERR_BAD_PORT] = "invalid port (must be 1-65535)",
    [CP_ERR_BAD_ORIGIN] = "invalid origin (must be an absolute http:// or https:// URL)",
    [CP_ERR_BAD_ADDRESS] = "invalid bind address (must be an IPv4 or IPv6 address)",
    [CP_ERR_CACHE_DIR] = "cache directory is not usable",
    [CP_ERR_LISTEN] = "cannot listen (address or port already in use?)",
    [CP_ERR_FILE_LIMIT] = "too few open files allowed (ulimit -n)",
    [CP_ERR_IO] = "input/output error",
    [CP_ERR_CORRUPT] = "corrupt cache file",
    [CP_ERR_VERSION] = "cache file of an unknown format version",
    [CP_ERR_KEY_MISMATCH] = "cache file does not hold the key its name says",
    [CP_ERR_STALE_GEN] = "cache file predates the last cache clear",
    [CP_ERR_SUPERSEDED] = "a newer response is stored already",
    [CP_ERR_NOT_FOUND] = "not found",
    [CP_ERR_BAD_TARGET] = "request target not allowed",
    [CP_ERR_TOO_LARGE] = "too large",
    [CP_ERR_ORIGIN_CONNECT] = "origin unreachable",
    [CP_ERR_ORIGIN_TIMEOUT] = "origin timed out",
    [CP_ERR_ORIGIN_TLS] = "TLS error talking to the origin",
    [CP_ERR_ORIGIN_PROTOCOL] = "origin sent an invalid response",
    [CP_ERR_ORIGIN_HEAD_TOO_LARGE] = "origin's response header is too large",
    [CP_ERR_REDIRECT_LOOP] = "too many redirects from the origin",
    [CP_ERR_SHUTDOWN] = "shutting down",
    [CP_ERR_INTERNAL] = "internal error",
};

const char *cp_strerror(cp_err err)
{
    if ((unsigned)err >= CP_ERR__COUNT || messages[err] == NULL)
        return "unknown error";
    return messages[err];
}
