"""Lines of the config checks and the command line that no other test reached, each pinned with known values:
the kinds a declaration refuses beyond one bad value each (a bool among device indices, a bool as a batch
limit, a float among layer widths, a parent key that is no mapping), the `auto`s that read the machine when a
key or argument is absent (precision, the progress bar, the cores, the launcher's jobs, torch's threads), the
fallbacks of the import probe and of the config folder, a data root under `~`, strided convolutions along one
axis only, cuDNN autotuning under `deterministic=warn`, what the W&B logger is given, the epoch line's
seconds, the resume's lines when train.log is absent, evaluate's defaults for an old run's config, its
refusals of files that torch cannot read as a run's checkpoint, what it writes and its line per run, and the
rank of an initialized process group."""

from __future__ import annotations

import json
import logging
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from test_command_line import _run_folder, _zip
from test_console import _epoch_lines
from test_launchers import hydra_cfg
from test_settings import _with

from binary_encoding import evaluate, ranks
from binary_encoding.run import build, conf, console, policy, settings, threads
from binary_encoding.run.policy import ConfigError


class _FileLog:
    """The root logger holding only `handler` as its file handler (pytest's own log file set aside)."""

    def __init__(self, handler: logging.Handler | None):
        self.handler = handler

    def __enter__(self):
        root = logging.getLogger()
        self.before = list(root.handlers)
        root.handlers = [h for h in self.before if not isinstance(h, logging.FileHandler)]
        if self.handler is not None:
            self.handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
            root.handlers.insert(0, self.handler)
        return self

    def __exit__(self, *exc):
        if self.handler is not None:
            self.handler.close()
        logging.getLogger().handlers = self.before


# ------------------------------------------------------------------------------------------------
# settings.Setting.problem: kinds a value may look like but is not
# ------------------------------------------------------------------------------------------------


def test_a_bool_among_device_indices_is_refused_though_python_counts_it_as_an_integer():
    devices = settings.SETTINGS["trainer.devices"]
    assert [devices.problem(v) for v in ([True], [0, False], [0, 1], [3])] == [True, True, False, False]


@pytest.mark.parametrize("key", ["trainer.limit_train_batches", "trainer.limit_val_batches"])
def test_a_bool_batch_limit_is_neither_a_count_nor_a_fraction(key):
    limit = settings.SETTINGS[key]
    assert [limit.problem(v) for v in (True, False, 1, 0, 1.0)] == [True, True, False, False, False]


def test_a_layer_width_list_refuses_a_fraction_or_a_bool_as_an_item():
    hidden = settings.SETTINGS["backbone.hidden"]
    assert [hidden.problem(v) for v in ([2.5], [64, 2.5], [True], [64, 1])] == [True, True, True, False]
    cfg = OmegaConf.create({"backbone": {"hidden": [64, 2.5]}})
    with pytest.raises(ConfigError) as err:
        settings.check(cfg)
    assert str(err.value) == "backbone.hidden=[64,2.5]: must be a non-empty list of integers >= 1"


def test_a_parent_key_that_is_no_mapping_leaves_its_settings_unchecked_and_the_others_checked():
    settings.check(OmegaConf.create({"seed": 0, "data": None, "metrics": 3, "head": "x"}))
    with pytest.raises(ConfigError) as err:
        settings.check(OmegaConf.create({"seed": -1, "data": None, "metrics": 3}))
    assert str(err.value) == "seed=-1: must be an integer in 0..4294967295"


# ------------------------------------------------------------------------------------------------
# policy: the launcher hint, the import probe, validate's data root, the autos of a GPU
# ------------------------------------------------------------------------------------------------


def test_a_module_whose_spec_is_none_or_whose_parent_is_missing_is_not_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "be_test_no_spec", types.ModuleType("be_test_no_spec"))  # __spec__ None
    with pytest.raises(ValueError):
        __import__("importlib.util").util.find_spec("be_test_no_spec")  # what _importable must absorb
    assert policy._importable("be_test_no_spec") is False
    assert policy._importable("be_test_no_such_parent.child") is False
    assert policy._importable("json") is True


