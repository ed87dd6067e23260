import math

import numpy as np
import pytest
import torch
from oracles import deepfool_reference
from torch import nn

from binary_encoding.metrics.deepfool import LogitsOnly, deepfool, robustness_rho


@pytest.fixture(scope="module")
def digits_mlp():
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = torch.tensor(data.target)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: 0.2 s on one thread, over 30 s with 2 on a loaded 2-core box
    try:
        for _ in range(300):
            idx = torch.randint(0, len(x), (256,))
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    opt.zero_grad(set_to_none=True)
    return model, x[:50].clone()


@pytest.mark.parametrize("num_candidates", [10, 3])
def test_batched_matches_reference(digits_mlp, num_candidates):
    model, x = digits_mlp
    model.train()  # the attack must switch to eval and restore this
    out = deepfool(model, x, num_candidates=num_candidates)
    ref = deepfool_reference(model, x, num_candidates=num_candidates)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(out["orig_pred"], ref["orig_pred"])
    assert torch.equal(out["fooled"], ref["fooled"])
    assert out["fooled"].float().mean() > 0.9
    rho, rho_ref = robustness_rho(out["r"], x), robustness_rho(ref["r"], x)
    assert abs(rho - rho_ref) / rho_ref < 0.01
    nr, nr_ref = out["r"].flatten(1).norm(dim=1), ref["r"].flatten(1).norm(dim=1)
    np.testing.assert_allclose(nr.numpy(), nr_ref.numpy(), rtol=1e-3)
    assert (out["n_iter"] == ref["n_iter"]).float().mean() >= 0.9
    # x + r really changes the prediction of the fooled images
    with torch.no_grad():
        adv = model.eval()(x + out["r"]).argmax(1)
    f = out["fooled"]
    assert (adv[f] != out["orig_pred"][f]).all()
    assert torch.equal(adv, out["adv_pred"])
    # chunking does not change the result
    out2 = deepfool(model, x, num_candidates=num_candidates, batch_size=16)
    torch.testing.assert_close(out2["r"], out["r"], rtol=1e-4, atol=1e-6)


def test_linear_two_class_closed_form():
    torch.manual_seed(1)
    model = nn.Linear(20, 2).double()
    x = torch.randn(30, 20, dtype=torch.float64)
    overshoot = 0.02
    for fn in (deepfool, deepfool_reference):
        out = fn(model, x, overshoot=overshoot)
        with torch.no_grad():
            logits = model(x)
        w = model.weight[1] - model.weight[0]
        f = (logits[:, 1] - logits[:, 0]).abs()
        expected = (f + 1e-4) / w.norm() * (1 + overshoot)
        np.testing.assert_allclose(out["r"].norm(dim=1).detach().numpy(), expected.detach().numpy(), rtol=1e-10)
        assert out["fooled"].all() and (out["n_iter"] == 1).all()
        with torch.no_grad():
            assert (model(x + out["r"]).argmax(1) != logits.argmax(1)).all()
        # r is parallel to w
        cos = (out["r"] @ w).abs() / (out["r"].norm(dim=1) * w.norm())
        assert torch.allclose(cos, torch.ones_like(cos))
    assert model.weight.grad is None


def test_all_candidates_and_max_iter():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 5))
    x = torch.randn(12, 8)
    out = deepfool(model, x, num_candidates=None)
    ref = deepfool_reference(model, x, num_candidates=None)
    assert torch.equal(out["fooled"], ref["fooled"])
    torch.testing.assert_close(out["r"], ref["r"], rtol=1e-3, atol=1e-6)
    out1, ref1 = deepfool(model, x, max_iter=1), deepfool_reference(model, x, max_iter=1)
    assert torch.equal(out1["n_iter"], ref1["n_iter"]) and torch.equal(out1["fooled"], ref1["fooled"])
    assert (~out1["fooled"]).any() and (out1["n_iter"] == 1).all()  # stopped by the cap, not by success
    torch.testing.assert_close(out1["r"], ref1["r"], rtol=1e-4, atol=1e-7)


def test_rho_mask():
    r = torch.tensor([[3.0, 4.0], [0.0, 0.5]])
    x = torch.tensor([[0.0, 10.0], [0.0, 2.0]])
    assert robustness_rho(r, x) == pytest.approx(0.375)
    assert robustness_rho(r, x, mask=torch.tensor([True, False])) == pytest.approx(0.5)
    assert robustness_rho(r, x, mask=torch.tensor([False, True])) == pytest.approx(0.25)
    assert math.isnan(robustness_rho(r, x, mask=torch.tensor([False, False])))  # empty subset


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_placement():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5)).cuda()
    x = torch.randn(20, 8, device="cuda")
    out = deepfool(model, x)
    assert all(v.device.type == "cuda" for v in out.values())
    ref = deepfool_reference(model.cpu(), x.cpu())
    assert torch.equal(out["fooled"].cpu(), ref["fooled"])
    assert abs(robustness_rho(out["r"], x) - robustness_rho(ref["r"], x.cpu())) < 1e-3


