import math

import numpy as np
import pytest
import torch
from oracles import mahalanobis_distance_reference
from sklearn.metrics import roc_auc_score, roc_curve

from binary_encoding.metrics.reliability import (
    fit_class_gaussians,
    mahalanobis_distance,
    max_softmax_score,
    misclassification_scores,
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
        fpr, tpr, _ = roc_curve(correct.numpy(), -score.numpy())
        assert res["fpr_at_95_tpr"] == pytest.approx(fpr[np.searchsorted(tpr, 0.95)], abs=1e-12)


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
    zs = ((z.double() - z.double().mean(0)) / z.double().std(0, unbiased=False)).numpy()
    m = ((pred == y) & (pred == 3)).numpy()
    np.testing.assert_allclose(gauss.means[3].numpy(), zs[m].mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gauss.covariances[3].numpy(), np.cov(zs[m].T), rtol=1e-4, atol=1e-5)
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
    assert 0.0 <= res["auroc"] <= 1.0


def test_max_softmax_score():
    logits = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    s = max_softmax_score(logits)
    assert s[1] == pytest.approx(0.5) and s[0] < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_placement():
    z, pred, y = _random_data(500, 5, 6, seed=4)
    gauss = fit_class_gaussians(z.cuda(), pred.cuda(), y.cuda(), 5)
    dist = mahalanobis_distance(gauss, z.cuda(), pred.cuda())
    assert dist.device.type == "cuda"
    np.testing.assert_allclose(dist.cpu().numpy(), mahalanobis_distance_reference(gauss, z, pred), rtol=1e-5)
    res = misclassification_scores(dist, (pred == y).cuda())
    assert 0 <= res["auroc"] <= 1
    assert max_softmax_score(torch.randn(4, 3, device="cuda")).device.type == "cuda"
