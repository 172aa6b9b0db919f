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
        ("train", "tau_c", 1e-30, "train.tau_c = 1e-30 is out of range: use a temperature in"),
        ("train", "tau_c", 1e3, "train.tau_c = 1000.0 is out of range: use a temperature in"),
        ("train", "contrastive_weight", 1e6, "train.contrastive_weight = 1000000.0 is out of range: use a value in"),
        ("train", "contrastive_weight", -1, "train.contrastive_weight = -1.0 is out of range"),
        ("model", "g_noise", 6.0, "model.g_noise = 6.0 is out of range: use a value in"),
        ("train", "tau_d", 5e-4, "train.tau_d"),
        ("train", "lr_g", 1e10, "train.lr_g = 10000000000.0 is out of range: use a learning rate in"),
        ("train", "lr_d", 1.5, "train.lr_d"),
        ("supcon", "temperature", 1e-4, "supcon.temperature"),
        ("supcon", "lr", 2.0, "supcon.lr"),
        ("supcon", "finetune_lr", 10.0, "supcon.finetune_lr"),
    ],
)
def test_bad_values_name_the_key(section, key, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        resolve_params(_with(section, key, value))


def test_the_bounds_of_temperatures_and_learning_rates_are_inclusive():
    raw = _with("train", "tau_c", 1e-3)
    raw["train"].update(tau_d=1e-3, lr_g=1.0, lr_d=1.0)
    raw["supcon"].update(temperature=1e-3, lr=1.0, finetune_lr=1.0)
    params = resolve_params(raw)
    assert (params.train.tau_c, params.train.lr_g, params.supcon.temperature) == (1e-3, 1.0, 1e-3)
    raw["variants"]["o2c"]["tau_c"] = 1e-30
    with pytest.raises(ConfigError, match=r"^variants\.o2c\.tau_c = 1e-30 is out of range"):
        resolve_params(raw, variant="o2c")


@pytest.mark.parametrize("edits,keys", [
    ({"data": {"clips_per_class": 50, "heldout_per_class": 100}}, ["data.heldout_per_class", "data.clips_per_class"]),
    ({"data": {"clips_per_class": 150}}, ["data.heldout_per_class = 100", "data.clips_per_class = 150"]),
    ({"eval": {"prdc_k": 40}}, ["eval.prdc_k = 40", "eval.clips_per_class = 40"]),
    ({"data": {"heldout_per_class": 5, "clips_per_class": 260}, "eval": {"probe_clips_per_class": 60, "prdc_k": 5}},
     ["eval.prdc_k = 5", "data.heldout_per_class = 5"]),
    ({"eval": {"probe_clips_per_class": 161}}, ["eval.probe_clips_per_class = 161", "data.clips_per_class = 260",
                                                "data.heldout_per_class = 100"]),
])
def test_values_that_do_not_fit_together_name_every_key(edits, keys):
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    for section, values in edits.items():
        raw[section].update(values)
    with pytest.raises(ConfigError) as info:
        resolve_params(raw)
    assert all(key in str(info.value) for key in keys), str(info.value)


def test_values_that_fit_together_at_their_limits_load():
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    raw["data"].update(clips_per_class=200, heldout_per_class=100)
    raw["eval"].update(prdc_k=39, probe_clips_per_class=100)
    assert resolve_params(raw).eval.prdc_k == 39
    raw["data"].update(source="path", clips_per_class=2)  # the clips per class of a real dataset are not set here
    assert resolve_params(raw).data.heldout_per_class == 100
    bad_smoke = yaml.safe_load(yaml.safe_dump(RAW))
    bad_smoke["profiles"]["smoke"]["data"]["heldout_per_class"] = 4  # 6 clips per class cannot hold out 4
    with pytest.raises(ConfigError, match=r"^profiles\.smoke\.data\.heldout_per_class = 4 does not fit"):
        resolve_params(bad_smoke, profile="smoke")


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


# --- a complete file, no silent defaults, every bad value named where it was written ----------------------------------

TEXT = (ROOT / "params.yaml").read_text()


def _write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def _without(raw, dotted):
    raw = yaml.safe_load(yaml.safe_dump(raw))
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    del node[last]
    return raw


def test_an_empty_file_is_an_error_naming_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"missing .*`train`"):
        load_params(_write(tmp_path, "# nothing\n"))


@pytest.mark.parametrize("dotted", ["train", "train.loss", "seed", "eval", "variants", "profiles"])
def test_a_missing_section_or_key_is_an_error_naming_it(dotted):
    with pytest.raises(ConfigError, match=f"`{dotted}`"):
        resolve_params(_without(RAW, dotted))


