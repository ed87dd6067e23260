"""What a W&B dashboard gets from a run and from a report, read back from the offline run files with
wandb's own protobuf classes (tests/wandb_record.py): no network, the records W&B would upload."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
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
    # and the per-dimension two-valuedness of the same latents, whose mean is the curve's last value
    two = json.loads((path.parent / "files" / r.history[2]["latents/train/two_valued/path"]).read_text())
    assert two["columns"] == ["dimension", "sign R²"] and [row[0] for row in two["data"]] == [0, 1, 2, 3]
    assert [row[1] for row in two["data"]] == pytest.approx(s["two_valued_dims"], abs=1e-6)
    assert r.history[2]["train/two_valued"] == pytest.approx(np.mean(s["two_valued_dims"]), abs=1e-6)
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
    # one process per host (W&B keeps its first host's settings), both at once (each imports wandb: ~5 s)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", check], env=env | {"WANDB_BASE_URL": url}, stdout=subprocess.PIPE, text=True
        )
        for url in ("https://wandb.example.org", "https://other.example.org")
    ]
    assert [p.communicate(timeout=120)[0].strip() for p in procs] == ["True", "False"]


# ------------------------------------------------------------------------------------------------
# W&B never blocks training: a host that does not answer, a folder W&B cannot write
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def silent_port():
    """A local port that accepts connections (the kernel completes the handshake) and never answers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


# a host without DNS fails faster than a silent port and takes the same way offline: slow, for the suite's time
@pytest.mark.parametrize("host", ["silent port", pytest.param("no DNS", marks=pytest.mark.slow)])
def test_credentials_without_a_reachable_host_train_offline_with_one_line_and_the_sync_command(
    tmp_path, silent_port, host
):
    """With credentials (`logger.mode=auto` goes online) but a W&B host that never answers, or one without
    DNS, the job goes offline after `logger.init_timeout` seconds, says so in one line, trains, and prints
    the command that uploads the run later (wandb alone retried for about 95 s, then failed the job)."""
    import time

    url = f"http://127.0.0.1:{silent_port}" if host == "silent port" else "http://wandb-host.invalid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # WANDB_SERVICE: this process's
    env |= {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": url, "WANDB_SILENT": "true", "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "binary_encoding.train", "logger=wandb", "logger.init_timeout=2", "output_dir=run"]
    cmd += ["trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0", "trainer.enable_progress_bar=false"]
    start = time.time()
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170)
    seconds = time.time() - start
    assert r.returncode == 0, r.stderr[-3000:]
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("W&B did not answer")]
    assert len(said) == 1 and said[0].endswith("this run is logged offline"), r.stderr[-3000:]
    sync = next(ln for ln in r.stdout.splitlines() if ln.startswith("W&B offline; upload with: wandb sync "))
    run_id = (tmp_path / "run" / files.WANDB_ID).read_text()
    assert sync.endswith(f"offline-run-*-{run_id}") and len(run_files(tmp_path / "run")) == 1
    assert read_run(run_files(tmp_path / "run")[0]).summary["final/test_acc"] == pytest.approx(
        json.loads((tmp_path / "run" / files.SUMMARY).read_text())["test_acc"]
    )
    assert seconds < 90, seconds  # the W&B part: 2 s of init timeout, not wandb's 95 s of retries


def test_a_wandb_folder_that_cannot_be_written_leaves_the_local_record_with_one_line(cfg_factory, tmp_path, capsys):
    """`<run>/wandb` that W&B cannot write into (here a file in its place): one line, then the run
    trains with its local record only (no traceback, no failed job)."""
    (tmp_path / "wandb").write_text("not a folder")
    s = train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0", logger="wandb"))
    err = capsys.readouterr().err
    said = [ln for ln in err.splitlines() if ln.startswith("W&B cannot write its folder")]
    assert len(said) == 1 and said[0].endswith("only the local record is kept"), err[-2000:]
    assert json.loads((tmp_path / files.SUMMARY).read_text())["test_acc"] == s["test_acc"]
    assert len(read_csv_rows(tmp_path / files.METRICS)) == 1 and (tmp_path / "wandb").is_file()


