"""The metric callbacks: what a run records, and DDP values equal to single-process values."""

import csv
import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from binary_encoding.callbacks.latents import collect_latents
from binary_encoding.callbacks.metrics import FinalSettings, geometry_metrics, reliability_metrics, robustness
from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.model.backbones import MLP
from binary_encoding.model.heads import LinearHead
from binary_encoding.model.module import BinaryEncodingModule
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
    import binary_encoding.callbacks.metrics as evaluation

    passes, collect = [], evaluation.collect_latents

    def counted(module, dm, split, *args, **kwargs):
        passes.append(split)
        return collect(module, dm, split, *args, **kwargs)

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
        "two_valued",
        "two_valued_min",
    ]
    for split in ("train", "val"):
        for k in per_epoch:
            vals = [r.get(f"{split}/{k}", "") for r in rows]
            assert [v != "" for v in vals] == [False, True, False, True], (split, k, vals)  # epochs 1 and 3
            assert all(np.isfinite(float(v)) for v in vals if v)
    # the exact values of these are recomputed independently in the wiring tests below
    assert s["deepfool_images"] == 50 and s["deepfool_fooled"] > 0.9
    z = np.load(tmp_path / "latents.npz")
    assert z["train_z"].shape == (1293, 4) and z["test_pred"].shape == (360,)
    assert (z["test_pred"] == z["test_y"]).mean() == pytest.approx(s["test_acc"])
    assert json.loads((tmp_path / "summary.json").read_text())["mahalanobis_auroc"] == s["mahalanobis_auroc"]
    assert s["train_acc"] == float(rows[-1]["train/acc"])  # the same latents as the last epoch's pass


