"""Which tests execute a line of the package: a map for mutants whose `tests` list is empty.

    python -m benchmarks.mutation.covering [--out benchmarks/mutation/.covering.json] [PYTEST ARGS ...]

runs the default suite once under coverage.py with one context per test (its pytest node id), the
training subprocesses the tests start included, and writes {file: {line: [test ids]}} as JSON. A mutant
on a line no test executes cannot be caught; one on an executed line is run against exactly the tests
that execute it (the runner orders them by how many lines each executes, few first, so unit tests go
before end-to-end runs and `pytest -x` stops at the first failure).

Subprocesses are measured through a `.pth` file placed in site-packages for the duration of the run
(and removed after): a Python process started during a test starts coverage under that test's context
(named by `COVERING_TEST_ID` in its environment, else by a file the plugin rewrites at each test: a test's
processes may get an environment copied before the test began, as the DDP ranks of a sweep do). A process
killed with SIGKILL writes nothing, so a test that only kills a run sees fewer lines than it ran; the map
is a lower bound of what runs, never more. One test fails under
coverage alone: Hydra takes a set trace function (coverage's tracer) for a debugger and prints the whole
traceback of a refused sweep job, which `tests/test_records.py`'s overlapping-sweeps test forbids; its
lines are mapped all the same.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import site
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "benchmarks" / "mutation" / ".covering.json"  # git-ignored: a machine's measurement

RC = """[run]
source = binary_encoding
data_file = {data}
parallel = True
patch = _exit, execv
"""

# started by the .pth in every Python process of the run: the test is the one its environment names, else
# the one running now (a file the plugin writes): a test may start processes with an environment copied
# before its own start (a module's `ENV = {**os.environ, ...}`), which holds no test id
STARTER = """import atexit, os, pathlib, coverage
_now = pathlib.Path(os.environ["COVERING_RC"] + ".test")
_test = os.environ.get("COVERING_TEST_ID") or (_now.read_text() if _now.exists() else "")
if _test:
    _cov = coverage.Coverage(config_file=os.environ["COVERING_RC"], context=_test, data_suffix=True)
    _cov.start()
    atexit.register(lambda: (_cov.stop(), _cov.save()))
"""
PTH = "import os; os.environ.get('COVERING_RC') and __import__('_covering_start')"

# a pytest plugin: the test's id as the context of this process and of every process it starts
PLUGIN = """import os, pathlib, coverage, pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    now = pathlib.Path(os.environ["COVERING_RC"] + ".test")
    os.environ["COVERING_TEST_ID"] = item.nodeid
    now.write_text(item.nodeid)
    coverage.Coverage.current().switch_context(item.nodeid)
    yield
    os.environ.pop("COVERING_TEST_ID", None)
    now.write_text("")
"""


def measure(out: Path, pytest_args: list[str]) -> int:
    packages = Path(site.getsitepackages()[0])
    starter, pth = packages / "_covering_start.py", packages / "zz_covering.pth"
    with tempfile.TemporaryDirectory(prefix="covering_") as tmp:
        tmp = Path(tmp)
        rc = tmp / "rc"
        rc.write_text(RC.format(data=tmp / "data" / ".coverage"))
        (tmp / "data").mkdir()
        (tmp / "covering_plugin.py").write_text(PLUGIN)
        starter.write_text(STARTER)
        pth.write_text(PTH + "\n")
        try:
            env = {**os.environ, "COVERING_RC": str(rc), "COVERAGE_RCFILE": str(rc)}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp), env.get("PYTHONPATH")]))
            cmd = [sys.executable, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "covering_plugin"]
            rc_tests = subprocess.run([*cmd, "-p", "no:cacheprovider", *pytest_args], cwd=REPO, env=env).returncode
        finally:
            starter.unlink(missing_ok=True)
            pth.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-m", "coverage", "combine", "-q"], cwd=REPO, env=env, check=True)
        out.write_text(json.dumps(read(tmp / "data" / ".coverage")))
    print(f"wrote {out} (the suite exited {rc_tests}: a failing test still maps the lines it ran)")
    return 0


def read(data_file: Path) -> dict[str, dict[str, list[str]]]:
    import coverage

    data = coverage.CoverageData(str(data_file))
    data.read()
    out: dict[str, dict[str, list[str]]] = {}
    for path in data.measured_files():
        real = Path(path).resolve()
        if REPO not in real.parents:  # a copy of the package a test made elsewhere
            continue
        lines = data.contexts_by_lineno(path)
        out[real.relative_to(REPO).as_posix()] = {str(n): sorted(c for c in ctx if c) for n, ctx in lines.items()}
    return out


def load(*paths: Path):
    """A function (file, line) -> the tests that execute that line, those that execute fewer lines first.

    Several maps (the suite's, and one of test files written after it: `--out new.json tests/new.py`) are
    read as one.

    A line that runs when its module is imported (a constant, a class body, a decorator) is executed once
    per process, under whichever test imported the module first: for such a line every test that executes
    any line of the file is taken. A file that is not Python (a config of `conf/`) is read by Hydra, not
    executed, so coverage sees none of its lines: for it every test of the map is taken."""
    covering: dict[str, dict[str, list[str]]] = {}
    for path in paths or (DEFAULT_OUT,):
        if not path.exists():
            raise SystemExit(f"no coverage map at {path}: run `make mutation-map` first (the suite under coverage)")
        for file, lines in json.loads(path.read_text()).items():
            for line, tests in lines.items():
                covering.setdefault(file, {}).setdefault(line, []).extend(tests)
    size = Counter(t for lines in covering.values() for ts in lines.values() for t in ts)

    def tests_for(file: str, line: int) -> list[str]:
        lines = covering.get(file, {})
        if not file.endswith(".py"):
            tests = set(size)
        elif at_import(REPO / file, line):
            tests = {t for ts in lines.values() for t in ts}
        else:
            tests = set(lines.get(str(line), []))
        return sorted(tests, key=lambda t: (size[t], t))

    return tests_for


def at_import(path: Path, line: int) -> bool:
    """Whether `line` of the module at `path` runs at import: outside every function body."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            body_start = node.body[0].lineno if not isinstance(node, ast.Lambda) else node.lineno
            if body_start <= line <= node.end_lineno:
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args, pytest_args = p.parse_known_args(argv)
    return measure(args.out, pytest_args)


if __name__ == "__main__":
    sys.exit(main())
