"""An eighth list of plausible one-line bugs, for `python -m benchmarks.mutation.run --list eighth`
(docs/testing.md, "Mutation audit"): 120 mutants, 20 per category, written from the package source and its
configs alone (binary_encoding/, conf/) with the tests unopened, by three writers who each had their own files
(ids "a-": metrics, callbacks and data; "b-": settings, CLI, records and job folders; "c-": report, model,
gamma and fit). None touches a line that a mutant of the seven earlier lists changed. Same format: `original`
must occur exactly once in `file`, and is replaced by `replacement`. `tests` is left empty: the runner picks
the tests that execute the mutated line.
"""

MUTANTS = [
    # --- metric math ---
    # The E-step's log-sum-exp adds the smaller instead of the larger log term, so the mixture log-likelihood
    # (binarity score) and the EM responsibilities are wrong.
    dict(
        id="a-gmm-logsumexp-min",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="log_p = torch.sub(a, b).abs_().neg_().exp_().log1p_().add_(torch.maximum(a, b))",
        replacement="log_p = torch.sub(a, b).abs_().neg_().exp_().log1p_().add_(torch.minimum(a, b))",
        tests=[],
    ),
    # The (class, code) pair key uses the class count as stride, so when there are more codes than classes pairs
    # collide and code agreement / unique class codes are wrong.
    dict(
        id="a-code-pairs-ncls",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="pairs, pair_counts = torch.unique(labels * n_codes + ids, return_counts=True)",
        replacement="pairs, pair_counts = torch.unique(labels * n_cls + ids, return_counts=True)",
        tests=[],
    ),
    # Classes with a single sample are treated as absent, so NC2/NC3/NC4 and the class-means global mean ignore
    # them.
    dict(
        id="a-nc-present-gt1",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="present = count > 0\n    if global_mean",
        replacement="present = count > 1\n    if global_mean",
        tests=[],
    ),
    # The modal code's position in the class's unique codes is compared with global code ids, so the reported code
    # string of a class is some other code (or it crashes).
    dict(
        id="a-class-codes-index",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="first = int(torch.nonzero((labels == c) & (ids == codes[top]))[0, 0])",
        replacement="first = int(torch.nonzero((labels == c) & (ids == top))[0, 0])",
        tests=[],
    ),
    # Test latents are scaled but not centred before the Mahalanobis distance, while the class means are centred:
    # distances and the Mahalanobis AUROC are wrong.
    dict(
        id="a-maha-standardize-nomean",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="return (z - self.mean) / self.std",
        replacement="return z / self.std",
        tests=[],
    ),
    # Ranks are returned in sorted order instead of being scattered back to the samples, so the AUROC is wrong
    # unless the input was already sorted.
    dict(
        id="a-avg-ranks-unscattered",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="ranks[order] = avg[inverse]",
        replacement="ranks = avg[inverse]",
        tests=[],
    ),
    # Correct samples' confidences are sorted ascending, so the 95%-TPR threshold is taken from the least confident
    # end and FPR@95 is far too small.
    dict(
        id="a-fpr95-ascending",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="pos_sorted = torch.sort(conf[c], descending=True).values",
        replacement="pos_sorted = torch.sort(conf[c]).values",
        tests=[],
    ),
    # The reference estimate scores test samples against the Gaussian of their true instead of their predicted
    # class, so misclassified samples are measured against the wrong class.
    dict(
        id="a-refauroc-group-by-label",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="group = zs[(ps == c) & (correct_test == ok)]",
        replacement="group = zs[(ys == c) & (correct_test == ok)]",
        tests=[],
    ),
    # The logit difference (and hence its gradient) has the wrong sign, so each DeepFool step moves away from the
    # decision boundary: fewer images fooled, wrong rho.
    dict(
        id="a-deepfool-fdiff-sign",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="fdiff = lg.gather(1, oth) - f_orig  # [m, K-1]",
        replacement="fdiff = f_orig - lg.gather(1, oth)  # [m, K-1]",
        tests=[],
    ),
    # The runner-up class is dropped from the candidates, so DeepFool misses the nearest boundary and overestimates
    # the perturbation norm.
    dict(
        id="a-deepfool-skip-runnerup",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="others = cand[:, 1:]  # [N, K-1]",
        replacement="others = cand[:, 2:]  # [N, K-1]",
        tests=[],
    ),
    # The positive group's mean divides by all samples instead of the group size, so the sign R^2 is wrong whenever
    # any sample is non-positive.
    dict(
        id="a-twovalued-mean-over-n",
        category="metric math",
        file="binary_encoding/metrics/two_valued.py",
        original="mean_pos = sum_pos / n_pos.clamp_min(1)",
        replacement="mean_pos = sum_pos / x.shape[0]",
        tests=[],
    ),
    # metrics.global_mean=class_means is silently ignored: NC1 and NC2 always use the sample mean.
    dict(
        id="a-catalog-nc-global-mean-dropped",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original="nc = neural_collapse(d.z, labels, d.pred, d.classifier_weight, global_mean=d.global_mean)",
        replacement="nc = neural_collapse(d.z, labels, d.pred, d.classifier_weight)",
        tests=[],
    ),
    # n_codes reports the number of distinct class modal codes instead of the number of distinct codes in the
    # latents.
    dict(
        id="a-catalog-ncodes-wrong-key",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='"n_codes": c["n_codes"]',
        replacement='"n_codes": c["unique_class_codes"]',
        tests=[],
    ),
    # Neural-collapse values that are exactly 0 (e.g. nc4, skipped_classes, nc1 on collapsed latents) are dropped
    # from the logs and summary.
    dict(
        id="a-catalog-nc-drops-zero",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original="return {k: float(nc[k]) for k in _NC if nc.get(k) is not None}",
        replacement="return {k: float(nc[k]) for k in _NC if nc.get(k)}",
        tests=[],
    ),
    # The two_valued metric logs the least dimension's R^2 instead of the mean over dimensions.
    dict(
        id="a-catalog-two-valued-min",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='"two_valued": t["mean"],',
        replacement='"two_valued": t["min"],',
        tests=[],
    ),
    # The configured metrics.mahalanobis_reg is ignored; the Gaussians always use the default regularisation.
    dict(
        id="a-cb-reg-dropped",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="gauss = fit_class_gaussians(train.z, train.pred, train.y, num_classes, reg_covar=reg)",
        replacement="gauss = fit_class_gaussians(train.z, train.pred, train.y, num_classes)",
        tests=[],
    ),
    # deepfool_rho averages only over fooled images instead of all sampled images.
    dict(
        id="a-cb-rho-fooled-only",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"deepfool_rho": ratio.mean().item(),',
        replacement='"deepfool_rho": ratio[fooled].mean().item(),',
        tests=[],
    ),
    # The Mahalanobis FPR@95 reported is the max-softmax one.
    dict(
        id="a-cb-fpr95-from-msp",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"mahalanobis_fpr95": maha["fpr_at_95_tpr"],',
        replacement='"mahalanobis_fpr95": msp["fpr_at_95_tpr"],',
        tests=[],
    ),
    # deepfool_rho_correct is averaged over images whose adversarial (not clean) prediction is correct, i.e. mostly
    # the unfooled ones.
    dict(
        id="a-cb-correct-adv-pred",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='correct, fooled = (out["orig_pred"] == y), out["fooled"]',
        replacement='correct, fooled = (out["adv_pred"] == y), out["fooled"]',
        tests=[],
    ),
    # An explicit bf16 choice (e.g. from evaluate) is ignored; latents are forwarded in whatever precision the
    # attached trainer says.
    dict(
        id="a-latents-bf16-arg-ignored",
        category="metric math",
        file="binary_encoding/callbacks/latents.py",
        original="bf16 = _autocast_bf16(module) if bf16 is None else bf16",
        replacement="bf16 = _autocast_bf16(module)",
        tests=[],
    ),
    # --- config/CLI ---
    # lr=0 passes the settings check, so a run that can never learn trains for hours instead of being refused.
    dict(
        id="b-lr-zero-accepted",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='"lr": Num("AdamW learning rate, constant for the whole run", gt=0),',
        replacement='"lr": Num("AdamW learning rate, constant for the whole run", ge=0),',
        tests=[],
    ),
    # data.test_fraction=1 is accepted instead of refused in one line, leaving no training data.
    dict(
        id="b-test-fraction-one-accepted",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='"stratified test fraction held out (data sets without a test split)", gt=0, lt=1)',
        replacement='"stratified test fraction held out (data sets without a test split)", gt=0, le=1)',
        tests=[],
    ),
    # An even ResNet1d kernel size is no longer refused by the settings check.
    dict(
        id="b-even-kernel-accepted",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='"backbone.kernel": Int("ResNet1d kernel size", ge=1, odd=True),',
        replacement='"backbone.kernel": Int("ResNet1d kernel size", ge=1),',
        tests=[],
    ),
    # A mandatory `???` value is treated as absent, so the 'is needed here: add key=...' error never fires and the
    # run fails later.
    dict(
        id="b-missing-value-passes",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="if last not in node.keys():",
        replacement="if last not in node:",
        tests=[],
    ),
    # A sweep over valid group choices (head=binenc,linpen) is rejected as an unknown choice before any job runs.
    dict(
        id="b-sweep-choice-false-error",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="values = list(o.sweep_string_iterator()) if o.is_sweep_override() else o.value()",
        replacement="values = o.value()",
        tests=[],
    ),
    # head=linpen with head.gamma0=0.01 is accepted, silently training a baseline with the gamma term.
    dict(
        id="b-baseline-gamma-threshold",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="if cfg.head.name in WITHOUT_GAMMA and cfg.head.gamma0 != 0:",
        replacement="if cfg.head.name in WITHOUT_GAMMA and cfg.head.gamma0 > 1:",
        tests=[],
    ),
    # trainer.devices=2 with the default strategy=auto counts as 1 device, so the job does not launch its own DDP
    # ranks.
    dict(
        id="b-num-devices-auto-strategy",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='if str(t.strategy) not in ("auto", "ddp", "ddp_find_unused_parameters_true"):',
        replacement='if str(t.strategy) not in ("ddp", "ddp_find_unused_parameters_true"):',
        tests=[],
    ),
    # runtime.cudnn_benchmark=auto turns benchmarking on for CPU runs and keeps it on for GPU runs with
    # trainer.deterministic=true.
    dict(
        id="b-cudnn-benchmark-or",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="on_gpu(cfg) and not cfg.trainer.deterministic)",
        replacement="on_gpu(cfg) or not cfg.trainer.deterministic)",
        tests=[],
    ),
    # runtime.threads=auto never splits the cores among local_parallel jobs, so N jobs oversubscribe the CPU.
    dict(
        id="b-threads-njobs-key",
        category="config/CLI",
        file="binary_encoding/run/threads.py",
        original='n = HydraConfig.get().launcher.get("n_jobs")',
        replacement='n = HydraConfig.get().launcher.get("jobs")',
        tests=[],
    ),
    # An epoch line is printed on every logging call (after validation too), so epochs appear twice, the first
    # without train loss.
    dict(
        id="b-epoch-line-every-log",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original="if EPOCH_COMPLETE in metrics:",
        replacement='if "epoch" in metrics:',
        tests=[],
    ),
    # The seconds at the end of each epoch line grow cumulatively since the start instead of the epoch's duration.
    dict(
        id="b-epoch-seconds-cumulative",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original="self.emit(self.line(now - self.last_time))\n            self.last_time = now",
        replacement="self.emit(self.line(now - self.last_time))",
        tests=[],
    ),
    # A config error of a single run ends with a traceback (exit 1) instead of one line and exit 2; in a sweep it
    # ends the whole sweep.
    dict(
        id="b-multirun-branch-inverted",
        category="config/CLI",
        file="binary_encoding/train.py",
        original="if HydraConfig.get().mode == RunMode.MULTIRUN:",
        replacement="if HydraConfig.get().mode != RunMode.MULTIRUN:",
        tests=[],
    ),
    # Evaluating a run whose config has keys the defaults lack (debug=fast's limit_*_batches, ++trainer.*) fails on
    # the merge.
    dict(
        id="b-eval-defaults-struct",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="OmegaConf.set_struct(defaults, False)",
        replacement="OmegaConf.set_struct(defaults, True)",
        tests=[],
    ),
    # evaluate given only files that are no checkpoints reports them but exits 0 instead of 2.
    dict(
        id="b-eval-exit-zero-bad-input",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="if failed or bad_input:",
        replacement="if failed:",
        tests=[],
    ),
    # --checkpoint PATH is silently ignored: the run's last.ckpt is evaluated instead.
    dict(
        id="b-eval-checkpoint-ignored",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="path = Path(checkpoint) if checkpoint else files.last_checkpoint(run_dir)",
        replacement="path = files.last_checkpoint(run_dir)",
        tests=[],
    ),
    # Sweep job lines count from 0 ('job 0/4' ... 'job 3/4') instead of 1..N.
    dict(
        id="b-job-line-zero-based",
        category="config/CLI",
        file="binary_encoding/run/sweep_log.py",
        original='log.info("job %d%s: %s", config.hydra.job.num + 1, of,',
        replacement='log.info("job %d%s: %s", config.hydra.job.num, of,',
        tests=[],
    ),
    # A job folder without write permission (EACCES) ends in a traceback instead of the one-line OutputError with
    # exit 2.
    dict(
        id="b-eacces-not-output-error",
        category="config/CLI",
        file="binary_encoding/run/writes.py",
        original="IN_FOLDER = (errno.EROFS, errno.EACCES, errno.EPERM)",
        replacement="IN_FOLDER = (errno.EROFS, errno.EPERM)",
        tests=[],
    ),
    # trainer=ddp runs on one device, so DDP is never actually used.
    dict(
        id="b-ddp-preset-one-device",
        category="config/CLI",
        file="conf/trainer/ddp.yaml",
        original="devices: 2",
        replacement="devices: 1",
        tests=[],
    ),
    # experiment=cifar100_resnet50_d64 trains with width 36 because the included experiment now overrides its own
    # width 64.
    dict(
        id="b-d64-defaults-order",
        category="config/CLI",
        file="conf/experiment/cifar100_resnet50_d64.yaml",
        original="  - cifar100_resnet50\n  - _self_",
        replacement="  - _self_\n  - cifar100_resnet50",
        tests=[],
    ),
    # One learning rate of the paper's grid is 10x too large (not 1e-5*1.5**8), skewing the learning-rate sweep.
    dict(
        id="b-paper-lr-typo",
        category="config/CLI",
        file="conf/sweep/paper_lr.yaml",
        original="0.000170859,0.000256289,",
        replacement="0.000170859,0.00256289,",
        tests=[],
    ),
    # --- report ---
    # The runs' val_fraction is read from a key that does not exist, so runs trained without a validation split
    # (protocol=reference) are no longer selected on test accuracy and are dropped or chosen on the wrong split.
    dict(
        id="c-load-val-fraction-key",
        category="report",
        file="binary_encoding/report/load.py",
        original='data.get("val_fraction")',
        replacement='data.get("val_split")',
        tests=[],
    ),
    # When the protocol varies, the settings label keeps the keys the protocol implies and drops the independently
    # swept ones, so rows with different swept settings are merged into one table row.
    dict(
        id="c-load-follows-inverted",
        category="report",
        file="binary_encoding/report/load.py",
        original='or not _follows(cfgs, "protocol", k)',
        replacement='or _follows(cfgs, "protocol", k)',
        tests=[],
    ),
    # For runs whose summary predates the metric, two-valuedness recovered from latents.npz reports the minimum as
    # the mean and vice versa, so tables and claims show wrong values.
    dict(
        id="c-load-two-valued-swapped",
        category="report",
        file="binary_encoding/report/load.py",
        original='return {"two_valued": t["mean"], "two_valued_min": t["min"]}',
        replacement='return {"two_valued": t["min"], "two_valued_min": t["mean"]}',
        tests=[],
    ),
    # The selection raises 'no finished run has val_acc' as soon as a single finished run lacks a finite selection
    # metric, instead of leaving that run out and reporting on the others.
    dict(
        id="c-select-any-missing-raises",
        category="report",
        file="binary_encoding/report/select.py",
        original='if done["_acc"].isna().all():',
        replacement='if done["_acc"].isna().any():',
        tests=[],
    ),
    # Runs whose config does not state data.val_fraction are treated as having no validation split, so their
    # learning rate is chosen on test accuracy even with --select val.
    dict(
        id="c-select-missing-valfrac-is-test",
        category="report",
        file="binary_encoding/report/select.py",
        original='return pd.to_numeric(runs["val_fraction"], errors="coerce").eq(0)',
        replacement='return pd.to_numeric(runs["val_fraction"], errors="coerce").fillna(0).eq(0)',
        tests=[],
    ),
    # The counts line of results.md reports the number of unfinished runs as the number of failed runs.
    dict(
        id="c-select-counts-failed-key",
        category="report",
        file="binary_encoding/report/select.py",
        original="{c.get('failed', 0)} failed",
        replacement="{c.get('unfinished', 0)} failed",
        tests=[],
    ),
    # Extra --metric columns not in the catalog are looked up as <metric>_pct_mean, which aggregate never writes, so
    # their cells are all shown as '–'.
    dict(
        id="c-tables-extra-metric-scale",
        category="report",
        file="binary_encoding/report/tables.py",
        original='_, s, f = spec.get(m, (m, 1, ".4g"))',
        replacement='_, s, f = spec.get(m, (m, 100, ".4g"))',
        tests=[],
    ),
    # A cell without any finite value (NaN mean) is printed as 'nan (n=0)' instead of '–'.
    dict(
        id="c-tables-nan-cell",
        category="report",
        file="binary_encoding/report/tables.py",
        original="if mean is None or (isinstance(mean, float) and math.isnan(mean)):",
        replacement="if mean is None:",
        tests=[],
    ),
    # Rows without swept settings get an empty ' []' appended to the head name in results.md.
    dict(
        id="c-tables-settings-empty",
        category="report",
        file="binary_encoding/report/tables.py",
        original='if r.get("settings"):',
        replacement='if r.get("settings") is not None:',
        tests=[],
    ),
    # Factor claims (NC1, DeepFool rho) report the arithmetic mean and a linear interval of the factors instead of
    # the geometric mean and log-scale interval.
    dict(
        id="c-claims-ratio-arith-mean",
        category="report",
        file="binary_encoding/report/claims.py",
        original="mean, low, high = (math.exp(x) for x in interval(toward))",
        replacement="mean, low, high = interval(effects)",
        tests=[],
    ),
    # claims_per_seed.csv, the per-seed markdown and the claims figure show the other head's value as BinEnc's and
    # vice versa.
    dict(
        id="c-claims-per-seed-swapped",
        category="report",
        file="binary_encoding/report/claims.py",
        original='"binenc_value": b[s], "other_value": o[s]',
        replacement='"binenc_value": o[s], "other_value": b[s]',
        tests=[],
    ),
    # A factor below 1 is printed as e.g. '0.5x lower' instead of '2x lower', misstating the size of a reversed
    # effect.
    dict(
        id="c-claims-factor-no-inverse",
        category="report",
        file="binary_encoding/report/claims.py",
        original='else f"{1 / e:.3g}x {words[1]}"',
        replacement='else f"{e:.3g}x {words[1]}"',
        tests=[],
    ),
    # In a sweep over several backbones of one data set, each backbone's per-seed claims section also lists the
    # other backbones' seeds.
    dict(
        id="c-claims-per-seed-mixes-backbones",
        category="report",
        file="binary_encoding/report/claims.py",
        original='ps = per_seed[(per_seed["data"] == data) & (per_seed["backbone"] == backbone)]',
        replacement='ps = per_seed[per_seed["data"] == data]',
        tests=[],
    ),
    # With an odd number of claim metrics the claims figure has one panel too few, so the last metric is silently
    # not drawn (and a single metric fails).
    dict(
        id="c-figures-claims-rows-floor",
        category="report",
        file="binary_encoding/report/figures.py",
        original="rows = (len(metrics) + 1) // 2",
        replacement="rows = len(metrics) // 2",
        tests=[],
    ),
    # The PDF versions of the figures are written but not listed among the report's files.
    dict(
        id="c-figures-pdf-not-listed",
        category="report",
        file="binary_encoding/report/figures.py",
        original='written += [p, p.with_suffix(".pdf")]',
        replacement="written += [p]",
        tests=[],
    ),
    # Curves of the same head under different settings (e.g. protocol=reference vs default) are averaged together,
    # so every such curve shows the pooled mean.
    dict(
        id="c-figures-band-ignores-settings",
        category="report",
        file="binary_encoding/report/figures.py",
        original='at = (hist["head"] == head) & (hist["width"] == width) & (hist["settings"] == setting)',
        replacement='at = (hist["head"] == head) & (hist["width"] == width)',
        tests=[],
    ),
    # --ddof 0 is ignored: the table's std is always the sample std while results.md claims the population std.
    dict(
        id="c-cli-ddof-ignored",
        category="report",
        file="binary_encoding/report/cli.py",
        original="table = aggregate(selected, shown, ddof)",
        replacement="table = aggregate(selected, shown)",
        tests=[],
    ),
    # all_runs.csv holds only the selected runs and selected_runs.csv holds every finished run.
    dict(
        id="c-cli-csv-names-swapped",
        category="report",
        file="binary_encoding/report/cli.py",
        original='(("all_runs.csv", done), ("selected_runs.csv", selected)',
        replacement='(("all_runs.csv", selected), ("selected_runs.csv", done)',
        tests=[],
    ),
    # With --select test, the jobs-left-out list is computed against val_acc, naming wrong jobs (and missing those
    # without test_acc).
    dict(
        id="c-cli-left-out-default-split",
        category="report",
        file="binary_encoding/report/cli.py",
        original="dropped = left_out(runs, select)",
        replacement="dropped = left_out(runs)",
        tests=[],
    ),
    # --metric msp_fpr95,nc4 is taken as one unknown column name instead of two extra columns.
    dict(
        id="c-cli-metric-split-space",
        category="report",
        file="binary_encoding/report/cli.py",
        original='for m in s.split(",") if m.strip()',
        replacement='for m in s.split(" ") if m.strip()',
        tests=[],
    ),
    # --- records and resume ---
    # A finished run asked for more epochs is skipped and returns its old summary instead of training on.
    dict(
        id="b-trains-on-returns-stale",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="if _trains_on(cfg, out, summary):\n        return None",
        replacement="if _trains_on(cfg, out, summary):\n        return summary",
        tests=[],
    ),
    # Training on a finished run deletes its earlier summary instead of keeping it as summary.json.stale.
    dict(
        id="b-train-on-deletes-summary",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="(out / files.SUMMARY).replace(out / files.STALE_SUMMARY)",
        replacement="(out / files.SUMMARY).unlink()",
        tests=[],
    ),
    # A job stopped by SIGTERM/Ctrl-C (Terminated, a SystemExit) leaves no failed.json, so the recap shows it as
    # unfinished with no reason.
    dict(
        id="b-failed-json-not-on-stop",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="except BaseException as err:",
        replacement="except Exception as err:",
        tests=[],
    ),
    # The printed resume command of a run started with output_dir= repeats output_dir, which Hydra refuses when
    # pasted.
    dict(
        id="b-resume-hint-dup-output-dir",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original='args = [a for a in hc.overrides.task if not a.startswith("output_dir=")]',
        replacement="args = list(hc.overrides.task)",
        tests=[],
    ),
    # Acquiring job.lock always succeeds, so a second process trains in a folder a live job holds.
    dict(
        id="b-lock-no-excl",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644",
        replacement="os.O_WRONLY | os.O_CREAT, 0o644",
        tests=[],
    ),
    # A live holder owned by another user is taken for dead and its folder lock is taken over.
    dict(
        id="b-lock-other-user-dead",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="except PermissionError:\n        pass  # alive, another user's",
        replacement="except PermissionError:\n        return False",
        tests=[],
    ),
    # A holder on another host silent for only 5 minutes is taken for dead, letting two nodes train in one folder.
    dict(
        id="b-lock-stale-too-soon",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="STALE_AFTER_S = 15 * 60.0",
        replacement="STALE_AFTER_S = 5 * 60.0",
        tests=[],
    ),
    # runtime.* switches (threads, compile) now define a run: resuming with another runtime.threads is refused and
    # summaries stop matching.
    dict(
        id="b-runtime-defines-run",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original='"logger", "runtime.", "callbacks.",',
        replacement='"logger", "callbacks.",',
        tests=[],
    ),
    # A data.root=NAME override without a slash goes into the job folder name raw instead of as name+hash of its
    # absolute path.
    dict(
        id="b-root-not-path-key",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original='PATH_KEYS = ("root", "dir", "path", "dirpath", "file")',
        replacement='PATH_KEYS = ("dir", "path", "dirpath", "file")',
        tests=[],
    ),
    # W&B group names are cut at 240 bytes instead of W&B's 128-character limit.
    dict(
        id="b-group-name-limit",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original="if settings else sweep, GROUP_CHARS)",
        replacement="if settings else sweep, NAME_BYTES)",
        tests=[],
    ),
    # summary.json records the backbone name under 'head' and the head name under 'backbone'.
    dict(
        id="b-summary-head-backbone-swap",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original='"head", "backbone", "data", "seed",',
        replacement='"backbone", "head", "data", "seed",',
        tests=[],
    ),
    # The summary's checkpoint fingerprint is always null, so a summary left from another checkpoint still counts.
    dict(
        id="b-summary-no-ckpt-fingerprint",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original="CHECKPOINT_FINGERPRINT: checkpoint_fingerprint(files.last_checkpoint(run_dir)),",
        replacement="CHECKPOINT_FINGERPRINT: checkpoint_fingerprint(run_dir),",
        tests=[],
    ),
    # Untracked files mark the recorded code version dirty.
    dict(
        id="b-version-untracked-dirty",
        category="records and resume",
        file="binary_encoding/record/version.py",
        original='"status", "--porcelain", "-uno"]',
        replacement='"status", "--porcelain"]',
        tests=[],
    ),
    # logger.mode=auto logs offline for logged-in users and tries online without credentials.
    dict(
        id="b-wandb-auto-mode-swap",
        category="records and resume",
        file="binary_encoding/record/wandb_run.py",
        original='("online" if wandb_logged_in() else "offline")',
        replacement='("offline" if wandb_logged_in() else "online")',
        tests=[],
    ),
    # The head is missing from a run's W&B tags.
    dict(
        id="b-wandb-tag-head-lost",
        category="records and resume",
        file="binary_encoding/record/wandb_run.py",
        original='(run_config.get("head") or {}).get("name"),',
        replacement='(run_config.get("backbone") or {}).get("name"),',
        tests=[],
    ),
    # With metrics.hist_dims above the latent width (default 8 vs width 4) the W&B pictures raise and W&B is turned
    # off for the job.
    dict(
        id="b-wandb-hist-dims-overrun",
        category="records and resume",
        file="binary_encoding/record/wandb_media.py",
        original="for j in range(min(hist_dims, zn.shape[1]))}",
        replacement="for j in range(hist_dims)}",
        tests=[],
    ),
    # wandb_id.txt is never written, so a resumed or requeued job starts a new W&B run instead of continuing its
    # own.
    dict(
        id="b-wandb-id-not-kept",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original="        run_id = uuid.uuid4().hex[:12]\n        write_atomic(id_file, run_id)",
        replacement="        run_id = uuid.uuid4().hex[:12]",
        tests=[],
    ),
    # Job folders are taken to be their .hydra subfolders, so the recap finds no summary and shows every job as
    # unfinished.
    dict(
        id="b-recap-hydra-subdir-folder",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="tuple(OmegaConf.load(f)): f.parent.parent for f in",
        replacement="tuple(OmegaConf.load(f)): f.parent for f in",
        tests=[],
    ),
    # A refused job is noted under the next job's number, so the recap marks the wrong job as refused.
    dict(
        id="b-refused-note-off-by-one",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="(notes / str(config.hydra.job.num)).write_text(",
        replacement="(notes / str(config.hydra.job.num + 1)).write_text(",
        tests=[],
    ),
    # Each rerun of a sweep gets a new folder, so finished jobs are not skipped and cut-off jobs do not resume.
    dict(
        id="b-sweep-dir-timestamped",
        category="records and resume",
        file="conf/config.yaml",
        original="dir: multirun/${name}\n",
        replacement="dir: multirun/${name}/${now:%Y-%m-%d_%H-%M-%S}\n",
        tests=[],
    ),
    # --- training semantics ---
    # The loss is NLL on raw logits (no log-softmax): it is unbounded below, the model pushes logits to infinity and
    # every logged CE is wrong.
    dict(
        id="c-module-nll-loss",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="ce = F.cross_entropy(logits.float(), y)",
        replacement="ce = F.nll_loss(logits.float(), y)",
        tests=[],
    ),
    # The first non-finite step is recorded as the batch index within the epoch, so the NonFiniteLossError names the
    # wrong step after the first epoch.
    dict(
        id="c-module-bad-step-batch-idx",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="self._account(logits, y, ce, quad, loss, self.global_step)",
        replacement="self._account(logits, y, ce, quad, loss, batch_idx)",
        tests=[],
    ),
    # val/ce and test/ce include the gamma penalty for BinEnc, so its cross-entropy curves, summary and lr tie-break
    # are inflated.
    dict(
        id="c-module-eval-ce-with-penalty",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original='self.log(f"{split}/ce", ce, on_epoch=True',
        replacement='self.log(f"{split}/ce", ce + self.gamma * quad, on_epoch=True',
        tests=[],
    ),
    # With cuda_graphs, the last partial batch is fed to the graph captured for full batches (shape mismatch)
    # instead of running eagerly.
    dict(
        id="c-module-graph-any-shape",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="return replay if x.shape == shape else None",
        replacement="return replay",
        tests=[],
    ),
    # The head runs under autocast (bf16 on CPU) instead of fp32, so latents and logits lose precision and
    # NC1/Mahalanobis measure rounding noise.
    dict(
        id="c-heads-autocast-on",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original="with torch.autocast(h.device.type, enabled=False):",
        replacement="with torch.autocast(h.device.type):",
        tests=[],
    ),
    # An MLP built without hidden widths has one hidden layer instead of two.
    dict(
        id="c-backbones-mlp-default-hidden",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="hidden: Sequence[int] = (256, 256)",
        replacement="hidden: Sequence[int] = (256,)",
        tests=[],
    ),
    # BasicBlock1d applies the activation before adding the shortcut instead of after, changing every ResNet1d's
    # outputs.
    dict(
        id="c-resnet1d-act-before-add",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="return self.act(out + self.shortcut(x))",
        replacement="return self.act(out) + self.shortcut(x)",
        tests=[],
    ),
    # The CNN1d's third convolution has stride 1 instead of 2, so the feature vector is twice as long (channels x 10
    # at length 40) as the MNIST-1D paper's model.
    dict(
        id="c-resnet1d-cnn-last-stride",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original=(
            "            nn.Conv1d(channels, channels, 3, 2, 1),\n            self.act(),\n            nn.Flatten(),"
        ),
        replacement=(
            "            nn.Conv1d(channels, channels, 3, 1, 1),\n            self.act(),\n            nn.Flatten(),"
        ),
        tests=[],
    ),
    # Optimizer state created by the warm-up calls (Adam moments, step count) is kept, so the first graphed step
    # starts from two warm-up steps' state instead of none.
    dict(
        id="c-stepgraph-no-zero-new-state",
        category="training semantics",
        file="binary_encoding/model/step_graph.py",
        original="                v.zero_()",
        replacement="                pass",
        tests=[],
    ),
    # Resuming with the same gamma schedule warns that it changed, and resuming with a different one is silent.
    dict(
        id="c-gamma-resume-warn-inverted",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="if saved != (self.gamma0, self.factor, self.step, self.gamma_max):",
        replacement="if saved == (self.gamma0, self.factor, self.step, self.gamma_max):",
        tests=[],
    ),
    # A GammaScheduler built without gamma_max is capped at 10 instead of uncapped.
    dict(
        id="c-gamma-default-cap",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="gamma_max: float | None = None):",
        replacement="gamma_max: float | None = 10.0):",
        tests=[],
    ),
    # A fit that took no optimizer step (e.g. no training batches) writes a summary of an untrained model instead of
    # failing.
    dict(
        id="c-fit-no-check-trained",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="        settings.check_trained(trainer)  # no optimizer step: no summary, the job failed\n",
        replacement="",
        tests=[],
    ),
    # The resume checkpoint is ignored: a resumed job trains again from epoch 0 with fresh weights.
    dict(
        id="c-fit-no-resume",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="trainer.fit(module, dm, ckpt_path=ckpt_path)",
        replacement="trainer.fit(module, dm)",
        tests=[],
    ),
    # BinEnc's gamma schedule starts ten times too high, reaching the cap far earlier.
    dict(
        id="c-conf-binenc-gamma0",
        category="training semantics",
        file="conf/head/binenc.yaml",
        original="gamma0: 0.01",
        replacement="gamma0: 0.1",
        tests=[],
    ),
    # BinEnc's gamma grows only every second epoch, half as fast as intended.
    dict(
        id="c-conf-binenc-gamma-step",
        category="training semantics",
        file="conf/head/binenc.yaml",
        original="gamma_step: 1",
        replacement="gamma_step: 2",
        tests=[],
    ),
    # LinPen gets a gamma * mean(z**2) penalty although it is meant to be trained with plain cross-entropy.
    dict(
        id="c-conf-linpen-gamma0",
        category="training semantics",
        file="conf/head/linpen.yaml",
        original="gamma0: 0.0",
        replacement="gamma0: 0.01",
        tests=[],
    ),
    # NonlinPen's penultimate activation is always ReLU instead of the backbone's activation (SiLU by default).
    dict(
        id="c-conf-nonlinpen-linear",
        category="training semantics",
        file="conf/head/nonlinpen.yaml",
        original="act: ${backbone.act}",
        replacement="act: relu",
        tests=[],
    ),
    # backbone=resnet50 builds a ResNet34 (basic blocks) instead of a bottleneck ResNet50.
    dict(
        id="c-conf-resnet50-basic",
        category="training semantics",
        file="conf/backbone/resnet50.yaml",
        original="block: bottleneck",
        replacement="block: basic",
        tests=[],
    ),
    # The digits MLP has one hidden layer instead of two.
    dict(
        id="c-conf-mlp-one-layer",
        category="training semantics",
        file="conf/backbone/mlp.yaml",
        original="hidden: [256, 256]",
        replacement="hidden: [256]",
        tests=[],
    ),
    # The gamma scheduler ignores head.gamma_max, so BinEnc's gamma grows uncapped and digits runs collapse.
    dict(
        id="c-conf-callbacks-gamma-uncapped",
        category="training semantics",
        file="conf/callbacks/default.yaml",
        original="gamma_max: ${head.gamma_max}",
        replacement="gamma_max: null",
        tests=[],
    ),
    # --- data pipeline ---
    # The validation split is seeded by the run seed (and shuffling/augmentation by split_seed), so runs with
    # different seeds validate on different images.
    dict(
        id="a-base-seeds-swapped",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed",
        replacement="self.val_fraction, self.split_seed, self.seed = val_fraction, seed, split_seed",
        tests=[],
    ),
    # Normalization subtracts the mean after dividing by the std, so inputs are not zero-mean/unit-variance.
    dict(
        id="a-base-normalize-order",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="return (x.float() - mean) / std",
        replacement="return x.float() / std - mean",
        tests=[],
    ),
    # Training batches are no longer normalized while evaluation batches are, so the model trains and evaluates on
    # differently scaled inputs.
    dict(
        id="a-base-train-unnormalized",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="return self.normalize(x), y",
        replacement="return x.float(), y",
        tests=[],
    ),
    # The augmentation generator no longer depends on the epoch: a resumed run draws different augmentations from
    # the uninterrupted one.
    dict(
        id="a-base-aug-epoch-zero",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="epoch = self.trainer.current_epoch if self.trainer is not None else 0",
        replacement="epoch = 0",
        tests=[],
    ),
    # Indices are cut into batch_size batches instead of batches of batch_size, so batch sizes and step counts are
    # wrong.
    dict(
        id="a-sampler-chunk",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="for chunk in idx.split(self.batch_size):",
        replacement="for chunk in idx.chunk(self.batch_size):",
        tests=[],
    ),
    # Training always drops world samples of each epoch's permutation, even when n divides evenly (one sample per
    # epoch on a single process).
    dict(
        id="a-sampler-tail-world",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="order = order[: self.n - self.n % self.world]",
        replacement="order = order[: self.n - self.world]",
        tests=[],
    ),
    # Every batch of the augmented view uses the first draws instead of its samples' draws, so the view depends on
    # batching and sharding.
    dict(
        id="a-augmented-view-first-draws",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original="draws = [d[idx.to(d.device)].to(self.x.device) if d is not None else None for d in self.draws]",
        replacement="draws = [d[: len(idx)].to(self.x.device) if d is not None else None for d in self.draws]",
        tests=[],
    ),
    # digits trains on the 20% held-out part and tests on the other 80%.
    dict(
        id="a-digits-train-test-swapped",
        category="data pipeline",
        file="binary_encoding/data/digits.py",
        original="return x[tr], y[tr], x[te], y[te]",
        replacement="return x[te], y[te], x[tr], y[tr]",
        tests=[],
    ),
    # data.generator overrides are ignored; the published set is always built.
    dict(
        id="a-mnist1d-overrides-ignored",
        category="data pipeline",
        file="binary_encoding/data/mnist1d.py",
        original="d = generate(**self.generator)",
        replacement="d = generate()",
        tests=[],
    ),
    # CIFAR is loaded with the test batch as the training set and the training batches as the test set.
    dict(
        id="a-cifar-train-test-swapped",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original="self.prepare_data()\n        _, train, test, _ = self.layout[self.name]",
        replacement="self.prepare_data()\n        _, test, train, _ = self.layout[self.name]",
        tests=[],
    ),
    # With skip_unreadable, an unreadable image still adds its label, so every later image gets a shifted label (or
    # the arrays mismatch).
    dict(
        id="a-imagefolder-label-misalign",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="images.append(ds[i][0].numpy())\n                targets.append(target)",
        replacement="targets.append(target)\n                images.append(ds[i][0].numpy())",
        tests=[],
    ),
    # A file reached twice through a symlink is read twice (and one shared between classes is not refused).
    dict(
        id="a-imagefolder-realpath-dropped",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="file = os.path.realpath(path)",
        replacement="file = path",
        tests=[],
    ),
    # Images downscaled to image_size lose antialiasing (aliased pixel values), so the stored data differ from
    # torchvision's antialiased resize.
    dict(
        id="a-imagefolder-no-antialias",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="v2.Resize((self.image_size, self.image_size), antialias=True)",
        replacement="v2.Resize((self.image_size, self.image_size), antialias=False)",
        tests=[],
    ),
    # A symlinked folder into another class is no longer skipped, so its images are labelled twice (error) while
    # folders above other classes are skipped.
    dict(
        id="a-imagefolder-inside-swapped",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="any(_inside(here, o) for o in others)",
        replacement="any(_inside(o, here) for o in others)",
        tests=[],
    ),
    # data=cifar100 loads CIFAR-10.
    dict(
        id="a-yaml-cifar100-name",
        category="data pipeline",
        file="conf/data/cifar100.yaml",
        original="name: cifar100",
        replacement="name: cifar10",
        tests=[],
    ),
    # CIFAR-10 random crops use 2 px padding instead of the paper's 4.
    dict(
        id="a-yaml-cifar10-pad",
        category="data pipeline",
        file="conf/data/cifar10.yaml",
        original="pad: 4",
        replacement="pad: 2",
        tests=[],
    ),
    # CIFAR-10 training loses the paper's random horizontal flips.
    dict(
        id="a-yaml-cifar10-flip",
        category="data pipeline",
        file="conf/data/cifar10.yaml",
        original="flip: true",
        replacement="flip: false",
        tests=[],
    ),
    # User image folders are loaded as grayscale by default.
    dict(
        id="a-yaml-imagefolder-channels",
        category="data pipeline",
        file="conf/data/imagefolder.yaml",
        original="channels: 3",
        replacement="channels: 1",
        tests=[],
    ),
    # User images are resized to 28x28 instead of 32x32 by default.
    dict(
        id="a-yaml-imagefolder-size",
        category="data pipeline",
        file="conf/data/imagefolder.yaml",
        original="image_size: 32",
        replacement="image_size: 28",
        tests=[],
    ),
    # MNIST-1D holds out 20% of the training signals for validation instead of 10%.
    dict(
        id="a-yaml-mnist1d-valfrac",
        category="data pipeline",
        file="conf/data/mnist1d.yaml",
        original="val_fraction: 0.1",
        replacement="val_fraction: 0.2",
        tests=[],
    ),
]

