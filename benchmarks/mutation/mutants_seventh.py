"""A seventh list of plausible one-line bugs, for `python -m benchmarks.mutation.run --list seventh`
(docs/testing.md, "Mutation audit"): 120 mutants, 20 per category, written from the package source and its
configs alone (binary_encoding/, conf/) with the tests unopened, by three writers: the second one's ids start
with "x-"; the third one's ("y-") replace those of the second on a line the first had already taken. None
touches a line that a mutant of the six earlier lists changed. Same format: `original` must occur exactly
once in `file`, and is replaced by `replacement`. `tests` is left empty: the runner picks the tests that
execute the mutated line.
"""

MUTANTS = [
    # --- metric math ---
    # Classes never predicted are no longer skipped in encoding_agreement, so 0/0 makes the per-dimension agreement
    # NaN whenever some class gets no prediction.
    dict(
        id="agreement-absent-class-nan",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="present = count > 0\n    q = pos[present]",
        replacement="present = count >= 0\n    q = pos[present]",
        tests=[],
    ),
    # The per-class modal code count becomes the class size, so joint-code agreement is always 1.0 regardless of how
    # scattered the codes are.
    dict(
        id="code-mode-count-sum",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original='mode_count.scatter_reduce_(0, pair_class, pair_counts, reduce="amax")',
        replacement='mode_count.scatter_reduce_(0, pair_class, pair_counts, reduce="sum")',
        tests=[],
    ),
    # skipped_classes counts only classes with no sample, not those with a single sample that NC1 also leaves out.
    dict(
        id="nc-skipped-only-absent",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original='out: dict = {"skipped_classes": c_all - n_keep, "num_classes": n_keep}',
        replacement='out: dict = {"skipped_classes": c_all - int(present.sum()), "num_classes": n_keep}',
        tests=[],
    ),
    # A constant latent dimension keeps std 0, so standardization divides by zero and the Mahalanobis fit/distances
    # become NaN/inf.
    dict(
        id="maha-std-zero-dims",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="std = torch.where(std > 0, std, torch.ones_like(std))",
        replacement="std = torch.where(std >= 0, std, torch.ones_like(std))",
        tests=[],
    ),
    # Errors of a tied block are counted before the block as well as inside it, inflating AURC (values can exceed
    # the true risk and even 1).
    dict(
        id="aurc-cum-before-includes-block",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="cum_before = torch.cumsum(group_err, 0) - group_err",
        replacement="cum_before = torch.cumsum(group_err, 0)",
        tests=[],
    ),
    # With no misclassified (or no correct) samples quantile_sum_auroc no longer returns NaN but crashes in
    # np.quantile on an empty array (or returns 0).
    dict(
        id="quantile-auroc-empty-and",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="if sc.size == 0 or sw.size == 0:",
        replacement="if sc.size == 0 and sw.size == 0:",
        tests=[],
    ),
    # The per-epoch compute selects only metrics the module logs itself, so the callback no longer computes
    # binarity/agreement/NC metrics per epoch (and computes val/acc twice).
    dict(
        id="catalog-by-module-inverted",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original="split in m.splits and split not in m.by_module",
        replacement="split in m.splits and split in m.by_module",
        tests=[],
    ),
    # When deepfool_samples exceeds the test split size the summary reports the requested count instead of the
    # number of images actually attacked.
    dict(
        id="deepfool-images-requested",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"deepfool_images": int(k),',
        replacement='"deepfool_images": int(st.deepfool_samples),',
        tests=[],
    ),
    # With fewer classes than num_candidates (default 10), topk is asked for more entries than logits exist and
    # DeepFool raises instead of using all classes.
    dict(
        id="deepfool-candidates-no-cap",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="k = num_classes if num_candidates is None else min(int(num_candidates), num_classes)",
        replacement="k = num_classes if num_candidates is None else int(num_candidates)",
        tests=[],
    ),
    # train_abs_z becomes |mean z| (near 0 for symmetric codes) instead of mean |z|, so healthy binenc runs look
    # collapsed to the diverged hint.
    dict(
        id="train-abs-z-mean-abs",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='results["train_abs_z"] = train.z.abs().mean().item()',
        replacement='results["train_abs_z"] = train.z.mean().abs().item()',
        tests=[],
    ),
    # NC4 reports the share of samples whose nearest class mean AGREES with the prediction (1 - the true value).
    dict(
        id="x-nc4-equal-pred",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original='out["nc4"] = (nearest != pred.detach()',
        replacement='out["nc4"] = (nearest == pred.detach()',
        tests=[],
    ),
    # With exactly two (present) classes the NC2 metrics equinorm/equiangular/maxangle (and their w_ versions) come
    # back as None instead of values.
    dict(
        id="x-nc2-three-classes",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="if c < 2:",
        replacement="if c < 3:",
        tests=[],
    ),
    # top_codes_fraction is divided by the number of distinct codes instead of the number of samples, so it is no
    # longer a fraction in [0, 1].
    dict(
        id="x-top-codes-by-ncodes",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original='"top_codes_fraction": top.item() / n,',
        replacement='"top_codes_fraction": top.item() / n_codes,',
        tests=[],
    ),
    # The FPR at 95% TPR threshold is taken one correct sample too far down, accepting more errors (a higher
    # fpr_at_95_tpr) than sklearn's roc_curve reading.
    dict(
        id="x-fpr95-threshold-offbyone",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="thr = pos_sorted[k - 1]",
        replacement="thr = pos_sorted[min(k, n_pos - 1)]",
        tests=[],
    ),
    # Samples predicted as a skipped class get distance 0 (ranked most confident) instead of +inf, changing the
    # Mahalanobis AUROC/AURC whenever a class is skipped.
    dict(
        id="x-maha-skipped-zero",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="out[~gauss.valid[pred]] = math.inf",
        replacement="out[~gauss.valid[pred]] = 0.0",
        tests=[],
    ),
    # Class validity counts every training sample predicted as the class, not only the correctly classified ones, so
    # a class with < min_count correct samples is no longer skipped (and n_skipped is wrong).
    dict(
        id="x-gauss-counts-all-preds",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="counts = torch.bincount(pred[correct], minlength=num_classes)[:num_classes]",
        replacement="counts = torch.bincount(pred, minlength=num_classes)[:num_classes]",
        tests=[],
    ),
    # AURC divides the expected errors among the k most confident by N instead of k, so it reports a much smaller
    # risk area than the risk-coverage curve defines.
    dict(
        id="y-aurc-divides-by-n",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="aurc = float((exp_err / pos).mean())",
        replacement="aurc = float((exp_err / n).mean())",
        tests=[],
    ),
    # NC3 averages the squared entries of the normalized difference instead of summing them (the squared Frobenius
    # norm), shrinking it by a factor D*C.
    dict(
        id="y-nc3-mean-not-sum",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="- m / m.norm().clamp_min(tiny)).pow(2).sum().item()",
        replacement="- m / m.norm().clamp_min(tiny)).pow(2).mean().item()",
        tests=[],
    ),
    # The total sum of squares is taken around zero instead of the dimension's mean, so the sign R^2 is inflated for
    # any dimension whose mean is not zero.
    dict(
        id="y-two-valued-uncentred-total",
        category="metric math",
        file="binary_encoding/metrics/two_valued.py",
        original="total = (x - x.mean(0)).square().sum(0)",
        replacement="total = x.square().sum(0)",
        tests=[],
    ),
    # The max-softmax uncertainty is passed with the wrong sign, so msp_auroc becomes 1 - AUROC and the MSP
    # AURC/FPR95 rank the most confident samples as least confident.
    dict(
        id="y-msp-score-negated",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="msp = misclassification_scores(max_softmax_score(test.logits), correct)",
        replacement="msp = misclassification_scores(-max_softmax_score(test.logits), correct)",
        tests=[],
    ),
    # --- config/CLI ---
    # Upper bounds declared with lt become inclusive, so data.val_fraction=1 or data.test_fraction=1 pass the
    # settings check.
    dict(
        id="setting-lt-inclusive",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="or (self.lt is not None and v >= self.lt)",
        replacement="or (self.lt is not None and v > self.lt)",
        tests=[],
    ),
    # metrics_every=0 (documented as never) is refused as a config error.
    dict(
        id="metrics-every-zero-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original=(
            '"metrics_every": Int("epochs between latent-geometry passes (0 = never; the last epoch always)", ge=0),'
        ),
        replacement=(
            '"metrics_every": Int("epochs between latent-geometry passes (0 = never; the last epoch always)", ge=1),'
        ),
        tests=[],
    ),
    # runtime.sigterm_grace_s=null (no watchdog) is refused by the settings check.
    dict(
        id="sigterm-grace-null-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='"seconds after SIGTERM before a job that has not stopped is killed (null: never)", gt=0, null=True',
        replacement='"seconds after SIGTERM before a job that has not stopped is killed (null: never)", gt=0',
        tests=[],
    ),
    # channels_last=auto enables NHWC exactly for conv backbones with unsafe strided convs on CPU and disables it on
    # GPUs/safe backbones.
    dict(
        id="channels-last-auto-inverted",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="        return not unsafe\n",
        replacement="        return bool(unsafe)\n",
        tests=[],
    ),
    # trainer.devices=-1 is returned as -1 devices instead of all GPUs (or 1 on CPU), breaking the DDP decision.
    dict(
        id="devices-minus-one-literal",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='if str(d) in ("-1", "auto"):',
        replacement='if str(d) in ("auto",):',
        tests=[],
    ),
    # runtime.threads=0 silently leaves torch's default instead of raising the positive-integer error.
    dict(
        id="threads-zero-not-refused",
        category="config/CLI",
        file="binary_encoding/run/threads.py",
        original="    if setting is None:\n        return None",
        replacement="    if not setting:\n        return None",
        tests=[],
    ),
    # Restoring epoch lines on resume crashes with float('') on metrics.csv rows with empty cells (e.g. epochs
    # without a metric pass).
    dict(
        id="epochlog-restore-empty-cells",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original='self.values = {k: float(v) for k, v in row.items() if v not in (None, "")}',
        replacement="self.values = {k: float(v) for k, v in row.items() if v is not None}",
        tests=[],
    ),
    # Evaluating a run without summary.json prints a spurious 'eval.json will not agree' warning.
    dict(
        id="evaluate-mismatch-no-summary",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="return why if (run_dir / files.SUMMARY).exists() else None",
        replacement="return why",
        tests=[],
    ),
    # protocol=reference no longer computes the train metrics on the seeded augmented view, diverging from the
    # reference setup.
    dict(
        id="reference-protocol-clean-train",
        category="config/CLI",
        file="conf/protocol/reference.yaml",
        original="  train_augmented: true",
        replacement="  train_augmented: false",
        tests=[],
    ),
    # sync_batchnorm=auto resolves to True on CPU too, asking Lightning for SyncBatchNorm where there is none.
    dict(
        id="sync-batchnorm-auto-always",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='kw["sync_batchnorm"] = _auto(kw["sync_batchnorm"], on_gpu(cfg))',
        replacement='kw["sync_batchnorm"] = _auto(kw["sync_batchnorm"], True)',
        tests=[],
    ),
    # Every lower bound becomes strict: seed=0, batch_size=2, metrics_every=0 or trainer.max_epochs=1 are refused as
    # out of range.
    dict(
        id="x-setting-ge-strict",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="(self.ge is not None and v < self.ge)",
        replacement="(self.ge is not None and v <= self.ge)",
        tests=[],
    ),
    # A declared key absent from the composed config (e.g. data.test_fraction for cifar10, backbone.hidden for a
    # ResNet) is checked as null and refused.
    dict(
        id="x-check-absent-keys",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="if present and setting.problem(value):",
        replacement="if setting.problem(value):",
        tests=[],
    ),
    # A fit that made exactly one optimizer step is refused as NotTrained and writes no summary.
    dict(
        id="x-check-trained-one-step",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="if trainer.global_step == 0:",
        replacement="if trainer.global_step <= 1:",
        tests=[],
    ),
    # hydra/launcher=ray_gpu or ray_gpu_packed without the ray plugin installed is no longer reported with the pip
    # hint (only the bare preset names match).
    dict(
        id="x-launcher-prefix-exact",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="if name.startswith(prefix) and not _importable(module):",
        replacement="if name == prefix and not _importable(module):",
        tests=[],
    ),
    # evaluate exits with 1 instead of 2 when the only problems were files that are no checkpoints.
    dict(
        id="x-eval-notckpt-counted-failed",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="bad_input += 1",
        replacement="failed += 1",
        tests=[],
    ),
    # evaluate warns that eval.json will not agree with the summary exactly when the checkpoint IS the one the
    # summary came from, and stays silent for a foreign one.
    dict(
        id="x-eval-mismatch-inverted",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="summarize.checkpoint_fingerprint(checkpoint) != want",
        replacement="summarize.checkpoint_fingerprint(checkpoint) == want",
        tests=[],
    ),
    # rank() returns the world size, so a single process reports rank 1 and is_rank0() is False (no failed.json, no
    # W&B lines).
    dict(
        id="x-rank-is-world",
        category="config/CLI",
        file="binary_encoding/ranks.py",
        original="return rank_world()[0]",
        replacement="return rank_world()[1]",
        tests=[],
    ),
    # The epoch line's values are never cleared between epochs, so values of an earlier epoch (codes, val acc) are
    # printed on lines of epochs that did not log them.
    dict(
        id="x-epochlog-no-reset",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original='if metrics["epoch"] != self.epoch:',
        replacement="if self.epoch is None:",
        tests=[],
    ),
    # The DeepFool sample is seeded by data.split_seed instead of the run's seed, so runs with different seeds
    # attack the same test images.
    dict(
        id="x-conf-deepfool-seed-split",
        category="config/CLI",
        file="conf/callbacks/default.yaml",
        original="seed: ${seed}",
        replacement="seed: ${data.split_seed}",
        tests=[],
    ),
    # check_data no longer notices a split that lacks the highest class labels, so such a config is accepted instead
    # of refused with a ConfigError.
    dict(
        id="y-check-data-no-minlength",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="counts = torch.bincount(dm.y[split].cpu(), minlength=dm.num_classes)",
        replacement="counts = torch.bincount(dm.y[split].cpu())",
        tests=[],
    ),
    # --- report ---
    # Unfinished jobs (e.g. a cut-off attempt with other epochs) take part in finding swept settings, splitting
    # finished runs into extra report rows.
    dict(
        id="settings-from-unfinished",
        category="report",
        file="binary_encoding/report/load.py",
        original='done = runs[runs["status"] == "finished"]',
        replacement='done = runs[runs["status"] != "failed"]',
        tests=[],
    ),
    # An empty metrics.csv (a job killed before its first epoch) raises EmptyDataError and stops the whole report.
    dict(
        id="history-empty-csv-crash",
        category="report",
        file="binary_encoding/report/load.py",
        original="    except pd.errors.EmptyDataError:\n",
        replacement="    except pd.errors.ParserError:\n",
        tests=[],
    ),
    # Rows holding non-numeric values are kept unless their epoch is also missing, so corrupted metrics.csv rows
    # leak into the figures and are not reported.
    dict(
        id="history-bad-epoch-and",
        category="report",
        file="binary_encoding/report/load.py",
        original='bad |= values["epoch"].isna()',
        replacement='bad &= values["epoch"].isna()',
        tests=[],
    ),
    # Extra --metric columns not in the catalog are multiplied by 100 in the table while keeping their unscaled
    # column names.
    dict(
        id="aggregate-extra-metric-scale",
        category="report",
        file="binary_encoding/report/select.py",
        original="* scale.get(m, 1) if m in g",
        replacement="* scale.get(m, 100) if m in g",
        tests=[],
    ),
    # A head outside the paper's four is ranked like binenc and sorted among the first rows instead of last.
    dict(
        id="order-unknown-head-first",
        category="report",
        file="binary_encoding/report/select.py",
        original="rank.get(h, len(rank))",
        replacement="rank.get(h, 0)",
        tests=[],
    ),
    # Percent columns lose their ± std in results.md because the std is looked up without the _pct suffix.
    dict(
        id="table-std-unit-dropped",
        category="report",
        file="binary_encoding/report/tables.py",
        original='r.get(f"{m}{unit}_std")',
        replacement='r.get(f"{m}_std")',
        tests=[],
    ),
    # With exactly two paired seeds the claims' 95% interval is NaN, so a reversed verdict can never be reached and
    # the CI is missing.
    dict(
        id="interval-two-values-nan",
        category="report",
        file="binary_encoding/report/claims.py",
        original="    if len(v) < 2:\n        return mean, math.nan, math.nan",
        replacement="    if len(v) <= 2:\n        return mean, math.nan, math.nan",
        tests=[],
    ),
    # A factor claim whose other head has a zero value (e.g. NC1 or rho of 0) divides by zero / takes log of 0
    # instead of skipping the seed.
    dict(
        id="claims-ratio-other-nonpositive",
        category="report",
        file="binary_encoding/report/claims.py",
        original="seeds = [s for s in seeds if b[s] > 0 and o[s] > 0]",
        replacement="seeds = [s for s in seeds if b[s] > 0]",
        tests=[],
    ),
    # The histogram figure picks the lowest-seed binenc run even when it has no latents.npz, so fig2 is skipped
    # although another seed saved latents.
    dict(
        id="pick-latents-no-exists",
        category="report",
        file="binary_encoding/report/figures.py",
        original='if isinstance(r["path"], str) and (Path(r["path"]) / files.LATENTS).exists():',
        replacement='if isinstance(r["path"], str):',
        tests=[],
    ),
    # head_style hands out the shared style dict, so a figure that sets hollow markers changes every later figure's
    # style for that head.
    dict(
        id="head-style-shared-dict",
        category="report",
        file="binary_encoding/report/style.py",
        original="return dict(HEAD_STYLE[head])",
        replacement="return HEAD_STYLE[head]",
        tests=[],
    ),
    # claims.csv's other_mean repeats BinEnc's mean instead of the other head's.
    dict(
        id="x-claims-other-mean-binenc",
        category="report",
        file="binary_encoding/report/claims.py",
        original='"other_mean": float(np.mean([o[s] for s in seeds]))',
        replacement='"other_mean": float(np.mean([b[s] for s in seeds]))',
        tests=[],
    ),
    # A claim whose mean effect is exactly zero is judged 'holds on the mean only' instead of 'does not hold'.
    dict(
        id="x-verdict-zero-mean-holds",
        category="report",
        file="binary_encoding/report/claims.py",
        original="return MEAN_ONLY if mean > 0 else NOT",
        replacement="return MEAN_ONLY if mean >= 0 else NOT",
        tests=[],
    ),
    # Figures of a pair where only some selected runs used the augmented train view are headed 'train split' instead
    # of 'train split, augmented in part'.
    dict(
        id="x-cli-aug-label-all",
        category="report",
        file="binary_encoding/report/cli.py",
        original="if not aug.any()",
        replacement="if not aug.all()",
        tests=[],
    ),
    # Unfinished jobs' max_epochs enter the 'mixes max_epochs' note, which then fires for a row whose finished runs
    # all agree.
    dict(
        id="x-cli-max-epochs-unfinished",
        category="report",
        file="binary_encoding/report/cli.py",
        original='g = g[g["status"] == "finished"]',
        replacement='g = g[g["status"] != "failed"]',
        tests=[],
    ),
    # When PATH is itself a job folder its run_id becomes '.' instead of the folder's name.
    dict(
        id="x-load-root-job-dot",
        category="report",
        file="binary_encoding/report/load.py",
        original="run_id = str(job.relative_to(root)) if job != root else job.name",
        replacement="run_id = str(job.relative_to(root))",
        tests=[],
    ),
    # Runs without a validation split are looked up by val_acc (which they lack) instead of test_acc, so they are
    # dropped from the selection under --select val.
    dict(
        id="x-select-acc-by-not-on",
        category="report",
        file="binary_encoding/report/select.py",
        original='r.get(f"{on}_acc", np.nan)',
        replacement='r.get(f"{by}_acc", np.nan)',
        tests=[],
    ),
    # fig2 draws two panels from the number of samples instead of the latent width, so a 1-dimensional latent fails
    # (IndexError) and the figure is skipped.
    dict(
        id="x-hist-dims-wrong-axis",
        category="report",
        file="binary_encoding/report/figures.py",
        original="dims = min(2, z.shape[1])",
        replacement="dims = min(2, z.shape[0])",
        tests=[],
    ),
    # left_out always checks val_acc as the selection metric, so with selection on test a finished run lacking
    # val_acc is wrongly listed as left out (and one lacking test_acc is not).
    dict(
        id="y-left-out-ignores-by",
        category="report",
        file="binary_encoding/report/select.py",
        original='done = _selection_values(runs[runs["status"] == "finished"].copy(), by) if len(runs) else runs',
        replacement='done = _selection_values(runs[runs["status"] == "finished"].copy(), "val") if len(runs) else runs',
        tests=[],
    ),
    # read_history treats empty cells as values that are no numbers, so every metrics.csv row with a blank column
    # (e.g. epochs without validation or latent metrics) is dropped and reported as unreadable.
    dict(
        id="y-history-empty-cells-bad",
        category="report",
        file="binary_encoding/report/load.py",
        original='values.isna() & text.ne("") & ',
        replacement="values.isna() & ",
        tests=[],
    ),
    # results.md labels every head with its latent width '(d=...)' even when the table has a single width per head.
    dict(
        id="y-table-width-always",
        category="report",
        file="binary_encoding/report/tables.py",
        original='if multi_width and r["width"] >= 0:',
        replacement='if r["width"] >= 0:',
        tests=[],
    ),
    # --- records and resume ---
    # Each log_metrics call of an epoch replaces the row, so metrics.csv keeps only the last batch of values (e.g.
    # train/loss) and loses val/metric columns.
    dict(
        id="csv-row-reset-each-call",
        category="records and resume",
        file="binary_encoding/record/csv_log.py",
        original='row = self.rows.setdefault(epoch, {"epoch": epoch})',
        replacement='row = self.rows[epoch] = {"epoch": epoch}',
        tests=[],
    ),
    # An empty wandb_id.txt left by a crash yields an empty W&B run id instead of a fresh one.
    dict(
        id="wandb-id-empty-file-reused",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original="    if not run_id:  # none yet",
        replacement="    if not id_file.exists():  # none yet",
        tests=[],
    ),
    # A cut-off or empty summary.json raises JSONDecodeError instead of being reported unreadable and the job
    # retrained.
    dict(
        id="summary-read-cut-json-crash",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original="except (OSError, UnicodeDecodeError, ValueError) as e:",
        replacement="except (OSError, UnicodeDecodeError) as e:",
        tests=[],
    ),
    # A folder or group name of exactly the limit length gets hashed although it fits, renaming such job folders.
    dict(
        id="cut-to-exact-limit",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original="if len(name.encode()) <= limit:",
        replacement="if len(name.encode()) < limit:",
        tests=[],
    ),
    # Committing a held checkpoint renames the old last.ckpt over the temp file, so the new epoch's checkpoint never
    # becomes last.ckpt (or commit fails on the first epoch).
    dict(
        id="ckpt-pending-swapped",
        category="records and resume",
        file="binary_encoding/record/checkpoint_io.py",
        original="self.pending = (files.temp_path(path), path)",
        replacement="self.pending = (path, files.temp_path(path))",
        tests=[],
    ),
    # Changing trainer.max_epochs or metrics.* counts as other settings, so training a finished run on for more
    # epochs is refused.
    dict(
        id="settings-diff-resumable-counted",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="if old.get(k) != new.get(k) and not identity.may_change_on_resume(k)]",
        replacement="if old.get(k) != new.get(k) and identity.defines_run(k)]",
        tests=[],
    ),
    # A lock naming pid 0 is taken as well formed; os.kill(0, 0) then reports it alive and the folder is refused
    # instead of taking over the bogus lock.
    dict(
        id="lock-pid-zero-wellformed",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original='and 0 < h["pid"] < 2**31',
        replacement='and 0 <= h["pid"] < 2**31',
        tests=[],
    ),
    # disarm() leaves _ARMED set: a later arm with the same grace returns True with no watcher, and a second disarm
    # closes the fd again (OSError).
    dict(
        id="watchdog-disarm-no-reset",
        category="records and resume",
        file="binary_encoding/run/watchdog.py",
        original="_, w, proc = _ARMED\n    _ARMED = None",
        replacement="_, w, proc = _ARMED",
        tests=[],
    ),
    # Refused jobs are keyed by strings, so the recap never marks them refused (and stray non-numeric files are no
    # longer ignored).
    dict(
        id="refused-jobs-string-keys",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="found[int(f.name)] = f.read_text().strip()",
        replacement="found[f.name] = f.read_text().strip()",
        tests=[],
    ),
    # Lightning's sys.exit(1) after a Ctrl-C passes through as exit 1 without the interrupted message instead of
    # Terminated(130).
    dict(
        id="ctrl-c-exit-not-terminated",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="if trainer.interrupted and not isinstance(e, Terminated):",
        replacement="if trainer.interrupted and isinstance(e, Terminated):",
        tests=[],
    ),
    # With hold=True the checkpoint stays in last.ckpt.tmp and is never committed to last.ckpt (and hold=False
    # commits a missing temp file).
    dict(
        id="x-ckpt-hold-inverted",
        category="records and resume",
        file="binary_encoding/record/checkpoint_io.py",
        original="if self.hold:",
        replacement="if not self.hold:",
        tests=[],
    ),
    # A rerun no longer removes the earlier attempt's failed.json (and deletes the kept summary.json.stale instead).
    dict(
        id="x-failed-json-not-removed",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="(out / files.FAILED).unlink(missing_ok=True)",
        replacement="(out / files.STALE_SUMMARY).unlink(missing_ok=True)",
        tests=[],
    ),
    # resume=force also deletes the old summary.json and eval.json, as if starting over.
    dict(
        id="x-start-removes-on-force",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original='if str(cfg.get("resume", True)) == "False":',
        replacement='if str(cfg.get("resume", True)) != "True":',
        tests=[],
    ),
    # A job killed with its lock left behind (stale, dead pid) is listed as 'running' in the recap instead of
    # 'unfinished'/'failed'.
    dict(
        id="x-recap-stale-lock-running",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="if (h := lock.holder(folder)) is not None and lock.stale_reason(h) is None:",
        replacement="if (h := lock.holder(folder)) is not None:",
        tests=[],
    ),
    # The write probe checks the parent of an existing output folder instead of the folder itself, so a read-only
    # output_dir under a writable parent passes preflight.
    dict(
        id="x-preflight-skips-target",
        category="records and resume",
        file="binary_encoding/run/writes.py",
        original="[target, *target.parents]",
        replacement="[*target.parents]",
        tests=[],
    ),
    # An explicit ckpt_path from another run also restores epoch lines from this folder's metrics.csv (and reads
    # that foreign checkpoint's epoch).
    dict(
        id="x-restore-any-ckpt",
        category="records and resume",
        file="binary_encoding/run/fit.py",
        original="if ckpt_path == str(files.last_checkpoint(out)):",
        replacement="if ckpt_path is not None:",
        tests=[],
    ),
    # A folder stays marked as held by this process after its block ends, so a later train() on the same folder in
    # the same process runs without taking job.lock at all.
    dict(
        id="y-lock-held-not-forgotten",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="        _HELD.discard(out.resolve())\n        release(out, mine)",
        replacement="        release(out, mine)",
        tests=[],
    ),
    # The sweep recap records summary times in float seconds but compares them with nanoseconds, so jobs that were
    # already finished and skipped are reported as 'finished' instead of 'skipped'.
    dict(
        id="y-sweep-mtime-seconds",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="return {f: (f / files.SUMMARY).stat().st_mtime_ns for f in folders",
        replacement="return {f: (f / files.SUMMARY).stat().st_mtime for f in folders",
        tests=[],
    ),
    # check_same_run compares settings even when there is no checkpoint to resume, so rerunning a job that died
    # before its first checkpoint with a changed setting (e.g. lr) is refused with a ConfigError.
    dict(
        id="y-same-run-check-and",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original="if not files.last_checkpoint(out).exists() or (out / files.SUMMARY).exists():",
        replacement="if not files.last_checkpoint(out).exists() and (out / files.SUMMARY).exists():",
        tests=[],
    ),
    # trainer.log_every_n_steps counts as a run-defining setting: changing it refuses a resume, changes the config
    # fingerprint (invalidating summaries) and splits report rows and W&B groups.
    dict(
        id="y-log-steps-defines-run",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original='"trainer.enable_progress_bar", "trainer.log_every_n_steps", "trainer.accelerator",',
        replacement='"trainer.enable_progress_bar", "trainer.accelerator",',
        tests=[],
    ),
    # --- training semantics ---
    # gamma0 equal to gamma_max triggers the 'gamma stays at gamma_max throughout' warning although the schedule is
    # legitimately constant.
    dict(
        id="gamma-warn-equal-cap",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="if gamma_max is not None and gamma0 > gamma_max:",
        replacement="if gamma_max is not None and gamma0 >= gamma_max:",
        tests=[],
    ),
    # The gamma scheduler's saved state lacks 'factor', so resuming from a checkpoint raises KeyError in
    # load_state_dict.
    dict(
        id="gamma-state-key-renamed",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original='"factor": self.factor,',
        replacement='"gamma_factor": self.factor,',
        tests=[],
    ),
    # Every finite step records itself as the first non-finite step, so training stops with NonFiniteLossError on
    # the first check.
    dict(
        id="bad-step-where-swapped",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="self.bad_step.copy_(torch.where(bad, step, self.bad_step))",
        replacement="self.bad_step.copy_(torch.where(bad, self.bad_step, step))",
        tests=[],
    ),
    # Backbone features in bf16 reach the fp32 head under disabled autocast, raising a dtype mismatch (or losing
    # fp32 latents).
    dict(
        id="head-no-fp32-cast",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original="z = self.penultimate(h.float())",
        replacement="z = self.penultimate(h)",
        tests=[],
    ),
    # A ResNet with a zero-depth stage is accepted silently instead of raising, building a network with a missing
    # stage.
    dict(
        id="resnet-zero-depth-stage",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="any(n <= 0 for n in layers)",
        replacement="any(n < 0 for n in layers)",
        tests=[],
    ),
    # Bottleneck ResNets report planes instead of planes*4 features, so the head's input width mismatches the
    # backbone output (resnet50 crashes).
    dict(
        id="resnet-features-planes",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="        self.num_features = cin\n",
        replacement="        self.num_features = planes\n",
        tests=[],
    ),
    # Buffers (BatchNorm statistics, epoch sums) keep the warm-up steps' updates after capture, so the capturing
    # step is counted several times.
    dict(
        id="step-graph-buffers-not-restored",
        category="training semantics",
        file="binary_encoding/model/step_graph.py",
        original="tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]",
        replacement="tensors = [t for m in modules for t in m.parameters()]",
        tests=[],
    ),
    # summary.json records one epoch more than trained, so a rerun of the same finished job is refused as asking for
    # fewer epochs.
    dict(
        id="summary-epochs-plus-one",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="cfg, trainer.current_epoch, float(module.gamma), metrics.results, seconds, dm.num_classes",
        replacement="cfg, trainer.current_epoch + 1, float(module.gamma), metrics.results, seconds, dm.num_classes",
        tests=[],
    ),
    # train_augmented metrics silently read the clean training split instead of its seeded augmented view.
    dict(
        id="latents-augmented-dropped",
        category="training semantics",
        file="binary_encoding/callbacks/latents.py",
        original="for x, y in datamodule.eval_dataloader(split, augmented):",
        replacement="for x, y in datamodule.eval_dataloader(split):",
        tests=[],
    ),
    # The DDP worker accepts extra command-line arguments and loads the first instead of exiting with its usage
    # line.
    dict(
        id="ddp-worker-extra-args",
        category="training semantics",
        file="binary_encoding/run/ddp_worker.py",
        original="if len(args) != 1:",
        replacement="if len(args) < 1:",
        tests=[],
    ),
    # Under DDP the epoch sums are averaged over ranks, so train/images reports a per-rank count instead of the
    # global one.
    dict(
        id="x-epoch-sums-mean-reduce",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original='reduce_op="sum"',
        replacement='reduce_op="mean"',
        tests=[],
    ),
    # The Bottleneck block applies the activation before adding the shortcut (and again after), changing ResNet50's
    # function.
    dict(
        id="x-bottleneck-act-before-residual",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="out = self.bn3(self.conv3(out))",
        replacement="out = self.act(self.bn3(self.conv3(out)))",
        tests=[],
    ),
    # A [B, C, H, W] input with H > 1 is read as C channels of length H*W instead of C*H channels of length W (shape
    # error against the stem's C*H inputs).
    dict(
        id="x-signal-reshape-axis",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="return x.reshape(x.shape[0], -1, x.shape[-1])",
        replacement="return x.reshape(x.shape[0], x.shape[1], -1)",
        tests=[],
    ),
    # The learning rate and weight decay are swapped: AdamW trains at lr=weight_decay with decay=lr.
    dict(
        id="x-lr-wd-swapped",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="self.num_classes, self.lr, self.weight_decay = num_classes, lr, weight_decay",
        replacement="self.num_classes, self.lr, self.weight_decay = num_classes, weight_decay, lr",
        tests=[],
    ),
    # Extra callbacks passed to train() run before the gamma schedule and metrics callback, so they see the previous
    # epoch's gamma and metric values.
    dict(
        id="x-extra-callbacks-first",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="callbacks = [*built.values(), *extra_callbacks]",
        replacement="callbacks = [*extra_callbacks, *built.values()]",
        tests=[],
    ),
    # LinearHead built without a width has an 8-dimensional latent instead of the documented d=4.
    dict(
        id="x-linearhead-default-width",
        category="training semantics",
        file="binary_encoding/model/heads.py",
        original="width: int = 4):",
        replacement="width: int = 8):",
        tests=[],
    ),
    # The gamma schedule's factor and step are swapped, so with the binenc defaults (factor 1.084, step 1) gamma
    # never grows past gamma0.
    dict(
        id="y-gamma-factor-step-swapped",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original="self.gamma0, self.factor, self.step, self.gamma_max = gamma0, factor, step, gamma_max",
        replacement="self.gamma0, self.factor, self.step, self.gamma_max = gamma0, step, factor, gamma_max",
        tests=[],
    ),
    # Eager (non-graph) training steps skip backward, so no gradients are computed and on CPU the model never learns
    # beyond its weight decay.
    dict(
        id="y-backward-inverted",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="if not self._replayed:\n            super().backward(loss, *args, **kwargs)",
        replacement="if self._replayed:\n            super().backward(loss, *args, **kwargs)",
        tests=[],
    ),
    # ResNet1d pools its features with global max instead of global average pooling, changing the features and
    # gradients of every mnist1d resnet1d run.
    dict(
        id="y-resnet1d-maxpool",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="self.pool = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())",
        replacement="self.pool = nn.Sequential(nn.AdaptiveMaxPool1d(1), nn.Flatten())",
        tests=[],
    ),
    # The bottleneck block drops the activation after its 3x3 convolution, so ResNet50 backbones compute a different
    # (more linear) function than the standard bottleneck.
    dict(
        id="y-bottleneck-no-mid-act",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="out = self.act(self.bn2(self.conv2(out)))",
        replacement="out = self.bn2(self.conv2(out))",
        tests=[],
    ),
    # --- data pipeline ---
    # A data set of exactly half the free device memory is no longer placed on the device.
    dict(
        id="fits-on-device-strict",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="return nbytes <= fraction * free_bytes",
        replacement="return nbytes < fraction * free_bytes",
        tests=[],
    ),
    # The normalization mean is taken per column instead of per channel, so normalize broadcasts to the wrong shape.
    dict(
        id="normalize-mean-wrong-axes",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="self.mean = xf.mean(dim=(0, 2, 3)).float()",
        replacement="self.mean = xf.mean(dim=(0, 1, 2)).float()",
        tests=[],
    ),
    # Under DDP every rank trains with the global batch size, multiplying the effective batch by the world size.
    dict(
        id="ddp-batch-not-split",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="bs = max(1, self.batch_size // world) if train else self.eval_batch_size",
        replacement="bs = self.batch_size if train else self.eval_batch_size",
        tests=[],
    ),
    # The augmentation generator is seeded once and never reseeded per epoch/rank, so a resumed run draws different
    # augmentations and ranks share streams.
    dict(
        id="aug-generator-never-reseeded",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="if self._aug_key != key:",
        replacement="if self._aug_gen is None:",
        tests=[],
    ),
    # len() of a rank's sampler counts batches of the whole split instead of its shard under DDP (and ignores the
    # dropped tail).
    dict(
        id="sampler-len-ignores-shard",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="m = len(self._indices())",
        replacement="m = self.n",
        tests=[],
    ),
    # The row gather keeps only w+pad padded columns, so crops with a horizontal offset above pad index out of
    # range.
    dict(
        id="crop-rows-expand-narrow",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original=".expand(n, c, h, w + 2 * pad)",
        replacement=".expand(n, c, h, w + pad)",
        tests=[],
    ),
    # A file reached twice within one class is refused as in two classes, while one file in two classes is silently
    # read once under the first.
    dict(
        id="imagefolder-owner-inverted",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="if owner[file][1] != c:",
        replacement="if owner[file][1] == c:",
        tests=[],
    ),
    # A test/ folder with differently named class folders of the same count is accepted, mislabelling test images.
    dict(
        id="imagefolder-test-classes-count",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="if classes is not None and ds.classes != classes:",
        replacement="if classes is not None and len(ds.classes) != len(classes):",
        tests=[],
    ),
    # A load() returning test images in another dtype than the training images is accepted instead of raising
    # TypeError.
    dict(
        id="load-dtype-mismatch-accepted",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="x_tr.ndim != 4 or x_te.dtype != x_tr.dtype:",
        replacement="x_tr.ndim != 4:",
        tests=[],
    ),
    # eval_dataloader('val') without a validation split fails with KeyError instead of the unknown-split ValueError.
    dict(
        id="eval-loader-missing-val",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="if split not in self.splits:",
        replacement="if split not in SPLITS:",
        tests=[],
    ),
    # Evaluation passes also drop a final 1-sample batch, so a metric pass misses a sample whenever the split size
    # is 1 mod the eval batch size.
    dict(
        id="x-sampler-eval-skips-single",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="if self.train and len(chunk) < 2:",
        replacement="if len(chunk) < 2:",
        tests=[],
    ),
    # len() of the sampler undercounts a trailing batch of exactly 2 (train) or 1 (eval) samples, disagreeing with
    # iteration.
    dict(
        id="x-sampler-len-offbyone",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="return full + (rest >= (2 if self.train else 1))",
        replacement="return full + (rest > (2 if self.train else 1))",
        tests=[],
    ),
    # The training split is shuffled in the same order every epoch instead of a new seeded permutation per epoch.
    dict(
        id="x-sampler-shuffle-no-epoch",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="manual_seed(self.seed * 1_000_003 + self.epoch)",
        replacement="manual_seed(self.seed * 1_000_003)",
        tests=[],
    ),
    # The augmented view draws crop offsets from the flip flag and flips from the padding, so its crops span 0..2
    # (or none) instead of 0..2*pad.
    dict(
        id="x-view-pad-flip-swapped",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original='draw_augmentation(len(self.y[split]), self.pad, self.flip, "cpu", g)',
        replacement='draw_augmentation(len(self.y[split]), self.flip, self.pad, "cpu", g)',
        tests=[],
    ),
    # report_shared_images counts the training images against themselves, so it warns (with the training count) on
    # every data set even when no test image is a duplicate.
    dict(
        id="x-shared-images-wrong-set",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="digest() in seen for img in test)",
        replacement="digest() in seen for img in train)",
        tests=[],
    ),
    # A test/ folder with other class folders than train/ is no longer refused, and its labels are silently indexed
    # by its own class list.
    dict(
        id="x-imagefolder-test-classes-unchecked",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original='xt, yt, _ = self._read(self.root / "test", classes)',
        replacement='xt, yt, _ = self._read(self.root / "test")',
        tests=[],
    ),
    # CIFAR trains on the 10,000 test images and tests on the 50,000 training images.
    dict(
        id="x-cifar-train-test-swapped",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original="return (*self._read(train), *self._read(test))",
        replacement="return (*self._read(test), *self._read(train))",
        tests=[],
    ),
    # The augmentation generator's key is never stored, so it is re-seeded for every batch and all batches of an
    # epoch draw the same crop offsets and flips.
    dict(
        id="y-aug-key-not-stored",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="            self._aug_key = key\n            self._aug_gen",
        replacement="            self._aug_gen",
        tests=[],
    ),
    # eval_dataloader ignores augmented=True, so metrics.train_augmented (the reference protocol) computes the
    # 'train' metrics on the clean split instead of the seeded augmented view.
    dict(
        id="y-eval-loader-drops-augmented",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="return self._loader(split, train=False, augmented=augmented)",
        replacement="return self._loader(split, train=False)",
        tests=[],
    ),
    # Unreadable images are silently left out by default (instead of stopping with a DataError) and stop the job
    # when data.skip_unreadable=true is set.
    dict(
        id="y-skip-unreadable-inverted",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="if bad and not self.skip_unreadable:",
        replacement="if bad and self.skip_unreadable:",
        tests=[],
    ),
]

