"""The paper's claims on real data with a conv net on the CPU: MNIST-1D (`experiment=mnist1d`: the 1-D conv
ResNet at width 8, d=4, 30 epochs, lr 3e-3, binenc's gamma 0.01 x 1.4 per epoch capped at 10). Against
LinPen (the same d=4 linear layer without the quadratic term) BinEnc's classes keep to one code each
(joint-code agreement near 1, fewer codes), its within-class variability (NC1) is an order of magnitude lower
and DeepFool needs a perturbation more than three times as large, at the same or higher accuracy.

Runs on 1 torch thread (`runtime.threads=1`), as the `make results` sweep ran, so the numbers are those of
docs/results.md (seeds 0 and 1 of that sweep, lr 3e-3):
    seed  head    test acc  NC1      DeepFool rho  joint-code agreement  codes  Mahalanobis AUROC
    0     binenc  0.980     1.93e-3  0.469         0.997                 12     0.933
    0     linpen  0.973     3.05e-2  0.138         0.900                 14     0.894
    1     binenc  0.985     1.85e-3  0.505         0.954                 13     0.949
    1     linpen  0.971     3.59e-2  0.132         0.905                 15     0.922
NC1 ratio 15.8x and 19.4x (seed 2: 8.5x), rho ratio 3.4x and 3.8x (seed 2: 3.7x). The Mahalanobis AUROC is
not asserted: higher on these seeds, lower on seed 2 (0.903 against 0.916). At lr 2e-3 the same test measured
NC1 ratios 9.8-10.8x and rho ratios 2.15-2.4x, but a tie in agreement on seed 1. The whole test took 2 minutes
on the 2-core machine (4 runs of about 30 s).
"""

import pytest
from conftest import make_cfg

from binary_encoding.train import train

COMMON = ("experiment=mnist1d", "runtime.threads=1")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_on_mnist1d_binencs_codes_collapse_and_resist_deepfool_where_linpens_do_not(tmp_path, seed):
    binenc = train(make_cfg(tmp_path / "binenc", *COMMON, "head=binenc", f"seed={seed}"))
    linpen = train(make_cfg(tmp_path / "linpen", *COMMON, "head=linpen", f"seed={seed}"))
    assert binenc["gamma"] == pytest.approx(10.0) and linpen["gamma"] == 0.0 and binenc["lr"] == 3e-3
    # both learn MNIST-1D beyond the published CNN (about 94%): the difference is in the latents
    assert binenc["test_acc"] >= 0.96 and linpen["test_acc"] >= 0.95, (binenc["test_acc"], linpen["test_acc"])
    assert binenc["test_acc"] >= linpen["test_acc"] - 0.01
    # codes: BinEnc's classes keep to one code each; LinPen's spread over more codes (measured 0.954-0.997 / 0.90)
    assert binenc["agreement_code"] >= 0.94 and binenc["agreement_code"] > linpen["agreement_code"] + 0.03
    assert binenc["n_codes"] < linpen["n_codes"], (binenc["n_codes"], linpen["n_codes"])
    # within-class variability: NC1 an order of magnitude lower
    assert binenc["nc1"] < 5e-3 and linpen["nc1"] > 1.5e-2, (binenc["nc1"], linpen["nc1"])
    assert binenc["nc1"] < linpen["nc1"] / 8, (binenc["nc1"], linpen["nc1"])
    # robustness: DeepFool needs a perturbation more than three times as large, relative to the input
    assert binenc["deepfool_rho"] > 2.5 * linpen["deepfool_rho"], (binenc["deepfool_rho"], linpen["deepfool_rho"])
