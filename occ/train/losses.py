"""Losses of O2C-GAN / OC-SupConGAN and their ablations, as pure functions.

Chung, Lee & Jung, "Foley sound synthesis based on GANs using oneself-conditioned contrastive
learning" (DCASE 2023 Workshop):

* adversarial hinge losses (Sec. 2, the terms ``l_D`` and ``l_G`` of Eq. (6));
* the four conditional contrastive losses compared in the paper: 2C (ContraGAN, Kang & Park 2020),
  C-SupCon (C-SupConGAN), O2C (Eq. (3)) and OC-SupCon (Eq. (5));
* the supervised contrastive loss used to pretrain the encoder ``f`` (Khosla et al. 2020, Eq. (2)
  of that paper, "L^sup_out").

With ``d_i`` the data embedding, ``e(c_i)`` the class embedding and ``f(x_i)`` the source
embedding, all on the unit hypersphere::

    d2d_ik = exp(d_i . d_k / tau_d)   d2c_i = exp(d_i . e(c_i) / tau_c)   d2s_i = exp(d_i . f(x_i) / tau_c)

    2C        : -log((d2c_i + sum_{k!=i, y_k=y_i} d2d_ik)         / (d2c_i + sum_{k!=i} d2d_ik))
    C-SupCon  : -log((d2s_i + d2c_i + sum_{k!=i, y_k=y_i} d2d_ik) / (d2s_i + d2c_i + sum_{k!=i} d2d_ik))
    O2C       : -log(d2c_i                                        / (d2c_i + sum_{k!=i} d2d_ik))
    OC-SupCon : -log((d2s_i + d2c_i)                              / (d2s_i + d2c_i + sum_{k!=i} d2d_ik))

Every ratio is evaluated in log space (``logsumexp`` over the exponents, the excluded terms set to
``-inf``), so the losses stay finite and accurate in float32 down to temperatures of 0.01.

:func:`contrastive_terms` also returns what the numerator is made of: the share of the class term,
``mean_i(d2c_i / numerator_i)``, and of the source term, ``mean_i(d2s_i / numerator_i)`` (1 and absent for O2C;
in 2C and C-SupCon the rest of the numerator is the same-class data-to-data terms).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from occ.errors import ConfigError, DataError

__all__ = [
    "CONTRASTIVE_KINDS",
    "ContrastiveTerms",
    "d_hinge_loss",
    "g_hinge_loss",
    "contrastive_loss",
    "contrastive_terms",
    "supcon_loss",
]

#: The contrastive losses of the paper, by the name used in ``params.yaml``.
#: Value: (uses the source embedding f(x_i), keeps same-class data-to-data positives).
CONTRASTIVE_KINDS: dict[str, tuple[bool, bool]] = {
    "2c": (False, True),  # ContraGAN
    "csupcon": (True, True),  # C-SupConGAN
    "o2c": (False, False),  # O2C-GAN, Eq. (3)
    "ocsupcon": (True, False),  # OC-SupConGAN, Eq. (5)
}


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss, ``mean(l_D)`` of Eq. (6).

    ``l_D = relu(1 - D(x)) + relu(1 + D(G(z, c)))``, each term averaged over its own batch.

    Parameters
    ----------
    real_logits : torch.Tensor [shape=(N,)]
        Adversarial logits ``D(x)`` of real data.
    fake_logits : torch.Tensor [shape=(M,)]
        Adversarial logits ``D(G(z, c))`` of generated data.

    Returns
    -------
    torch.Tensor [shape=()]
        ``mean(relu(1 - real)) + mean(relu(1 + fake))``.
    """
    _check_logits(real_logits, name="real_logits")
    _check_logits(fake_logits, name="fake_logits")
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss, ``mean(l_G)`` of Eq. (6): ``l_G = -D(G(z, c))``.

    Parameters
    ----------
    fake_logits : torch.Tensor [shape=(N,)]
        Adversarial logits of generated data.

    Returns
    -------
    torch.Tensor [shape=()]
        ``-mean(fake_logits)``.
    """
    _check_logits(fake_logits, name="fake_logits")
    return -fake_logits.mean()


class ContrastiveTerms(NamedTuple):
    """The contrastive loss of a batch and what its numerator is made of (:func:`contrastive_terms`).

    Attributes
    ----------
    loss : torch.Tensor [shape=()]
        ``mean(l_C)``, in nats, with its graph.
    class_share : float
        ``mean_i(d2c_i / numerator_i)``: the class term's share of the numerator (1 for O2C).
    source_share : float
        ``mean_i(d2s_i / numerator_i)`` for the SupCon kinds, NaN for the others.
    """

    loss: torch.Tensor
    class_share: float
    source_share: float


def contrastive_loss(
    data_emb: torch.Tensor,
    labels: torch.Tensor,
    class_emb: torch.Tensor,
    *,
    kind: str,
    tau_d: float,
    tau_c: float,
    source_emb: torch.Tensor | None = None,
) -> torch.Tensor:
    """Conditional contrastive loss ``mean(l_C)`` of Eq. (6); :func:`contrastive_terms`' ``loss`` (see there)."""
    return contrastive_terms(data_emb, labels, class_emb, kind=kind, tau_d=tau_d, tau_c=tau_c,
                             source_emb=source_emb).loss


