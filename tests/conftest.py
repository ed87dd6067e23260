"""Shared test helpers: compose the real configs, then shrink them."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from binary_encoding.train import CONF_DIR

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


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
