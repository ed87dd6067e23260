"""An epoch is one commit: kill -9 at chosen moments around the checkpoint writes (placed from inside the
run by `kill_points.Killer`), then the same run again, ends with exactly the record of a run never
interrupted: metrics.csv row by row and key by key, the epoch lines of train.log, summary.json."""

import csv
import json
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def rows(out: Path) -> list[dict]:
    with open(out / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(f)]


def epoch_lines(out: Path) -> list[str]:
    """The epoch lines of train.log without their last part (the seconds, or the mark of a restored line)."""
    lines = re.findall(r"\] - (epoch \d+/\d+  .*)", (out / "train.log").read_text())
    return [line.rsplit("  ", 1)[0] for line in lines]


def numbers(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())
    return {k: v for k, v in s.items() if isinstance(v, (int, float)) and k != "fit_seconds"}


def kill_and_compare(procs, tmp_path, overrides: list[str], chains: list[list], timeout: float) -> None:
    runs = [{"out": str(tmp_path / "full"), "kills": []}]
    runs += [{"out": str(tmp_path / f"cut{i}"), "kills": kills} for i, kills in enumerate(chains)]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"overrides": overrides, "runs": runs}))
    r = procs.run([sys.executable, str(HERE / "kill_points.py"), str(spec)], timeout=timeout, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    codes = json.loads(r.stdout.strip().splitlines()[-1])
    full = tmp_path / "full"
    assert codes[str(full)] == [0]
    assert len(rows(full)) == len(epoch_lines(full)) == int(overrides[0].split("=")[1])
    for run in runs[1:]:
        out = Path(run["out"])
        # every kill landed (a point never reached would let the attempt finish), then the last one finished
        assert codes[str(out)] == [-9] * len(run["kills"]) + [0], (run["kills"], r.stderr[-3000:])
        assert rows(out) == rows(full), run["kills"]
        assert epoch_lines(out) == epoch_lines(full), run["kills"]
        assert numbers(out) == numbers(full), run["kills"]


# one torch thread: on 2 shared cores, 2 threads made a 2-epoch digits run 4x slower (measured under load)
DIGITS = ["trainer.max_epochs=2", "deepfool_samples=8", "runtime.threads=1"]


def test_kills_around_the_checkpoint_write_leave_the_record_of_an_uninterrupted_run(procs, tmp_path):
    """Killed after an epoch's complete row but before its checkpoint is renamed (the epoch is trained
    again), after the rename but before its train.log line (the line is restored on resume), and after
    the checkpoint's temporary file: the record equals an uninterrupted run's."""
    kill_and_compare(procs, tmp_path, DIGITS, [[["row", 0], ["commit", 0], ["ckpt_tmp", 1]]], timeout=600)


@pytest.mark.slow
def test_twenty_one_kills_at_every_point_leave_the_record_of_an_uninterrupted_run(procs, tmp_path):
    """Three runs of 4 epochs killed 21 times in all, at every point of `kill_points.POINTS`: mid-epoch,
    before the save, after the temporary file, after the row, after the rename, after the line, and
    after training before the summary; each ends with the record of a run never interrupted."""
    chains = [
        [["train_batch", 0], ["val_end", 0], ["ckpt_tmp", 0], ["row", 0], ["commit", 0], ["line", 0], ["fit_end", 0]],
        [["commit", 1], ["row", 2], ["commit", 2], ["train_batch", 3], ["val_end", 3], ["ckpt_tmp", 3], ["row", 3]],
        # the last: every epoch committed, the last line missing; the resumed run trains nothing, restores it
        [["val_end", 1], ["line", 1], ["ckpt_tmp", 2], ["train_batch", 2], ["line", 2], ["row", 3], ["commit", 3]],
    ]
    assert sum(map(len, chains)) == 21
    kill_and_compare(procs, tmp_path, ["trainer.max_epochs=4", *DIGITS[1:]], chains, timeout=1800)


def test_each_checkpoint_is_renamed_into_place_only_once_its_epochs_row_is_whole_on_disk(cfg_factory, monkeypatch):
    """At every rename of a held-back checkpoint (3 epochs of digits, validated and so saved twice an epoch,
    step logs in between), metrics.csv already holds the row of that checkpoint's epoch with its training
    columns (train/loss, the last value of an epoch to arrive), and no row of a later epoch: the checkpoint
    and the row are one commit, one rename per epoch."""
    import torch

    from binary_encoding.record.checkpoint_io import AtomicCheckpointIO
    from binary_encoding.run.fit import train

    seen, real_commit = [], AtomicCheckpointIO.commit

    def commit(self):
        if self.pending is not None:
            ckpt = torch.load(self.pending[0], map_location="cpu", weights_only=False)
            out = self.pending[1].parents[1]
            table = rows(out) if (out / "metrics.csv").exists() else []
            seen.append((ckpt["epoch"], [(int(r["epoch"]), r.get("train/loss", "")) for r in table]))
        real_commit(self)

    monkeypatch.setattr(AtomicCheckpointIO, "commit", commit)
    # validation (and so a save) twice an epoch, step logs between: the mid-epoch save must wait as well
    overrides = ["+trainer.val_check_interval=0.5", "trainer.log_every_n_steps=1", "deepfool_samples=0"]
    train(cfg_factory("trainer.max_epochs=3", "runtime.threads=1", *overrides))
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    for epoch, table in seen:
        assert [e for e, _ in table] == list(range(epoch + 1)), (epoch, table)
        assert all(loss not in ("", None) for _, loss in table), (epoch, table)
