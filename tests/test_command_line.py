"""The command line before Hydra: a typo in any config group, or a launcher whose plugin is missing,
fails in one line (exit 2) before anything is trained or any job of a sweep starts."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf, open_dict

from binary_encoding.run.policy import moved_key_message, unknown_choice_message


def run_cli(cwd, *args, prelude: str = "", timeout=120):
    """`binary_encoding.train.main()` with ARGS in a fresh interpreter in `cwd` (after `prelude`)."""
    code = (
        f"{prelude}\nimport sys\nsys.argv = ['train', *{list(args)!r}]\nfrom binary_encoding.train import main\nmain()"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args, group, options",
    [
        (["experiment=cifar10_resnet81"], "experiment", "cifar100_resnet50, cifar100_resnet50_d64, cifar10_resnet18"),
        (["debug=fsat"], "debug", "fast, overfit"),
        (["head=binenk"], "head", "binenc, linpen, nonlinpen, nopen"),
        (["+sweep=paper_lrs"], "sweep", "paper_lr"),
        (["data@extra=cifar11"], "data", "cifar10, cifar100, digits, imagefolder"),
        (["-m", "head=binenc,linpen,binenk", "lr=0.1,0.2"], "head", "binenc, linpen, nonlinpen, nopen"),
        (["hydra/launcher=slurmm"], "hydra/launcher", "slurm"),
    ],
    ids=["optional", "optional-debug", "required", "added", "package", "sweep", "launcher"],
)
def test_an_unknown_choice_in_any_group_fails_in_one_line_before_anything_runs(tmp_path, args, group, options):
    r = run_cli(tmp_path, *args, "trainer.max_epochs=1", "logger=csv")
    assert r.returncode == 2, r.stderr[-3000:]
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"no such choice in the config group {group}. Available options: " in line
    assert options in line
    assert list(tmp_path.iterdir()) == []  # no output folder, no multirun folder: nothing started


def test_existing_choices_deletions_nulls_and_globs_pass_the_check(tmp_path):
    ok = ["-m", "head=binenc,linpen", "experiment=null", "~debug", "+sweep=paper_lr", "head=glob(*)", "lr=1,2"]
    assert unknown_choice_message(ok) is None
    assert unknown_choice_message(["hydra/launcher=basic", "trainer.max_epochs=3", "data.root=/x"]) is None
    assert unknown_choice_message(["head=[binenc,oops]"]).startswith("head=oops: no such choice")
    assert unknown_choice_message(["lr=(("]) is None  # a malformed override: Hydra's to report
    assert unknown_choice_message(["-m", "debug=null,fast"]) is None  # a sweep over "no debug" and fast
    assert unknown_choice_message(["-m", "debug=null,fsat"]).startswith("debug=fsat: no such choice")


def test_a_choice_from_an_added_config_folder_is_known(tmp_path):
    """hydra.searchpath=[file://DIR] (the README's new-head example) and --config-dir add choices."""
    (tmp_path / "conf" / "head").mkdir(parents=True)
    (tmp_path / "conf" / "head" / "tanhpen.yaml").write_text("name: tanhpen\n")
    assert unknown_choice_message(["head=tanhpen"]).startswith("head=tanhpen: no such choice")
    assert unknown_choice_message(["head=tanhpen", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]) is None
    assert unknown_choice_message(["--config-dir", str(tmp_path / "conf"), "head=tanhpen"]) is None


HIDE_PLUGINS = """
import importlib.abc, sys
class NoHydraPlugins(importlib.abc.MetaPathFinder):  # as after pip install -e ".[dev]": no plugin at all
    def find_spec(self, name, path=None, target=None):
        if name == "hydra_plugins" or name.startswith("hydra_plugins."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoHydraPlugins())
for m in [m for m in sys.modules if m.startswith("hydra_plugins")]:
    del sys.modules[m]
"""


@pytest.mark.parametrize(
    "launcher, extra", [("slurm", "slurm"), ("ray_gpu_packed", "ray"), ("local_parallel", "parallel")]
)
def test_the_launcher_hint_works_with_no_hydra_plugin_installed(tmp_path, launcher, extra):
    probe = subprocess.run(
        [sys.executable, "-c", HIDE_PLUGINS + "import hydra_plugins"], capture_output=True, text=True, timeout=60
    )
    assert "No module named 'hydra_plugins'" in probe.stderr  # the simulated absence is real to Python
    r = run_cli(tmp_path, "-m", f"hydra/launcher={launcher}", "head=binenc,nopen", prelude=HIDE_PLUGINS)
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stderr.strip() == (
        f'error: hydra/launcher={launcher} needs its Hydra plugin: pip install "binary_encoding[{extra}]" '
        f'(or pip install -e ".[{extra}]" in a checkout)'
    )


@pytest.mark.parametrize(
    "arg, write",
    [
        ("trainer.compile=false", "runtime.compile=false"),
        ("+trainer.compile=false", "runtime.compile=false"),
        ("++trainer.cuda_graphs=true", "runtime.cuda_graphs=true"),
        ("~trainer.channels_last", "~runtime.channels_last"),
    ],
)
def test_a_moved_key_is_named_with_its_new_place_whatever_its_override_prefix(arg, write):
    old, new = write.lstrip("~").split("=")[0].replace("runtime.", "trainer."), write.lstrip("~").split("=")[0]
    assert moved_key_message(["seed=1", arg]) == f"{old} moved to {new}: write {write}"
    assert moved_key_message(["seed=1", write]) is None


def test_a_moved_key_is_reported_before_a_typo_and_a_typo_before_a_missing_plugin(monkeypatch, capsys):
    """train.main's order: `hydra/launcher=slurmm` is no preset whatever plugins are installed, so the
    typo is named rather than a plugin to install; a moved key comes first of all."""
    from binary_encoding import train
    from binary_encoding.run import policy

    monkeypatch.setattr(policy, "_importable", lambda module: False)  # no launcher plugin installed
    for argv, says in [
        (["hydra/launcher=slurmm"], "error: hydra/launcher=slurmm: no such choice in the config group hydra/launcher"),
        (["head=binenk", "trainer.compile=true"], "error: trainer.compile moved to runtime.compile"),
        (["hydra/launcher=slurm"], "error: hydra/launcher=slurm needs its Hydra plugin"),
    ]:
        monkeypatch.setattr(sys, "argv", ["train", *argv])
        with pytest.raises(SystemExit) as code:
            train.main()
        assert code.value.code == 2 and capsys.readouterr().err.startswith(says), argv


def test_the_sweep_objective_is_nan_for_a_run_without_accuracies():
    """What a sweeper maximizes: nan (never the best) for a summary with neither val_acc nor test_acc."""
    import math

    from binary_encoding.train import objective

    assert math.isnan(objective({})) and objective({"test_acc": 0.25}) == 0.25


# ------------------------------------------------------------------------------------------------
# python -m binary_encoding.evaluate: its arguments and exit codes (1: a run failed; 2: the user's input)
# ------------------------------------------------------------------------------------------------


def _run_folder(path, ckpt: bytes = b"", config: str = "seed: 0\n"):
    (path / "checkpoints").mkdir(parents=True)
    (path / "config.yaml").write_text(config)
    (path / "checkpoints" / "last.ckpt").write_bytes(ckpt)
    return path


def _zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"")
    return buf.getvalue()


