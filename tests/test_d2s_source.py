"""The two readings of the source term of generated clips (``train.d2s_source``) and the numerator shares logged per
step: the G step's f sees what the reading says, G gets the classes it says, no gradient reaches f under
``paired_real``, the seeded stream is the same for both readings, resume stays exact, and a loss without a source
term refuses ``paired_real`` naming the key. (Two processes against one: tests/test_distributed.py.)"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import occ.train.gan_train as gan_train
from occ.checkpoint import load_checkpoint
from occ.config import ModelConfig, TrainConfig, resolve_params
from occ.errors import ConfigError
from occ.nets.generator import Generator
from occ.train.gan_train import train_gan

N_CLASSES = 3
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
TRAIN = TrainConfig(loss="ocsupcon", steps=4, batch_size=6, ckpt_every=2, ema_decay=0.9)


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(12, 80, 344, generator=gen) * 2 - 1, torch.arange(12) % N_CLASSES


class _SpyEncoder(nn.Module):
    """A small frozen f that records every clip batch it embeds and whether its output carries a gradient."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 5, stride=4)
        self.proj = nn.Linear(4, MODEL.proj_dim)
        self.calls: list[tuple[torch.Tensor, bool]] = []

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.normalize(self.proj(F.relu(self.conv(x)).mean(dim=(2, 3))), dim=1)
        self.calls.append((x.detach().clone(), out.requires_grad))
        return out


def _spied_run(data, tmp_path, monkeypatch, reading: str, steps: int = 2):
    """Train with every step's draws, G's (grad-enabled) class inputs and f's inputs recorded."""
    draws, g_classes = [], []
    real_draw, real_forward = gan_train.draw_step, Generator.forward

    def draw_step(*args, **kwargs):
        draws.append(real_draw(*args, **kwargs))
        return draws[-1]

    def forward(self, z, y):
        if torch.is_grad_enabled():  # the G step's call (the D step's fakes are made under no_grad)
            g_classes.append(y.clone())
        return real_forward(self, z, y)

    monkeypatch.setattr(gan_train, "draw_step", draw_step)
    monkeypatch.setattr(Generator, "forward", forward)
    enc = _SpyEncoder()
    train = dataclasses.replace(TRAIN, steps=steps, d2s_source=reading)
    train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=3, encoder=enc,
              progress=False)
    return draws, g_classes, enc.calls


def test_paired_real_f_sees_the_steps_real_clips_and_g_takes_their_classes(data, tmp_path, monkeypatch):
    draws, g_classes, f_calls = _spied_run(data, tmp_path, monkeypatch, "paired_real")
    assert len(draws) == len(g_classes) == 2 and len(f_calls) == 4  # f: D step, G step, per step
    for step, d in enumerate(draws):
        (x_d, grad_d), (x_g, grad_g) = f_calls[2 * step], f_calls[2 * step + 1]
        assert torch.equal(x_d, d.x_real) and torch.equal(x_g, d.x_real)  # the G step's f reads the real clips
        assert not grad_d and not grad_g  # no gradient through f in either step
        assert torch.equal(g_classes[step], d.y_real)  # G(z_i, c_i) with c_i the class of x_i
        assert not torch.equal(d.y_gen, d.y_real)  # (the drawn classes differ, so the check means something)


def test_generated_f_sees_the_generated_clips_with_a_gradient(data, tmp_path, monkeypatch):
    draws, g_classes, f_calls = _spied_run(data, tmp_path, monkeypatch, "generated")
    for step, d in enumerate(draws):
        (x_d, grad_d), (x_g, grad_g) = f_calls[2 * step], f_calls[2 * step + 1]
        assert torch.equal(x_d, d.x_real) and not grad_d
        assert x_g.shape == d.x_real.shape and not torch.equal(x_g, d.x_real) and grad_g
        assert torch.equal(g_classes[step], d.y_gen)


def test_both_readings_draw_the_same_stream(data, tmp_path):
    enc = _SpyEncoder()
    ckpts = {}
    for reading in ("generated", "paired_real"):
        train = dataclasses.replace(TRAIN, d2s_source=reading)
        run = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path / reading, seed=3,
                        encoder=enc, progress=False)
        ckpts[reading] = load_checkpoint(run.checkpoint_path)
    a, b = (ckpts[r]["rng"]["generators"]["sampler"] for r in ("generated", "paired_real"))
    assert torch.equal(a, b)
    g_a, g_b = ckpts["generated"]["g"], ckpts["paired_real"]["g"]
    assert any(not torch.equal(g_a[k], g_b[k]) for k in g_a)  # the same draws, another G step


