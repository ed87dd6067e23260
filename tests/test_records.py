"""What a job folder answers when asked for what it cannot give: a file that is no checkpoint for
`evaluate`, more epochs of a finished run, a sweep into a folder another sweep holds."""

import csv
import json
import sys

import pytest
from conftest import make_cfg
from omegaconf import OmegaConf


@pytest.mark.parametrize(
    "content, says",
    [(b"", "is empty (0 bytes): not a checkpoint"), (b"seed: 0\nlr: 0.001\n", "is not a checkpoint (no torch zip")],
    ids=["zero-bytes", "yaml"],
)
def test_evaluate_on_a_file_that_is_no_checkpoint_says_so_in_one_line_with_exit_2(procs, tmp_path, content, says):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(make_cfg(run), run / "config.yaml")
    (run / "checkpoints" / "last.ckpt").write_bytes(content)
    r = procs.run([sys.executable, "-m", "binary_encoding.evaluate", str(run)], timeout=300, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-3000:]
    (line,) = r.stderr.strip().splitlines()
    assert line == f"[1/1] {run}: {run / 'checkpoints' / 'last.ckpt'} {says}" + line.split(says, 1)[1]
    assert not (run / "eval.json").exists()


def test_a_finished_run_asked_for_more_epochs_trains_on_to_the_numbers_of_the_longer_run(tmp_path, capsys):
    """A finished 2-epoch run asked for trainer.max_epochs=3 trains one more epoch from its checkpoint
    and ends with the summary and record of a 3-epoch run never stopped; asked for 1 epoch, it refuses in
    one line and keeps its summary."""
    from binary_encoding.run.policy import ConfigError
    from binary_encoding.train import train

    fast = ["deepfool_samples=8", "runtime.threads=1"]
    two = train(make_cfg(tmp_path / "run", "trainer.max_epochs=2", *fast))
    assert two["epochs"] == 2
    on = train(make_cfg(tmp_path / "run", "trainer.max_epochs=3", *fast))
    assert (
        f"training on: {tmp_path / 'run'} finished 2 epochs; trainer.max_epochs=3 continues" in capsys.readouterr().out
    )
    three = train(make_cfg(tmp_path / "full", "trainer.max_epochs=3", *fast))
    same = {k: v for k, v in three.items() if k != "fit_seconds"}  # the fingerprints of config and weights too
    assert on["epochs"] == 3 and {k: on[k] for k in same} == same
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 3
    assert json.loads((tmp_path / "run" / "summary.json.stale").read_text())["epochs"] == 2
    assert rows(tmp_path / "run") == rows(tmp_path / "full")
    with pytest.raises(ConfigError, match=r"holds a run finished at 3 epochs; trainer.max_epochs=1 asks for fewer"):
        train(make_cfg(tmp_path / "run", "trainer.max_epochs=1", *fast))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 3


def rows(out):
    with open(out / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(f)]