@pytest.mark.parametrize(
    "args, says",
    [
        (["missing"], "error: no such folder: {tmp}/missing"),
        (["empty"], "error: no run with config.yaml and checkpoints/last.ckpt under {tmp}/empty"),
        (["sweep", "--checkpoint", "x.ckpt"], "error: --checkpoint needs exactly one run folder"),
        (["sweep", "--device", "tpu"], "error: argument --device: invalid choice: 'tpu'"),
    ],
)
def test_evaluate_refuses_what_it_cannot_evaluate_with_exit_2(tmp_path, capsys, args, says):
    from binary_encoding.evaluate import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text("seed: 0\n")  # no checkpoint: no run
    for name in ("a", "b"):
        _run_folder(tmp_path / "sweep" / name)
    with pytest.raises(SystemExit) as code:
        main([str(tmp_path / a) if i == 0 else a for i, a in enumerate(args)])
    assert code.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # argparse's: `PROG: error: ...`
    assert line.split(": ", 1)[1].startswith(says.format(tmp=tmp_path)), line


def test_evaluate_exits_1_when_a_run_fails_and_2_when_only_checkpoint_files_are_bad(tmp_path, capsys):
    """Each run on its own line, numbered; a broken run does not stop the others. Only files that are no
    checkpoints (the user's input): exit 2; any run that fails otherwise: exit 1."""
    from binary_encoding.evaluate import main

    _run_folder(tmp_path / "sweep" / "a")  # an empty last.ckpt: no checkpoint
    _run_folder(tmp_path / "sweep" / "b", ckpt=_zip(), config="[not, a, mapping]\n")  # fails to evaluate
    with pytest.raises(SystemExit) as code:
        main([str(tmp_path / "sweep")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code.value.code == 1
    assert lines[0].startswith(f"[1/2] {tmp_path / 'sweep' / 'a'}: ") and "is empty (0 bytes)" in lines[0]
    assert lines[1].startswith(f"[2/2] {tmp_path / 'sweep' / 'b'}: FAILED ")
    with pytest.raises(SystemExit) as code:
        main([str(tmp_path / "sweep" / "a")])
    assert code.value.code == 2


def test_evaluate_takes_checkpoint_for_exactly_one_run_folder(tmp_path, capsys):
    """`--checkpoint` with one RUN_DIR goes on to that file (here an empty one: refused as no checkpoint,
    exit 2, on the run's numbered line), not argparse's `needs exactly one run folder`."""
    from binary_encoding.evaluate import main

    run = _run_folder(tmp_path / "run", ckpt=_zip())
    other = tmp_path / "other.ckpt"
    other.write_bytes(b"")
    with pytest.raises(SystemExit) as code:
        main([str(run), "--checkpoint", str(other)])
    assert code.value.code == 2
    assert capsys.readouterr().err.strip() == f"[1/1] {run}: {other} is empty (0 bytes): not a checkpoint"


@pytest.mark.parametrize("device, accelerator", [("cuda", "gpu"), (None, "cpu")])
def test_evaluate_rebuilds_a_ddp_run_eagerly_on_one_device(tmp_path, monkeypatch, device, accelerator):
    """A run trained with trainer=ddp (keys the default trainer lacks: sync_batchnorm, and a ++trainer key),
    compiled and graphed, is evaluated on one device of the kind asked for (--device; by default the one its
    config trains on: here no GPU), eagerly. (Its keys beyond the defaults once made evaluate fail.)"""
    from conftest import make_cfg

    from binary_encoding import evaluate
    from binary_encoding.run import build

    seen = []

    def stop(cfg):
        seen.append(cfg)
        raise RuntimeError("built")

    monkeypatch.setattr(build, "build_datamodule", stop)
    cfg = make_cfg(tmp_path, "trainer=ddp", "trainer.devices=4", "runtime.compile=true", "runtime.cuda_graphs=true")
    with open_dict(cfg):
        cfg.trainer.limit_train_batches = 2  # as ++trainer.limit_train_batches=2 (README) or debug=fast
    run = _run_folder(tmp_path / "run", ckpt=_zip(), config=OmegaConf.to_yaml(cfg))
    with pytest.raises(RuntimeError, match="built"):
        evaluate.evaluate_run(run, device)
    t, r = seen[0].trainer, seen[0].runtime
    assert (t.accelerator, t.devices, t.strategy, r.compile, r.cuda_graphs) == (accelerator, 1, "auto", False, False)
    assert (t.sync_batchnorm, t.limit_train_batches, seen[0].head.name) == ("auto", 2, "binenc")  # the run's own


# ------------------------------------------------------------------------------------------------
# What a resumed run prints: the epoch lines its train.log lacks, from metrics.csv
# ------------------------------------------------------------------------------------------------


def test_a_resumed_run_writes_again_exactly_the_epoch_lines_its_log_lacks(tmp_path):
    """train.log has the lines of epochs 1-2 (of 5), the checkpoint holds 4 epochs, metrics.csv has rows for 5
    (the 5th after the checkpoint): the lines of epochs 3 and 4 are written, marked as restored; an epoch past
    the checkpoint, a row without its training loss and the epochs already there are not."""
    import logging

    from binary_encoding.run import console

    log = tmp_path / "train.log"
    prefix = "[2026-01-01 00:00:00,000][binary_encoding][INFO] - "
    log.write_text("".join(f"{prefix}epoch {e}/5  train loss 1.0000  0.5 s\n" for e in (1, 2)))
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    rows = [{"epoch": str(e), "train/loss": f"0.{e}", "gamma": "0.01", "val/acc": ""} for e in range(5)]
    rows.insert(3, {"epoch": "2", "train/loss": "", "gamma": "", "val/acc": "0.75"})  # validation's row alone
    logging.getLogger().handlers.insert(0, handler)  # the job's log first (pytest adds a FileHandler of its own)
    try:
        console.EpochLog(max_epochs=5, console=False).restore(rows, epochs_done=4)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    added = [ln.split("] - ", 1)[1] for ln in log.read_text().splitlines()[2:]]
    assert added == [
        "epoch 3/5  train loss 0.2000  gamma 0.01  (restored on resume)",
        "epoch 4/5  train loss 0.3000  gamma 0.01  (restored on resume)",
    ]
