"""Line-by-line pins of the metric modules (binary_encoding/metrics/, callbacks/metrics.py): every option
value, keyword default and edge case that no config reaches (absent or single classes, ties, zero variance,
NaN inputs), each against an independent oracle (sklearn, scipy, numpy from the formulas of docs/method.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from oracles import code_agreement_reference, gmm_binarity_reference, neural_collapse_reference

from binary_encoding.metrics import geometry
from binary_encoding.metrics.geometry import class_codes, code_agreement, gmm_binarity, neural_collapse
from binary_encoding.metrics.two_valued import two_valuedness

# ------------------------------------------------------------------------------------------------
# GMM binarity (§6.1): every EM option, the extra initialisations, the chunking
# ------------------------------------------------------------------------------------------------


def _overlapping_modes(n=300, seed=0):
    """Two columns of two overlapping Gaussians: EM needs several steps (5 for column 0 at tol 1e-3, 100+ at
    1e-6), so n_iter, tol and reg_covar each change the fit."""
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            np.where(rng.random(n) < 0.3, rng.normal(-1, 1, n), rng.normal(1.0, 1.2, n)),
            np.where(rng.random(n) < 0.5, rng.normal(-1.5, 0.7, n), rng.normal(1.5, 0.5, n)),
        ]
    )


GMM_OPTIONS = [  # (our keywords, sklearn's)
    ({}, {}),  # the documented defaults: reg_covar 1e-6, tol 1e-3, at most 100 iterations
    ({"n_iter": 2}, {"max_iter": 2}),
    ({"tol": 1e-6}, {"tol": 1e-6}),  # runs into the default cap of 100 iterations on column 0
    ({"tol": 0.1}, {"tol": 0.1}),
    ({"reg_covar": 0.1}, {"reg_covar": 0.1}),
]


@pytest.mark.parametrize("ours, theirs", GMM_OPTIONS, ids=[str(o) for o, _ in GMM_OPTIONS])
def test_gmm_binarity_follows_sklearn_for_every_em_option_and_reports_means_over_dimensions(ours, theirs):
    """Per dimension and reported means (score, std: means over j; peak_dist: mean and ddof-0 std) equal
    sklearn's fit with the same options; each option changes the fit of column 0 (so an option that is
    ignored, or a changed default, fails)."""
    z = _overlapping_modes()
    ref = gmm_binarity_reference(z, **theirs)
    out = gmm_binarity(torch.tensor(z), **ours)
    got = np.stack([out[k].numpy() for k in ("score_per_dim", "std_per_dim", "peak_dist_per_dim")], 1)
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    assert out["score"] == pytest.approx(ref[:, 0].mean(), rel=1e-9)
    assert out["std"] == pytest.approx(ref[:, 1].mean(), rel=1e-9)
    assert out["peak_dist_mean"] == pytest.approx(ref[:, 2].mean(), rel=1e-9)
    assert out["peak_dist_std"] == pytest.approx(ref[:, 2].std(), rel=1e-9)  # ddof 0 over the 2 dimensions
    if ours:
        assert abs(ref[0, 0] - gmm_binarity_reference(z[:, :1])[0, 0]) > 1e-3  # this option matters on column 0


def test_extra_initialisations_keep_the_best_fit_and_follow_the_seed():
    """Three clusters (-10: 120 samples, 0: 100, +10: 80 very tight): the 2-means start ends in a local
    optimum (score -0.952, what sklearn's k-means start gives); some random starts reach the better one
    (-0.321, sklearn's best over 8 random starts). n_init=10 keeps the better; with n_init=2 the seed
    decides, so different seeds give both."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    col = np.concatenate([rng.normal(-10, 1, 120), rng.normal(0, 1, 100), rng.normal(10, 0.05, 80)])
    z = torch.tensor(col[:, None])
    x = ((col - col.mean()) / col.std())[:, None]
    best = max(GaussianMixture(2, init_params="random_from_data", random_state=r).fit(x).score(x) for r in range(8))
    local = gmm_binarity_reference(col[:, None])[0, 0]
    assert best > local + 0.5
    assert gmm_binarity(z)["score"] == pytest.approx(local, abs=1e-9)  # n_init=1: the 2-means start only
    assert gmm_binarity(z, n_init=10)["score"] == pytest.approx(best, abs=1e-5)
    by_seed = [gmm_binarity(z, n_init=2, seed=s)["score"] for s in range(6)]
    assert all(s == pytest.approx(local, abs=1e-3) or s == pytest.approx(best, abs=1e-3) for s in by_seed)
    assert min(by_seed) == pytest.approx(local, abs=1e-3) and max(by_seed) == pytest.approx(best, abs=1e-3)


def test_gmm_binarity_in_chunks_of_dimensions_equals_one_pass(monkeypatch):
    """A bound of 2 N elements per chunk fits the columns 2 at a time (5 columns: chunks of 2, 2, 1), with the
    values of one pass over all."""
    z = torch.tensor(np.column_stack([_overlapping_modes(seed=s) for s in range(3)])[:, :5])
    whole = gmm_binarity(z)
    fit_rows, shapes = geometry._fit_rows, []
    monkeypatch.setattr(geometry, "_fit_rows", lambda x, *a: shapes.append(tuple(x.shape)) or fit_rows(x, *a))
    monkeypatch.setattr(geometry, "_CHUNK_ELEMENTS", 2 * z.shape[0])
    chunked = gmm_binarity(z)
    assert shapes == [(2, 300), (2, 300), (1, 300)]
    for k in ("score_per_dim", "std_per_dim", "peak_dist_per_dim"):
        assert chunked[k].shape == (5,)
        torch.testing.assert_close(chunked[k], whole[k], rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------
# Codes (§6.2): ties and more classes than codes
# ------------------------------------------------------------------------------------------------


def test_a_tie_between_codes_goes_to_the_smallest_code_id_in_both_code_functions():
    """Class 0 holds codes "10" and "01" twice each, class 1 holds "01" three times. Dimension 0 is the lowest
    bit of the code id, so "10" (id 1) beats "01" (id 2): the two classes keep distinct modal codes (2), and
    class_codes names "10" for class 0 (documented: the code code_agreement picks)."""
    z = torch.tensor([[1.0, -1.0], [2.0, -1.0], [-1.0, 1.0], [-2.0, 3.0], [-1.0, 1.0], [-1.0, 2.0], [-3.0, 1.0]])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    out = code_agreement(z, labels)
    assert out == {"agreement": 5 / 7, "n_codes": 2, "top_codes_fraction": 1.0, "unique_class_codes": 2}
    rows = class_codes(z, labels)
    assert [(r["class"], r["code"], r["share"], r["samples"]) for r in rows] == [(0, "10", 0.5, 4), (1, "01", 1.0, 3)]


def test_top_codes_fraction_with_more_classes_than_codes_covers_every_sample():
    """num_classes=10 but only 3 distinct codes: the 10 most common codes are all 3 of them, fraction 1."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(30) % 3
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])[labels] * (1 + torch.rand(30, 2, generator=gen))
    out = code_agreement(z, labels, num_classes=10)
    assert out == code_agreement_reference(z.numpy(), labels.numpy(), num_classes=10)
    assert out["top_codes_fraction"] == 1.0 and out["n_codes"] == 3


# ------------------------------------------------------------------------------------------------
# Neural collapse (§6.3): absent, singleton and indistinguishable classes
# ------------------------------------------------------------------------------------------------


def _absent_class_fixture():
    """Labels 0, 2 (20 samples each) and 3 (one sample); class 1 never occurs but has a classifier row. Some
    class-0 samples sit next to the origin, where class 1's (zero) row of the class-means table lies."""
    rng = np.random.default_rng(2)
    centres = np.array([[3.0, 0.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 1.0, 0.0], [0.5, 4.0, -1.0]])
    labels = np.repeat([0, 2, 3], [20, 20, 1])
    z = centres[labels] + rng.normal(size=(41, 3))
    z[:4] = [[0.4, 0.1, 0.0], [0.3, -0.2, 0.1], [0.2, 0.0, 0.3], [1.4, 0.5, -0.2]]
    pred = labels.copy()
    pred[[5, 25, 30]] = [2, 0, 3]
    weight = rng.normal(size=(4, 3)) + 0.5  # mostly positive cosines
    return z, labels, pred, weight


def test_nc3_nc4_and_the_weight_nc2_with_an_absent_and_a_singleton_class():
    """§6.3: NC3 pairs the centred means of the *present* classes (the singleton too) with their weight rows;
    NC4 looks for the nearest mean among the present classes and names it by its class; w_equinorm,
    w_equiangular and w_maxangle run over every row of the classifier weight (class 1's too)."""
    z, labels, pred, weight = _absent_class_fixture()
    out = neural_collapse(torch.tensor(z), torch.tensor(labels), torch.tensor(pred), torch.tensor(weight))
    ref = neural_collapse_reference(z, labels, classifier_weight=weight)
    assert out["nc3"] == pytest.approx(ref["nc3"], rel=1e-9)
    assert out["skipped_classes"] == 2 and out["num_classes"] == 2  # class 1 (absent) and 3 (one sample)
    present = np.array([0, 2, 3])
    means = np.stack([z[labels == c].mean(0) for c in present])
    nearest = present[np.linalg.norm(z[:, None] - means[None], axis=2).argmin(1)]
    assert out["nc4"] == pytest.approx((nearest != pred).mean(), rel=1e-12)
    assert 0 < out["nc4"] < 0.2  # a few, not the class-0 samples near the origin nor the shifted class ids
    norms = np.linalg.norm(weight, axis=1)
    unit = weight / norms[:, None]
    cos = (unit @ unit.T)[np.triu_indices(4, 1)]
    assert out["w_equinorm"] == pytest.approx(norms.std() / norms.mean(), rel=1e-9)
    assert out["w_equiangular"] == pytest.approx(cos.std(), rel=1e-9)
    assert out["w_maxangle"] == pytest.approx(np.abs(cos + 1 / 3).mean(), rel=1e-9)


def test_classes_with_one_common_mean_give_zero_nc1_and_nc2_without_nan():
    """Three classes, each symmetric about the origin: every centred mean is 0, Sigma_B = 0. NC1 is 0 (pinv of
    0), equinorm 0 (not 0/0), the cosines of zero vectors 0: equiangular 0 and maxangle |0 + 1/2| = 0.5."""
    base = torch.tensor([[1.0, 2.0], [-1.0, -2.0]], dtype=torch.float64)
    z = torch.cat([base, 3 * base, base.flip(1)])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    out = neural_collapse(z, labels, pred=labels)
    assert out["nc1"] == 0.0 and out["trace_sigma_b"] == 0.0 and out["trace_sigma_w"] > 0
    assert (out["equinorm"], out["equiangular"], out["maxangle"]) == (0.0, 0.0, 0.5)


def test_no_class_with_min_count_samples_leaves_nc1_undefined_and_a_bad_global_mean_is_refused():
    z = torch.tensor([[0.0, 1.0], [2.0, 0.5], [1.0, -1.0]])
    out = neural_collapse(z, torch.tensor([0, 1, 2]))
    assert out["skipped_classes"] == 3 and out["num_classes"] == 0
    assert all(out[k] is None for k in ("nc1", "sigma_w", "trace_sigma_w", "trace_sigma_b"))
    assert out["equinorm"] is not None  # NC2 runs on the present classes, whatever their size
    with pytest.raises(ValueError, match="global_mean must be 'samples' or 'class_means', got 'papyan'"):
        neural_collapse(z, torch.tensor([0, 0, 1]), global_mean="papyan")


def test_two_valuedness_puts_zero_on_the_negative_side_scores_one_sample_zero_and_refuses_none():
    """Values 0, 0, 1, 2: groups {0, 0} (z <= 0) and {1, 2}, within sum of squares 0.5 of a total 2.75 about
    the mean 0.75, R^2 = 9/11 (with 0 on the positive side all four would be one group: 0). One sample: every
    dimension holds one value, R^2 = 0 (§6.4); no sample: a ValueError."""
    assert two_valuedness(torch.tensor([[0.0], [0.0], [1.0], [2.0]]))["mean"] == pytest.approx(9 / 11, abs=1e-12)
    out = two_valuedness(torch.tensor([[0.5, -1.0, 0.0]]))
    assert out["per_dim"].tolist() == [0.0, 0.0, 0.0] and out["mean"] == 0.0 and out["min"] == 0.0
    with pytest.raises(ValueError, match="at least 1 sample"):
        two_valuedness(torch.zeros(0, 3))


# ------------------------------------------------------------------------------------------------
# Misclassification detection (§7): the precision fallback, NaN scores, the reference estimator's options
# ------------------------------------------------------------------------------------------------


def test_an_unregularised_singular_class_covariance_falls_back_to_the_pseudo_inverse():
    """reg_covar=0 and min_count=2: class 1 has 2 correct samples in D=3 (covariance of rank 1), where the
    Cholesky factorisation fails; its distances are those of numpy's pinv, finite. Class 0 (full rank) keeps
    the exact inverse (scipy's distance)."""
    from oracles import class_gaussian_reference, mahalanobis_reference, standardize_reference

    from binary_encoding.metrics.reliability import fit_class_gaussians, mahalanobis_distance

    rng = np.random.default_rng(0)
    z = np.r_[rng.normal(size=(30, 3)), [[2.0, 1.0, 0.5], [3.0, 2.0, 1.5]]]
    y = np.r_[np.zeros(30, int), [1, 1]]
    gauss = fit_class_gaussians(torch.tensor(z), torch.tensor(y), torch.tensor(y), 2, reg_covar=0.0, min_count=2)
    assert gauss.valid.tolist() == [True, True] and gauss.n_skipped == 0
    probe = rng.normal(size=(6, 3)) + 2
    pred = np.array([0, 0, 0, 1, 1, 1])
    got = mahalanobis_distance(gauss, torch.tensor(probe), torch.tensor(pred)).numpy()
    mean, std = standardize_reference(z)
    zs = (probe - mean) / std
    mu0, cov0 = class_gaussian_reference(z, y, y, 0, reg=0.0, min_count=2)
    np.testing.assert_allclose(got[:3], mahalanobis_reference(zs[:3], mu0, cov0), rtol=1e-9)
    mu1, cov1 = class_gaussian_reference(z, y, y, 1, reg=0.0, min_count=2)
    assert np.linalg.matrix_rank(cov1) == 1
    diff = zs[3:] - mu1
    expected = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, np.linalg.pinv(cov1, hermitian=True), diff), 0))
    np.testing.assert_allclose(got[3:], expected, rtol=1e-6)


