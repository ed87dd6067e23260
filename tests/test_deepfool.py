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
    for _ in range(300):
        idx = torch.randint(0, len(x), (256,))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
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
    out0 = deepfool(model, x, max_iter=1)
    assert (out0["n_iter"] <= 1).all()


def test_rho_mask():
    r = torch.tensor([[3.0, 4.0], [0.0, 0.5]])
    x = torch.tensor([[0.0, 10.0], [0.0, 2.0]])
    assert robustness_rho(r, x) == pytest.approx(0.375)
    assert robustness_rho(r, x, mask=torch.tensor([True, False])) == pytest.approx(0.5)
    assert robustness_rho(r, x, mask=torch.tensor([False, True])) == pytest.approx(0.25)


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