# The tests that catch the first pass's survivors (docs/testing.md, "The seventh list"), written after it:
# `--after` runs them first. `x-cli-max-epochs-unfinished` has none: the note it changed was unreachable
# and is gone, so the mutant no longer applies. `x-epoch-sums-mean-reduce` was caught by the suite all along
# (the DDP sweep test, whose ranks the map of that run did not measure: benchmarks/mutation/covering.py).
AFTER = {
    "claims-ratio-other-nonpositive": [
        "tests/test_report_options.py::test_a_ratio_claim_leaves_out_a_seed_where_either_head_has_no_positive_value"
    ],
    "y-left-out-ignores-by": [
        "tests/test_report_lines.py::test_what_is_left_out_follows_the_split_the_selection_is_made_on"
    ],
    "y-history-empty-cells-bad": [
        "tests/test_report_lines.py::"
        "test_blank_cells_of_a_metric_logged_every_other_epoch_are_missing_values_not_bad_rows"
    ],
    "x-start-removes-on-force": [
        "tests/test_records.py::test_starting_over_removes_the_old_summary_and_eval_and_resuming_keeps_them"
    ],
    "ddp-worker-extra-args": [
        "tests/test_records_lines.py::test_a_ddp_rank_started_without_exactly_one_config_file_stops_with_its_usage"
    ],
    "x-epoch-sums-mean-reduce": ["tests/test_sweep.py::test_ddp_jobs_inside_multirun"],
    "x-extra-callbacks-first": [
        "tests/test_training_values.py::"
        "test_callbacks_given_to_train_run_after_the_configs_own_and_see_the_gamma_of_each_epoch"
    ],
}