def test_a_nan_score_is_refused():
    from binary_encoding.metrics.reliability import misclassification_scores

    with pytest.raises(ValueError, match="score contains NaN"):
        misclassification_scores(torch.tensor([0.1, float("nan"), 0.3]), torch.tensor([True, False, True]))


def test_quantile_sum_with_5_thresholds_and_ties_counted_strictly_below():
    """correct (0, 1, 2), misclassified (1.5, 3), n=5: thresholds 1.5, 1.875, 2.25, 2.625, 3 count 2/3, 2/3,
    1, 1, 1, so (13/3) / 4 = 13/12. Scores equal to a threshold do not count (mean(correct < t))."""
    from binary_encoding.metrics.reliability import quantile_sum_auroc

    assert quantile_sum_auroc([0.0, 1.0, 2.0], [1.5, 3.0], n_thresholds=5) == pytest.approx(13 / 12, abs=1e-12)
    assert quantile_sum_auroc([0.0, 1.0, 2.0], [1.5, 3.0], n_thresholds=2) == pytest.approx(2 / 3 + 1, abs=1e-12)
    assert quantile_sum_auroc([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.0
    assert math.isnan(quantile_sum_auroc([], [1.0, 2.0]))


def _two_spreads(n_train_1=40, n_test=3):
    """1-d: class 0 trained on one point (-5: variance 0), class 1 on a wide cloud around +5 (standardised
    variance 0.0139). Test: 2 `n_test` correct class-0 samples, half 0.0003 and half 0.001 (standardised) from
    their point, `n_test` class-1 errors 0.069 from their mean (distance 0.59). With the absolute reg 1e-6 the
    correct ones lie at 0.3 and 1.0 (half of them nearer than the errors: 0.505), with 1e-7 at 0.95 and 3.2
    (none: 0), with 1e-5 at 0.095 and 0.32 (all: 1.01)."""
    z1 = 5 + 1.0 * np.linspace(-1, 1, n_train_1)
    z_tr = np.r_[np.full(40, -5.0), z1][:, None]
    y_tr = np.r_[np.zeros(40, int), np.ones(n_train_1, int)]
    correct = np.repeat([-5.0 + 0.0015, -5.0 + 0.005], n_test)
    z_te = np.r_[correct, np.full(n_test, z1.mean() + 0.35)][:, None]
    pred = np.r_[np.zeros(2 * n_test, int), np.ones(n_test, int)]
    y = np.zeros(3 * n_test, int)  # the class-1 predictions are all wrong
    return z_tr, y_tr, y_tr, z_te, pred, y


def test_reference_estimator_honours_its_reg_and_min_count_arguments():
    """§7.5 with the options no config changes: the absolute `reg` (default 1e-6) sets where the collapsed
    class's correct samples fall among the errors; `min_count` is the least size of a training class and of a
    kept test group (default 3)."""
    from oracles import reference_auroc_oracle

    from binary_encoding.metrics.reliability import reference_mahalanobis_auroc

    case = _two_spreads()
    assert reference_mahalanobis_auroc(*case) == pytest.approx(0.505, abs=1e-12)
    assert reference_auroc_oracle(*case) == pytest.approx(0.505, abs=1e-12)
    assert reference_mahalanobis_auroc(*case, reg=1e-7) == 0.0
    for reg in (1e-5, 1.0):
        assert reference_mahalanobis_auroc(*case, reg=reg) == pytest.approx(1.01, abs=1e-12), reg
    assert math.isnan(reference_mahalanobis_auroc(*case, min_count=4))  # an error group of 3: none kept
    assert reference_mahalanobis_auroc(*_two_spreads(n_test=4), min_count=4) == pytest.approx(0.505, abs=1e-12)
    few = _two_spreads(n_train_1=3, n_test=4)  # class 1 trained on 3 samples: no Gaussian at min_count=4
    assert reference_mahalanobis_auroc(*few) == reference_auroc_oracle(*few) == 0.0  # kept at the default
    assert math.isnan(reference_mahalanobis_auroc(*few, min_count=4))


# ------------------------------------------------------------------------------------------------
# DeepFool (§8): the overshoot applies to the point it tests and to the perturbation it returns
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overshoot", [0.0, 0.5])
def test_deepfool_overshoot_scales_the_returned_step_of_a_linear_two_class_model(overshoot):
    """Two classes, linear logits: one step onto the boundary, ||r|| = (|f_1 - f_0| + 1e-4) / ||w_1 - w_0||
    times (1 + overshoot), fooled after that one step whatever the overshoot (even 0: the 1e-4 crosses)."""
    from binary_encoding.metrics.deepfool import deepfool

    model = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]))
        model.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        f = model(x)
    out = deepfool(model, x, overshoot=overshoot)
    expected = ((f[:, 1] - f[:, 0]).abs() + 1e-4) / math.sqrt(1 + 9 + 9) * (1 + overshoot)
    np.testing.assert_allclose(out["r"].norm(dim=1).numpy(), expected.numpy(), rtol=1e-12)
    assert out["fooled"].all() and out["n_iter"].tolist() == [1] * 6
    assert torch.equal(out["adv_pred"], 1 - f.argmax(1))


