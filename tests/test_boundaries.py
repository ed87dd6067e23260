"""Where a config check draws its line: values just inside are accepted, just outside refused in one
line before anything is built; resuming with a key that the cut-off run did not have is refused."""

import pytest

from binary_encoding.run import policy
from binary_encoding.run.policy import ConfigError
from binary_encoding.train import train


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.precision=16-true", "trainer.precision=16-true: fp16 overflows at 65,504"),
        ("trainer.precision=16", "trainer.precision=16: fp16 overflows at 65,504"),
        ("lr=inf", "lr=inf: must be a finite number > 0"),
        ("lr=nan", "lr=nan: must be a finite number > 0"),
        ("weight_decay=nan", "weight_decay=nan: must be a finite number >= 0"),
        ("weight_decay=inf", "weight_decay=inf: must be a finite number >= 0"),
        ("weight_decay=-1e-9", "weight_decay=-1e-09: must be a finite number >= 0"),
        ("seed=-1", "seed=-1: must be an integer in 0..4294967295"),
        ("seed=4294967296", "seed=4294967296: must be an integer in 0..4294967295"),
    ],
)
def test_a_value_just_outside_is_refused_in_one_line(cfg_factory, override, message):
    with pytest.raises(ConfigError, match=message) as err:
        policy.validate(cfg_factory(override))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["weight_decay=0"],  # a legitimate zero
        ["seed=0"],
        ["seed=4294967295"],
        ["trainer.precision=bf16-mixed"],  # bf16 holds gamma's range
        ["trainer.precision=16-true", "head=linpen"],  # no gamma term: fp16 is the user's choice
        ["lr=1e-12"],
    ],
)
def test_a_value_just_inside_is_accepted(cfg_factory, overrides):
    policy.validate(cfg_factory(*overrides))


def test_a_zero_weight_decay_trains(cfg_factory, tmp_path):
    from omegaconf import OmegaConf

    s = train(cfg_factory("weight_decay=0", "trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0"))
    assert s["epochs"] == 1 and OmegaConf.load(tmp_path / "config.yaml").weight_decay == 0


def test_resuming_with_a_key_the_cut_off_run_lacked_is_refused(cfg_factory, tmp_path):
    """`++trainer.gradient_clip_val=1` is a key the old config.yaml does not have at all: it changes the
    training, so the cut-off run is not resumed with it (unless forced)."""
    train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0"))
    (tmp_path / "summary.json").unlink()  # as if cut off after its last checkpoint
    with pytest.raises(ConfigError, match=r"\(trainer.gradient_clip_val: '\(unset\)' -> 1\)"):
        train(cfg_factory("trainer.max_epochs=2", "++trainer.gradient_clip_val=1"))
    with pytest.raises(ConfigError, match=r"\(trainer.gradient_clip_val: 1 -> '\(unset\)'\)"):
        import yaml

        cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
        cfg["trainer"]["gradient_clip_val"] = 1
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
        train(cfg_factory("trainer.max_epochs=2"))  # and a key the new config drops
