"""The divergence guard: the losses and weights of a healthy run, and the bounds past which a run is stopped (in
training) or a checkpoint refused (on every load).

A run *diverges* when a loss or a weight becomes NaN or infinite; it *runs away* when every value stays finite but
leaves the range a healthy run keeps to. The bounds below are set from the committed runs with a margin, and scaled
with what a configuration may legitimately change (the temperatures and weight of the contrastive term, the number of
steps), so that a longer or wider run of the ``paper`` profile stays inside them (docs/troubleshooting.md, "The
divergence guard", states them with their evidence):

* The **loss bound** of a run (:func:`gan_loss_bound`, :func:`supcon_loss_bound`): :data:`LOSS_FLOOR` = 500 for the
  adversarial hinge terms (or the fine-tuning cross-entropy), plus the largest value the run's contrastive term can
  take at all, ``w * (2 / min(tau_d, tau_c) + ln(2 * batch))`` (:func:`contrastive_ceiling`: a ratio of sums of
  ``exp(cos / tau)`` over at most ``2 * batch`` terms, the cosines in [-1, 1]). On the committed 800-step runs of the
  embedded profile (``results/train/<variant>/seed<k>/log.csv``) no adversarial term exceeds 19.2, no contrastive
  term 12.8 and no ``|L_D|`` or ``|L_G|`` 31.1; the untrained D's logits of other seeds give ``|L_G|`` up to 54
  (embedded) and 12 (paper widths) in the first step. The floor lies 26 times above the committed runs' largest
  adversarial term and 9 times above 54; the contrastive part cannot be passed by any finite embedding, so it
  changes nothing for a healthy run at any temperature or weight the configuration accepts.
* The **weight bound** of a run (:func:`weight_bound`): :data:`WEIGHT_FLOOR` = 50 plus :data:`WEIGHT_PER_STEP` =
  1e-3 per step of the run (``train.steps``; for the encoder ``supcon.steps + supcon.finetune_steps``), on the
  magnitude of every parameter of G, D, the EMA of G and the encoder f. The largest weight of a healthy run is a
  class embedding drawn from N(0, 1) at the start: at most 4.44 over ten seeds of the embedded, paper and smoke
  networks (``tests/test_guard.py`` measures them again), 4.32 in paper networks of twice the paper's widths; at
  most 4.11 (G), 4.05 (D) and 4.11 (EMA G) in every step of an 800-step embedded run. Adam moves a weight by
  about its learning rate per step, so a run adds at most about ``lr * steps``; the per-step allowance is 2.5 times
  the recipes' largest learning rate (4e-4) and 10 times the paper's (1e-4). The bound is 50.8 for the embedded
  profile (11 times the largest healthy weight), 150 for the paper profile's 100,000 steps (over 10 times 4.44 + 10)
  and grows with a longer run.

A smoke ``o2c`` run at ``lr 1.0`` and ``tau 1e-3`` (the largest learning rate and smallest temperature the
configuration accepts) moves its weights by about 1 per step and passes the weight bound within the first 60 steps
(it reached 760 in 300 steps, unguarded); a temperature of 1e-30 or a learning rate of 1e10 (refused at load) pass
the bounds in their first or second step. The checks read the losses and weights only: they draw no random number
and change no operation of the training math, so a healthy run's weights and log are bit-identical with and without
them.

What the guard names when it fires: the network, the parameter, its value and the bound (or the loss, its terms and
the bound), the settings that can cause it (:func:`remedy` turns them into what to do) and the checkpoint kept, the
last one that passed the guard. On load (:func:`check_checkpoint_weights`, from ``occ.checkpoint.load_checkpoint``)
a network past the bound of the run that wrote it is a :class:`~occ.errors.CheckpointError`: training never saves
such weights.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from occ.errors import CheckpointError

__all__ = ["LOSS_FLOOR", "WEIGHT_FLOOR", "WEIGHT_PER_STEP", "HEALTHY_LOSS", "HEALTHY_WEIGHT", "BUFFER_NAMES",
           "contrastive_ceiling", "gan_loss_bound", "supcon_loss_bound", "weight_bound", "gan_weight_bound",
           "encoder_weight_bound", "loss_in_bounds", "largest_magnitude", "weights_in_bounds", "largest_weight",
           "culprit", "remedy", "check_checkpoint_weights"]

#: The loss bound's part for the adversarial hinge terms (and the fine-tuning cross-entropy): 26 times the committed
#: runs' largest adversarial term (19.2), 9 times the largest first-step ``|L_G|`` measured (54).
LOSS_FLOOR = 500.0
#: The weight bound of a run of no steps: 11 times the largest weight of a healthy run (4.44).
WEIGHT_FLOOR = 50.0
#: What the weight bound grows by per step of a run: 2.5 times the recipes' largest learning rate (Adam moves a
#: weight by about its learning rate per step).
WEIGHT_PER_STEP = 1.0e-3
#: The largest ``|L_D|`` / ``|L_G|`` of the committed runs (embedded profile, 800 steps, 7 variants x 3 seeds).
HEALTHY_LOSS = 31.1
#: The largest weight of a healthy run (a class embedding drawn from N(0, 1); every preset, ten seeds).
HEALTHY_WEIGHT = 4.44
#: The last name part of the state-dict entries that are buffers, not weights (BatchNorm's running statistics, the
#: power-iteration vectors of spectral norm): the guard reads parameters only, in training and on load.
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked", "_u", "_v")
#: The configuration's limits the loss bound is computed within (``occ.config.MIN_TEMPERATURE`` and
#: ``occ.config.MAX_CONTRASTIVE_WEIGHT``; a test checks they agree).
SMALLEST_TEMPERATURE = 1.0e-3
LARGEST_CONTRASTIVE_WEIGHT = 10.0
#: How a checkpoint's networks are named in messages, by payload entry (``occ.checkpoint.NETWORK_PARTS``).
NETWORK_LABELS = {"g": "G", "d": "D", "g_ema": "EMA G", "encoder": "f"}


def contrastive_ceiling(tau_d: float, tau_c: float, batch_size: int) -> float:
    """The largest value any contrastive term of ``occ.train.losses`` can take on a batch of ``batch_size``:
    ``2 / min(tau_d, tau_c) + ln(2 * batch_size)`` (every exponent is a cosine over a temperature, the denominator
    a sum of at most ``batch_size + 1`` terms; the SupCon loss of f, with ``tau_d = tau_c``, over ``2 * batch_size``)."""
    return 2.0 / min(tau_d, tau_c) + math.log(2 * batch_size)


def _ceiling(tau_d: float, tau_c: float, batch_size: int, weight: float = 1.0) -> float:
    """:func:`contrastive_ceiling` times ``weight``, both read within the configuration's limits (a temperature of at
    least :data:`SMALLEST_TEMPERATURE`, a weight of at most :data:`LARGEST_CONTRASTIVE_WEIGHT`): a value past them,
    set in code, has the bound of the limit, so the guard still stops what the configuration would refuse."""
    smallest = SMALLEST_TEMPERATURE
    return min(weight, LARGEST_CONTRASTIVE_WEIGHT) * contrastive_ceiling(max(tau_d, smallest), max(tau_c, smallest),
                                                                         batch_size)


def gan_loss_bound(train: Any) -> float:
    """The bound on ``|L_D|`` and ``|L_G|`` of a GAN run of ``train`` (a ``TrainConfig``): :data:`LOSS_FLOOR` plus
    ``train.contrastive_weight`` times the contrastive term's ceiling (none for loss ``"none"``)."""
    if train.loss == "none":
        return LOSS_FLOOR
    return LOSS_FLOOR + _ceiling(train.tau_d, train.tau_c, train.batch_size, train.contrastive_weight)


