"""Training-step timing and the teacher training-cost estimate."""

import pytest
import torch
import torch.nn.functional as F

import kdlib
from kdlib.teachers import MNIST_TEACHER_TRAINING, METR_LA_TEACHER_TRAINING, TEACHERS, estimate_training_seconds


def test_training_step_seconds_trains_and_is_positive():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    before = F.cross_entropy(model(x), y).item()
    s = kdlib.training_step_seconds(model, (x,), (y,), F.cross_entropy, lr=0.1, steps=5, warmup=1)
    assert s > 0
    assert F.cross_entropy(model(x), y).item() < before  # six real Adam steps were taken


def test_training_step_seconds_rejects_bad_counts():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        kdlib.training_step_seconds(torch.nn.Linear(1, 1), (torch.ones(1, 1),), (torch.ones(1, 1),), F.mse_loss, steps=0)


def test_estimate_counts_every_step_of_the_recipe():
    est = estimate_training_seconds("mnist-teacher", steps=2)
    assert est["steps"] == MNIST_TEACHER_TRAINING["epochs"] * 430  # ceil(55000 / 128) batches per epoch
    assert est["seconds"] == pytest.approx(est["step_seconds"] * est["steps"])
    est = estimate_training_seconds("metr-la-teacher", steps=2)
    n_train = kdlib.traffic_splits()[0]["train"].x.shape[0]  # 1388 windows
    assert est["steps"] == METR_LA_TEACHER_TRAINING["members"] * METR_LA_TEACHER_TRAINING["epochs"] * -(-n_train // 64)


def test_estimate_knows_every_recipe_and_rejects_others():
    with pytest.raises(ValueError, match="unknown recipe"):
        estimate_training_seconds("resnet-teacher")
    for name in TEACHERS:
        assert estimate_training_seconds(name, steps=1)["seconds"] > 0


def test_break_even_by_hand():
    # 300 s of extra training; the teacher takes 2 ms, the student 0.5 ms: 300 / 0.0015 = 200,000
    n = kdlib.break_even_inferences(300.0, 2e-3, 5e-4)
    assert n == pytest.approx(200_000)
    # at N* both ways of serving cost the same
    assert 300.0 + n * 5e-4 == pytest.approx(n * 2e-3)
    assert kdlib.break_even_inferences(0.0, 2e-3, 5e-4) == 0.0


def test_break_even_rejects_a_student_that_is_not_faster():
    with pytest.raises(ValueError, match="not faster than the teacher"):
        kdlib.break_even_inferences(10.0, 1e-3, 1e-3)
    with pytest.raises(ValueError, match=">= 0"):
        kdlib.break_even_inferences(-1.0, 2e-3, 1e-3)
    with pytest.raises(ValueError, match="> 0"):
        kdlib.break_even_inferences(1.0, 0.0, 1e-3)
