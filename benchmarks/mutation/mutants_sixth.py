"""A sixth list of plausible one-line bugs, for `python -m benchmarks.mutation.run --list sixth`
(docs/testing.md, "Mutation audit"): 120 mutants, 20 per category (so that one list can show 95% in a
category: 19 of 20), written from the package source and its configs alone (binary_encoding/, conf/) with
the tests unopened, by two writers (the second one's ids start with "x-"). None touches a line that a
mutant of the five earlier lists changed. Same format: `original` must occur exactly once in `file`, and is
replaced by `replacement`. `tests` is left empty: the runner picks the tests that execute the mutated line.
"""

MUTANTS = [
    # --- metric math ---
    # code_agreement counts one code fewer than the distinct sign codes present (and packs class/code pairs with the
    # wrong base)
    dict(
        id="code-agreement-n-codes-off-by-one",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="int(ids.max()) + 1,",
        replacement="int(ids.max()),",
        tests=[],
    ),
    # equinorm / equiangular / maxangle computed on the raw class means instead of the means centred on mu_G
    dict(
        id="nc2-on-uncentred-class-means",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="out.update(_nc2(centred[present]))",
        replacement="out.update(_nc2(means[present]))",
        tests=[],
    ),
    # class_codes writes a positive latent as '0' and a non-positive one as '1' (the code strings are inverted)
    dict(
        id="class-codes-bits-inverted",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original='"1" if b else "0" for b in bits[first]',
        replacement='"0" if b else "1" for b in bits[first]',
        tests=[],
    ),
    # misclassification_scores reports the accuracy (share of correct samples) as error_rate
    dict(
        id="misclass-error-rate-counts-correct",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original='"error_rate": n_neg / n,',
        replacement='"error_rate": n_pos / n,',
        tests=[],
    ),
    # max_softmax_score returns the confidence instead of 1 - confidence, so the MSP AUROC is flipped (1 - AUROC)
    dict(
        id="msp-score-is-confidence",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="return 1.0 - torch.softmax(",
        replacement="return torch.softmax(",
        tests=[],
    ),
    # reference Mahalanobis estimator drops test groups of exactly min_count samples
    dict(
        id="reference-auroc-group-needs-more-than-min",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="if len(group) >= min_count:",
        replacement="if len(group) > min_count:",
        tests=[],
    ),
    # the latent shortcut builds grad f_orig - grad f_k instead of grad f_k - grad f_orig: the attack steps away
    # from the boundary
    dict(
        id="deepfool-latent-gradient-sign-flipped",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="dw = w[oth] - w[o][:, None]",
        replacement="dw = w[o][:, None] - w[oth]",
        tests=[],
    ),
    # deepfool puts the model in training mode afterwards instead of restoring its previous mode
    dict(
        id="deepfool-leaves-model-in-train-mode",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="model.train(was_training)",
        replacement="model.train(True)",
        tests=[],
    ),
    # robustness_rho averages over the images outside the mask instead of those inside it
    dict(
        id="robustness-rho-mask-inverted",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="ratio = ratio[mask.to(ratio.device).bool()]",
        replacement="ratio = ratio[~mask.to(ratio.device).bool()]",
        tests=[],
    ),
    # a constant latent dimension (zero variance) scores sign R^2 = 1 instead of 0
    dict(
        id="two-valued-constant-dim-scores-one",
        category="metric math",
        file="binary_encoding/metrics/two_valued.py",
        original="total, 1.0), 0.0)",
        replacement="total, 1.0), 1.0)",
        tests=[],
    ),
    # the per-dimension encoding agreement groups samples by true label instead of by prediction
    dict(
        id="agreement-dim-on-true-labels",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original="return encoding_agreement(d.z, d.pred, d.num_classes)",
        replacement="return encoding_agreement(d.z, d.y, d.num_classes)",
        tests=[],
    ),
    # W&B summary definitions leave out the metrics whose best value is the minimum (loss, NC1, sigma_w, ce)
    dict(
        id="summary-definitions-only-max",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='if m.summary != "last" for k in m.keys()',
        replacement='if m.summary == "max" for k in m.keys()',
        tests=[],
    ),
    # the GMM group no longer returns peak_dist_std, so it is neither logged per epoch nor in summary.json
    dict(
        id="gmm-group-drops-peak-dist-std",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='for k in ("peak_dist_mean", "peak_dist_std")}',
        replacement='for k in ("peak_dist_mean",)}',
        tests=[],
    ),
    # train_majority (the chance level for `diverged`) is the share of the rarest class instead of the most common
    # one
    dict(
        id="train-majority-uses-minority-class",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="torch.bincount(train.y).max().item()",
        replacement="torch.bincount(train.y).min().item()",
        tests=[],
    ),
    # test samples are scored against the Gaussian of their true class instead of their predicted class
    dict(
        id="mahalanobis-distance-to-true-class",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="mahalanobis_distance(gauss, test.z, test.pred)",
        replacement="mahalanobis_distance(gauss, test.z, test.y)",
        tests=[],
    ),
    # DeepFool attacks the whole test split whenever deepfool_samples is smaller than it
    dict(
        id="deepfool-sample-size-max",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="k = min(st.deepfool_samples, n_test)",
        replacement="k = max(st.deepfool_samples, n_test)",
        tests=[],
    ),
    # the reference Mahalanobis estimator skips a class with exactly min_count fitting samples
    dict(
        id="x-ref-maha-fit-needs-more-than-min-count",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="if len(fit) < min_count:",
        replacement="if len(fit) <= min_count:",
        tests=[],
    ),
    # the catalog registers the NC2 metrics from the wrong offset, so equinorm is never logged nor in summary.json
    dict(
        id="x-catalog-collapse-drops-equinorm",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original="for k in _NC[2:]),",
        replacement="for k in _NC[3:]),",
        tests=[],
    ),
    # the MSP FPR@95%TPR reported is the Mahalanobis one (copy-paste of the wrong score dict)
    dict(
        id="x-msp-fpr95-reads-mahalanobis",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"msp_fpr95": msp["fpr_at_95_tpr"],',
        replacement='"msp_fpr95": maha["fpr_at_95_tpr"],',
        tests=[],
    ),
    # NC1 drops classes with exactly min_count samples (counted in skipped_classes)
    dict(
        id="x-nc1-keeps-classes-above-min-count",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="keep = count >= min_count",
        replacement="keep = count > min_count",
        tests=[],
    ),
    # --- config/CLI ---
    # config error messages write booleans as True/False instead of the command line's true/false
    dict(
        id="show-bool-not-lowercased",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="return str(value).lower()",
        replacement="return str(value)",
        tests=[],
    ),
    # head.width=null is refused by the settings check, so head=nopen cannot run
    dict(
        id="head-width-null-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='(null for nopen)", ge=1, null=True)',
        replacement='(null for nopen)", ge=1)',
        tests=[],
    ),
    # trainer.num_sanity_val_steps=-1 (all batches) is refused
    dict(
        id="sanity-val-steps-minus-one-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='"validation batches before training (-1: all)", ge=-1)',
        replacement='"validation batches before training (-1: all)", ge=0)',
        tests=[],
    ),
    # a config without runtime.sigterm_grace_s gets 30 s instead of the documented default 60 s
    dict(
        id="sigterm-grace-default-30",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='cfg.runtime.get("sigterm_grace_s", 60)',
        replacement='cfg.runtime.get("sigterm_grace_s", 30)',
        tests=[],
    ),
    # channels_last=auto resolves to true for backbones without Conv2d (MLP, 1-D nets)
    dict(
        id="channels-last-auto-on-for-non-conv",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="return _auto(cfg.runtime.channels_last, False)",
        replacement="return _auto(cfg.runtime.channels_last, True)",
        tests=[],
    ),
    # the Trainer is told to replace the data module's own sharding sampler with Lightning's distributed sampler
    dict(
        id="trainer-kwargs-distributed-sampler-on",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='"use_distributed_sampler": False',
        replacement='"use_distributed_sampler": True',
        tests=[],
    ),
    # threads_per_job('auto') with n_jobs=0 divides by zero instead of leaving torch's default
    dict(
        id="threads-zero-jobs-divides",
        category="config/CLI",
        file="binary_encoding/run/threads.py",
        original="if not n_jobs:",
        replacement="if n_jobs is None:",
        tests=[],
    ),
    # on resume with a train.log holding no epoch line, the line of epoch 1 is not restored
    dict(
        id="epoch-log-restore-skips-first-epoch",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original="first = max(logged, default=0)",
        replacement="first = max(logged, default=1)",
        tests=[],
    ),
    # the epoch line prints the seconds with two decimals instead of one
    dict(
        id="epoch-line-seconds-two-decimals",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original='f"{seconds:.1f} s"',
        replacement='f"{seconds:.2f} s"',
        tests=[],
    ),
    # a refused config of a single run exits with status 1 instead of 2
    dict(
        id="train-config-error-exit-1",
        category="config/CLI",
        file="binary_encoding/train.py",
        original="raise SystemExit(2) from None",
        replacement="raise SystemExit(1) from None",
        tests=[],
    ),
    # evaluate exits 2 when a run failed and 1 when only non-checkpoint files were given (swapped)
    dict(
        id="evaluate-exit-codes-swapped",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="raise SystemExit(1 if failed else 2)",
        replacement="raise SystemExit(2 if failed else 1)",
        tests=[],
    ),
    # --checkpoint is refused even with exactly one run folder
    dict(
        id="evaluate-checkpoint-refused-for-one-run",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="if a.checkpoint and len(runs) > 1:",
        replacement="if a.checkpoint and len(runs) >= 1:",
        tests=[],
    ),
    # protocol=reference keeps a 10% validation split instead of training on the whole training set
    dict(
        id="reference-protocol-keeps-val-split",
        category="config/CLI",
        file="conf/protocol/reference.yaml",
        original="val_fraction: 0",
        replacement="val_fraction: 0.1",
        tests=[],
    ),
    # debug=overfit no longer holds gamma at gamma0
    dict(
        id="overfit-debug-gamma-grows",
        category="config/CLI",
        file="conf/debug/overfit.yaml",
        original="gamma_factor: 1.0",
        replacement="gamma_factor: 1.084",
        tests=[],
    ),
    # experiment=cifar100_resnet50 uses d=64 instead of the reference configs' d=36
    dict(
        id="cifar100-width-64",
        category="config/CLI",
        file="conf/experiment/cifar100_resnet50.yaml",
        original="width: 36",
        replacement="width: 64",
        tests=[],
    ),
    # DeepFool's default candidates become all classes instead of the top-10 logits
    dict(
        id="deepfool-candidates-default-all",
        category="config/CLI",
        file="conf/config.yaml",
        original="deepfool_candidates: 10",
        replacement="deepfool_candidates: null",
        tests=[],
    ),
    # the epoch line no longer resets its values at a new epoch: stale val acc / codes from earlier epochs are
    # printed
    dict(
        id="x-epoch-line-keeps-last-epoch-values",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original='self.epoch, self.values = metrics["epoch"], {}',
        replacement='self.epoch = metrics["epoch"]',
        tests=[],
    ),
    # evaluate searches a sweep folder non-recursively, so the job folders below it are never found
    dict(
        id="x-evaluate-finds-runs-only-one-level",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="p.rglob(files.CONFIG)",
        replacement="p.glob(files.CONFIG)",
        tests=[],
    ),
    # the binenc head's default gamma growth factor is 1.08 instead of 1.084
    dict(
        id="x-binenc-gamma-factor-1-08",
        category="config/CLI",
        file="conf/head/binenc.yaml",
        original="gamma_factor: 1.084",
        replacement="gamma_factor: 1.08",
        tests=[],
    ),
    # the digits config holds out 25% as test instead of 20%
    dict(
        id="x-digits-test-fraction-quarter",
        category="config/CLI",
        file="conf/data/digits.yaml",
        original="test_fraction: 0.2",
        replacement="test_fraction: 0.25",
        tests=[],
    ),
    # --- report ---
    # a folder is a job only when it holds config.yaml, metrics.csv, summary.json AND failed.json
    dict(
        id="find-jobs-needs-all-files",
        category="report",
        file="binary_encoding/report/load.py",
        original="if any(f in names for f in JOB_FILES):",
        replacement="if all(f in names for f in JOB_FILES):",
        tests=[],
    ),
    # the unreadable-rows note says 'line 3 hold' / 'lines 3, 4 holds' (verb agreement inverted)
    dict(
        id="history-note-plural-wrong",
        category="report",
        file="binary_encoding/report/load.py",
        original="hold{'s' * (len(lines) == 1)}",
        replacement="hold{'s' * (len(lines) > 1)}",
        tests=[],
    ),
    # a text value in a summary is shown unquoted in the left-out notes
    dict(
        id="shown-value-text-unquoted",
        category="report",
        file="binary_encoding/report/select.py",
        original="repr(v) if isinstance(v, str)",
        replacement="str(v) if isinstance(v, str)",
        tests=[],
    ),
    # a missing value in a cell that other seeds fill is no longer named among the values left out
    dict(
        id="dropped-values-skip-missing",
        category="report",
        file="binary_encoding/report/select.py",
        original="~ok & (~missing | ok.any())",
        replacement="~ok & ~missing",
        tests=[],
    ),
    # an empty table cell shows '-' instead of the en dash
    dict(
        id="empty-cell-hyphen",
        category="report",
        file="binary_encoding/report/tables.py",
        original='return "–"',
        replacement='return "-"',
        tests=[],
    ),
    # results.md names the std 'population' for ddof=1 and 'sample' for ddof=0
    dict(
        id="results-std-wording-swapped",
        category="report",
        file="binary_encoding/report/tables.py",
        original='"sample std (ddof=1)" if ddof == 1 else',
        replacement='"sample std (ddof=1)" if ddof == 0 else',
        tests=[],
    ),
    # tables and figures order LinPen before NoPen, unlike the paper
    dict(
        id="head-order-nopen-linpen-swapped",
        category="report",
        file="binary_encoding/report/style.py",
        original='HEAD_ORDER = ["binenc", "nopen", "linpen", "nonlinpen"]',
        replacement='HEAD_ORDER = ["binenc", "linpen", "nopen", "nonlinpen"]',
        tests=[],
    ),
    # the nonlinpen head is labelled NonLinPen instead of NonlinPen
    dict(
        id="nonlinpen-label-case",
        category="report",
        file="binary_encoding/report/style.py",
        original='"nonlinpen": "NonlinPen"',
        replacement='"nonlinpen": "NonLinPen"',
        tests=[],
    ),
    # wandb:project without an entity gives entity '' instead of None
    dict(
        id="wandb-target-entity-empty-string",
        category="report",
        file="binary_encoding/report/publish.py",
        original='"entity": entity or None,',
        replacement='"entity": entity,',
        tests=[],
    ),
    # W&B run ids read from wandb_id.txt keep a trailing newline
    dict(
        id="wandb-id-not-stripped",
        category="report",
        file="binary_encoding/report/publish.py",
        original='ids[r["run_id"]] = (job / files.WANDB_ID).read_text().strip()',
        replacement='ids[r["run_id"]] = (job / files.WANDB_ID).read_text()',
        tests=[],
    ),
    # fig2 takes the latents of the selected BinEnc run with the highest seed instead of the lowest
    dict(
        id="histogram-run-highest-seed",
        category="report",
        file="binary_encoding/report/figures.py",
        original='.sort_values("seed").iterrows()',
        replacement='.sort_values("seed", ascending=False).iterrows()',
        tests=[],
    ),
    # a figure is skipped as soon as one row lacks a value (e.g. metrics_every > 1), not only when the column is
    # empty
    dict(
        id="figure-skipped-on-any-nan",
        category="report",
        file="binary_encoding/report/figures.py",
        original="hist[c].isna().all()]",
        replacement="hist[c].isna().any()]",
        tests=[],
    ),
    # write_report refuses a sweep as soon as one job is failed or unfinished
    dict(
        id="report-refuses-any-unfinished",
        category="report",
        file="binary_encoding/report/cli.py",
        original='if not (runs["status"] == "finished").any():',
        replacement='if not (runs["status"] == "finished").all():',
        tests=[],
    ),
    # the report's command line defaults to the population std (ddof=0) instead of the sample std
    dict(
        id="report-cli-ddof-default-0",
        category="report",
        file="binary_encoding/report/cli.py",
        original="default=1,",
        replacement="default=0,",
        tests=[],
    ),
    # for 'lower' claims measured as a difference the effect and interval are reported with the sign flipped
    dict(
        id="claims-difference-interval-not-toward",
        category="report",
        file="binary_encoding/report/claims.py",
        original="mean, low, high = interval(effects)",
        replacement="mean, low, high = interval(toward)",
        tests=[],
    ),
    # the 'fewer than 2 seeds pair up' note also appears when 2 seeds pair up
    dict(
        id="claims-few-seeds-note-at-two",
        category="report",
        file="binary_encoding/report/claims.py",
        original='if summary["n"].max() < 2:',
        replacement='if summary["n"].max() <= 2:',
        tests=[],
    ),
    # results.md names a sweep run from its own folder '.' instead of the folder's name
    dict(
        id="x-sweep-name-dot-for-cwd",
        category="report",
        file="binary_encoding/report/cli.py",
        original='return folder.name if relative == Path(".") else str(relative)',
        replacement="return str(relative)",
        tests=[],
    ),
    # the W&B report run's group is read from the config's `group` (null: 'None') instead of the sweep `name`
    dict(
        id="x-wandb-group-from-group-key",
        category="report",
        file="binary_encoding/report/publish.py",
        original='names.add(str(cfg.get("name")))',
        replacement='names.add(str(cfg.get("group")))',
        tests=[],
    ),
    # a report figure is one panel high whatever the number of stacked panels
    dict(
        id="x-figure-height-ignores-panels",
        category="report",
        file="binary_encoding/report/style.py",
        original="0.9 + PANEL_HEIGHT * panels",
        replacement="0.9 + PANEL_HEIGHT",
        tests=[],
    ),
    # the results.md table's separator row has one column fewer than its header
    dict(
        id="x-markdown-separator-one-column-short",
        category="report",
        file="binary_encoding/report/tables.py",
        original='"---|" * len(titles)',
        replacement='"---|" * (len(titles) - 1)',
        tests=[],
    ),
    # --- records and resume ---
    # with hold=True the checkpoint is renamed into place at save time, and commit() then fails on the missing temp
    # file
    dict(
        id="held-checkpoint-renamed-at-once",
        category="records and resume",
        file="binary_encoding/record/checkpoint_io.py",
        original="rename=not self.hold",
        replacement="rename=True",
        tests=[],
    ),
    # metrics.csv puts the bare keys (gamma) before the split-prefixed columns instead of after them
    dict(
        id="metrics-csv-bare-keys-first",
        category="records and resume",
        file="binary_encoding/record/csv_log.py",
        original='or "~")',
        replacement='or "")',
        tests=[],
    ),
    # a failed atomic write leaves its .tmp file behind
    dict(
        id="write-atomic-leaves-temp-file",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original="tmp.unlink(missing_ok=True)",
        replacement="pass",
        tests=[],
    ),
    # code_version records no commit in a git checkout (and would record git's error output otherwise)
    dict(
        id="code-version-commit-inverted",
        category="records and resume",
        file="binary_encoding/record/version.py",
        original="if commit.returncode == 0:",
        replacement="if commit.returncode != 0:",
        tests=[],
    ),
    # data.skip_unreadable becomes a defining setting: it changes the fingerprint and blocks resuming with another
    # value
    dict(
        id="skip-unreadable-defines-run",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original='"data.skip_unreadable",',
        replacement="",
        tests=[],
    ),
    # a diverged run with gamma >= 1 is blamed on collapsed latents even when its |z| is large
    dict(
        id="diverged-hint-or",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original="z < COLLAPSED_Z and gamma >= COLLAPSING_GAMMA",
        replacement="z < COLLAPSED_Z or gamma >= COLLAPSING_GAMMA",
        tests=[],
    ),
    # an 8-dimensional latent is projected with PCA instead of shown on its first two code bits
    dict(
        id="scatter-eight-dims-projected",
        category="records and resume",
        file="binary_encoding/record/wandb_media.py",
        original="if z.shape[1] <= SCATTER_DIMS:",
        replacement="if z.shape[1] < SCATTER_DIMS:",
        tests=[],
    ),
    # the printed wandb sync command names offline-run-<id>, which matches no offline run folder (offline-
    # run-<time>-<id>)
    dict(
        id="offline-sync-pattern-misses-time",
        category="records and resume",
        file="binary_encoding/record/wandb_run.py",
        original="offline-run-*-{run_id}",
        replacement="offline-run-{run_id}",
        tests=[],
    ),
    # a heartbeat 10-15 min old is called 'in the future' and taken over; a heartbeat far in the future holds the
    # folder
    dict(
        id="lock-clock-skew-sign",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="if -silent > MAX_CLOCK_SKEW_S:",
        replacement="if silent > MAX_CLOCK_SKEW_S:",
        tests=[],
    ),
    # an unreadable job.lock reads as no lock: acquire then retries the exclusive create and fails with
    # FileExistsError
    dict(
        id="lock-unreadable-treated-as-absent",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="return {}\n",
        replacement="return None\n",
        tests=[],
    ),
    # arm() with another grace (or None) keeps the old watchdog and reports it armed
    dict(
        id="watchdog-rearm-keeps-old-grace",
        category="records and resume",
        file="binary_encoding/run/watchdog.py",
        original="if _ARMED is not None and _ARMED[0] == grace_s:",
        replacement="if _ARMED is not None:",
        tests=[],
    ),
    # the free space in the output error divides by 1000 while naming KiB/MiB/GiB
    dict(
        id="free-space-decimal-units",
        category="records and resume",
        file="binary_encoding/run/writes.py",
        original="free /= 1024",
        replacement="free /= 1000",
        tests=[],
    ),
    # a summary that does not count is deleted instead of being moved aside to summary.json.stale
    dict(
        id="stale-summary-deleted",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="done.replace(out / files.STALE_SUMMARY)",
        replacement="done.unlink()",
        tests=[],
    ),
    # a SIGTERM outside trainer.fit exits 130 (Ctrl-C's code) instead of 143
    dict(
        id="sigterm-outside-fit-exit-130",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="raise Terminated(143, msg)",
        replacement="raise Terminated(130, msg)",
        tests=[],
    ),
    # a one-job sweep's recap leaves out all its overrides (every override counted as common)
    dict(
        id="recap-single-job-name-empty",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="if n > 1 else set()",
        replacement="if n > 0 else set()",
        tests=[],
    ),
    # a long failure message in the recap is cut to 103 characters instead of 100
    dict(
        id="recap-error-truncation-too-long",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="error[:97] + '...'",
        replacement="error[:100] + '...'",
        tests=[],
    ),
    # a committed checkpoint stays pending, so the next commit (e.g. at finalize) renames a temp file that no longer
    # exists
    dict(
        id="x-checkpoint-commit-keeps-pending",
        category="records and resume",
        file="binary_encoding/record/checkpoint_io.py",
        original="self.pending = None",
        replacement="pass",
        tests=[],
    ),
    # write_json only cleans NaN: an infinite value is written as the non-JSON token Infinity instead of 'inf'
    dict(
        id="x-write-json-keeps-infinity",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original="if isinstance(v, float) and not math.isfinite(v):",
        replacement="if isinstance(v, float) and math.isnan(v):",
        tests=[],
    ),
    # the atomic write's temporary file is last.tmp / summary.tmp instead of last.ckpt.tmp / summary.json.tmp
    dict(
        id="x-temp-path-replaces-suffix",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original='return path.with_name(path.name + ".tmp")',
        replacement='return path.with_suffix(".tmp")',
        tests=[],
    ),
    # runtime.sigterm_grace_s=0 switches the watchdog off instead of killing at once
    dict(
        id="x-watchdog-zero-grace-disarms",
        category="records and resume",
        file="binary_encoding/run/watchdog.py",
        original="if grace_s is None:",
        replacement="if not grace_s:",
        tests=[],
    ),
    # --- training semantics ---
    # the non-finite-loss error names the current step instead of the first step whose loss was not finite
    dict(
        id="nonfinite-message-wrong-step",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="step {self.bad_step.item()}",
        replacement="step {self.global_step}",
        tests=[],
    ),
    # MLP accepts a hidden width of 0 instead of refusing it
    dict(
        id="mlp-accepts-zero-width",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="any(h <= 0 for h in hidden)",
        replacement="any(h < 0 for h in hidden)",
        tests=[],
    ),
    # Bottleneck blocks output `planes` channels instead of 4*planes: ResNet50 stages no longer chain
    dict(
        id="bottleneck-output-without-expansion",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="cout = planes * self.expansion",
        replacement="cout = planes",
        tests=[],
    ),
    # LinearHead/NonLinearHead accept a latent width of 0
    dict(
        id="head-accepts-zero-width",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original="if width is None or width <= 0:",
        replacement="if width is None or width < 0:",
        tests=[],
    ),
    # ResNet1d accepts an even kernel (its padding then shortens the signal)
    dict(
        id="resnet1d-accepts-even-kernel",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="kernel <= 0 or kernel % 2 == 0 or",
        replacement="kernel <= 0 or",
        tests=[],
    ),
    # ResNet1d stages are width*2**(i+1) channels, so the first stage is already twice the configured width
    dict(
        id="resnet1d-stage-widths-doubled",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="planes = width * 2**i",
        replacement="planes = width * 2 ** (i + 1)",
        tests=[],
    ),
    # the optimizer-state snapshot aliases the live tensors, so the warm-up steps are not undone before capture
    dict(
        id="step-graph-optimizer-state-not-copied",
        category="training semantics",
        file="binary_encoding/model/step_graph.py",
        original="v.detach().clone() if torch.is_tensor(v) else v",
        replacement="v.detach() if torch.is_tensor(v) else v",
        tests=[],
    ),
    # GammaScheduler refuses gamma_max=0 (a valid cap that keeps gamma at 0)
    dict(
        id="gamma-max-zero-refused",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="if gamma_max is not None and gamma_max < 0:",
        replacement="if gamma_max is not None and gamma_max <= 0:",
        tests=[],
    ),
    # load_state_dict restores gamma0 as the current gamma instead of the checkpoint's current value
    dict(
        id="gamma-resume-current-reset",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original='self.current = state["current"]',
        replacement='self.current = state["gamma0"]',
        tests=[],
    ),
    # Latents.numpy() names the logits 'logit', so latents.npz holds <split>_logit instead of <split>_logits
    dict(
        id="latents-npz-logit-key",
        category="training semantics",
        file="binary_encoding/callbacks/latents.py",
        original='"logits": self.logits.cpu().numpy()',
        replacement='"logit": self.logits.cpu().numpy()',
        tests=[],
    ),
    # the 'classes must share codes' warning compares d with C instead of 2**d with C (fires for d=4, 10 classes)
    dict(
        id="code-width-warning-linear",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="if latent_width and 2**latent_width < dm.num_classes:",
        replacement="if latent_width and latent_width < dm.num_classes:",
        tests=[],
    ),
    # the warning's needed width is one too high for a power-of-two class count
    dict(
        id="code-width-warning-bits-off",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="(dm.num_classes - 1).bit_length()",
        replacement="dm.num_classes.bit_length()",
        tests=[],
    ),
    # a callback switched off with callbacks.NAME=null is instantiated as None and handed to the Trainer
    dict(
        id="build-callbacks-keeps-null",
        category="training semantics",
        file="binary_encoding/run/build.py",
        original="for name, c in cfg.callbacks.items() if c is not None}",
        replacement="for name, c in cfg.callbacks.items()}",
        tests=[],
    ),
    # the epoch's train/loss is logged as the cross-entropy alone, without the gamma * quad term
    dict(
        id="train-loss-logged-without-gamma-term",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original='self.log("train/loss", loss, prog_bar=True)',
        replacement='self.log("train/loss", ce, prog_bar=True)',
        tests=[],
    ),
    # collect_latents gathers across ranks even in a single process (no process group: the metric pass fails)
    dict(
        id="latents-gather-on-single-process",
        category="training semantics",
        file="binary_encoding/callbacks/latents.py",
        original="if rank_world()[1] > 1:",
        replacement="if rank_world()[1] >= 1:",
        tests=[],
    ),
    # rank_world reads the node-local rank instead of the global RANK without a process group
    dict(
        id="rank-from-local-rank",
        category="training semantics",
        file="binary_encoding/ranks.py",
        original='int(os.environ.get("RANK", 0))',
        replacement='int(os.environ.get("LOCAL_RANK", 0))',
        tests=[],
    ),
    # gamma is no longer part of the module's state_dict/checkpoint
    dict(
        id="x-gamma-buffer-not-saved",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original='self.register_buffer("gamma", torch.tensor(0.0, dtype=torch.float32))',
        replacement='self.register_buffer("gamma", torch.tensor(0.0, dtype=torch.float32), persistent=False)',
        tests=[],
    ),
    # a process with RANK but no LOCAL_RANK in its environment is taken for a DDP rank started by launch_ddp
    dict(
        id="x-launched-rank-reads-rank",
        category="training semantics",
        file="binary_encoding/ranks.py",
        original='return "LOCAL_RANK" in os.environ',
        replacement='return "RANK" in os.environ',
        tests=[],
    ),
    # the ResNet shortcut is an identity whenever stride is 1 or widths match, even when the shapes differ
    dict(
        id="x-resnet-shortcut-or",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="if stride == 1 and cin == cout:",
        replacement="if stride == 1 or cin == cout:",
        tests=[],
    ),
    # the nopen head accepts width=0 silently instead of refusing any latent width
    dict(
        id="x-nopen-accepts-zero-width",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original="if width is not None:",
        replacement="if width:",
        tests=[],
    ),
    # --- data pipeline ---
    # the training split keeps sklearn's shuffled order instead of the data set's order
    dict(
        id="train-split-indices-unsorted",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original='parts = {"train": np.sort(tr), "val": np.sort(va)}',
        replacement='parts = {"train": tr, "val": np.sort(va)}',
        tests=[],
    ),
    # device_resident=auto keeps data on the GPU only when it takes at most a quarter (not half) of the free memory
    dict(
        id="fits-on-device-quarter",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="fraction: float = 0.5",
        replacement="fraction: float = 0.25",
        tests=[],
    ),
    # val_fraction=1 is accepted by the data module's own check
    dict(
        id="val-fraction-one-accepted",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="if not 0.0 <= val_fraction < 1.0:",
        replacement="if not 0.0 <= val_fraction <= 1.0:",
        tests=[],
    ),
    # horizontal crop offsets are drawn from [0, 2*pad) instead of [0, 2*pad]: the crop is biased left
    dict(
        id="crop-x-offset-excludes-max",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original="ox = torch.randint(0, 2 * pad + 1,",
        replacement="ox = torch.randint(0, 2 * pad,",
        tests=[],
    ),
    # pad=0 still draws crop offsets (and consumes the generator), so the flips differ and oy/ox are not None
    dict(
        id="augment-draws-offsets-without-pad",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original="if pad > 0:",
        replacement="if pad >= 0:",
        tests=[],
    ),
    # set_epoch is ignored: every epoch uses the same shuffled order
    dict(
        id="sampler-ignores-epoch",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="self.epoch = epoch",
        replacement="self.epoch = 0",
        tests=[],
    ),
    # a training sampler with shuffle=False (data.shuffle=false) is shuffled anyway
    dict(
        id="sampler-shuffles-when-train",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="if self.shuffle:",
        replacement="if self.train:",
        tests=[],
    ),
    # the '(0: no validation split)' hint is never added to a failed validation split's message
    dict(
        id="split-way-out-hint-never",
        category="data pipeline",
        file="binary_encoding/data/split.py",
        original='if key == "val_fraction" else "")',
        replacement='if key == "validation" else "")',
        tests=[],
    ),
    # the too-few-kept message names the held-out count as the kept one
    dict(
        id="split-kept-count-wrong",
        category="data pipeline",
        file="binary_encoding/data/split.py",
        original='("kept", n - held)',
        replacement='("kept", held)',
        tests=[],
    ),
    # CIFAR-10 reads data_batch_1..4 only (40,000 training images instead of 50,000)
    dict(
        id="cifar10-four-train-batches",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original="for i in range(1, 6)]",
        replacement="for i in range(1, 5)]",
        tests=[],
    ),
    # a missing CIFAR test batch is not detected (no download, no hint; load fails later on open)
    dict(
        id="cifar-missing-ignores-test-files",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original="for f in train + test if not",
        replacement="for f in train if not",
        tests=[],
    ),
    # DigitsDataModule's default test split is 25% instead of the documented 20%
    dict(
        id="digits-test-fraction-default",
        category="data pipeline",
        file="binary_encoding/data/digits.py",
        original="test_fraction: float = 0.2",
        replacement="test_fraction: float = 0.25",
        tests=[],
    ),
    # MNIST-1D generator overrides are silently ignored (the defaults overwrite them)
    dict(
        id="mnist1d-overrides-ignored",
        category="data pipeline",
        file="binary_encoding/data/mnist1d.py",
        original="args.update(overrides)",
        replacement="overrides.update(args)",
        tests=[],
    ),
    # image files with upper-case extensions (.PNG, .JPG) are skipped
    dict(
        id="imagefolder-extensions-case-sensitive",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="if not name.lower().endswith(extensions)",
        replacement="if not name.endswith(extensions)",
        tests=[],
    ),
    # a single unreadable image gets the '; 1 unreadable images under ...' suffix
    dict(
        id="imagefolder-unreadable-count-single",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original='if len(bad) > 1 else ""',
        replacement='if bad else ""',
        tests=[],
    ),
    # the duplicate check compares held-out test images with the whole train folder, so every test image is reported
    # shared
    dict(
        id="imagefolder-shared-check-whole-train",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="report_shared_images(x[tr], x[te], train_dir)",
        replacement="report_shared_images(x, x[te], train_dir)",
        tests=[],
    ),
    # digits images get shape [N, 8, 1, 8] (8 channels) instead of [N, 1, 8, 8]
    dict(
        id="x-digits-channel-axis",
        category="data pipeline",
        file="binary_encoding/data/digits.py",
        original="x = d.images.astype(np.uint8)[:, None]",
        replacement="x = d.images.astype(np.uint8)[:, :, None]",
        tests=[],
    ),
    # the vertical and horizontal crop offsets drawn from the seeded generator are swapped
    dict(
        id="x-augment-draws-swapped",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original="return oy, ox, do",
        replacement="return ox, oy, do",
        tests=[],
    ),
    # the unknown-generator-argument check is reversed: the published set (no overrides) is refused
    dict(
        id="x-mnist1d-unknown-args-reversed",
        category="data pipeline",
        file="binary_encoding/data/mnist1d.py",
        original="unknown = set(overrides) - set(args)",
        replacement="unknown = set(args) - set(overrides)",
        tests=[],
    ),
    # every test image is reported as a duplicate of a training image (hashes taken from the test set)
    dict(
        id="x-shared-images-hash-test",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="seen = {hashlib.sha1(img.tobytes()).digest() for img in train}",
        replacement="seen = {hashlib.sha1(img.tobytes()).digest() for img in test}",
        tests=[],
    ),
]

