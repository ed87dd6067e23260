"""Train one model: `python -m binary_encoding.train [overrides]` (add `-m` for a sweep).

`main` is the thin Hydra entry point; `train(cfg)` is a plain function that tests and notebooks call.
What a run writes is listed in `record/files.py`; the job's life around the training (folder, skip, resume,
failure record, DDP ranks) is `run/job.py`; config checks and what `auto` means are `run/policy.py`.

Only Hydra and OmegaConf are imported at the top: `--help` and shell completion stay fast.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from .run.conf import CONF_DIR
from .run.fit import train  # noqa: E402  the plain function (re-exported: `from binary_encoding.train import train`)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .run.policy import ConfigError

    try:
        summary = train(cfg)
    except ConfigError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            from .run.sweep_log import refusal

            raise refusal(e) from None  # one job of a sweep: failed.json (or refused), the other jobs run
        print(f"error: {e}", file=sys.stderr)  # a config error is the user's to fix: no traceback
        raise SystemExit(2) from None
    return objective(summary)


def objective(summary: dict) -> float:
    """What a run returns to Hydra (and a sweeper maximizes): the final validation accuracy, or without
    a validation split (`data.val_fraction=0`, the reference setup) the test accuracy, as the report selects."""
    return summary.get("val_acc", summary.get("test_acc", float("nan")))


def main() -> None:
    """Console entry point (`binary-encoding-train`, `python -m binary_encoding.train`)."""
    from .run.policy import missing_launcher_message, moved_key_message, unknown_choice_message
    from .run.writes import preflight_message

    argv = sys.argv[1:]
    # a typo first: `hydra/launcher=slurmm` is no preset, whatever plugins are installed
    checks = (moved_key_message, unknown_choice_message, missing_launcher_message, preflight_message)
    if msg := next((m for check in checks if (m := check(argv))), None):
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
