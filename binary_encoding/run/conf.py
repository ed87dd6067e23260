"""Where the Hydra configs are: `conf/` at the top of the repository, installed as `binary_encoding.conf`.

Light on purpose (no torch): the command-line entry points import it before Hydra parses anything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from omegaconf import OmegaConf  # light, and Hydra loads it anyway

from ..record import identity


def conf_dir() -> str:
    """The folder of `config.yaml`: the installed package data, else the checkout's `conf/`."""
    try:
        spec = importlib.util.find_spec("binary_encoding.conf")
    except ModuleNotFoundError:
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if (Path(loc) / "config.yaml").is_file():
            return str(Path(loc))
    checkout = Path(__file__).resolve().parents[2] / "conf"  # a checkout on PYTHONPATH, not installed
    if (checkout / "config.yaml").is_file():
        return str(checkout)
    raise FileNotFoundError(
        "binary_encoding's configs were not found: neither the installed package data "
        f"(binary_encoding.conf) nor {checkout}; reinstall the package"
    )


CONF_DIR = conf_dir()


def _gpus_per_job(accelerator, devices) -> int:
    """`${gpus_per_job:${trainer.accelerator},${trainer.devices}}` in launcher presets: no GPU for CPU jobs."""
    return 0 if str(accelerator) == "cpu" else int(devices)


OmegaConf.register_new_resolver("gpus_per_job", _gpus_per_job, replace=True)
OmegaConf.register_new_resolver("or_else", lambda value, default: default if value is None else value, replace=True)
# a sweep job's folder from its overrides (`hydra.sweep.subdir`), and the keys Hydra's own
# `override_dirname` leaves out: both from the run identity (record/identity.py)
OmegaConf.register_new_resolver("job_folder", lambda overrides: identity.folder_name(overrides), replace=True)
OmegaConf.register_new_resolver("not_in_folder_name", lambda: list(identity.NOT_IN_FOLDER_NAME), replace=True)