# ------------------------------------------------------------------------------------------------
# The callback's wiring (callbacks/metrics.py): which latents feed which metric, under which name
# ------------------------------------------------------------------------------------------------


def _latents(z, pred, y, num_classes, confidence=None, seed=0):
    """A `Latents` whose logits argmax to `pred` (with varied, seeded margins for the max-softmax score)."""
    from binary_encoding.callbacks.latents import Latents

    gen = torch.Generator().manual_seed(seed)
    pred = torch.as_tensor(pred)
    logits = torch.randn(len(pred), num_classes, generator=gen, dtype=torch.float64)
    margin = 3 * torch.rand(len(pred), generator=gen, dtype=torch.float64) if confidence is None else confidence
    logits[torch.arange(len(pred)), pred] = logits.max(1).values + margin
    return Latents(z=torch.as_tensor(z, dtype=torch.float64), logits=logits, y=torch.as_tensor(y))


def test_reliability_metrics_report_each_score_under_its_name_with_the_given_regularisation():
    """Every key against its oracle (§7): per-class Gaussians with `reg` (here 0.5, not the default), one
    class skipped (2 correct training samples), the reference estimate with its own absolute 1e-6, the
    max-softmax baseline from the test logits."""
    from oracles import (
        aurc_expected_reference,
        finite_scores,
        fpr_at_95_tpr_reference,
        mahalanobis_auroc_reference,
        mahalanobis_score_reference,
        reference_auroc_oracle,
    )
    from scipy.special import softmax
    from sklearn.metrics import roc_auc_score

    from binary_encoding.callbacks.metrics import reliability_metrics

    rng = np.random.default_rng(1)
    corners = rng.normal(size=(4, 3)) * 2

    def split(n, flip):
        y = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < flip, rng.integers(0, 4, n), y)
        return corners[pred] + rng.normal(size=(n, 3)) * (0.3 + 0.3 * pred[:, None]), pred, y

    z_tr, p_tr, y_tr = split(300, 0.1)
    p_tr[(p_tr == 3) & (y_tr == 3)] = 0  # class 3 ...
    p_tr[np.flatnonzero(y_tr == 3)[:2]] = 3  # ... keeps 2 correct training samples: skipped
    z_te, p_te, y_te = split(200, 0.3)
    train, test = _latents(z_tr, p_tr, y_tr, 4), _latents(z_te, p_te, y_te, 4, seed=1)
    out = reliability_metrics(train, test, 4, reg=0.5)
    args = (z_tr, p_tr, y_tr, z_te, p_te, y_te)
    correct = p_te == y_te
    doubt = mahalanobis_score_reference(*args[:5], reg=0.5)
    msp = -softmax(test.logits.numpy(), axis=1).max(1)
    expected = {
        "mahalanobis_auroc": mahalanobis_auroc_reference(*args, reg=0.5),
        "mahalanobis_auroc_ref": reference_auroc_oracle(*args),
        "mahalanobis_aurc": aurc_expected_reference(finite_scores(doubt), correct),
        "mahalanobis_fpr95": fpr_at_95_tpr_reference(correct, doubt),
        "msp_auroc": roc_auc_score(correct, -msp),
        "msp_aurc": aurc_expected_reference(msp, correct),
        "msp_fpr95": fpr_at_95_tpr_reference(correct, msp),
        "mahalanobis_skipped_classes": 1,
    }
    assert list(out) == list(expected)
    assert out == pytest.approx(expected, abs=1e-9)
    assert abs(mahalanobis_auroc_reference(*args) - expected["mahalanobis_auroc"]) > 1e-3  # reg matters here


