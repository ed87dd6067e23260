"""`train(cfg)`: one job from its config to its summary, the plain function that the command line, the
DDP ranks, tests and notebooks call. The job's life around the training (folder, skip, resume, failure
record, DDP ranks) is `job.py`; config checks and what `auto` means are `policy.py`."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings

from omegaconf import DictConfig, OmegaConf

from .. import ranks
from .build import build_callbacks, build_datamodule, build_loggers, build_model


def train(cfg: DictConfig, callbacks: list | None = None) -> dict:
    """Train one model as `cfg` says; return the summary (also written to the run folder)."""
    from . import job, lock, writes

    job.quiet_lightning()
    out = job.output_dir(cfg)
    job.check_settings(cfg, out)  # before the job writes anything
    with writes.output_errors(out):  # a full or unwritable folder: one line (writes.py)
        out.mkdir(parents=True, exist_ok=True)
        if (done := job.finished(cfg, out)) is not None:
            return done
        job.handle_sigterm(cfg, out)
        try:
            # one process per folder (lock.py); the ranks of a DDP job run under their launching process's lock
            held = contextlib.nullcontext() if ranks.is_launched_rank() else lock.held(out)
            with held, job.recording_failure(out):
                return _train(cfg, out, callbacks)
        finally:
            job.handle_sigterm()  # between jobs


def _train(cfg: DictConfig, out, callbacks: list | None) -> dict:
    from . import job, policy

    job.check_same_run(cfg, out)
    job.check_checkpoint(cfg, out)
    job.start(cfg, out)
    devices = policy.num_devices(cfg)
    if devices > 1 and not ranks.is_launched_rank():
        return job.launch_ddp(cfg, out, devices)
    return fit(cfg, callbacks or [])


def fit(cfg: DictConfig, extra_callbacks: list) -> dict:
    """Build everything from `cfg`, fit, and write the summary (on rank 0)."""
    import lightning as L

    from ..record import csv_log, files, summarize
    from ..record.checkpoint_io import AtomicCheckpointIO, EpochCommit
    from . import console, job, policy, settings, threads

    n_threads = threads.apply(cfg.runtime.get("threads"))  # first: N jobs at once split the cores
    console.log.info(f"torch threads: {n_threads}")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    settings.check_data(cfg, dm)  # what only the data shows, before anything trains
    latent_width = cfg.head.get("width")
    if latent_width and 2**latent_width < dm.num_classes:
        warnings.warn(
            f"head.width={latent_width} gives {2**latent_width} binary codes for {dm.num_classes} "
            f"classes: classes must share codes (need width >= {(dm.num_classes - 1).bit_length()})",
            stacklevel=2,
        )
    # the same initial weights on every rank (seeded above); augmentation draws per rank: data.augment_generator
    module = build_model(cfg, dm.input_shape, dm.num_classes)

    built = build_callbacks(cfg)
    if (metrics := built.get("metrics")) is None:
        raise policy.ConfigError("callbacks.metrics is needed: the summary is made of its results")
    callbacks = [*built.values(), *extra_callbacks]
    loggers = build_loggers(cfg, sum(p.numel() for p in module.parameters()))
    out = job.output_dir(cfg)
    kwargs = policy.trainer_kwargs(cfg)
    bar = kwargs["enable_progress_bar"]
    # the epoch lines go to the console too unless a bar holds it (outside a terminal they always do)
    epoch_log = console.EpochLog(cfg.trainer.max_epochs, console=not bar or not sys.stdout.isatty())
    ckpt_path = job.resume_checkpoint(cfg, out)
    if ckpt_path == str(files.last_checkpoint(out)):  # resuming this job: its log gets every committed epoch
        epoch_log.restore(csv_log.read_rows(out), checkpoint_epochs(ckpt_path))
    ckpt_io = AtomicCheckpointIO(hold=True)  # last.ckpt commits an epoch once its row is on disk (checkpoint_io.py)
    trainer = L.Trainer(
        **kwargs,
        callbacks=[*callbacks, console.ProgressBar()] if bar else callbacks,
        # in this order: the row of an epoch is written, then its checkpoint committed, then its line
        logger=[*loggers, csv_log.LocalRecord(out), EpochCommit(ckpt_io), epoch_log],
        plugins=[*job.cluster_plugins(), ckpt_io],
        default_root_dir=str(out),
    )
    ok = False
    try:
        start = time.time()
        with job.terminations(trainer, cfg, out):
            trainer.fit(module, dm, ckpt_path=ckpt_path)
        settings.check_trained(trainer)  # no optimizer step: no summary, the job failed
        seconds = time.time() - start
        summary = summarize.run_summary(
            cfg, trainer.current_epoch, float(module.gamma), metrics.results, seconds, dm.num_classes
        )
        if trainer.is_global_zero:
            summary |= summarize.belongs_to(OmegaConf.to_container(cfg, resolve=True), out)
            files.write_json(out / files.SUMMARY, summary)
            for lg in loggers:  # W&B errors turn W&B off (wandb_run.RunLogger), never the job
                lg.update_summary({f"final/{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
            print(summarize.format_summary(summary, out))
            for lg in loggers:
                if (command := lg.sync_command()) is not None:
                    print(f"W&B offline; upload with: {command}")
        ok = True
        return summary
    finally:
        for lg in loggers:  # every job closes its own run, failed ones marked so
            lg.finish(exit_code=0 if ok else 1)


def checkpoint_epochs(path: str) -> int:
    """How many epochs the checkpoint at `path` holds (saved at the end of epoch `epoch`, counted from 0)."""
    import torch

    return int(torch.load(path, map_location="cpu", mmap=True, weights_only=False)["epoch"]) + 1
