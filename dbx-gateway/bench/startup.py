#!/usr/bin/env python3
"""Startup to ready: exec the gateway, poll GET /readyz every 0.5 ms until it
answers 200, stop it (SIGTERM), repeat. Prints one line per run and the
median/min/max.

usage: startup.py GATEWAY_BIN CONFIG PORT [RUNS]
"""
import http.client
import signal
import statistics
import subprocess
import sys
import time


def ready(port: int) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/readyz")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def one(binary: str, config: str, port: int, log) -> float:
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--config", config], stdout=subprocess.DEVNULL, stderr=log)
    try:
        while not ready(port):
            if p.poll() is not None:
                sys.exit(f"gateway exited with {p.returncode} before it was ready")
            if time.perf_counter() - t0 > 10:
                sys.exit("gateway not ready after 10 s")
            time.sleep(0.0005)
        return (time.perf_counter() - t0) * 1000.0
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, config, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    times = []
    with open(config + ".startup.log", "ab") as log:
        for _ in range(runs):
            times.append(one(binary, config, port, log))
    print("startup_ms " + " ".join(f"{t:.1f}" for t in times))
    print(
        f"startup to ready: runs={runs} median={statistics.median(times):.1f} ms "
        f"min={min(times):.1f} ms max={max(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
