"""Tests of occ.train.losses against brute-force double loops in float64, and of their properties."""

from __future__ import annotations

import math

import pytest
import torch

from occ.errors import ConfigError, DataError
from occ.train.losses import (
    CONTRASTIVE_KINDS,
    contrastive_loss,
    contrastive_terms,
    d_hinge_loss,
    g_hinge_loss,
    supcon_loss,
)

KINDS = sorted(CONTRASTIVE_KINDS)


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(a * a for a in v))
    return [a / norm for a in v]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def brute_contrastive(d, labels, e, s, *, kind: str, tau_d: float, tau_c: float) -> float:
    """The per-sample losses of docs/reference.md, section 1 written term by term, averaged."""
    d = [_unit(r) for r in d.tolist()]
    e = [_unit(r) for r in e.tolist()]
    s = None if s is None else [_unit(r) for r in s.tolist()]
    labels = labels.tolist()
    n = len(d)
    total = 0.0
    for i in range(n):
        d2c = math.exp(_dot(d[i], e[i]) / tau_c)
        d2s = math.exp(_dot(d[i], s[i]) / tau_c) if s is not None else 0.0
        all_d2d = 0.0
        pos_d2d = 0.0
        for k in range(n):
            if k == i:
                continue
            term = math.exp(_dot(d[i], d[k]) / tau_d)
            all_d2d += term
            if labels[k] == labels[i]:
                pos_d2d += term
        if kind == "2c":
            num, den = d2c + pos_d2d, d2c + all_d2d
        elif kind == "csupcon":
            num, den = d2s + d2c + pos_d2d, d2s + d2c + all_d2d
        elif kind == "o2c":
            num, den = d2c, d2c + all_d2d
        else:
            num, den = d2s + d2c, d2s + d2c + all_d2d
        total += -math.log(num / den)
    return total / n


def brute_supcon(features, labels, *, temperature: float, base_temperature: float) -> float:
    n, v, _ = features.shape
    z = [[_unit(features[i, j].tolist()) for j in range(v)] for i in range(n)]
    anchors = [(i, j) for i in range(n) for j in range(v)]
    per_anchor = []
    for a in anchors:
        za = z[a[0]][a[1]]
        den = sum(math.exp(_dot(za, z[k[0]][k[1]]) / temperature) for k in anchors if k != a)
        pos = [k for k in anchors if k != a and labels[k[0]] == labels[a[0]]]
        if not pos:
            continue
        mean_lp = sum(
            _dot(za, z[p[0]][p[1]]) / temperature - math.log(den) for p in pos
        ) / len(pos)
        per_anchor.append(-(temperature / base_temperature) * mean_lp)
    return sum(per_anchor) / len(per_anchor)