# The tests written after the first pass for the mutants it left (`--after` runs them first): see
# docs/testing.md, "The eighth list".
AFTER = {
    "a-cb-rho-fooled-only": [
        "tests/test_metrics_lines.py::"
        "test_robustness_attacks_every_test_image_when_fewer_than_asked_and_has_no_correct_ratio_without_correct"
    ],
    "c-claims-per-seed-mixes-backbones": [
        "tests/test_claims.py::test_each_backbones_per_seed_table_holds_its_own_runs_only"
    ],
    "c-figures-pdf-not-listed": ["tests/test_report.py::test_main_writes_tables_and_figures"],
    "b-lock-other-user-dead": [
        "tests/test_records_lines.py::"
        "test_a_lock_held_by_another_users_live_process_is_alive_and_judged_by_its_start_time"
    ],
    "a-cifar-train-test-swapped": [
        "tests/test_data_values.py::test_cifar_reads_its_training_files_as_train_and_its_test_file_as_test_in_order"
    ],
    "c-conf-nonlinpen-linear": [
        "tests/test_config_values.py::test_each_head_is_the_layer_and_schedule_of_the_papers_table"
    ],
    "a-imagefolder-inside-swapped": [
        "tests/test_data_values.py::"
        "test_image_listing_is_torchvisions_and_a_link_into_another_class_or_to_a_file_read_is_skipped"
    ],
}
