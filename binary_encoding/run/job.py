"""The life of one job around its training: output folder, skip or resume, failure record, DDP ranks.

A job is a folder (`record/files.py` names its files). Sweep-safe: a job whose folder holds a summary that
counts (whole, of the config and checkpoint beside it) is skipped (its summary returned); a job cut off
earlier resumes from its last checkpoint once it passes its checks (zip CRCs, epoch); a failure or a stop is
recorded in failed.json and re-raised (Hydra's launcher then runs the remaining jobs and reports the
failure at the end). With `trainer.devices > 1` the job starts its own ranks with torch.distributed.run.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ..ranks import is_launched_rank, is_rank0
from ..record import files, identity

log = logging.getLogger("binary_encoding")


def output_dir(cfg: DictConfig) -> Path:
    """`output_dir` if set, else Hydra's job folder, else outputs/<name>/<time>."""
    if cfg.get("output_dir"):
        return Path(cfg.output_dir)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path("outputs") / str(cfg.name) / time.strftime("%Y-%m-%d_%H-%M-%S")


def run_name(cfg: DictConfig) -> str:
    """The job's folder name in a sweep (`identity.folder_name`), else `head=...,seed=...`."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        name = identity.folder_name(HydraConfig.get().overrides.task)
        if name:
            return name
    return f"head={cfg.head.name},seed={cfg.seed}"


def run_group(cfg: DictConfig) -> str:
    """The sweep name and the job's overrides that define the run, without the seed (`identity.group_name`),
    else `<name>/head=...`: the runs that differ only in their seed share it (W&B's group averages them)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return identity.group_name(str(cfg.name), HydraConfig.get().overrides.task)
    return identity.group_name(str(cfg.name), [f"head={cfg.head.name}"])


def finished(cfg: DictConfig, out: Path) -> dict | None:
    """The summary of a job that already finished in `out` (then it is skipped), else None. A summary that
    does not count (`summarize.read`: cut, empty, or left from another run) is moved aside, said in one
    line, and the job trained again (resumed from its checkpoint when it has one)."""
    from ..record import summarize

    done = out / files.SUMMARY
    if is_launched_rank() or not done.exists() or not cfg.get("resume", True) or cfg.get("ckpt_path") is not None:
        return None
    summary, why = summarize.read(out)
    if summary is None:
        done.replace(out / files.STALE_SUMMARY)
        print(f"not finished: {out}: {why}; training it again (the old file is {files.STALE_SUMMARY})", flush=True)
        return None
    if (out / files.CONFIG).exists() and (diff := settings_diff(cfg, out)):
        from .policy import ConfigError  # asked for another run than the one finished here: never its results

        raise ConfigError(
            f"{out} holds a finished run with other settings ({diff}). Use another output_dir, "
            "or resume=false to train this one there"
        )
    if _trains_on(cfg, out, summary):
        return None
    print(f"already finished: {out} (remove its {files.SUMMARY} to train it again)")
    return summary


def check_settings(cfg: DictConfig, out: Path) -> None:
    """`policy.validate` before the job writes anything. A job of a sweep records the refusal in its
    failed.json (Hydra made its folder) and the sweep goes on; a single run leaves no folder (Hydra's
    own is never made: `policy.CheckFirst`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .policy import ConfigError, validate

    try:
        validate(cfg)
    except ConfigError:
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN and out.is_dir():
            with recording_failure(out):
                raise
        raise


def _trains_on(cfg: DictConfig, out: Path, summary: dict) -> bool:
    """Whether the run finished in `out` is asked for more epochs (`trainer.max_epochs` above the summary's
    `epochs`): then its summary is moved aside and it trains on from its last checkpoint (the resume check
    lets `trainer.max_epochs` change: `identity.RESUMABLE_CHANGES`). Fewer epochs are refused: the
    checkpoint is past them, and the finished run's numbers are not those of the shorter run."""
    from .policy import ConfigError

    asked, done = cfg.trainer.get("max_epochs"), summary.get("epochs")
    if not isinstance(asked, int) or asked < 0 or not isinstance(done, int) or asked == done:
        return False
    if asked < done:
        raise ConfigError(
            f"{out} holds a run finished at {done} epochs; trainer.max_epochs={asked} asks for fewer. "
            f"Use another output_dir, or resume=false to train {asked} epochs there"
        )
    (out / files.SUMMARY).replace(out / files.STALE_SUMMARY)
    print(
        f"training on: {out} finished {done} epochs; trainer.max_epochs={asked} continues from its last "
        f"checkpoint (the {done}-epoch summary is kept as {files.STALE_SUMMARY})",
        flush=True,
    )
    return True


@contextmanager
def recording_failure(out: Path):
    """Remove an earlier attempt's failed.json; write one (error and traceback) if this attempt fails."""
    if is_rank0():
        (out / files.FAILED).unlink(missing_ok=True)
    try:
        yield
    except BaseException as err:
        if is_rank0():
            try:
                files.write_json(
                    out / files.FAILED,
                    {
                        "error": f"{type(err).__name__}: {err}",
                        "time": time.strftime("%c"),
                        "traceback": traceback.format_exc(),
                    },
                )
            except OSError as e:  # a full disk: the error itself is reported, failed.json where it fits
                log.warning("could not write %s: %s", out / files.FAILED, e.strerror)
        raise


class Terminated(SystemExit):
    """The job was stopped from outside (SIGTERM: exit 143, Ctrl-C: exit 130); its last checkpoint stays."""

    def __init__(self, code: int, message: str):
        super().__init__(code)
        self.message = message

    def __str__(self) -> str:
        return self.message


def resume_hint(cfg: DictConfig, out: Path) -> str:
    """How to continue this job: the same command in a sweep (its folder is found again), else the
    command with the job's folder (a single run's folder is timestamped)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized():
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return "rerun the same command to resume (finished jobs are skipped)"
        args = [a for a in hc.overrides.task if not a.startswith("output_dir=")]
        command = " ".join(shlex.quote(a) for a in [*args, f"output_dir={out}"])  # pasted into a shell as it is
        return f"resume with: python -m binary_encoding.train {command}"
    return f"resume with train(cfg) and output_dir={out}"


_JOB: tuple | None = None  # (cfg, out) of the job this process runs now, for a stop outside `trainer.fit`


def _stop_outside_fit(signum, frame):
    """SIGTERM outside `trainer.fit` (the job setting up, the end-of-run metrics, a sweep between jobs): the
    same message, failed.json and recap as inside it, instead of the default death (exit 143 and nothing)."""
    if signal.getsignal(signal.SIGTERM) is not _stop_outside_fit:
        return  # Lightning's handler is installed (and calls this one too): it stops the fit (`terminations`)
    if _JOB is None:
        msg = "terminated between jobs; rerun the same command to resume (finished jobs are skipped)"
    else:
        cfg, out = _JOB
        ckpt = files.last_checkpoint(out)
        where = f"from {ckpt}" if ckpt.exists() else "from the start (no checkpoint yet)"
        msg = f"terminated outside training (setting up, or the end-of-run metrics); {resume_hint(cfg, out)} ({where})"
    if is_rank0():
        print(msg, file=sys.stderr, flush=True)
    raise Terminated(143, msg)


def handle_sigterm(cfg: DictConfig | None = None, out: Path | None = None) -> None:
    """Stop on SIGTERM with a message and a record whenever this process is in a job (`cfg`, `out`) or
    between the jobs of a sweep (no job), and kill it when it has not stopped `runtime.sigterm_grace_s`
    seconds after (`watchdog.py`). A handler of a launcher stays (submitit's lets SLURM's SIGTERM
    pass before a requeue), and DDP ranks keep their launcher's handling."""
    global _JOB
    _JOB = (cfg, out) if cfg is not None else None
    if is_launched_rank() or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, _stop_outside_fit):
        return
    try:
        signal.signal(signal.SIGTERM, _stop_outside_fit)
    except ValueError:  # not the main thread (a launcher running jobs in threads): the default stays
        return
    from . import policy, watchdog

    # a job stuck in a native call never runs the handler: killed after the grace; none left between jobs
    watchdog.arm(policy.sigterm_grace_s(cfg)) if cfg is not None else watchdog.disarm()


