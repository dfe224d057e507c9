r"""Distillation losses as plain functions (one ``nn.Module``: the hint loss's regressor).

Notation: student logits ``z``, teacher logits ``v``, temperature ``T > 0``, ``q = softmax(z / T)``,
``p = softmax(v / T)``, batch size ``B``, ``N`` classes. Teacher inputs are detached. A class label ``< 0`` marks
an unlabelled sample (teacher term only); a regression target is missing where :func:`kdlib.metrics.valid_mask`
says so, as in the metrics (NaN, ``null_value=0`` mph, or outside ``mask``; ``null_value=None`` for standardised
targets). Missing entries leave the mean; none valid gives a 0 that still carries a gradient. ``alpha`` always
weights the teacher term: 0.9 by default for classification (Hinton et al.; Part II), 0.5 for regression (Part III).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .metrics import _all_valid, valid_mask

__all__: list[str] = ["softmax_t", "entropy", "logit_gradient", "kd_loss", "distillation_loss", "distillation_loss_cached", "logit_matching_loss", "HintLoss", "logit_distillation_loss", "HintDistillationLoss", "l1_loss", "output_distillation_loss", "huber_distillation_loss", "teacher_bounded_loss", "sensor_similarity", "relational_loss", "relational_distillation_loss"]


def _check_temperature(T: float) -> None:
    if not T > 0:
        raise ValueError(f"temperature T must be > 0, got {T}; T = 1 is the ordinary softmax, try 2-8 for distillation")


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (it weights the teacher term), got {alpha}")


def _check_same_shape(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: student and teacher shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}; "
                         "both must be (batch, ...) over the same classes or outputs")


def softmax_t(logits: Tensor, T: float = 1.0) -> Tensor:
    r"""Softmax at temperature ``T``, last dim: :math:`p_i = \exp(z_i/T) / \sum_j \exp(z_j/T)` (``T > 1``: softer)."""
    _check_temperature(T)
    return F.softmax(logits / T, dim=-1)


def entropy(probs: Tensor, dim: int = -1) -> Tensor:
    r"""Shannon entropy in nats along ``dim``, :math:`H(p) = -\sum_i p_i \log p_i` (``0 \log 0 = 0``), in [0, log N]."""
    if probs.numel() == 0:
        raise ValueError("entropy of an empty tensor is undefined; pass a probability vector")
    if (probs < 0).any():
        raise ValueError("probabilities must be >= 0; did you pass logits? apply kdlib.softmax_t first")
    logs = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * logs).sum(dim=dim)


def logit_gradient(loss_fn: Callable[[Tensor], Tensor], logits: Tensor) -> Tensor:
    r"""The gradient :math:`\partial \mathcal{L}(z) / \partial z` of the scalar ``loss_fn(z)`` at ``z = logits``.

    E.g. ``lambda z: kd_loss(z, v, T)`` gives :math:`\frac{T}{B}(q - p)`. A loss that ignores the logits gets zeros.
    """
    leaf = logits.detach().clone().requires_grad_(True)
    loss = loss_fn(leaf)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {shape}; reduce it, e.g. with .mean()")
    if not loss.requires_grad:
        return torch.zeros_like(leaf)
    (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
    return torch.zeros_like(leaf) if grad is None else grad


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, T: float) -> Tensor:
    r"""Hinton's soft-target loss :math:`T^2 \, \mathrm{KL}(p^T \,\|\, q^T)`, averaged over the batch.

    .. math::
        \mathcal{L}_{soft} = \frac{T^2}{B} \sum_b \sum_i p_{b,i} \left(\log p_{b,i} - \log q_{b,i}\right)

    Gradient :math:`\partial \mathcal{L}/\partial z_i = T (q_i - p_i)`, as for the soft cross-entropy; the :math:`T^2`
    keeps it on the hard term's scale as ``T`` changes. ``reduction="batchmean"``: "mean" would also divide by ``N``.
    """
    _check_temperature(T)
    _check_same_shape(student_logits, teacher_logits, "kd_loss")
    log_q = F.log_softmax(student_logits / T, dim=-1)
    p = F.softmax(teacher_logits.detach() / T, dim=-1)
    return F.kl_div(log_q, p, reduction="batchmean") * T * T


def _with_labels(teacher_term: Tensor | float, student_logits: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """``alpha * teacher_term + (1 - alpha) * CE`` over the labelled samples (``labels >= 0``) only."""
    _check_alpha(alpha)
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},), got {tuple(labels.shape)}")
    if int(labels.min()) >= 0:  # all labelled: exactly F.cross_entropy (the book's numbers)
        hard = F.cross_entropy(student_logits, labels)
    else:  # labelled samples only; none: 0, not the NaN of an empty mean, and still in the graph
        labelled = labels >= 0
        hard = F.cross_entropy(student_logits[labelled], labels[labelled]) if labelled.any() else student_logits.sum() * 0.0
    return alpha * teacher_term + (1.0 - alpha) * hard


def distillation_loss(student_logits: Tensor, labels: Tensor, teacher_logits: Tensor, T: float = 4.0,
                      alpha: float = 0.9) -> Tensor:
    r"""Hinton et al.'s combined objective: soft targets plus hard labels.

    .. math::
        \mathcal{L} = \alpha \, T^2 \, \mathrm{KL}(p^T \| q^T) + (1 - \alpha)\,
        \frac{1}{|L|} \sum_{b \in L} \mathrm{CE}(y_b, \mathrm{softmax}(z_b))

    ``alpha`` weights the soft (teacher) term; the hard term is at ``T = 1``, over the labelled samples :math:`L` (0 if
    none). ``alpha = 0`` skips the soft term (``T``, shapes still checked). Targets ``(labels, teacher)``, as for fit.
    """
    _check_temperature(T)
    _check_same_shape(student_logits, teacher_logits, "distillation_loss")
    soft = kd_loss(student_logits, teacher_logits, T) if alpha > 0 else 0.0
    return _with_labels(soft, student_logits, labels, alpha)


def distillation_loss_cached(student_logits: Tensor, labels: Tensor, teacher_probs: Tensor, T: float = 4.0,
                             alpha: float = 0.9) -> Tensor:
    r""":func:`distillation_loss` from the teacher's soft targets ``p = softmax_t(v, T)``, cached once.

    .. math::
        \mathcal{L} = \alpha \, \frac{T^2}{B} \Big(\sum_{b,i} p_{b,i} \log p_{b,i}
        - \sum_{b,i} p_{b,i} \log q_{b,i}\Big)
        + (1 - \alpha)\, \frac{1}{|L|} \sum_{b \in L} \mathrm{CE}(y_b, \mathrm{softmax}(z_b))

    Same value (up to rounding) and gradient, minus the per-batch teacher softmax; ``teacher_probs`` must use the
    same ``T`` (unchecked).
    """
    _check_temperature(T)
    _check_same_shape(student_logits, teacher_probs, "distillation_loss_cached")
    p, soft = teacher_probs.detach(), 0.0
    if alpha > 0:  # F.cross_entropy with probability targets is one fused op: as cheap as the hard term
        soft = (F.cross_entropy(student_logits / T, p) + torch.special.xlogy(p, p).sum() / len(p)) * (T * T)
    return _with_labels(soft, student_logits, labels, alpha)


def logit_matching_loss(student_logits: Tensor, teacher_logits: Tensor, centred: bool = False) -> Tensor:
    r"""Logit matching (Ba & Caruana 2014): :math:`\frac{1}{2BN}\sum_{b,i} (z_{b,i} - v_{b,i})^2`.

    The high-temperature limit of :func:`kd_loss` for zero-mean logits: gradient :math:`(z_i - v_i)/(BN)`, the
    direction of Hinton's :math:`(z_i - v_i)/(N T^2)`. ``centred=True`` matches per-sample centred logits,
    :math:`\frac{1}{2BN}\sum_{b,i} \big((z_{b,i} - \bar z_b) - (v_{b,i} - \bar v_b)\big)^2`,
    :math:`\bar z_b = \frac1N \sum_i z_{b,i}`: softmax-invariant, the :math:`T \to \infty` limit of :func:`kd_loss`
    for any logits.
    """
    _check_same_shape(student_logits, teacher_logits, "logit_matching_loss")
    teacher_logits = teacher_logits.detach()
    if centred:
        student_logits = student_logits - student_logits.mean(dim=-1, keepdim=True)
        teacher_logits = teacher_logits - teacher_logits.mean(dim=-1, keepdim=True)
    return 0.5 * F.mse_loss(student_logits, teacher_logits)


class HintLoss(nn.Module):
    r"""FitNets hint loss (Romero et al. 2015): :math:`\frac{1}{2}\|r(h_s) - h_t\|^2` averaged over ``(..., d)``.

    ``r``: a trainable ``nn.Linear(student_dim, teacher_dim)``; train it along (``fit(..., extra_modules=[hint])``).
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.regressor = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_features: Tensor, teacher_features: Tensor) -> Tensor:
        mapped = self.regressor(student_features)
        _check_same_shape(mapped, teacher_features, "HintLoss (after the regressor)")
        return 0.5 * F.mse_loss(mapped, teacher_features.detach())


