"""Values of the summary that are derived from others, recomputed by the independent oracles of
tests/oracles.py on real models and data: the DeepFool ratio on the correctly classified images, and
the top-code fraction when some class is never predicted."""

import math

import pytest
import torch
from oracles import code_agreement_reference, robustness_oracle

from binary_encoding.callbacks.latents import Latents
from binary_encoding.callbacks.metrics import FinalSettings, geometry_metrics, robustness


@pytest.fixture(scope="module")
def half_trained(tmp_path_factory):
    """The digits MLP of the real config after 15 AdamW steps (about half the test images right)."""
    from conftest import make_cfg

    from binary_encoding.run.build import build_datamodule, build_model

    cfg = make_cfg(tmp_path_factory.mktemp("half"), "trainer.accelerator=cpu", "runtime.compile=false")
    dm = build_datamodule(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, dm.input_shape, dm.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = dm.normalize(dm.x["train"].float()), dm.y["train"]
    for step in range(15):
        idx = torch.randint(0, len(y), (128,), generator=torch.Generator().manual_seed(step))
        loss = torch.nn.functional.cross_entropy(model(x[idx])[0], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), dm


def test_the_deepfool_ratio_on_the_correct_images_is_what_the_oracle_recomputes(half_trained):
    model, dm = half_trained
    st = FinalSettings(deepfool_samples=40, seed=3, deepfool_candidates=4, deepfool_max_iter=20)
    ours = robustness(model, dm, st)
    # the seeded sample of test images, as docs/method.md §8 describes it
    idx = torch.randperm(len(dm.y["test"]), generator=torch.Generator().manual_seed(3))[:40].sort().values
    x, y = dm.normalize(dm.x["test"][idx].float()), dm.y["test"][idx]
    ref = robustness_oracle(model, x, y, num_candidates=4, overshoot=st.deepfool_overshoot, max_iter=20)
    assert 5 <= ref["correct"] <= 35  # both subsets are there: the ratios on all and on the right differ
    assert ours["deepfool_images"] == 40
    for key in ("deepfool_rho", "deepfool_rho_correct", "deepfool_fooled"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-3), key
    assert abs(ref["deepfool_rho_correct"] - ref["deepfool_rho"]) > 1e-3 * ref["deepfool_rho"]


def test_the_top_code_fraction_counts_every_class_of_the_data_set_when_one_is_never_predicted():
    """4 classes, class 3 never predicted: the fraction covers the 4 most common codes (the data set's
    classes), not the 3 of the predicted ones."""
    g = torch.Generator().manual_seed(0)
    codes = torch.tensor([[1, 1, 1], [1, -1, 1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]], dtype=torch.float32)
    which = torch.tensor([0] * 30 + [1] * 25 + [2] * 20 + [3] * 15 + [4] * 10)
    z = codes[which] * (0.5 + torch.rand(len(which), 3, generator=g))
    pred = torch.tensor([0] * 30 + [1] * 25 + [2] * 45)  # classes 0-2 only
    logits = torch.nn.functional.one_hot(pred, 4).float()
    lat = Latents(z=z, logits=logits, y=torch.tensor([0, 1, 2, 3] * 25))
    out = geometry_metrics(lat, num_classes=4, classifier_weight=None)
    top = lambda k: code_agreement_reference(z, pred, num_classes=k)["top_codes_fraction"]  # noqa: E731
    assert out["top_codes_fraction"] == pytest.approx(top(4), rel=1e-12) == 0.9
    assert not math.isclose(top(3), 0.9)  # the predicted classes would give 0.75
