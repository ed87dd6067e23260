"""Recompute a finished run's end-of-training metrics from its checkpoint, without training.

    python -m binary_encoding.evaluate RUN_DIR [RUN_DIR ...] [--device cpu|cuda] [--checkpoint PATH]

A RUN_DIR holds `config.yaml` and `checkpoints/last.ckpt` (`record/files.py`); a folder without
`config.yaml` is searched for run folders (a sweep: every job in it with a checkpoint). For each run
the data and model are built from its config, the checkpoint's weights loaded, and the metrics of the
run's summary (accuracies, latent metrics, Mahalanobis, DeepFool; `callbacks.metrics.final_metrics`, with
the run's metric settings) written to `eval.json` beside it. On the device the run trained on, with
the same precision, they equal the summary's values for the same checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def find_runs(paths: list[str]) -> list[Path]:
    """Run folders (with config.yaml and a checkpoint) at or below each path."""
    from .record import files

    runs = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such folder: {p}")
        candidates = [p] if (p / files.CONFIG).is_file() else sorted(c.parent for c in p.rglob(files.CONFIG))
        runs += [c for c in candidates if files.last_checkpoint(c).is_file()]
    return runs


def evaluate_run(run_dir: str | Path, device: str | None = None, checkpoint: str | None = None) -> dict:
    """The end-of-training metrics of the run in `run_dir` recomputed from its checkpoint; also written
    to `<run_dir>/eval.json`."""
    import lightning as L
    import torch
    from omegaconf import OmegaConf, open_dict

    from .callbacks.metrics import FinalSettings, final_metrics
    from .record import files
    from .run import policy
    from .run.build import build_datamodule, build_model

    run_dir = Path(run_dir)
    path = Path(checkpoint) if checkpoint else files.last_checkpoint(run_dir)
    check_checkpoint_file(path)
    cfg = with_defaults(OmegaConf.load(run_dir / files.CONFIG))
    gpu = device == "cuda" if device else policy.on_gpu(cfg)
    with open_dict(cfg):  # evaluation runs eagerly on one device
        cfg.trainer.accelerator = "gpu" if gpu else "cpu"
        cfg.trainer.devices = 1
        cfg.trainer.strategy = "auto"
        cfg.runtime.compile = False
        cfg.runtime.cuda_graphs = False
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    module = build_model(cfg, dm.input_shape, dm.num_classes)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 -- a zip of another program: whatever its unpickling raises
        raise NotACheckpoint(f"{path} is not a checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise NotACheckpoint(f"{path} is not a checkpoint of a run (no state_dict in it)")
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:  # torch lists every tensor; the first line says what does not fit
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise ValueError(f"{path} is not a checkpoint of the model in {run_dir / files.CONFIG}: {lines[-1]}") from None
    if (why := summary_mismatch(run_dir, path)) is not None:
        print(f"warning: {why}: eval.json will not agree with it", file=sys.stderr)
    dev = torch.device("cuda" if gpu else "cpu")
    module.to(dev)
    settings = FinalSettings.of_config(cfg.callbacks.metrics)  # the run's metric settings
    bf16 = "bf16" in policy.resolve_precision(cfg.trainer.precision, gpu)
    results, _ = final_metrics(module, dm, settings, bf16=bf16)
    out = {
        "checkpoint": str(path),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "gamma": float(module.gamma),
        **results,
    }
    files.write_json(run_dir / files.EVAL, out)
    return out


class NotACheckpoint(ValueError):
    """The file given as a checkpoint is empty or no checkpoint at all (the user's input: exit 2)."""


def check_checkpoint_file(path: Path) -> None:
    """Refuse, in one line, a checkpoint file that is missing, empty, or no torch zip archive (a YAML file
    named last.ckpt, a cut-off write), before the run's data and model are built."""
    import zipfile

    if not path.is_file():
        raise NotACheckpoint(f"{path} is no file")
    if path.stat().st_size == 0:
        raise NotACheckpoint(f"{path} is empty (0 bytes): not a checkpoint")
    if not zipfile.is_zipfile(path):  # every checkpoint torch.save writes is a zip archive
        raise NotACheckpoint(f"{path} is not a checkpoint (no torch zip archive; cut off while written?)")


def with_defaults(cfg):
    """A run's config with the keys added since it was made set to their defaults (for the run's data set,
    backbone and head): a run made before `runtime.channels_last` existed still evaluates."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from .run.conf import CONF_DIR

    choices = [
        f"{group}={cfg[group].name}"
        for group in ("data", "backbone", "head")
        if OmegaConf.select(cfg, f"{group}.name") and (Path(CONF_DIR) / group / f"{cfg[group].name}.yaml").is_file()
    ]
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        defaults = compose("config", overrides=choices)
    OmegaConf.set_struct(defaults, False)  # keys the defaults lack (trainer=ddp's, debug's, ++trainer.*) are kept
    return OmegaConf.merge(defaults, cfg)


def summary_mismatch(run_dir: Path, checkpoint: Path) -> str | None:
    """Why the run's summary.json was not computed from `checkpoint` with the config beside it, if it was
    not (its fingerprints: `summarize.belongs_to`); None when it was, or when there is nothing to compare."""
    from .record import files, summarize

    summary, why = summarize.read(run_dir)
    if summary is None:
        return why if (run_dir / files.SUMMARY).exists() else None
    want = summary.get(summarize.CHECKPOINT_FINGERPRINT)
    if want and summarize.checkpoint_fingerprint(checkpoint) != want:
        return f"{checkpoint} is not the checkpoint {run_dir / files.SUMMARY} was computed from"
    return None


def main(argv: list[str] | None = None) -> None:
    """Console entry point (`binary-encoding-evaluate`, `python -m binary_encoding.evaluate`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", metavar="RUN_DIR", help="a run folder, or a sweep folder holding runs")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: the GPU when the run's config trains on one")
    p.add_argument("--checkpoint", help="another checkpoint of the run (one RUN_DIR only)")
    a = p.parse_args(argv)
    try:
        runs = find_runs(a.paths)
    except FileNotFoundError as e:
        p.error(str(e))
    if not runs:
        p.error(f"no run with config.yaml and checkpoints/last.ckpt under {' '.join(a.paths)}")
    if a.checkpoint and len(runs) > 1:
        p.error("--checkpoint needs exactly one run folder")
    from .record import files
    from .run import job

    job.quiet_lightning()
    failed, bad_input = 0, 0
    for i, run in enumerate(runs, 1):
        try:
            r = evaluate_run(run, a.device, a.checkpoint)
        except NotACheckpoint as e:
            bad_input += 1
            print(f"[{i}/{len(runs)}] {run}: {e}", file=sys.stderr)
            continue
        except Exception as e:  # noqa: BLE001 -- one broken run must not stop a sweep's evaluation
            failed += 1
            print(f"[{i}/{len(runs)}] {run}: FAILED {type(e).__name__}: {e}", file=sys.stderr)
            continue
        print(
            f"[{i}/{len(runs)}] {run}: test acc {r['test_acc']:.4f}, NC1 {r['nc1']:.3e}, "
            f"Mahalanobis AUROC {r['mahalanobis_auroc']:.4f} -> {run / files.EVAL}"
        )
    if failed or bad_input:
        raise SystemExit(1 if failed else 2)  # 2: only files given that are no checkpoints (the user's to fix)


if __name__ == "__main__":
    main()