def logit_distillation_loss(student_logits: Tensor, labels: Tensor, teacher_logits: Tensor, alpha: float = 0.9,
                            centred: bool = False) -> Tensor:
    r"""Logit matching plus hard labels, mixed like :func:`distillation_loss` (``alpha`` weights the teacher term).

    .. math:: \alpha \, \frac{1}{2BN}\|z - v\|^2 + (1 - \alpha)\, \mathrm{CE}(y, \mathrm{softmax}(z))

    ``centred=True``: per-sample centred logits, the :math:`T \to \infty` limit of :func:`distillation_loss`.
    """
    return _with_labels(logit_matching_loss(student_logits, teacher_logits, centred=centred), student_logits, labels,
                        alpha)


class HintDistillationLoss(nn.Module):
    r"""A main loss plus a one-stage FitNets hint (a trained :class:`HintLoss`) on the last hidden layer.

    .. math:: \mathcal{L} = \mathcal{L}_{main}(z, \dots) + \beta \, \tfrac{1}{2}\,\mathrm{mean}\,(r(h_s) - h_t)^2

    ``output`` is the student's ``(output, features)`` (``forward_kwargs={"return_features": True}``); the targets
    are the main loss's, then the teacher's features, e.g. ``(labels, teacher_features)`` for ``F.cross_entropy``.
    """

    def __init__(self, student_dim: int, teacher_dim: int, beta: float = 1.0,
                 base_loss: Callable[..., Tensor] = F.cross_entropy) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta weights the hint term and must be >= 0, got {beta}")
        self.hint = HintLoss(student_dim, teacher_dim)
        self.beta, self.base_loss = beta, base_loss

    def forward(self, output: tuple[Tensor, Tensor], *targets: Tensor) -> Tensor:
        if not isinstance(output, tuple) or len(output) != 2:
            raise ValueError("output must be (output, features): call the student with return_features=True")
        if len(targets) < 2:
            raise ValueError("targets must be the main loss's targets followed by the teacher's features")
        out, features = output
        return self.base_loss(out, *targets[:-1]) + self.beta * self.hint(features, targets[-1])


