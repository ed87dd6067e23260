"""A fourth list of plausible one-line bugs, for `python -m benchmarks.mutation.run --list fourth`
(docs/testing.md, "Mutation audit"): 48 mutants, 8 per category, chosen from the package source and its
configs alone (binary_encoding/, conf/) with the tests unopened. None repeats a mutant of `mutants.py`,
`mutants_fresh.py` or `mutants_third.py` (same line, same change). Same format: `original` must occur
exactly once in `file`, and is replaced by `replacement`. `tests` is left empty: the runner picks the
tests that execute the mutated line.
"""

MUTANTS = [
    # --- metric math ---
    # NC2's equinorm divides the sample std (ddof 1) of the class-mean norms instead of the population std
    dict(
        id="equinorm-sample-std",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="equinorm = (norms.std(unbiased=False) / norms.mean()).item() if norms.mean() > 0 else 0.0",
        replacement="equinorm = (norms.std() / norms.mean()).item() if norms.mean() > 0 else 0.0",
        tests=[],
    ),
    # NC3 compares the classifier rows with the raw class means, not the means centred on mu_G
    dict(
        id="nc3-uncentred-means",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="m, v = centred[present].T, w[present].T",
        replacement="m, v = means[present].T, w[present].T",
        tests=[],
    ),
    # top_codes_fraction counts the k most common codes with k = classes present in the labels, ignoring num_classes
    dict(
        id="top-codes-ignores-num-classes",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="k = n_cls if num_classes is None else num_classes",
        replacement="k = n_cls",
        tests=[],
    ),
    # a class with exactly min_count correct training samples gets no Gaussian (skipped)
    dict(
        id="gaussian-min-count-strict",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="valid = counts >= min_count",
        replacement="valid = counts > min_count",
        tests=[],
    ),
    # the AURC ranks the least confident samples first (uncertainty sorted descending)
    dict(
        id="aurc-sorted-least-confident-first",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="sorted_s, order = torch.sort(s, stable=True)",
        replacement="sorted_s, order = torch.sort(s, descending=True, stable=True)",
        tests=[],
    ),
    # DeepFool tests and differentiates at x + r_tot, the overshoot applied only to the returned perturbation
    dict(
        id="deepfool-iterate-without-overshoot",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="xa = (x[active] + (1 + overshoot) * r_tot[active]).requires_grad_(True)",
        replacement="xa = (x[active] + r_tot[active]).requires_grad_(True)",
        tests=[],
    ),
    # the two-valuedness residuals take each sample to the other sign group's mean
    dict(
        id="two-valued-means-swapped",
        category="metric math",
        file="binary_encoding/metrics/two_valued.py",
        original="within = (x - torch.where(pos, mean_pos, mean_neg)).square().sum(0)",
        replacement="within = (x - torch.where(pos, mean_neg, mean_pos)).square().sum(0)",
        tests=[],
    ),
    # msp_aurc in the summary is the Mahalanobis score's AURC (copy-paste)
    dict(
        id="msp-aurc-is-mahalanobis",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"msp_aurc": msp["aurc"],',
        replacement='"msp_aurc": maha["aurc"],',
        tests=[],
    ),
    # --- config/CLI ---
    # trainer.devices=0 passes the settings check (Lightning fails later with its own traceback)
    dict(
        id="devices-zero-accepted",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="or (isinstance(value, int) and value >= 1)) or isinstance(value, bool)",
        replacement="or (isinstance(value, int) and value >= 0)) or isinstance(value, bool)",
        tests=[],
    ),
    # channels_last=auto looks for oneDNN-unsafe strided convolutions on GPUs and never on CPUs
    dict(
        id="nhwc-unsafe-check-on-gpu-only",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="unsafe = [] if on_gpu(cfg) else cpu_nhwc_unsafe(backbone)",
        replacement="unsafe = cpu_nhwc_unsafe(backbone) if on_gpu(cfg) else []",
        tests=[],
    ),
    # runtime.check_finite_every is ignored: the module reads the NaN flag every step
    dict(
        id="check-finite-every-ignored",
        category="config/CLI",
        file="binary_encoding/run/build.py",
        original="check_finite_every=policy.check_finite_every(cfg),",
        replacement="check_finite_every=1,",
        tests=[],
    ),
    # runtime.threads=0 is taken as a thread count instead of being refused
    dict(
        id="threads-zero-accepted",
        category="config/CLI",
        file="binary_encoding/run/threads.py",
        original="if int(setting) < 1:",
        replacement="if int(setting) < 0:",
        tests=[],
    ),
    # a command line refused before Hydra (moved key, unknown choice, unwritable folder) exits 1, not 2
    dict(
        id="cli-refusal-exit-code-1",
        category="config/CLI",
        file="binary_encoding/train.py",
        original="raise SystemExit(2)\n    _hydra_main()",
        replacement="raise SystemExit(1)\n    _hydra_main()",
        tests=[],
    ),
    # evaluate merges the run's config under today's defaults: the defaults win over the run's settings
    dict(
        id="evaluate-defaults-override-run-config",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="return OmegaConf.merge(defaults, cfg)",
        replacement="return OmegaConf.merge(cfg, defaults)",
        tests=[],
    ),
    # protocol=reference groups NC1 by the true labels instead of the predictions
    dict(
        id="reference-protocol-nc-labels",
        category="config/CLI",
        file="conf/protocol/reference.yaml",
        original="nc_labels: pred",
        replacement="nc_labels: labels",
        tests=[],
    ),
    # the epoch line counts epochs from 0 (`epoch 0/150` for the first)
    dict(
        id="epoch-line-from-zero",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original='parts = [f"epoch {int(self.epoch) + 1}/{self.max_epochs}"]',
        replacement='parts = [f"epoch {int(self.epoch)}/{self.max_epochs}"]',
        tests=[],
    ),
    # --- report ---
    # rows and runs are ordered by head name before the paper's head order
    dict(
        id="order-head-name-before-rank",
        category="report",
        file="binary_encoding/report/select.py",
        original='cols = [c for c in ("data", "backbone", "head_rank", "head", "width", "seed", "lr")',
        replacement='cols = [c for c in ("data", "backbone", "head", "head_rank", "width", "seed", "lr")',
        tests=[],
    ),
    # a cell of one seed shows `mean ± nan` (only a missing std drops the ±)
    dict(
        id="cell-nan-std-shown",
        category="report",
        file="binary_encoding/report/tables.py",
        original='text = f"{mean:{fmt}}" if std is None or math.isnan(std) else f"{mean:{fmt}} ± {std:{fmt}}"',
        replacement='text = f"{mean:{fmt}}" if std is None else f"{mean:{fmt}} ± {std:{fmt}}"',
        tests=[],
    ),
    # the tie-break column final_val_ce is read from the training CE
    dict(
        id="final-val-ce-from-train",
        category="report",
        file="binary_encoding/report/load.py",
        original='for col, src in (("final_val_ce", "val/ce"), ("logged_epochs", "epoch")):',
        replacement='for col, src in (("final_val_ce", "train/ce"), ("logged_epochs", "epoch")):',
        tests=[],
    ),
    # a factor of a lower-is-better claim (NC1) is worded as if higher were claimed
    dict(
        id="claim-factor-words-ignore-direction",
        category="report",
        file="binary_encoding/report/claims.py",
        original='words = ("higher", "lower") if c.higher else ("lower", "higher")',
        replacement='words = ("higher", "lower")',
        tests=[],
    ),
    # the figures' bands are the population std (ddof 0) over seeds, not the sample std
    dict(
        id="figure-band-population-std",
        category="report",
        file="binary_encoding/report/figures.py",
        original="mean, std, n = g.mean(), g.std(ddof=1), g.count()",
        replacement="mean, std, n = g.mean(), g.std(ddof=0), g.count()",
        tests=[],
    ),
    # figures get the `_<data>_<backbone>` suffix even when the sweep has a single pair
    dict(
        id="figure-suffix-single-pair",
        category="report",
        file="binary_encoding/report/cli.py",
        original='suffix = f"_{data}_{backbone}" if len(pairs) > 1 else ""',
        replacement='suffix = f"_{data}_{backbone}" if len(pairs) >= 1 else ""',
        tests=[],
    ),
    # `wandb:project` (no entity) is read as entity=project with an empty project
    dict(
        id="wandb-target-partition",
        category="report",
        file="binary_encoding/report/publish.py",
        original='entity, _, project = str(path)[len("wandb:") :].rpartition("/")',
        replacement='entity, _, project = str(path)[len("wandb:") :].partition("/")',
        tests=[],
    ),
    # LinPen is drawn with NoPen's marker (two heads no longer apart in grey print)
    dict(
        id="linpen-marker-duplicate",
        category="report",
        file="binary_encoding/report/style.py",
        original='"linpen": {"color": OKABE_ITO["bluish green"], "linestyle": "-.", "marker": "^"},',
        replacement='"linpen": {"color": OKABE_ITO["bluish green"], "linestyle": "-.", "marker": "s"},',
        tests=[],
    ),
    # --- records and resume ---
    # metrics.csv is reloaded from disk at every logging call: an epoch's earlier values (validation) are lost
    dict(
        id="csv-log-reload-every-call",
        category="records and resume",
        file="binary_encoding/record/csv_log.py",
        original="self._resumed = True",
        replacement="self._resumed = False",
        tests=[],
    ),
    # a fit that fails also commits the held-back checkpoint of an epoch whose row is not recorded
    dict(
        id="commit-checkpoint-on-failure",
        category="records and resume",
        file="binary_encoding/record/checkpoint_io.py",
        original='if status == "success":',
        replacement='if status in ("success", "failed"):',
        tests=[],
    ),
    # metrics_every is taken to define the run: a resume with another value is refused, and it splits report rows
    dict(
        id="metrics-every-defines-run",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original='"trainer.sync_batchnorm", "metrics_every", "metrics.hist",',
        replacement='"trainer.sync_batchnorm", "metrics.hist",',
        tests=[],
    ),
    # a setting present in only one of the two configs (added or removed) is not seen as a difference
    dict(
        id="settings-diff-common-keys-only",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="keys = sorted(old.keys() | new.keys())",
        replacement="keys = sorted(old.keys() & new.keys())",
        tests=[],
    ),
    # outside SLURM (no job id either side) every lock is an earlier attempt of this job: a live holder is taken over
    dict(
        id="lock-slurm-none-matches-none",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original='if h.get("slurm_job") and h["slurm_job"] == _slurm_job():',
        replacement='if h.get("slurm_job") == _slurm_job():',
        tests=[],
    ),
    # the resumed checkpoint is taken to hold one epoch fewer: the last committed epoch's lost log line is not restored
    dict(
        id="checkpoint-epochs-off-by-one",
        category="records and resume",
        file="binary_encoding/run/fit.py",
        original='return int(torch.load(path, map_location="cpu", mmap=True, weights_only=False)["epoch"]) + 1',
        replacement='return int(torch.load(path, map_location="cpu", mmap=True, weights_only=False)["epoch"])',
        tests=[],
    ),
    # the recap marks the job after a refused one as refused (job numbers from 0 read as from 1)
    dict(
        id="recap-refused-off-by-one",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original='status, s = ("refused", {}) if i - 1 in refused else job_status(folder, finished_before)',
        replacement='status, s = ("refused", {}) if i in refused else job_status(folder, finished_before)',
        tests=[],
    ),
    # the watchdog sends SIGTERM again after the grace instead of SIGKILL: a job stuck in a native call is never stopped
    dict(
        id="watchdog-sigterm-not-sigkill",
        category="records and resume",
        file="binary_encoding/run/watchdog.py",
        original="os.kill(pid, signal.SIGKILL)",
        replacement="os.kill(pid, signal.SIGTERM)",
        tests=[],
    ),
    # --- training semantics ---
    # the epoch's last batch is never recognised: a NaN in its last steps (check_finite_every > 1) passes its end
    dict(
        id="finite-check-misses-last-batch",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="last = batch_idx + 1 == self.trainer.num_training_batches",
        replacement="last = batch_idx == self.trainer.num_training_batches",
        tests=[],
    ),
    # the linear latent layer of binenc/linpen has no bias (z = W h instead of W h + b)
    dict(
        id="latent-layer-without-bias",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original="self.penultimate = nn.Linear(in_features, _check_width(width))",
        replacement="self.penultimate = nn.Linear(in_features, _check_width(width), bias=False)",
        tests=[],
    ),
    # the ResNets' projection shortcut has no BatchNorm after its 1x1 convolution
    dict(
        id="shortcut-without-batchnorm",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))",
        replacement="return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))",
        tests=[],
    ),
    # the ResNet features are max-pooled instead of average-pooled
    dict(
        id="resnet-max-pool",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())",
        replacement="self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())",
        tests=[],
    ),
    # the 1-D ResNet's stem convolution halves the signal length (stride 2 instead of 1)
    dict(
        id="resnet1d-stem-stride-2",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="nn.Conv1d(cin, width, kernel, 1, kernel // 2, bias=True), nn.BatchNorm1d(width), self.act()",
        replacement="nn.Conv1d(cin, width, kernel, 2, kernel // 2, bias=True), nn.BatchNorm1d(width), self.act()",
        tests=[],
    ),
    # gamma above fp16's maximum (65,504) becomes inf in the module, though the loss is computed in fp32
    dict(
        id="gamma-inf-above-fp16-max",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="self.current if self.current <= torch.finfo(torch.float32).max else math.inf",
        replacement="self.current if self.current <= torch.finfo(torch.float16).max else math.inf",
        tests=[],
    ),
    # the metric passes forward raw (unnormalized) inputs, unlike training
    dict(
        id="latents-without-normalization",
        category="training semantics",
        file="binary_encoding/callbacks/latents.py",
        original="x = datamodule.normalize(x.to(module.device, non_blocking=True))",
        replacement="x = x.to(module.device, non_blocking=True).float()",
        tests=[],
    ),
    # the epoch's augmented training accuracy is logged as train/ce and the cross-entropy as train/acc_aug
    dict(
        id="train-ce-acc-swapped",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original='{"train/ce": ce, "train/quad": quad, "train/acc_aug": correct,',
        replacement='{"train/ce": correct, "train/quad": quad, "train/acc_aug": ce,',
        tests=[],
    ),
    # --- data pipeline ---
    # CIFAR's flat rows are reshaped as HWC (32, 32, 3) instead of CHW (3, 32, 32)
    dict(
        id="cifar-rows-as-hwc",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original='xs.append(np.asarray(d["data"], np.uint8).reshape(-1, 3, 32, 32))',
        replacement='xs.append(np.asarray(d["data"], np.uint8).reshape(-1, 32, 32, 3))',
        tests=[],
    ),
    # digits holds out val_fraction (10%) as its test split instead of test_fraction
    dict(
        id="digits-test-split-uses-val-fraction",
        category="data pipeline",
        file="binary_encoding/data/digits.py",
        original='tr, te = stratified_split(y, self.test_fraction, self.split_seed, "test", "test_fraction")',
        replacement='tr, te = stratified_split(y, self.val_fraction, self.split_seed, "test", "test_fraction")',
        tests=[],
    ),
    # data.flip=false is ignored by the training augmentation (images are still flipped)
    dict(
        id="augment-flip-ignored",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original="return apply_augmentation(x, pad, *draw_augmentation(len(x), pad, flip, x.device, generator))",
        replacement="return apply_augmentation(x, pad, *draw_augmentation(len(x), pad, True, x.device, generator))",
        tests=[],
    ),
    # MNIST-1D signals are stored as [N, 1, 40, 1] (40 channels of length 1) instead of [N, 1, 1, 40]
    dict(
        id="mnist1d-wrong-axis",
        category="data pipeline",
        file="binary_encoding/data/mnist1d.py",
        original="as_image = lambda x: np.ascontiguousarray(x, dtype=np.float32)[:, None, None, :]  # noqa: E731",
        replacement="as_image = lambda x: np.ascontiguousarray(x, dtype=np.float32)[:, None, :, None]  # noqa: E731",
        tests=[],
    ),
    # image folders are read in grayscale when channels=3 and in RGB when channels=1
    dict(
        id="imagefolder-mode-inverted",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original='mode = "L" if self.channels == 1 else "RGB"',
        replacement='mode = "L" if self.channels == 3 else "RGB"',
        tests=[],
    ),
    # the hold-out size check rounds down where sklearn rounds up: splits sklearn makes are refused
    dict(
        id="split-held-rounded-down",
        category="data pipeline",
        file="binary_encoding/data/split.py",
        original="held = math.ceil(fraction * n)  # sklearn's rounding of test_size",
        replacement="held = math.floor(fraction * n)  # sklearn's rounding of test_size",
        tests=[],
    ),
    # the sampler's `train` follows `shuffle`: with data.shuffle=false training keeps 1-sample batches
    dict(
        id="sampler-train-follows-shuffle",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="self.train = shuffle if train is None else train",
        replacement="self.train = shuffle",
        tests=[],
    ),
    # val_fraction=0 (no validation split, the reference protocol) still asks for a stratified split
    dict(
        id="val-split-at-zero-fraction",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="if self.val_fraction > 0:",
        replacement="if self.val_fraction >= 0:",
        tests=[],
    ),
]

# The tests that catch the first pass's survivors (docs/testing.md, "The fourth list"): `--after` runs them
# first. The watchdog's test was there before the list (the map misses it: its process is SIGKILLed, by
# design, so it writes no coverage data); the end-of-run AURC check was written after the first pass.
AFTER = {
    "msp-aurc-is-mahalanobis": [
        "tests/test_evaluation.py::test_every_end_of_run_number_is_recomputed_from_the_saved_latents"
    ],
    "watchdog-sigterm-not-sigkill": [
        "tests/test_watchdog.py::test_a_process_stuck_in_a_native_call_is_killed_after_the_grace_period"
    ],
}
