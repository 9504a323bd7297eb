/* The listening socket and socket addresses as text (see listener.h). */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void listener_ip_text(const struct sockaddr *sa, char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* a dual-stack socket's IPv4 peer */
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
}

void listener_local_authority(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    buf[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    char ip[INET6_ADDRSTRLEN];
    listener_ip_text((const struct sockaddr *)&ss, ip, sizeof ip);
    unsigned port = ss.ss_family == AF_INET
                        ? ntohs(((const struct sockaddr_in *)&ss)->sin_port)
                        : ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(buf, len, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
}

cp_err listener_open(const char *bind_addr, uint16_t port, int *fd_out, char *addr,
                     size_t addr_len, char *why, size_t why_len)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    memset(&ss, 0, sizeof ss);
    int family = AF_INET6;
    if (bind_addr == NULL) {
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons(port);
    } else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
    } else if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        family = AF_INET;
    } else {
        snprintf(why, why_len, "--bind '%s'", bind_addr);
        return CP_ERR_BAD_ADDRESS;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 && bind_addr == NULL) {
        /* No IPv6 on this system: every IPv4 interface instead. */
        memset(&ss, 0, sizeof ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        family = AF_INET;
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        goto sys_error;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6 && bind_addr == NULL)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    socklen_t sl = family == AF_INET ? sizeof *s4 : sizeof *s6;
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        goto sys_error;
    }
    *fd_out = fd;
    if (bind_addr == NULL)
        snprintf(addr, addr_len, "http://0.0.0.0:%u", port);
    else
        snprintf(addr, addr_len, family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u",
                 bind_addr, port);
    return CP_OK;
sys_error:
    snprintf(why, why_len, "%s:%u: %s", bind_addr ? bind_addr : "*", port, strerror(errno));
    return CP_ERR_LISTEN;
}
