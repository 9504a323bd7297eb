#!/usr/bin/python3
# Small HTTP/1.1 clients for the loads wrk cannot do: filling a cache with N distinct
# URLs, firing concurrent requests at one cold slow URL (coalescing), and timing a
# proxy's start until its first answer. Prints one "key=value ..." line per command.
import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HOST = "127.0.0.1"


async def read_response(reader):
    """Reads one response; returns (status, headers dict lower-cased, body length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    n = 0
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                # trailers: read lines until the empty one
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
            n += size
    elif "content-length" in hdrs:
        n = int(hdrs["content-length"])
        await reader.readexactly(n)
    elif status not in (204, 304):
        n = len(await reader.read())
    return status, hdrs, n


def request_bytes(path):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cpbench\r\n\r\n" % (path, HOST)).encode()


async def fill(port, prefix, n, conns, timeout):
    """Requests prefix+str(i) for i in 0..n-1 over `conns` keep-alive connections."""
    nxt = 0
    stats = {"ok": 0, "bad": 0, "hit": 0}

    async def worker():
        nonlocal nxt
        reader = writer = None
        while nxt < n:
            i = nxt
            nxt += 1
            for attempt in range(3):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, port)
                    writer.write(request_bytes(prefix + str(i)))
                    status, hdrs, _ = await read_response(reader)
                    if hdrs.get("connection", "").lower() == "close":
                        writer.close()
                        writer = None
                    break
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    if writer is not None:
                        writer.close()
                    writer = None
                    status, hdrs = 0, {}
            if status == 200:
                stats["ok"] += 1
            else:
                stats["bad"] += 1
            if hdrs.get("x-cache", "").upper().startswith("HIT"):
                stats["hit"] += 1
        if writer is not None:
            writer.close()

    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conns))), timeout)
    dt = time.monotonic() - t0
    print("ok=%d bad=%d hit=%d seconds=%.2f rps=%.0f" %
          (stats["ok"], stats["bad"], stats["hit"], dt, n / dt if dt > 0 else 0))
    return 0 if stats["bad"] == 0 else 1


async def coalesce(port, path, n, origin_port, timeout):
    """Opens n connections, then sends the same GET on all of them at once."""
    conns = [await asyncio.open_connection(HOST, port) for _ in range(n)]
    done = []
    statuses = []

    async def one(reader, writer):
        writer.write(request_bytes(path))
        await writer.drain()
        status, _, _ = await read_response(reader)
        done.append(time.time())
        statuses.append(status)
        writer.close()

    t_start = time.time()
    await asyncio.wait_for(asyncio.gather(*(one(r, w) for r, w in conns)), timeout)
    q = "http://%s:%d/count?path=%s" % (HOST, origin_port, urllib.request.quote(path))
    with urllib.request.urlopen(q, timeout=5) as resp:
        c = json.loads(resp.read())
    # measured from the origin's first answer: what a client waits beyond that is the
    # cost of the proxy's coalescing (or of its not coalescing)
    fin = c["finished"] or t_start
    lags = sorted(max(0.0, d - fin) * 1000 for d in done)
    print("origin_requests=%d ok=%d lag_p50_ms=%.1f lag_max_ms=%.1f spread_ms=%.1f" %
          (c["count"], sum(1 for s in statuses if s == 200), statistics.median(lags),
           lags[-1], (max(done) - min(done)) * 1000))
    return 0


def get_once(port, path, timeout=2.0):
    """One blocking GET on a fresh connection; returns (status, x-cache) or None."""
    try:
        s = socket.create_connection((HOST, port), timeout=timeout)
    except OSError:
        return None
    try:
        s.sendall(request_bytes(path).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError:
        return None
    finally:
        s.close()
    if not data.startswith(b"HTTP/"):
        return None
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    xc = ""
    for ln in head[1:]:
        if ln.lower().startswith("x-cache:"):
            xc = ln.split(":", 1)[1].strip()
    return int(head[0].split(" ", 2)[1]), xc


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def coldstart(port, path, pidfile, logfile, timeout, cmd, any_answer):
    """Starts cmd, polls until the first answer and (unless any_answer) the first HIT,
    then stops it."""
    with open(logfile, "ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    with open(pidfile, "w") as f:
        f.write(str(proc.pid))
    first = first_hit = None
    try:
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                break
            r = get_once(port, path)
            now = time.monotonic()
            if r is None:
                time.sleep(0.001)
                continue
            if first is None:
                first = now - t0
                if any_answer:
                    break
            if r[1].upper().startswith("HIT"):
                first_hit = now - t0
                break
            time.sleep(0.001)
        rss = rss_kib(proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.unlink(pidfile)
    fmt = lambda v: "%.1f" % (v * 1000) if v is not None else "nan"
    print("first_answer_ms=%s first_hit_ms=%s rss_kib=%d" % (fmt(first), fmt(first_hit), rss))
    return 0 if (first if any_answer else first_hit) is not None else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("fill")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--prefix", required=True)
    a.add_argument("--n", type=int, required=True)
    a.add_argument("--conns", type=int, default=16)
    a.add_argument("--timeout", type=float, default=300)
    a = sub.add_parser("coalesce")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--path", required=True)
    a.add_argument("--n", type=int, default=50)
    a.add_argument("--origin-port", type=int, required=True)
    a.add_argument("--timeout", type=float, default=30)
    a = sub.add_parser("coldstart")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--path", required=True)
    a.add_argument("--pidfile", required=True)
    a.add_argument("--log", required=True)
    a.add_argument("--timeout", type=float, default=120)
    a.add_argument("--any", action="store_true", help="stop at the first answer, HIT or not")
    a.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.cmd == "fill":
        return asyncio.run(fill(args.port, args.prefix, args.n, args.conns, args.timeout))
    if args.cmd == "coalesce":
        return asyncio.run(coalesce(args.port, args.path, args.n, args.origin_port, args.timeout))
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    return coldstart(args.port, args.path, args.pidfile, args.log, args.timeout, cmd, args.any)


if __name__ == "__main__":
    sys.exit(main())
