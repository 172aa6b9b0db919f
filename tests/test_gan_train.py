"""Tests of occ.train.gan_train, occ.train.gan_step (and occ.train.diffaugment): exact resume, step-0 file, log, divergence,
SupCon gradient path."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import occ.train.gan_step as gan_step
import occ.train.gan_train as gan_train
from occ.train.diffaugment import apply_d_augment, draw_d_augment
from occ.checkpoint import load_checkpoint
from occ.config import ModelConfig, TrainConfig
from occ.errors import CheckpointError, ConfigError, DataError, TrainingDivergedError
from occ.train.gan_train import LOG_COLUMNS, train_gan
from occ.nets.models import build_generator, load_discriminator, load_generator
from occ.seeding import seed_everything

N_CLASSES = 3
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
TRAIN = TrainConfig(loss="o2c", steps=4, batch_size=4, ckpt_every=2, ema_decay=0.9)


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    mels = torch.rand(12, 80, 344, generator=gen) * 2 - 1
    labels = torch.arange(12) % N_CLASSES
    return mels, labels


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    run = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=out, seed=3, progress=False)
    return run


def _assert_same_state(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_full_run_files_and_log(full_run):
    assert full_run.finished and full_run.step == 4 and full_run.resumed_from is None
    assert full_run.checkpoint_path.is_file() and full_run.step0_path.is_file()
    log = full_run.log()
    assert tuple(log.columns) == LOG_COLUMNS
    assert log["step"].tolist() == [1, 2, 3, 4]
    assert (log["d_adv"] - (log["d_loss_real"] + log["d_loss_fake"])).abs().max() < 1e-5
    assert log[["d_acc_real", "d_acc_fake"]].stack().between(0, 1).all()
    assert (log["d_contrastive"] > 0).all() and (log["g_contrastive"] > 0).all()
    payload = load_checkpoint(full_run.checkpoint_path, kind="gan")
    assert payload["step"] == 4 and payload["train"]["loss"] == "o2c" and payload["model"]["g_ch"] == 4


def test_resume_is_bit_identical(data, full_run, tmp_path):
    part = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, seed=3,
                     progress=False, stop_after=3)
    assert part.step == 3 and not part.finished
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    assert pd.read_csv(tmp_path / "log.csv")["step"].tolist() == [1, 2, 3]  # step 3 is past the checkpoint
    resumed = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, seed=3, progress=False)
    assert resumed.resumed_from == 2 and resumed.finished
    a = load_checkpoint(full_run.checkpoint_path)
    b = load_checkpoint(tmp_path / "checkpoint.pt")
    for part_name in ("g", "d", "g_ema", "g_optim", "d_optim", "rng"):
        _assert_same_state(a[part_name], b[part_name], part_name)
    log_a, log_b = full_run.log(), pd.read_csv(tmp_path / "log.csv")
    assert log_b["step"].tolist() == [1, 2, 3, 4]  # the stale step-3 row was dropped, not duplicated
    cols = [c for c in LOG_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(log_a[cols], log_b[cols])
    # Finished: calling again trains nothing.
    again = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, seed=3, progress=False)
    assert again.step == 4 and again.seconds == 0.0


def test_step0_is_the_untrained_generator(full_run):
    g0, payload = load_generator(full_run.step0_path, ema=False)
    assert payload["step"] == 0
    seed_everything(3)
    fresh = build_generator(MODEL, n_classes=N_CLASSES)
    _assert_same_state(g0.state_dict(), fresh.state_dict(), "step0")
    g4, _ = load_generator(full_run.checkpoint_path, ema=False)
    changed = [k for k, v in g4.state_dict().items() if not torch.equal(v, g0.state_dict()[k])]
    assert changed, "training did not change G"
    g_ema, _ = load_generator(full_run.checkpoint_path, ema=True)
    assert not torch.equal(g_ema.linear.parametrizations.weight.original, g4.linear.parametrizations.weight.original)
    d, _ = load_discriminator(full_run.checkpoint_path)
    assert not d.training


def test_resume_with_other_config_names_the_key(data, full_run):
    with pytest.raises(CheckpointError, match=r"loss: checkpoint 'o2c' vs requested '2c'"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=dataclasses.replace(TRAIN, loss="2c"),
                  out_dir=full_run.out_dir, seed=3, progress=False)
    with pytest.raises(CheckpointError, match=r"g_ch: checkpoint 4 vs requested 8"):
        train_gan(*data, n_classes=N_CLASSES, model=dataclasses.replace(MODEL, g_ch=8), train=TRAIN,
                  out_dir=full_run.out_dir, seed=3, progress=False)
    with pytest.raises(CheckpointError, match=r"seed: checkpoint 3 vs requested 4"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=full_run.out_dir, seed=4, progress=False)
    with pytest.raises(CheckpointError, match="data_digest"):
        train_gan(data[0] * 0.5, data[1], n_classes=N_CLASSES, model=MODEL, train=TRAIN,
                  out_dir=full_run.out_dir, seed=3, progress=False)
    with pytest.raises(CheckpointError, match="no such checkpoint; run GAN training"):
        load_generator(full_run.checkpoint_path.parent / "not_there.pt")
    torch.save({"kind": "encoder", "version": 1}, full_run.out_dir / "enc.pt")
    with pytest.raises(CheckpointError, match="'encoder' checkpoint"):
        load_generator(full_run.out_dir / "enc.pt")


def test_nan_loss_raises_and_keeps_checkpoint(data, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = gan_step.contrastive_terms

    def poisoned(*args, **kwargs):  # two calls per step (D, G): call 3 is step 2's D step
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out._replace(loss=out.loss * float("nan")) if calls["n"] == 3 else out

    monkeypatch.setattr(gan_step, "contrastive_terms", poisoned)
    train = dataclasses.replace(TRAIN, ckpt_every=1)
    with pytest.raises(TrainingDivergedError, match=r"step 2.*discriminator loss.*nan.*step 1\) was kept"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=3, progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", kind="gan")
    assert payload["step"] == 1
    assert all(torch.isfinite(v).all() for v in payload["g"].values() if v.is_floating_point())
    assert pd.read_csv(tmp_path / "log.csv")["step"].tolist() == [1]


def test_huge_lr_diverges_without_writing_nan_weights(data, tmp_path, monkeypatch):
    train = dataclasses.replace(TRAIN, lr_d=1e30, lr_g=1e30, steps=3, ckpt_every=1)
    with pytest.raises(ConfigError, match=r"train\.lr_g = 1e\+30 is out of range"):  # refused up front
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=3, progress=False)
    monkeypatch.setattr("occ.config.MAX_LEARNING_RATE", float("inf"))  # and if it were not: the guard stops it
    with pytest.raises(TrainingDivergedError, match="training diverged at step"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=3, progress=False)
    if (tmp_path / "checkpoint.pt").exists():
        payload = load_checkpoint(tmp_path / "checkpoint.pt")
        for part in ("g", "d"):
            assert all(torch.isfinite(v).all() for v in payload[part].values() if v.is_floating_point())


def test_hinge_only_has_no_contrastive_term(data, tmp_path):
    train = dataclasses.replace(TRAIN, loss="none", steps=2, augment=True, ema_decay=0.0)
    run = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=1, progress=False)
    log = run.log()
    assert (log["d_contrastive"] == 0).all() and (log["g_contrastive"] == 0).all()
    assert load_checkpoint(run.checkpoint_path)["g_ema"] is None
    g, _ = load_generator(run.checkpoint_path)  # falls back to G without EMA
    _assert_same_state(g.state_dict(), run.generator.state_dict())


class _TinyEncoder(nn.Module):
    """A stand-in for occ.nets.encoder.Encoder: records the gradient reaching its input."""

    def __init__(self, proj_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, stride=4)
        self.proj = nn.Linear(4, proj_dim)
        self.input_grads: list[float] = []

    def embed(self, x):
        if x.requires_grad:
            x.register_hook(lambda g: self.input_grads.append(float(g.abs().sum())))
        h = F.relu(self.conv(x)).mean(dim=(2, 3))
        return F.normalize(self.proj(h), dim=1)


def test_supcon_kind_gradient_flows_through_frozen_encoder(data, tmp_path):
    torch.manual_seed(0)
    enc = _TinyEncoder(MODEL.proj_dim)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    train = dataclasses.replace(TRAIN, loss="ocsupcon", steps=1)
    with pytest.raises(ConfigError, match="needs the SupCon encoder"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, progress=False)
    run = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, encoder=enc, progress=False)
    assert run.finished
    assert len(enc.input_grads) == 1 and enc.input_grads[0] > 0  # G step: d2s reaches G through f
    assert not enc.training and all(not p.requires_grad and p.grad is None for p in enc.parameters())
    _assert_same_state(before, enc.state_dict(), "encoder")
    assert load_checkpoint(run.checkpoint_path)["run"]["encoder_digest"]


def test_bad_data_is_refused(data, tmp_path):
    mels, labels = data
    with pytest.raises(DataError, match="shape"):
        train_gan(mels[:, :40], labels, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, progress=False)
    with pytest.raises(DataError, match=r"\[0, 2\)"):
        train_gan(mels, labels, n_classes=2, model=MODEL, train=TRAIN, out_dir=tmp_path, progress=False)
    with pytest.raises(DataError, match="normalised"):
        train_gan(mels * 12, labels, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, progress=False)


def test_augment_d_translation_and_cutout():
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 344).expand(2, 1, 80, 344).clone().requires_grad_(True)
    p = draw_d_augment(2, height=80, width=344, generator=gen, translation=0.125, cutout=0.0)
    y = apply_d_augment(x, p)
    for i in range(2):
        st, sf = int(p.shift_t[i]), int(p.shift_f[i])
        assert abs(st) <= 43 and abs(sf) <= 10
        # A ramp in time stays increasing wherever it is not silence: never a time reversal.
        row = y[i, 0, 40].detach()
        inside = row > -1
        assert torch.all(row[inside].diff() > 0)
        j = 200
        assert torch.isclose(y[i, 0, 40, j], x[0, 0, 40, j - st]) or y[i, 0, 40, j] == -1
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    z = apply_d_augment(torch.zeros(3, 1, 80, 344), draw_d_augment(3, height=80, width=344, generator=gen,
                                                                   translation=0.0, cutout=0.5))
    frac = (z == -1).float().mean(dim=(1, 2, 3))
    assert torch.all(frac > 0) and torch.all(frac <= 0.25 + 1e-6)


def test_noise_input_trains_resumes_and_generates(data, tmp_path):
    from occ.synthesis.generate import generate_mels

    model = dataclasses.replace(MODEL, g_noise=0.3)
    train = dataclasses.replace(TRAIN, steps=2, ckpt_every=1)
    whole = train_gan(*data, n_classes=N_CLASSES, model=model, train=train, out_dir=tmp_path / "a", seed=2,
                      progress=False)
    assert whole.generator.z_dim == 16 + whole.generator.noise_dim > 16
    half = train_gan(*data, n_classes=N_CLASSES, model=model, train=dataclasses.replace(train, steps=1),
                     out_dir=tmp_path / "b", seed=2, progress=False)
    resumed = train_gan(*data, n_classes=N_CLASSES, model=model, train=train, out_dir=half.out_dir, seed=2,
                        progress=False)
    _assert_same_state(load_checkpoint(whole.checkpoint_path)["g"], load_checkpoint(resumed.checkpoint_path)["g"])
    g, _ = load_generator(whole.checkpoint_path)
    assert g.noise_scale is not None
    a = generate_mels(g, [0, 1, 2], [5, 6, 7], batch_size=3)
    b = generate_mels(g, [0, 1, 2], [5, 6, 7], batch_size=1)
    torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match="g_noise"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path / "a", seed=2,
                  progress=False)


def _stage_project(tmp_path, loss="o2c"):
    """A project of 12 training and 6 held-out clips, and params for a 2-step run of ``loss``."""
    from occ.config import Params
    from occ.data.datasets import FeatureCache
    from occ.paths import Layout

    gen = torch.Generator().manual_seed(1)
    cache = FeatureCache(mels=torch.rand(18, 80, 344, generator=gen) * 14 - 11.5, labels=torch.arange(18) % N_CLASSES,
                         files=[f"c{i}.wav" for i in range(18)], class_names=["a", "b", "c"],
                         heldout_mask=torch.arange(18) >= 12)
    params = Params(seed=0, device="cpu", model=MODEL, train=dataclasses.replace(TRAIN, loss=loss, steps=2),
                    variant="v")
    return Layout(tmp_path), params, cache


def test_train_for_stage_is_the_stage_training(tmp_path, monkeypatch):
    from occ.data.datasets import normalize_mel

    layout, params, cache = _stage_project(tmp_path)
    calls = []
    monkeypatch.setattr(gan_train, "train_gan", lambda *args, **kwargs: calls.append((args, kwargs)) or "run")
    assert gan_train.train_for_stage(layout, params, cache, variant="v", seed=2, progress=False) == "run"
    (mels, labels), kwargs = calls[0]
    train = cache.train()
    assert torch.equal(mels, normalize_mel(train.mels)) and torch.equal(labels, train.labels) and mels.shape[0] == 12
    assert kwargs == dict(n_classes=3, model=params.model, train=params.train, out_dir=tmp_path / "runs/train/v/seed2",
                          seed=2, device="cpu", encoder=tmp_path / "runs/supcon/encoder.pt",
                          class_names=["a", "b", "c"], progress=False, on_config_change="restart")
    with pytest.raises(ConfigError, match="seed = -1"):
        gan_train.train_for_stage(layout, params, cache, variant="v", seed=-1)


def test_train_for_stage_trains_the_run_of_the_stage(tmp_path):
    layout, params, cache = _stage_project(tmp_path)  # o2c: no encoder needed, none there
    run = gan_train.train_for_stage(layout, params, cache, variant="v", seed=1, progress=False)
    assert run.finished and run.out_dir == layout.train_run("v", 1) and run.log()["step"].tolist() == [1, 2]
    assert load_checkpoint(run.checkpoint_path)["class_names"] == ["a", "b", "c"]
    with pytest.raises(CheckpointError, match="no such checkpoint"):  # a SupCon loss reads the supcon stage's f
        gan_train.train_for_stage(layout, dataclasses.replace(params, train=dataclasses.replace(params.train,
                                  loss="ocsupcon")), cache, variant="w", seed=1, progress=False)


def test_the_train_stage_writes_the_log_and_the_losses_of_its_run(tmp_path, monkeypatch):
    from occ.data import datasets
    from occ.stages import train as train_stage

    layout, params, cache = _stage_project(tmp_path)
    monkeypatch.setattr(datasets, "load_feature_cache", lambda path: cache)
    stage = train_stage.train_stage(layout, params, variant="v", seed=1)
    out = tmp_path / "results/train/v/seed1"
    assert stage.run.finished and stage.log["step"].tolist() == [1, 2]
    assert (out / "log.csv").read_text() == stage.run.log().to_csv(index=False)
    assert stage.losses.path == out / "losses.png" and (out / "losses.png").read_bytes() == stage.losses.png


def test_d_projection_makes_d_read_the_label_and_is_stored_with_the_run(data, tmp_path):
    """``train.d_projection``: D2 gains the class term <e_D(c), D1(x)>, so D's logit depends on the label; the
    checkpoint records the setting in ``train`` and ``load_discriminator`` rebuilds the same D."""
    import dataclasses

    from occ.nets.models import d_projection_of

    train = dataclasses.replace(TRAIN, steps=2, d_projection=True)
    run = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=3, progress=False)
    payload = load_checkpoint(run.checkpoint_path, kind="gan")
    assert payload["train"]["d_projection"] is True and "d_projection" not in payload["model"]
    assert d_projection_of(payload) is True
    d, _ = load_discriminator(run.checkpoint_path)
    assert d.d2.embed is not None
    x = data[0][:3].unsqueeze(1)
    logits = [d(x, torch.full((3,), c)).logits for c in range(N_CLASSES)]
    assert not torch.allclose(logits[0], logits[1])
    # without it D ignores the label (the default), and a checkpoint that kept the setting under `model` still loads
    plain = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=dataclasses.replace(train, d_projection=False),
                      out_dir=tmp_path / "plain", seed=3, progress=False)
    d0, _ = load_discriminator(plain.checkpoint_path)
    assert d0.d2.embed is None
    torch.testing.assert_close(d0(x, torch.zeros(3, dtype=torch.long)).logits, d0(x, torch.ones(3, dtype=torch.long)).logits)
    old = {**payload, "model": {**payload["model"], "d_projection": True},
           "train": {k: v for k, v in payload["train"].items() if k != "d_projection"}}
    assert d_projection_of(old) is True
