"""The shipped METR-LA teacher checkpoint loads (hash-checked) and beats persistence."""

import torch

import kdlib
from kdlib.teachers import RECIPES, metr_la_teacher_model


def test_shipped_metr_la_teacher_beats_last_value():
    assert "metr-la-teacher" in RECIPES
    splits, scaler = kdlib.traffic_splits()
    test = splits["test"]
    teacher = kdlib.load_checkpoint(metr_la_teacher_model(), "metr-la-teacher")
    assert isinstance(teacher, kdlib.Ensemble) and len(teacher.members) == 2
    with torch.no_grad():
        pred = kdlib.predict(teacher, test.inputs, batch_size=128)
    last = kdlib.last_value_forecast(test.x, scaler)
    for h in (3, 6, 12):
        assert kdlib.masked_mae(pred[:, h - 1], test.y[:, h - 1]) < kdlib.masked_mae(last[:, h - 1], test.y[:, h - 1])
