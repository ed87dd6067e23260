"""Tests of binary_encoding.metrics.geometry: known answers and oracle parity (sklearn, numpy)."""

import itertools
import math

import numpy as np
import pytest
import torch
from oracles import code_agreement_reference, gmm_binarity_reference, neural_collapse_reference

from binary_encoding.metrics.geometry import (
    class_codes,
    code_agreement,
    encoding_agreement,
    gmm_binarity,
    neural_collapse,
)


def _hypercube(n_per_class=50, noise=1e-6, seed=0):
    """C=8 classes at the vertices of {-1, 1}^3, plus tiny Gaussian noise."""
    gen = torch.Generator().manual_seed(seed)
    vertices = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)))
    labels = torch.arange(8).repeat_interleave(n_per_class)
    z = vertices[labels] + noise * torch.randn(len(labels), 3, generator=gen)
    return z, labels


@pytest.mark.parametrize("noise", [0.0, 1e-6])
def test_perfect_hypercube_code(noise):
    z, labels = _hypercube(noise=noise)
    assert encoding_agreement(z, labels, 8) == 1.0
    codes = code_agreement(z, labels, num_classes=8)
    assert codes == {"agreement": 1.0, "n_codes": 8, "top_codes_fraction": 1.0, "unique_class_codes": 8}
    weight = z[::50].clone()
    nc = neural_collapse(z, labels, pred=labels, classifier_weight=weight)
    assert nc["skipped_classes"] == 0 and nc["nc4"] == 0.0
    ref = neural_collapse_reference(z.double().numpy(), labels.numpy(), classifier_weight=weight.double().numpy())
    assert nc["nc1"] == pytest.approx(ref["nc1"], rel=1e-6, abs=1e-300)  # 0 without noise, ~1e-12 with
    assert nc["equinorm"] == pytest.approx(ref["equinorm"], rel=1e-6, abs=1e-15)
    # NC3: centred means M [D, C] against the weight rows, both scaled to unit Frobenius norm
    assert nc["nc3"] == pytest.approx(ref["nc3"], rel=1e-6, abs=1e-15)
    gmm = gmm_binarity(z)
    # reg_covar=1e-6 on +-1 standardised points: score = log(1/2) - log(2 pi 1e-6)/2 = 5.2975,
    # component std sqrt(1e-6), peak distance 2 / 1e-3
    assert gmm["score"] == pytest.approx(math.log(0.5) - 0.5 * math.log(2 * math.pi * 1e-6), rel=1e-6)
    assert gmm["std"] == pytest.approx(1e-3, rel=1e-5) and gmm["peak_dist_mean"] == pytest.approx(2000, rel=1e-5)


def _ours(z, **kw):
    out = gmm_binarity(torch.tensor(z, dtype=torch.float32), **kw)
    return np.stack([out[k].numpy() for k in ("score_per_dim", "std_per_dim", "peak_dist_per_dim")], 1)


def test_gmm_parity_with_sklearn_bimodal():
    rng = np.random.default_rng(0)
    pick = rng.random((2000, 6)) < 0.5
    z = np.where(pick, rng.normal(-2, 0.5, (2000, 6)), rng.normal(2, 1, (2000, 6)))
    ref, ours = gmm_binarity_reference(z), _ours(z)
    rel = np.abs(ours - ref) / np.abs(ref)
    assert rel[:, 0].max() < 1e-5  # measured 5e-7
    assert rel[:, 1:].max() < 1e-3  # measured 5e-5
    out = gmm_binarity(torch.tensor(z))
    assert out["score"] == pytest.approx(ref[:, 0].mean(), rel=1e-5)
    assert out["peak_dist_mean"] == pytest.approx(ref[:, 2].mean(), rel=1e-3)
    assert out["peak_dist_std"] == pytest.approx(ref[:, 2].std(), rel=1e-2)


