"""The paper's claims on real data with a conv net on the CPU: MNIST-1D (`experiment=mnist1d`: the 1-D conv
ResNet at width 8, d=4, 30 epochs, lr 2e-3, binenc's gamma 0.01 x 1.4 per epoch capped at 10). Against
LinPen (the same d=4 linear layer without the quadratic term) BinEnc's within-class variability (NC1) is an
order of magnitude lower and DeepFool needs a perturbation more than twice as large, at the same accuracy.

Runs on 1 torch thread (`runtime.threads=1`), as the `make results` sweep ran, so the numbers are those of
docs/results.md (seeds 0 and 1 of that sweep):
    seed  head    test acc  NC1      DeepFool rho  joint-code agreement  codes  Mahalanobis AUROC
    0     binenc  0.970     2.66e-3  0.322         0.966                 13     0.935
    0     linpen  0.978     2.88e-2  0.150         0.911                 15     0.912
    1     binenc  0.985     2.70e-3  0.347         0.921                 14     0.881
    1     linpen  0.973     2.65e-2  0.144         0.924                 14     0.907
NC1 ratio 9.8-10.8x (seed 2: 9.9x), rho ratio 2.15-2.4x (seed 2: 2.5x). Not asserted, since they do not hold
on every seed: fewer codes / higher joint-code agreement (seed 1 ties) and a higher Mahalanobis AUROC (seed 1
lower). The whole test took 2 minutes on the 2-core machine (4 runs of about 30 s; 6-7 minutes per run under
heavy load from other work).
"""

import pytest
from conftest import make_cfg

from binary_encoding.train import train

COMMON = ("experiment=mnist1d", "runtime.threads=1")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_on_mnist1d_binencs_latents_collapse_and_resist_deepfool_where_linpens_do_not(tmp_path, seed):
    binenc = train(make_cfg(tmp_path / "binenc", *COMMON, "head=binenc", f"seed={seed}"))
    linpen = train(make_cfg(tmp_path / "linpen", *COMMON, "head=linpen", f"seed={seed}"))
    assert binenc["gamma"] == pytest.approx(10.0) and linpen["gamma"] == 0.0
    # both learn MNIST-1D beyond the published CNN (about 94%): the difference is in the latents
    assert binenc["test_acc"] >= 0.95 and linpen["test_acc"] >= 0.95, (binenc["test_acc"], linpen["test_acc"])
    assert abs(binenc["test_acc"] - linpen["test_acc"]) <= 0.02
    # within-class variability: NC1 an order of magnitude lower (measured 9.8x and 10.8x)
    assert binenc["nc1"] < 6e-3 and linpen["nc1"] > 1.5e-2, (binenc["nc1"], linpen["nc1"])
    assert binenc["nc1"] < linpen["nc1"] / 5, (binenc["nc1"], linpen["nc1"])
    # robustness: DeepFool needs a perturbation more than twice as large, relative to the input (2.15x, 2.4x)
    assert binenc["deepfool_rho"] > 1.8 * linpen["deepfool_rho"], (binenc["deepfool_rho"], linpen["deepfool_rho"])
