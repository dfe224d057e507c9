r"""Distillation losses as plain functions (one ``nn.Module``: the hint loss's regressor).

Notation: student logits ``z``, teacher logits ``v``, temperature ``T > 0``,
``q = softmax(z / T)``, ``p = softmax(v / T)``, batch size ``B``, ``N`` classes.
Teacher inputs are detached: a teacher passed live gets no gradient. Missing labels: a
class label ``< 0`` marks an unlabelled sample (teacher term only); a regression target
is missing where :func:`kdlib.metrics.valid_mask` says so, with the metrics' default (NaN,
``null_value=0`` mph, or outside a ``mask`` of the target's exact shape), so a loss and its
metric count the same entries; pass ``null_value=None`` for standardised targets. Missing
entries leave the mean; none valid gives a 0 that still carries a gradient.
``alpha`` always weights the teacher term. Its default differs by task, on purpose: 0.9 for the
classification losses (Hinton et al.'s weight of the soft term; Part II), 0.5 for the regression
losses (an even mix of label and teacher, the weight Part III's validation search froze).
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
    r"""Softmax at temperature ``T``: :math:`p_i = \exp(z_i/T) / \sum_j \exp(z_j/T)` over the last dim.

    ``T > 1`` softens the distribution (reveals "dark knowledge"), ``T -> inf`` tends to
    uniform, ``T -> 0`` to one-hot on the arg-max.
    """
    _check_temperature(T)
    return F.softmax(logits / T, dim=-1)


def entropy(probs: Tensor, dim: int = -1) -> Tensor:
    r"""Shannon entropy in nats, :math:`H(p) = -\sum_i p_i \log p_i`, along ``dim`` (``0 \log 0 = 0``).

    Ranges from 0 (one-hot) to :math:`\log N` (uniform over ``N`` classes).
    """
    if probs.numel() == 0:
        raise ValueError("entropy of an empty tensor is undefined; pass a probability vector")
    if (probs < 0).any():
        raise ValueError("probabilities must be >= 0; did you pass logits? apply kdlib.softmax_t first")
    logs = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * logs).sum(dim=dim)


def logit_gradient(loss_fn: Callable[[Tensor], Tensor], logits: Tensor) -> Tensor:
    r"""The gradient :math:`\partial \mathcal{L}(z) / \partial z` of a scalar loss at ``z = logits``, by autograd.

    ``loss_fn`` maps logits to a scalar loss, e.g. ``lambda z: kd_loss(z, v, T)``, whose gradient
    is :math:`\frac{T}{B}(q - p)`. Taken at a detached copy (``logits``' graph is left alone); a loss
    that does not depend on the logits (a bug: it cannot train the student) gets zeros.
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

    It differs from the soft cross-entropy :math:`-\sum_i p_i \log q_i` by the teacher's
    entropy, a constant for the student, so both have the gradient
    :math:`\partial \mathcal{L}/\partial z_i = T (q_i - p_i)` (the :math:`(1/T)(q_i - p_i)` of
    the cross-entropy times :math:`T^2`). The :math:`T^2` factor keeps the soft term's
    gradients on the same scale as the hard term's when ``T`` changes.
    Uses ``F.kl_div(log q, p, reduction="batchmean")``: "mean" would also divide by ``N``.
    ``teacher_logits`` is detached: no gradient reaches a teacher passed live.
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

    ``alpha`` weights the **soft (teacher) term**, over every sample; the hard term is at
    ``T = 1``, over the labelled samples :math:`L` (``labels < 0`` marks unlabelled ones; 0
    if the batch has none). ``alpha = 0`` is plain supervised training (the soft term is then
    skipped, ``T`` and shapes still checked), ``alpha = 1`` ignores the labels.
    Argument order ``(output, labels, teacher)`` matches :func:`kdlib.fit`'s targets.
    """
    _check_temperature(T)
    _check_same_shape(student_logits, teacher_logits, "distillation_loss")
    soft = kd_loss(student_logits, teacher_logits, T) if alpha > 0 else 0.0
    return _with_labels(soft, student_logits, labels, alpha)


def distillation_loss_cached(student_logits: Tensor, labels: Tensor, teacher_probs: Tensor, T: float = 4.0,
                             alpha: float = 0.9) -> Tensor:
    r""":func:`distillation_loss` from the teacher's soft targets ``p = softmax_t(v, T)``, cached once.

    .. math::
        \mathcal{L} = \alpha \, \frac{T^2}{B} \Big(\sum_{b,i} p_{b,i} \log p_{b,i} - \sum_{b,i} p_{b,i} \log q_{b,i}\Big)
        + (1 - \alpha)\, \frac{1}{|L|} \sum_{b \in L} \mathrm{CE}(y_b, \mathrm{softmax}(z_b))

    :func:`distillation_loss`'s value (up to rounding), gradient and labels, minus the per-batch
    teacher softmax and ``F.kl_div``: compute ``teacher_probs`` once at the same ``T`` (unchecked),
    ``fit(student, x, (y, softmax_t(teacher_logits, T)), partial(distillation_loss_cached, T=T))``.
    """
    _check_temperature(T)
    _check_same_shape(student_logits, teacher_probs, "distillation_loss_cached")
    p, soft = teacher_probs.detach(), 0.0
    if alpha > 0:  # F.cross_entropy with probability targets is one fused op: as cheap as the hard term
        soft = (F.cross_entropy(student_logits / T, p) + torch.special.xlogy(p, p).sum() / len(p)) * (T * T)
    return _with_labels(soft, student_logits, labels, alpha)


def logit_matching_loss(student_logits: Tensor, teacher_logits: Tensor, centred: bool = False) -> Tensor:
    r"""Logit matching (Ba & Caruana 2014): :math:`\frac{1}{2BN}\sum_{b,i} (z_{b,i} - v_{b,i})^2`.

    The high-temperature limit of :func:`kd_loss` for zero-mean logits: its gradient is
    :math:`(z_i - v_i)/(BN)`, the direction of Hinton's :math:`(z_i - v_i)/(N T^2)`.
    ``centred=True`` subtracts each sample's mean logit from both first,
    :math:`\frac{1}{2BN}\sum_{b,i} \big((z_{b,i} - \bar z_b) - (v_{b,i} - \bar v_b)\big)^2` with
    :math:`\bar z_b = \frac1N \sum_i z_{b,i}`: invariant, like the softmax, to a constant added to a
    sample's logits, it is the limit of :func:`kd_loss` as :math:`T \to \infty` for any logits.
    """
    _check_same_shape(student_logits, teacher_logits, "logit_matching_loss")
    teacher_logits = teacher_logits.detach()
    if centred:
        student_logits = student_logits - student_logits.mean(dim=-1, keepdim=True)
        teacher_logits = teacher_logits - teacher_logits.mean(dim=-1, keepdim=True)
    return 0.5 * F.mse_loss(student_logits, teacher_logits)


class HintLoss(nn.Module):
    r"""FitNets hint loss (Romero et al. 2015): :math:`\frac{1}{2}\|r(h_s) - h_t\|^2` averaged.

    ``r`` is a trainable linear regressor from the student's feature width to the
    teacher's (the one loss with parameters, hence a module: add its parameters to the
    optimiser, e.g. ``fit(..., extra_modules=[hint])``). Works on ``(..., d)`` features.
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
    r"""Logit matching plus hard labels: :math:`\alpha \, \frac{1}{2BN}\|z - v\|^2 + (1 - \alpha)\, \mathrm{CE}(y, \mathrm{softmax}(z))`.

    :func:`logit_matching_loss` on the teacher's logits (``centred=True``: per-sample centred
    logits, the :math:`T \to \infty` limit of :func:`distillation_loss` at the same ``alpha``),
    mixed with the label term exactly like :func:`distillation_loss` (``alpha`` weights the
    teacher term, same default; the cross-entropy is over the samples with ``labels >= 0``).
    """
    return _with_labels(logit_matching_loss(student_logits, teacher_logits, centred=centred), student_logits, labels,
                        alpha)


