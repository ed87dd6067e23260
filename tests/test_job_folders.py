"""A job folder one can trust after any crash: its name holds every setting that defines the run, a summary
counts only when it is whole and belongs to the config and checkpoint beside it, a damaged checkpoint is
refused, and every way a job stops leaves a message and a record. Real processes, real files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from binary_encoding.record import files, identity

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