@contextmanager
def terminations(trainer, cfg: DictConfig, out: Path):
    """Turn a stop from outside during `trainer.fit` into `Terminated`: Lightning ends a SIGTERM with a
    `SystemExit` without a code (exit 0: a sweep would go on as if the job had finished) and a Ctrl-C
    with `sys.exit(1)` after its graceful shutdown, printing nothing."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    def stop(code: int, what: str):
        epoch = trainer.current_epoch
        ckpt = files.last_checkpoint(out)
        where = f"from {ckpt}" if ckpt.exists() else "from the start (no checkpoint yet)"
        msg = f"{what} at epoch {epoch}; {resume_hint(cfg, out)} ({where})"
        if is_rank0():
            print(msg, file=sys.stderr, flush=True)
        return Terminated(code, msg)

    try:
        yield
    except SIGTERMException as e:
        raise stop(143, "terminated") from e
    except KeyboardInterrupt as e:
        raise stop(130, "interrupted") from e
    except SystemExit as e:
        if trainer.interrupted and not isinstance(e, Terminated):  # Lightning's exit after a Ctrl-C
            raise stop(130, "interrupted") from e
        raise
    if trainer.interrupted:
        raise stop(130, "interrupted")


def start(cfg: DictConfig, out: Path) -> None:
    """Fix the job's folder and run name in `cfg` and write the resolved config."""
    with open_dict(cfg):
        cfg.output_dir = str(out)
        cfg.run_name = cfg.get("run_name") or run_name(cfg)
        cfg.group = cfg.get("group") or run_group(cfg)
    if is_rank0():
        if str(cfg.get("resume", True)) == "False":  # starting over: an old summary must not pass for this run's
            for name in (files.SUMMARY, files.EVAL):
                (out / name).unlink(missing_ok=True)
        files.write_atomic(out / files.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))