def contrastive_terms(
    data_emb: torch.Tensor,
    labels: torch.Tensor,
    class_emb: torch.Tensor,
    *,
    kind: str,
    tau_d: float,
    tau_c: float,
    source_emb: torch.Tensor | None = None,
) -> ContrastiveTerms:
    """Conditional contrastive loss ``mean(l_C)`` of Eq. (6): 2C, C-SupCon, O2C (Eq. 3) or OC-SupCon (Eq. 5).

    The inputs are L2-normalised here (cosine similarities), the data-to-data term of a sample
    with itself is excluded, and the per-sample losses are averaged over the batch.

    Parameters
    ----------
    data_emb : torch.Tensor [shape=(N, D)]
        Data embeddings ``d_i = h(D1(x_i))`` (need not be normalised).
    labels : torch.Tensor [shape=(N,), dtype=int64]
        Class index ``c_i`` of each sample.
    class_emb : torch.Tensor [shape=(N, D)]
        Class embedding ``e(c_i)`` of each sample's own class.
    kind : {"2c", "csupcon", "o2c", "ocsupcon"}
        Which loss: ContraGAN's 2C, C-SupCon, O2C (Eq. 3) or OC-SupCon (Eq. 5).
    tau_d : float
        Temperature of the data-to-data terms ``d2d`` (> 0; the paper uses 0.1).
    tau_c : float
        Temperature of the data-to-class ``d2c`` and data-to-source ``d2s`` terms (> 0; the paper
        uses 0.1 and 1.0).
    source_emb : torch.Tensor [shape=(N, D)], optional
        Source embeddings ``f(x_i)`` from the frozen SupCon encoder; required by "csupcon" and
        "ocsupcon", refused by the other kinds.

    Returns
    -------
    ContrastiveTerms
        The batch mean of the per-sample loss, in nats, and the class and source terms' shares of the numerator
        (batch means, no gradient).

    Raises
    ------
    ConfigError
        Unknown ``kind``, a temperature that is not finite and > 0, or ``source_emb`` given/missing against ``kind``.
    DataError
        A batch of fewer than two samples, or shapes that do not match.
    """
    if kind not in CONTRASTIVE_KINDS:
        raise ConfigError(
            f"contrastive_loss: kind={kind!r} is unknown; use one of {sorted(CONTRASTIVE_KINDS)}."
        )
    uses_source, same_class_positives = CONTRASTIVE_KINDS[kind]
    _check_temperatures("contrastive_loss", tau_d=tau_d, tau_c=tau_c)
    if data_emb.ndim != 2:
        raise DataError(
            f"contrastive_loss: data_emb must have shape (N, D), got {tuple(data_emb.shape)}."
        )
    n = data_emb.shape[0]
    if n < 2:
        raise DataError(
            f"contrastive_loss: data_emb holds a batch of {n}; the data-to-data terms need at "
            "least 2 samples, so use a batch size >= 2."
        )
    if class_emb.shape != data_emb.shape:
        raise DataError(
            f"contrastive_loss: class_emb has shape {tuple(class_emb.shape)} but data_emb has "
            f"{tuple(data_emb.shape)}; pass e(c_i) for every sample, e.g. class_embedding(labels)."
        )
    if labels.shape != (n,):
        raise DataError(
            f"contrastive_loss: labels must have shape ({n},) to match data_emb, got "
            f"{tuple(labels.shape)}."
        )
    if uses_source:
        if source_emb is None:
            raise ConfigError(
                f"contrastive_loss: kind={kind!r} needs source_emb = f(x_i) from the SupCon "
                "encoder; pass source_emb or use kind='2c'/'o2c'."
            )
        if source_emb.shape != data_emb.shape:
            raise DataError(
                f"contrastive_loss: source_emb has shape {tuple(source_emb.shape)} but data_emb "
                f"has {tuple(data_emb.shape)}; the encoder's proj_dim must equal the "
                "discriminator's proj_dim."
            )
    elif source_emb is not None:
        raise ConfigError(
            f"contrastive_loss: kind={kind!r} does not use source_emb; drop it or use "
            "kind='csupcon'/'ocsupcon'."
        )

    d = F.normalize(data_emb, dim=1)
    e = F.normalize(class_emb, dim=1)
    self_mask = torch.eye(n, dtype=torch.bool, device=d.device)
    neg_inf = float("-inf")

    # log d2d_ik, with k = i removed.
    log_d2d = (d @ d.t()) / tau_d
    log_d2d = log_d2d.masked_fill(self_mask, neg_inf)
    # log d2c_i (and log d2s_i), one column each.
    anchors = [((d * e).sum(dim=1) / tau_c).unsqueeze(1)]
    if uses_source:
        s = F.normalize(source_emb, dim=1)
        anchors.append(((d * s).sum(dim=1) / tau_c).unsqueeze(1))
    anchor_terms = torch.cat(anchors, dim=1)  # (N, 1 or 2)

    log_denominator = torch.logsumexp(torch.cat([anchor_terms, log_d2d], dim=1), dim=1)
    if same_class_positives:
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        log_pos = log_d2d.masked_fill(~same, neg_inf)
        log_numerator = torch.logsumexp(torch.cat([anchor_terms, log_pos], dim=1), dim=1)
    else:
        log_numerator = torch.logsumexp(anchor_terms, dim=1)
    loss = (log_denominator - log_numerator).mean()
    with torch.no_grad():  # what the numerator is made of: logged, never differentiated
        shares = torch.exp(anchor_terms.detach() - log_numerator.detach().unsqueeze(1)).mean(dim=0)
    return ContrastiveTerms(loss=loss, class_share=float(shares[0]),
                            source_share=float(shares[1]) if uses_source else float("nan"))


