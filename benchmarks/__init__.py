"""Benchmarks: the project's code against straightforward implementations, side by side (`make bench`)."""

import json
import os
import time


def finish(env: dict, start: float, out: str | None, payload: dict) -> None:
    """Print the closing line of a benchmark (total time, load) and write `payload` to `out` as JSON."""
    env["total_s"] = time.perf_counter() - start
    env["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(
        f"total {env['total_s']:.0f} s; load average at end {env['load_avg_end']} "
        f"(timings are noisy when other jobs share the cores)"
    )
    if out:
        with open(out, "w") as f:
            json.dump({"env": env, **payload}, f, indent=2, default=str)
        print(f"wrote {out}")
