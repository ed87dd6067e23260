"""Mutation audit: apply each plausible one-line bug of a mutant list to a copy of the repository and run
the tests meant to catch it; a mutant is caught when one of them fails.

    python -m benchmarks.mutation.run [--list first|fresh|third|...|ninth] [--category "data pipeline"]
                                      [--only ID ...] [--timeout 600] [--baseline] [--json out.json]
                                      [--covering MAP ...]

`--list first` (the default) runs `mutants.py`, `--list fresh` the second list (`mutants_fresh.py`),
`--list third` to `ninth` the later ones (`mutants_third.py`, ...). The repository's tracked
files are copied once into a temporary folder (the working tree is never modified); each mutant replaces
its `original` snippet (which must occur exactly once, else the mutant is "not applied") in the copy,
runs `pytest -x -q -p no:cacheprovider <tests>` there with the copy first on PYTHONPATH, and restores the
file in a `finally`. `--baseline` first runs every distinct test list unmutated (a list that fails
without a mutant cannot measure one).

Which tests: the first two lists name test files or ids per mutant (filled in after the mutants were
written), so their score is a lower bound of the suite's. A mutant with an empty `tests` list (the third
list and after) runs every test of the default suite that executes its line, from the map of
`covering.py` (`make mutation-map`): what the whole suite would catch, short of a test that depends on a
line it does not run.
A run that ends by the timeout is reported apart, not as caught.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CATEGORIES = ("metric math", "config/CLI", "report", "records and resume", "training semantics", "data pipeline")


# --list: each list's module
LISTS = {"first": "mutants", "fresh": "mutants_fresh"} | {
    n: f"mutants_{n}" for n in ("third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
}


def mutant_list(name: str):
    """The module of the list `name`: its MUTANTS, and its AFTER where it has one."""
    return importlib.import_module(f"{__package__}.{LISTS[name]}")


def load(name: str = "first") -> list[dict]:
    mutants = mutant_list(name).MUTANTS
    for m in mutants:
        missing = {"id", "category", "file", "original", "replacement", "tests"} - m.keys()
        if missing or m["category"] not in CATEGORIES:
            raise ValueError(
                f"mutant {m.get('id')}: missing {sorted(missing)} or unknown category {m.get('category')!r}"
            )
    ids = [m["id"] for m in mutants]
    if len(set(ids)) != len(ids):
        raise ValueError("mutant ids must be unique")
    return mutants


def copy_repository(dest: Path) -> Path:
    """The tracked files of the repository (as they are in the working tree), and the conf symlink."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, tracked.decode().split("\0")):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    link = dest / "binary_encoding" / "conf"
    if not link.exists():
        link.symlink_to(Path("..") / "conf")
    return dest


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, the last lines of output) of the tests in `root`."""
    # no bytecode cache in the copy: a .pyc is trusted when the source's mtime (whole seconds) and size
    # match, so a mutant of the same length written within a second of its file's restore could run stale
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--basetemp={root}.tmp", *tests]
    start = time.monotonic()
    # its own process group: a timeout or an interrupted audit ends the tests and what they started
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    tail = "\n".join(out.strip().splitlines()[-3:])
    return ("passed" if proc.returncode == 0 else "failed"), time.monotonic() - start, tail


# tests that use one machine-wide service (the SLURM cluster, a Ray head's ports): with --jobs > 1 two of
# them at once could fail each other, which would count as a catch, so they are left out there
SHARED = ("tests/test_slurm.py", "tests/test_launchers.py::test_ray")


def apply_and_test(root: Path, m: dict, timeout: float, tests_for=None, exclude: tuple = (), first: tuple = ()) -> dict:
    """Run the mutant's listed tests, or where it lists none, every test that executes its line."""
    path = root / m["file"]
    text = path.read_text()
    if text.count(m["original"]) != 1:
        return {**m, "result": "not applied", "seconds": 0.0, "tail": f"found {text.count(m['original'])} times"}
    tests = m["tests"] or tests_for(m["file"], text[: text.index(m["original"])].count("\n") + 1)
    if exclude:
        tests = [t for t in tests if not t.startswith(exclude)]
    tests = [*first, *(t for t in tests if t not in first)]
    if not tests:
        return {**m, "result": "survived (no test runs its line)", "seconds": 0.0, "tail": "", "n_tests": 0}
    try:
        path.write_text(text.replace(m["original"], m["replacement"]))
        outcome, seconds, tail = run_tests(root, tests, timeout)
    finally:
        path.write_text(text)
    result = {"failed": "caught", "timeout": "timeout", "passed": "survived"}[outcome]
    return {**m, "result": result, "seconds": round(seconds, 1), "tail": tail, "n_tests": len(tests)}


