"""The divergence guard of the training loops: losses and weights past what a healthy run ever reaches.

A run *diverges* when a loss or a weight becomes NaN or infinite; it *runs away* when every value stays finite but
grows past anything a healthy run shows. On the smoke profile a temperature of 1e-30 gives contrastive losses near
1e30 from the first step (Adam's squared gradients overflow float32, so the weights then stop moving), and a
learning rate of 1e10 gives adversarial losses near 1e12 and G weights near 1e20 within two steps; without the guard
such runs went to their end and were evaluated. Two bounds catch both, checked in every step:

* :data:`LOSS_BOUND` = 1e4: the magnitude of each loss the trainers check (``L_D`` and ``L_G`` of the GAN, the
  SupCon and fine-tuning losses of f).
* :data:`WEIGHT_BOUND` = 1e3: the largest magnitude of any parameter of the networks a trainer watches (G, D and
  the EMA of G).

How they were chosen (measured on a 2-core AMD EPYC, Zen 3):

* Losses. On the committed 800-step runs of the embedded profile (7 variants x 3 seeds,
  ``results/train/<variant>/seed<k>/log.csv``) no ``|L_D|`` exceeds 23.9 and no ``|L_G|`` 31.1; the largest come
  from the untrained D's logits in the first steps, which for other seeds reach ``|L_G|`` = 54 (embedded) and 12
  (paper widths). The SupCon loss of f stays below 4.2 (``results/supcon/log.csv``). The bound leaves a factor of
  over 180 above the largest of these, and over 300 above the committed runs. A contrastive term is at most
  ``1 / tau_d + 1 / tau_c + ln(2 * batch)``, so with the smallest temperature the configuration accepts
  (``occ.config.MIN_TEMPERATURE``, 1e-3) and ``train.contrastive_weight`` up to 2 a loss stays below the bound
  whatever the embeddings do.
* Weights. The largest weight of a healthy run is a class embedding drawn from N(0, 1) at the start: at most 4.44
  over ten seeds of the embedded, paper and smoke networks; at most 4.11 (G), 4.05 (D) and 4.11 (EMA G) in
  every step of an 800-step embedded o2c run, and at most 4.11 in six finished 800-step embedded OC-SupCon runs
  (seeds 0 to 2, whose losses stay below 30.4 too). Adam moves a weight by about the learning rate per step, so a whole
  run adds at most about ``lr * steps``: 0.32 in the embedded profile (4e-4, 800 steps), 10 in the paper profile
  (1e-4, 100,000 steps). The bound lies over 60 times above 4.44 + 10 and over 200 times above the measured
  maxima.

Both settings above break the bounds in their first or second step (losses of 1e12 to 1e30, weights of 1e10 to
1e20). The checks read the losses and weights only: they draw no random number and change no operation of the
training math, so a healthy run's weights and log are bit-identical with and without them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

__all__ = ["LOSS_BOUND", "WEIGHT_BOUND", "loss_in_bounds", "largest_magnitude", "weights_in_bounds", "largest_weight",
           "culprit"]

#: Largest magnitude a checked loss may take (committed runs: at most 31.1).
LOSS_BOUND = 1.0e4
#: Largest magnitude any watched parameter may take (healthy runs: at most 4.44).
WEIGHT_BOUND = 1.0e3


def loss_in_bounds(loss: torch.Tensor) -> bool:
    """``loss`` (0-d) is finite and at most :data:`LOSS_BOUND` in magnitude."""
    return bool(loss.detach().abs() <= LOSS_BOUND)  # NaN compares False


def largest_magnitude(tensors: Iterable[torch.Tensor]) -> float:
    """The largest ``|value|`` over ``tensors`` (NaN when one holds a NaN; 0 for none): one min/max read per tensor,
    no copy."""
    largest = 0.0
    for tensor in tensors:
        if tensor.numel() == 0:
            continue
        low, high = (float(v) for v in torch.aminmax(tensor.detach()))
        if math.isnan(low) or math.isnan(high):
            return math.nan
        largest = max(largest, high, -low)
    return largest


def weights_in_bounds(tensors: Iterable[torch.Tensor]) -> bool:
    """Every value of ``tensors`` (a network's parameters) is finite and at most :data:`WEIGHT_BOUND` in magnitude."""
    return largest_magnitude(tensors) <= WEIGHT_BOUND  # NaN compares False


def largest_weight(modules: Mapping[str, torch.nn.Module | None]) -> tuple[str, str, float]:
    """The network (its key in ``modules``), parameter name and magnitude of the largest (or first NaN) parameter
    value of ``modules`` (``None`` entries skipped)."""
    best = ("", "", -1.0)
    for label, module in modules.items():
        for name, p in module.named_parameters() if module is not None else ():
            value = largest_magnitude([p])
            if math.isnan(value):
                return label, name, value
            if value > best[2]:
                best = (label, name, value)
    return best


def culprit(parts: Mapping[str, torch.Tensor | float]) -> str:
    """The key of ``parts`` whose value is largest in magnitude (NaN counts as largest): the term that ran away."""
    def size(value: torch.Tensor | float) -> float:
        v = abs(float(value.detach() if isinstance(value, torch.Tensor) else value))
        return math.inf if math.isnan(v) else v

    return max(parts, key=lambda key: size(parts[key]))