def test_gmm_parity_with_sklearn_unimodal():
    # A single Gaussian: EM creeps along a flat likelihood and stops on tol=1e-3, so the stopping
    # point depends on the k-means start (sklearn's Lloyd stops early, ours is the exact 2-means).
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2000, 4))
    ref, ours = gmm_binarity_reference(z), _ours(z)
    rel = np.abs(ours - ref) / np.abs(ref)
    assert rel[:, 0].max() < 1e-3  # measured 2e-5
    assert rel[:, 1:].max() < 2e-2  # measured 1.3e-3


def test_gmm_saturated_and_constant_columns():
    signs = torch.tensor([-1.0, 1.0]).repeat(100)
    z = torch.stack([signs, torch.full_like(signs, 3.0)], 1)
    out = gmm_binarity(z, n_init=3)
    log_norm = -0.5 * math.log(2 * math.pi * 1e-6)
    assert out["score_per_dim"][0].item() == pytest.approx(math.log(0.5) + log_norm, rel=1e-6)
    assert out["score_per_dim"][1].item() == pytest.approx(log_norm, rel=1e-6)  # all zeros
    assert out["peak_dist_per_dim"].tolist() == pytest.approx([2 / 1e-3, 0.0], rel=1e-6, abs=1e-9)


def test_isotropic_blobs_within_class_covariance_and_nc1():
    gen = torch.Generator().manual_seed(0)
    c, d, n, s = 5, 8, 2000, 0.5
    true_means = 3 * torch.randn(c, d, generator=gen, dtype=torch.float64)
    labels = torch.arange(c).repeat_interleave(n)
    z = true_means[labels] + s * torch.randn(c * n, d, generator=gen, dtype=torch.float64)
    out = neural_collapse(z, labels)
    assert out["trace_sigma_w"] == pytest.approx(d * s**2, rel=0.03)
    assert out["sigma_w"] == pytest.approx(s**2 / d, rel=0.05)
    centred = true_means - true_means.mean(0)
    sigma_b = centred.T @ centred / c  # rank c - 1 < d: pinv must drop the null space
    expected = torch.trace(s**2 * torch.linalg.pinv(sigma_b, hermitian=True)).item() / c
    assert out["nc1"] == pytest.approx(expected, rel=0.03)