class _TinyNet(torch.nn.Module):
    """(logits, z) with logits linear in z, as the project's module, with its `head.classifier` and `device`."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        self.head = torch.nn.Module()
        self.head.classifier = torch.nn.Linear(2, 4)
        self.double()

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, x):
        z = self.body(x)
        return self.head.classifier(z), z


@pytest.mark.parametrize("max_iter", [20, 1])
def test_robustness_attacks_every_test_image_when_fewer_than_asked_and_has_no_correct_ratio_without_correct(
    max_iter,
):
    """deepfool_samples=50 of 12 test images: all 12 attacked (deepfool_images 12), normalised as the data
    module says; rho against the textbook oracle; labels that no prediction matches: rho_correct NaN, and
    labels equal to the predictions: rho_correct = rho. With one DeepFool step 2 of the 12 images are not
    fooled: rho still averages over all 12 (the paper's rho is over the test images, fooled or not)."""
    from types import SimpleNamespace

    from oracles import robustness_oracle

    from binary_encoding.callbacks.metrics import FinalSettings, robustness

    net = _TinyNet().eval()
    x = torch.rand(12, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    normalize = lambda t: (t - 0.5) / 0.25  # noqa: E731
    with torch.no_grad():
        pred = net(normalize(x))[0].argmax(1)
    st = FinalSettings(deepfool_samples=50, deepfool_candidates=None, deepfool_max_iter=max_iter, deepfool_batch=5)
    ref = robustness_oracle(net, normalize(x), pred, num_candidates=None, overshoot=0.02, max_iter=max_iter)
    assert ref["deepfool_fooled"] == (1.0 if max_iter == 20 else pytest.approx(10 / 12))
    for y, rho_correct in (((pred + 1) % 4, float("nan")), (pred, ref["deepfool_rho"])):
        out = robustness(net, SimpleNamespace(x={"test": x}, y={"test": y}, normalize=normalize), st)
        assert out["deepfool_images"] == 12 and type(out["deepfool_images"]) is int
        assert out["deepfool_rho"] == pytest.approx(ref["deepfool_rho"], rel=1e-6)
        assert out["deepfool_fooled"] == pytest.approx(ref["deepfool_fooled"])
        assert out["deepfool_rho_correct"] == pytest.approx(rho_correct, rel=1e-6, nan_ok=True)


def test_geometry_metrics_feed_each_metric_its_latents_labels_predictions_and_weight():
    """Every per-epoch value of one split against its oracle, with 25% wrong predictions (so labels and
    predictions differ): binarity (sklearn), two-valuedness, agreements and codes over the predictions and
    the data set's classes, NC1-NC3 over the true labels, NC4 against the predictions."""
    from oracles import encoding_agreement_reference, two_valuedness_reference

    from binary_encoding.callbacks.metrics import geometry_metrics

    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 240)
    pred = np.where(rng.random(240) < 0.25, (y + 1) % 4, y)
    z = np.sign(rng.normal(size=(4, 3)))[y] * (1 + rng.random((240, 3))) + 0.6 * rng.normal(size=(240, 3))
    weight = rng.normal(size=(5, 3))  # 5 classes in the data set: class 4 never occurs
    out = geometry_metrics(_latents(z, pred, y, 5), 5, torch.tensor(weight))
    gmm, two = gmm_binarity_reference(z), two_valuedness_reference(z)
    codes = code_agreement_reference(z, pred, num_classes=5)
    nc = neural_collapse_reference(z, y, classifier_weight=weight)
    means = np.stack([z[y == c].mean(0) for c in range(4)])
    nearest = np.linalg.norm(z[:, None] - means[None], axis=2).argmin(1)
    expected = {
        "acc": (pred == y).mean(),
        "binarity_score": gmm[:, 0].mean(),
        "binarity_std": gmm[:, 1].mean(),
        "peak_dist_mean": gmm[:, 2].mean(),
        "peak_dist_std": gmm[:, 2].std(),
        "two_valued": two.mean(),
        "two_valued_min": two.min(),
        "agreement_dim": encoding_agreement_reference(z, pred),
        "agreement_code": codes["agreement"],
        "n_codes": codes["n_codes"],
        "top_codes_fraction": codes["top_codes_fraction"],
        "nc1": nc["nc1"],
        "sigma_w": nc["sigma_w"],
        "equinorm": nc["equinorm"],
        "nc3": nc["nc3"],
        "nc4": (nearest != pred).mean(),
        "skipped_classes": 1,
    }
    binarity = ("binarity_score", "binarity_std", "peak_dist_mean", "peak_dist_std")  # sklearn's Lloyd stops early
    assert {k: out[k] for k in binarity} == pytest.approx({k: expected.pop(k) for k in binarity}, rel=2e-3)
    assert out == pytest.approx({**out, **expected}, rel=1e-6)
    nc2 = {"equiangular", "maxangle", "w_equinorm", "w_equiangular", "w_maxangle"}
    assert set(out) == set(expected) | set(binarity) | nc2
    assert geometry_metrics(_latents(z, pred, y, 5), 5, None, split="val").keys() == set(out) - {
        "acc",  # val/acc is the module's (on the same data)
        *("w_equinorm", "w_equiangular", "w_maxangle", "nc3"),  # undefined without a classifier weight
    }


# ------------------------------------------------------------------------------------------------
# Settings of the callback: refusals with their messages, Hydra's types, runs recorded before the settings
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        ("FinalSettings", {"deepfool_samples": -1}, "deepfool_samples must be >= 0 (0 = skip), got -1"),
        ("FinalSettings", {"nc_labels": "true"}, "metrics.nc_labels must be 'labels' or 'pred', got 'true'"),
        ("FinalSettings", {"global_mean": "x"}, "metrics.global_mean must be 'samples' or 'class_means', got 'x'"),
        ("MetricSettings", {"every": -1}, "metrics_every must be >= 0 (0 = never), got -1"),
    ],
)
def test_metric_settings_refuse_out_of_range_values_with_the_config_key(cls, kwargs, message):
    import binary_encoding.callbacks.metrics as cb

    with pytest.raises(ValueError) as err:
        getattr(cb, cls)(**kwargs)
    assert str(err.value) == message


