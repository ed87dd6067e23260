"""What a sweep prints: `job i/N: overrides` when each job starts, and a recap when the sweep ends.

`SweepLog` is a Hydra callback (`hydra.callbacks` in conf/config.yaml). The job line is logged in the
job's process (with hydra/launcher=slurm: in the job's SLURM log), after Hydra has set up the job's
logging, so it also opens the job's train.log. The recap is printed by the process that launched the
sweep, from what the job folders hold (`files.SUMMARY`, `files.FAILED`), so it works with any
launcher: with hydra/launcher=slurm the jobs run elsewhere and write into the same folders. The
callback travels to such jobs with Hydra's context, the list of jobs included.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..record import files, summarize

log = logging.getLogger("binary_encoding")


def sweep_jobs(config: DictConfig) -> list[list[str]] | None:
    """The overrides of every job of the sweep, in launch order, as Hydra's basic sweeper makes them
    (`hydra.sweeper.params` and the command line); None for another sweeper or overrides it cannot read."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    parser = OverridesParser.create(config_loader=loader)  # the loader lists a group's choices for glob()
    try:  # a malformed override is Hydra's to report
        batches = BasicSweeper.split_arguments(parser.parse_overrides([*params, *config.hydra.overrides.task]), None)
    except Exception:
        return None
    return [job for batch in batches for job in batch]


def job_folders(sweep_dir: Path, output_subdir: str | None) -> dict[tuple[str, ...], Path]:
    """The job folders in `sweep_dir`, by their overrides (which Hydra writes to <job>/.hydra/overrides.yaml)."""
    if not output_subdir or not sweep_dir.is_dir():
        return {}
    return {
        tuple(OmegaConf.load(f)): f.parent.parent for f in sorted(sweep_dir.glob(f"*/{output_subdir}/overrides.yaml"))
    }


def summary_times(folders) -> dict[Path, int]:
    """When each folder's summary.json was written (folders without one left out)."""
    return {f: (f / files.SUMMARY).stat().st_mtime_ns for f in folders if (f / files.SUMMARY).exists()}


REFUSED = ".refused"  # <sweep dir>/.refused/<sweep token>/<job num>: the jobs of one sweep refused their folder


class Refused(CompactHydraException):
    """A job of a sweep refused because another process holds its folder (`lock.FolderBusy`): Hydra prints
    a `CompactHydraException` as its message alone, where it prints a traceback for other errors. `why`:
    the line the recap gives it."""

    def __init__(self, message: str, why: str = "in use by another process"):  # a default: unpickled by args
        super().__init__(message)
        self.why = why


def refusal(err: Exception) -> Exception:
    """What a job of a sweep raises for the config error `err`: `err` itself, or for a folder held by
    another process one line now and a `Refused` (the recap lists every refused job)."""
    from .lock import FolderBusy

    if not isinstance(err, FolderBusy):
        return err
    print(f"refused: {err}", file=sys.stderr, flush=True)
    return Refused(
        "its folder is in use by another process: the job was refused (the recap lists every one)",
        why=f"in use by {err.holder}",
    )


def refused_jobs(sweep_dir: Path, token: str) -> dict[int, str]:
    """The jobs of the sweep `token` that were refused (`SweepLog.on_job_end`), by job number, with why."""
    folder = sweep_dir / REFUSED / token
    found = {}
    for f in folder.glob("*") if folder.is_dir() else []:
        try:
            found[int(f.name)] = f.read_text().strip()
        except (OSError, ValueError):
            continue
    return found


def job_status(folder: Path | None, finished_before: dict[Path, int]) -> tuple[str, dict]:
    """A job's status and summary: `finished` (in this sweep), `skipped` (finished before and not run
    again), `diverged`, `running` (held by a live process, `lock.py`), `failed` (failed.json), `unfinished`
    (started, then killed), or `not run` (no folder)."""
    if folder is None:
        return "not run", {}
    summary_path = folder / files.SUMMARY
    summary = summarize.read(folder)[0] if summary_path.exists() else None
    if summary is not None:  # an unreadable summary is no finished job: `unfinished` (it is trained again)
        if summary.get("diverged"):
            return "diverged", summary
        skipped = finished_before.get(folder) == summary_path.stat().st_mtime_ns
        return ("skipped" if skipped else "finished"), summary
    from . import lock

    if (h := lock.holder(folder)) is not None and lock.stale_reason(h) is None:
        return "running", {"holder": lock.describe(h)}  # by another process (this sweep's job was refused)
    return ("failed" if (folder / files.FAILED).exists() else "unfinished"), {}