def _etf(c=6, d=10, scale=2.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rot = torch.linalg.qr(torch.randn(d, c, generator=gen, dtype=torch.float64))[0]  # [d, c] orthonormal
    m = rot @ (math.sqrt(c / (c - 1)) * (torch.eye(c, dtype=torch.float64) - 1.0 / c))  # [d, c]
    return scale * m


def test_nc2_nc3_nc4_on_simplex_etf():
    c, d = 6, 10
    m = _etf(c, d)
    offset = torch.linspace(-1, 1, d, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    noise = 0.1 * torch.randn(c * 10, d, generator=gen, dtype=torch.float64)
    labels = torch.arange(c).repeat_interleave(20)
    z = offset + m.T[labels] + torch.cat([noise, -noise]).view(2, c, 10, d).transpose(0, 1).reshape(-1, d)
    out = neural_collapse(z, labels, pred=labels, classifier_weight=3.0 * m.T)
    for key in ("equinorm", "equiangular", "maxangle", "w_equinorm", "w_equiangular", "w_maxangle", "nc3"):
        assert abs(out[key]) < 1e-10, key
    assert out["nc4"] == 0.0
    flipped = labels.clone()
    flipped[:9] = (flipped[:9] + 1) % c
    assert neural_collapse(z, labels, pred=flipped)["nc4"] == pytest.approx(9 / len(labels))


def test_nc2_hand_computed_square():
    # centred means on a square: cosines (0, -1, 0, 0, -1, 0); weight norms (1, 1, 1, 3)
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.arange(4).repeat(3)
    weight = means * torch.tensor([1.0, 1.0, 1.0, 3.0]).unsqueeze(1)
    out = neural_collapse(means[labels], labels, classifier_weight=weight)
    assert out["equinorm"] == pytest.approx(0.0, abs=1e-12)
    assert out["equiangular"] == pytest.approx(math.sqrt(2 / 9))
    assert out["maxangle"] == pytest.approx(4 / 9)
    assert out["w_equinorm"] == pytest.approx(math.sqrt(0.75) / 1.5)
    assert out["w_equiangular"] == pytest.approx(math.sqrt(2 / 9))


@pytest.mark.parametrize("d", [6, 12])
@pytest.mark.parametrize("global_mean", ["samples", "class_means"])
def test_nc1_parity_with_numpy(d, global_mean):
    rng = np.random.default_rng(d)
    labels = rng.choice(4, size=600, p=[0.1, 0.2, 0.3, 0.4])
    z = rng.normal(size=(600, d)) * rng.uniform(0.5, 2, d) + rng.normal(size=(4, d))[labels]
    ref = neural_collapse_reference(z, labels, global_mean=global_mean)
    nc1, sigma_w = ref["nc1"], ref["sigma_w"]
    out = neural_collapse(torch.tensor(z), torch.tensor(labels), global_mean=global_mean)
    assert out["nc1"] == pytest.approx(nc1, rel=1e-9)
    assert out["sigma_w"] == pytest.approx(sigma_w, rel=1e-9)


def test_encoding_agreement_hand_computed():
    z = torch.tensor([[1.0, 2.0], [0.5, 1.0], [-1.0, 3.0], [2.0, -1.0], [0.0, 0.0]])
    pred = torch.tensor([0, 0, 0, 1, 1])
    # class 0: dim0 q=2/3, dim1 q=1; class 1: dim0 q=1/2 (0 is not > 0), dim1 q=0; class 2 absent
    assert encoding_agreement(z, pred, 3) == pytest.approx((2 / 3 + 1 + 0.5 + 1) / 4)
    # codes 11, 11, 01 | 10, 00: modal counts 2 + 1; 4 distinct codes; top-2 codes cover 2 + 1
    out = code_agreement(z, pred, num_classes=2)
    assert out["agreement"] == pytest.approx(3 / 5)
    assert out["n_codes"] == 4 and out["top_codes_fraction"] == pytest.approx(3 / 5)


@pytest.mark.parametrize("d", [10, 70])  # int64 bit-packing and the torch.unique(dim=0) path
def test_code_agreement_known_fraction(d):
    gen = torch.Generator().manual_seed(d)
    class_codes = torch.randn(4, d, generator=gen).sign()
    labels = torch.arange(4).repeat_interleave(25)
    z = class_codes[labels] * (1 + torch.rand(100, d, generator=gen))
    z[torch.arange(5), torch.arange(5)] *= -1  # 5 samples of class 0, each with its own flipped bit
    out = code_agreement(z, labels)
    assert out["agreement"] == pytest.approx(0.95)
    assert out["n_codes"] == 9 and out["unique_class_codes"] == 4
    assert out["top_codes_fraction"] == pytest.approx(0.95)


def test_no_nan_for_collapsed_and_singleton_classes():
    gen = torch.Generator().manual_seed(0)
    z = torch.cat([torch.ones(10, 4), torch.randn(10, 4, generator=gen), -torch.ones(1, 4)])
    labels = torch.tensor([0] * 10 + [1] * 10 + [2])
    weight = torch.randn(5, 4, generator=gen)  # classes 3 and 4 never occur
    out = neural_collapse(z, labels, pred=labels, classifier_weight=weight)
    assert out["skipped_classes"] == 3 and out["num_classes"] == 2
    assert all(math.isfinite(v) for v in out.values() if v is not None)
    ref = neural_collapse_reference(z.double().numpy(), labels.numpy())  # the singleton class 2 is skipped, but present
    for k in ("nc1", "sigma_w", "trace_sigma_b", "equinorm"):
        assert out[k] == pytest.approx(ref[k], rel=1e-9), k
    points = torch.tensor([[1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]])  # every class fully collapsed
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    collapsed = neural_collapse(points[labels], labels, pred=labels, classifier_weight=torch.zeros(2, 3))
    assert collapsed["nc1"] == 0.0 and collapsed["sigma_w"] == 0.0
    assert all(math.isfinite(v) for v in collapsed.values() if v is not None)
    gmm = gmm_binarity(torch.ones(20, 3))
    assert all(math.isfinite(gmm[k]) for k in ("score", "std", "peak_dist_mean", "peak_dist_std"))


def test_float32_inputs_give_python_floats():
    z, labels = _hypercube(n_per_class=20, noise=0.3)
    assert z.dtype == torch.float32
    gmm = gmm_binarity(z)
    assert all(type(gmm[k]) is float for k in ("score", "std", "peak_dist_mean", "peak_dist_std"))
    assert gmm["score_per_dim"].shape == (3,)
    assert type(encoding_agreement(z, labels, 8)) is float
    codes = code_agreement(z, labels)
    assert type(codes["agreement"]) is float and type(codes["n_codes"]) is int
    out = neural_collapse(z, labels, pred=labels, classifier_weight=torch.randn(8, 3))
    assert all(type(v) is float for k, v in out.items() if k not in ("skipped_classes", "num_classes"))
    assert out["nc1"] == pytest.approx(neural_collapse_reference(z.double().numpy(), labels.numpy())["nc1"], rel=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    z, labels = _hypercube(n_per_class=30, noise=0.4)
    weight = torch.randn(8, 3)
    for fn, args in [(gmm_binarity, ()), (code_agreement, (labels,)), (neural_collapse, (labels, labels, weight))]:
        cpu, gpu = fn(z, *args), fn(z.cuda(), *(a.cuda() for a in args))
        for k, v in cpu.items():
            if isinstance(v, float):
                assert gpu[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    assert encoding_agreement(z.cuda(), labels.cuda(), 8) == encoding_agreement(z, labels, 8)


# --------------------------------------------------------------------------------------------------
# Thresholds at, below and above their boundary; documented defaults pinned on unbalanced data
# --------------------------------------------------------------------------------------------------


def _unbalanced(sizes, d=2, seed=0):
    """Classes of very different sizes (and spreads), so that every averaging choice gives another number."""
    rng = np.random.default_rng(seed)
    centres = 4 * rng.normal(size=(len(sizes), d))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    z = centres[labels] + rng.normal(size=(len(labels), d)) * (0.3 + labels[:, None] * 0.4)
    return z, labels


NC_KEYS = ("nc1", "sigma_w", "trace_sigma_w", "trace_sigma_b", "skipped_classes", "num_classes", "equinorm")


@pytest.mark.parametrize("min_count", [None, 3])
def test_nc1_keeps_a_class_with_exactly_min_count_samples_and_skips_one_fewer(min_count):
    """Default min_count=2 (§6.3: classes with at least 2 samples); classes of m - 1, m, m + 1 samples."""
    m = 2 if min_count is None else min_count
    z, labels = _unbalanced([m - 1, m, m + 1, 40, 150])
    kw = {} if min_count is None else {"min_count": min_count}
    out = neural_collapse(torch.tensor(z), torch.tensor(labels), **kw)
    ref = neural_collapse_reference(z, labels, min_count=m)
    assert ref["skipped_classes"] == 1 and ref["num_classes"] == 4
    for k in NC_KEYS:
        assert out[k] == pytest.approx(ref[k], rel=1e-9), k


def test_global_mean_default_is_the_mean_of_all_samples():
    """Called without global_mean, on unbalanced classes: mu_G = mean of all samples (§6.3), which here
    differs from the mean of the class means in NC1, trace(Sigma_B) and NC2."""
    z, labels = _unbalanced([10, 30, 80, 300], d=3, seed=4)
    out = neural_collapse(torch.tensor(z), torch.tensor(labels))
    ref, papyan = neural_collapse_reference(z, labels, "samples"), neural_collapse_reference(z, labels, "class_means")
    for k in ("nc1", "trace_sigma_b", "equinorm"):
        assert out[k] == pytest.approx(ref[k], rel=1e-9), k
        assert abs(papyan[k] / ref[k] - 1) > 0.05, k  # the two choices really differ on this fixture
    explicit = neural_collapse(torch.tensor(z), torch.tensor(labels), global_mean="class_means")
    assert explicit["nc1"] == pytest.approx(papyan["nc1"], rel=1e-9)


def test_nc2_is_defined_from_two_present_classes_and_undefined_for_one():
    """Two classes of 10 and 30 samples: the centred means are opposite, so the cosine is -1
    (equiangular 0, maxangle |-1 + 1/1| = 0); their norms are 3/4 and 1/4 of the distance between the
    class means with the sample mean as mu_G, equinorm = std / mean = 0.25 / 0.5; equal with class_means."""
    z = np.concatenate([np.tile([1.0, 2.0], (10, 1)), np.tile([5.0, -1.0], (30, 1))])
    labels = np.repeat([0, 1], [10, 30])
    out = neural_collapse(torch.tensor(z), torch.tensor(labels), classifier_weight=torch.tensor([[1.0, 0], [3, 0]]))
    assert out["equinorm"] == pytest.approx(0.5, rel=1e-12)
    assert out["equiangular"] == pytest.approx(0.0, abs=1e-12) and out["maxangle"] == pytest.approx(0.0, abs=1e-12)
    assert out["w_equinorm"] == pytest.approx(0.5, rel=1e-12)  # norms 1 and 3: std 1 / mean 2
    assert out["w_equiangular"] == 0.0 and out["w_maxangle"] == pytest.approx(2.0)  # cos = +1
    assert neural_collapse(torch.tensor(z), torch.tensor(labels), global_mean="class_means")["equinorm"] == 0.0
    one = neural_collapse(torch.tensor(z[:10]), torch.tensor(labels[:10]))
    assert one["equinorm"] is None and one["equiangular"] is None and one["maxangle"] is None
    with pytest.raises(ValueError, match="classifier_weight"):  # one row fewer than the classes
        neural_collapse(torch.tensor(z), torch.tensor(labels), classifier_weight=torch.ones(1, 2))


def test_geometry_metrics_group_nc1_by_the_true_labels_by_default():
    """docs/method.md §6.3: NC1 groups by the true labels unless metrics.nc_labels=pred."""
    from binary_encoding.callbacks.latents import Latents
    from binary_encoding.callbacks.metrics import geometry_metrics

    z, y = _unbalanced([20, 60, 120], d=2, seed=2)
    rng = np.random.default_rng(0)
    pred = np.where(rng.random(len(y)) < 0.8, y, (y + 1) % 3)  # 20% of the predictions wrong
    logits = torch.nn.functional.one_hot(torch.tensor(pred), 3).double()
    lat = Latents(z=torch.tensor(z), logits=logits, y=torch.tensor(y))
    out = geometry_metrics(lat, 3, None)
    ref, by_pred = neural_collapse_reference(z, y), neural_collapse_reference(z, pred)
    assert out["nc1"] == pytest.approx(ref["nc1"], rel=1e-9) and out["sigma_w"] == pytest.approx(ref["sigma_w"])
    assert abs(by_pred["nc1"] / ref["nc1"] - 1) > 0.05
    assert geometry_metrics(lat, 3, None, nc_labels="pred")["nc1"] == pytest.approx(by_pred["nc1"], rel=1e-9)


@pytest.mark.parametrize("d", [61, 62, 63, 64, 65])  # around the switch from int64 bit-packing
def test_code_agreement_around_the_bit_packing_width(d):
    """Codes that differ only in their first or their last bit stay distinct at every width."""
    rng = np.random.default_rng(d)
    base = np.sign(rng.normal(size=(3, d)))
    base[:, [0, d - 1]] = -1.0  # both edge bits 0 in every class code
    labels = np.repeat([0, 1, 2], [30, 12, 6])
    z = base[labels] * (1 + rng.random((len(labels), d)))
    z[:4, 0] *= -1  # class 0: 4 samples with bit 0 set ...
    z[4:7, d - 1] *= -1  # ... 3 with the last bit set
    z[30:32, [0, d - 1]] *= -1  # class 1: 2 samples with both
    out = code_agreement(torch.tensor(z), torch.tensor(labels))
    ref = code_agreement_reference(z, labels)
    assert ref["n_codes"] == 6 and ref["unique_class_codes"] == 3
    assert out == pytest.approx(ref, rel=1e-12)


def test_code_agreement_counts_the_top_codes_of_as_many_classes_as_there_are_labels_by_default():
    """num_classes defaults to the number of distinct labels (here 3 labels named 2, 5, 9), not to the
    largest label + 1 nor to every code."""
    rng = np.random.default_rng(3)
    base = np.sign(rng.normal(size=(3, 6)))
    labels = np.repeat([2, 5, 9], [50, 30, 20])
    z = base[np.repeat([0, 1, 2], [50, 30, 20])] * (1 + rng.random((100, 6)))
    flip = rng.random(z.shape) < 0.05
    z[flip] *= -1  # scattered extra codes
    out = code_agreement(torch.tensor(z), torch.tensor(labels))
    ref = code_agreement_reference(z, labels)
    assert out == pytest.approx(ref, rel=1e-12)
    assert ref["top_codes_fraction"] != code_agreement_reference(z, labels, num_classes=10)["top_codes_fraction"]
    assert (
        ref["top_codes_fraction"]
        != code_agreement_reference(z, labels, num_classes=ref["n_codes"])["top_codes_fraction"]
    )


def test_gmm_binarity_on_the_smallest_sample_matches_sklearn():
    """Two samples (the least gmm_binarity accepts): each component sits on one point, with the
    variance floor; one sample is refused."""
    z = np.array([[0.3, 5.0], [1.7, -2.0]])
    out = _ours(z)
    np.testing.assert_allclose(out, gmm_binarity_reference(z), rtol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        gmm_binarity(torch.tensor(z[:1]))


def test_class_codes_name_each_class_vertex_and_its_share():
    """Hypercube classes: class c sits at vertex c of {-1, 1}^3 (itertools order, last dimension fastest);
    moving 10 of class 5's 50 samples to another vertex leaves its code and gives it a share of 0.8."""
    z, labels = _hypercube()
    z[labels == 5] = torch.where(torch.arange(50).unsqueeze(1) < 10, -z[labels == 5], z[labels == 5])
    rows = class_codes(z, labels)
    want = ["".join("1" if v > 0 else "0" for v in vertex) for vertex in itertools.product([-1, 1], repeat=3)]
    assert [r["code"] for r in rows] == want and [r["class"] for r in rows] == list(range(8))
    assert [r["share"] for r in rows] == [1.0] * 5 + [0.8] + [1.0] * 2 and {r["samples"] for r in rows} == {50}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_codes_shares_add_up_to_the_joint_code_agreement_and_ties_pick_its_code(seed):
    """sum_c share_c * n_c / N is `code_agreement`'s agreement (the same modal codes), on noisy 4-d codes
    with ties; each listed code is one the class really has that often (counted with Python)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (300,), generator=gen)
    z = torch.randn(300, 4, generator=gen) + 0.5 * (labels.unsqueeze(1) % 2)
    rows = class_codes(z, labels)
    assert sum(r["share"] * r["samples"] for r in rows) / 300 == pytest.approx(code_agreement(z, labels)["agreement"])
    for r in rows:
        mine = ["".join("1" if v > 0 else "0" for v in row) for row in z[labels == r["class"]].tolist()]
        assert mine.count(r["code"]) == max(mine.count(c) for c in set(mine)) == round(r["share"] * r["samples"])


# ------------------------------------------------------------------------------------------------
# Two-valuedness: the share of a dimension's variance its sign explains (docs/method.md §6.4)
# ------------------------------------------------------------------------------------------------


def test_two_values_per_dimension_are_fully_explained_by_their_sign():
    """The hypercube's vertices (and unequal values and shares per side): R^2 = 1 in every dimension."""
    from oracles import two_valuedness_reference

    from binary_encoding.metrics.two_valued import two_valuedness

    z, _ = _hypercube(noise=0.0)
    z = z * torch.tensor([1.0, 3.0, 0.2]) + torch.tensor([0.0, 0.5, 0.0]) * (z > 0)  # +3.5 / -3 on dim 2
    z[:7, 0] = 1.0  # unbalanced sides on dimension 1
    out = two_valuedness(z)
    assert out["per_dim"].tolist() == [1.0, 1.0, 1.0] and out["mean"] == out["min"] == 1.0
    np.testing.assert_allclose(two_valuedness_reference(z.numpy()), 1.0, rtol=0, atol=1e-12)


def test_a_sign_code_with_class_specific_magnitudes_is_far_from_two_valued():
    """Five classes at +1, +2, +3, -1.5, -2.5 on one axis, 40 samples each: the sign is a clean code, but by
    hand the within-side sum of squares is 40 * (1 + 0 + 1 + 0.25 + 0.25) = 100, the total about the mean
    0.4 is 40 * (0.36 + 2.56 + 6.76 + 3.61 + 8.41) = 868, so R^2 = 1 - 100 / 868 = 0.8848; a second axis
    holds two exact values (1.0), a third one value only (0)."""
    from oracles import two_valuedness_reference

    from binary_encoding.metrics.two_valued import two_valuedness

    levels = torch.tensor([1.0, 2.0, 3.0, -1.5, -2.5]).repeat_interleave(40)
    z = torch.stack([levels, torch.sign(levels) * 0.7, torch.full_like(levels, 0.3)], 1)
    out = two_valuedness(z.float())
    expected = [1 - 100 / 868, 1.0, 0.0]
    assert out["per_dim"].tolist() == pytest.approx(expected, abs=1e-12)
    assert out["mean"] == pytest.approx(sum(expected) / 3, abs=1e-12) and out["min"] == 0.0
    np.testing.assert_allclose(two_valuedness_reference(z.numpy()), expected, atol=1e-12)
    # the 2-component GMM sees two well separated modes in the first axis all the same
    assert gmm_binarity(z[:, :1])["peak_dist_mean"] > 3


def test_two_valuedness_matches_sklearn_on_random_latents():
    """Gaussian, one-sided, mixed and noisy-binary columns, float32 and float64."""
    from oracles import two_valuedness_reference

    from binary_encoding.metrics.two_valued import two_valuedness

    rng = np.random.default_rng(3)
    n = 500
    z = np.column_stack(
        [
            rng.standard_normal(n),
            np.abs(rng.standard_normal(n)) + 0.1,  # all on one side: 0
            np.sign(rng.standard_normal(n)) + 0.05 * rng.standard_normal(n),
            rng.choice([-2.0, -1.0, 0.5, 4.0], n) + 0.01 * rng.standard_normal(n),
            np.zeros(n),  # z = 0 sits on the non-positive side
        ]
    )
    ref = two_valuedness_reference(z)
    assert ref[1] == pytest.approx(0.0, abs=1e-12) and ref[2] > 0.99 and 0.5 < ref[3] < 0.95 and ref[4] == 0.0
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        out = two_valuedness(torch.tensor(z, dtype=dtype))
        np.testing.assert_allclose(
            out["per_dim"].numpy(),
            two_valuedness_reference(z.astype(np.float32 if dtype == torch.float32 else np.float64)),
            atol=tol,
        )
        assert out["mean"] == pytest.approx(float(out["per_dim"].mean())) and out["min"] == float(out["per_dim"].min())


def test_class_means_global_mean_is_the_mean_of_the_present_classes_only():
    """Labels 0, 1, 3 (class 2 never occurs, its row of the class means is zero): with
    global_mean=class_means, mu_G is the mean of the three present class means (Papyan), as the numpy
    oracle computes it; averaging the empty class's zero row in would shift Sigma_B, NC1 and NC2."""
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 3], [20, 30, 25])
    z = rng.normal(size=(len(labels), 4)) + 2.0 * np.eye(4)[labels]
    ref = neural_collapse_reference(z, labels, "class_means")
    got = neural_collapse(torch.tensor(z), torch.tensor(labels), global_mean="class_means")
    for key in ("nc1", "trace_sigma_b", "equinorm"):
        assert got[key] == pytest.approx(ref[key], rel=1e-9), key
