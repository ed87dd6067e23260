import math

import numpy as np
import pytest
import torch
from oracles import (
    aurc_expected_reference,
    aurc_reference,
    class_gaussian_reference,
    finite_scores,
    fpr_at_95_tpr_reference,
    mahalanobis_distance_reference,
    mahalanobis_reference,
    reference_auroc_oracle,
    standardize_reference,
)
from sklearn.metrics import roc_auc_score

from binary_encoding.metrics.reliability import (
    fit_class_gaussians,
    mahalanobis_distance,
    max_softmax_score,
    misclassification_scores,
    quantile_sum_auroc,
    reference_mahalanobis_auroc,
)


def test_auroc_matches_sklearn_with_ties():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        score = torch.randint(0, 20, (500,), generator=g).double()  # many ties
        correct = torch.rand(500, generator=g) < 0.7
        res = misclassification_scores(score, correct)
        ref = roc_auc_score(correct.numpy(), -score.numpy())
        assert res["auroc"] == pytest.approx(ref, abs=1e-12)
        score = torch.randn(300, generator=g)
        correct = torch.rand(300, generator=g) < 0.4
        res = misclassification_scores(score, correct)
        assert res["auroc"] == pytest.approx(roc_auc_score(correct.numpy(), -score.numpy()), abs=1e-12)
        assert res["fpr_at_95_tpr"] == pytest.approx(fpr_at_95_tpr_reference(correct.numpy(), score.numpy()), abs=1e-12)


def _aurc_min(n, e):
    return sum((k - (n - e)) / k for k in range(n - e + 1, n + 1)) / n


def _aurc_max(n, e):
    return (e + sum(e / k for k in range(e + 1, n + 1))) / n


def test_aurc_perfect_and_reversed():
    n, e = 50, 7
    correct = torch.ones(n, dtype=torch.bool)
    correct[-e:] = False
    perfect = torch.arange(n).double()  # errors have the largest scores
    res = misclassification_scores(perfect, correct)
    assert res["aurc"] == pytest.approx(_aurc_min(n, e), abs=1e-12)
    assert res["auroc"] == pytest.approx(1.0)
    res = misclassification_scores(-perfect, correct)
    assert res["aurc"] == pytest.approx(_aurc_max(n, e), abs=1e-12)
    assert res["auroc"] == pytest.approx(0.0)
    # hand value: n=4, e=1 -> (1/4) * (1/4) ; reversed -> (1 + 1/2 + 1/3 + 1/4)/4
    c4 = torch.tensor([True, True, True, False])
    s4 = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert misclassification_scores(s4, c4)["aurc"] == pytest.approx(1 / 16)
    assert misclassification_scores(-s4, c4)["aurc"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    # all tied -> expected risk = error rate at every coverage
    assert misclassification_scores(torch.zeros(4), c4)["aurc"] == pytest.approx(0.25)


def test_fpr95_hand_example():
    # 20 correct with scores 0..19, 4 wrong with scores 3.5, 17.5, 18.5, 30
    # 95% TPR -> accept the 19 most confident correct (score <= 18): wrong accepted: 3.5, 17.5
    score = torch.cat([torch.arange(20).double(), torch.tensor([3.5, 17.5, 18.5, 30.0])])
    correct = torch.cat([torch.ones(20, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)])
    assert misclassification_scores(score, correct)["fpr_at_95_tpr"] == pytest.approx(0.5)


def test_all_correct_or_all_wrong_nan():
    s = torch.randn(10)
    res = misclassification_scores(s, torch.ones(10, dtype=torch.bool))
    assert math.isnan(res["auroc"]) and math.isnan(res["fpr_at_95_tpr"]) and res["aurc"] == 0.0
    res = misclassification_scores(s, torch.zeros(10, dtype=torch.bool))
    assert math.isnan(res["auroc"]) and res["aurc"] == pytest.approx(1.0)


def test_empty_and_single_sample_inputs():
    empty = misclassification_scores(torch.zeros(0), torch.zeros(0, dtype=torch.bool))
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("auroc", "aurc", "fpr_at_95_tpr", "error_rate"))
    one = misclassification_scores(torch.tensor([0.3]), torch.tensor([False]))
    assert one["n"] == 1 and one["aurc"] == 1.0 and one["error_rate"] == 1.0 and math.isnan(one["auroc"])