def test_the_basic_launcher_needs_no_plugin_even_when_none_is_installed(monkeypatch):
    monkeypatch.setattr(policy, "_importable", lambda module: False)
    assert policy.missing_launcher_message(["hydra/launcher=basic", "head=binenc"]) is None
    assert policy.missing_launcher_message(["slurm=1"]) is None  # a key, not the launcher group
    assert policy.missing_launcher_message(["hydra/launcher=slurm_big"]).startswith(
        'hydra/launcher=slurm_big needs its Hydra plugin: pip install "binary_encoding[slurm]"'
    )


def test_a_single_searchpath_entry_adds_its_choices_like_a_list(tmp_path):
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / "tanhpen.yaml").write_text("name: tanhpen\n")
    assert policy.unknown_choice_message(["head=tanhpen", f"hydra.searchpath=file://{tmp_path}"]) is None
    assert policy.unknown_choice_message(["head=tanhpen"]).startswith("head=tanhpen: no such choice")


def test_an_imagefolder_root_under_the_home_folder_is_found_with_its_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "imgs").mkdir()
    policy.validate(_with("data=imagefolder", data__root="~/imgs"))
    with pytest.raises(ConfigError) as err:
        policy.validate(_with("data=imagefolder", data__root="~/missing"))
    assert str(err.value) == "data=imagefolder needs data.root=DIR, an existing folder; got '~/missing'"


def test_auto_precision_without_a_gpu_argument_asks_torch_whether_cuda_is_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert policy.resolve_precision("auto") == "bf16-mixed"
    assert policy.resolve_precision("auto", gpu=False) == "32-true"


def test_a_trainer_without_precision_or_progress_bar_keys_gets_their_autos_on_the_jobs_device(monkeypatch):
    """On a (stand-in) GPU with bf16: precision auto is bf16-mixed, decided by the job's device, not by
    whether this process sees CUDA; the bar follows the terminal; no sync_batchnorm is added."""
    monkeypatch.setattr(policy, "on_gpu", lambda cfg: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    trainer = {"accelerator": "gpu", "devices": 1, "strategy": "auto", "deterministic": False}
    cfg = OmegaConf.create({"trainer": trainer, "runtime": {"cudnn_benchmark": False}})
    assert policy.trainer_kwargs(cfg) == {
        "enable_model_summary": False,
        "use_distributed_sampler": False,
        "benchmark": False,
        **trainer,
        "precision": "bf16-mixed",
        "enable_progress_bar": True,
    }


def test_a_convolution_strided_along_one_axis_only_counts_as_strided():
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(4, 8, 1, stride=(1, 2)),  # unsafe: strided along the width
        nn.Conv2d(8, 8, 1, stride=(2, 1)),  # 8 channels: safe
        nn.Conv2d(3, 8, 3, stride=1),  # not strided: safe
        nn.Conv2d(7, 8, 1, stride=(2, 1)),  # unsafe
    )
    assert policy.cpu_nhwc_unsafe(net) == ["0", "3"]
    assert policy.cpu_nhwc_unsafe(nn.Sequential(nn.Conv1d(2, 8, 1, stride=2))) == []  # 2-D convolutions only


def test_cudnn_autotuning_is_off_on_a_gpu_whenever_determinism_is_asked_for_warn_included(monkeypatch):
    monkeypatch.setattr(policy, "on_gpu", lambda cfg: True)
    runs = [_with("head=binenc", trainer__deterministic=d) for d in (False, True, "warn")]
    assert [policy.cudnn_benchmark(cfg) for cfg in runs] == [True, False, False]


# ------------------------------------------------------------------------------------------------
# threads: the machine's cores, the launcher's jobs, torch's count
# ------------------------------------------------------------------------------------------------


def test_the_cores_are_those_this_process_may_run_on_else_the_cpu_count_else_one(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5, 9}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert threads.cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")  # not on Linux
    assert threads.cores() == 64
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # undeterminable
    assert threads.cores() == 1


