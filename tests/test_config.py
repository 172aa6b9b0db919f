"""params.yaml -> validated dataclasses: the real file loads, and bad values fail naming the key."""

from pathlib import Path

import pytest
import yaml

from occ.config import load_params, resolve_params, variant_names
from occ.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_real_params_load_every_variant_and_profile():
    names = variant_names(ROOT / "params.yaml")
    assert {"contragan", "csupcongan", "o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1", "hinge_only"} <= set(names)
    for name in names:
        p = load_params(ROOT / "params.yaml", variant=name)
        assert p.variant == name
    assert load_params(ROOT / "params.yaml", variant="o2c_ct1").train.tau_c == 1.0
    assert load_params(ROOT / "params.yaml", variant="hinge_only").train.loss == "none"
    paper = load_params(ROOT / "params.yaml", profile="paper")
    assert paper.model.g_ch > load_params(ROOT / "params.yaml").model.g_ch
    assert paper.data.source == "path"


def _with(section, key, value):
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    raw.setdefault(section, {})[key] = value
    return raw


@pytest.mark.parametrize(
    "section,key,value,needle",
    [
        ("train", "stepz", 3, "train.stepz"),
        ("train", "steps", "many", "train.steps"),
        ("train", "steps", 0, "train.steps"),
        ("train", "tau_c", -1.0, "train.tau_c"),
        ("train", "loss", "3c", "train.loss"),
        ("train", "beta1", 1.5, "train.beta1"),
        ("train", "augment", "yes", "train.augment"),
        ("data", "layout", "flat", "data.layout"),
        ("eval", "embedding", "clap", "eval.embedding"),
        ("model", "g_ch", 0, "model.g_ch"),
        ("model", "g_noise", -0.3, "model.g_noise"),
        ("model", "g_noise", "some", "model.g_noise"),
    ],
)
def test_bad_values_name_the_key(section, key, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        resolve_params(_with(section, key, value))


def test_unknown_top_level_key_and_variant_and_profile():
    raw = dict(RAW, trian={})
    with pytest.raises(ConfigError, match="trian"):
        resolve_params(raw)
    with pytest.raises(ConfigError, match="nope"):
        resolve_params(RAW, variant="nope")
    with pytest.raises(ConfigError, match="gpu"):
        resolve_params(RAW, profile="gpu")


def test_a_bad_variant_fails_even_when_another_is_selected():
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    raw["variants"]["broken"] = {"tau_d": 0}
    with pytest.raises(ConfigError, match="tau_d"):
        resolve_params(raw, variant="o2c")


def test_ints_are_accepted_for_floats():
    raw = _with("train", "tau_c", 1)
    assert resolve_params(raw).train.tau_c == 1.0