def test_metric_settings_accept_their_boundaries_and_hydras_types(tmp_path):
    """0 DeepFool images (skip) and every=0 (never) are allowed; a ListConfig of splits becomes a tuple, a
    Path output folder a str."""
    from omegaconf import OmegaConf

    from binary_encoding.callbacks.metrics import FinalSettings, MetricSettings

    assert FinalSettings(deepfool_samples=0, nc_labels="pred", global_mean="class_means").deepfool_samples == 0
    st = MetricSettings(every=0, splits=OmegaConf.create(["train"]), out_dir=tmp_path)
    assert st.every == 0 and st.splits == ("train",) and type(st.splits) is tuple and st.out_dir == str(tmp_path)
    assert MetricSettings().out_dir is None and MetricSettings().splits == ("train", "val")


def test_final_settings_of_a_recorded_run_come_from_its_settings_node_or_its_flat_keys():
    """`evaluate` reads the run's saved `callbacks.metrics`: the Hydra node `settings.final`, or (runs recorded
    before) flat keys, unknown ones ignored and missing ones at their defaults."""
    from omegaconf import OmegaConf

    from binary_encoding.callbacks.metrics import FinalSettings

    target = "binary_encoding.callbacks.metrics.FinalSettings"
    node = OmegaConf.create({"settings": {"final": {"_target_": target, "nc_labels": "pred", "seed": 4}}})
    assert FinalSettings.of_config(node) == FinalSettings(nc_labels="pred", seed=4)
    flat = OmegaConf.create({"every": 2, "deepfool_samples": 7, "mahalanobis_reg": 0.01, "global_mean": "class_means"})
    expected = FinalSettings(deepfool_samples=7, mahalanobis_reg=0.01, global_mean="class_means")
    assert FinalSettings.of_config(flat) == expected


