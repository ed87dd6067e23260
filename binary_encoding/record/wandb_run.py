"""The W&B run of a job: the logger factory (`conf/logger/wandb.yaml`), its layout of a run, the
credentials lookup and the sync command of an offline run.

W&B never stops a job: what it lacks (credentials for an online run, a folder it can write, a host that
answers) or an error it raises mid-run is said in one line on stderr, and the job goes on with its local
record (and an offline W&B run where one can be written)."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from .. import ranks
from ..metrics import catalog
from .files import wandb_run_id


def wandb_logger(
    save_dir: str,
    project: str = "binary_encoding",
    entity: str | None = None,
    mode: str = "auto",
    tags=(),
    group: str | None = None,
    job_type: str = "train",
    run_name: str | None = None,
    run_config: dict | None = None,
    init_timeout: float = 10.0,
):
    """The W&B logger of one job (`conf/logger/wandb.yaml`). Online when W&B has credentials for its host,
    offline otherwise; the run id is kept in the run folder so that a resumed job continues the same run.
    Tags: data set, backbone, head, experiment and sweep name (from `run_config`), then `tags`.
    An online run that cannot reach its host within `init_timeout` seconds goes offline (`RunLogger`)."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")  # wandb's banners off; the run URL is printed by RunLogger
    # wandb's crash reports are sent before the process may exit: a failed online start then held every job
    # 22 s longer at exit on a host without network (measured, wandb 0.31); WANDB_ERROR_REPORTING=true keeps them
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    if mode != "disabled" and (lacked := user_dirs_into(save_dir)):
        say(lacked)
        if lacked.endswith(LOCAL_ONLY):
            mode = "disabled"
    if mode == "online" and not wandb_logged_in():  # wandb.init would fail the job with a UsageError
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
        say(f"W&B has no API key for {host} (wandb login, or WANDB_API_KEY); this run is logged offline")
        mode = "offline"
    logger = RunLogger(
        project=project,
        entity=entity,
        group=group,
        job_type=job_type,
        name=run_name,
        id=wandb_run_id(save_dir),
        resume="allow",
        save_dir=str(save_dir),
        mode=mode,
        tags=list(dict.fromkeys([*run_tags(run_config or {}), *(tags or [])])),
        config=run_config,
        settings=wandb.Settings(init_timeout=init_timeout),
    )
    # Lightning passes wandb.init a deprecated `anonymous` key that makes wandb warn; it has no public way
    # to leave it out, so it is taken out of the logger's (private) init arguments before the run starts
    logger._wandb_init.pop("anonymous", None)
    return logger


def run_tags(run_config: dict) -> list[str]:
    """W&B tags of a run: data set, backbone, head, experiment, sweep name (those that are set)."""
    choices = run_config.get("choices") or {}
    names = [
        (run_config.get("data") or {}).get("name"),
        (run_config.get("backbone") or {}).get("name"),
        (run_config.get("head") or {}).get("name"),
        choices.get("experiment"),
        run_config.get("name"),
    ]
    return list(dict.fromkeys(str(n) for n in names if n))


def wandb_logged_in() -> bool:
    """Whether W&B has credentials for its host (`WANDB_BASE_URL`, W&B's own lookup: `WANDB_API_KEY`,
    settings files, .netrc of that host), without prompting or contacting the server."""
    import wandb

    try:
        return bool(wandb.login(prompt=False, verify=False))
    except Exception:  # malformed credentials: train offline rather than not at all
        return False


LOCAL_ONLY = "only the local record is kept"
# W&B's per-user folders that a run writes into (wandb.env): staging files of logged tables and images
# (a read-only HOME failed the job at the first table, "Unable to write staging files"), the artifact
# cache and the W&B service's logs. Its config folder is only read by a run.
USER_DIRS = {"WANDB_DATA_DIR": "user_data", "WANDB_CACHE_DIR": "user_cache"}
_USER_ENV: dict[str, str | None] = {}  # the user's values of those this process pointed into a job folder


def user_dirs_into(save_dir: str | Path) -> str | None:
    """Point each of W&B's per-user folders that cannot be written into the job's `wandb/` folder (the
    job folder is writable, or the job has failed before). The line that says so; it ends in
    `LOCAL_ONLY` when the job folder cannot take them either. None when every folder can be written."""
    from wandb import env

    for var in list(_USER_ENV):  # a previous job's folder (a sweep in one process) is not this job's
        if (value := _USER_ENV.pop(var)) is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    paths = {"WANDB_DATA_DIR": env.get_data_dir(), "WANDB_CACHE_DIR": env.get_cache_dir()}
    lacked = {var: (paths[var], err) for var in USER_DIRS if (err := write_error(paths[var]))}
    if not lacked:
        return None
    save_dir = Path(save_dir).resolve()  # wandb reads the variables from wherever it runs
    (path, err), *_ = lacked.values()
    where = " and ".join(str(p) for p, _ in lacked.values())
    for var in lacked:
        _USER_ENV[var] = os.environ.get(var)
        os.environ[var] = str(save_dir / "wandb" / USER_DIRS[var])
        if (still := write_error(os.environ[var])) is not None:
            return f"W&B cannot write {where} nor {os.environ[var]} ({still.strerror}); {LOCAL_ONLY}"
    return f"W&B cannot write {where} ({err.strerror}); its staging and cache files go to {save_dir}/wandb"


