/* The listening socket, and socket addresses as text: opening the socket ourselves lets
 * a failure (port in use) be reported precisely before the front end starts. */
#ifndef CP_LISTENER_H
#define CP_LISTENER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

/* Opens a listening TCP socket on `bind` (an IPv4 or IPv6 literal; NULL: every
 * interface, IPv6 with IPv4 mapped in where the system has IPv6) and `port`. Sets *fd
 * and writes "http://addr:port" into `addr`. Returns CP_ERR_BAD_ADDRESS or CP_ERR_LISTEN
 * (socket, bind or listen failed) with the address and the system's reason in `why`. */
cp_err listener_open(const char *bind, uint16_t port, int *fd, char *addr, size_t addr_len,
                     char *why, size_t why_len);

/* Writes the IP address of `sa` as text ("127.0.0.1", "::1"; an IPv4-mapped IPv6
 * address as plain IPv4), or "unknown". */
void listener_ip_text(const struct sockaddr *sa, char *buf, size_t len);

/* Writes "ip:port" ("[ip]:port" for IPv6) of the local end of connected socket `fd`:
 * the proxy as the client addressed it. Writes "" if unknown. */
void listener_local_authority(int fd, char *buf, size_t len);

#endif
