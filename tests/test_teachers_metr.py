"""The shipped METR-LA teacher loads (hash-checked), reproduces its committed score and beats persistence."""

import torch

import kdlib
from kdlib.teachers import TEACHERS


def test_shipped_metr_la_teacher_reproduces_its_score_and_beats_last_value():
    assert "metr-la-teacher" in TEACHERS
    splits, scaler = kdlib.traffic_splits()
    test = splits["test"]
    teacher = kdlib.load_teacher("metr-la-teacher")
    assert isinstance(teacher, kdlib.Ensemble) and len(teacher.members) == 2
    assert not any(m.training for m in teacher.modules())
    with torch.no_grad():
        pred = kdlib.predict(teacher, test.inputs, batch_size=128)
    # the committed number (book/part3/teacher.ipynb): test MAE at 60 min 4.1542 mph, filled labels masked
    assert round(kdlib.masked_mae(pred[:, 11], test.y[:, 11]), 4) == 4.1542
    last = kdlib.LastValue(scaler)(test.x)
    for h in (3, 6, 12):
        assert kdlib.masked_mae(pred[:, h - 1], test.y[:, h - 1]) < kdlib.masked_mae(last[:, h - 1], test.y[:, h - 1])