def supcon_loss_bound(cfg: Any) -> float:
    """The bound on the SupCon and fine-tuning losses of f (``cfg`` a ``SupConConfig``)."""
    return LOSS_FLOOR + _ceiling(cfg.temperature, cfg.temperature, cfg.batch_size)


def weight_bound(steps: int) -> float:
    """The bound on every weight of a run of ``steps`` steps: ``WEIGHT_FLOOR + WEIGHT_PER_STEP * steps``."""
    return WEIGHT_FLOOR + WEIGHT_PER_STEP * max(int(steps), 0)


def gan_weight_bound(train: Any) -> float:
    """The weight bound of G, D and the EMA of G in a run of ``train`` (``train.steps`` steps)."""
    return weight_bound(train.steps)


def encoder_weight_bound(cfg: Any) -> float:
    """The weight bound of the encoder f (``supcon.steps + supcon.finetune_steps`` steps)."""
    return weight_bound(cfg.steps + cfg.finetune_steps)


def loss_in_bounds(loss: torch.Tensor, bound: float = LOSS_FLOOR) -> bool:
    """``loss`` (0-d) is finite and at most ``bound`` in magnitude."""
    return bool(loss.detach().abs() <= bound)  # NaN compares False


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


def weights_in_bounds(tensors: Iterable[torch.Tensor], bound: float = WEIGHT_FLOOR) -> bool:
    """Every value of ``tensors`` (a network's parameters) is finite and at most ``bound`` in magnitude."""
    return largest_magnitude(tensors) <= bound  # NaN compares False