def write_error(path: str | Path) -> OSError | None:
    """Why a file cannot be made in folder `path` (made if missing), or None."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return None
    except OSError as err:
        return err


def say(line: str) -> None:
    """One line about W&B on stderr, from rank 0 only (every DDP rank builds the logger)."""
    if ranks.is_rank0():
        print(line, file=sys.stderr, flush=True)


def offline_sync_command(out: str | Path, run_id: str) -> str:
    """The command that uploads every part of an offline run: a resumed job leaves one
    `offline-run-<time>-<id>` folder per attempt, and `wandb sync` given all of them in one call
    uploads them in order of start time into one run (the epoch is the step, so later parts extend it)."""
    return f"wandb sync {shlex.quote(str(Path(out) / 'wandb'))}/offline-run-*-{run_id}"


class RunLogger(WandbLogger):
    """Lightning's W&B logger with the project's layout of a run:

    * one history row per epoch, the epoch as W&B's step and x-axis (Lightning's default x-axis is
      the optimizer step, and its step restarts when an offline run resumes; epochs do not);
    * summaries of the per-epoch curves as the metric catalog says (`summary`: the best value, max or
      min, of the curves a reader compares across runs; else the last), end-of-training values only in
      the summary (`final/...`, written by `run.fit.fit`);
    * the run URL printed when online (it survives `WANDB_SILENT`);
    * every call into W&B guarded: the first error turns W&B off for the rest of the job (one line)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.off = False  # W&B raised: nothing more is sent, the local record goes on

    @property
    @rank_zero_experiment
    def experiment(self):
        new = self._experiment is None
        run = self._start() if new else super().experiment
        if new and hasattr(run, "define_metric"):
            run.define_metric("epoch")
            run.define_metric("*", step_metric="epoch", step_sync=True)  # replaces Lightning's global-step axis
            for key, summary in catalog.summary_definitions():
                run.define_metric(key, step_metric="epoch", summary=summary)
            if not getattr(run, "offline", True) and getattr(run, "url", None):
                print(f"W&B run: {run.url}", flush=True)
        return run

    def _start(self):
        """Start the W&B run; training never waits on W&B: a host that does not answer within the init
        timeout or refuses the credentials (wandb's `CommError`, `UsageError`) makes the run offline, an
        unwritable W&B folder or any other error leaves only the local record (W&B disabled), each said
        in one line."""
        import wandb

        while True:
            try:
                return super().experiment
            except Exception as err:
                mode = self._wandb_init.get("mode")
                if mode == "disabled":
                    raise  # a disabled run writes nothing: its error is not W&B lacking something
                first = (str(err).splitlines() or [type(err).__name__])[0]
                if mode != "offline" and isinstance(err, wandb.errors.CommError):
                    say(f"W&B did not answer ({first}); this run is logged offline")
                    self._wandb_init["mode"] = "offline"
                elif mode != "offline" and isinstance(err, wandb.errors.UsageError):  # e.g. credentials refused
                    say(f"W&B cannot start online ({first}); this run is logged offline")
                    self._wandb_init["mode"] = "offline"
                elif isinstance(err, OSError):
                    say(f"W&B cannot write its folder ({err}); {LOCAL_ONLY}")
                    self._wandb_init["mode"] = "disabled"
                else:
                    say(f"W&B could not start its run ({type(err).__name__}: {first}); {LOCAL_ONLY}")
                    self._wandb_init["mode"] = "disabled"
                if mode != "offline":
                    wandb.teardown()  # the service still holds the run id of the failed start ("run ID ... is in use")
                self._experiment = None

    def _guarded(self, what: str, call) -> None:
        """`call()`, unless W&B is off; its first error turns W&B off for the rest of the job, in one line
        (the offline run written so far is closed, so that it can still be uploaded)."""
        if self.off:
            return
        try:
            call()
        except Exception as err:
            self.off = True
            first = (str(err).splitlines() or [""])[0]
            say(f"W&B failed while {what} ({type(err).__name__}: {first}); it is off for the rest of this job")
            with contextlib.suppress(Exception):
                if self._experiment is not None:
                    self._experiment.finish(exit_code=1)

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        self._guarded("logging the config", lambda: super(RunLogger, self).log_hyperparams(params))

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        """Everything Lightning logs per epoch, as the history row of that epoch (rows logged in the same
        epoch merge). Rows of epochs the W&B run already holds (a resumed online run) are left out."""
        if "epoch" not in metrics:
            return  # step-level values: none are logged per step; end-of-fit values go to the summary
        self.log_row(dict(metrics), int(metrics["epoch"]))

    @rank_zero_only
    def log_row(self, data, epoch: int) -> None:
        """Values (numbers, images, tables, histograms) into the history row of `epoch`; `data` may be a
        function that makes them (then only called while W&B is on, and its errors are W&B's)."""

        def log():
            run = self.experiment
            if epoch >= run.step:
                run.log({**(data() if callable(data) else data), "epoch": epoch}, step=epoch)

        self._guarded(f"logging epoch {epoch}", log)

    @rank_zero_only
    def update_summary(self, values: dict) -> None:
        """Values into the run's summary (the end-of-training values)."""
        self._guarded("writing the summary", lambda: self.experiment.summary.update(values))

    def sync_command(self) -> str | None:
        """The command that uploads this job's offline run, if one was written; else None."""
        run = self._experiment
        if run is None or self._wandb_init.get("mode") == "disabled" or not getattr(run, "offline", False):
            return None
        if not list((Path(self.save_dir) / "wandb").glob(f"offline-run-*-{self.version}")):
            return None
        return offline_sync_command(self.save_dir, self.version)

    @rank_zero_only
    def finish(self, exit_code: int = 0) -> None:
        """Close the W&B run: the last epoch's row is written first (wandb holds a row until the next step)."""

        def finish():
            self._experiment.log({}, commit=True)
            self._experiment.finish(exit_code=exit_code)

        if self._experiment is not None:
            self._guarded("closing the run", finish)
