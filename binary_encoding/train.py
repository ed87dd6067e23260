"""Train one model: `python -m binary_encoding.train [overrides]` (add `-m` for a sweep).

`main` is the thin Hydra entry point; `train(cfg)` is a plain function that tests and notebooks call.
What a run writes is listed in `record.py`; the job's life around the training (folder, skip, resume,
failure record, DDP ranks) is `job.py`; config checks and what `auto` means are `policy.py`.

Only Hydra and OmegaConf are imported at the top: `--help` and shell completion stay fast.
"""

from __future__ import annotations

import sys
import time
import warnings

import hydra
from omegaconf import DictConfig, OmegaConf

from .conf_dir import CONF_DIR


def build_datamodule(cfg: DictConfig):
    """The data module of `cfg.data` (`_target_`), ready: downloaded if allowed, split, normalized."""
    dm = hydra.utils.instantiate(cfg.data, batch_size=cfg.batch_size, seed=cfg.seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_net(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int):
    """The backbone and head that `cfg` describes (eager, default memory format)."""
    from .heads import Classifier

    backbone = hydra.utils.instantiate(cfg.backbone, input_shape=tuple(input_shape))
    head = hydra.utils.instantiate(cfg.head.net, in_features=backbone.num_features, num_classes=num_classes)
    return Classifier(backbone, head)


def build_model(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int):
    """The LightningModule of `cfg`, with the device policies of `cfg.runtime` applied."""
    from . import policy
    from .module import BinaryEncodingModule

    net = build_net(cfg, input_shape, num_classes)
    module = BinaryEncodingModule(
        net.backbone,
        net.head,
        num_classes,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        check_finite_every=policy.check_finite_every(cfg),
        channels_last=policy.channels_last(cfg, net.backbone),
        cuda_graphs=policy.cuda_graphs(cfg),
    )
    if policy.compile_backbone(cfg):  # in place: parameter names (and checkpoints) stay those of the eager model
        module.backbone.compile(mode=cfg.runtime.get("compile_mode") or None)
    return module


def build_callbacks(cfg: DictConfig) -> list:
    return [hydra.utils.instantiate(c) for c in cfg.callbacks.values() if c is not None]


def build_loggers(cfg: DictConfig, num_params: int | None = None) -> list:
    """The configured logger, if any (logger=csv/none: none; the local record is kept in any case)."""
    from hydra.core.hydra_config import HydraConfig

    from . import record

    if "_target_" not in (cfg.logger or {}):
        return []
    run_config = OmegaConf.to_container(cfg, resolve=True)
    if HydraConfig.initialized():  # which config-group choices made the run (experiment, sweep, data, ...)
        run_config["choices"] = {k: v for k, v in HydraConfig.get().runtime.choices.items() if "hydra/" not in k}
    run_config["code"] = record.code_version()
    run_config["num_params"] = num_params
    # the run's config is data for W&B: no object in it is built (_recursive_), and it arrives as a dict
    return [hydra.utils.instantiate(cfg.logger, run_config=run_config, _recursive_=False, _convert_="all")]


def train(cfg: DictConfig, callbacks: list | None = None) -> dict:
    """Train one model as `cfg` says; return the summary (also written to the run folder)."""
    from . import job, policy

    job.quiet_lightning()
    out = job.output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    if (done := job.finished(cfg, out)) is not None:
        return done
    with job.recording_failure(out):
        policy.validate(cfg)
        job.check_same_run(cfg, out)
        job.start(cfg, out)
        ranks = policy.num_devices(cfg)
        if ranks > 1 and not job.is_rank():
            return job.launch_ddp(cfg, out, ranks)
        return fit(cfg, callbacks or [])


def fit(cfg: DictConfig, extra_callbacks: list) -> dict:
    """Build everything from `cfg`, fit, and write the summary (on rank 0)."""
    import lightning as L

    from . import console, job, policy, record
    from .evaluation import Metrics

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    if dm.num_classes < 2:
        raise policy.ConfigError(
            f"the data set {cfg.data.name} has {dm.num_classes} class: a classifier needs at least 2"
        )
    latent_width = cfg.head.get("width")
    if latent_width and 2**latent_width < dm.num_classes:
        warnings.warn(
            f"head.width={latent_width} gives {2**latent_width} binary codes for {dm.num_classes} "
            f"classes: classes must share codes (need width >= {(dm.num_classes - 1).bit_length()})",
            stacklevel=2,
        )
    # the same initial weights on every rank (seeded above); augmentation draws per rank: data.augment_generator
    module = build_model(cfg, dm.input_shape, dm.num_classes)

    callbacks = [*build_callbacks(cfg), *extra_callbacks]
    metrics = next(c for c in callbacks if isinstance(c, Metrics))
    loggers = build_loggers(cfg, sum(p.numel() for p in module.parameters()))
    out = job.output_dir(cfg)
    kwargs = policy.trainer_kwargs(cfg)
    bar = kwargs["enable_progress_bar"]
    # the epoch lines go to the console too unless a bar holds it (outside a terminal they always do)
    epoch_log = console.EpochLog(cfg.trainer.max_epochs, console=not bar or not sys.stdout.isatty())
    trainer = L.Trainer(
        **kwargs,
        callbacks=[*callbacks, console.ProgressBar()] if bar else callbacks,
        logger=[*loggers, record.LocalRecord(out), epoch_log],
        plugins=job.cluster_plugins(),
        default_root_dir=str(out),
    )
    ok = False
    try:
        start = time.time()
        with job.terminations(trainer, cfg, out):
            trainer.fit(module, dm, ckpt_path=job.resume_checkpoint(cfg, out))
        seconds = time.time() - start
        summary = record.run_summary(
            cfg, trainer.current_epoch, float(module.gamma), metrics.results, seconds, dm.num_classes
        )
        if trainer.is_global_zero:
            record.write_json(out / record.SUMMARY, summary)
            for lg in loggers:
                lg.experiment.summary.update(
                    {f"final/{k}": v for k, v in summary.items() if isinstance(v, (int, float))}
                )
            print(record.format_summary(summary, out))
            for lg in loggers:
                if lg._wandb_init.get("mode") == "offline":
                    print(f"W&B offline; upload with: {record.offline_sync_command(out, lg.version)}")
        ok = True
        return summary
    finally:
        for lg in loggers:  # every job closes its own run, failed ones marked so
            lg.finish(exit_code=0 if ok else 1)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .policy import ConfigError

    try:
        summary = train(cfg)
    except ConfigError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # one job of a sweep: recorded in its failed.json, the other jobs run
        print(f"error: {e}", file=sys.stderr)  # a config error is the user's to fix: no traceback
        raise SystemExit(2) from None
    return objective(summary)


def objective(summary: dict) -> float:
    """What a run returns to Hydra (and a sweeper maximizes): the final validation accuracy, or without
    a validation split (`data.val_fraction=0`, the reference setup) the test accuracy, as the report selects."""
    return summary.get("val_acc", summary.get("test_acc", float("nan")))


def main() -> None:
    """Console entry point (`binary-encoding-train`, `python -m binary_encoding.train`)."""
    from .policy import missing_launcher_message, moved_key_message

    if msg := moved_key_message(sys.argv[1:]) or missing_launcher_message(sys.argv[1:]):
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
