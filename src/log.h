/* Minimal levelled logging to stderr, one line per message, safe from any thread.
 * The level is part of the process configuration, set once at start-up. */
#ifndef CP_LOG_H
#define CP_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the most verbose level that is printed (default LOG_LVL_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Prints "caching-proxy: <level>: <message>\n" to stderr if `level` is enabled.
 * A single write(2) per line, so lines from threads never interleave. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
