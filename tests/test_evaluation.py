"""The metric callbacks: what a run records, and DDP values equal to single-process values."""

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from binary_encoding.backbones import MLP
from binary_encoding.data import DigitsDataModule
from binary_encoding.evaluation import FinalSettings, geometry_metrics, reliability_metrics, robustness
from binary_encoding.heads import LinearHead
from binary_encoding.latents import collect_latents
from binary_encoding.module import BinaryEncodingModule
from binary_encoding.train import train


def digits_model(seed=0, train_steps=30):
    torch.manual_seed(seed)
    dm = DigitsDataModule(eval_batch_size=100)  # several batches per shard
    dm.setup()
    bb = MLP(dm.input_shape, hidden=(32,))
    module = BinaryEncodingModule(bb, LinearHead(bb.num_features, 10, width=4), 10)
    # a few plain steps so that predictions are neither constant nor perfect
    opt = torch.optim.Adam(module.parameters(), 1e-2)
    for _ in range(train_steps):
        x, y = dm.normalize(dm.x["train"]), dm.y["train"]
        loss = torch.nn.functional.cross_entropy(module(x)[0], y)
        opt.zero_grad(), loss.backward(), opt.step()
    return module.eval(), dm


def all_metrics(module, dm):
    lats = {s: collect_latents(module, dm, s) for s in ("train", "val", "test")}
    out = {
        f"{s}/{k}": v
        for s in ("train", "val")
        for k, v in geometry_metrics(lats[s], 10, module.head.classifier.weight.detach()).items()
    }
    out.update(reliability_metrics(lats["train"], lats["test"], 10))
    out.update(robustness(module, dm, FinalSettings(deepfool_samples=101, deepfool_batch=16)))
    out["n_train"] = len(lats["train"].y)
    out["train_y_checksum"] = int((lats["train"].y * torch.arange(len(lats["train"].y))).sum())
    return out


def _worker(rank, world, port, path, weights):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        module, dm = digits_model(train_steps=0)
        module.load_state_dict(torch.load(weights))
        res = all_metrics(module, dm)
        if rank == 0:
            with open(path, "w") as f:
                json.dump(res, f)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_metrics_equal_single_process(tmp_path):
    """2 gloo processes on CPU; the digits training split (1293) does not divide by 2, and DeepFool
    takes 101 images: gathered values must equal the single-process ones, nothing duplicated."""
    module, dm = digits_model()
    single = all_metrics(module, dm)
    assert single["n_train"] == 1293
    path, weights = tmp_path / "ddp.json", tmp_path / "weights.pt"
    torch.save(module.state_dict(), weights)  # the same model in every process
    mp.spawn(_worker, args=(2, _free_port(), str(path), str(weights)), nprocs=2, join=True)
    ddp = json.loads(path.read_text())
    assert ddp.keys() == single.keys()
    for k, v in single.items():
        assert ddp[k] == pytest.approx(v, rel=1e-5, abs=1e-7, nan_ok=True), k


def test_run_records_metrics_every_epoch_and_final_scores(cfg_factory, tmp_path, monkeypatch):
    import binary_encoding.evaluation as evaluation

    passes, collect = [], evaluation.collect_latents

    def counted(module, dm, split, *args):
        passes.append(split)
        return collect(module, dm, split, *args)

    monkeypatch.setattr(evaluation, "collect_latents", counted)
    s = train(cfg_factory("trainer.max_epochs=4", "metrics_every=2", "save_latents=true", "deepfool_samples=50"))
    # metric passes after epochs 1 and 3 (train, val); the end-of-fit metrics reuse the last ones, then test
    assert passes == ["train", "val", "train", "val", "test"]
    import csv

    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    per_epoch = [
        "binarity_score",
        "binarity_std",
        "peak_dist_mean",
        "peak_dist_std",
        "agreement_dim",
        "agreement_code",
        "n_codes",
        "nc1",
        "sigma_w",
        "equinorm",
        "equiangular",
        "maxangle",
        "w_equinorm",
        "nc3",
        "nc4",
    ]
    for split in ("train", "val"):
        for k in per_epoch:
            vals = [r.get(f"{split}/{k}", "") for r in rows]
            assert [v != "" for v in vals] == [False, True, False, True], (split, k, vals)  # epochs 1 and 3
            assert all(np.isfinite(float(v)) for v in vals if v)
    for k in (
        "mahalanobis_auroc",
        "msp_auroc",
        "mahalanobis_aurc",
        "mahalanobis_fpr95",
        "deepfool_rho",
        "deepfool_rho_correct",
    ):
        assert 0 < s[k] < 1.5, (k, s[k])
    assert s["deepfool_images"] == 50 and s["deepfool_fooled"] > 0.9
    z = np.load(tmp_path / "latents.npz")
    assert z["train_z"].shape == (1293, 4) and z["test_pred"].shape == (360,)
    assert (z["test_pred"] == z["test_y"]).mean() == pytest.approx(s["test_acc"])
    assert json.loads((tmp_path / "summary.json").read_text())["mahalanobis_auroc"] == s["mahalanobis_auroc"]
    assert s["train_acc"] == float(rows[-1]["train/acc"])  # the same latents as the last epoch's pass