# The tests that catch the first pass's survivors and timeouts (docs/testing.md, "The sixth list"), written
# after it: `--after` runs them first.
AFTER = {
    "evaluate-checkpoint-refused-for-one-run": [
        "tests/test_command_line.py::test_evaluate_takes_checkpoint_for_exactly_one_run_folder"
    ],
    "threads-zero-jobs-divides": [
        "tests/test_launchers.py::test_threads_per_job_split_the_cores_between_the_jobs_at_once"
    ],
    "figure-skipped-on-any-nan": [
        "tests/test_report_lines.py::test_a_metric_logged_every_other_epoch_is_drawn_from_the_epochs_that_have_it"
    ],
    "code-version-commit-inverted": [
        "tests/test_record_values.py::"
        "test_the_code_version_is_the_checkouts_commit_and_says_whether_tracked_files_changed"
    ],
    "lock-unreadable-treated-as-absent": [
        "tests/test_job_folder.py::test_a_lock_of_the_wrong_shape_is_taken_over_with_one_warning"
    ],
    "watchdog-rearm-keeps-old-grace": [
        "tests/test_watchdog.py::test_disarming_ends_the_watcher_and_a_forked_child_holds_no_watch"
    ],
    "x-watchdog-zero-grace-disarms": [
        "tests/test_watchdog.py::test_disarming_ends_the_watcher_and_a_forked_child_holds_no_watch"
    ],
    "x-augment-draws-swapped": [
        "tests/test_data_lines.py::test_a_seed_draws_the_row_offsets_then_the_column_offsets_then_the_flips"
    ],
}
