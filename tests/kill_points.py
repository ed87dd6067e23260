"""kill -9 at chosen moments of real runs, placed from inside the run (never after a guessed delay).

    python tests/kill_points.py SPEC.json

SPEC holds `overrides` (of the real config) and `runs`: each a folder `out` and a list `kills` of
[point, epoch] pairs. For each kill the run is started again in its folder (resuming what the previous
attempt left) and killed with SIGKILL by a `Killer` callback at the first `point` it reaches in an epoch
>= `epoch`; then it is started once more and left to finish. Every attempt is a child forked from this
process after the imports, so that one launch of Python and torch serves every attempt. Each attempt logs
to `<out>/train.log` as a Hydra job does. Prints, as JSON, each run's attempts' exit codes (-9: killed).

Points: `train_batch` (the second training batch ends), `val_end` (validation ended, before the checkpoint
is saved), `ckpt_tmp` (the checkpoint's temporary file is written, not yet renamed), `row` (the epoch's
complete metrics.csv row is written, before the rename), `commit` (the checkpoint is renamed into place,
before the epoch's train.log line), `line` (after the epoch's line), `fit_end` (training done, before the
end-of-run metrics and the summary).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import lightning as L
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from binary_encoding.record.csv_log import EPOCH_COMPLETE
from binary_encoding.run import console
from binary_encoding.train import CONF_DIR, train

POINTS = ("train_batch", "val_end", "ckpt_tmp", "row", "commit", "line", "fit_end")


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class Killer(L.Callback):
    """SIGKILL at `point` in the first epoch >= `epoch` that reaches it (see the module docstring)."""

    def __init__(self, point: str, epoch: int):
        assert point in POINTS, point
        self.point, self.epoch, self.trainer = point, epoch, None

    def at(self, point: str) -> None:
        if point == self.point and self.trainer.current_epoch >= self.epoch:
            die()

    def setup(self, trainer, pl_module, stage):
        self.trainer = trainer
        io = trainer.strategy.checkpoint_io
        save, commit = io.save_checkpoint, io.commit

        def saved(*args, **kwargs):
            save(*args, **kwargs)
            self.at("ckpt_tmp")

        def committed():
            held = io.pending is not None
            commit()
            if held:
                self.at("commit")

        io.save_checkpoint, io.commit = saved, committed
        for lg in trainer.loggers:
            if type(lg).__name__ in ("LocalRecord", "EpochLog"):
                point = "row" if type(lg).__name__ == "LocalRecord" else "line"
                lg.log_metrics = self._after(lg.log_metrics, point)

    def _after(self, log_metrics, point):
        def logged(metrics, step=None):
            log_metrics(metrics, step)
            if EPOCH_COMPLETE in metrics:
                self.at(point)

        return logged

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == 1:
            self.at("train_batch")

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.at("val_end")

    def on_train_end(self, trainer, pl_module):
        self.at("fit_end")


def attempt(overrides: list[str], out: str, kill: list | None) -> int:
    """One attempt in a forked child; its exit code (negative: the signal that ended it)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.makedirs(out, exist_ok=True)
            console.log_to(os.path.join(out, "train.log"))
            with initialize_config_dir(CONF_DIR, version_base="1.3"):
                cfg = compose("config", overrides=["logger=csv", "trainer.enable_progress_bar=false", *overrides])
            with open_dict(cfg):
                cfg.output_dir = out
            train(cfg, callbacks=[Killer(*kill)] if kill else [])
            code = 0
        except BaseException as e:  # noqa: BLE001 -- reported by the exit code, the error on stderr
            print(f"attempt failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(spec_path: str) -> None:
    spec = json.loads(open(spec_path).read())
    codes = {}
    for run in spec["runs"]:
        codes[run["out"]] = [attempt(spec["overrides"], run["out"], kill) for kill in [*run["kills"], None]]
    print(json.dumps(codes), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
