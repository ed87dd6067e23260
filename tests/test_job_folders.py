"""A job folder one can trust after any crash: its name holds every setting that defines the run, a summary
counts only when it is whole and belongs to the config and checkpoint beside it, a damaged checkpoint is
refused, and every way a job stops leaves a message and a record. Real processes, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from conftest import make_cfg
from omegaconf import OmegaConf

from binary_encoding.record import files, identity
from binary_encoding.train import train

FAST = ("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0")


def run_cli(cwd, *args, timeout=300, **popen):
    cmd = [sys.executable, "-m", "binary_encoding.train", *args, "logger=csv", "trainer.enable_progress_bar=false"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, **popen)


def image_folder(root: Path, classes, n=12, seed=0) -> Path:
    """`root/train/<class>/<i>.png`: small images whose brightness tells the class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, c in enumerate(classes):
        (root / "train" / c).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(rng.normal(60 * k + 20, 10, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "train" / c / f"{i}.png")
    return root


# ------------------------------------------------------------------------------------------------
# The folder's name: every setting that defines the run
# ------------------------------------------------------------------------------------------------


def test_a_sweep_over_two_data_roots_gets_two_folders_with_two_results(tmp_path):
    """`data.root=A,B` where both folders are called `images`: two job folders (base name + a hash of the
    full path), each with the config, overrides and results of its own root; the same sweep again skips
    both, and a sweep on B alone finds B's folder, not A's."""
    a = image_folder(tmp_path / "a" / "images", ["x", "y"], seed=1)
    b = image_folder(tmp_path / "b" / "images", ["x", "y", "z"], seed=2)
    args = ["-m", "data=imagefolder", f"data.root={a},{b}", *FAST, "name=roots"]
    r = run_cli(tmp_path, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    sweep = tmp_path / "multirun" / "roots"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2 and {j.name for j in jobs} == {
        f"data.root={identity.short_path(str(root))},data=imagefolder,deepfool_samples=0,metrics_every=0,"
        "trainer.max_epochs=1"
        for root in (a, b)
    }
    for job in jobs:
        root = OmegaConf.load(job / files.CONFIG).data.root
        assert f"data.root={root}" in OmegaConf.load(job / ".hydra" / "overrides.yaml")
        assert identity.short_path(root) in job.name
    classes = {OmegaConf.load(j / files.CONFIG).data.root: json.loads((j / files.SUMMARY).read_text()) for j in jobs}
    assert set(classes) == {str(a), str(b)} and classes[str(a)] != classes[str(b)]
    again = run_cli(tmp_path, "-m", "data=imagefolder", f"data.root={b}", *FAST, "name=roots")
    assert again.returncode == 0 and again.stdout.count("already finished") == 1
    assert identity.short_path(str(b)) in next(ln for ln in again.stdout.splitlines() if "already finished" in ln)


def test_folder_names_stay_under_the_filesystems_limit_and_stay_distinct():
    """A job whose overrides make a name over 255 bytes gets its tail hashed: short enough, still unique,
    still readable at the start; a path never nests folders; where/how a job ran is not in its name."""
    long_a = [f"+tag{i}=" + "é" * 20 for i in range(12)]
    long_b = [*long_a[:-1], "+tag11=" + "é" * 19 + "e"]
    na, nb = identity.folder_name(long_a), identity.folder_name(long_b)
    assert len(na.encode()) <= 240 and len(nb.encode()) <= 240 and na != nb
    assert na.startswith("+tag0=éé") and "/" not in identity.folder_name(["data.root=/a/b/images", "lr=1"])
    assert (
        identity.folder_name(["lr=1", "logger=csv", "logger.mode=offline", "output_dir=/x", "resume=false"]) == "lr=1"
    )
    assert identity.short_path("/data/a/images") != identity.short_path("/data/b/images")
    assert identity.short_path("/data/a/images").startswith("images-")
    # the W&B group: the defining overrides without the seed, paths short; the same for every seed
    g = identity.group_name("s", ["seed=3", "data.root=/data/a/images", "deepfool_samples=0", "lr=0.1"])
    assert g == f"s/data.root={identity.short_path('/data/a/images')},lr=0.1"
    assert g == identity.group_name("s", ["seed=4", "data.root=/data/a/images", "lr=0.1"])


# ------------------------------------------------------------------------------------------------
# "Finished" means finished: a whole summary of the config and checkpoint beside it
# ------------------------------------------------------------------------------------------------


def _start(cwd, out, *args):
    cmd = [sys.executable, "-m", "binary_encoding.train", "logger=csv", "trainer.enable_progress_bar=false"]
    return subprocess.Popen([*cmd, f"output_dir={out}", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(proc, path: Path, timeout=240):
    import time

    start = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() - start < timeout
        time.sleep(0.05)


def test_starting_over_with_resume_false_then_a_kill_leaves_no_summary_of_the_old_run(cfg_factory, tmp_path):
    """A finished lr=0.01 run, started over with lr=0.001 and resume=false (the way out the refusal
    names), killed mid-training: the old summary is gone, so the same command again resumes and
    finishes the lr=0.001 run instead of saying "already finished" with the lr=0.01 run's numbers."""
    out = tmp_path
    train(cfg_factory("lr=0.01", *FAST))
    old = json.loads((out / files.SUMMARY).read_text())
    ckpt = files.last_checkpoint(out)
    ckpt.unlink()
    proc = _start(tmp_path, out, "lr=0.001", "resume=false", "trainer.max_epochs=300", "deepfool_samples=0")
    _wait_for(proc, ckpt)
    proc.kill()
    proc.communicate(timeout=60)
    assert not (out / files.SUMMARY).exists() and OmegaConf.load(out / files.CONFIG).lr == 0.001
    r = run_cli(tmp_path, f"output_dir={out}", "lr=0.001", "trainer.max_epochs=300", "deepfool_samples=0",
                "trainer.max_epochs=2")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already finished" not in r.stdout
    new = json.loads((out / files.SUMMARY).read_text())
    assert new["lr"] == 0.001 and old["lr"] == 0.01 and new["epochs"] == 2


def test_a_summary_left_from_another_run_does_not_count(cfg_factory, tmp_path, capsys):
    """A summary.json whose config fingerprint is not that of the config.yaml beside it (left by an
    earlier run in the folder) is moved aside with one line and the run finishes again, from its own
    checkpoint; then it counts and the job is skipped."""
    first = train(make_cfg(tmp_path / "a", "lr=0.01", *FAST))
    train(cfg_factory("lr=0.002", *FAST))
    (tmp_path / files.SUMMARY).write_text(json.dumps(first))
    capsys.readouterr()
    again = train(cfg_factory("lr=0.002", *FAST))
    out = capsys.readouterr().out
    assert f"not finished: {tmp_path}: its summary.json belongs to another config" in out
    assert again["lr"] == 0.002 and json.loads((tmp_path / files.SUMMARY).read_text())["lr"] == 0.002
    assert json.loads((tmp_path / files.STALE_SUMMARY).read_text())["lr"] == 0.01
    train(cfg_factory("lr=0.002", *FAST))
    assert "already finished" in capsys.readouterr().out


def test_a_finished_folder_asked_for_with_other_settings_refuses_instead_of_returning_its_results(
    cfg_factory, tmp_path
):
    """output_dir of a finished lr=0.002 run asked for with lr=0.01: refused in one line naming the changed
    key (its results are not those of the run asked for); the same settings, or only a measurement
    setting changed, are still skipped as finished; resume=false trains the new run there."""
    from binary_encoding.run.policy import ConfigError

    first = train(cfg_factory("lr=0.002", *FAST))
    with pytest.raises(ConfigError, match=r"holds a finished run with other settings \(lr: 0\.002 -> 0\.01\)"):
        train(cfg_factory("lr=0.01", *FAST))
    assert train(cfg_factory("lr=0.002", *FAST, "metrics.hist_every=3")) == first
    again = train(cfg_factory("lr=0.01", *FAST, "resume=false"))
    assert again["lr"] == 0.01 and json.loads((tmp_path / files.SUMMARY).read_text())["lr"] == 0.01


def test_a_cut_or_empty_summary_is_trained_again_in_a_sweep_without_a_traceback(tmp_path):
    """A node crash leaves one job's summary.json empty and another's cut in half: the same sweep again
    says so in one line per job, trains both again (no traceback, exit 0), and its recap counts them
    finished; a recap made while a summary is unreadable lists that job as unfinished."""
    from binary_encoding.run import sweep_log

    args = ["-m", "lr=0.001,0.002", *FAST, "name=cut"]
    assert run_cli(tmp_path, *args).returncode == 0
    jobs = sorted(p for p in (tmp_path / "multirun" / "cut").iterdir() if p.is_dir())
    good = {j: json.loads((j / files.SUMMARY).read_text()) for j in jobs}
    (jobs[0] / files.SUMMARY).write_text("")
    text = (jobs[1] / files.SUMMARY).read_text()
    (jobs[1] / files.SUMMARY).write_text(text[: len(text) // 2])
    assert [sweep_log.job_status(j, {})[0] for j in jobs] == ["unfinished", "unfinished"]
    r = run_cli(tmp_path, *args)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    said = [ln for ln in r.stdout.splitlines() if ln.startswith("not finished: ")]
    assert len(said) == 2 and all("is unreadable" in ln and "training it again" in ln for ln in said), r.stdout
    recap = [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith(("1/2", "2/2"))]
    assert recap == ["finished", "finished"], r.stdout
    for j, s in good.items():
        assert json.loads((j / files.SUMMARY).read_text())["test_acc"] == s["test_acc"]  # the same checkpoint


# ------------------------------------------------------------------------------------------------
# A checkpoint that cannot be resumed is refused first, in one line, the folder left as it was
# ------------------------------------------------------------------------------------------------


def test_a_checkpoint_with_flipped_bytes_is_refused_in_one_line_naming_it(cfg_factory, tmp_path):
    """4 KB of flipped bytes in the middle of last.ckpt (the zip's directory intact): refused by its zip
    CRCs in one line that names the file and resume=false, before anything in the folder changes (Lightning
    resumed on the damaged weights and exited 0 with other numbers); resume=false then trains."""
    train(cfg_factory("trainer.max_epochs=2", "deepfool_samples=0", "metrics_every=0"))
    (tmp_path / files.SUMMARY).unlink()  # as if cut off after its last checkpoint
    ckpt = files.last_checkpoint(tmp_path)
    data = bytearray(ckpt.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = bytes(b ^ 0xFF for b in data[mid : mid + 4096])
    ckpt.write_bytes(bytes(data))
    config = (tmp_path / files.CONFIG).read_bytes()
    r = run_cli(tmp_path, f"output_dir={tmp_path}", "trainer.max_epochs=3", "deepfool_samples=0", "metrics_every=0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-3000:]
    assert r.stderr.startswith(f"error: {ckpt} is damaged (") and "fails its CRC check" in r.stderr
    assert "resume=false" in r.stderr and (tmp_path / files.CONFIG).read_bytes() == config
    s = train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0", "resume=false"))
    assert s["epochs"] == 1


def test_resuming_below_the_checkpoints_epoch_is_refused_first_and_leaves_the_config(cfg_factory, tmp_path):
    """A cut-off 3-epoch run resumed with trainer.max_epochs=1: one line (no Lightning traceback) that
    says how to go on, and config.yaml still says 3 epochs."""
    train(cfg_factory("trainer.max_epochs=3", "deepfool_samples=0", "metrics_every=0"))
    (tmp_path / files.SUMMARY).unlink()
    config = (tmp_path / files.CONFIG).read_bytes()
    r = run_cli(tmp_path, f"output_dir={tmp_path}", "trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-3000:]
    assert "past trainer.max_epochs=1: resume with trainer.max_epochs>=2, or run with resume=false" in r.stderr
    assert (tmp_path / files.CONFIG).read_bytes() == config


# ------------------------------------------------------------------------------------------------
# ImageFolder: no symlink loops, no file in two classes, duplicates across splits reported
# ------------------------------------------------------------------------------------------------


def _images(root, **kw):
    from binary_encoding.data.imagefolder import ImageFolderDataModule

    dm = ImageFolderDataModule(root=str(root), val_fraction=0.0, download=False, device_resident=False, **kw)
    return dm.load(), dm


def test_a_checkpoint_at_exactly_max_epochs_resumes_and_one_past_it_is_refused(tmp_path):
    """A run cut off after its last epoch's checkpoint (in its end-of-run metrics) resumes from it with the
    same max_epochs: only a checkpoint past max_epochs is refused, as Lightning refuses it."""
    import torch

    from binary_encoding.run import job
    from binary_encoding.run.policy import ConfigError

    ckpt = tmp_path / "last.ckpt"
    torch.save({"loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}}}, ckpt)
    for max_epochs in (3, 4):
        job.check_checkpoint(
            OmegaConf.create({"ckpt_path": str(ckpt), "trainer": {"max_epochs": max_epochs}}), tmp_path
        )
    with pytest.raises(ConfigError, match="is at epoch 3, past trainer.max_epochs=2"):
        job.check_checkpoint(OmegaConf.create({"ckpt_path": str(ckpt), "trainer": {"max_epochs": 2}}), tmp_path)


def test_a_symlink_loop_in_an_image_folder_is_skipped_and_reported(tmp_path):
    """`train/a/up -> ..` (a loop back to every class): each image is read once, with its own class
    (torchvision's walk read 2,420 of 2,460 images as class "a", copies of b and c included)."""
    root = image_folder(tmp_path / "images", ["a", "b", "c"], n=10)
    (root / "train" / "a" / "up").symlink_to("..")
    (root / "train" / "b" / "same").symlink_to(".", target_is_directory=True)  # a loop onto itself
    with pytest.warns(UserWarning, match=r"2 symlinked folder\(s\) under .* skipped"):
        (x, y, xt, yt), dm = _images(root, test_fraction=0.2)
    assert len(y) + len(yt) == 30 and np.bincount(np.concatenate([y, yt])).tolist() == [10, 10, 10]
    assert dm.classes == ["a", "b", "c"]


def test_one_file_in_two_classes_is_refused_and_test_images_equal_to_training_ones_are_reported(tmp_path):
    """A file linked into two classes would carry two labels: refused naming both paths. A test/ image
    that is a training image pixel for pixel (a copied file) is reported with the count."""
    import shutil

    root = image_folder(tmp_path / "images", ["a", "b"], n=10)
    (root / "train" / "b" / "from_a.png").symlink_to(root / "train" / "a" / "0.png")
    with pytest.raises(ValueError, match=r"from_a.png and .*/a/0.png are the same file in two classes"):
        _images(root)
    (root / "train" / "b" / "from_a.png").unlink()
    for c in ("a", "b"):
        (root / "test" / c).mkdir(parents=True)
        for i in range(3):
            shutil.copy(root / "train" / c / f"{i}.png", root / "test" / c / f"copy{i}.png")
    with pytest.warns(UserWarning, match=r"6 of 6 test images .* are identical to training images"):
        (x, y, xt, yt), _ = _images(root)
    assert len(y) == 20 and len(yt) == 6


# ------------------------------------------------------------------------------------------------
# Every way a job stops says so: SIGTERM outside the fit, a resume command one can paste
# ------------------------------------------------------------------------------------------------


class SigtermAtFitEnd(L.Callback):
    """Sends this process a SIGTERM once the end-of-run metrics ran (after Lightning put back the signal
    handlers), as a cluster's stop arriving in that phase; added from the command line as `+callbacks.stop`."""

    def on_fit_end(self, trainer, module):
        import signal
        import time

        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the default handler would end the process here


def test_sigterm_in_the_end_of_run_metrics_says_how_to_resume_and_records_the_failure(tmp_path):
    """SIGTERM while the end-of-run metrics run (DeepFool, after Lightning has put back the signal
    handlers): exit 143 with one line that says how to resume, pasteable for a folder with a space in
    its name, and failed.json (the default death printed nothing); that command then finishes the run."""
    import shlex

    out = tmp_path / "my run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), str(Path(__file__).parent)])}
    stop = "+callbacks.stop._target_=test_job_folders.SigtermAtFitEnd"
    r = run_cli(
        tmp_path, f"output_dir={out}", "trainer.max_epochs=1", "metrics_every=0", "deepfool_samples=50", stop, env=env
    )
    assert r.returncode == 143, r.stderr[-3000:]
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("terminated outside training"))
    assert "terminated" in json.loads((out / files.FAILED).read_text())["error"]
    assert not (out / files.SUMMARY).exists()
    command = shlex.split(line.split("resume with: ", 1)[1].split(" (from ")[0])
    assert f"output_dir={out}" in command and command[:3] == ["python", "-m", "binary_encoding.train"]
    command = [c for c in command if not c.startswith("+callbacks.stop")]
    done = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / files.SUMMARY).read_text())["epochs"] == 1 and not (out / files.FAILED).exists()


def test_sigterm_between_the_jobs_of_a_sweep_ends_it_with_a_message_and_the_recap(tmp_path):
    """SIGTERM as the first job of a sweep ends and the next one sets up: exit 143, a line that says so,
    and the sweep's recap (the default death left no recap)."""
    import signal

    cmd = [sys.executable, "-m", "binary_encoding.train", "-m", "lr=0.001,0.002", *FAST, "name=stop", "logger=csv"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = tmp_path / "multirun" / "stop" / "deepfool_samples=0,lr=0.001,metrics_every=0,trainer.max_epochs=1"
    _wait_for(proc, first / files.SUMMARY)
    proc.send_signal(signal.SIGTERM)
    stdout, err = (b.decode() for b in proc.communicate(timeout=120))
    assert proc.returncode == 143, err[-3000:]
    stops = ("terminated between jobs", "terminated outside training")  # the first job's end, or the next's setup
    assert any(ln.startswith(stops) for ln in err.splitlines()), err[-3000:]
    assert "2 jobs: " in stdout and "report: python -m binary_encoding.report multirun/stop" in stdout, stdout


# ------------------------------------------------------------------------------------------------
# evaluate: a run made before a key existed, a checkpoint of another run
# ------------------------------------------------------------------------------------------------


def test_evaluate_fills_keys_added_since_and_says_when_the_checkpoint_is_another_runs(tmp_path, capsys):
    """A run whose config.yaml lacks `runtime.channels_last` (made before the key existed) evaluates to
    its summary's numbers; with another run's checkpoint put in its place, evaluate says the checkpoint
    is not the summary's; one of another architecture is refused in one line."""
    from binary_encoding.evaluate import evaluate_run

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    s = train(make_cfg(a, "trainer.max_epochs=2", "deepfool_samples=0"))
    train(make_cfg(b, "trainer.max_epochs=1", "deepfool_samples=0"))
    train(make_cfg(c, *FAST, "head.width=6"))
    cfg = OmegaConf.load(a / files.CONFIG)
    del cfg.runtime["channels_last"]
    OmegaConf.save(cfg, a / files.CONFIG)
    capsys.readouterr()
    e = evaluate_run(a, "cpu")
    assert e["test_acc"] == s["test_acc"] and e["nc1"] == s["nc1"] and "warning" not in capsys.readouterr().err
    e = evaluate_run(a, "cpu", checkpoint=str(files.last_checkpoint(b)))
    err = capsys.readouterr().err
    assert f"is not the checkpoint {a / files.SUMMARY} was computed from" in err and e["epoch"] == 0
    with pytest.raises(ValueError, match=r"is not a checkpoint of the model in .*size mismatch") as info:
        evaluate_run(a, "cpu", checkpoint=str(files.last_checkpoint(c)))
    assert len(str(info.value).splitlines()) == 1