def scores(results: list[dict]) -> dict[str, tuple[int, int, int]]:
    """Per category (and 'total'): (caught by a failing test, ended by the timeout, applied). A timeout is
    not counted as caught: the suite has no per-test time limit, so a hang is a red CI only by its length."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in results:
        if r["result"] in ("not applied", "error"):  # not measured
            continue
        for key in (r["category"], "total"):
            out[key][0] += r["result"] == "caught"
            out[key][1] += r["result"] == "timeout"
            out[key][2] += 1
    return {k: tuple(v) for k, v in out.items()}


def table(results: list[dict]) -> str:
    lines = [f"{'mutant':34} {'category':20} {'result':17} seconds"]
    lines += [f"{r['id']:34} {r['category']:20} {r['result']:17} {r['seconds']:7.1f}" for r in results]
    lines.append("")
    s = scores(results)
    for k in (*CATEGORIES, "total"):
        if k in s:
            caught, timeouts, n = s[k]
            late = f", {timeouts} timed out" if timeouts else ""
            lines.append(f"{k:20} {caught}/{n} caught ({100 * caught / n:.0f}%){late}")
    skipped = [r["id"] for r in results if r["result"] == "not applied"]
    if skipped:
        lines.append(f"not applied (snippet not found exactly once): {', '.join(skipped)}")
    lines += [f"not measured, the runner failed: {r['id']}: {r['tail']}" for r in results if r["result"] == "error"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--list", choices=sorted(LISTS), default="first", help="which mutant list (default: first)")
    p.add_argument("--category", action="append", help="only mutants of this category (repeatable)")
    p.add_argument("--only", nargs="+", help="only these mutant ids")
    p.add_argument("--timeout", type=float, default=600, help="seconds per mutant's test run")
    p.add_argument("--baseline", action="store_true", help="first run each distinct test list unmutated")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--first",
        nargs="+",
        default=[],
        help="tests run first for every mutant (tests written after the coverage map, which it does not know)",
    )
    p.add_argument("--after", action="store_true", help="run first the tests the list's AFTER names for a mutant")
    p.add_argument("--jobs", type=int, default=1, help="mutants tested at once, each in its own copy")
    p.add_argument("--covering", type=Path, nargs="+", default=[], help="coverage maps (default: covering.py's)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped audit still restores and cleans up
    mutants = [
        m
        for m in load(args.list)
        if (not args.category or m["category"] in args.category) and (not args.only or m["id"] in args.only)
    ]
    after = getattr(mutant_list(args.list), "AFTER", {})
    tests_for = None
    if any(not m["tests"] for m in mutants):
        from . import covering

        tests_for = covering.load(*args.covering)
    with tempfile.TemporaryDirectory(prefix="mutation_") as tmp:
        roots = [copy_repository(Path(tmp) / str(i)) for i in range(args.jobs)]  # one copy per worker
        root = roots[0]
        if args.baseline:
            for tests in dict.fromkeys(tuple(m["tests"]) for m in mutants if m["tests"]):
                outcome, seconds, tail = run_tests(root, list(tests), args.timeout)
                print(f"baseline {outcome:8} {seconds:6.1f} s  {' '.join(tests)}", flush=True)
                if outcome != "passed":
                    print(tail, flush=True)
                    return 1
        free: queue.Queue[Path] = queue.Queue()
        for r in roots:
            free.put(r)

        def one(m: dict) -> dict:
            root = free.get()
            try:
                shared = SHARED if args.jobs > 1 else ()
                first = tuple(args.first) + tuple(after.get(m["id"], ()) if args.after else ())
                r = apply_and_test(root, m, args.timeout, tests_for, shared, first)
            except Exception as e:  # one mutant the runner cannot handle must not lose the others' results
                r = {**m, "result": "error", "seconds": 0.0, "tail": f"{type(e).__name__}: {e}"}
            finally:
                free.put(root)
            print(f"{r['id']:34} {r['result']:17} {r['seconds']:6.1f} s  ({r.get('n_tests', '-')} tests)", flush=True)
            if r["result"] != "caught":
                print(f"    {r['category']}: {r['file']}: {r['replacement']}", flush=True)
            return r

        with ThreadPoolExecutor(args.jobs) as pool:  # each worker's pytest is a process: threads only wait
            results = list(pool.map(one, mutants))
    print()
    print(table(results))
    if args.json:
        keys = ("id", "category", "result", "seconds", "n_tests", "tail")  # tail: which test failed
        args.json.write_text(json.dumps([{k: r.get(k) for k in keys} for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