# ------------------------------------------------------------------------------------------------
# The wiring: every end-of-run number of a small run recomputed here, independently, from what the
# run saved (latents.npz, the checkpoint), with numpy / scipy / sklearn
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("global_mean", ["samples", "class_means"])
def test_every_end_of_run_number_is_recomputed_from_the_saved_latents(cfg_factory, tmp_path, global_mean):
    """Accuracies, NC1 and sigma_w (with the configured global mean: the end-of-run value must follow
    `metrics.global_mean` like the per-epoch one), agreements and codes, Mahalanobis and max-softmax
    AUROC, AURC and FPR at 95% TPR: a call site that fits the Gaussians on the wrong samples, groups by
    the wrong labels or reports one score's number under the other's name changes one of them."""
    from oracles import (
        aurc_expected_reference,
        code_agreement_reference,
        encoding_agreement_reference,
        finite_scores,
        fpr_at_95_tpr_reference,
        mahalanobis_auroc_reference,
        mahalanobis_score_reference,
        neural_collapse_reference,
        reference_auroc_oracle,
        two_valuedness_reference,
    )
    from scipy.special import softmax
    from sklearn.metrics import roc_auc_score

    s = train(
        cfg_factory(
            "trainer.max_epochs=4", "save_latents=true", "deepfool_samples=0", f"metrics.global_mean={global_mean}"
        )
    )
    lat = dict(np.load(tmp_path / "latents.npz"))
    for split in ("train", "val", "test"):
        assert s[f"{split}_acc"] == pytest.approx(
            (lat[f"{split}_pred"] == lat[f"{split}_y"]).mean(), abs=1e-6
        )  # fp32 mean
        np.testing.assert_array_equal(lat[f"{split}_pred"], lat[f"{split}_logits"].argmax(1))
    z, y, pred = (lat[f"train_{k}"].astype(np.float64) for k in ("z", "y", "pred"))
    y, pred = y.astype(int), pred.astype(int)
    nc = neural_collapse_reference(z, y, global_mean=global_mean)
    nc1, sigma_w = nc["nc1"], nc["sigma_w"]
    assert s["nc1"] == pytest.approx(nc1, rel=1e-6) and s["sigma_w"] == pytest.approx(sigma_w, rel=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert float(rows[-1]["train/nc1"]) == pytest.approx(s["nc1"], rel=1e-6)  # the record agrees with itself
    codes = code_agreement_reference(z, pred, num_classes=10)
    assert s["agreement_dim"] == pytest.approx(encoding_agreement_reference(z, pred), rel=1e-9)
    assert s["agreement_code"] == pytest.approx(codes["agreement"], rel=1e-9)
    assert s["n_codes"] == codes["n_codes"] and s["top_codes_fraction"] == pytest.approx(
        codes["top_codes_fraction"], rel=1e-9
    )
    two = two_valuedness_reference(z)
    assert s["two_valued_dims"] == pytest.approx(two.tolist(), abs=1e-6)  # rounded to 6 decimals in summary.json
    assert s["two_valued"] == pytest.approx(two.mean(), abs=1e-9) and s["two_valued_min"] == pytest.approx(two.min())
    te = {k: lat[f"test_{k}"] for k in ("z", "y", "pred", "logits")}
    auroc = mahalanobis_auroc_reference(
        z, pred, y, te["z"].astype(np.float64), te["pred"].astype(int), te["y"].astype(int)
    )
    assert s["mahalanobis_auroc"] == pytest.approx(auroc, abs=1e-9)
    ref = reference_auroc_oracle(z, pred, y, te["z"].astype(np.float64), te["pred"].astype(int), te["y"].astype(int))
    assert s["mahalanobis_auroc_ref"] == pytest.approx(ref, abs=1e-9)  # the reference's estimator, §7.5
    msp = roc_auc_score(te["pred"] == te["y"], softmax(te["logits"].astype(np.float64), axis=1).max(1))
    assert s["msp_auroc"] == pytest.approx(msp, abs=1e-6)
    # AURC and FPR at 95% TPR of each score: the doubt of a test sample is its distance, or -max softmax
    correct = te["pred"] == te["y"]
    doubt = {
        "mahalanobis": mahalanobis_score_reference(z, pred, y, te["z"].astype(np.float64), te["pred"].astype(int)),
        "msp": -softmax(te["logits"].astype(np.float64), axis=1).max(1),
    }
    for name, score in doubt.items():
        assert s[f"{name}_aurc"] == pytest.approx(aurc_expected_reference(finite_scores(score), correct), abs=1e-6)
        assert s[f"{name}_fpr95"] == pytest.approx(fpr_at_95_tpr_reference(correct, score), abs=1e-6)


def test_deepfool_rho_is_recomputed_from_the_checkpoint_with_the_textbook_attack(cfg_factory, tmp_path):
    """The end-of-run DeepFool wiring: the seeded sample of test images, normalized as in training,
    attacked one at a time by the independent oracle on the checkpoint's model; rho = mean ||r||/||x||."""
    from oracles import deepfool_reference

    from binary_encoding.metrics.deepfool import LogitsOnly
    from binary_encoding.run.build import build_datamodule, build_model

    s = train(cfg_factory("trainer.max_epochs=3", "deepfool_samples=24", "seed=3"))
    cfg = OmegaConf.load(tmp_path / "config.yaml")
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm.input_shape, dm.num_classes)
    model.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    n_test = len(dm.y["test"])
    idx = torch.randperm(n_test, generator=torch.Generator().manual_seed(3))[:24].sort().values
    x = dm.normalize(dm.x["test"][idx])
    out = deepfool_reference(LogitsOnly(model), x, num_candidates=10, overshoot=0.02, max_iter=50)
    rho = (out["r"].flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).mean().item()
    assert s["deepfool_images"] == 24 and s["deepfool_rho"] == pytest.approx(rho, rel=1e-4)


def test_an_attack_through_logits_only_leaves_the_model_in_its_own_mode():
    """DeepFool restores the mode of the model it attacked: through the `LogitsOnly` wrapper that must
    be the wrapped model's mode (a fresh wrapper is in training mode and used to put an evaluated
    model back into training)."""
    from oracles import deepfool_reference

    from binary_encoding.metrics.deepfool import LogitsOnly, deepfool

    module, dm = digits_model(train_steps=5)
    x = dm.normalize(dm.x["test"][:4])
    for attack in (deepfool, deepfool_reference):
        for training in (False, True):
            module.train(training)
            attack(LogitsOnly(module), x, num_candidates=3, max_iter=5)
            assert module.training is training, (attack.__name__, training)
