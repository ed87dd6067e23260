"""The command line before Hydra: a typo in any config group, or a launcher whose plugin is missing,
fails in one line (exit 2) before anything is trained or any job of a sweep starts."""

import subprocess
import sys

import pytest

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
