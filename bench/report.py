#!/usr/bin/python3
# Turns the raw results of bench/run (one "load proxy round metric value" line per
# measurement, tab-separated) into the table of medians over the rounds, with the
# ratios of caching-proxy against nginx and against Varnish.
import math
import statistics
import sys
from collections import defaultdict

PROXIES = [("cp", "caching-proxy"), ("nginx", "nginx"), ("varnish", "varnish")]

# (load, metric, label, unit format, which way is better)
ROWS = [
    ("hit-1k", "rps", "hit 1 KiB, 64 conn", "req/s", "higher"),
    ("hit-1k", "p50_ms", "", "p50 ms", "lower"),
    ("hit-1k", "p99_ms", "", "p99 ms", "lower"),
    ("hit-1k", "cpu_us", "", "CPU us/req", "lower"),
    ("hit-1k", "cpu_share", "", "proxy CPU use %", "-"),
    ("hit-16k", "rps", "hit 16 KiB, 64 conn", "req/s", "higher"),
    ("hit-16k", "p50_ms", "", "p50 ms", "lower"),
    ("hit-16k", "p99_ms", "", "p99 ms", "lower"),
    ("hit-16k", "cpu_us", "", "CPU us/req", "lower"),
    ("hit-16k", "cpu_share", "", "proxy CPU use %", "-"),
    ("hit-256k", "rps", "hit 256 KiB, 64 conn", "req/s", "higher"),
    ("hit-256k", "p50_ms", "", "p50 ms", "lower"),
    ("hit-256k", "p99_ms", "", "p99 ms", "lower"),
    ("hit-256k", "cpu_us", "", "CPU us/req", "lower"),
    ("hit-256k", "cpu_share", "", "proxy CPU use %", "-"),
    ("hit-4m", "rps", "hit 4 MiB, 64 conn", "req/s", "higher"),
    ("hit-4m", "p50_ms", "", "p50 ms", "lower"),
    ("hit-4m", "p99_ms", "", "p99 ms", "lower"),
    ("hit-4m", "cpu_us", "", "CPU us/req", "lower"),
    ("hit-4m", "cpu_share", "", "proxy CPU use %", "-"),
    ("miss-1k", "rps", "miss 1 KiB, unique URLs", "req/s", "higher"),
    ("miss-1k", "p50_ms", "", "p50 ms", "lower"),
    ("miss-1k", "p99_ms", "", "p99 ms", "lower"),
    ("miss-1k", "cpu_us", "", "CPU us/req", "lower"),
    ("miss-1k", "cpu_share", "", "proxy CPU use %", "-"),
    ("coalesce", "origin_requests", "coalescing, N on 1 slow URL", "origin requests", "lower"),
    ("coalesce", "lag_p50_ms", "", "p50 after origin answer ms", "lower"),
    ("coalesce", "lag_max_ms", "", "last after origin answer ms", "lower"),
    ("coalesce", "spread_ms", "", "client spread ms", "lower"),
    ("memory", "rss_kib_obj", "memory, N x 1 KiB objects", "RSS KiB/obj", "lower"),
    ("memory", "files_kib_obj", "", "tmpfs files KiB/obj", "lower"),
    ("memory", "total_kib_obj", "", "total KiB/obj", "lower"),
    ("limit", "rss_mib", "memory, N x 1 KiB past a L MiB limit", "RSS growth MiB", "lower"),
    ("limit", "files_mib", "", "tmpfs files growth MiB", "lower"),
    ("limit", "total_mib", "", "total growth MiB", "lower"),
    ("cold-empty", "first_answer_ms", "start, empty cache", "first answer ms", "lower"),
    ("cold-full", "first_answer_ms", "start, N entries on disk", "first answer ms", "lower"),
    ("cold-full", "first_hit_ms", "", "first HIT ms", "lower"),
    ("cold-full", "rss_mib", "", "RSS after start MiB", "lower"),
]

# Loads whose raw counts are kept in the results as "errors" (any failed request).
ERROR_LOADS = ("hit-1k", "hit-16k", "hit-256k", "hit-4m", "miss-1k")


def fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    a = abs(v)
    if v == int(v) and a < 1e6:
        return "{:,d}".format(int(v))
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(a, b):
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return "-"
    return "%.2f" % (a / b)


def main():
    path = sys.argv[1]
    # optional: the N of the memory, cold-start, coalescing and limit loads, and the
    # limit in MiB, for the labels
    n_mem, n_cold, n_coal, n_limit, limit = (sys.argv[2:7] + ["N"] * 5)[:5]
    names = {"memory": n_mem, "cold-full": n_cold, "coalesce": n_coal, "limit": n_limit}
    vals = defaultdict(list)
    by_round = defaultdict(dict)  # (load, proxy, metric) -> {round: value}
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 5:
            continue
        load, proxy, rnd, metric, value = parts
        try:
            vals[(load, proxy, metric)].append(float(value))
            by_round[(load, proxy, metric)][rnd] = float(value)
        except ValueError:
            pass

    def round_ratios(load, metric, other):
        """cp/other within each round (both measured minutes apart at most)."""
        a, b = by_round.get((load, "cp", metric), {}), by_round.get((load, other, metric), {})
        return sorted(a[r] / b[r] for r in a if r in b and b[r] and not math.isnan(a[r] / b[r]))

    def med(load, proxy, metric):
        xs = [x for x in vals.get((load, proxy, metric), []) if not math.isnan(x)]
        return statistics.median(xs) if xs else None

    header = ["load", "metric", "caching-proxy", "nginx", "varnish",
              "cp/nginx", "cp/varnish", "better"]
    table = []
    present = {k[0] for k in vals}
    last_load = None
    for load, metric, label, unit, better in ROWS:
        if load not in present:
            continue
        m = [med(load, p, metric) for p, _ in PROXIES]
        if all(x is None for x in m):
            continue
        if load in names:
            label = label.replace("N", "{:,}".format(int(names[load]))
                                  if names[load].isdigit() else names[load], 1)
        if load == "limit":
            label = label.replace(" L ", " %s " % limit, 1)
        table.append([label if load != last_load else "", unit] + [fmt(x) for x in m] +
                     ([ratio(m[0], m[1]), ratio(m[0], m[2]), better] if better != "-" else ["", "", ""]))
        last_load = load
    widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header))]
    out = []
    line = lambda r: "| " + " | ".join(
        (c.ljust(widths[i]) if i < 2 or i == 7 else c.rjust(widths[i])) for i, c in enumerate(r)) + " |"
    out.append(line(header))
    out.append("|" + "|".join(("-" * (w + 2)) if i < 2 or i == 7 else ("-" * (w + 1) + ":")
                              for i, w in enumerate(widths)) + "|")
    out.extend(line(r) for r in table)
    errs = []
    for load in ERROR_LOADS:
        for p, name in PROXIES:
            e = sum(vals.get((load, p, "errors"), []))
            if e:
                errs.append("%s %s: %d failed requests" % (load, name, e))
    rounds = max((len(v) for k, v in vals.items() if k[0].startswith("hit")), default=0)
    out.append("")
    out.append("Medians over %d rounds; ratios are caching-proxy / other (see 'better')." % rounds)
    # The medians above may come from different rounds; ratios taken within a round
    # cancel what changed between rounds (other work on the machine).
    per_round = []
    for load, metric, label, unit, better in ROWS:
        if metric not in ("rps", "cpu_us") or load not in present:
            continue
        cells = []
        for p, name in PROXIES[1:]:
            rs = round_ratios(load, metric, p)
            if rs:
                cells.append("cp/%s %.2f [%.2f-%.2f]" % (name, statistics.median(rs), rs[0], rs[-1]))
        if cells:
            per_round.append("  %s %s: %s" % (load, unit, ", ".join(cells)))
    if per_round:
        out.append("Ratios within each round, median [lowest-highest]:")
        out.extend(per_round)
    if errs:
        out.append("Errors: " + "; ".join(errs))
    else:
        out.append("No failed requests in the wrk loads.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
