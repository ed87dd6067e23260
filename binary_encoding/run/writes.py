"""A job folder that cannot be written (a full disk, a quota, a read-only or foreign folder): one line
naming the path and the free space instead of a traceback, and the record kept as it was.

Every file of the record is written atomically (`record.files.write_atomic`, checkpoints through
`record.checkpoint_io`), so a failed write leaves the previous checkpoint, metrics.csv and config intact
and no temporary file; the same command resumes once space is freed.
"""

from __future__ import annotations

import errno
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

from .policy import ConfigError

ALWAYS = (errno.ENOSPC, errno.EDQUOT)  # wherever the write went: the disk (or quota) is full
IN_FOLDER = (errno.EROFS, errno.EACCES, errno.EPERM)  # the user's to fix when the path is in the job's folder


class OutputError(ConfigError):
    """The job's folder cannot be written (one line, exit 2; recorded in a sweep)."""


def free_space(path: Path) -> str:
    """The free space of the file system that holds `path` (its nearest existing parent), for people."""
    for p in [path, *path.parents]:
        if p.exists():
            free = float(shutil.disk_usage(p).free)
            for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
                if free < 1024 or unit == "TiB":
                    return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
                free /= 1024
    return "unknown"


def _in(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def output_error(err: BaseException, out: Path) -> OutputError | None:
    """The one-line error for a failed write of the job in `out`, or None for other errors."""
    if not isinstance(err, OSError) or err.errno not in (*ALWAYS, *IN_FOLDER):
        return None
    path = Path(err.filename) if err.filename else out
    if err.errno in IN_FOLDER and not _in(path, out):
        return None  # e.g. an unreadable data set: not the output folder's
    full = err.errno in ALWAYS
    fix = "free space" if full else "make the folder writable (or use another output_dir)"
    return OutputError(
        f"cannot write {path}: {err.strerror} ({free_space(path)} free there{', not enough' if full else ''}); "
        f"the previous checkpoint and record are intact: {fix}, then rerun the same command to resume"
    )


@contextmanager
def output_errors(out: Path):
    """Turn a failed write of the job's folder into `OutputError`; quiet the log handlers that would
    print a traceback for every line they can no longer write."""
    try:
        yield
    except OSError as err:
        if (converted := output_error(err, Path(out))) is None:
            raise
        logging.raiseExceptions = False  # the job's train.log lives on the same full disk
        raise converted from err


def preflight_message(argv: list[str]) -> str | None:
    """A one-line message when the folder that Hydra is about to create for the job (`output_dir=`,
    `hydra.run.dir=`, `hydra.sweep.dir=`, else the working directory's outputs/ and multirun/) cannot be
    written: Hydra creates it and writes its own files there before the job starts, and reports a failure
    with a traceback. Probed by writing and removing a small file in its nearest existing folder."""
    import os
    import tempfile

    if any(a.split("=", 1)[0] in ("-h", "--help", "--hydra-help", "-c", "--cfg", "--info", "-sc") for a in argv):
        return None  # nothing is written
    targets = [
        Path(a.split("=", 1)[1]).expanduser()
        for a in argv
        if a.lstrip("+").split("=", 1)[0] in ("output_dir", "hydra.run.dir", "hydra.sweep.dir")
        and "${" not in a
        and a.split("=", 1)[1] not in ("", "null")
    ] or [Path.cwd()]
    for target in targets:
        where = next((p for p in [target, *target.parents] if p.exists()), Path("/"))
        try:
            with tempfile.NamedTemporaryFile(dir=where, prefix=".write_probe_") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            converted = output_error(OSError(err.errno, err.strerror, str(target)), target)
            return str(converted) if converted else f"cannot write {target}: {err.strerror}"
    return None
