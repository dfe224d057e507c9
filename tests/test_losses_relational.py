"""The relational (sensor-similarity) distillation loss against its formula in plain Python."""

import math

import pytest
import torch

from kdlib import l1_loss, relational_distillation_loss, relational_loss, sensor_similarity


def _cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_sensor_similarity_by_hand():
    h = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]]])  # one window, three sensors
    s = sensor_similarity(h)
    rows = h[0].tolist()
    expected = [_cosine(a, b) for a in rows for b in rows]
    assert s.shape == (1, 3, 3)
    assert s[0].flatten().tolist() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="return_features"):
        sensor_similarity(torch.randn(3, 2))


def test_relational_loss_by_hand_and_scale_free():
    torch.manual_seed(0)
    hs, ht = torch.randn(2, 4, 3), torch.randn(2, 4, 5)  # widths differ: only the relations are compared
    by_hand = 0.0
    for b in range(2):
        for i in range(4):
            for j in range(4):
                by_hand += (_cosine(hs[b, i].tolist(), hs[b, j].tolist()) - _cosine(ht[b, i].tolist(), ht[b, j].tolist())) ** 2
    assert relational_loss(hs, ht).item() == pytest.approx(by_hand / (2 * 16), rel=1e-4)
    # the same as forming both similarity matrices explicitly
    explicit = (sensor_similarity(hs) - sensor_similarity(ht)).pow(2).mean().item()
    assert relational_loss(hs, ht).item() == pytest.approx(explicit, rel=1e-4)
    # a per-sensor rescaling of the student's features changes no similarity, hence no loss
    assert relational_loss(hs * torch.rand(2, 4, 1).add(0.5), ht).item() == pytest.approx(by_hand / 32, rel=1e-4)
    assert relational_loss(ht, ht.half()).item() == pytest.approx(0.0, abs=1e-3)  # a float16 teacher is accepted
    with pytest.raises(ValueError, match="same windows"):
        relational_loss(hs, ht[:, :3])


def test_relational_loss_gradient_reaches_the_student_only_and_matches_the_explicit_form():
    torch.manual_seed(2)
    hs = torch.randn(2, 5, 3, requires_grad=True)
    ht = torch.randn(2, 5, 4, requires_grad=True)
    relational_loss(hs, ht).backward()
    assert ht.grad is None  # the teacher is detached
    grad = hs.grad.clone()
    hs.grad = None
    (sensor_similarity(hs) - sensor_similarity(ht.detach())).pow(2).mean().backward()
    assert torch.allclose(grad, hs.grad, atol=1e-5)


def test_relational_distillation_loss_adds_the_base_loss():
    torch.manual_seed(1)
    pred, y = torch.randn(2, 12, 4) + 50, torch.randn(2, 12, 4) + 50
    hs, ht = torch.randn(2, 4, 3), torch.randn(2, 4, 6)
    total = relational_distillation_loss((pred, hs), y, ht, beta=2.5)
    assert total.item() == pytest.approx(l1_loss(pred, y).item() + 2.5 * relational_loss(hs, ht).item(), rel=1e-6)
    assert relational_distillation_loss((pred, hs), y, ht, beta=0.0).item() == pytest.approx(l1_loss(pred, y).item())
    with pytest.raises(ValueError, match="return_features"):
        relational_distillation_loss(pred, y, ht)
    with pytest.raises(ValueError, match="beta"):
        relational_distillation_loss((pred, hs), y, ht, beta=-1.0)
    with pytest.raises(ValueError, match="targets"):
        relational_distillation_loss((pred, hs), ht)