# ------------------------------------------------------------------------------------------------
# The catalog: the exact names each record holds, and what `compute` runs for whom
# ------------------------------------------------------------------------------------------------

PER_EPOCH = ["binarity_score", "binarity_std", "peak_dist_mean", "peak_dist_std", "two_valued", "two_valued_min"]
PER_EPOCH += ["agreement_dim", "agreement_code", "n_codes", "top_codes_fraction", "nc1", "sigma_w", "equinorm"]
PER_EPOCH += ["equiangular", "maxangle", "w_equinorm", "w_equiangular", "w_maxangle", "nc3", "nc4", "skipped_classes"]


def test_summary_json_and_metrics_csv_hold_the_documented_names_in_catalog_order():
    from binary_encoding.metrics import catalog

    end = ["mahalanobis_auroc", "mahalanobis_auroc_ref", "mahalanobis_aurc", "mahalanobis_fpr95", "msp_auroc"]
    end += ["msp_aurc", "msp_fpr95", "mahalanobis_skipped_classes", "deepfool_rho", "deepfool_rho_correct"]
    end += ["deepfool_fooled", "deepfool_images"]
    final = [n for n in PER_EPOCH if n != "two_valued_min"]
    final.insert(final.index("two_valued") + 1, "two_valued_min")
    final.insert(final.index("two_valued_min") + 1, "two_valued_dims")  # summary.json only
    assert catalog.final_names() == ["train_acc", "val_acc", "test_acc", "train_majority", "train_abs_z", *final, *end]
    module = ["train/loss", "train/ce", "val/ce", "train/quad", "train/acc_aug", "train/images", "gamma"]
    per_split = [f"{s}/{n}" for n in ["acc", *PER_EPOCH] for s in ("train", "val")]
    assert catalog.logged_keys() == [*per_split, *module, "time/latent_metrics_s"]
    best = {"max": ["acc", "binarity_score", "two_valued", "two_valued_min", "agreement_dim", "agreement_code"]}
    best["max"] += ["top_codes_fraction"]
    best["min"] = ["nc1", "sigma_w"]
    expected = [(f"{s}/{n}", mode) for mode in ("max", "min") for n in best[mode] for s in ("train", "val")]
    expected += [("train/loss", "min"), ("train/ce", "min"), ("val/ce", "min")]
    assert sorted(catalog.summary_definitions()) == sorted(expected)
    assert catalog.table_columns() == [
        ("test_acc", "test acc (%)", 100, ".2f"),
        ("train_acc", "train acc (%)", 100, ".2f"),
        ("mahalanobis_auroc", "Mahalanobis AUROC (%)", 100, ".2f"),
        ("mahalanobis_auroc_ref", "Mahalanobis AUROC, reference estimate (%, can exceed 100)", 100, ".2f"),
        ("deepfool_rho", "DeepFool rho", 1, ".4f"),
        ("msp_auroc", "MSP AUROC (%)", 100, ".2f"),
        ("agreement_code", "code agreement", 1, ".4f"),
        ("n_codes", "n codes", 1, ".1f"),
        ("nc1", "NC1", 1, ".2e"),
        ("two_valued", "two-valued (sign R²)", 1, ".3f"),
    ]
    figures = {f: [(k, p.log, p.scale, p.optional) for k, p in v] for f, v in catalog.figures().items()}
    assert figures == {
        "fig5_accuracy": [("train/acc", False, 100, False), ("val/acc", False, 100, True)],
        "fig1_binarity": [
            ("train/binarity_score", False, 1, False),
            ("train/binarity_std", False, 1, False),
            ("train/peak_dist_mean", "auto", 1, False),
        ],
        "fig6_two_valued": [("train/two_valued", False, 1, False), ("train/two_valued_min", False, 1, False)],
        "fig3_agreement": [("train/agreement_dim", False, 1, False)],
        "fig4_collapse": [("train/sigma_w", True, 1, False), ("train/nc1", True, 1, False)],
    }


