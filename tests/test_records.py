"""What a job folder answers when asked for what it cannot give: a file that is no checkpoint for
`evaluate`, more epochs of a finished run, a sweep into a folder another sweep holds."""

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
