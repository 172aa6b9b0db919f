"""Loaders check the weights they read: a checkpoint with a NaN or infinite weight in any of its networks is refused
(by every loader and by resume, saying so truthfully); non-finite settings are refused by the training and loss
functions themselves, whatever the caller."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from occ.checkpoint import load_checkpoint, save_checkpoint
from occ.config import SupConConfig
from occ.errors import CheckpointError, ConfigError, DataError
from occ.nets.models import build_encoder, load_discriminator, load_encoder, load_generator
from occ.train.gan_train import train_gan
from occ.train.losses import contrastive_loss, supcon_loss

from test_gan_train import MODEL, N_CLASSES, TRAIN as TINY, data  # noqa: F401 (data: the tiny training set fixture)

TRAIN = dataclasses.replace(TINY, steps=2, ckpt_every=1)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=out, seed=1, progress=False)
    return out


def _poisoned(src, dst, part, value=float("nan")):
    payload = load_checkpoint(src)
    name = next(k for k, v in payload[part].items() if v.is_floating_point())
    payload[part][name].view(-1)[0] = value
    save_checkpoint(dst, payload)
    return name


@pytest.mark.parametrize("part", ["g", "d", "g_ema"])
def test_every_loader_refuses_a_checkpoint_with_a_non_finite_network(run, tmp_path, part):
    bad = tmp_path / "checkpoint.pt"
    name = _poisoned(run / "checkpoint.pt", bad, part)
    match = rf"network '{part}' holds NaN or infinite weights \('{name}'\).*neither used nor resumed"
    for load in (lambda: load_generator(bad), lambda: load_generator(bad, ema=False), lambda: load_discriminator(bad),
                 lambda: load_checkpoint(bad, kind="gan")):
        with pytest.raises(CheckpointError, match=match):
            load()


def test_resume_refuses_a_checkpoint_with_non_finite_weights_and_says_so(data, run, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for f in ("log.csv", "step0.pt"):
        (folder / f).write_bytes((run / f).read_bytes())
    _poisoned(run / "checkpoint.pt", folder / "checkpoint.pt", "g", float("inf"))
    train = dataclasses.replace(TRAIN, steps=4)
    for on_change in ("error", "restart"):  # not a changed configuration: the folder is kept either way
        with pytest.raises(CheckpointError) as info:
            train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=folder, seed=1, progress=False,
                      on_config_change=on_change)
        assert "network 'g' holds NaN or infinite weights" in str(info.value)
        assert f"delete it with its run folder {folder}" in str(info.value)
        assert "last good checkpoint" not in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "log.csv", "step0.pt"]


def test_an_encoder_checkpoint_with_non_finite_weights_is_refused(tmp_path):
    enc = build_encoder(MODEL, n_classes=N_CLASSES)
    state = enc.state_dict()
    next(v for v in state.values() if v.is_floating_point()).view(-1)[0] = float("nan")
    path = save_checkpoint(tmp_path / "encoder.pt", {"kind": "encoder", "model": dataclasses.asdict(MODEL),
                                                     "train": {}, "step": 1, "n_classes": N_CLASSES, "encoder": state})
    with pytest.raises(CheckpointError, match=r"network 'encoder' holds NaN or infinite weights.*rerun encoder training"):
        load_encoder(path)


def test_a_vocoder_or_probe_file_with_non_finite_values_is_refused(tmp_path):
    from occ.metrics.probe import LinearProbe, load_probe
    from occ.synthesis.hifigan import HiFiGANGenerator, load_generator_state

    model = HiFiGANGenerator()
    state = model.state_dict()
    state[next(iter(state))].view(-1)[0] = float("inf")
    with pytest.raises(CheckpointError, match=r"^g_test holds NaN or infinite weights .*download it again"):
        load_generator_state(HiFiGANGenerator(), state, source="g_test")
    probe = LinearProbe(["a", "b"], np.zeros(3), np.ones(3), np.full((2, 3), np.nan), np.zeros(2), 1.0)
    probe.save(tmp_path / "probe.npz")
    with pytest.raises(DataError, match=r"probe's coef hold NaN or infinite values"):
        load_probe(tmp_path / "probe.npz")


@pytest.mark.parametrize("key", ["tau_d", "tau_c", "lr_g", "lr_d", "contrastive_weight"])
def test_training_refuses_non_finite_settings_whatever_the_caller(data, tmp_path, key):
    train = dataclasses.replace(TRAIN, **{key: float("inf")})
    with pytest.raises(ConfigError, match=rf"^train\.{key} = inf"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=r"^supcon\.temperature = inf"):
        SupConConfig(temperature=float("inf")).check()


def test_loss_functions_refuse_non_finite_temperatures():
    d, e = torch.randn(4, 8), torch.randn(4, 8)
    labels = torch.tensor([0, 1, 0, 1])
    for tau in (float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="tau_c=.* must be a finite temperature > 0"):
            contrastive_loss(d, labels, e, kind="o2c", tau_d=0.1, tau_c=tau)
        with pytest.raises(ConfigError, match="temperature=.* must be a finite temperature > 0"):
            supcon_loss(d.reshape(4, 1, 8), labels, temperature=tau, base_temperature=0.1)
