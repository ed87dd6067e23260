"""Every object of a run built from its config with `hydra.utils.instantiate` (`_target_`), with the
sizes known only at run time (input shape, number of classes, feature width) passed when it is built."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf


def build_datamodule(cfg: DictConfig):
    """The data module of `cfg.data` (`_target_`), ready: downloaded if allowed, split, normalized. A
    stratified split that the data cannot give is the settings' fault: a `ConfigError`."""
    from ..data.base import SplitError
    from .policy import ConfigError

    dm = hydra.utils.instantiate(cfg.data, batch_size=cfg.batch_size, seed=cfg.seed)
    dm.prepare_data()
    try:
        dm.setup("fit")
    except SplitError as e:
        raise ConfigError(str(e)) from None
    return dm


def build_net(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int):
    """The backbone and head that `cfg` describes (eager, default memory format)."""
    from ..model.heads import Classifier

    backbone = hydra.utils.instantiate(cfg.backbone, input_shape=tuple(input_shape))
    head = hydra.utils.instantiate(cfg.head.net, in_features=backbone.num_features, num_classes=num_classes)
    return Classifier(backbone, head)


def build_model(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int):
    """The LightningModule of `cfg`, with the device policies of `cfg.runtime` applied."""
    from ..model.module import BinaryEncodingModule
    from . import policy

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


def build_callbacks(cfg: DictConfig) -> dict:
    """The callbacks of `cfg.callbacks` by name (`gamma`, `metrics`, `checkpoint`), in the config's order."""
    return {name: hydra.utils.instantiate(c) for name, c in cfg.callbacks.items() if c is not None}


def build_loggers(cfg: DictConfig, num_params: int | None = None) -> list:
    """The configured logger, if any (logger=csv/none: none; the local record is kept in any case)."""
    from hydra.core.hydra_config import HydraConfig

    from ..record import version

    if "_target_" not in (cfg.logger or {}):
        return []
    run_config = OmegaConf.to_container(cfg, resolve=True)
    if HydraConfig.initialized():  # which config-group choices made the run (experiment, sweep, data, ...)
        run_config["choices"] = {k: v for k, v in HydraConfig.get().runtime.choices.items() if "hydra/" not in k}
    run_config["code"] = version.code_version()
    run_config["num_params"] = num_params
    # the run's config is data for W&B: no object in it is built (_recursive_), and it arrives as a dict
    return [hydra.utils.instantiate(cfg.logger, run_config=run_config, _recursive_=False, _convert_="all")]