def read_csv_rows(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------
# W&B never stops a job: no API key for an online run, a read-only HOME, an error raised mid-run
# ------------------------------------------------------------------------------------------------


def w_and_b_lines(text: str) -> list[str]:
    """The lines the job says about W&B, without the sync command."""
    return [ln for ln in text.splitlines() if ln.startswith("W&B ") and not ln.startswith("W&B offline; upload")]


def cli_job(tmp_path, env: dict, *args: str):
    """One 2-epoch job through the command line in a fresh process with `env` (W&B's own variables of
    this process left out), writing into tmp_path/run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"WANDB_SILENT": "true"} | env
    cmd = [sys.executable, "-m", "binary_encoding.train", "logger=wandb", "output_dir=run", "trainer.max_epochs=2"]
    cmd += ["deepfool_samples=0", "trainer.enable_progress_bar=false", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def assert_offline_run_holds_the_job(out, stdout: str, epochs: int) -> None:
    """The sync command is printed, and the offline run file holds every epoch and the final values."""
    run_id = (out / files.WANDB_ID).read_text()
    sync = [ln for ln in stdout.splitlines() if ln.startswith("W&B offline; upload with: wandb sync ")]
    assert len(sync) == 1 and sync[0].endswith(f"offline-run-*-{run_id}"), stdout[-2000:]
    (path,) = run_files(out)
    r = read_run(path)
    assert [h["_step"] for h in r.history] == list(range(epochs))
    assert r.summary["final/test_acc"] == pytest.approx(json.loads((out / files.SUMMARY).read_text())["test_acc"])


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder in which nothing can be made, even by root: a read-only tmpfs where this process may mount
    one (then unmounted), else a path below a regular file (every mkdir fails with ENOTDIR)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    mount_ro = ["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(mount)]
    mounted = os.geteuid() == 0 and subprocess.run(mount_ro, capture_output=True).returncode == 0
    if not mounted:
        (tmp_path / "file").write_text("a file, not a folder")
        mount = tmp_path / "file" / "ro"
    with pytest.raises(OSError):
        (mount / "probe").mkdir()
    yield mount
    if mounted:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_read_only_home_and_w_and_b_folders_keep_the_staging_files_in_the_job_and_the_job_finishes(
    tmp_path, read_only_dir
):
    """HOME, the XDG folders and every W&B folder variable where nothing can be written: W&B's staging
    and cache files go into the job's wandb/ folder (one line), and the offline run holds the whole job
    (wandb alone failed the job at the first table: "Unable to write staging files")."""
    ro = str(read_only_dir)
    env = {"HOME": ro, "WANDB_MODE": "offline", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    env |= {v: f"{ro}/{v.lower()}" for v in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "WANDB_CONFIG_DIR")}
    env |= {v: f"{ro}/{v.lower()}" for v in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR")}
    r = cli_job(tmp_path, env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "run"
    said = w_and_b_lines(r.stdout + r.stderr)
    assert said == [
        f"W&B cannot write {ro}/wandb_data_dir and {ro}/wandb_cache_dir ({os.strerror(errno_of(read_only_dir))}); "
        f"its staging and cache files go to {out}/wandb"
    ], r.stderr[-3000:]
    assert list((out / "wandb" / "user_data").rglob("*")), "no staging file was written in the job folder"
    assert_offline_run_holds_the_job(out, r.stdout, 2)


def test_w_and_b_folders_that_cannot_be_written_anywhere_leave_the_local_record_with_one_line(tmp_path, read_only_dir):
    """Read-only W&B folders and a job whose `wandb` is a file: nothing of W&B can be written anywhere, so
    W&B is off from the start (one line), the job finishes with its local record, and no offline run is tried."""
    ro = str(read_only_dir)
    env = {"HOME": ro, "WANDB_MODE": "offline", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    env |= {v: f"{ro}/{v.lower()}" for v in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")}
    out = (tmp_path / "run").resolve()
    out.mkdir()
    (out / "wandb").write_text("not a folder")
    r = cli_job(tmp_path, env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert w_and_b_lines(r.stdout + r.stderr) == [
        f"W&B cannot write {ro}/wandb_data_dir and {ro}/wandb_cache_dir nor {out}/wandb/user_data "
        f"({os.strerror(errno.ENOTDIR)}); only the local record is kept"
    ], (r.stdout + r.stderr)[-3000:]
    assert len(read_csv_rows(out / files.METRICS)) == 2 and (out / "wandb").is_file()
    assert "W&B offline; upload" not in r.stdout


def errno_of(folder) -> int:
    try:
        (folder / "x").mkdir()
    except OSError as err:
        return err.errno
    raise AssertionError(f"{folder} is writable")


@pytest.mark.parametrize("asked", ["WANDB_MODE=online", pytest.param("logger.mode=online", marks=pytest.mark.slow)])
def test_online_without_an_api_key_trains_offline_with_one_line_and_the_sync_command(tmp_path, asked):
    """Online asked for with no key anywhere (a fresh HOME, no WANDB_API_KEY) and a closed local port as
    the host: one line, the run is offline and whole (wandb alone failed every job at start: "No API key
    configured")."""
    env = {"HOME": str(tmp_path), "WANDB_BASE_URL": "http://127.0.0.1:9"}  # port 9 (discard): nothing listens
    env |= {"WANDB_MODE": "online"} if asked.startswith("WANDB_MODE") else {}
    r = cli_job(tmp_path, env, "logger.init_timeout=2", *([asked] if asked.startswith("logger") else []))
    assert r.returncode == 0, r.stderr[-3000:]
    assert w_and_b_lines(r.stdout + r.stderr) == [
        "W&B has no API key for http://127.0.0.1:9 (wandb login, or WANDB_API_KEY); this run is logged offline"
    ]
    assert_offline_run_holds_the_job(tmp_path / "run", r.stdout, 2)


class WandbFault(Callback):
    """Makes the job's W&B run fail at the start of epoch 1: its `log` raises, its staging folder
    cannot be written (as under a read-only HOME), or its `finish` raises once."""

    def __init__(self, where: str, monkeypatch, blocked):
        self.where, self.monkeypatch, self.blocked = where, monkeypatch, blocked

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch != 1:
            return
        run = trainer.loggers[0].experiment
        if self.where == "log":
            run.log = failing("the W&B service is gone")
        elif self.where == "staging":
            self.monkeypatch.setenv("WANDB_DATA_DIR", str(self.blocked))
        elif self.where == "finish":

            def finish_fails_once(*args, **kwargs):
                del run.finish  # the cleanup after the failure closes the run for real
                raise RuntimeError("the W&B service is gone")

            run.finish = finish_fails_once


def failing(message):
    def fail(*args, **kwargs):
        raise RuntimeError(message)

    return fail


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("log", "while logging epoch 1 (RuntimeError: the W&B service is gone)"),
        ("staging", "while logging epoch 1 (PermissionError: Unable to write staging files to "),
        pytest.param("summary", "while writing the summary (RuntimeError: ", marks=pytest.mark.slow),
        pytest.param("finish", "while closing the run (RuntimeError: ", marks=pytest.mark.slow),
    ],
)
def test_an_error_raised_by_w_and_b_mid_run_turns_it_off_with_one_line_and_the_job_finishes(
    cfg_factory, tmp_path, read_only_dir, monkeypatch, capsys, where, said
):
    import wandb

    if where == "summary":
        monkeypatch.setattr(wandb.sdk.wandb_summary.Summary, "update", failing("the W&B service is gone"))
    cfg = cfg_factory("trainer.max_epochs=2", "deepfool_samples=0", logger="wandb")
    s = train(cfg, callbacks=[WandbFault(where, monkeypatch, read_only_dir)])
    out = capsys.readouterr()
    assert json.loads((tmp_path / files.SUMMARY).read_text())["test_acc"] == s["test_acc"]
    assert len(read_csv_rows(tmp_path / files.METRICS)) == 2
    (line,) = w_and_b_lines(out.err + out.out)
    assert line.startswith(f"W&B failed {said}") and line.endswith("; it is off for the rest of this job"), line
    # the offline run written until the failure is closed and can be uploaded: the command is printed
    run_id = (tmp_path / files.WANDB_ID).read_text()
    assert f"upload with: {wandb_run.offline_sync_command(tmp_path, run_id)}" in out.out
    (path,) = run_files(tmp_path)
    r = read_run(path)
    steps = [h["_step"] for h in r.history]
    assert steps == ([0] if where == "log" else [0, 1]), steps  # staging: epoch 1's numbers came before its media
    assert "latents/train/scatter/_type" in r.history[0]
    if where != "log":
        assert ("latents/train/scatter/_type" in r.history[1]) == (where != "staging")
    assert ("final/test_acc" in r.summary) == (where == "finish")


def test_each_job_of_a_sweep_in_one_process_gets_its_own_folder_for_the_staging_files(
    tmp_path, read_only_dir, monkeypatch
):
    """The W&B data folder cannot be written, the cache folder can: only the data folder moves, into
    each job's own wandb/ folder in turn (the user's setting is probed again for every job: job b would
    say nothing if it probed job a's folder)."""
    monkeypatch.setattr(wandb_run, "_USER_ENV", {})
    monkeypatch.setenv("WANDB_DATA_DIR", str(read_only_dir / "data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    for job in ("a", "b"):
        said = wandb_run.user_dirs_into(tmp_path / job)
        assert said.startswith(f"W&B cannot write {read_only_dir / 'data'} (")
        assert said.endswith(f"its staging and cache files go to {tmp_path / job}/wandb")
        assert os.environ["WANDB_DATA_DIR"] == str(tmp_path / job / "wandb" / "user_data")
        assert os.environ["WANDB_CACHE_DIR"] == str(tmp_path / "cache")
