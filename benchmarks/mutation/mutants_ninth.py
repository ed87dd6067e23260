"""A ninth list of plausible one-line bugs, for `python -m benchmarks.mutation.run --list ninth`
(docs/testing.md, "Mutation audit"): 120 mutants, 20 per category, written from the package source and its
configs alone (binary_encoding/, conf/) with the tests unopened, by three writers who each had their own files
(ids "a-": metrics, callbacks and data; "b-": settings, CLI, records and job folders; "c-": report, model,
gamma and fit). None touches a line that a mutant of the eight earlier lists changed. Same format: `original`
must occur exactly once in `file`, and is replaced by `replacement`. `tests` is left empty: the runner picks
the tests that execute the mutated line.
"""

MUTANTS = [
    # --- metric math ---
    # peak_dist is |mu_1 - mu_2| without dividing by the component std, so the separation of the two modes is off by
    # orders of magnitude (no saturation near 2000 for a collapsed latent).
    dict(
        id="a-gmm-peak-dist-unnormalized",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="return score, std, (params[:, 2] - params[:, 3]).abs() / std",
        replacement="return score, std, (params[:, 2] - params[:, 3]).abs()",
        tests=[],
    ),
    # The M-step gives each component the other's mixing weight, so for unbalanced dimensions the GMM fit and the
    # binarity score disagree with sklearn's GaussianMixture.
    dict(
        id="a-gmm-mixture-weights-swapped",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="return torch.stack([n0 / (n0 + n1), n1 / (n0 + n1), mu0, mu1, v0, v1], 1)",
        replacement="return torch.stack([n1 / (n0 + n1), n0 / (n0 + n1), mu0, mu1, v0, v1], 1)",
        tests=[],
    ),
    # Code agreement becomes the unweighted mean of per-class modal shares instead of the sample-weighted fraction,
    # so imbalanced classes give a different agreement_code.
    dict(
        id="a-code-agreement-macro-average",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original='"agreement": mode_count.sum().item() / n,',
        replacement='"agreement": (mode_count / torch.bincount(labels, minlength=n_cls)).mean().item(),',
        tests=[],
    ),
    # With global_mean='samples' mu_G becomes the mean of all class-mean rows (absent classes count as zeros, class
    # sizes ignored), so Sigma_B, NC1 and the NC2/NC3 values change for imbalanced or incomplete labels.
    dict(
        id="a-nc-global-mean-over-all-class-rows",
        category="metric math",
        file="binary_encoding/metrics/geometry.py",
        original="        mu_g = z.mean(0)\n",
        replacement="        mu_g = means.mean(0)\n",
        tests=[],
    ),
    # Ranks are taken of the uncertainty instead of the confidence, so the misclassification AUROC comes out as 1 -
    # AUROC (a good detector looks worse than chance).
    dict(
        id="a-auroc-rank-sign-flipped",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="ranks = _average_ranks(-s)",
        replacement="ranks = _average_ranks(s)",
        tests=[],
    ),
    # Class Gaussians are fitted on latents scaled but not centred while test latents are standardized with the
    # mean, so every Mahalanobis distance (and AUROC/AURC) is shifted.
    dict(
        id="a-maha-fit-uncentred",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="    zs = (z - mean) / std\n",
        replacement="    zs = z / std\n",
        tests=[],
    ),
    # The reference Mahalanobis estimate fits each class Gaussian on all training samples of the label,
    # misclassified ones included, instead of the correctly predicted ones.
    dict(
        id="a-ref-maha-fit-all-train-samples",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="fit = zt[(pt == c) & (yt == c)]",
        replacement="fit = zt[yt == c]",
        tests=[],
    ),
    # For tied scores all errors of the tied block are charged from its first coverage step instead of spread
    # uniformly, so AURC is too high whenever scores tie (e.g. saturated softmax, skipped classes with +inf).
    dict(
        id="a-aurc-tie-spread-ignored",
        category="metric math",
        file="binary_encoding/metrics/reliability.py",
        original="exp_err = cum_before[inverse] + within * group_err[inverse] / counts[inverse].to(torch.float64)",
        replacement="exp_err = cum_before[inverse] + group_err[inverse]",
        tests=[],
    ),
    # The logit gaps f_k - f_orig are negative and used without abs, so DeepFool picks the wrong class and steps the
    # wrong way; perturbations and rho are wrong and images are rarely fooled.
    dict(
        id="a-deepfool-signed-logit-gap",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="fd = fdiff.detach().abs()",
        replacement="fd = fdiff.detach()",
        tests=[],
    ),
    # DeepFool runs the model in training mode (BatchNorm batch statistics, dropout active, running stats updated),
    # so the perturbations and rho depend on the batch and the model is altered.
    dict(
        id="a-deepfool-no-eval-mode",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="    model.eval()\n    try:",
        replacement="    try:",
        tests=[],
    ),
    # robustness_rho divides ||r|| by the norm of the adversarial image x + r instead of the clean image, so rho is
    # biased.
    dict(
        id="a-rho-normalized-by-adversarial",
        category="metric math",
        file="binary_encoding/metrics/deepfool.py",
        original="ratio = _flat_norm(r.detach().double()) / _flat_norm(x.detach().double().to(r.device))",
        replacement=(
            "ratio = _flat_norm(r.detach().double()) / _flat_norm(x"
            ".detach().double().to(r.device) + r.detach().double())"
        ),
        tests=[],
    ),
    # The positive-group sum takes the non-positive values, so both group means are wrong and the sign R^2
    # (two_valued, two_valued_min) is wrong for any mixed-sign dimension.
    dict(
        id="a-two-valued-pos-sum-swapped",
        category="metric math",
        file="binary_encoding/metrics/two_valued.py",
        original="sum_pos = torch.where(pos, x, 0.0).sum(0)",
        replacement="sum_pos = torch.where(pos, 0.0, x).sum(0)",
        tests=[],
    ),
    # binarity_std is logged from the spread of the peak distances instead of the mean component std, so the 'width
    # of the two modes' curve and summary value are wrong.
    dict(
        id="a-catalog-binarity-std-wrong-key",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='"binarity_std": g["std"],',
        replacement='"binarity_std": g["peak_dist_std"],',
        tests=[],
    ),
    # The callback believes the module logs train/acc too and stops computing it, so the clean train accuracy per
    # epoch (train/acc column, fig5) disappears.
    dict(
        id="a-catalog-train-acc-left-to-module",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='compute=_acc, by_module=("val",)',
        replacement="compute=_acc, by_module=TV",
        tests=[],
    ),
    # NC4 is computed but never returned by the collapse group, so train/nc4, val/nc4 and summary nc4 are missing.
    dict(
        id="a-catalog-nc4-dropped",
        category="metric math",
        file="binary_encoding/metrics/catalog.py",
        original='_NC += ("nc3", "nc4", "skipped_classes")',
        replacement='_NC += ("nc3", "skipped_classes")',
        tests=[],
    ),
    # The misclassified test samples are taken as the positive class, so Mahalanobis and MSP AUROC come out as 1 -
    # AUROC and AURC/FPR95 are computed on the wrong group.
    dict(
        id="a-reliability-correct-inverted",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="    correct = test.pred == test.y\n",
        replacement="    correct = test.pred != test.y\n",
        tests=[],
    ),
    # summary mahalanobis_aurc reports the max-softmax AURC instead of the Mahalanobis one.
    dict(
        id="a-maha-aurc-from-msp",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='"mahalanobis_aurc": maha["aurc"],',
        replacement='"mahalanobis_aurc": msp["aurc"],',
        tests=[],
    ),
    # The reference Mahalanobis AUROC groups test samples by their true label instead of their prediction, so
    # misclassified samples are scored against the wrong class Gaussian.
    dict(
        id="a-ref-auroc-test-pred-label-swapped",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original="test.z, test.pred, test.y)",
        replacement="test.z, test.y, test.pred)",
        tests=[],
    ),
    # The end-of-training latent metrics in summary.json (binarity, agreement, NC1...) are computed on the test
    # split instead of the training split.
    dict(
        id="a-final-metrics-on-test-split",
        category="metric math",
        file="binary_encoding/callbacks/metrics.py",
        original='catalog.compute(split_data(lats["train"]',
        replacement='catalog.compute(split_data(lats["test"]',
        tests=[],
    ),
    # Latents are always computed under bf16 autocast even for fp32 runs (or bf16=False), so every latent metric and
    # accuracy is computed from rounded activations.
    dict(
        id="a-latents-always-bf16",
        category="metric math",
        file="binary_encoding/callbacks/latents.py",
        original="dtype=torch.bfloat16, enabled=bf16)",
        replacement="dtype=torch.bfloat16, enabled=True)",
        tests=[],
    ),
    # --- config/CLI ---
    # weight_decay=0 (plain Adam-style training without decay) is refused as a config error.
    dict(
        id="b-weight-decay-zero-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original='"weight_decay": Num("AdamW weight decay", ge=0),',
        replacement='"weight_decay": Num("AdamW weight decay", gt=0),',
        tests=[],
    ),
    # trainer.devices=[0] (the first GPU by index) is refused; only lists of indices >= 1 pass.
    dict(
        id="b-devices-index-zero-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="return not value or any(not _whole(v) or v < 0 for v in value)",
        replacement="return not value or any(not _whole(v) or v <= 0 for v in value)",
        tests=[],
    ),
    # lr=nan or weight_decay=inf pass validation (NaN compares false against every bound) and the run trains on
    # garbage.
    dict(
        id="b-nan-number-accepted",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):",
        replacement="if isinstance(v, bool) or not isinstance(v, kind):",
        tests=[],
    ),
    # trainer.limit_train_batches=0 is treated as no limit, so check_data does not refuse a run that will make no
    # optimizer step.
    dict(
        id="b-limit-zero-not-refused",
        category="config/CLI",
        file="binary_encoding/run/settings.py",
        original="if limit is not None and batches:",
        replacement="if limit and batches:",
        tests=[],
    ),
    # For +trainer.compile=true the hint suggests +runtime.compile=true, which Hydra refuses because the key already
    # exists.
    dict(
        id="b-moved-key-hint-keeps-plus",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="write {arg.replace(key, MOVED[key], 1).lstrip('+')}",
        replacement="write {arg.replace(key, MOVED[key], 1)}",
        tests=[],
    ),
    # A config that still sets a moved key to null (trainer.compile_mode: null) is no longer refused; the key
    # reaches Lightning.
    dict(
        id="b-moved-null-key-passes",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="if OmegaConf.select(cfg, old, default=_ABSENT) is not _ABSENT:",
        replacement="if OmegaConf.select(cfg, old) is not None:",
        tests=[],
    ),
    # data=imagefolder data.root=~/images is refused as a missing folder although it exists.
    dict(
        id="b-imagefolder-root-no-expanduser",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original="if not Path(str(cfg.data.root)).expanduser().is_dir():",
        replacement="if not Path(str(cfg.data.root)).is_dir():",
        tests=[],
    ),
    # enable_progress_bar=auto follows stderr instead of stdout: piping stdout to a log (| tee) still shows the bar
    # and drops the per-epoch lines from the console.
    dict(
        id="b-progress-bar-stderr-tty",
        category="config/CLI",
        file="binary_encoding/run/policy.py",
        original='kw["enable_progress_bar"] = _auto(kw.get("enable_progress_bar", "auto"), sys.stdout.isatty())',
        replacement='kw["enable_progress_bar"] = _auto(kw.get("enable_progress_bar", "auto"), sys.stderr.isatty())',
        tests=[],
    ),
    # The script path is parsed as an override, the parse fails and the unknown-choice check (head=binenk) silently
    # passes; Hydra then trains the default or fails verbosely.
    dict(
        id="b-main-argv-includes-script",
        category="config/CLI",
        file="binary_encoding/train.py",
        original="argv = sys.argv[1:]",
        replacement="argv = sys.argv",
        tests=[],
    ),
    # Command-line refusals (moved key, unknown choice, unwritable folder) print on stdout instead of stderr.
    dict(
        id="b-main-error-to-stdout",
        category="config/CLI",
        file="binary_encoding/train.py",
        original='print(f"error: {msg}", file=sys.stderr)',
        replacement='print(f"error: {msg}")',
        tests=[],
    ),
    # A sweep job whose folder is held by another process raises FolderBusy with a traceback instead of a compact
    # Refused, and the recap no longer lists it as refused.
    dict(
        id="b-sweep-folder-busy-not-refused",
        category="config/CLI",
        file="binary_encoding/train.py",
        original="raise refusal(e) from None",
        replacement="raise e from None",
        tests=[],
    ),
    # A run whose evaluation crashes is counted as bad user input: evaluate exits 2 (user error) instead of 1.
    dict(
        id="b-evaluate-failure-exit-2",
        category="config/CLI",
        file="binary_encoding/evaluate.py",
        original="failed += 1",
        replacement="bad_input += 1",
        tests=[],
    ),
    # Epoch lines go to the console when the progress bar holds it and only to train.log when no bar runs (SLURM
    # logs lose the epoch lines).
    dict(
        id="b-epochlog-console-inverted",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original="        if self.console:\n            log.info(line)",
        replacement="        if not self.console:\n            log.info(line)",
        tests=[],
    ),
    # With the progress bar on, epoch lines are also written to the console stream handler (FileHandler subclasses
    # StreamHandler), breaking the bar.
    dict(
        id="b-epochlog-file-only-streamhandler",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original="if isinstance(handler, logging.FileHandler):",
        replacement="if isinstance(handler, logging.StreamHandler):",
        tests=[],
    ),
    # DDP rank 0 (log_to) drops every INFO line: no epoch lines in the console or train.log for DDP jobs.
    dict(
        id="b-log-to-warning-level",
        category="config/CLI",
        file="binary_encoding/run/console.py",
        original="root.setLevel(logging.INFO)",
        replacement="root.setLevel(logging.WARNING)",
        tests=[],
    ),
    # runtime.threads limits torch only; numpy/sklearn BLAS pools in metric passes still use every core,
    # oversubscribing parallel jobs.
    dict(
        id="b-threads-no-blas-limit",
        category="config/CLI",
        file="binary_encoding/run/threads.py",
        original="        torch.set_num_threads(n)\n        threadpool_limits(n)",
        replacement="        torch.set_num_threads(n)",
        tests=[],
    ),
    # By default validation runs only every other epoch, so val curves and per-epoch val accuracy lines are missing
    # for half the epochs.
    dict(
        id="b-trainer-val-every-2",
        category="config/CLI",
        file="conf/trainer/default.yaml",
        original="check_val_every_n_epoch: 1",
        replacement="check_val_every_n_epoch: 2",
        tests=[],
    ),
    # debug=fast runs create W&B runs (online when logged in) instead of only the local record.
    dict(
        id="b-debug-fast-wandb",
        category="config/CLI",
        file="conf/debug/fast.yaml",
        original="  - override /logger: csv",
        replacement="  - override /logger: wandb",
        tests=[],
    ),
    # The default W&B mode ignores WANDB_MODE and forces online runs; hosts without credentials print a fallback
    # warning on every job.
    dict(
        id="b-wandb-mode-online",
        category="config/CLI",
        file="conf/logger/wandb.yaml",
        original="mode: auto          # auto | online | offline | disabled",
        replacement="mode: online        # auto | online | offline | disabled",
        tests=[],
    ),
    # Parallel local jobs no longer split the cores (runtime.threads defaults to torch's own count), so N jobs
    # oversubscribe the CPU.
    dict(
        id="b-runtime-threads-null",
        category="config/CLI",
        file="conf/runtime/default.yaml",
        original="threads: auto ",
        replacement="threads: null ",
        tests=[],
    ),
    # --- report ---
    # Every head with a latent width is labelled ' (d=4)' in claims.csv and results.md even in a one-width sweep, so
    # the rows no longer read 'BinEnc' / 'LinPen'.
    dict(
        id="c-claims-label-width-always",
        category="report",
        file="binary_encoding/report/claims.py",
        original="if multi_width and width >= 0:",
        replacement="if multi_width or width >= 0:",
        tests=[],
    ),
    # Accuracy and AUROC claims are compared as fractions although labelled percentage points: effects and means are
    # 100x too small.
    dict(
        id="c-claims-values-unscaled",
        category="report",
        file="binary_encoding/report/claims.py",
        original='v = pd.to_numeric(runs.set_index("seed")[c.metric], errors="coerce") * c.scale',
        replacement='v = pd.to_numeric(runs.set_index("seed")[c.metric], errors="coerce")',
        tests=[],
    ),
    # claims.csv's other_head column says 'binenc' for every comparison, and the claims figure colours every seed
    # line with BinEnc's colour.
    dict(
        id="c-claims-other-head-is-binenc",
        category="report",
        file="binary_encoding/report/claims.py",
        original='"other_head": o_runs["head"].iloc[0],',
        replacement='"other_head": b_runs["head"].iloc[0],',
        tests=[],
    ),
    # Without --out the report is written into a report/ folder beside the sweep folder instead of PATH/report/,
    # where the user (and docs) look for it.
    dict(
        id="c-cli-default-out-beside-sweep",
        category="report",
        file="binary_encoding/report/cli.py",
        original='(local / "report" if local else Path("report"))',
        replacement='(local.parent / "report" if local else Path("report"))',
        tests=[],
    ),
    # all_runs.csv, documented as every finished run, also lists unfinished jobs.
    dict(
        id="c-cli-all-runs-keeps-unfinished",
        category="report",
        file="binary_encoding/report/cli.py",
        original='done = _order(runs[runs["status"] == "finished"])',
        replacement='done = _order(runs[runs["status"] != "failed"])',
        tests=[],
    ),
    # A sweep mixing runs with and without a validation split no longer tells in results.md that some lrs were
    # selected on TEST accuracy.
    dict(
        id="c-cli-test-note-only-if-all",
        category="report",
        file="binary_encoding/report/cli.py",
        original='if select == "val" and (selected["selected_on"] == "test").any():',
        replacement='if select == "val" and (selected["selected_on"] == "test").all():',
        tests=[],
    ),
    # claims.csv and claims_per_seed.csv are written but missing from the returned/printed list of files.
    dict(
        id="c-cli-claims-files-not-listed",
        category="report",
        file="binary_encoding/report/cli.py",
        original='written[:0] = [out / "results.md", *claim_files]',
        replacement='written[:0] = [out / "results.md"]',
        tests=[],
    ),
    # Figure 1 shows BinEnc against NoPen instead of LinPen, and is skipped as 'no binenc or nopen run' in LinPen-
    # only sweeps.
    dict(
        id="c-fig-fig1-wrong-heads",
        category="report",
        file="binary_encoding/report/figures.py",
        original='"Binarity of the latents, 2-component GMM ({train})", {"binenc", "linpen"}),',
        replacement='"Binarity of the latents, 2-component GMM ({train})", {"binenc", "nopen"}),',
        tests=[],
    ),
    # Every legend entry carries ' (d=4)' even when each head has one width.
    dict(
        id="c-fig-width-in-every-label",
        category="report",
        file="binary_encoding/report/figures.py",
        original="multi = len({(h, s) for h, _, s in heads}) < len(heads)",
        replacement="multi = len({(h, s) for h, _, s in heads}) <= len(heads)",
        tests=[],
    ),
    # Panels declared in percent (scale 100) plot accuracy as 0.0095 instead of 95: the accuracy figure's curves are
    # wrong by 10^4.
    dict(
        id="c-fig-panel-scale-divides",
        category="report",
        file="binary_encoding/report/figures.py",
        original="hist.assign(**{col: hist[col] * p.scale})",
        replacement="hist.assign(**{col: hist[col] / p.scale})",
        tests=[],
    ),
    # Runs whose config does not set metrics.train_augmented count as augmented, so figure headings say 'augmented
    # train split' for clean-split metrics.
    dict(
        id="c-load-train-augmented-default-true",
        category="report",
        file="binary_encoding/report/load.py",
        original='.get("train_augmented", False)),',
        replacement='.get("train_augmented", True)),',
        tests=[],
    ),
    # In a sweep mixing protocols, a setting that varies independently of the protocol (e.g. head.gamma_max) is
    # dropped from the row settings, so runs with different settings are averaged together.
    dict(
        id="c-load-follows-any",
        category="report",
        file="binary_encoding/report/load.py",
        original=(
            "return all(seen.setdefault(repr(c.get(key)), repr(c.get(other))) == repr(c.get(other)) for c in cfgs)"
        ),
        replacement=(
            "return any(seen.setdefault(repr(c.get(key)), repr(c.get(other))) == repr(c.get(other)) for c in cfgs)"
        ),
        tests=[],
    ),
    # Older runs whose summary lacks two_valued no longer get it from their saved latents, so the two-valuedness
    # column and claim are empty for them.
    dict(
        id="c-load-two-valued-backfill-inverted",
        category="report",
        file="binary_encoding/report/load.py",
        original='if summary is not None and "two_valued" not in summary:',
        replacement='if summary is not None and "two_valued" in summary:',
        tests=[],
    ),
    # Ties in selection accuracy are no longer broken by the lower final validation cross-entropy but go straight to
    # the smaller lr.
    dict(
        id="c-select-tiebreak-wrong-ce-key",
        category="report",
        file="binary_encoding/report/select.py",
        original='done["_ce"] = done["final_val_ce"] if "final_val_ce" in done else np.nan',
        replacement='done["_ce"] = done["val_ce"] if "val_ce" in done else np.nan',
        tests=[],
    ),
    # A job whose summary lacks the selection metric is reported as 'holds NaN for val_acc' instead of 'has no
    # val_acc'.
    dict(
        id="c-select-left-out-why-column",
        category="report",
        file="binary_encoding/report/select.py",
        original='why = f"holds {shown_value(raw)} for" if _in_summary(r, key) else "has no"',
        replacement='why = f"holds {shown_value(raw)} for" if key in r else "has no"',
        tests=[],
    ),
    # The 'lr per seed' column prints lr:seed pairs (e.g. '0.001:0') instead of seed:lr, misreporting the selected
    # learning rates.
    dict(
        id="c-select-lr-per-seed-swapped",
        category="report",
        file="binary_encoding/report/select.py",
        original='row["lr_per_seed"] = "; ".join(f"{s}:{lr:g}" for s, lr in zip(g["seed"], g["lr"]))',
        replacement='row["lr_per_seed"] = "; ".join(f"{s}:{lr:g}" for s, lr in zip(g["lr"], g["seed"]))',
        tests=[],
    ),
    # 'values left out' lists values of runs the selection did not pick (and of unfinished jobs), which never
    # entered any cell.
    dict(
        id="c-tables-notes-from-all-runs",
        category="report",
        file="binary_encoding/report/tables.py",
        original="dropped_values(selected, shown)",
        replacement="dropped_values(runs, shown)",
        tests=[],
    ),
    # In results.md the 'lr selected on' and 'lr per seed' cells are swapped under their headers.
    dict(
        id="c-tables-last-columns-swapped",
        category="report",
        file="binary_encoding/report/tables.py",
        original="+ f\" | {on} | {r['lr_per_seed']} |\")",
        replacement="+ f\" | {r['lr_per_seed']} | {on} |\")",
        tests=[],
    ),
    # A report on a wandb:entity/project is published in a W&B group named after the entity (empty for
    # 'wandb:project') instead of the project.
    dict(
        id="c-publish-group-entity",
        category="report",
        file="binary_encoding/report/publish.py",
        original='"group": project,',
        replacement='"group": entity,',
        tests=[],
    ),
    # A head outside the paper's four gets a colour/marker that changes from one Python process to the next (salted
    # str hash), so reports disagree.
    dict(
        id="c-style-unstable-hash",
        category="report",
        file="binary_encoding/report/style.py",
        original="return dict(_OTHER_STYLES[zlib.crc32(str(head).encode()) % len(_OTHER_STYLES)])",
        replacement="return dict(_OTHER_STYLES[hash(str(head)) % len(_OTHER_STYLES)])",
        tests=[],
    ),
    # --- records and resume ---
    # The heartbeat thread rewrites the original timestamp: after 15 minutes a process on another host takes over
    # the folder of a live job.
    dict(
        id="b-lock-heartbeat-not-refreshed",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original='_write(out / LOCK, {**mine, "heartbeat": time.time()}, exclusive=False)',
        replacement="_write(out / LOCK, mine, exclusive=False)",
        tests=[],
    ),
    # An unreadable/corrupt job.lock is treated as released: the exclusive create raises FileExistsError instead of
    # taking the stale lock over.
    dict(
        id="b-lock-unreadable-not-taken-over",
        category="records and resume",
        file="binary_encoding/run/lock.py",
        original="if h is None:  # released in between",
        replacement="if not h:  # released in between",
        tests=[],
    ),
    # run_name=... given by the user is overwritten by the overrides-derived name in config.yaml and W&B.
    dict(
        id="b-user-run-name-ignored",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original='cfg.run_name = cfg.get("run_name") or run_name(cfg)',
        replacement="cfg.run_name = run_name(cfg)",
        tests=[],
    ),
    # The resume command printed after a stop names only the folder's base name, so pasting it starts a new run in
    # the wrong place.
    dict(
        id="b-resume-hint-relative-folder",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original='f"output_dir={out}"',
        replacement='f"output_dir={out.name}"',
        tests=[],
    ),
    # Outside a sweep, runs that differ only in their seed get the same run name.
    dict(
        id="b-run-name-without-seed",
        category="records and resume",
        file="binary_encoding/run/job.py",
        original='return f"head={cfg.head.name},seed={cfg.seed}"',
        replacement='return f"head={cfg.head.name}"',
        tests=[],
    ),
    # A wandb_id.txt with a trailing newline yields a run id with a newline, so a resumed job does not continue its
    # W&B run.
    dict(
        id="b-wandb-id-not-stripped",
        category="records and resume",
        file="binary_encoding/record/files.py",
        original='run_id = id_file.read_text().strip() if id_file.exists() else ""',
        replacement='run_id = id_file.read_text() if id_file.exists() else ""',
        tests=[],
    ),
    # A resumed run never reads the earlier attempt's metrics.csv: the rewritten file loses every epoch before the
    # resume.
    dict(
        id="b-csv-resume-forgets-rows",
        category="records and resume",
        file="binary_encoding/record/csv_log.py",
        original="if not self._resumed:  # first call of this process",
        replacement="if self._resumed:  # first call of this process",
        tests=[],
    ),
    # Path overrides are hashed as typed, not absolute: the same relative data.root from two directories maps to one
    # job folder, and ~/x vs /home/u/x to two.
    dict(
        id="b-short-path-hash-relative",
        category="records and resume",
        file="binary_encoding/record/identity.py",
        original='return f"{base}-{hashlib.sha256(full.encode()).hexdigest()[:8]}"',
        replacement='return f"{base}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"',
        tests=[],
    ),
    # summary.json records the learning rate under 'seed' and the seed under 'lr'.
    dict(
        id="b-summary-seed-lr-swapped",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original="        cfg.seed,\n        cfg.lr,",
        replacement="        cfg.lr,\n        cfg.seed,",
        tests=[],
    ),
    # On imbalanced data the diverged flag uses 1/C as chance, so a run stuck at the majority class is not flagged.
    dict(
        id="b-diverged-ignores-majority",
        category="records and resume",
        file="binary_encoding/record/summarize.py",
        original='diverged(metrics.get("train_acc"), num_classes, metrics.get("train_majority")),',
        replacement='diverged(metrics.get("train_acc"), num_classes),',
        tests=[],
    ),
    # A resumed or requeued job cannot continue its W&B run under the kept id.
    dict(
        id="b-wandb-resume-never",
        category="records and resume",
        file="binary_encoding/record/wandb_run.py",
        original='resume="allow",',
        replacement='resume="never",',
        tests=[],
    ),
    # The `wandb sync` command is never offered for offline runs (and is attempted for online ones).
    dict(
        id="b-sync-command-inverted",
        category="records and resume",
        file="binary_encoding/record/wandb_run.py",
        original='or not getattr(run, "offline", False):',
        replacement='or getattr(run, "offline", False):',
        tests=[],
    ),
    # Closing the W&B run no longer commits the pending row: the last epoch's history row is lost.
    dict(
        id="b-wandb-last-row-not-flushed",
        category="records and resume",
        file="binary_encoding/record/wandb_run.py",
        original="            self._experiment.log({}, commit=True)\n",
        replacement="",
        tests=[],
    ),
    # A sweep ending deletes the refused-job notes of every other sweep running in the same folder; their recaps
    # miss refused jobs.
    dict(
        id="b-recap-removes-other-sweeps-notes",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="shutil.rmtree(Path(sweep_dir) / REFUSED / self.token, ignore_errors=True)",
        replacement="shutil.rmtree(Path(sweep_dir) / REFUSED, ignore_errors=True)",
        tests=[],
    ),
    # Jobs are listed with overrides in another order than Hydra's, so the recap cannot match them to their folders
    # (shown as not run) and numbers them wrongly.
    dict(
        id="b-sweep-jobs-order-swapped",
        category="records and resume",
        file="binary_encoding/run/sweep_log.py",
        original="parser.parse_overrides([*params, *config.hydra.overrides.task])",
        replacement="parser.parse_overrides([*config.hydra.overrides.task, *params])",
        tests=[],
    ),
    # A full disk is reported as a permission problem ('make the folder writable') and a read-only folder as 'not
    # enough' free space.
    dict(
        id="b-output-error-full-swapped",
        category="records and resume",
        file="binary_encoding/run/writes.py",
        original="full = err.errno in ALWAYS",
        replacement="full = err.errno in IN_FOLDER",
        tests=[],
    ),
    # last.ckpt is refreshed only every 5 epochs, so a cut-off job loses up to 4 epochs of training on resume.
    dict(
        id="b-checkpoint-every-5",
        category="records and resume",
        file="conf/runtime/default.yaml",
        original="checkpoint_every_n_epochs: 1 ",
        replacement="checkpoint_every_n_epochs: 5 ",
        tests=[],
    ),
    # Every job appends its log to train.log in the launch directory instead of its own folder; resumed jobs cannot
    # restore their epoch lines.
    dict(
        id="b-train-log-in-cwd",
        category="records and resume",
        file="conf/config.yaml",
        original="filename: ${hydra.runtime.output_dir}/train.log",
        replacement="filename: ${hydra.runtime.cwd}/train.log",
        tests=[],
    ),
    # By default a rerun starts over: finished jobs are retrained (their summaries deleted) and cut-off jobs do not
    # resume.
    dict(
        id="b-resume-default-false",
        category="records and resume",
        file="conf/config.yaml",
        original="resume: true          #",
        replacement="resume: false         #",
        tests=[],
    ),
    # All runs of a sweep share one W&B group, so W&B averages runs of different heads/settings together.
    dict(
        id="b-wandb-group-sweep-name",
        category="records and resume",
        file="conf/logger/wandb.yaml",
        original="group: ${group}     #",
        replacement="group: ${name}     #",
        tests=[],
    ),
    # --- training semantics ---
    # Epoch training loss/CE/quad are unweighted means of batch means, train/acc_aug is wrong (correct counts
    # divided by the number of batches) and train/images counts batches.
    dict(
        id="c-module-epoch-sums-per-batch",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="n = torch.full((1,), float(len(y)), device=y.device)",
        replacement="n = torch.ones(1, device=y.device)",
        tests=[],
    ),
    # With cuda_graphs on, eager steps (the last partial batch, CPU, a failed capture) never call the optimizer, and
    # replayed steps step twice.
    dict(
        id="c-module-graph-eager-step-skipped",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original="if not self._replayed:  # an eager step",
        replacement="if self._replayed:  # an eager step",
        tests=[],
    ),
    # Validation metrics are logged as valid/ce and valid/acc, so val/acc and val/ce (used by checkpoints,
    # metrics.csv and lr selection) are missing.
    dict(
        id="c-module-val-log-key",
        category="training semantics",
        file="binary_encoding/model/module.py",
        original='self._eval_step(batch, "val", self.val_acc)',
        replacement='self._eval_step(batch, "valid", self.val_acc)',
        tests=[],
    ),
    # Resuming with the unchanged default BinEnc schedule (factor 1.084, step 1) warns that the gamma schedule
    # changed; a real step/factor swap would be reported wrongly.
    dict(
        id="c-gamma-resume-order-swapped",
        category="training semantics",
        file="binary_encoding/callbacks/gamma.py",
        original='saved = (state["gamma0"], state["factor"], state["step"], state["gamma_max"])',
        replacement='saved = (state["gamma0"], state["step"], state["factor"], state["gamma_max"])',
        tests=[],
    ),
    # The loggers record the number of parameter tensors instead of the number of parameters.
    dict(
        id="c-fit-param-count-tensors",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="sum(p.numel() for p in module.parameters())",
        replacement="sum(1 for p in module.parameters())",
        tests=[],
    ),
    # Every successful job closes its W&B run as failed, and failed jobs as successful.
    dict(
        id="c-fit-logger-exit-code-swapped",
        category="training semantics",
        file="binary_encoding/run/fit.py",
        original="lg.finish(exit_code=0 if ok else 1)",
        replacement="lg.finish(exit_code=1 if ok else 0)",
        tests=[],
    ),
    # In a DDP job the non-zero ranks write the job's log file and rank 0 logs nothing to it, so the job log is
    # lost/interleaved.
    dict(
        id="c-ddp-log-on-other-ranks",
        category="training semantics",
        file="binary_encoding/run/ddp_worker.py",
        original="if ranks.is_rank0():",
        replacement="if not ranks.is_rank0():",
        tests=[],
    ),
    # The snapshot aliases the live parameters and buffers, so the warm-up steps' updates are never undone: the
    # capturing step trains 2 extra times on the same batch.
    dict(
        id="c-stepgraph-snapshot-aliases",
        category="training semantics",
        file="binary_encoding/model/step_graph.py",
        original="return [t.detach().clone() for t in tensors], tensors, state",
        replacement="return [t.detach() for t in tensors], tensors, state",
        tests=[],
    ),
    # replay never copies the new batch into the graph's static inputs, so every replayed step trains on the batch
    # it was captured with.
    dict(
        id="c-stepgraph-replay-rebinds-batch",
        category="training semantics",
        file="binary_encoding/model/step_graph.py",
        original="s.copy_(b)",
        replacement="s = b",
        tests=[],
    ),
    # ResNet1d takes C instead of C*H input channels: works for MNIST-1D ([1,1,40]) but fails for any input with H >
    # 1 or several channels per row.
    dict(
        id="c-resnet1d-channels-first-dim",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="cin = math.prod(input_shape[:-1])\n        self.stem",
        replacement="cin = input_shape[0]\n        self.stem",
        tests=[],
    ),
    # The downsampling shortcut of ResNet1d loses its BatchNorm: a different architecture (fewer parameters,
    # different outputs) than documented.
    dict(
        id="c-resnet1d-shortcut-no-bn",
        category="training semantics",
        file="binary_encoding/model/resnet1d.py",
        original="else nn.Sequential(nn.Conv1d(cin, planes, 1, stride, bias=False), nn.BatchNorm1d(planes))",
        replacement="else nn.Conv1d(cin, planes, 1, stride, bias=False)",
        tests=[],
    ),
    # ResNet stages start at 2*width planes and downsample already in the first stage: 1024 (or 4096) features
    # instead of 512 (2048), not the paper's ResNet.
    dict(
        id="c-resnet-stage-index-from-one",
        category="training semantics",
        file="binary_encoding/model/backbones.py",
        original="for i, n in enumerate(layers):",
        replacement="for i, n in enumerate(layers, 1):",
        tests=[],
    ),
    # The digits default of BinEnc loses its gamma cap: gamma grows without bound and long runs collapse to chance.
    dict(
        id="c-conf-binenc-no-gamma-cap",
        category="training semantics",
        file="conf/head/binenc.yaml",
        original="gamma_max: 10.0",
        replacement="gamma_max: null",
        tests=[],
    ),
    # head=linpen builds a non-linear (SiLU) penultimate layer, so LinPen is identical to NonlinPen.
    dict(
        id="c-conf-linpen-nonlinear",
        category="training semantics",
        file="conf/head/linpen.yaml",
        original="_target_: binary_encoding.model.heads.LinearHead",
        replacement="_target_: binary_encoding.model.heads.NonLinearHead",
        tests=[],
    ),
    # LinPen's default latent width differs from BinEnc's (2 vs 4): the heads no longer have the same parameters and
    # claims find no LinPen row of BinEnc's width.
    dict(
        id="c-conf-linpen-width-2",
        category="training semantics",
        file="conf/head/linpen.yaml",
        original="width: 4",
        replacement="width: 2",
        tests=[],
    ),
    # NonlinPen trains with the mean(z**2) penalty although it is documented as plain cross-entropy.
    dict(
        id="c-conf-nonlinpen-penalised",
        category="training semantics",
        file="conf/head/nonlinpen.yaml",
        original="gamma0: 0.0",
        replacement="gamma0: 0.01",
        tests=[],
    ),
    # backbone=resnet18 builds bottleneck blocks (2048 features, a ResNet26-like network) instead of ResNet18.
    dict(
        id="c-conf-resnet18-bottleneck",
        category="training semantics",
        file="conf/backbone/resnet18.yaml",
        original="block: basic",
        replacement="block: bottleneck",
        tests=[],
    ),
    # backbone=resnet34 builds a 101-layer-deep stage layout: far slower and not ResNet34.
    dict(
        id="c-conf-resnet34-layers",
        category="training semantics",
        file="conf/backbone/resnet34.yaml",
        original="layers: [3, 4, 6, 3]",
        replacement="layers: [3, 4, 23, 3]",
        tests=[],
    ),
    # The CNN1d backbone (and nonlinpen's head on it, which follows backbone.act) uses ReLU instead of SiLU.
    dict(
        id="c-conf-cnn1d-relu",
        category="training semantics",
        file="conf/backbone/cnn1d.yaml",
        original="act: silu",
        replacement="act: relu",
        tests=[],
    ),
    # The gamma schedule's step is taken from gamma_factor (1.084), so BinEnc's gamma grows on epoch // 1.084:
    # lagging the configured schedule and ignoring head.gamma_step.
    dict(
        id="c-conf-gamma-step-from-factor",
        category="training semantics",
        file="conf/callbacks/default.yaml",
        original="step: ${head.gamma_step}",
        replacement="step: ${head.gamma_factor}",
        tests=[],
    ),
    # --- data pipeline ---
    # Training uses the evaluation batch size and evaluation the training batch size, so a run takes far fewer
    # optimizer steps per epoch than configured.
    dict(
        id="a-batch-sizes-swapped",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original="self.batch_size, self.eval_batch_size = batch_size, eval_batch_size",
        replacement="self.batch_size, self.eval_batch_size = eval_batch_size, batch_size",
        tests=[],
    ),
    # test_dataloader iterates the validation split, so trainer.test reports validation numbers (and fails without a
    # validation split).
    dict(
        id="a-test-loader-reads-val",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original='return self._loader("test", train=False)',
        replacement='return self._loader("val", train=False)',
        tests=[],
    ),
    # The validation loader is built as a training loader: shuffled, training batch size, and a 1-sample tail batch
    # (or the non-divisible DDP tail) is dropped, so not every validation sample is seen once.
    dict(
        id="a-val-loader-train-mode",
        category="data pipeline",
        file="binary_encoding/data/base.py",
        original='return self._loader("val", train=False) if',
        replacement='return self._loader("val", train=True) if',
        tests=[],
    ),
    # Under DDP each rank reads a contiguous block instead of indices[rank::world], so gather_strided puts
    # evaluation latents back in the wrong order and shard sizes differ.
    dict(
        id="a-sampler-contiguous-shards",
        category="data pipeline",
        file="binary_encoding/data/sampler.py",
        original="return order[self.rank :: self.world]",
        replacement="return order.chunk(self.world)[self.rank]",
        tests=[],
    ),
    # Random crops pad with reflected pixels instead of zeros, so augmented images differ from torchvision's
    # RandomCrop(padding=pad) at the borders.
    dict(
        id="a-augment-reflect-padding",
        category="data pipeline",
        file="binary_encoding/data/augment.py",
        original="xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))",
        replacement='xp = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")',
        tests=[],
    ),
    # Symlinked sub-folders of a class are not followed, so their images silently disappear from the data set.
    dict(
        id="a-imagefolder-no-symlinks",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="os.walk(os.path.join(folder, c), followlinks=True)",
        replacement="os.walk(os.path.join(folder, c), followlinks=False)",
        tests=[],
    ),
    # A folder with no images is no longer refused as FileNotFoundError when scanning (and is refused when empty
    # folders are allowed).
    dict(
        id="a-imagefolder-allow-empty-inverted",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="if not samples and not allow_empty:",
        replacement="if not samples and allow_empty:",
        tests=[],
    ),
    # Images are always decoded as RGB, so data.channels=1 yields 3-channel inputs instead of grayscale.
    dict(
        id="a-imagefolder-always-rgb",
        category="data pipeline",
        file="binary_encoding/data/imagefolder.py",
        original="return Image.open(f).convert(mode)",
        replacement='return Image.open(f).convert("RGB")',
        tests=[],
    ),
    # The label key of the layout is ignored; CIFAR-100's batches have 'fine_labels', so loading CIFAR-100 fails.
    dict(
        id="a-cifar-label-key-hardcoded",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original="ys.append(np.asarray(d[key], np.int64))",
        replacement='ys.append(np.asarray(d["labels"], np.int64))',
        tests=[],
    ),
    # The data folder is looked up as root/cifar10 instead of torchvision's root/cifar-10-batches-py, so an existing
    # copy is not found (download attempted or FileNotFoundError).
    dict(
        id="a-cifar-folder-by-name",
        category="data pipeline",
        file="binary_encoding/data/cifar.py",
        original="return self.root / self.layout[self.name][0]",
        replacement="return self.root / self.name",
        tests=[],
    ),
    # data.generator overrides (e.g. num_samples) are dropped and the published set is always built.
    dict(
        id="a-mnist1d-generator-ignored",
        category="data pipeline",
        file="binary_encoding/data/mnist1d.py",
        original="self.generator = dict(generator or {})",
        replacement="self.generator = {}",
        tests=[],
    ),
    # The configured data.test_fraction is ignored for digits; the test split is always 20% of the images.
    dict(
        id="a-digits-test-fraction-ignored",
        category="data pipeline",
        file="binary_encoding/data/digits.py",
        original="self.test_fraction = test_fraction",
        replacement="self.test_fraction = 0.2",
        tests=[],
    ),
    # CIFAR-10 runs train without the paper's crop+flip augmentation.
    dict(
        id="a-conf-cifar10-no-augment",
        category="data pipeline",
        file="conf/data/cifar10.yaml",
        original="augment: true",
        replacement="augment: false",
        tests=[],
    ),
    # CIFAR-10 holds out 10,000 instead of 5,000 training images for validation.
    dict(
        id="a-conf-cifar10-val-fraction",
        category="data pipeline",
        file="conf/data/cifar10.yaml",
        original="val_fraction: 0.1",
        replacement="val_fraction: 0.2",
        tests=[],
    ),
    # CIFAR-100 random crops use 2 px padding instead of the paper's 4.
    dict(
        id="a-conf-cifar100-pad",
        category="data pipeline",
        file="conf/data/cifar100.yaml",
        original="pad: 4",
        replacement="pad: 2",
        tests=[],
    ),
    # CIFAR-100 augmentation loses the horizontal flip.
    dict(
        id="a-conf-cifar100-no-flip",
        category="data pipeline",
        file="conf/data/cifar100.yaml",
        original="flip: true",
        replacement="flip: false",
        tests=[],
    ),
    # The digits test/validation split is drawn with another seed than the class default, so the held-out images
    # differ from the documented split.
    dict(
        id="a-conf-digits-split-seed",
        category="data pipeline",
        file="conf/data/digits.yaml",
        original="split_seed: 0",
        replacement="split_seed: 1",
        tests=[],
    ),
    # Without root/test only 10% instead of 20% of the images are held out for testing.
    dict(
        id="a-conf-imagefolder-test-fraction",
        category="data pipeline",
        file="conf/data/imagefolder.yaml",
        original="test_fraction: 0.2",
        replacement="test_fraction: 0.1",
        tests=[],
    ),
    # Image-folder runs train without crop/flip augmentation.
    dict(
        id="a-conf-imagefolder-no-augment",
        category="data pipeline",
        file="conf/data/imagefolder.yaml",
        original="augment: true",
        replacement="augment: false",
        tests=[],
    ),
    # The MNIST-1D validation split is drawn with another seed, so the validation signals differ from the fixed
    # documented split.
    dict(
        id="a-conf-mnist1d-split-seed",
        category="data pipeline",
        file="conf/data/mnist1d.yaml",
        original="split_seed: 0",
        replacement="split_seed: 1",
        tests=[],
    ),
]