def _labels(n: int, scheme: str, g: torch.Generator) -> torch.Tensor:
    if scheme == "singletons":
        return torch.randperm(n, generator=g)
    if scheme == "one_class":
        return torch.zeros(n, dtype=torch.int64)
    if scheme == "mixed":  # some classes with one member, some with several
        lab = torch.randint(0, max(1, n // 3), (n,), generator=g)
        lab[0] = n + 5  # a class seen once
        return lab
    return torch.randint(0, 3, (n,), generator=g)


def _inputs(n: int, dim: int, seed: int, scheme: str, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, dim, generator=g, dtype=dtype) * 3.0
    e = torch.randn(n, dim, generator=g, dtype=dtype)
    s = torch.randn(n, dim, generator=g, dtype=dtype) * 0.5
    return d, _labels(n, scheme, g), e, s


CASES = [
    (n, tau_d, tau_c, scheme, seed)
    for seed, (n, tau_d, tau_c, scheme) in enumerate(
        [
            (2, 0.1, 0.1, "random"),
            (2, 1.0, 0.01, "singletons"),
            (3, 0.01, 0.01, "one_class"),
            (5, 0.1, 1.0, "mixed"),
            (8, 0.5, 0.05, "random"),
            (16, 0.01, 1.0, "mixed"),
            (16, 0.1, 0.1, "singletons"),
            (33, 0.2, 0.02, "random"),
            (64, 0.1, 0.1, "mixed"),
            (64, 0.01, 0.01, "random"),
        ]
    )
]


def brute_shares(d, labels, e, s, *, kind: str, tau_d: float, tau_c: float) -> tuple[float, float]:
    """The class and source terms' shares of each sample's numerator, ``d2c_i / num_i`` and ``d2s_i / num_i``, term
    by term, averaged over the batch (the source share NaN without a source)."""
    d = [_unit(r) for r in d.tolist()]
    e = [_unit(r) for r in e.tolist()]
    s = None if s is None else [_unit(r) for r in s.tolist()]
    labels = labels.tolist()
    n = len(d)
    class_total = source_total = 0.0
    for i in range(n):
        d2c = math.exp(_dot(d[i], e[i]) / tau_c)
        d2s = math.exp(_dot(d[i], s[i]) / tau_c) if s is not None else 0.0
        same = sum(math.exp(_dot(d[i], d[k]) / tau_d) for k in range(n) if k != i and labels[k] == labels[i])
        num = d2c + d2s + (same if kind in ("2c", "csupcon") else 0.0)
        class_total += d2c / num
        source_total += d2s / num
    return class_total / n, (source_total / n if s is not None else math.nan)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,tau_d,tau_c,scheme,seed", CASES)
def test_numerator_shares_match_brute_force(kind, n, tau_d, tau_c, scheme, seed):
    d, labels, e, s = _inputs(n, 8, seed, scheme)
    src = s if CONTRASTIVE_KINDS[kind][0] else None
    got = contrastive_terms(d, labels, e, kind=kind, tau_d=tau_d, tau_c=tau_c, source_emb=src)
    class_share, source_share = brute_shares(d, labels, e, src, kind=kind, tau_d=tau_d, tau_c=tau_c)
    assert got.class_share == pytest.approx(class_share, rel=1e-6, abs=1e-12)
    if src is None:
        assert math.isnan(got.source_share)
    else:
        assert got.source_share == pytest.approx(source_share, rel=1e-6, abs=1e-12)
    if kind == "o2c":
        assert got.class_share == 1.0  # the numerator is d2c alone
    assert got.loss.item() == contrastive_loss(d, labels, e, kind=kind, tau_d=tau_d, tau_c=tau_c, source_emb=src).item()


def test_shares_carry_no_gradient():
    d, labels, e, s = _inputs(8, 4, 0, "random", dtype=torch.float32)
    d.requires_grad_(True)
    terms = contrastive_terms(d, labels, e, kind="csupcon", tau_d=0.1, tau_c=0.1, source_emb=s)
    assert isinstance(terms.class_share, float) and isinstance(terms.source_share, float)
    assert 0.0 < terms.class_share + terms.source_share <= 1.0
    terms.loss.backward()
    assert d.grad is not None and torch.isfinite(d.grad).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,tau_d,tau_c,scheme,seed", CASES)
def test_contrastive_matches_brute_force(kind, n, tau_d, tau_c, scheme, seed):
    d, labels, e, s = _inputs(n, 8, seed, scheme)
    src = s if CONTRASTIVE_KINDS[kind][0] else None
    got = contrastive_loss(d, labels, e, kind=kind, tau_d=tau_d, tau_c=tau_c, source_emb=src)
    want = brute_contrastive(d, labels, e, src, kind=kind, tau_d=tau_d, tau_c=tau_c)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(want, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_occ_drops_positives_so_loss_grows(seed):
    d, labels, e, s = _inputs(12, 6, seed, "random")
    kw = dict(tau_d=0.1, tau_c=0.5)
    l2c = contrastive_loss(d, labels, e, kind="2c", **kw)
    lo2c = contrastive_loss(d, labels, e, kind="o2c", **kw)
    lcs = contrastive_loss(d, labels, e, kind="csupcon", source_emb=s, **kw)
    locs = contrastive_loss(d, labels, e, kind="ocsupcon", source_emb=s, **kw)
    assert l2c.item() < lo2c.item()
    assert lcs.item() < locs.item()


def test_equal_when_every_sample_is_alone_in_its_class():
    d, labels, e, s = _inputs(10, 6, 0, "singletons")
    kw = dict(tau_d=0.1, tau_c=0.1)
    assert torch.equal(
        contrastive_loss(d, labels, e, kind="2c", **kw),
        contrastive_loss(d, labels, e, kind="o2c", **kw),
    )
    assert torch.equal(
        contrastive_loss(d, labels, e, kind="csupcon", source_emb=s, **kw),
        contrastive_loss(d, labels, e, kind="ocsupcon", source_emb=s, **kw),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_permutation_invariance(kind):
    d, labels, e, s = _inputs(20, 8, 3, "mixed")
    src = s if CONTRASTIVE_KINDS[kind][0] else None
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    a = contrastive_loss(d, labels, e, kind=kind, tau_d=0.1, tau_c=0.1, source_emb=src)
    b = contrastive_loss(
        d[perm],
        labels[perm],
        e[perm],
        kind=kind,
        tau_d=0.1,
        tau_c=0.1,
        source_emb=None if src is None else src[perm],
    )
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_scale_invariance_of_inputs():
    d, labels, e, s = _inputs(9, 5, 4, "random")
    a = contrastive_loss(d, labels, e, kind="ocsupcon", tau_d=0.1, tau_c=1.0, source_emb=s)
    b = contrastive_loss(
        d * 7.0, labels, e * 0.1, kind="ocsupcon", tau_d=0.1, tau_c=1.0, source_emb=s * 3
    )
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stable_and_finite_gradients_at_small_tau(kind):
    d64, labels, e64, s64 = _inputs(32, 16, 5, "mixed")
    uses_source = CONTRASTIVE_KINDS[kind][0]
    want = contrastive_loss(
        d64, labels, e64, kind=kind, tau_d=0.01, tau_c=0.01, source_emb=s64 if uses_source else None
    )
    d = d64.float().requires_grad_()
    e = e64.float().requires_grad_()
    s = s64.float().requires_grad_()
    got = contrastive_loss(
        d, labels, e, kind=kind, tau_d=0.01, tau_c=0.01, source_emb=s if uses_source else None
    )
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
    got.backward()
    for t in (d, e) + ((s,) if uses_source else ()):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert d.grad.abs().sum() > 0


def test_contrastive_errors():
    d, labels, e, s = _inputs(4, 3, 0, "random")
    kw = dict(tau_d=0.1, tau_c=0.1)
    with pytest.raises(DataError, match="at least 2"):
        contrastive_loss(d[:1], labels[:1], e[:1], kind="o2c", **kw)
    with pytest.raises(DataError, match="class_emb"):
        contrastive_loss(d, labels, e[:3], kind="o2c", **kw)
    with pytest.raises(DataError, match="labels"):
        contrastive_loss(d, labels[:3], e, kind="o2c", **kw)
    with pytest.raises(DataError, match="source_emb"):
        contrastive_loss(d, labels, e, kind="ocsupcon", source_emb=s[:, :2], **kw)
    with pytest.raises(ConfigError, match="kind"):
        contrastive_loss(d, labels, e, kind="O2C-GAN", **kw)
    with pytest.raises(ConfigError, match="tau_d"):
        contrastive_loss(d, labels, e, kind="o2c", tau_d=0.0, tau_c=0.1)
    with pytest.raises(ConfigError, match="tau_c"):
        contrastive_loss(d, labels, e, kind="o2c", tau_d=0.1, tau_c=-1.0)
    with pytest.raises(ConfigError, match="needs source_emb"):
        contrastive_loss(d, labels, e, kind="csupcon", **kw)
    with pytest.raises(ConfigError, match="does not use source_emb"):
        contrastive_loss(d, labels, e, kind="2c", source_emb=s, **kw)


SUPCON_CASES = [
    (2, 2, 0.07, 0.07, "random", 0),
    (4, 1, 0.1, 0.07, "random", 1),  # one view: singleton labels have no positive
    (6, 2, 0.01, 0.07, "singletons", 2),
    (8, 3, 0.5, 0.5, "mixed", 3),
    (16, 2, 0.07, 0.07, "one_class", 4),
    (32, 2, 0.1, 0.1, "random", 5),
    (5, 1, 1.0, 0.07, "mixed", 6),
]


@pytest.mark.parametrize("n,v,temp,base,scheme,seed", SUPCON_CASES)
def test_supcon_matches_brute_force(n, v, temp, base, scheme, seed):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, v, 6, generator=g, dtype=torch.float64)
    labels = _labels(n, scheme, g)
    if v == 1 and scheme == "singletons":
        pytest.skip("no anchor has a positive")
    got = supcon_loss(feats, labels, temperature=temp, base_temperature=base)
    want = brute_supcon(feats, labels.tolist(), temperature=temp, base_temperature=base)
    assert got.item() == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_supcon_unlabelled_is_simclr_and_no_positive_gives_zero():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(6, 2, 5, generator=g, dtype=torch.float64)
    got = supcon_loss(feats, None, temperature=0.1, base_temperature=0.1)
    want = brute_supcon(feats, list(range(6)), temperature=0.1, base_temperature=0.1)
    assert got.item() == pytest.approx(want, rel=1e-6)
    single = torch.randn(4, 1, 5, generator=g, requires_grad=True)
    zero = supcon_loss(single, torch.arange(4))
    assert zero.item() == 0.0
    zero.backward()
    assert torch.equal(single.grad, torch.zeros_like(single))


def test_supcon_gradients_finite_float32_and_errors():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(16, 2, 32, generator=g).requires_grad_()
    loss = supcon_loss(feats, torch.randint(0, 4, (16,), generator=g), temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feats.grad).all()
    with pytest.raises(DataError, match="views"):
        supcon_loss(torch.randn(4, 5), torch.arange(4))
    with pytest.raises(DataError, match="at least 2"):
        supcon_loss(torch.randn(1, 1, 5), torch.arange(1))
    with pytest.raises(DataError, match="labels"):
        supcon_loss(torch.randn(4, 2, 5), torch.arange(3))
    with pytest.raises(ConfigError, match="temperature"):
        supcon_loss(torch.randn(4, 2, 5), torch.arange(4), temperature=0.0)


def test_hinge_losses_closed_form():
    real = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
    fake = torch.tensor([-3.0, 0.0], dtype=torch.float64)
    # relu(1 - real) = [0, 0.5, 2] -> 5/6; relu(1 + fake) = [0, 1] -> 1/2.
    assert d_hinge_loss(real, fake).item() == pytest.approx(5 / 6 + 1 / 2)
    assert g_hinge_loss(fake).item() == pytest.approx(1.5)
    with pytest.raises(DataError, match="real_logits"):
        d_hinge_loss(real.unsqueeze(1), fake)
    with pytest.raises(DataError, match="fake_logits"):
        g_hinge_loss(torch.zeros(0))
