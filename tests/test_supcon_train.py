"""Tests of occ.train.supcon_train: SupCon pretraining learns an easy problem, resume is exact, fine-tuning classifies."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from occ.checkpoint import load_checkpoint
from occ.config import ModelConfig, SupConConfig
from occ.errors import CheckpointError
from occ.nets.encoder import classification_accuracy, encode_mels
from occ.nets.models import load_encoder
from occ.train.supcon_train import finetune_classifier, pretrain_supcon

N_CLASSES = 3
MODEL = ModelConfig(enc_width=8, proj_dim=8)  # width 4 + channels-last crashes torch 2.11 (1x1 stride-2 conv backward)
CFG = SupConConfig(steps=8, batch_size=8, lr=3e-3, temperature=0.1, finetune_steps=40, finetune_lr=1e-2, ckpt_every=4)


def easy_problem(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c = a loud band at mel rows 25c..25c+15 over faint noise on silence."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES).repeat_interleave(n_per_class)
    mels = -1.0 + 0.2 * torch.rand(len(labels), 80, 344, generator=gen)
    for i, c in enumerate(labels.tolist()):
        mels[i, 25 * c:25 * c + 15] = 0.8
    return mels, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mels, labels = easy_problem(6, seed=0)
    out = tmp_path_factory.mktemp("enc")
    pre = pretrain_supcon(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=CFG, out_dir=out, seed=0, progress=False)
    ft = finetune_classifier(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=CFG, out_dir=out, seed=0,
                             class_names=["a", "b", "c"], progress=False)
    return mels, labels, out, pre, ft


def test_pretraining_reduces_the_loss(trained):
    _, _, out, pre, _ = trained
    assert pre.finished and pre.step == CFG.steps
    log = pre.log()
    assert list(log.columns) == ["step", "loss", "seconds"] and log["step"].tolist() == list(range(1, 9))
    assert log["loss"].iloc[-3:].mean() < 0.8 * log["loss"].iloc[:2].mean()
    payload = load_checkpoint(out / "supcon.pt", kind="encoder")
    assert payload["stage"] == "supcon" and payload["step"] == CFG.steps


def test_finetuning_beats_chance_and_keeps_the_embedding(trained):
    mels, labels, out, pre, ft = trained
    assert ft.train_accuracy > 0.9
    held_mels, held_labels = easy_problem(4, seed=1)
    enc = load_encoder(out / "encoder.pt")
    assert not enc.training and all(not p.requires_grad for p in enc.parameters())
    assert classification_accuracy(enc, held_mels, held_labels) > 0.9  # chance: 1/3
    assert classification_accuracy(enc, mels, labels) == pytest.approx(ft.train_accuracy)
    # Head-only fine-tuning: the SupCon embedding f(x) used by the GAN is unchanged.
    pretrained = load_encoder(out / "supcon.pt")
    e0 = encode_mels(pretrained, held_mels)
    e1 = encode_mels(enc, held_mels)
    assert torch.equal(e0, e1) and torch.allclose(e1.norm(dim=1), torch.ones(len(e1)), atol=1e-5)
    assert not torch.equal(pretrained.classifier.weight, enc.classifier.weight)
    payload = load_checkpoint(out / "encoder.pt", kind="encoder")
    assert payload["stage"] == "finetuned" and payload["class_names"] == ["a", "b", "c"]
    assert list(pd.read_csv(out / "finetune_log.csv").columns) == ["step", "loss", "accuracy", "seconds"]


def test_pretraining_resume_is_exact(trained, tmp_path):
    mels, labels, out, _, _ = trained
    cfg = dataclasses.replace(CFG, steps=4, ckpt_every=2)
    part = pretrain_supcon(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=cfg, out_dir=tmp_path, seed=0,
                           progress=False, stop_after=3)
    assert part.step == 3 and load_checkpoint(tmp_path / "supcon.pt")["step"] == 2
    resumed = pretrain_supcon(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=cfg, out_dir=tmp_path, seed=0,
                              progress=False)
    assert resumed.resumed_from == 2 and resumed.finished
    log = resumed.log()
    assert log["step"].tolist() == [1, 2, 3, 4]
    # The uninterrupted 8-step run passed through step 4 with the same draws: same losses.
    full = pd.read_csv(out / "supcon_log.csv")
    assert log["loss"].tolist() == full["loss"].iloc[:4].tolist()


def test_errors(trained, tmp_path):
    mels, labels, out, _, _ = trained
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        finetune_classifier(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=CFG, out_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"enc_width: checkpoint 8 vs requested 16"):
        pretrain_supcon(mels, labels, n_classes=N_CLASSES, model=dataclasses.replace(MODEL, enc_width=16), cfg=CFG,
                        out_dir=out, progress=False)
    with pytest.raises(CheckpointError, match=r"temperature: checkpoint 0.1 vs requested 0.5"):
        pretrain_supcon(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=dataclasses.replace(CFG, temperature=0.5),
                        out_dir=out, progress=False)
    with pytest.raises(CheckpointError, match="stopped at step 8 of supcon.steps = 20"):
        finetune_classifier(mels, labels, n_classes=N_CLASSES, model=MODEL, cfg=dataclasses.replace(CFG, steps=20),
                            out_dir=out, progress=False)


def test_gan_stage_loads_the_encoder_by_path(trained, tmp_path):
    from occ.config import TrainConfig
    from occ.train.gan_train import train_gan

    mels, labels, out, _, _ = trained
    gan_model = dataclasses.replace(MODEL, z_dim=16, g_ch=4, d_ch=4)
    run = train_gan(mels[:6], labels[:6], n_classes=N_CLASSES, model=gan_model,
                    train=TrainConfig(loss="ocsupcon", steps=1, batch_size=4, ema_decay=0.0),
                    out_dir=tmp_path, encoder=out / "encoder.pt", progress=False)
    assert run.finished and run.log()["g_contrastive"].iloc[0] > 0


def test_supcon_for_stage_is_pretraining_then_finetuning_of_the_stage(tmp_path):
    from occ.config import Params
    from occ.data.datasets import FeatureCache, denormalize_mel, normalize_mel
    from occ.paths import Layout
    from occ.train.supcon_train import supcon_for_stage

    mels, labels = easy_problem(6, seed=2)
    cache = FeatureCache(mels=denormalize_mel(mels), labels=labels, files=[f"c{i}.wav" for i in range(len(labels))],
                         class_names=["a", "b", "c"], heldout_mask=torch.arange(len(labels)) % 6 == 5)
    cfg = dataclasses.replace(CFG, steps=2, finetune_steps=2, ckpt_every=2)
    params = Params(seed=4, device="cpu", model=MODEL, supcon=cfg)
    pre, fine = supcon_for_stage(Layout(tmp_path), params, cache, progress=False)
    assert pre.finished and pre.out_dir == fine.out_dir == tmp_path / "runs" / "supcon"
    assert fine.checkpoint_path == tmp_path / "runs" / "supcon" / "encoder.pt"
    # the same as the two calls made by hand on the training clips
    train = cache.train()
    x = normalize_mel(train.mels)
    kw = dict(n_classes=N_CLASSES, model=MODEL, cfg=cfg, out_dir=tmp_path / "by_hand", seed=4, progress=False)
    pretrain_supcon(x, train.labels, **kw)
    finetune_classifier(x, train.labels, class_names=["a", "b", "c"], **kw)
    for name in ("supcon.pt", "encoder.pt"):
        a, b = load_checkpoint(pre.out_dir / name), load_checkpoint(tmp_path / "by_hand" / name)
        assert a["run"] == b["run"] and a.get("class_names") == b.get("class_names")
        assert all(torch.equal(a["encoder"][k], b["encoder"][k]) for k in a["encoder"]), name