def _random_data(n, c, d, seed):
    g = torch.Generator().manual_seed(seed)
    centers = 3 * torch.randn(c, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    z = centers[y] + torch.randn(n, d, generator=g) * (0.5 + torch.rand(d, generator=g))
    pred = torch.where(torch.rand(n, generator=g) < 0.9, y, torch.randint(0, c, (n,), generator=g))
    return z, pred, y


@pytest.mark.parametrize("d", [4, 64])
def test_batched_mahalanobis_matches_scipy(d):
    c = 10
    z, pred, y = _random_data(3000, c, d, seed=d)
    gauss = fit_class_gaussians(z, pred, y, c)
    assert gauss.n_skipped == 0
    # the fit itself: class mean / covariance of the correct standardized samples
    mean, cov = class_gaussian_reference(z.double().numpy(), pred.numpy(), y.numpy(), 3)
    np.testing.assert_allclose(gauss.means[3].numpy(), mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gauss.covariances[3].numpy(), cov, rtol=1e-4, atol=1e-5)
    zt, pt, _ = _random_data(400, c, d, seed=100 + d)
    dist = mahalanobis_distance(gauss, zt, pt)
    ref = mahalanobis_distance_reference(gauss, zt, pt)
    np.testing.assert_allclose(dist.numpy(), ref, rtol=1e-5)
    # the order of the samples does not matter (distances are computed grouped by class)
    perm = torch.randperm(len(pt))
    np.testing.assert_allclose(
        mahalanobis_distance(gauss, zt[perm], pt[perm]).numpy(), dist.numpy()[perm.numpy()], rtol=1e-12
    )


def test_collapsed_class_finite():
    c, d = 3, 5
    z, pred, y = _random_data(300, c, d, seed=1)
    z[y == 1] = torch.full((d,), 0.7)  # class 1 fully collapsed
    gauss = fit_class_gaussians(z, pred, y, c)
    assert bool(gauss.valid.all())
    assert torch.isfinite(gauss.precisions).all()
    # identical latents: zero covariance, trace 0, regularised with s = 1, i.e. 1e-6 * I (docs/method.md
    # §7.1), so a point at distance r (standardized) from the class point is at Mahalanobis r / 1e-3
    assert torch.equal(gauss.covariances[1], 1e-6 * torch.eye(d, dtype=torch.float64))
    zn = z.double().numpy()
    point = float(np.float32(0.7))  # the class point as stored in the float32 latents
    probe = np.full((3, d), point) + np.array([0.0, 1e-4, 1e-2])[:, None]
    offset = (probe - point) / zn.std(0)
    near = mahalanobis_distance(gauss, torch.tensor(probe), torch.ones(3, dtype=torch.long)).numpy()
    np.testing.assert_allclose(near, np.linalg.norm(offset, axis=1) / 1e-3, rtol=1e-6, atol=1e-9)
    dist = mahalanobis_distance(gauss, z, pred)
    assert torch.isfinite(dist).all()
    np.testing.assert_allclose(dist.numpy(), mahalanobis_distance_reference(gauss, z, pred), rtol=1e-5)


def test_small_class_skipped():
    c, d = 4, 3
    z, pred, y = _random_data(200, c, d, seed=2)
    idx = torch.nonzero(y == 2).flatten()
    pred[y == 2] = 0  # all of class 2 misclassified ...
    pred[idx[:2]] = 2  # ... except 2 samples
    pred[(y != 2) & (pred == 2)] = 1
    gauss = fit_class_gaussians(z, pred, y, c)
    assert gauss.n_skipped == 1 and not bool(gauss.valid[2]) and int(gauss.counts[2]) == 2
    dist = mahalanobis_distance(gauss, z, pred)
    assert torch.isinf(dist[pred == 2]).all() and torch.isfinite(dist[pred != 2]).all()
    res = misclassification_scores(dist, pred == y)
    d = dist.numpy()
    d[np.isinf(d)] = d[np.isfinite(d)].max() + 1  # +inf ranks least confident (sklearn needs finite)
    assert res["auroc"] == pytest.approx(roc_auc_score((pred == y).numpy(), -d), abs=1e-12)


def test_max_softmax_score():
    logits = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    s = max_softmax_score(logits)
    assert s[1] == pytest.approx(0.5) and s[0].item() == pytest.approx(math.exp(-10) / (1 + math.exp(-10)), rel=1e-9)
    from scipy.special import softmax

    many = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 5
    np.testing.assert_allclose(max_softmax_score(many).numpy(), 1 - softmax(many.double().numpy(), axis=1).max(1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_placement():
    z, pred, y = _random_data(500, 5, 6, seed=4)
    gauss = fit_class_gaussians(z.cuda(), pred.cuda(), y.cuda(), 5)
    dist = mahalanobis_distance(gauss, z.cuda(), pred.cuda())
    assert dist.device.type == "cuda"
    np.testing.assert_allclose(dist.cpu().numpy(), mahalanobis_distance_reference(gauss, z, pred), rtol=1e-5)
    res = misclassification_scores(dist, (pred == y).cuda())
    cpu = misclassification_scores(dist.cpu(), pred == y)
    assert res == pytest.approx(cpu, abs=1e-12)
    assert max_softmax_score(torch.randn(4, 3, device="cuda")).device.type == "cuda"


# --------------------------------------------------------------------------------------------------
# Ties (saturated max-softmax, +inf for skipped classes) and the boundaries of the rank statistics
# --------------------------------------------------------------------------------------------------


def _tied_cases():
    rng = np.random.default_rng(7)
    cases = {}
    for i in range(4):  # few distinct levels: large tied blocks everywhere, both classes inside them
        n = int(rng.integers(50, 400))
        cases[f"levels{i}"] = (rng.integers(0, 1 + i, n).astype(float), rng.random(n) < 0.8)
    # saturated max-softmax: most confident samples have a score of exactly 0
    s = np.where(rng.random(300) < 0.6, 0.0, rng.random(300))
    cases["saturated"] = (s, (s == 0) | (rng.random(300) < 0.5))
    n = 100
    cases["all_equal"] = (np.full(n, 0.25), np.arange(n) % 4 != 0)
    # 20 correct: 18 at score 0, then 2 tied at 1 with 3 errors, 2 more errors at 2. The 95% point
    # (19th correct) lies inside the tied block: the threshold accepts the whole block, FPR = 3/5.
    cases["straddle"] = (
        np.array([0.0] * 18 + [1.0] * 2 + [1.0] * 3 + [2.0] * 2),
        np.array([True] * 20 + [False] * 5),
    )
    # +inf: samples predicted as a skipped class, tied at the least confident end
    s = rng.integers(0, 5, 200).astype(float)
    s[rng.random(200) < 0.15] = np.inf
    cases["infinite"] = (s, rng.random(200) < 0.7)
    return cases


TIED = _tied_cases()


@pytest.mark.parametrize("case", list(TIED))
def test_tied_scores_give_sklearn_auroc_and_fpr_at_95_tpr(case):
    score, correct = TIED[case]
    res = misclassification_scores(torch.tensor(score), torch.tensor(correct))
    s = finite_scores(score)
    assert res["auroc"] == pytest.approx(roc_auc_score(correct, -s), abs=1e-12)
    assert res["fpr_at_95_tpr"] == pytest.approx(fpr_at_95_tpr_reference(correct, s), abs=1e-12)
    assert res["error_rate"] == pytest.approx(1 - correct.mean(), abs=1e-12) and res["n"] == len(score)


def test_fpr_at_95_tpr_accepts_the_whole_tied_block_at_the_95_percent_point():
    score, correct = TIED["straddle"]
    assert misclassification_scores(torch.tensor(score), torch.tensor(correct))["fpr_at_95_tpr"] == 3 / 5
    score, correct = TIED["all_equal"]
    res = misclassification_scores(torch.tensor(score), torch.tensor(correct))
    assert res["fpr_at_95_tpr"] == 1.0 and res["auroc"] == 0.5 and res["aurc"] == pytest.approx(0.25, abs=1e-15)


@pytest.mark.parametrize("n_neg", [1, 3])
def test_fpr_at_95_tpr_rank_for_every_number_of_correct_samples(n_neg):
    """The 95% point is the ceil(0.95 n_pos)-th correct sample: check every n_pos from 1 (the smallest
    defined case) across the exact multiples of 20 (where 0.95 n_pos is an integer), with ties."""
    rng = np.random.default_rng(n_neg)
    for n_pos in range(1, 62):
        score = rng.integers(0, 8, n_pos + n_neg).astype(float)
        correct = np.arange(n_pos + n_neg) < n_pos
        res = misclassification_scores(torch.tensor(score), torch.tensor(correct))
        assert res["fpr_at_95_tpr"] == pytest.approx(fpr_at_95_tpr_reference(correct, score), abs=1e-12), n_pos
        assert res["auroc"] == pytest.approx(roc_auc_score(correct, -score), abs=1e-12), n_pos
        # distinct scores: one point of the ROC per sample, so an off-by-one rank changes the FPR
        score = rng.permutation(n_pos + n_neg).astype(float)
        res = misclassification_scores(torch.tensor(score), torch.tensor(correct))
        assert res["fpr_at_95_tpr"] == pytest.approx(fpr_at_95_tpr_reference(correct, score), abs=1e-12), n_pos


@pytest.mark.parametrize("seed", range(4))
def test_aurc_with_ties_is_the_mean_over_every_tie_breaking_order(seed):
    rng = np.random.default_rng(seed)
    n = 8
    score = rng.integers(0, 3, n).astype(float)  # blocks of tied scores holding correct and wrong samples
    correct = rng.random(n) < 0.6
    correct[:2] = [True, False]
    score[:2] = score[2]  # at least one tie mixing both classes
    res = misclassification_scores(torch.tensor(score), torch.tensor(correct))
    assert res["aurc"] == pytest.approx(aurc_reference(score, correct), abs=1e-12)
    perm = rng.permutation(n)  # ... hence the same value whatever the input order
    again = misclassification_scores(torch.tensor(score[perm]), torch.tensor(correct[perm]))
    assert again["aurc"] == pytest.approx(res["aurc"], abs=1e-12)
    # the expectation oracle the end-of-run wiring test uses (any n) agrees with the n! orderings
    assert aurc_expected_reference(score, correct) == pytest.approx(aurc_reference(score, correct), abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Per-class Gaussians: the class-size threshold at, below and above its boundary, and the defaults
# --------------------------------------------------------------------------------------------------


def _sized_classes(sizes, d=4, seed=0):
    """Class c has exactly sizes[c] correctly classified samples, plus 3 samples labelled c + 1 but
    predicted as c (so counting predictions instead of correct predictions would reach the threshold)."""
    gen = torch.Generator().manual_seed(seed)
    zs, ys, ps = [], [], []
    c_all = len(sizes)
    for c, m in enumerate(sizes):
        zs.append(2.0 * c + torch.randn(m + 3, d, generator=gen, dtype=torch.float64) * (1 + c))
        ys.append(torch.tensor([c] * m + [(c + 1) % c_all] * 3))
        ps.append(torch.full((m + 3,), c))
    return torch.cat(zs), torch.cat(ps), torch.cat(ys)


@pytest.mark.parametrize("min_count", [None, 5])
def test_class_with_exactly_min_count_correct_samples_is_fitted_and_one_fewer_is_skipped(min_count):
    """docs/method.md §7.1: a class with 2 or fewer correct samples is skipped (default min_count=3);
    classes of m - 1, m, m + 1 correct samples for the threshold m."""
    m = 3 if min_count is None else min_count
    sizes = [40, m - 1, m, m + 1]
    z, pred, y = _sized_classes(sizes)
    kw = {} if min_count is None else {"min_count": min_count}
    gauss = fit_class_gaussians(z, pred, y, 4, **kw)
    assert gauss.valid.tolist() == [True, False, True, True]
    assert gauss.counts.tolist() == sizes and gauss.n_skipped == 1
    assert torch.equal(gauss.covariances[1], torch.eye(4, dtype=torch.float64))  # skipped: identity
    for c in (2, 3):  # at and above the boundary: the fitted Gaussian itself
        mean, cov = class_gaussian_reference(z.numpy(), pred.numpy(), y.numpy(), c, reg=1e-6)
        np.testing.assert_allclose(gauss.means[c].numpy(), mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gauss.covariances[c].numpy(), cov, rtol=1e-10, atol=1e-14)
    dist = mahalanobis_distance(gauss, z, pred)
    assert torch.isinf(dist[pred == 1]).all() and torch.isfinite(dist[pred != 1]).all()


def test_mahalanobis_regularisation_default_is_1e_6_of_the_mean_variance():
    """Called without reg_covar: a class of 3 correct samples in D=4 has a singular covariance, so the
    distance of a point off its plane is set by the regularisation (1e-6 documented, §7.1)."""
    z, pred, y = _sized_classes([30, 3, 25], d=4, seed=3)
    gauss = fit_class_gaussians(z, pred, y, 3)
    probe = z[pred == 1] + torch.linspace(-1, 1, 4, dtype=torch.float64)
    dist = mahalanobis_distance(gauss, probe, torch.ones(len(probe), dtype=torch.long)).numpy()

    def oracle(reg):
        mean, std = standardize_reference(z.numpy())
        return mahalanobis_reference((probe.numpy() - mean) / std, *class_gaussian_reference(z, pred, y, 1, reg))

    np.testing.assert_allclose(dist, oracle(1e-6), rtol=1e-5)
    assert np.all(np.abs(oracle(1e-5) / oracle(1e-6) - 1) > 0.1)  # the default matters here
    for c in (0, 2):
        _, cov = class_gaussian_reference(z, pred, y, c, 1e-6)
        np.testing.assert_allclose(gauss.covariances[c].numpy(), cov, rtol=1e-10)


def test_constant_dimension_is_left_unscaled_and_collapsed_class_gets_the_identity_floor():
    """§7.1: a dimension with zero std is not scaled (std := 1); a class collapsed onto one point has
    trace 0, so its covariance is reg * 1 * I exactly."""
    z, pred, y = _sized_classes([20, 20, 20], d=3, seed=5)
    z[:, 2] = 4.0  # constant over every training sample
    z[(pred == 1) & (y == 1)] = torch.tensor([0.5, -0.5, 4.0], dtype=torch.float64)  # class 1 collapsed
    gauss = fit_class_gaussians(z, pred, y, 3)
    assert gauss.std[2].item() == 1.0 and gauss.mean[2].item() == 4.0
    assert torch.equal(gauss.covariances[1], 1e-6 * torch.eye(3, dtype=torch.float64))
    _, cov = class_gaussian_reference(z, pred, y, 0)  # std := 1 in the constant dimension
    np.testing.assert_allclose(gauss.covariances[0].numpy(), cov, rtol=1e-10, atol=1e-15)
    assert torch.isfinite(mahalanobis_distance(gauss, z, pred)).all()


# ---------------------------------------------------------------------- the reference's estimator (§7.5)


def test_quantile_sum_of_perfectly_separated_scores_is_101_hundredths_and_reversed_is_0():
    """Every correct score below every misclassified one: all 101 thresholds count 1, so the sum is
    1.01 (above 1: the reason it is not the headline); the reverse order counts nothing."""
    correct, wrong = np.arange(10.0), np.arange(20.0, 25.0)
    assert quantile_sum_auroc(correct, wrong) == pytest.approx(1.01, abs=1e-12)
    assert quantile_sum_auroc(wrong, correct) == 0.0
    assert roc_auc_score([1] * 10 + [0] * 5, -np.r_[correct, wrong]) == 1.0  # the exact value stays 1


def test_quantile_sum_hand_example_differs_from_the_exact_auroc():
    """correct (0, 1, 2), misclassified (1.5, 3): thresholds 1.5 + 1.5 u, u = 0, 0.01, ..., 1. 0 and 1 lie
    below every threshold (2/3 at each of the 101); 2 lies below those with u > 1/3 (67 of them):
    (101 * 2/3 + 67 / 3) / 100 = 269/300, where the exact AUROC is 5/6."""
    correct, wrong = np.array([0.0, 1.0, 2.0]), np.array([1.5, 3.0])
    assert quantile_sum_auroc(correct, wrong) == pytest.approx(269 / 300, abs=1e-12)
    assert roc_auc_score([1, 1, 1, 0, 0], -np.r_[correct, wrong]) == pytest.approx(5 / 6)
    assert math.isnan(quantile_sum_auroc(correct, []))
    with pytest.raises(ValueError, match="n_thresholds"):
        quantile_sum_auroc(correct, wrong, n_thresholds=1)


@pytest.mark.parametrize("shift", [0.5, 1.5])
def test_quantile_sum_approaches_the_exact_auroc_plus_half_a_step_on_a_large_sample(shift):
    """Large overlapping samples: the sum of 101 points is the trapezoidal integral (-> the exact AUROC)
    plus half a step at both ends, (F(t_0) + F(t_100)) / 200 with F(t) = mean(correct < t): about 0.005."""
    rng = np.random.default_rng(0)
    correct, wrong = rng.standard_normal(40_000), rng.standard_normal(20_000) + shift
    exact = roc_auc_score(np.r_[np.ones(40_000), np.zeros(20_000)], -np.r_[correct, wrong])
    ends = ((correct < wrong.min()).mean() + (correct < wrong.max()).mean()) / 200
    assert ends == pytest.approx(0.005, abs=1e-4)
    assert quantile_sum_auroc(correct, wrong) == pytest.approx(exact + ends, abs=5e-4)


def _latent_fixture(seed, n_train=300, n_test=200, d=3, classes=4, flip=0.15):
    """Latents around one corner per class, with `flip` of the predictions wrong (train and test)."""
    rng = np.random.default_rng(seed)
    corners = rng.choice([-1.0, 1.0], size=(classes, d))

    def split(n):
        y = rng.integers(0, classes, n)
        pred = np.where(rng.random(n) < flip, rng.integers(0, classes, n), y)
        return corners[pred] + 0.3 * rng.standard_normal((n, d)), pred, y

    return (*split(n_train), *split(n_test))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_estimator_matches_sklearn_gaussians_and_scipy_distances(seed):
    args = _latent_fixture(seed)
    assert reference_mahalanobis_auroc(*args) == pytest.approx(reference_auroc_oracle(*args), abs=1e-9)
    as_tensors = [torch.tensor(a) for a in args]
    assert reference_mahalanobis_auroc(*as_tensors) == pytest.approx(reference_mahalanobis_auroc(*args), abs=1e-12)


def _boundary_case(n_wrong_1, n_correct_1=20):
    """Two classes in 1-d, Gaussians fitted on 50 training latents each. Test: class 0 has 20 correct
    samples and 3 errors far from its mean, class 1 `n_correct_1` correct samples and `n_wrong_1` errors
    close to its mean (ranked as confident as its correct samples)."""
    z_tr = np.r_[np.linspace(-1.2, -0.8, 50), np.linspace(0.8, 1.2, 50)][:, None]
    y_tr = np.r_[np.zeros(50, int), np.ones(50, int)]
    z0 = np.r_[np.linspace(-1.1, -0.9, 20), [-0.2, -0.5, -1.6]]
    z1 = np.r_[np.linspace(0.9, 1.1, n_correct_1), np.linspace(0.97, 1.03, n_wrong_1)]
    z_te = np.r_[z0, z1][:, None]
    pred = np.r_[np.zeros(23, int), np.ones(n_correct_1 + n_wrong_1, int)]
    y = pred.copy()
    y[20:23] = 1
    y[23 + n_correct_1 :] = 0
    return z_tr, y_tr, y_tr, z_te, pred, y


def _without(case, drop):
    z_tr, p_tr, y_tr, z_te, pred, y = case
    keep = ~drop
    return z_tr, p_tr, y_tr, z_te[keep], pred[keep], y[keep]


def test_reference_estimator_drops_a_class_group_of_2_test_samples_and_keeps_one_of_3():
    """The class filter of §7.5 at its boundary: a class's misclassified (or correct) test samples count
    only when there are more than 2 of them."""
    two, three = _boundary_case(2), _boundary_case(3)
    wrong_1 = lambda c: (c[4] == 1) & (c[4] != c[5])  # noqa: E731
    assert reference_mahalanobis_auroc(*two) == pytest.approx(reference_mahalanobis_auroc(*_without(two, wrong_1(two))))
    kept = reference_mahalanobis_auroc(*three)
    assert kept != pytest.approx(reference_mahalanobis_auroc(*_without(three, wrong_1(three))))
    assert kept == pytest.approx(reference_auroc_oracle(*three), abs=1e-12)
    few_correct = _boundary_case(3, n_correct_1=2)
    correct_1 = (few_correct[4] == 1) & (few_correct[4] == few_correct[5])
    dropped = reference_mahalanobis_auroc(*_without(few_correct, correct_1))
    assert reference_mahalanobis_auroc(*few_correct) == pytest.approx(dropped)
    assert reference_mahalanobis_auroc(*_boundary_case(3, n_correct_1=3)) != pytest.approx(dropped)
    only_two_errors = _without(two, (two[4] == 0) & (two[4] != two[5]))  # no class keeps its errors
    assert math.isnan(reference_mahalanobis_auroc(*only_two_errors))


def test_reference_estimator_regularizes_a_collapsed_class_with_an_absolute_1e_6():
    """Identical training latents of a class: covariance 0 + 1e-6 I, distance |z - mu| / 1e-3 in
    standardized units; errors away from the point, correct samples on it: 1.01, never NaN."""
    z_tr = np.r_[np.full((30, 2), -1.0), np.full((30, 2), 1.0)]
    y_tr = np.r_[np.zeros(30, int), np.ones(30, int)]
    z_te = np.r_[np.full((5, 2), -1.0), np.full((3, 2), -0.9), np.full((5, 2), 1.0)]
    pred = np.r_[np.zeros(8, int), np.ones(5, int)]
    y = np.r_[np.zeros(5, int), np.ones(3, int), np.ones(5, int)]
    assert reference_mahalanobis_auroc(z_tr, y_tr, y_tr, z_te, pred, y) == pytest.approx(1.01)
    assert reference_auroc_oracle(z_tr, y_tr, y_tr, z_te, pred, y) == pytest.approx(1.01)