def settings_diff(cfg: DictConfig, out: Path) -> str | None:
    """The settings that define a run in which `cfg` differs from the config.yaml in `out` (those that
    may change on resume left out: `identity.may_change_on_resume`), as `key: old -> new; ...`, or None."""
    old = identity.flat_config(OmegaConf.to_container(OmegaConf.load(out / files.CONFIG), resolve=True))
    new = identity.flat_config(OmegaConf.to_container(cfg, resolve=True))
    keys = sorted(old.keys() | new.keys())
    changed = [k for k in keys if old.get(k) != new.get(k) and not identity.may_change_on_resume(k)]
    if not changed:
        return None
    diff = "; ".join(f"{k}: {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}" for k in changed[:8])
    return diff + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")


def check_same_run(cfg: DictConfig, out: Path) -> None:
    """Refuse to resume the checkpoint in `out` with settings that define another run (a changed lr or
    head would continue the old optimizer under the new name). `resume=force` continues anyway."""
    from .policy import ConfigError

    old_path = out / files.CONFIG
    if str(cfg.get("resume", True)) in ("False", "force") or is_launched_rank() or not old_path.exists():
        return
    if not files.last_checkpoint(out).exists() or (out / files.SUMMARY).exists():
        return
    if diff := settings_diff(cfg, out):
        raise ConfigError(
            f"{out} holds a cut-off run with other settings ({diff}). Use another output_dir, "
            "resume=false to start over there, or resume=force to continue it with the new settings"
        )


def resume_checkpoint(cfg: DictConfig, out: Path) -> str | None:
    """`ckpt_path`, else the job's last checkpoint when it was cut off (and `resume` is on), else None."""
    if cfg.get("ckpt_path") is not None:
        return str(cfg.ckpt_path)
    last = files.last_checkpoint(out)
    if str(cfg.get("resume", True)) != "False" and last.exists():
        log.info("resuming from %s", last)
        return str(last)
    return None


def check_checkpoint(cfg: DictConfig, out: Path) -> None:
    """Refuse, before the job writes anything, a checkpoint it cannot resume from: one that is no zip file
    (cut off while written) or fails its zip CRCs (damaged: Lightning would resume on broken weights; the
    check reads the file once, 2 ms for the default run's 1 MB checkpoint), or one past `trainer.max_epochs`
    (Lightning would refuse it with a traceback after the config was rewritten)."""
    import zipfile

    from .policy import ConfigError

    path = resume_checkpoint(cfg, out)
    if path is None or is_launched_rank():
        return
    way_out = "remove it to resume from scratch in this folder, or run with resume=false"
    if not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path} is no file")
    try:
        with zipfile.ZipFile(path) as z:  # torch checkpoints are zip files; a cut-off write is not
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ConfigError(f"{path} is not a readable checkpoint (cut off while written?): {way_out}") from None
    if bad is not None:
        raise ConfigError(f"{path} is damaged ({bad} fails its CRC check): {way_out}")
    import torch

    ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    done = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("completed")
    max_epochs = cfg.trainer.get("max_epochs")
    if done is not None and max_epochs not in (None, -1) and done > max_epochs:  # Lightning's own condition
        raise ConfigError(
            f"{path} is at epoch {done}, past trainer.max_epochs={max_epochs}: resume with "
            f"trainer.max_epochs>={done}, or run with resume=false to start over"
        )


def launch_ddp(cfg: DictConfig, out: Path, ranks: int) -> dict:
    """Run this one job on `ranks` ranks with torch.distributed.run.

    Each job gets its own process group on a free port (--standalone), so jobs of a Hydra sweep never
    share or re-launch each other; if one rank fails, torch.distributed.run stops the others and the
    job fails instead of hanging. Rank 0 writes the record; the job's W&B run id is fixed beforehand.
    """
    if "_target_" in cfg.logger:
        files.wandb_run_id(out)
    path = out / files.DDP_CONFIG
    OmegaConf.save(cfg, path, resolve=True)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={ranks}",
        "-m",
        "binary_encoding.run.ddp_worker",
        str(path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"DDP job on {ranks} ranks failed (exit code {result.returncode}); the ranks' output is "
            f"above and the record in {out}"
        )
    return json.loads((out / files.SUMMARY).read_text())


def cluster_plugins() -> list:
    """Lightning's cluster environment for this process: a rank of `launch_ddp` (also inside a SLURM task),
    or a SLURM task whose requeueing is the launcher's job."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if "TORCHELASTIC_RUN_ID" in os.environ:
        return [TorchElasticEnvironment()]
    if SLURMEnvironment.detect():
        return [SLURMEnvironment(auto_requeue=False)]
    return []


def quiet_lightning() -> None:
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.seed",
        "lightning.pytorch.accelerators.cuda",
        "lightning.fabric.utilities.distributed",
        "lightning.pytorch.trainer.connectors.signal_connector",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resuming into the same folder
    warnings.filterwarnings("ignore", message=".*Total length of `list` across ranks is zero.*")  # no val split
    # latent metrics (splits gathered from all ranks) and the training sums (reduced by the module) are
    # identical on every rank when logged: no further reduction is needed
    warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")
