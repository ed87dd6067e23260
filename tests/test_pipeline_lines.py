"""Lines of the report, the data pipeline and the training callbacks that only unusual input reaches.

Each test pins one behaviour a one-line slip would change and no other test reads: a job folder whose
config.yaml is no YAML or whose failed.json is cut off, a summary value that is text, a sweep folder that is
itself a job, an old summary whose two-valuedness comes from its latents, an empty metrics.csv or a row
without an epoch (`report.load`); the selection's refusals and the reason given for an unfinished job
(`report.select`); the t-interval's level and the row labels (`report.claims`); a row's settings and the
paper's numbers (`report.tables`); the choice of latents and the W&B cells (`report.figures`,
`report.publish`); the command line's exit line, the selection it says and the split each pair's figures say
(`report.cli`); the train/test dtype check, the per-rank batch, the augmentation's generator (`data.base`);
the image listing's filter and messages (`data.imagefolder`); the gamma schedule's warning and its overflow
(`callbacks.gamma`); when gradients are zeroed in place and when a non-finite loss is read (`model.module`).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from oracles import two_valuedness_reference
from scipy import stats
from test_data_files import write_images
from test_data_values import _Given
from test_training_values import tiny_module

from binary_encoding.callbacks.gamma import GammaScheduler
from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.data.imagefolder import ImageFolderDataModule, list_images
from binary_encoding.data.split import DataError
from binary_encoding.model.module import NonFiniteLossError
from binary_encoding.report import claims, cli, figures, load, publish, select, tables

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

SUMMARY = {"data": "digits", "backbone": "mlp", "head": "binenc", "seed": 0, "lr": 0.1, "val_acc": 0.5, "test_acc": 0.5}


def _job(d: Path, config: str | None = None, summary: dict | None = None, **texts: str) -> Path:
    """A job folder `d`: config.yaml holding `config` (text), summary.json holding `summary`, and any other
    file named by a keyword (`failed_json="..."`: failed.json)."""
    d.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (d / "config.yaml").write_text(config)
    if summary is not None:
        (d / "summary.json").write_text(json.dumps(summary))
    for name, text in texts.items():
        (d / name.replace("_", ".")).write_text(text)
    return d


def _row(head: str, seed: int, lr: float, **kw) -> dict:
    """A selected run as `select.select_runs` returns it."""
    return {"run_id": f"{head}-{seed}-{lr}", "data": "digits", "backbone": "mlp", "head": head, "width": 4,
            "settings": "", "seed": seed, "lr": lr, "status": "finished", "selected_on": "val", **kw}  # fmt: skip


def _config(head: str, seed: int, augmented: bool = False) -> str:
    return yaml.safe_dump({
        "seed": seed, "lr": 0.1, "data": {"name": "digits", "val_fraction": 0.1}, "backbone": {"name": "mlp"},
        "head": {"name": head, "width": None if head == "nopen" else 4}, "trainer": {"max_epochs": 2},
        "metrics": {"train_augmented": augmented},
    })  # fmt: skip


# ------------------------------------------------------------------------------------------------
# report.load: _read_yaml, _read_json, _num, load_runs, _two_valued_from_latents, read_history
# ------------------------------------------------------------------------------------------------


def test_a_config_yaml_that_is_no_yaml_leaves_the_job_a_finished_row_named_by_its_summary(tmp_path):
    _job(tmp_path / "a", config="seed: [1,\n  lr: {", summary=SUMMARY)
    runs, _ = load.load_runs(tmp_path)
    got = runs.loc[0, ["run_id", "status", "head", "data", "seed", "lr"]].tolist()
    assert got == ["a", "finished", "binenc", "digits", 0, 0.1]


def test_a_cut_off_failed_json_still_marks_the_job_failed_with_an_empty_record(tmp_path):
    _job(tmp_path / "a", config=_config("binenc", 0), failed_json='{"error": "RuntimeError: bo')
    runs, _ = load.load_runs(tmp_path)
    assert (runs.at[0, "status"], runs.at[0, "error"]) == ("failed", "{}")


def test_a_summary_value_that_is_text_stays_text_and_inf_and_null_read_as_numbers(tmp_path):
    _job(tmp_path / "a", summary={**SUMMARY, "nc1": "0.9x", "deepfool_fooled": "inf", "sigma_w": None})
    runs, _ = load.load_runs(tmp_path)
    assert runs.at[0, "nc1"] == "0.9x"
    assert runs.at[0, "deepfool_fooled"] == math.inf
    assert math.isnan(runs.at[0, "sigma_w"])
    assert select.dropped_values(select.select_runs(runs), ["nc1"]) == [
        ("a", "summary.json holds '0.9x' for nc1, not a finite number: left out of its cell's mean")
    ]


def test_a_sweep_folder_that_is_itself_a_job_names_the_run_by_the_folder(tmp_path):
    job = _job(tmp_path / "lr=0.1,seed=0", config=_config("binenc", 0), summary=SUMMARY)
    runs, _ = load.load_runs(job)
    assert runs["run_id"].tolist() == ["lr=0.1,seed=0"]


def test_an_old_summary_takes_its_two_valuedness_from_the_saved_latents_and_a_newer_one_keeps_its_own(tmp_path):
    z = np.random.default_rng(0).standard_normal((30, 3)).astype(np.float32) + np.array([2.0, -1.0, 0.0], np.float32)
    for name, summary in (("old", SUMMARY), ("new", {**SUMMARY, "two_valued": 0.25, "two_valued_min": 0.125})):
        _job(tmp_path / name, summary=summary)
        np.savez(tmp_path / name / "latents.npz", train_z=z)
    runs = load.load_runs(tmp_path)[0].set_index("run_id")
    want = two_valuedness_reference(z)
    assert runs.at["old", "two_valued"] == pytest.approx(want.mean(), abs=1e-5)
    assert runs.at["old", "two_valued_min"] == pytest.approx(want.min(), abs=1e-5)
    assert (runs.at["new", "two_valued"], runs.at["new", "two_valued_min"]) == (0.25, 0.125)


def test_latents_without_train_z_give_no_two_valuedness_and_the_job_still_loads(tmp_path):
    _job(tmp_path / "a", summary=SUMMARY)
    np.savez(tmp_path / "a" / "latents.npz", test_z=np.ones((4, 2), np.float32))
    runs, _ = load.load_runs(tmp_path)
    assert runs.at[0, "status"] == "finished"
    assert "two_valued" not in runs


@pytest.mark.parametrize("cut", ["half", "empty"])
def test_a_cut_off_or_empty_latents_file_gives_no_two_valuedness_and_the_sweep_still_loads(tmp_path, cut):
    """numpy raises BadZipFile for a cut-off archive and EOFError for an empty file, not OSError."""
    z = np.random.default_rng(1).standard_normal((40, 3)).astype(np.float32)
    for name in ("a", "b"):
        _job(tmp_path / name, summary=SUMMARY)
        np.savez(tmp_path / name / "latents.npz", train_z=z)
    data = (tmp_path / "a" / "latents.npz").read_bytes()
    (tmp_path / "a" / "latents.npz").write_bytes(data[: len(data) // 2] if cut == "half" else b"")
    runs = load.load_runs(tmp_path)[0].set_index("run_id")
    assert runs["status"].tolist() == ["finished", "finished"]
    assert math.isnan(runs.at["a", "two_valued"])
    assert runs.at["b", "two_valued"] == pytest.approx(two_valuedness_reference(z).mean(), abs=1e-5)


def test_an_empty_metrics_csv_is_no_history_and_no_note(tmp_path):
    _job(tmp_path / "a", summary=SUMMARY, metrics_csv="")
    runs, hist = load.load_runs(tmp_path)
    assert runs.at[0, "unreadable_rows"] == ""
    assert len(hist) == 0
    assert tables.value_notes(runs, select.select_runs(runs), []) == []


def test_a_metrics_row_without_an_epoch_is_left_out_and_named_by_its_line(tmp_path):
    rows, why = load.read_history(_job(tmp_path, metrics_csv="epoch,val/acc\n0,0.5\n,0.6\n1,0.7\n") / "metrics.csv")
    assert rows.to_dict("list") == {"epoch": [0, 1], "val/acc": [0.5, 0.7]}
    assert why == "line 3 holds values that are no numbers"


# ------------------------------------------------------------------------------------------------
# report.select: select_runs, aggregate, left_out
# ------------------------------------------------------------------------------------------------


def test_selecting_on_another_split_than_val_or_test_is_refused_and_so_is_a_sweep_without_the_accuracy():
    runs = pd.DataFrame([_row("binenc", 0, 0.1, val_acc=0.5, test_acc=0.4)]).drop(columns="selected_on")
    with pytest.raises(ValueError, match=r"^select by 'val' or 'test', not 'train'$"):
        select.select_runs(runs, by="train")
    with pytest.raises(ValueError, match=r"^no finished run has val_acc$"):
        select.select_runs(runs.assign(val_acc=[math.inf]))


def test_an_unfinished_job_without_a_reason_is_said_to_have_no_summary_json():
    runs = pd.DataFrame([_row("binenc", 0, 0.1, status="unfinished", error="")])
    assert select.left_out(runs) == [("binenc-0-0.1", "unfinished (no summary.json)")]


# ------------------------------------------------------------------------------------------------
# report.claims: interval, _label, pairs
# ------------------------------------------------------------------------------------------------


def test_the_interval_at_another_level_is_scipys_t_interval_at_that_level():
    v = [1.0, 2.0, 4.0, 7.0]
    low, high = stats.t.interval(0.9, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert claims.interval(v, level=0.9) == pytest.approx((3.5, low, high))


def test_a_row_label_names_the_width_only_of_heads_with_one_and_the_settings_only_when_there_are_some():
    assert claims._label(("nopen", -1, ""), True) == "NoPen"
    assert claims._label(("binenc", 8, ""), True) == "BinEnc (d=8)"
    assert claims._label(("binenc", 8, ""), False) == "BinEnc"
    assert claims._label(("linpen", 4, "protocol=reference"), False) == "LinPen [protocol=reference]"


def test_runs_whose_settings_read_back_empty_as_nan_pair_under_plain_labels():
    sel = pd.DataFrame([_row(h, s, 0.1, settings=math.nan, test_acc=0.5) for h in ("binenc", "nopen") for s in (0, 1)])
    sel.loc[sel["head"] == "nopen", "width"] = -1
    assert [(b, o, len(rb), len(ro)) for _, _, b, o, rb, ro in claims.pairs(sel)] == [("BinEnc", "NoPen", 2, 2)]


# ------------------------------------------------------------------------------------------------
# report.tables: to_markdown, _paper_markdown
# ------------------------------------------------------------------------------------------------


def test_a_table_row_of_swept_settings_names_them_in_brackets():
    sel = pd.DataFrame([_row("binenc", 0, 0.1, settings="head.gamma_max=10.0", test_acc=0.5)])
    md = tables.to_markdown(select.aggregate(sel, ["test_acc"]), ["test_acc"])
    assert "| BinEnc [head.gamma_max=10.0] | 50.00 (n=1) | validation | 0:0.1 |" in md.splitlines()


def test_the_papers_numbers_are_added_only_for_the_data_sets_the_paper_reports():
    table = select.aggregate(pd.DataFrame([_row("binenc", 0, 0.1, test_acc=0.5)]), ["test_acc"])
    md = tables.results_markdown("s", "1 run.", table, ["test_acc"], "val", 1, [])
    assert "the paper" not in md
    md = tables.results_markdown("s", "1 run.", table.assign(data="cifar10"), ["test_acc"], "val", 1, [])
    assert "### the paper (v3, 5 seeds, lr selected on test): cifar10\n" in md
    assert "| BinEnc | 93.79 ± 0.21 | 99.97 | 87.74 ± 0.62 | 0.1176 ± 0.0281 |" in md


# ------------------------------------------------------------------------------------------------
# report.figures: _pick_latents; report.publish: _cells
# ------------------------------------------------------------------------------------------------


def test_the_histograms_come_from_the_lowest_seed_that_saved_latents_not_the_lowest_seed(tmp_path):
    for seed in (0, 1, 2):
        (tmp_path / str(seed)).mkdir()
    for seed in (1, 2):
        np.savez(tmp_path / str(seed) / "latents.npz", train_z=np.zeros((2, 2)))
    sel = pd.DataFrame([_row("binenc", s, 0.1, path=str(tmp_path / str(s))) for s in (2, 0, 1)])
    assert figures._pick_latents(sel) == (tmp_path / "1" / "latents.npz", "train split, seed 1, lr 0.1, d=4")
    assert figures._pick_latents(sel.drop(columns="path")) is None


def test_w_and_b_cells_hold_none_for_missing_values():
    cells = publish._cells(pd.DataFrame({"a": [1.5, math.nan], "b": ["x", None]}))
    assert cells.to_dict("list") == {"a": [1.5, None], "b": ["x", None]}


# ------------------------------------------------------------------------------------------------
# report.cli: main, write_report
# ------------------------------------------------------------------------------------------------


def test_the_command_line_ends_a_missing_sweep_folder_with_one_report_line(tmp_path):
    with pytest.raises(SystemExit) as e:
        cli.main([str(tmp_path / "nope")])
    assert e.value.code == f"report: {tmp_path / 'nope'} does not exist"


def test_each_pairs_figures_say_whether_its_selected_runs_trained_on_augmented_images_and_test_selection_says_so(
    tmp_path, monkeypatch
):
    for head in ("binenc", "nopen"):
        for seed in (0, 1):
            summary = {**SUMMARY, "head": head, "seed": seed}
            _job(tmp_path / f"{head}{seed}", config=_config(head, seed, augmented=head == "binenc"), summary=summary)
    said = []
    monkeypatch.setattr(cli, "write_figures", lambda out, h, s, suffix, title, train: said.append(train) or ([], []))
    monkeypatch.setattr(cli, "plot_claims", lambda *a: "x: skipped")
    res = cli.write_report(tmp_path, tmp_path / "out", select="test", wandb_mode="off")
    assert said == ["train split, augmented in part"]
    assert (
        "Learning rate selected per (head, seed) on final TEST accuracy (the reference's choice); ties"
        in res["markdown"]
    )


# ------------------------------------------------------------------------------------------------
# data.base: setup, _loader, augment_generator
# ------------------------------------------------------------------------------------------------


def test_train_and_test_images_of_different_dtypes_are_refused():
    x = np.zeros((4, 1, 2, 2), np.uint8)
    y = np.array([0, 1, 0, 1])
    dm = _Given((x, y, x.astype(np.float32), y), val_fraction=0.0, device_resident=False)
    with pytest.raises(TypeError, match=r"got uint8 \(4, 1, 2, 2\) and float32 \(4, 1, 2, 2\)"):
        dm.setup()


def test_a_rank_of_a_world_larger_than_the_batch_gets_batches_of_one_not_of_zero(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "1")
    dm = DigitsDataModule(batch_size=2, device_resident=False)
    dm.setup()
    sampler = dm.train_dataloader().sampler
    assert (sampler.batch_size, sampler.rank, sampler.world) == (1, 1, 4)
    assert list(sampler) == []  # a training batch of one is skipped


def test_the_augmentation_generator_of_an_epoch_goes_on_drawing_from_batch_to_batch():
    dm = DigitsDataModule(seed=3, device_resident=False)
    g = dm.augment_generator(torch.device("cpu"))
    first = torch.rand(4, generator=g)
    assert dm.augment_generator(torch.device("cpu")) is g
    second = torch.rand(4, generator=g)
    ref = torch.Generator().manual_seed(int(np.random.SeedSequence([3, 0, 0]).generate_state(1)[0]))
    assert torch.equal(torch.cat([first, second]), torch.rand(8, generator=ref))


# ------------------------------------------------------------------------------------------------
# data.imagefolder: list_images, _read
# ------------------------------------------------------------------------------------------------


def test_image_listing_keeps_only_the_files_is_valid_file_accepts(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("keep1.png", "drop.png", "keep2.png"):
        (tmp_path / "a" / name).write_bytes(b"")
    got = list_images(str(tmp_path), {"a": 0}, is_valid_file=lambda p: Path(p).name.startswith("keep"))
    assert got == [(str(tmp_path / "a" / "keep1.png"), 0), (str(tmp_path / "a" / "keep2.png"), 0)]


def test_a_test_folder_with_other_classes_names_the_missing_and_the_extra_ones(tmp_path):
    write_images(tmp_path, "train", {"a": 2, "b": 2})
    write_images(tmp_path, "test", {"a": 1, "c": 1})
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, device_resident=False, val_fraction=0.0)
    with pytest.raises(DataError) as e:
        dm.setup()
    assert (
        f"{tmp_path / 'test'} has other class folders than {tmp_path / 'train'} (missing: b) (not in train: c):"
        in str(e.value)
    )


def test_images_left_out_as_unreadable_are_counted_in_the_warning(tmp_path):
    write_images(tmp_path, "train", {"a": 4, "b": 4})
    (tmp_path / "train" / "a" / "x.png").write_bytes(b"")
    dm = ImageFolderDataModule(
        root=str(tmp_path),
        image_size=8,
        device_resident=False,
        skip_unreadable=True,
        val_fraction=0.0,
        test_fraction=0.25,
    )
    with pytest.warns(UserWarning, match=r"^1 unreadable image\(s\) under .*train left out"):
        dm.setup()
    assert (len(dm.y["train"]), len(dm.y["test"])) == (6, 2)


# ------------------------------------------------------------------------------------------------
# callbacks.gamma: GammaScheduler
# ------------------------------------------------------------------------------------------------


def test_a_gamma0_equal_to_gamma_max_is_no_warning_and_one_above_it_is():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GammaScheduler(1.0, factor=2.0, gamma_max=1.0)
    with pytest.warns(UserWarning, match="gamma stays at 1.0 throughout"):
        GammaScheduler(1.5, gamma_max=1.0)


def test_a_gamma_beyond_float32s_range_is_infinite_in_the_module():
    module = SimpleNamespace(gamma=torch.tensor(0.0))
    GammaScheduler(1e30, factor=1e10).on_train_epoch_start(SimpleNamespace(current_epoch=1), module)
    assert module.gamma.item() == math.inf
    GammaScheduler(1e30, factor=1e5).on_train_epoch_start(SimpleNamespace(current_epoch=1), module)
    assert module.gamma.item() == pytest.approx(1e35, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# model.module: optimizer_zero_grad, on_train_batch_end
# ------------------------------------------------------------------------------------------------


def test_gradients_are_dropped_between_steps_but_zeroed_in_place_under_cuda_graphs():
    calls = []
    opt = SimpleNamespace(zero_grad=lambda set_to_none: calls.append(set_to_none))
    tiny_module().optimizer_zero_grad(0, 0, opt)
    tiny_module(cuda_graphs=True).optimizer_zero_grad(0, 0, opt)
    assert calls == [True, False]


def _batch_end(every: int, batch_idx: int, batches: int = 5) -> None:
    """`on_train_batch_end` of a module whose loss went non-finite at step 2, on batch `batch_idx` of `batches`."""
    m = tiny_module(check_finite_every=every)
    m._trainer = SimpleNamespace(num_training_batches=batches, current_epoch=0)
    m.bad_step.fill_(2)
    m.on_train_batch_end(None, None, batch_idx)


def test_a_non_finite_loss_is_read_on_every_nth_batch_and_the_last_and_never_with_checks_off():
    _batch_end(0, 2)  # check_finite_every=0: never read
    _batch_end(3, 1)  # batch 2 of 5: not a third one, not the last
    for batch_idx in (2, 4):  # the third batch, and the last
        with pytest.raises(NonFiniteLossError, match=r"^non-finite training loss at epoch 0, step 2 \(gamma=0\)"):
            _batch_end(3, batch_idx)
