"""What a W&B dashboard gets from a run and from a report, read back from the offline run files with
wandb's own protobuf classes (tests/wandb_record.py): no network, the records W&B would upload."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from wandb_record import read_run, run_files

from binary_encoding import __version__
from binary_encoding.metrics.geometry import class_codes
from binary_encoding.record import files, wandb_run
from binary_encoding.report import write_report
from binary_encoding.train import train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_run_logs_one_row_per_epoch_with_epoch_axis_best_summaries_pictures_and_final_values_in_summary(
    cfg_factory, tmp_path
):
    s = train(
        cfg_factory(
            "trainer.max_epochs=3", "metrics.hist_every=2", "deepfool_samples=20", "save_latents=true", logger="wandb"
        )
    )
    (path,) = run_files(tmp_path)
    r = read_run(path)

    # the epoch is the x-axis of every curve; the best value is the summary of the curves readers compare
    assert r.glob("*").step_metric == "epoch"
    assert r.metric("epoch").options.defined
    for key in ("val/acc", "train/acc", "train/agreement_code", "train/top_codes_fraction"):
        assert r.metric(key).summary.max and r.metric(key).step_metric == "epoch", key
    for key in ("val/ce", "train/nc1", "train/sigma_w"):
        assert r.metric(key).summary.min, key
    # every curve of the best-value list, on every split that logs it, has its best value as summary
    logged = {k for h in r.history for k in h}
    by_name: dict[str, list] = {}
    for key, summary in best_value_curves():
        by_name.setdefault(key.split("/", 1)[1], []).append((key, summary))
    for name, curves in by_name.items():
        assert [k for k, _ in curves if k in logged], f"{name} has a best-value summary but is logged on no split"
        for key, summary in (c for c in curves if c[0] in logged):
            m = r.metric(key).summary
            assert (m.max, m.min) == (summary == "max", summary == "min") and not m.last, key
            assert r.metric(key).step_metric == "epoch", key
    # one history row per epoch, the epoch as its step; end-of-training values only in the summary
    assert [(h["_step"], h["epoch"]) for h in r.history] == [(0, 0), (1, 1), (2, 2)]
    assert not [k for h in r.history for k in h if k.startswith("final/")]
    assert all("val/acc" in h and "train/nc1" in h for h in r.history)
    assert r.summary["final/test_acc"] == pytest.approx(s["test_acc"])
    assert r.summary["final/mahalanobis_auroc"] == pytest.approx(s["mahalanobis_auroc"])
    # pictures every hist_every epochs and at the last: histograms, the 2-D scatter, the class-code table
    pictures = [h.get("latents/train/scatter/_type") for h in r.history]
    assert pictures == ["image-file", None, "image-file"]
    assert (
        r.history[2]["latents/val/codes/_type"] == "table-file" and r.history[0]["hist/train/z3/_type"] == "histogram"
    )
    # the last table is the class -> modal code map of the final training latents
    table = json.loads((path.parent / "files" / r.history[2]["latents/train/codes/path"]).read_text())
    lat = np.load(tmp_path / files.LATENTS)
    want = class_codes(torch.from_numpy(lat["train_z"]), torch.from_numpy(lat["train_y"]))
    assert table["columns"] == ["class", "code", "share", "samples"]
    assert [(c, code, n) for c, code, _, n in table["data"]] == [(w["class"], w["code"], w["samples"]) for w in want]
    assert [row[2] for row in table["data"]] == pytest.approx([w["share"] for w in want], abs=1e-4)
    # a group per setting without the seed, the run's role, searchable tags, what made the run
    assert r.run.run_group == "digits_mlp/head=binenc" and r.run.job_type == "train"
    assert {"digits", "mlp", "binenc", "digits_mlp"} <= set(r.run.tags)
    assert r.config["code"]["version"] == __version__ and r.config["num_params"] > 0
    assert r.config["lr"] == 1e-3 and r.config["head"]["name"] == "binenc"


def best_value_curves() -> list[tuple[str, str]]:
    """(curve, "max"/"min") of every curve whose W&B summary is its best value: the metric catalog's
    definitions where the package has one, else the logger's list of names (on both splits)."""
    try:
        from binary_encoding.metrics import catalog
    except ImportError:
        return [(f"{s}/{n}", how) for how, names in wandb_run.BEST.items() for n in names for s in ("train", "val")]
    return catalog.summary_definitions()