class HintDistillationLoss(nn.Module):
    r"""A main loss plus a FitNets hint on the last hidden layer, in one stage.

    .. math:: \mathcal{L} = \mathcal{L}_{main}(z, \dots) + \beta \, \tfrac{1}{2}\,\mathrm{mean}\,(r(h_s) - h_t)^2

    ``output`` is the student's ``(output, features)`` (``forward_kwargs={"return_features": True}``);
    the targets are the main loss's, then the teacher's features: ``(labels, teacher_features)`` for
    the default ``base_loss=F.cross_entropy``. The regressor ``r`` (a :class:`HintLoss`) is trained
    along. Romero et al. (2015) train the hint first; this one-stage sum is the common simplification.
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
    r"""Mean absolute error :math:`\frac{1}{|V|}\sum_V |\hat y - y|` over the valid targets ``V``: the traffic models' loss."""
    return _mean(*_errors(pred, target, 1, mask, null_value))


def output_distillation_loss(pred: Tensor, target: Tensor, teacher_pred: Tensor, alpha: float = 0.5, p: int = 1,
                             mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    r"""Output distillation for regression / forecasting.

    .. math::
        \mathcal{L} = \alpha \, \frac{1}{|U|}\sum_U |\hat y_s - \hat y_t|^p + (1 - \alpha)\, \frac{1}{|V|}\sum_V |\hat y_s - y|^p

    ``p = 1`` (MAE) or ``2`` (MSE). ``alpha`` weights the **teacher term**. The label term
    averages over the valid targets ``V`` (module docstring), the teacher term over ``U``,
    wherever the teacher's forecast is not NaN: unlabelled windows still teach.
    """
    _check_alpha(alpha)
    _check_same_shape(pred, teacher_pred, "output_distillation_loss")
    to_teacher = _mean(*_errors(pred, teacher_pred.detach(), p, None, None))
    return alpha * to_teacher + (1 - alpha) * _mean(*_errors(pred, target, p, mask, null_value))


def huber_distillation_loss(pred: Tensor, target: Tensor, teacher_pred: Tensor, alpha: float = 0.5, delta: float = 1.0,
                            mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    r"""Output distillation with an L1 label term and a Huber teacher term.

    .. math::
        \mathcal{L} = \alpha \, \frac{1}{|U|}\sum_U h_\delta(\hat y_s - \hat y_t) + (1 - \alpha)\, \frac{1}{|V|}\sum_V |\hat y_s - y|,
        \qquad h_\delta(r) = \begin{cases} r^2 / (2\delta) & |r| \le \delta \\ |r| - \delta/2 & |r| > \delta \end{cases}

    :math:`h_\delta` is ``F.smooth_l1_loss(beta=delta)``: slope 1 far from the teacher (the label
    term's units, so ``alpha`` weighs as in :func:`output_distillation_loss` with ``p = 1``),
    quadratic within ``delta`` mph of it. ``delta`` (``> 0``) -> 0 gives that L1 loss. Per window
    (one label ``y``) the minimiser is the label for ``alpha < 0.5``; for ``alpha > 0.5`` it is
    :math:`\hat y_t - \delta\,\tfrac{1-\alpha}{\alpha}\,\mathrm{sign}(\hat y_t - y)` (or the label if that is
    nearer), within ``delta`` of the teacher instead of on it; at ``alpha = 0.5`` the L1 loss is flat
    between label and teacher, this one between the label and :math:`\hat y_t \mp \delta`.
    ``U``: where the teacher's forecast is not NaN; ``V``: the valid labels (module docstring).
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
    r"""Teacher-bounded regression loss (Chen et al. 2017).

    .. math::
        \mathcal{L} = \mathrm{mean}_V\, |\hat y_s - y|^p
           + \nu \, \mathrm{mean}_V\Big( |\hat y_s - y|^p \; \mathbb{1}\big[|\hat y_s - y|^p + m > |\hat y_t - y|^p\big] \Big)

    The teacher acts as an upper bound: the extra term pushes the student only where its
    error exceeds the teacher's minus the margin ``m >= 0``, and is zero once the student is
    better by ``m``. ``nu >= 0`` weights it. Means over the valid targets ``V`` (module
    docstring); no bound where the teacher's forecast is NaN.
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

    For a graph teacher (features after its diffusion over the road graph) :math:`S` says which
    sensors it sees as alike in this window: the relational knowledge :func:`relational_loss`
    hands to a student. A sensor whose features are all zero is similar to none (its row is 0).
    """
    if features.dim() != 3:
        raise ValueError(f"sensor_similarity expects per-sensor features (batch, sensors, width), got shape "
                         f"{tuple(features.shape)}; call the model with return_features=True")
    h = F.normalize(features, dim=-1, eps=1e-8)
    return h @ h.transpose(1, 2)


def relational_loss(student_features: Tensor, teacher_features: Tensor) -> Tensor:
    r"""Relational distillation over the sensors: match the teacher's sensor-to-sensor similarities.

    .. math:: \mathcal{L}_{rel} = \frac{1}{B N^2} \sum_b \big\| S(h_s^{(b)}) - S(h_t^{(b)}) \big\|_F^2

    ``S`` is :func:`sensor_similarity`; the features are per sensor, ``(B, N, d_s)`` for the
    student and ``(B, N, d_t)`` for the teacher (detached; any float dtype). The widths need not
    agree: only relations between sensors are compared (similarity-preserving distillation, Tung
    & Mori 2019, taken across the sensors of one window instead of the samples of a batch;
    relational KD, Park et al. 2019). With row-normalised :math:`\hat H_s, \hat H_t` the
    :math:`N \times N` matrices are never formed:
    :math:`\|\hat H_s \hat H_s^\top - \hat H_t \hat H_t^\top\|_F^2 = \|\hat H_s^\top \hat H_s\|_F^2
    - 2\|\hat H_s^\top \hat H_t\|_F^2 + \|\hat H_t^\top \hat H_t\|_F^2`, which costs
    :math:`O(N d^2)` per window instead of :math:`O(N^2 d)`.
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
    r"""A forecasting loss plus the relational term: :math:`\mathcal{L}_{base}(\hat y, \dots) + \beta\, \mathcal{L}_{rel}`.

    The layout of :class:`HintDistillationLoss`: ``output`` is the student's ``(forecast, features)``,
    the targets the base loss's followed by the teacher's per-sensor features, e.g. ``(y,
    teacher_features)`` for the default :func:`l1_loss`. ``beta >= 0`` weights the relational term.
    """
    if not isinstance(output, tuple) or len(output) != 2:
        raise ValueError("output must be (forecast, features): call the student with return_features=True")
    if len(targets) < 2:
        raise ValueError("targets must be the base loss's targets followed by the teacher's per-sensor features")
    if not beta >= 0:
        raise ValueError(f"beta weights the relational term and must be >= 0, got {beta}")
    pred, features = output
    return base_loss(pred, *targets[:-1]) + beta * relational_loss(features, targets[-1])
