"""A fifth list of plausible one-line bugs, for `python -m benchmarks.mutation.run --list fifth`
(docs/testing.md, "Mutation audit"): 48 mutants, 8 per category, written from the package source and its
configs alone (binary_encoding/, conf/) with the tests unopened. None repeats a mutant of `mutants.py`,
`mutants_fresh.py`, `mutants_third.py` or `mutants_fourth.py` (same line, same change). Same format: `original`
must occur exactly once in `file`, and is replaced by `replacement`. `tests` is left empty: the runner picks
the tests that execute the mutated line.
"""

MUTANTS = [
    # --- metric math ---
    # the GMM binarity score sums the per-sample log-likelihood instead of averaging it
    dict(
        id="gmm-score-summed-over-samples",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="score = _e_step(x, params)[0].mean(1)",
        replacement="score = _e_step(x, params)[0].sum(1)",
        tests=[],
    ),
    # NC2's pairwise cosines include each class with itself (cos = 1)
    dict(
        id="nc2-cosines-include-diagonal",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="i, j = torch.triu_indices(c, c, offset=1, device=rows.device)",
        replacement="i, j = torch.triu_indices(c, c, offset=0, device=rows.device)",
        tests=[],
    ),
    # global_mean=class_means averages the zero means of absent classes too
    dict(
        id="class-means-global-mean-counts-absent-classes",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="mu_g = means[present].mean(0)",
        replacement="mu_g = means.mean(0)",
        tests=[],
    ),
    # the negative group's size subtracts from the number of dimensions, not of samples
    dict(
        id="two-valued-negatives-counted-on-wrong-axis",
        category="metric math",
        file="binary_encoding/metrics/two_valued.py",
        original="n_neg = x.shape[0] - n_pos",
        replacement="n_neg = x.shape[1] - n_pos",
        tests=[],
    ),
    # the exact Mahalanobis class covariance uses ddof 0 instead of the documented ddof 1
    dict(
        id="class-covariance-population-ddof",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="cov = xc.T @ xc / (zc.shape[0] - 1)",
        replacement="cov = xc.T @ xc / zc.shape[0]",
        tests=[],
    ),
    # DeepFool steps toward the farthest linearised boundary instead of the nearest
    dict(
        id="deepfool-farthest-boundary",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="l = (fd / wn).argmin(dim=1)",
        replacement="l = (fd / wn).argmax(dim=1)",
        tests=[],
    ),
    # deepfool_rho_correct averages the fooled images instead of the correctly classified ones
    dict(
        id="rho-correct-over-fooled-images",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"deepfool_rho_correct": ratio[correct].mean().item() if correct.any() else float("nan"),',
        replacement='"deepfool_rho_correct": ratio[fooled].mean().item() if correct.any() else float("nan"),',
        tests=[],
    ),
    # two_valued_min is filled with the mean over dimensions
    dict(
        id="two-valued-min-is-mean",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='"two_valued_min": t["min"],',
        replacement='"two_valued_min": t["mean"],',
        tests=[],
    ),
    # --- config/CLI ---
    # a list of device indices refuses index 0
    dict(
        id="device-index-zero-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="or not isinstance(v, int) or v < 0 for v in value)",
        replacement="or not isinstance(v, int) or v <= 0 for v in value)",
        tests=[],
    ),
    # head=nonlinpen with head.width=null is no longer refused as a config error
    dict(
        id="nonlinpen-null-width-not-refused",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='if net.endswith((".LinearHead", ".NonLinearHead")) and cfg.head.get("width") is None:',
        replacement='if net.endswith(".LinearHead") and cfg.head.get("width") is None:',
        tests=[],
    ),
    # the or_else resolver's parameters are swapped: output_dir no longer sets Hydra's run folder
    dict(
        id="or-else-arguments-swapped",
        category="config/CLI",
        file="binary_encoding/run/conf.py",
        original="lambda value, default: default if value is None else value",
        replacement="lambda default, value: default if value is None else value",
        tests=[],
    ),
    # threads_per_job ignores the n_jobs it is given
    dict(
        id="threads-n-jobs-argument-ignored",
        category="config/CLI",
        file="binary_encoding/run/threads.py",
        original="n_jobs = launcher_jobs() if n_jobs is None else n_jobs",
        replacement="n_jobs = launcher_jobs()",
        tests=[],
    ),
    # on resume the first missing epoch line is not written back to train.log
    dict(
        id="restored-epoch-lines-skip-first",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original='if first <= epoch < epochs_done and row.get(EPOCH_COMPLETE) not in (None, ""):',
        replacement='if first < epoch < epochs_done and row.get(EPOCH_COMPLETE) not in (None, ""):',
        tests=[],
    ),
    # the command line no longer checks that the output folder is writable before Hydra starts
    dict(
        id="cli-preflight-check-dropped",
        category="config/CLI",
        file="binary_encoding/train.py",
        original="checks = (moved_key_message, unknown_choice_message, missing_launcher_message, preflight_message)",
        replacement="checks = (moved_key_message, unknown_choice_message, missing_launcher_message)",
        tests=[],
    ),
    # evaluate takes run folders that have no checkpoint
    dict(
        id="evaluate-finds-runs-without-checkpoint",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="runs += [c for c in candidates if files.last_checkpoint(c).is_file()]",
        replacement="runs += candidates",
        tests=[],
    ),
    # the reference protocol takes mu_G as the mean of the class means instead of all samples
    dict(
        id="reference-protocol-class-means",
        category="config/CLI",
        file="conf/protocol/reference.yaml",
        original="global_mean: samples",
        replacement="global_mean: class_means",
        tests=[],
    ),
    # --- report ---
    # a head without a latent width gets width 0 instead of the -1 sentinel
    dict(
        id="nopen-width-sentinel-zero",
        category="report",
        file="binary_encoding/report/load.py",
        original='"width": int(width) if isinstance(width, (int, float)) and not isinstance(width, bool) else -1,',
        replacement='"width": int(width) if isinstance(width, (int, float)) and not isinstance(width, bool) else 0,',
        tests=[],
    ),
    # a figure's legend gives the fewest runs at any epoch instead of the most
    dict(
        id="figure-legend-fewest-runs",
        category="report",
        file="binary_encoding/report/figures.py",
        original='label += (f" [{setting}]" if len(settings) > 1 else "") + f" (n={n.max()})"',
        replacement='label += (f" [{setting}]" if len(settings) > 1 else "") + f" (n={n.min()})"',
        tests=[],
    ),
    # runs without unreadable rows (NaN) are noted as having unreadable metrics.csv rows
    dict(
        id="unreadable-rows-note-for-every-run",
        category="report",
        file="binary_encoding/report/tables.py",
        original='bad = runs[runs["unreadable_rows"].fillna("").astype(str) != ""]',
        replacement='bad = runs[runs["unreadable_rows"].astype(str) != ""]',
        tests=[],
    ),
    # log='auto' panels need two decades instead of one before taking a log scale
    dict(
        id="auto-log-scale-two-decades",
        category="report",
        file="binary_encoding/report/figures.py",
        original="log = len(vals) > 0 and vals.max() / vals.min() > 10",
        replacement="log = len(vals) > 0 and vals.max() / vals.min() > 100",
        tests=[],
    ),
    # the note about differing max_epochs inside a row is written for every row
    dict(
        id="max-epochs-note-always",
        category="report",
        file="binary_encoding/report/cli.py",
        original='if "max_epochs" in g and g["max_epochs"].nunique() > 1:',
        replacement='if "max_epochs" in g and g["max_epochs"].nunique() > 0:',
        tests=[],
    ),
    # claims count nopen's -1 width as a second latent width
    dict(
        id="claims-multi-width-counts-nopen",
        category="report",
        file="binary_encoding/report/claims.py",
        original='multi = block.loc[block["width"] >= 0, "width"].nunique() > 1',
        replacement='multi = block["width"].nunique() > 1',
        tests=[],
    ),
    # with several W&B groups the report's group is an arbitrary one of them
    dict(
        id="publish-group-from-several-names",
        category="report",
        file="binary_encoding/report/publish.py",
        original="group = names.pop() if len(names) == 1 else Path(path).name",
        replacement="group = names.pop() if len(names) >= 1 else Path(path).name",
        tests=[],
    ),
    # the run search walks hidden folders (.hydra, .refused) too
    dict(
        id="report-load-hidden-folders-walked",
        category="report",
        file="binary_encoding/report/load.py",
        original='dirs[:] = sorted(x for x in dirs if not x.startswith(".") and x not in SKIP_DIRS)',
        replacement="dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)",
        tests=[],
    ),
    # --- records and resume ---
    # the sweep recap calls newly finished jobs skipped and skipped ones finished
    dict(
        id="sweep-recap-skipped-inverted",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="skipped = finished_before.get(folder) == summary_path.stat().st_mtime_ns",
        replacement="skipped = finished_before.get(folder) != summary_path.stat().st_mtime_ns",
        tests=[],
    ),
    # metrics.csv writes the epoch as a float (3.0), which a resume cannot read back as an int
    dict(
        id="csv-epoch-written-as-float",
        category="records and resume",
        file="binary_encoding/record/csv_log.py",
        original='row.update({k: float(v) for k, v in metrics.items() if k != "epoch"})',
        replacement="row.update({k: float(v) for k, v in metrics.items()})",
        tests=[],
    ),
    # the lock's process start time reads the next /proc stat field (vsize), which changes while the holder runs
    dict(
        id="proc-start-reads-vsize",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original='return None if live and fields[0] in ("Z", "X") else fields[19]',
        replacement='return None if live and fields[0] in ("Z", "X") else fields[20]',
        tests=[],
    ),
    # the config fingerprint includes keys that do not define the run
    dict(
        id="fingerprint-includes-non-defining-keys",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original="defining = {k: v for k, v in flat_config(config).items() if defines_run(k)}",
        replacement="defining = dict(flat_config(config).items())",
        tests=[],
    ),
    # a summary moved aside is named summary.stale.json instead of summary.json.stale
    dict(
        id="stale-summary-file-name",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original='STALE_SUMMARY = "summary.json.stale"',
        replacement='STALE_SUMMARY = "summary.stale.json"',
        tests=[],
    ),
    # divergence compares with 1/C even when the training split's majority share is given
    dict(
        id="diverged-ignores-majority-share",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original="m = 1 / num_classes if majority is None else majority",
        replacement="m = 1 / num_classes",
        tests=[],
    ),
    # the writability preflight no longer checks hydra.sweep.dir
    dict(
        id="preflight-ignores-sweep-dir",
        category="records and resume",
        file="binary_encoding/run/writes.py",
        original='if a.lstrip("+").split("=", 1)[0] in ("output_dir", "hydra.run.dir", "hydra.sweep.dir")',
        replacement='if a.lstrip("+").split("=", 1)[0] in ("output_dir", "hydra.run.dir")',
        tests=[],
    ),
    # asking a finished run for fewer epochs returns its summary instead of being refused
    dict(
        id="fewer-epochs-not-refused",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="or not isinstance(done, int) or asked == done:",
        replacement="or not isinstance(done, int) or asked <= done:",
        tests=[],
    ),
    # --- training semantics ---
    # the gamma schedule accepts factor 0
    dict(
        id="gamma-factor-zero-accepted",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="if gamma0 < 0 or factor <= 0 or step < 1:",
        replacement="if gamma0 < 0 or factor < 0 or step < 1:",
        tests=[],
    ),
    # a latent pass leaves a module in training mode even when it was in eval mode
    dict(
        id="collect-latents-leaves-train-mode",
        category="training semantics",
        file="binary_encoding/callbacks/latents.py",
        original="module.train(was_training)",
        replacement="module.train()",
        tests=[],
    ),
    # the module accepts a learning rate of 0
    dict(
        id="zero-lr-accepted",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="if lr <= 0:",
        replacement="if lr < 0:",
        tests=[],
    ),
    # the MLP reports its first hidden width as its feature width instead of the last
    dict(
        id="mlp-features-first-width",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="self.num_features = width",
        replacement="self.num_features = hidden[0]",
        tests=[],
    ),
    # act=gelu builds SiLU layers
    dict(
        id="gelu-is-silu",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original='"gelu": nn.GELU',
        replacement='"gelu": nn.SiLU',
        tests=[],
    ),
    # the 1-d basic block drops the activation after its first convolution
    dict(
        id="resnet1d-block-first-activation-dropped",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="out = self.act(self.bn1(self.conv1(x)))",
        replacement="out = self.bn1(self.conv1(x))",
        tests=[],
    ),
    # ResNet1d's blocks ignore backbone.kernel (always 3)
    dict(
        id="resnet1d-kernel-ignored",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="stages.append(BasicBlock1d(cin, planes, 2 if (i > 0 and j == 0) else 1, kernel, self.act))",
        replacement="stages.append(BasicBlock1d(cin, planes, 2 if (i > 0 and j == 0) else 1, 3, self.act))",
        tests=[],
    ),
    # the non-linear head's default activation is ReLU instead of SiLU
    dict(
        id="nonlinpen-default-relu",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original='def __init__(self, in_features: int, num_classes: int, width: int = 4, act: str = "silu"):',
        replacement='def __init__(self, in_features: int, num_classes: int, width: int = 4, act: str = "relu"):',
        tests=[],
    ),
    # --- data pipeline ---
    # the number of classes ignores test labels above the training ones
    dict(
        id="num-classes-from-train-only",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="self.num_classes = int(max(y_tr.max(), y_te.max()) + 1)",
        replacement="self.num_classes = int(y_tr.max() + 1)",
        tests=[],
    ),
    # the seeded augmented view crops and flips even when the data module does not augment
    dict(
        id="augmented-view-without-augment",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="if augmented and self.augment:",
        replacement="if augmented:",
        tests=[],
    ),
    # training augmentation flips even with data.flip=false
    dict(
        id="flip-setting-ignored-in-training",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="x = augment_batch(x, self.pad, self.flip, self.augment_generator(x.device))",
        replacement="x = augment_batch(x, self.pad, True, self.augment_generator(x.device))",
        tests=[],
    ),
    # image files are ordered by their full path, not torchvision's (folder, name) order, so splits draw other images
    dict(
        id="imagefolder-order-by-full-path",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="samples[start:] = sorted(samples[start:], key=lambda s: os.path.split(s[0]))",
        replacement="samples[start:] = sorted(samples[start:], key=lambda s: s[0])",
        tests=[],
    ),
    # MNIST-1D trains on the test signals and tests on the training ones
    dict(
        id="mnist1d-train-test-swapped",
        category="data pipeline",
        file="binary_encoding/data/mnist1d.py",
        original=(
            'return as_image(d["x"]), d["y"].astype(np.int64), as_image(d["x_test"]), d["y_test"].astype(np.int64)'
        ),
        replacement=(
            'return as_image(d["x_test"]), d["y_test"].astype(np.int64), as_image(d["x"]), d["y"].astype(np.int64)'
        ),
        tests=[],
    ),
    # every sub-folder of a class folder is taken for a symlink loop and skipped
    dict(
        id="imagefolder-loop-check-swapped",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="loop = here != real[c] and _inside(real[c], here)",
        replacement="loop = here != real[c] and _inside(here, real[c])",
        tests=[],
    ),
    # the too-few-images message counts the named class among the others
    dict(
        id="few-classes-message-off-by-one",
        category="data pipeline",
        file="binary_encoding/data/split.py",
        original='others = f" (and {few.size - 1} other classes have fewer than 2)" if few.size > 1 else ""',
        replacement='others = f" (and {few.size} other classes have fewer than 2)" if few.size > 1 else ""',
        tests=[],
    ),
    # the DeepFool test sample ignores the run's seed
    dict(
        id="deepfool-sample-seed-fixed",
        category="data pipeline",
        file="binary_encoding/callbacks/metrics.py",
        original="idx = torch.randperm(n_test, generator=torch.Generator().manual_seed(st.seed))[:k].sort().values",
        replacement="idx = torch.randperm(n_test, generator=torch.Generator().manual_seed(0))[:k].sort().values",
        tests=[],
    ),
]

