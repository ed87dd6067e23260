"""The W&B run of a job: the logger factory (`conf/logger/wandb.yaml`), its layout of a run, the
credentials lookup and the sync command of an offline run."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

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
    * the run URL printed when online (it survives `WANDB_SILENT`)."""

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
        timeout (wandb's `CommError`) makes the run offline, an unwritable W&B folder leaves only the local
        record (W&B disabled), each said in one line."""
        import wandb

        try:
            return super().experiment
        except wandb.errors.CommError as err:
            if self._wandb_init.get("mode") == "offline":
                raise
            first = str(err).splitlines()[0]
            print(f"W&B did not answer ({first}); this run is logged offline", file=sys.stderr, flush=True)
            self._wandb_init["mode"] = "offline"
            wandb.teardown()  # the service still holds the run id of the failed start ("run ID ... is in use")
        except OSError as err:
            print(f"W&B cannot write its folder ({err}); only the local record is kept", file=sys.stderr, flush=True)
            self._wandb_init["mode"] = "disabled"
        self._experiment = None
        return super().experiment

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        """Everything Lightning logs per epoch, as the history row of that epoch (rows logged in the same
        epoch merge). Rows of epochs the W&B run already holds (a resumed online run) are left out."""
        if "epoch" not in metrics:
            return  # step-level values: none are logged per step; end-of-fit values go to the summary
        self.log_row(dict(metrics), int(metrics["epoch"]))

    @rank_zero_only
    def log_row(self, data: dict, epoch: int) -> None:
        """Values (numbers, images, tables, histograms) into the history row of `epoch`."""
        run = self.experiment
        if epoch >= run.step:
            run.log({**data, "epoch": epoch}, step=epoch)

    @rank_zero_only
    def finish(self, exit_code: int = 0) -> None:
        """Close the W&B run: the last epoch's row is written first (wandb holds a row until the next step)."""
        if self._experiment is not None:
            self._experiment.log({}, commit=True)
            self._experiment.finish(exit_code=exit_code)