def test_outside_hydra_and_under_a_launcher_without_n_jobs_there_is_no_job_count(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    assert threads.launcher_jobs() is None
    HydraConfig.instance().set_config(hydra_cfg())  # the basic launcher: one job after another
    assert threads.launcher_jobs() is None
    assert threads.threads_per_job("auto", n_cores=8) is None


def test_apply_returns_torchs_thread_count_also_when_it_leaves_it_alone(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 11)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: pytest.fail("set for null"))
    assert threads.apply(None) == 11


# ------------------------------------------------------------------------------------------------
# console: the seconds of an epoch line, the resume's lines without a readable log
# ------------------------------------------------------------------------------------------------


def _complete(epoch: int) -> dict:
    from binary_encoding.record.csv_log import EPOCH_COMPLETE

    return {"epoch": epoch, "train/loss": 0.5, EPOCH_COMPLETE: 0.5}


def test_each_epoch_lines_seconds_are_those_since_the_previous_line(monkeypatch, caplog):
    clock = iter([100.0, 101.5, 104.0, 104.25])  # made, epoch 1 done, epoch 2 done, epoch 3 done
    monkeypatch.setattr(console, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    lg = console.EpochLog(max_epochs=3)
    with caplog.at_level(logging.INFO, logger="binary_encoding"):
        for e in range(3):
            lg.log_metrics(_complete(e), step=e)
    assert [r.getMessage().rsplit("  ", 1)[1] for r in caplog.records] == ["1.5 s", "2.5 s", "0.2 s"]


def test_a_resume_whose_train_log_is_not_there_yet_restores_every_checkpointed_epoch(tmp_path):
    log = tmp_path / "train.log"
    rows = [{"epoch": str(e), "train/loss": "0.25"} for e in range(3)]
    with _FileLog(logging.FileHandler(log, delay=True)):  # the file is made at the first line
        console.EpochLog(max_epochs=3, console=False).restore(rows, epochs_done=2)
    assert _epoch_lines(log.read_text()) == [
        "epoch 1/3  train loss 0.2500  (restored on resume)",
        "epoch 2/3  train loss 0.2500  (restored on resume)",
    ]
    other = tmp_path / "other.log"
    other.write_text("[2026-01-01 00:00:00,000][binary_encoding][INFO] - torch threads: 4\n")  # no epoch line
    with _FileLog(logging.FileHandler(other)):
        console.EpochLog(max_epochs=3, console=False).restore(rows, epochs_done=1)
    assert _epoch_lines(other.read_text()) == ["epoch 1/3  train loss 0.2500  (restored on resume)"]


def test_a_resume_without_a_job_log_writes_nothing(caplog):
    rows = [{"epoch": "0", "train/loss": "0.25"}]
    with _FileLog(None), caplog.at_level(logging.INFO, logger="binary_encoding"):
        lg = console.EpochLog(max_epochs=3)
        lg.restore(rows, epochs_done=1)
    assert caplog.records == [] and (lg.epoch, lg.values) == (None, {})


# ------------------------------------------------------------------------------------------------
# conf: where the configs are found
# ------------------------------------------------------------------------------------------------


def test_the_configs_are_the_first_package_location_with_config_yaml_else_the_checkouts(tmp_path, monkeypatch):
    import importlib.util

    checkout = str(Path(conf.__file__).resolve().parents[2] / "conf")
    bare, full = tmp_path / "bare", tmp_path / "full"
    bare.mkdir(), full.mkdir()
    (full / "config.yaml").write_text("seed: 0\n")
    spec = SimpleNamespace(submodule_search_locations=[str(bare), str(full)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert conf.conf_dir() == str(full)
    spec.submodule_search_locations = [str(bare)]
    assert conf.conf_dir() == checkout

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.util, "find_spec", missing)
    assert conf.conf_dir() == checkout
    monkeypatch.setattr(conf, "__file__", str(tmp_path / "a" / "b" / "conf.py"))  # neither place has configs
    with pytest.raises(FileNotFoundError, match=f"nor {tmp_path / 'conf'}; reinstall the package$"):
        conf.conf_dir()


# ------------------------------------------------------------------------------------------------
# build: what the W&B logger is given
# ------------------------------------------------------------------------------------------------


def test_the_logger_gets_the_resolved_config_the_runs_group_choices_without_hydras_the_code_and_size(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    from binary_encoding.record import version

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    HydraConfig.instance().set_config(hydra_cfg("head=linpen"))
    cfg = OmegaConf.create({"lr": 0.5, "name": "${lr}", "logger": {"_target_": "types.SimpleNamespace"}})
    (logger,) = build.build_loggers(cfg, num_params=1234)
    run_config = logger.run_config
    assert isinstance(run_config, dict) and (run_config["lr"], run_config["name"]) == (0.5, 0.5)
    assert (run_config["num_params"], run_config["code"]) == (1234, version.code_version())
    assert run_config["choices"]["head"] == "linpen" and run_config["choices"]["data"] == "digits"
    assert not [k for k in run_config["choices"] if k.startswith("hydra/")] and "experiment" in run_config["choices"]


# ------------------------------------------------------------------------------------------------
# evaluate: an old run's config, files that are no run's checkpoint, the line per run
# ------------------------------------------------------------------------------------------------


def test_an_old_runs_config_gets_the_defaults_of_its_own_head_and_keeps_its_values():
    old = OmegaConf.create(
        {"lr": 0.5, "data": {"name": "digits"}, "head": {"name": "linpen", "width": 6}, "trainer": {"extra": 2}}
    )
    cfg = evaluate.with_defaults(old)
    assert (cfg.lr, cfg.head.width, cfg.trainer.extra, cfg.trainer.max_epochs) == (0.5, 6, 2, 150)
    assert cfg.head.gamma_max is None and cfg.head.gamma0 == 0.0  # linpen's, not binenc's 10.0 and 0.01
    assert cfg.runtime.channels_last == "auto" and cfg.backbone.name == "mlp"
    own = evaluate.with_defaults(OmegaConf.create({"head": {"name": "tanhpen", "gamma0": 0.0}}))  # no yaml of its own
    assert (own.head.name, own.head.gamma0, own.head.gamma_max) == ("tanhpen", 0.0, 10.0)


@pytest.fixture
def stub_build(monkeypatch):
    """evaluate_run with the data and model stood in for: it stops at the checkpoint's contents."""
    monkeypatch.setattr(build, "build_datamodule", lambda cfg: SimpleNamespace(input_shape=(1, 8, 8), num_classes=10))
    monkeypatch.setattr(build, "build_model", lambda cfg, shape, n: object())


def test_a_zip_that_torch_cannot_load_or_without_a_state_dict_is_no_checkpoint(tmp_path, cfg_factory, stub_build):
    run = _run_folder(tmp_path / "run", ckpt=_zip(), config=OmegaConf.to_yaml(cfg_factory()))
    ckpt = run / "checkpoints" / "last.ckpt"
    try:
        torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 -- the oracle: what torch says of the file
        says = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    with pytest.raises(evaluate.NotACheckpoint) as err:
        evaluate.evaluate_run(run)
    assert str(err.value) == f"{ckpt} is not a checkpoint ({says})"
    torch.save({"epoch": 3, "global_step": 30}, ckpt)
    with pytest.raises(evaluate.NotACheckpoint) as err:
        evaluate.evaluate_run(run)
    assert str(err.value) == f"{ckpt} is not a checkpoint of a run (no state_dict in it)"
    assert not (run / "eval.json").exists()


class _Module:
    """A stand-in of the rebuilt LightningModule: what evaluate_run does with it is recorded."""

    gamma = torch.tensor(2.5)

    def __init__(self):
        self.loaded, self.device = None, None

    def load_state_dict(self, state):
        self.loaded = state

    def to(self, device):
        self.device = device
        return self


@pytest.mark.parametrize("device, bf16", [("cuda", True), ("cpu", False), (None, False)])
def test_evaluate_writes_the_checkpoints_epoch_and_step_and_measures_in_the_runs_precision_on_its_device(
    tmp_path, cfg_factory, monkeypatch, capsys, device, bf16
):
    """precision auto: bf16 on a GPU that has it (the device evaluated on, not the one this process sees),
    fp32 on a CPU; the run's metric settings; a summary of another checkpoint warned about on stderr."""
    from binary_encoding.callbacks import metrics
    from binary_encoding.record import files, summarize

    module, seen = _Module(), {}
    monkeypatch.setattr(build, "build_datamodule", lambda cfg: SimpleNamespace(input_shape=(1, 8, 8), num_classes=10))
    monkeypatch.setattr(build, "build_model", lambda cfg, shape, n: module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)

    def final(m, dm, settings, bf16=None):
        seen.update(module=m, settings=settings, bf16=bf16)
        return {"test_acc": 0.75}, {}

    monkeypatch.setattr(metrics, "final_metrics", final)
    run = _run_folder(tmp_path / "run", config=OmegaConf.to_yaml(cfg_factory("metrics.deepfool_max_iter=7")))
    ckpt = files.last_checkpoint(run)
    torch.save({"state_dict": {"w": torch.ones(1)}, "epoch": 4, "global_step": 55}, ckpt)
    files.write_json(run / files.SUMMARY, {"test_acc": 0.5, summarize.CHECKPOINT_FINGERPRINT: "another"})
    out = evaluate.evaluate_run(run, device)
    expected = {"checkpoint": str(ckpt), "epoch": 4, "global_step": 55, "gamma": 2.5, "test_acc": 0.75}
    assert out == expected and json.loads((run / files.EVAL).read_text()) == expected
    assert seen["bf16"] is bf16 and seen["module"] is module and seen["settings"].deepfool_max_iter == 7
    assert module.device == torch.device("cuda" if device == "cuda" else "cpu")
    assert torch.equal(module.loaded["w"], torch.ones(1))
    why = evaluate.summary_mismatch(run, ckpt)
    assert "another checkpoint" in why
    assert capsys.readouterr().err == f"warning: {why}: eval.json will not agree with it\n"


def test_each_evaluated_run_gets_one_numbered_line_with_its_numbers(tmp_path, monkeypatch, capsys):
    a, b = _run_folder(tmp_path / "one" / "a"), _run_folder(tmp_path / "two" / "b")
    calls = []

    def fake(run, device, checkpoint):
        calls.append((run, device, checkpoint))
        return {"test_acc": 0.91234, "nc1": 0.0123456, "mahalanobis_auroc": 0.87654}

    monkeypatch.setattr(evaluate, "evaluate_run", fake)
    evaluate.main([str(tmp_path / "one"), str(tmp_path / "two"), "--device", "cpu"])  # no exit: all evaluated
    assert calls == [(a, "cpu", None), (b, "cpu", None)]
    assert capsys.readouterr().out.splitlines() == [
        f"[1/2] {a}: test acc 0.9123, NC1 1.235e-02, Mahalanobis AUROC 0.8765 -> {a / 'eval.json'}",
        f"[2/2] {b}: test acc 0.9123, NC1 1.235e-02, Mahalanobis AUROC 0.8765 -> {b / 'eval.json'}",
    ]


def test_the_runs_of_several_folders_are_all_found_in_order(tmp_path):
    a, b = _run_folder(tmp_path / "x" / "a"), _run_folder(tmp_path / "y")
    assert evaluate.find_runs([str(tmp_path / "y"), str(tmp_path / "x")]) == [b, a]


# ------------------------------------------------------------------------------------------------
# ranks: a process group, once there, is asked before the environment
# ------------------------------------------------------------------------------------------------


def test_an_initialized_process_group_gives_the_rank_and_world_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    group = SimpleNamespace(
        is_available=lambda: True, is_initialized=lambda: True, get_rank=lambda: 3, get_world_size=lambda: 4
    )
    monkeypatch.setitem(sys.modules, "torch.distributed", group)
    assert ranks.rank_world() == (3, 4) and ranks.rank() == 3 and not ranks.is_rank0()
    group.is_initialized = lambda: False  # not set up yet: torch.distributed.run's environment
    assert ranks.rank_world() == (1, 2)
    group.is_available, group.is_initialized = (lambda: False), (lambda: True)  # a build without distributed
    assert ranks.rank_world() == (1, 2)
    monkeypatch.delitem(sys.modules, "torch.distributed")  # never imported
    assert ranks.rank_world() == (1, 2)
