"""Shared test helpers: compose the real configs, then shrink them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from binary_encoding.train import CONF_DIR

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def pytest_sessionstart(session):
    """Many tests start `python -m binary_encoding...` in another folder: that process must import this
    checkout, not another install (an editable install of a checkout since moved or deleted fails 43 tests
    with ModuleNotFoundError, one of an older checkout silently tests old code)."""
    here = Path(__file__).resolve().parents[1] / "binary_encoding"
    probe = "import importlib.util as u; s = u.find_spec('binary_encoding'); print(s.origin if s else '')"
    found = subprocess.run([sys.executable, "-c", probe], cwd="/", capture_output=True, text=True).stdout.strip()
    if not found or Path(found).resolve().parent != here:
        raise pytest.UsageError(
            f"a new Python process imports binary_encoding from {found or 'nowhere'}, not from {here}: "
            f'run pip install -e ".[dev]" in {here.parent} (or check PYTHONPATH)'
        )


def make_cfg(tmp_path, *overrides: str, logger: str = "csv"):
    """The real config with `overrides`, writing into `tmp_path`, without progress bars."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"logger={logger}", "trainer.enable_progress_bar=false", *overrides])
    with open_dict(cfg):
        cfg.output_dir = str(tmp_path)
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    return lambda *o, **kw: make_cfg(tmp_path, *o, **kw)


# ------------------------------------------------------------------------------------------------
# Processes a test starts end with the test, pass or fail (with whatever they started in turn)
# ------------------------------------------------------------------------------------------------


class Procs:
    """Start processes for one test, each in a session of its own (`start_new_session`), so that killing
    its process group also kills what it started (DDP ranks, joblib workers); `close` kills them all."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, cmd, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.started.append(proc)
        return proc

    def run(self, cmd, timeout: float, capture_output: bool = True, text: bool = True, **kwargs):
        """`subprocess.run` whose timeout kills the whole process group, not only its first process."""
        pipe = subprocess.PIPE if capture_output else None
        proc = self.start(cmd, stdout=pipe, stderr=pipe, text=text, **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader: killed even after it exited
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            proc.communicate(timeout=30)

    def close(self) -> None:
        for proc in self.started:
            self.kill(proc)


@pytest.fixture
def procs():
    p = Procs()
    try:
        yield p
    finally:
        p.close()


def _children() -> dict[int, list[int]]:
    """Every process's children, by parent pid (from /proc)."""
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            kids.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
    return kids


def _descendants() -> set[int]:
    kids, found, todo = _children(), set(), [os.getpid()]
    while todo:
        for pid in kids.get(todo.pop(), []):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def _is_service(pid: int) -> bool:
    """A W&B service that wandb, imported by this pytest process, keeps for all its runs (not a test's)."""
    try:
        return b"wandb" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


if sys.platform == "linux":  # orphans of a test's processes come to this process, so that it can end them
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    """Kill, when a test ends, every process it left (started by subprocess.run, Popen, multiprocessing, or
    orphaned by them: this process is their subreaper on Linux), whatever fixture started it or not."""
    if sys.platform != "linux":
        yield
        return
    before = _descendants()
    yield
    left = [pid for pid in _descendants() - before if not _is_service(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for pid in left:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)  # reap this process's own children and orphans; others are their parents' to reap


@pytest.fixture
def drawn(monkeypatch):
    """The figures the report draws, kept open instead of saved: {file stem: figure}."""
    from binary_encoding.report import figures as report_figures

    figs = {}
    monkeypatch.setattr(report_figures, "_save", lambda fig, path: figs.setdefault(path.stem, fig) and "written")
    yield figs
    for fig in figs.values():
        report_figures._plt().close(fig)


@pytest.fixture
def no_figures(monkeypatch):
    """The report with its figures and claims plot not drawn (the claims plot said written, so it adds no
    note): the calls to `write_figures` as (suffix, title, train) tuples."""
    from binary_encoding.report import cli as report_cli

    calls = []

    def figures(out, h, s, suffix, title, train):
        calls.append((suffix, title, train))
        return [], []

    monkeypatch.setattr(report_cli, "write_figures", figures)
    monkeypatch.setattr(report_cli, "plot_claims", lambda per_seed, p, title: f"{p.name}: written")
    return calls
