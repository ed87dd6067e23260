"""Every real config composes, and what it describes can be built (no data is read here)."""

from pathlib import Path

import hydra
import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from binary_encoding import policy
from binary_encoding.conf_dir import CONF_DIR
from binary_encoding.train import build_callbacks, build_net

GROUPS = ("data", "backbone", "head", "trainer", "runtime", "callbacks", "logger", "debug", "experiment", "sweep")
CHOICES = [(g, p.stem) for g in GROUPS for p in sorted(Path(CONF_DIR, g).glob("*.yaml"))]


def test_every_group_has_choices():
    assert {g for g, _ in CHOICES} == set(GROUPS)


@pytest.mark.parametrize("group, choice", CHOICES, ids=[f"{g}={c}" for g, c in CHOICES])
def test_every_config_composes_and_builds(group, choice, tmp_path):
    extra = [f"data.root={tmp_path}"] if choice == "imagefolder" else []
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"{group}={choice}", "trainer.accelerator=cpu", *extra])
    with open_dict(cfg):
        cfg.output_dir, cfg.run_name = str(tmp_path), "test"
    policy.validate(cfg)
    dm = hydra.utils.instantiate(cfg.data, batch_size=cfg.batch_size, seed=cfg.seed)
    assert dm.name == cfg.data.name and dm.batch_size == cfg.batch_size
    shape = (1, 8, 8) if cfg.data.name == "digits" else (3, 32, 32)
    net = build_net(cfg, shape, 10)
    assert net.backbone.name == cfg.backbone.name and net.head.classifier.out_features == 10
    kinds = sorted(type(c).__name__ for c in build_callbacks(cfg))
    assert kinds == ["GammaScheduler", "Metrics", "ModelCheckpoint"]
    trainer = L.Trainer(**policy.trainer_kwargs(cfg), logger=False, default_root_dir=str(tmp_path))
    assert trainer.max_epochs == cfg.trainer.max_epochs