def test_catalog_compute_runs_each_group_once_and_skips_undefined_values_and_module_logged_metrics():
    """compute(data, split): the metrics of `split` the callback logs (not those the module logs: val/acc),
    each group function once, a value None or missing not logged; split None: the final ones."""
    from binary_encoding.metrics import catalog

    calls = []
    group = catalog.Group("probe", lambda d: calls.append(1) or {"probe_a": 1.5, "probe_b": None})
    names = ("probe_a", "probe_b", "probe_c")
    try:
        for name in names:
            catalog.register(catalog.Metric(name, ("train", "val"), final=name != "probe_a", group=group))
        with pytest.raises(ValueError, match="either compute or group, not both"):
            catalog.Metric("probe_d", compute=lambda d: 0.0, group=group)
        data = catalog.SplitData(
            torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.2, -0.8]]),
            torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0]]),
            torch.tensor([0, 1, 0]),
            2,
        )
        train, val, final = catalog.compute(data, "train"), catalog.compute(data, "val"), catalog.compute(data)
        assert len(calls) == 3  # one call per compute
        assert train["probe_a"] == val["probe_a"] == 1.5 and "probe_a" not in final
        assert not any(k in out for k in ("probe_b", "probe_c") for out in (train, val, final))
        assert train["acc"] == pytest.approx(2 / 3) and "acc" not in val and "acc" not in final
        assert set(final) == set(PER_EPOCH) - {"w_equinorm", "w_equiangular", "w_maxangle", "nc3"} | {"two_valued_dims"}
        assert catalog.get("gamma").key(catalog.NO_SPLIT) == "gamma" and catalog.get("gamma").key("val") == "val/gamma"
    finally:
        for name in names:
            catalog.unregister(name)