def test_latent_shortcut_equals_direct_gradients():
    """With logits = z @ W.T + b and d < K-1, candidate gradients from the d latent gradients give
    the same attack as one backward pass per candidate (and as the one-image reference)."""
    torch.manual_seed(3)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(30, 64), nn.SiLU(), nn.Linear(64, 3))  # d = 3 latent
            self.classifier = nn.Linear(3, 10)

        def forward(self, x):
            z = self.body(x)
            return self.classifier(z), z

    net = Net().double().eval()
    x = torch.randn(40, 30, dtype=torch.float64)
    logits_only = LogitsOnly(net)
    direct = deepfool(logits_only, x, num_candidates=10)
    short = deepfool(net, x, num_candidates=10, latent_weight=net.classifier.weight.detach())
    ref = deepfool_reference(logits_only, x, num_candidates=10)
    assert direct["fooled"].float().mean() > 0.9
    torch.testing.assert_close(short["r"], direct["r"], rtol=1e-8, atol=1e-10)
    assert torch.equal(short["n_iter"], direct["n_iter"]) and torch.equal(short["fooled"], direct["fooled"])
    assert robustness_rho(short["r"], x) == pytest.approx(robustness_rho(ref["r"], x), rel=1e-6)


def _linear(weight, bias):
    model = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        model.weight.copy_(weight)
        model.bias.copy_(bias)
    return model


def _far_candidate_model(num_classes=15, d=6, seed=0):
    """Linear logits with a fixed ranking near x = 0 (bias 14, 13, ..., 0) and boundaries at distance
    gap / ||w_k - w_0||: class 9 (the 10th logit) at 9 / 100, class 10 at 10 / 300, class 14 at 14 / 1000,
    every other one above 0.2. The top-10 attack ends in class 9, a top-9 one elsewhere, a top-11 one in
    class 10, the attack over all classes in class 14."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(num_classes, d, generator=gen, dtype=torch.float64)
    weight[-1] = weight[0] + 1000 * torch.eye(d, dtype=torch.float64)[1]
    weight[9] = weight[0] + 100 * torch.eye(d, dtype=torch.float64)[2]
    weight[10] = weight[0] + 300 * torch.eye(d, dtype=torch.float64)[3]
    bias = torch.arange(num_classes - 1, -1, -1, dtype=torch.float64)
    x = 0.01 * torch.randn(8, d, generator=gen, dtype=torch.float64)
    x[:, 1:4] = 0.0  # on the axes of classes 9, 10 and 14: class 0 stays the clean prediction
    return _linear(weight, bias), x


def test_deepfool_defaults_are_ten_candidates_overshoot_0_02_and_50_steps():
    """docs/method.md §8: k = 10 candidates, overshoot 0.02, at most 50 steps, pinned by calling
    deepfool without them against the textbook oracle given the documented values."""
    model, x = _far_candidate_model()
    out = deepfool(model, x)
    ref = deepfool_reference(model, x, num_candidates=10, overshoot=0.02, max_iter=50)
    torch.testing.assert_close(out["r"], ref["r"], rtol=1e-9, atol=1e-12)
    assert torch.equal(out["n_iter"], ref["n_iter"]) and torch.equal(out["adv_pred"], ref["adv_pred"])
    every = deepfool_reference(model, x, num_candidates=None)  # the candidate default matters here
    assert (out["orig_pred"] == 0).all() and (out["adv_pred"] == 9).all()
    assert (every["adv_pred"] == 14).all()
    # overshoot: two classes, closed form ||r|| = (|f_1 - f_0| + 1e-4) / ||w_1 - w_0|| * 1.02
    two = _linear(torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]), torch.tensor([0.5, -0.5]))
    x2 = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        f = two(x2)
    expected = ((f[:, 1] - f[:, 0]).abs() + 1e-4) / math.sqrt(1 + 9 + 9) * 1.02
    np.testing.assert_allclose(deepfool(two, x2)["r"].norm(dim=1).numpy(), expected.numpy(), rtol=1e-12)
    # max_iter: constant logits (zero weights) never move, so every image uses up exactly the cap
    stuck = _linear(torch.zeros(3, 4, dtype=torch.float64), torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64))
    res = deepfool(stuck, torch.ones(5, 4, dtype=torch.float64))
    assert res["n_iter"].tolist() == [50] * 5 and not res["fooled"].any()
    assert torch.equal(res["r"], torch.zeros(5, 4, dtype=torch.float64))  # ||w|| = 0: no step, not NaN
    assert deepfool(stuck, torch.ones(5, 4, dtype=torch.float64), max_iter=7)["n_iter"].tolist() == [7] * 5


def test_two_candidates_is_the_smallest_attack_and_more_than_the_classes_means_all():
    model, x = _far_candidate_model()
    out = deepfool(model, x, num_candidates=2)
    ref = deepfool_reference(model, x, num_candidates=2)
    torch.testing.assert_close(out["r"], ref["r"], rtol=1e-9, atol=1e-12)
    assert torch.equal(out["adv_pred"], ref["adv_pred"]) and torch.equal(out["n_iter"], ref["n_iter"])
    with pytest.raises(ValueError, match="at least 2"):
        deepfool(model, x, num_candidates=1)
    every, capped = deepfool(model, x, num_candidates=None), deepfool(model, x, num_candidates=20)
    assert (every["adv_pred"] == 14).all() and torch.equal(capped["r"], every["r"])