def supcon_loss(
    features: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 0.07,
    base_temperature: float = 0.07,
) -> torch.Tensor:
    """Supervised contrastive loss of Khosla et al. (2020), Eq. (2) "L^sup_out", to pretrain ``f``.

    Every view of every sample is an anchor; its positives are all other views with the same
    label (other views of itself included, itself excluded); its contrast set is every view but
    itself. For each anchor ``a`` with positives ``P(a)``::

        l_a = -(T / base_T) / |P(a)| * sum_{p in P(a)} log( exp(z_a.z_p / T) / sum_{k != a} exp(z_a.z_k / T) )

    and the loss is the mean of ``l_a`` over the anchors that have at least one positive.
    Anchors without a positive (possible only with one view and a label seen once in the batch)
    carry no signal and are left out of the mean; if no anchor has a positive the loss is a zero
    that keeps the graph (gradient 0). With two or more views every anchor has a positive.

    Parameters
    ----------
    features : torch.Tensor [shape=(N, V, D)]
        ``V`` views of each of ``N`` samples; L2-normalised here.
    labels : torch.Tensor [shape=(N,), dtype=int64] or None
        Class of each sample; ``None`` treats each sample as its own class (SimCLR).
    temperature : float
        ``T`` > 0.
    base_temperature : float
        ``base_T`` > 0, scales the loss by ``T / base_T``.

    Returns
    -------
    torch.Tensor [shape=()]
        The loss, in nats.

    Raises
    ------
    ConfigError
        A temperature that is not finite and > 0.
    DataError
        ``features`` not 3-D, fewer than two views in all, or labels of the wrong shape.
    """
    _check_temperatures("supcon_loss", temperature=temperature, base_temperature=base_temperature)
    if features.ndim != 3:
        raise DataError(
            f"supcon_loss: features must have shape (N, views, D), got {tuple(features.shape)}; "
            "use features.unsqueeze(1) for a single view."
        )
    n, v, _ = features.shape
    if n * v < 2:
        raise DataError(
            f"supcon_loss: features hold {n * v} view(s) in all; the loss needs at least 2."
        )
    if labels is None:
        labels = torch.arange(n, device=features.device)
    if labels.shape != (n,):
        raise DataError(
            f"supcon_loss: labels must have shape ({n},) to match features, got "
            f"{tuple(labels.shape)}."
        )
    z = F.normalize(features, dim=2).transpose(0, 1).reshape(v * n, -1)  # view-major
    lab = labels.repeat(v)
    m = v * n
    self_mask = torch.eye(m, dtype=torch.bool, device=z.device)
    logits = ((z @ z.t()) / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (lab.unsqueeze(0) == lab.unsqueeze(1)) & ~self_mask
    n_pos = pos.sum(dim=1)
    # Sum over positives only; masked_fill avoids 0 * -inf on the diagonal.
    pos_log_prob = log_prob.masked_fill(~pos, 0.0).sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return features.sum() * 0.0
    mean_log_prob = pos_log_prob[has_pos] / n_pos[has_pos].to(log_prob.dtype)
    return -(temperature / base_temperature) * mean_log_prob.mean()


def _check_temperatures(fn: str, **temperatures: float) -> None:
    """Raise :class:`~occ.errors.ConfigError` naming ``fn`` and the first temperature that is not finite and > 0
    (an infinite one would turn the loss into a constant without a word)."""
    for name, tau in temperatures.items():
        if not 0.0 < float(tau) < math.inf:
            raise ConfigError(f"{fn}: {name}={tau!r} must be a finite temperature > 0.")


def _check_logits(logits: torch.Tensor, *, name: str) -> None:
    if logits.ndim != 1 or logits.shape[0] == 0:
        raise DataError(
            f"{name} must have shape (N,) with N >= 1, got {tuple(logits.shape)}; pass "
            "DiscOutput.logits."
        )