def test_paired_real_resumes_exactly(data, tmp_path):
    enc = _SpyEncoder()
    train = dataclasses.replace(TRAIN, d2s_source="paired_real")
    whole = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path / "whole", seed=3,
                      encoder=enc, progress=False)
    part = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path / "part", seed=3,
                     encoder=enc, progress=False, stop_after=3)
    assert not part.finished
    resumed = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path / "part", seed=3,
                        encoder=enc, progress=False)
    assert resumed.resumed_from == 2
    a, b = load_checkpoint(whole.checkpoint_path), load_checkpoint(resumed.checkpoint_path)
    for part_name in ("g", "d", "g_ema"):
        assert all(torch.equal(a[part_name][k], b[part_name][k]) for k in a[part_name]), part_name
    pd.testing.assert_frame_equal(whole.log().drop(columns="seconds"), resumed.log().drop(columns="seconds"),
                                  check_exact=True)


@pytest.mark.parametrize("loss", ["2c", "o2c", "none"])
def test_paired_real_without_a_source_term_is_refused(data, tmp_path, loss):
    bad = dataclasses.replace(TRAIN, loss=loss, d2s_source="paired_real")
    with pytest.raises(ConfigError, match=r"train\.d2s_source = 'paired_real'.*train\.loss = '" + loss):
        bad.check()
    with pytest.raises(ConfigError, match=r"train\.d2s_source"):
        train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=bad, out_dir=tmp_path / loss, progress=False)
    assert not (tmp_path / loss / "checkpoint.pt").exists()
    with pytest.raises(ConfigError, match=r"train\.d2s_source = 'mirror' is not one of"):
        dataclasses.replace(TRAIN, d2s_source="mirror").check()


def test_a_variant_setting_paired_real_on_a_loss_without_source_is_named(tmp_path):
    from occ.config import read_yaml
    from occ.paths import Layout

    raw = read_yaml(Layout.find().params)
    raw["variants"]["o2c"] = {**raw["variants"]["o2c"], "d2s_source": "paired_real"}
    with pytest.raises(ConfigError, match=r"variants\.o2c\.d2s_source"):
        resolve_params(raw)


@pytest.mark.parametrize("loss", ["2c", "csupcon", "o2c", "ocsupcon", "none"])
def test_the_log_holds_the_numerator_shares(data, tmp_path, loss):
    reading = "paired_real" if loss in ("csupcon", "ocsupcon") else "generated"
    train = dataclasses.replace(TRAIN, loss=loss, steps=2, d2s_source=reading)
    run = train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=tmp_path, seed=3,
                    encoder=_SpyEncoder(), progress=False)
    log = run.log()
    for step in ("d", "g"):
        class_share, source_share = log[f"{step}_class_share"], log[f"{step}_source_share"]
        if loss == "none":
            assert class_share.isna().all() and source_share.isna().all()
            continue
        assert class_share.between(0, 1).all() and (class_share > 0).all()
        if loss == "o2c":
            assert (class_share == 1.0).all()
        if loss in ("2c", "o2c"):
            assert source_share.isna().all()
        else:
            assert source_share.between(0, 1).all()
            total = (class_share + source_share).tolist()
            if loss == "ocsupcon":  # the numerator is d2c + d2s
                assert all(math.isclose(t, 1.0, rel_tol=1e-6) for t in total)
            else:  # C-SupCon adds same-class data terms
                assert all(t <= 1.0 + 1e-6 for t in total)
    label, pull = log["g_label_share"], log["g_pull_push"]
    if loss == "none":
        assert label.isna().all() and pull.isna().all()
        return
    # the anchors of the class asked for: the class term, and the source term where it is a real clip of that class
    anchored = log["g_class_share"] + (log["g_source_share"] if reading == "paired_real" else 0.0)
    assert (label - anchored).abs().max() < 1e-12
    assert (pull - train.tau_d / train.tau_c * anchored).abs().max() < 1e-12


def test_the_anchored_share_counts_the_source_term_only_when_it_is_of_the_class_asked_for():
    from occ.train.gan_step import anchored_share

    assert anchored_share(0.25, 0.5, source_of_class=True) == 0.75
    assert anchored_share(0.25, 0.5, source_of_class=False) == 0.25
    assert anchored_share(0.25, float("nan"), source_of_class=True) == 0.25  # no source term (2C, O2C)
    assert math.isnan(anchored_share(float("nan"), float("nan"), source_of_class=True))  # no contrastive term