def test_end_of_fit_metrics_reuse_the_last_pass_only_at_the_same_step_and_skip_an_interrupted_fit(tmp_path):
    """on_fit_end: an interrupted fit computes nothing; the last epoch's kept latents serve only when no
    optimizer step happened since (here a stand-in whose predictions are all class 0: train_acc 1/3); the
    latents are saved (`<split>_z`, `_logits`, `_y`, `_pred`) when asked, on rank 0 only."""
    from types import SimpleNamespace

    from test_training_values import _Data, tiny_module

    from binary_encoding.callbacks.latents import Latents, collect_latents
    from binary_encoding.callbacks.metrics import FinalSettings, Metrics, MetricSettings

    torch.manual_seed(0)
    m, dm = tiny_module().eval(), _Data()
    stand_in = Latents(z=torch.randn(30, 2), logits=torch.eye(3)[torch.zeros(30, dtype=torch.long)], y=dm.y["train"])
    status = lambda v: SimpleNamespace(status=SimpleNamespace(value=v))  # noqa: E731

    def fit_end(step, kept_step, interrupted=False, rank0=True, out=None):
        cb = Metrics(MetricSettings(save_latents=True, out_dir=out, final=FinalSettings(deepfool_samples=0)))
        cb._kept = (kept_step, {"train": stand_in})
        trainer = SimpleNamespace(
            interrupted=interrupted, state=status("finished"), global_step=step, datamodule=dm, is_global_zero=rank0
        )
        cb.on_fit_end(trainer, m)
        assert cb._kept is None
        return cb.results

    assert fit_end(70, 70, interrupted=True) == {}
    assert fit_end(70, 70)["train_acc"] == pytest.approx(1 / 3)
    assert fit_end(71, 70)["train_acc"] == pytest.approx(collect_latents(m, dm, "train").acc) != pytest.approx(1 / 3)
    fit_end(70, 70, rank0=False, out=tmp_path)
    assert not (tmp_path / "latents.npz").exists()
    fit_end(70, 70, out=tmp_path)
    saved = np.load(tmp_path / "latents.npz")
    assert sorted(saved.files) == sorted(f"{s}_{k}" for s in dm.splits for k in ("z", "logits", "y", "pred"))
    np.testing.assert_array_equal(saved["train_pred"], np.zeros(30))
    np.testing.assert_array_equal(saved["test_y"], dm.y["test"].numpy())


def test_saved_latents_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """save_latents goes through files.write_atomic: a full disk during the write keeps the previous
    latents.npz (no cut-off archive, no temporary file); a write that succeeds replaces it."""
    import errno

    from binary_encoding.callbacks.latents import Latents
    from binary_encoding.callbacks.metrics import save_latents
    from binary_encoding.record import files

    path = tmp_path / "latents.npz"
    lat = lambda v: Latents(z=torch.full((4, 2), v), logits=torch.eye(3)[[0, 1, 2, 0]], y=torch.tensor([0, 1, 2, 0]))  # noqa: E731
    save_latents({"train": lat(1.0)}, path)
    before = path.read_bytes()

    def full(p, data):
        Path(p).write_bytes(data[: len(data) // 3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_synced", full)
    with pytest.raises(OSError, match="No space left"):
        save_latents({"train": lat(2.0)}, path)
    assert path.read_bytes() == before and not files.temp_path(path).exists()
    monkeypatch.undo()
    save_latents({"train": lat(2.0)}, path)
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["train_z"], np.full((4, 2), 2.0, np.float32))
        np.testing.assert_array_equal(saved["train_pred"], [0, 1, 2, 0])