def test_every_field_of_every_section_is_required():
    import dataclasses

    from occ.config import DERIVED, SECTIONS, Params

    keys = [f.name for f in dataclasses.fields(Params) if f.name not in DERIVED and f.name not in SECTIONS]
    keys += [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    for dotted in keys:
        with pytest.raises(ConfigError, match=f"`{dotted}`"):
            resolve_params(_without(RAW, dotted))


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_errors(tmp_path, value):
    text = TEXT.replace("  tau_c: 0.1\n", f"  tau_c: {value}\n", 1)
    assert text != TEXT
    with pytest.raises(ConfigError, match=r"train\.tau_c .*finite"):
        load_params(_write(tmp_path, text))


def test_a_bad_value_in_a_variant_names_the_variant_key():
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    raw["variants"]["o2c_ct1"]["tau_c"] = 0
    for selected in (None, "o2c_ct1", "o2c"):
        with pytest.raises(ConfigError, match=r"variants\.o2c_ct1\.tau_c = 0"):
            resolve_params(raw, variant=selected)
    raw["variants"]["o2c_ct1"]["tau_c"] = "high"
    with pytest.raises(ConfigError, match=r"variants\.o2c_ct1\.tau_c"):
        resolve_params(raw)
    raw["variants"]["o2c_ct1"] = {"tau_x": 1.0}
    with pytest.raises(ConfigError, match=r"variants\.o2c_ct1\.tau_x"):
        resolve_params(raw)


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda raw: raw["profiles"].__setitem__("embedded", 3), r"profiles\.embedded"),
        (lambda raw: raw["profiles"].__setitem__("paper", [1]), r"profiles\.paper"),
        (lambda raw: raw["profiles"]["paper"].__setitem__("train", 5), r"profiles\.paper\.train"),
        (lambda raw: raw.__setitem__("variants", ["o2c"]), r"variants"),
        (lambda raw: raw.__setitem__("profiles", "paper"), r"profiles"),
    ],
)
def test_wrong_shapes_are_config_errors(edit, needle):
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    edit(raw)
    with pytest.raises(ConfigError, match=needle):
        resolve_params(raw)


def test_the_vocoder_is_checked_up_front(tmp_path):
    with pytest.raises(ConfigError, match=r"eval\.vocoder = 'grifinlim'"):
        resolve_params(_with("eval", "vocoder", "grifinlim"))
    with pytest.raises(ConfigError, match=r"eval\.vocoder"):
        resolve_params(_with("eval", "vocoder", "models/g_00935000"), root=tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "g_00935000").write_bytes(b"x")
    assert resolve_params(_with("eval", "vocoder", "models/g_00935000"), root=tmp_path).eval.vocoder == "models/g_00935000"
    assert resolve_params(_with("eval", "vocoder", "hifigan")).eval.vocoder == "hifigan"


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seeds_are_checked_up_front(seed):
    raw = dict(yaml.safe_load(yaml.safe_dump(RAW)), seed=seed)
    with pytest.raises(ConfigError, match=r"seed = "):
        resolve_params(raw)


def test_every_seed_is_checked_against_one_range():
    """The top-level seed, each of `seeds` and a notebook's training seed: one range, [0, 2**32 - 1], one message."""
    from occ.config import MAX_SEED

    assert MAX_SEED == 2**32 - 1
    ok = dict(yaml.safe_load(yaml.safe_dump(RAW)), seed=MAX_SEED, seeds=[0, MAX_SEED])
    params = resolve_params(ok)
    assert params.seed == params.check_seed(MAX_SEED) == MAX_SEED
    text = r"must be a whole number in \[0, 4294967295\]"
    with pytest.raises(ConfigError, match=rf"^seed = True {text} \(params.yaml"):  # (params.yaml's types come first)
        params.check_seed(True)
    for bad in (-1, 2**32):
        with pytest.raises(ConfigError, match=rf"^seed = {bad!r} {text}; fix `seed` in params.yaml\.$"):
            resolve_params(dict(ok, seed=bad))
        with pytest.raises(ConfigError, match=rf"an entry of seeds = {bad!r} {text}\.$"):
            resolve_params(dict(ok, seeds=[0, bad]))
        with pytest.raises(ConfigError, match=rf"^seed = {bad!r} {text} \(params.yaml `seeds`"):
            params.check_seed(bad)


def test_exponent_without_a_dot_is_a_number(tmp_path):
    text = TEXT.replace("  lr_g: 4.0e-4", "  lr_g: 1e-4", 1)
    assert text != TEXT
    assert load_params(_write(tmp_path, text)).train.lr_g == pytest.approx(1e-4)
    quoted = TEXT.replace("  lr_g: 4.0e-4", "  lr_g: '1e-4'", 1)
    with pytest.raises(ConfigError, match=r"train\.lr_g .*without quotes"):
        load_params(_write(tmp_path, quoted))


def test_duplicate_keys_are_rejected(tmp_path):
    text = TEXT.replace("  tau_c: 0.1\n", "  tau_c: 0.1\n  tau_c: 0.5\n", 1)
    with pytest.raises(ConfigError, match=r"'tau_c' is given twice"):
        load_params(_write(tmp_path, text))
    with pytest.raises(ConfigError, match="twice"):
        variant_names(_write(tmp_path, text))