def _errors(pred: Tensor, target: Tensor, p: int, mask: Tensor | None, null_value: float | None) -> tuple[Tensor, Tensor | None]:
    """``|pred - target|^p``, 0 (no NaN) where not valid, and the valid count (None: all valid, plain mean)."""
    if p not in (1, 2):
        raise ValueError(f"p must be 1 (L1/MAE) or 2 (L2/MSE), got {p}")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    count = None
    if mask is not None or not _all_valid(target, null_value):
        valid = valid_mask(target, mask, null_value)
        target, count = torch.where(valid, target, pred.detach()), valid.sum().clamp_min(1)
    err = (pred - target).abs() if p == 1 else (pred - target) ** 2
    return err, count


def _mean(err: Tensor, count: Tensor | None) -> Tensor:
    return err.mean() if count is None else err.sum() / count


def l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    r"""Mean absolute error :math:`\frac{1}{|V|}\sum_V |\hat y - y|` over the valid targets ``V`` (traffic models)."""
    return _mean(*_errors(pred, target, 1, mask, null_value))


def output_distillation_loss(pred: Tensor, target: Tensor, teacher_pred: Tensor, alpha: float = 0.5, p: int = 1,
                             mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    r"""Output distillation for regression / forecasting, ``p = 1`` (MAE) or ``2`` (MSE).

    .. math::
        \mathcal{L} = \alpha \, \frac{1}{|U|}\sum_U |\hat y_s - \hat y_t|^p
        + (1 - \alpha)\, \frac{1}{|V|}\sum_V |\hat y_s - y|^p

    ``V``: the valid targets; ``U``: wherever the teacher's forecast is not NaN (unlabelled windows still teach).
    """
    _check_alpha(alpha)
    _check_same_shape(pred, teacher_pred, "output_distillation_loss")
    to_teacher = _mean(*_errors(pred, teacher_pred.detach(), p, None, None))
    return alpha * to_teacher + (1 - alpha) * _mean(*_errors(pred, target, p, mask, null_value))


def huber_distillation_loss(pred: Tensor, target: Tensor, teacher_pred: Tensor, alpha: float = 0.5, delta: float = 1.0,
                            mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    r"""Output distillation with an L1 label term and a Huber teacher term.

    .. math::
        \mathcal{L} = \alpha \, \frac{1}{|U|}\sum_U h_\delta(\hat y_s - \hat y_t)
        + (1 - \alpha)\, \frac{1}{|V|}\sum_V |\hat y_s - y|,
        \qquad h_\delta(r) = \begin{cases} r^2 / (2\delta) & |r| \le \delta \\ |r| - \delta/2 & |r| > \delta \end{cases}

    :math:`h_\delta` is ``F.smooth_l1_loss(beta=delta)``: slope 1 far from the teacher (so ``alpha`` weighs as in
    :func:`output_distillation_loss` with ``p = 1``, its ``delta -> 0`` limit), quadratic within ``delta > 0`` mph.
    Per window the minimiser is the label for ``alpha < 0.5``; for ``alpha > 0.5`` it is
    :math:`\hat y_t - \delta\,\tfrac{1-\alpha}{\alpha}\,\mathrm{sign}(\hat y_t - y)` (or the label if nearer).
    ``U``: where the teacher's forecast is not NaN; ``V``: the valid labels.
    """
    _check_alpha(alpha)
    _check_same_shape(pred, teacher_pred, "huber_distillation_loss")
    if not delta > 0:
        raise ValueError(f"delta (mph) must be > 0, got {delta}; delta -> 0 is output_distillation_loss with p=1")
    r, count = _errors(pred, teacher_pred.detach(), 1, None, None)
    huber = torch.where(r <= delta, r * r / (2 * delta), r - delta / 2)
    return alpha * _mean(huber, count) + (1 - alpha) * _mean(*_errors(pred, target, 1, mask, null_value))


def teacher_bounded_loss(pred: Tensor, target: Tensor, teacher_pred: Tensor, margin: float = 0.0, nu: float = 0.5,
                         p: int = 2, mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    r"""Teacher-bounded regression loss (Chen et al. 2017): the teacher's error is an upper bound.

    .. math::
        \mathcal{L} = \mathrm{mean}_V\, |\hat y_s - y|^p
        + \nu \, \mathrm{mean}_V\Big( |\hat y_s - y|^p \;
        \mathbb{1}\big[|\hat y_s - y|^p + m > |\hat y_t - y|^p\big] \Big)

    The ``nu`` term is zero once the student beats the teacher by ``margin`` :math:`m`, or where the teacher is NaN.
    """
    _check_same_shape(pred, teacher_pred, "teacher_bounded_loss")
    if not (nu >= 0 and margin >= 0):
        raise ValueError(f"nu (the bound term's weight) and margin must be >= 0, got nu={nu}, margin={margin}")
    e_s, count = _errors(pred, target, p, mask, null_value)
    e_t = (teacher_pred.detach() - target).abs() ** p
    bound = torch.where(e_s + margin > e_t, e_s, torch.zeros_like(e_s))
    return _mean(e_s, count) + nu * _mean(bound, count)


def sensor_similarity(features: Tensor) -> Tensor:
    r"""Cosine similarity of every two sensors' features, window by window: ``(B, N, d) -> (B, N, N)``.

    .. math:: S_{ij} = \frac{h_i \cdot h_j}{\|h_i\|\,\|h_j\|}

    The relational knowledge :func:`relational_loss` transfers. An all-zero sensor is similar to none (row 0).
    """
    if features.dim() != 3:
        raise ValueError(f"sensor_similarity expects per-sensor features (batch, sensors, width), got shape "
                         f"{tuple(features.shape)}; call the model with return_features=True")
    h = F.normalize(features, dim=-1, eps=1e-8)
    return h @ h.transpose(1, 2)


def relational_loss(student_features: Tensor, teacher_features: Tensor) -> Tensor:
    r"""Relational distillation: match the teacher's sensor-to-sensor similarities (:func:`sensor_similarity`).

    .. math:: \mathcal{L}_{rel} = \frac{1}{B N^2} \sum_b \big\| S(h_s^{(b)}) - S(h_t^{(b)}) \big\|_F^2

    Per-sensor features ``(B, N, d_s)`` and ``(B, N, d_t)``, widths free (similarity-preserving KD, Tung & Mori 2019,
    across a window's sensors). Computed as :math:`\|\hat H_s^\top \hat H_s\|_F^2 - 2\|\hat H_s^\top \hat H_t\|_F^2
    + \|\hat H_t^\top \hat H_t\|_F^2` (unit rows): :math:`O(N d^2)` a window, not :math:`O(N^2 d)`.
    """
    if student_features.dim() != 3 or teacher_features.dim() != 3 or student_features.shape[:2] != teacher_features.shape[:2]:
        raise ValueError(f"relational_loss expects per-sensor features (batch, sensors, width) for the same windows "
                         f"and sensors, got student {tuple(student_features.shape)} and teacher "
                         f"{tuple(teacher_features.shape)}; call both models with return_features=True")
    hs = F.normalize(student_features, dim=-1, eps=1e-8)
    with torch.no_grad():
        ht = F.normalize(teacher_features.detach().to(hs.dtype), dim=-1, eps=1e-8)
        teacher_term = (ht.transpose(1, 2) @ ht).pow(2).sum()
    gram = (hs.transpose(1, 2) @ hs).pow(2).sum() - 2 * (hs.transpose(1, 2) @ ht).pow(2).sum() + teacher_term
    b, n = student_features.shape[:2]
    return gram / (b * n * n)


def relational_distillation_loss(output: tuple[Tensor, Tensor], *targets: Tensor, beta: float = 1.0,
                                 base_loss: Callable[..., Tensor] = l1_loss) -> Tensor:
    r"""Base loss plus relational term: :math:`\mathcal{L}_{base}(\hat y, \dots) + \beta\, \mathcal{L}_{rel}`.

    Layout as in :class:`HintDistillationLoss`: ``output`` is ``(forecast, features)``, the targets the base loss's
    then the teacher's per-sensor features, e.g. ``(y, teacher_features)`` for the default :func:`l1_loss`.
    """
    if not isinstance(output, tuple) or len(output) != 2:
        raise ValueError("output must be (forecast, features): call the student with return_features=True")
    if len(targets) < 2:
        raise ValueError("targets must be the base loss's targets followed by the teacher's per-sensor features")
    if not beta >= 0:
        raise ValueError(f"beta weights the relational term and must be >= 0, got {beta}")
    pred, features = output
    return base_loss(pred, *targets[:-1]) + beta * relational_loss(features, targets[-1])