@pytest.fixture(scope="module")
def resumed_cli_run(tmp_path_factory):
    """One job through the command line (Hydra), cut after 2 epochs and resumed to 3 (summary.json removed,
    so the job is not skipped but resumed from its checkpoint): two offline parts of one W&B run."""
    out = tmp_path_factory.mktemp("wandb_cli")
    args = ["head=linpen", "seed=1", "deepfool_samples=10", "trainer.enable_progress_bar=false", f"output_dir={out}"]
    cmd = [sys.executable, "-m", "binary_encoding.train", *args]
    env = {**os.environ, "WANDB_MODE": "offline"}
    first = subprocess.run([*cmd, "trainer.max_epochs=2"], capture_output=True, text=True, timeout=180, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    (out / files.SUMMARY).unlink()
    second = subprocess.run([*cmd, "trainer.max_epochs=3"], capture_output=True, text=True, timeout=180, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    return out, second.stdout


def test_a_resumed_offline_run_prints_the_one_sync_command_that_uploads_every_part_in_order(resumed_cli_run):
    out, stdout = resumed_cli_run
    run_id = (out / files.WANDB_ID).read_text().strip()
    command = wandb_run.offline_sync_command(out, run_id)
    assert f"upload with: {command}" in stdout
    parts = run_files(out)
    assert len(parts) == 2 and all(p.name == f"run-{run_id}.wandb" for p in parts)
    # the shell expands the printed glob to both parts, oldest first: the order `wandb sync` needs
    expanded = subprocess.run(["bash", "-c", f"echo {command.split(' ', 2)[2]}"], capture_output=True, text=True)
    assert expanded.stdout.split() == [str(p.parent) for p in parts]
    # the resumed part extends the history: its rows continue at the epoch the checkpoint ended
    first, second = (read_run(p) for p in parts)
    assert [h["_step"] for h in first.history] == [0, 1] and [h["_step"] for h in second.history] == [2]
    assert second.run.resume and second.summary["final/epochs"] == 3


def test_a_cli_run_records_its_config_group_choices_and_a_group_without_seed_or_bookkeeping_keys(resumed_cli_run):
    out, _ = resumed_cli_run
    r = read_run(run_files(out)[-1])
    assert r.run.run_group == "digits_mlp/head=linpen,trainer.max_epochs=3"  # not seed, output_dir, deepfool_samples
    assert r.config["choices"]["head"] == "linpen" and r.config["choices"]["data"] == "digits"
    assert "experiment" in r.config["choices"] and "hydra/launcher" not in r.config["choices"]
    assert set(r.run.tags) >= {"digits", "mlp", "linpen"}


def test_report_publishes_a_report_run_with_the_results_table_and_figures(resumed_cli_run, tmp_path):
    out, _ = resumed_cli_run
    res = write_report(out, tmp_path / "report", wandb_mode="offline")
    assert "upload with: wandb sync" in res["wandb"]
    (path,) = run_files(tmp_path / "report")
    r = read_run(path)
    assert r.run.job_type == "report" and r.run.run_group == "digits_mlp" and "report" in r.run.tags
    assert r.run.project == "binary_encoding"
    (row,) = r.history
    assert row["results/_type"] == "table-file" and row["selected_runs/_type"] == "table-file"
    figures = {k.split("/")[1] for k in row if k.startswith("figures/") and k.endswith("/_type")}
    assert figures == {f.stem for f in res["files"] if f.suffix == ".png"} and len(figures) >= 3
    table = json.loads((path.parent / "files" / row["results/path"]).read_text())
    assert "head" in table["columns"] and [r_[table["columns"].index("head")] for r_ in table["data"]] == ["linpen"]


def test_login_is_looked_up_by_wandb_for_its_host_so_self_hosted_servers_count(tmp_path):
    """A .netrc entry for the host W&B talks to (WANDB_BASE_URL) is a login; an entry for another host is
    not. Checked in a fresh process with its own HOME, without contacting a server."""
    (tmp_path / ".netrc").write_text(f"machine wandb.example.org\n  login user\n  password {'a' * 40}\n")
    (tmp_path / ".netrc").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "NETRC": str(tmp_path / ".netrc"), "WANDB_SILENT": "true"}
    check = "from binary_encoding.record.wandb_run import wandb_logged_in as f; print(f())"
    found = [
        subprocess.run(
            [sys.executable, "-c", check], env=env | {"WANDB_BASE_URL": url}, capture_output=True, text=True
        ).stdout.strip()
        for url in ("https://wandb.example.org", "https://other.example.org")
    ]
    assert found == ["True", "False"]