def test_a_bad_value_in_a_profile_names_the_profile_key():
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    raw["profiles"]["paper"]["train"]["lr_g"] = 0
    with pytest.raises(ConfigError, match=r"profiles\.paper\.train\.lr_g = 0"):
        resolve_params(raw, profile="paper")
    raw["profiles"]["paper"]["eval"]["vocoder"] = "hifi"
    raw["profiles"]["paper"]["train"]["lr_g"] = 1e-4
    with pytest.raises(ConfigError, match=r"profiles\.paper\.eval\.vocoder = 'hifi'"):
        resolve_params(raw, profile="paper")
    assert resolve_params(raw).profile == "embedded"  # another profile is not affected


def test_anchors_and_merge_keys_still_load(tmp_path):
    text = "base: &b {tau_c: 0.1, tau_d: 0.1}\nv:\n  <<: *b\n  tau_c: 1.0\n"
    from occ.config import read_yaml

    assert read_yaml(_write(tmp_path, text))["v"] == {"tau_c": 1.0, "tau_d": 0.1}


# --- a misspelt key is named, and settings that ask for more clips than exist are errors ------------------------------


@pytest.mark.parametrize("path,wrong,right", [
    (("eval",), "gl_iters", "gl_iter"),
    ((), "seed", "sed"),
    (("profiles", "paper", "train"), "lr_g", "lr_gg"),
    (("profiles", "smoke"), "train", "trian"),
    (("variants", "o2c"), "tau_c", "tua_c"),
    (("model",), "g_noise", "gnoise"),
])
def test_a_misspelt_key_is_named_with_the_closest_known_key_at_every_level(path, wrong, right):
    """Before: `gl_iter:` for `gl_iters:` gave "missing `eval.gl_iters`", not naming the misspelt key."""
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    node = raw
    for key in path:
        node = node[key]
    node[right] = node.pop(wrong)
    prefix = ".".join(path) + "." if path else ""
    with pytest.raises(ConfigError) as info:
        resolve_params(raw, source="params.yaml")
    assert str(info.value).startswith(f"params.yaml: {prefix}{right} is not a known key; did you mean "
                                      f"`{prefix}{wrong}`?")


def test_an_unknown_key_with_no_close_match_lists_the_known_keys():
    raw = yaml.safe_load(yaml.safe_dump(RAW))
    raw["eval"]["zzz"] = 1
    with pytest.raises(ConfigError, match=r"^params: eval\.zzz is not a known key; known keys of `eval`: \["):
        resolve_params(raw)


def test_l1_clips_beyond_the_held_out_clips_is_an_error_naming_both_numbers():
    """Before: eval.l1_clips = 1000 with 700 held-out clips was accepted (the picker took 700)."""
    with pytest.raises(ConfigError) as info:
        resolve_params(_with("eval", "l1_clips", 1000))
    assert str(info.value) == ("eval.l1_clips = 1000 asks for more held-out clips than the synthetic set holds (700: "
                               "data.heldout_per_class = 100 for each of its 7 classes); lower eval.l1_clips to at "
                               "most 700.")
    assert resolve_params(_with("eval", "l1_clips", 700)).eval.l1_clips == 700
    from occ.config import SYNTHETIC_CLASSES
    from occ.data.synth import CLASSES

    assert SYNTHETIC_CLASSES == len(CLASSES)


def test_settings_that_pick_clips_are_checked_against_any_feature_cache():
    """The reference stage checks the clips it picks against the cache it reads (real data included), naming both
    numbers, before it embeds anything."""
    from occ.config import check_eval_fits

    ev = load_params(ROOT / "params.yaml", profile="paper").eval
    check_eval_fits(ev, heldout=700, fewest_training=50, cache="data/features.pt")
    with pytest.raises(ConfigError, match=r"^eval\.l1_clips = 70 asks for more held-out clips than the feature cache "
                                          r"data/features\.pt holds \(21\); lower eval\.l1_clips to at most 21\.$"):
        check_eval_fits(ev, heldout=21, fewest_training=50, cache="data/features.pt")
    embedded = load_params(ROOT / "params.yaml").eval
    with pytest.raises(ConfigError, match=r"^eval\.probe_clips_per_class = 60 asks for more training clips than the "
                                          r"smallest class of the feature cache c\.pt holds \(59\)"):
        check_eval_fits(embedded, heldout=700, fewest_training=59, cache="c.pt")


def test_clip_settings_are_how_the_evaluation_makes_clips(tmp_path):
    import dataclasses

    from occ.config import clip_settings, load_params

    params = load_params(ROOT / "params.yaml")
    assert clip_settings(params, tmp_path) == {"seed": params.seed, "threads": params.eval.threads,
                                               "vocoder": params.eval.vocoder, "gl_iters": params.eval.gl_iters,
                                               "device": params.device}
    relative = dataclasses.replace(params, eval=dataclasses.replace(params.eval, vocoder="weights/g_00935000"))
    assert clip_settings(relative, tmp_path)["vocoder"] == str(tmp_path / "weights/g_00935000")