def recap(
    sweep_dir: str,
    jobs: list[list[str]],
    finished_before: dict[Path, int],
    output_subdir: str | None,
    refused: dict[int, str] | None = None,
) -> str:
    """The recap table of a sweep: one line per job (named by the overrides that differ between jobs; a
    failed one with its error; one `refused` with the holder of its folder, whatever another sweep did
    there since: `refused` maps job numbers from 0 to why), the counts, and the report command."""
    folders = job_folders(Path(sweep_dir), output_subdir)
    refused = refused or {}
    n, width = len(jobs), len(str(len(jobs)))
    common = set.intersection(*(set(job) for job in jobs)) if n > 1 else set()  # left out of the names
    lines = [f"{'job':>{2 * width + 1}}  {'status':<10}  test acc  codes     min  overrides"]
    counts: dict[str, int] = {}
    for i, overrides in enumerate(jobs, 1):
        folder = folders.get(tuple(overrides))
        status, s = ("refused", {}) if i - 1 in refused else job_status(folder, finished_before)
        counts[status] = counts.get(status, 0) + 1
        acc = f"{s['test_acc']:.4f}" if s.get("test_acc") is not None else "-"
        codes = str(s["n_codes"]) if s.get("n_codes") is not None else "-"
        minutes = f"{s['fit_seconds'] / 60:.1f}" if s.get("fit_seconds") is not None else "-"
        name = ",".join(o for o in overrides if o not in common)
        line = f"{i:>{width}}/{n}  {status:<10}  {acc:>8}  {codes:>5}  {minutes:>6}  {name}"
        if status == "running":
            line += f"  (in use by {s['holder']})"
        if status == "refused":
            line += f"  ({refused[i - 1]})"
        if status == "failed":
            try:
                error = (json.loads((folder / files.FAILED).read_text()).get("error") or "?").splitlines()[0]
            except (OSError, ValueError, AttributeError):  # cut by a crash: the recap still prints
                error = f"unreadable {files.FAILED}"
            line += f"  ({error if len(error) <= 100 else error[:97] + '...'})"
        lines.append(line)
    lines.append(f"{n} jobs: " + ", ".join(f"{c} {status}" for status, c in counts.items()))
    lines.append(f"report: python -m binary_encoding.report {sweep_dir}")
    return "\n".join(lines)


class SweepLog(Callback):
    """`job i/N: overrides` at each job's start; the recap table when the launching process exits."""

    def __init__(self):
        self.jobs: list[list[str]] | None = None
        self.token = ""  # this sweep's name for its refused jobs (travels to the jobs with the callback)
        self.launcher: tuple | None = None  # (host, pid, start) of the process that launched the sweep

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.jobs = sweep_jobs(config)
        if self.jobs is None:
            return
        from .lock import proc_start

        self.token = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self.launcher = (socket.gethostname(), os.getpid(), proc_start(os.getpid()))
        sweep_dir, subdir = str(config.hydra.sweep.dir), config.hydra.output_subdir
        before = summary_times(job_folders(Path(sweep_dir), subdir).values())
        # at exit, not in on_multirun_end: Hydra skips that hook when a job failed (its sweeper re-raises
        # the job's error after all jobs ran), and a failed job is what a recap is for
        atexit.register(self._print_recap, sweep_dir, before, subdir)
        from . import job

        job.handle_sigterm()  # a SIGTERM between jobs ends the sweep with a message and the recap

    def _print_recap(self, sweep_dir: str, before: dict[Path, int], subdir: str | None) -> None:
        ran = set(job_folders(Path(sweep_dir), subdir))
        refused = refused_jobs(Path(sweep_dir), self.token)
        if any(tuple(job) in ran for job in self.jobs):  # nothing to recap when no job started
            print(recap(sweep_dir, self.jobs, before, subdir, refused), flush=True)
        shutil.rmtree(Path(sweep_dir) / REFUSED / self.token, ignore_errors=True)
        with contextlib.suppress(OSError):
            (Path(sweep_dir) / REFUSED).rmdir()  # when no other sweep's notes are left there

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        """A job refused its folder (`refusal`): noted for the recap, in the sweep folder (this may run in
        a worker process or on another node)."""
        if not self.token or not isinstance(getattr(job_return, "_return_value", None), Refused):
            return
        notes = Path(config.hydra.sweep.dir) / REFUSED / self.token
        with contextlib.suppress(OSError):
            notes.mkdir(parents=True, exist_ok=True)
            (notes / str(config.hydra.job.num)).write_text(job_return._return_value.why)

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.types import RunMode

        if config.hydra.mode != RunMode.MULTIRUN:
            return
        watch_launcher(self.launcher)
        of = f"/{len(self.jobs)}" if self.jobs else ""
        log.info("job %d%s: %s", config.hydra.job.num + 1, of, ",".join(config.hydra.overrides.task))


# A job run by a worker of a parallel launcher on this host (hydra/launcher=local_parallel: loky workers) does
# not end with its launcher: after a kill -9 of the sweep, loky's workers went on for 5-6 minutes, one of them
# training its job to the end. Each such worker watches its launcher and, once it is gone, ends itself as a
# kill would: the job resumes from its last committed epoch when the sweep is run again.
LAUNCHER_POLL_S = 1.0
_watched: set = set()  # the launchers this process watches already (a worker runs several jobs)


def watch_launcher(launcher: tuple | None) -> None:
    """In a worker process of the sweep's launcher on this host, end this process when the launcher ends."""
    import threading

    from .lock import proc_start

    if launcher is None or launcher in _watched or sys.platform != "linux":
        return
    host, pid, start = launcher
    if host != socket.gethostname() or pid == os.getpid() or start is None:
        return  # the launching process itself, or a job on another node (SLURM: the scheduler ends it)
    _watched.add(launcher)

    def watch():
        while proc_start(pid, live=True) == start:
            time.sleep(LAUNCHER_POLL_S)
        msg = f"the sweep's launching process {pid} is gone: this job stops (run the sweep again to resume it)"
        print(msg, file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # as the launcher got: no half-run cleanup; the record stays whole

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()
