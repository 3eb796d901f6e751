"""The cost of pyroscope-io at its default rate (100 Hz, an upload every 10 s) to the process it
profiles: a CPU-bound loop's throughput and the process's CPU time, with and without the agent.

    .venv/bin/python bench/pyroscope_overhead.py http://127.0.0.1:10100 [--seconds 30] [--rounds 3]

Each round runs the loop twice in fresh processes, without then with `pyroscope.configure(...)`
pointed at the collector (so uploads are part of the cost). Prints a table; writes JSON under
bench/results/.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, write_result  # noqa: E402

LOOP = """
import json, os, sys, time
if sys.argv[2] == "agent":
    import pyroscope
    pyroscope.configure(application_name="overhead-bench", server_address=sys.argv[1])

def work():
    total = 0
    for i in range(10_000):
        total += i * i % 7
    return total

seconds = float(sys.argv[3])
end = time.perf_counter() + seconds
iterations = 0
cpu0 = time.process_time()
while time.perf_counter() < end:
    work()
    iterations += 1
print(json.dumps({"iterations_per_s": iterations / seconds, "cpu_s_per_s": (time.process_time() - cpu0) / seconds}))
"""


def once(url: str, mode: str, seconds: float) -> dict:
    out = subprocess.run([sys.executable, "-c", LOOP, url, mode, str(seconds)], capture_output=True, text=True,
                         timeout=seconds + 60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    for _ in range(args.rounds):
        for mode in ("bare", "agent"):
            rows.append({"mode": mode, **once(args.url, mode, args.seconds)})
    mean = {m: {k: sum(r[k] for r in rows if r["mode"] == m) / args.rounds for k in ("iterations_per_s", "cpu_s_per_s")}
            for m in ("bare", "agent")}
    slowdown = 1 - mean["agent"]["iterations_per_s"] / mean["bare"]["iterations_per_s"]
    print(f"{'mode':<6} {'loop iterations/s':>18} {'process cpu s/s':>16}")
    for r in rows:
        print(f"{r['mode']:<6} {r['iterations_per_s']:>18.1f} {r['cpu_s_per_s']:>16.3f}")
    print(f"throughput lost with the agent: {slowdown:.1%}; extra CPU: "
          f"{mean['agent']['cpu_s_per_s'] - mean['bare']['cpu_s_per_s']:+.3f} s/s")
    path = write_result("pyroscope-overhead", {"rows": rows, "mean": mean, "slowdown": slowdown,
                                               "seconds": args.seconds, "machine": machine()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