# The tests that catch the first pass's survivors (docs/testing.md, "The fifth list"), written after it:
# `--after` runs them first.
AFTER = {
    "class-means-global-mean-counts-absent-classes": [
        "tests/test_geometry.py::test_class_means_global_mean_is_the_mean_of_the_present_classes_only"
    ],
    "unreadable-rows-note-for-every-run": [
        "tests/test_report_values.py::"
        "test_only_runs_with_unreadable_rows_get_a_note_also_when_the_column_reads_back_empty_as_nan"
    ],
    "figure-legend-fewest-runs": [
        "tests/test_report_values.py::test_a_curve_label_counts_every_seed_when_one_seed_logged_fewer_epochs"
    ],
    "publish-group-from-several-names": [
        "tests/test_report_values.py::test_runs_logged_to_several_w_and_b_names_are_grouped_by_the_sweep_folder"
    ],
    "max-epochs-note-always": ["tests/test_report_values.py::test_a_clean_sweep_gets_no_note"],
    "mlp-features-first-width": ["tests/test_models.py::test_backbone_contract_features"],
    "resnet1d-kernel-ignored": [
        "tests/test_training_values.py::test_resnet1d_keeps_the_length_for_any_odd_kernel_and_cnn1d_pads_by_one"
    ],
    "gelu-is-silu": ["tests/test_training_values.py::test_each_activation_name_computes_torchs_function_of_that_name"],
    "nonlinpen-default-relu": [
        "tests/test_training_values.py::"
        "test_a_nonlinpen_head_built_without_an_activation_uses_silu_the_papers_backbone_activation"
    ],
    "num-classes-from-train-only": [
        "tests/test_data_values.py::test_the_class_count_covers_a_label_that_only_the_test_split_holds"
    ],
}