def _largest(named: Mapping[str, Iterable[tuple[str, torch.Tensor]]]) -> tuple[str, str, float]:
    best = ("", "", -1.0)
    for label, tensors in named.items():
        for name, tensor in tensors:
            value = largest_magnitude([tensor])
            if math.isnan(value):
                return label, name, value
            if value > best[2]:
                best = (label, name, value)
    return best


def largest_weight(modules: Mapping[str, torch.nn.Module | None]) -> tuple[str, str, float]:
    """The network (its key in ``modules``), parameter name and magnitude of the largest (or first NaN) parameter
    value of ``modules`` (``None`` entries skipped)."""
    return _largest({label: module.named_parameters() for label, module in modules.items() if module is not None})


def culprit(parts: Mapping[str, torch.Tensor | float]) -> str:
    """The key of ``parts`` whose value is largest in magnitude (NaN counts as largest): the term that ran away."""
    def size(value: torch.Tensor | float) -> float:
        v = abs(float(value.detach() if isinstance(value, torch.Tensor) else value))
        return math.inf if math.isnan(v) else v

    return max(parts, key=lambda key: size(parts[key]))


def remedy(settings: Iterable[str]) -> str:
    """What to do about the suspect ``settings`` (texts naming ``section.key`` settings): lower each one, raise each
    temperature (``"lower train.contrastive_weight or raise train.tau_d / train.tau_c"``); every setting named once,
    in order."""
    names = list(dict.fromkeys(re.findall(r"\b[a-z]+\.[a-z_0-9]+\b", " ".join(settings))))
    raise_ = [n for n in names if "tau" in n or "temperature" in n]
    lower = [n for n in names if n not in raise_]
    parts = [f"lower {' / '.join(lower)}"] * bool(lower) + [f"raise {' / '.join(raise_)}"] * bool(raise_)
    return " or ".join(parts) or "change the settings of the run"


def _steps_of(payload: Mapping[str, Any]) -> int:
    """The steps of the run that wrote a checkpoint (its ``train`` entry), as its weight bound counts them."""
    train = payload.get("train") or {}
    steps = train.get("steps", payload.get("step", 0))
    if payload.get("kind") == "encoder":
        steps = int(steps) + int(train.get("finetune_steps", 0))
    return max(int(steps), int(payload.get("step", 0) or 0))


def check_checkpoint_weights(payload: Mapping[str, Any], parts: Iterable[str], *, path: Any, rerun: str) -> None:
    """Raise :class:`~occ.errors.CheckpointError` when a weight of a checkpoint's networks (the state dicts under
    ``parts``; buffers, :data:`BUFFER_NAMES`, not read) passes the weight bound of the run that wrote it.

    The message names the file, the network, the parameter, its value and the bound: training never saves such
    weights (the guard stops a run before its checkpoint), so the file was damaged or written elsewhere.
    """
    bound = weight_bound(_steps_of(payload))
    named = {}
    for part in parts:
        state = payload.get(part)
        if isinstance(state, Mapping):
            named[NETWORK_LABELS.get(part, part)] = [
                (name, value) for name, value in state.items() if isinstance(value, torch.Tensor)
                and value.is_floating_point() and name.rsplit(".", 1)[-1] not in BUFFER_NAMES]
    label, name, value = _largest(named)
    if value > bound:
        raise CheckpointError(
            f"{path}: {label} weight {name!r} is {value:.4g}, past the divergence guard's bound {bound:g} for its run "
            f"({WEIGHT_FLOOR:g} + {WEIGHT_PER_STEP:g} per step of {_steps_of(payload)} steps; healthy runs stay below "
            f"{HEALTHY_WEIGHT:g}): training never saves such weights, so the file was damaged or written elsewhere "
            f"and can be neither used nor resumed; delete it with its run folder {getattr(path, 'parent', path)} and "
            f"rerun {rerun}.")
