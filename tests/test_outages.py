"""Simulated sensor outages: whole blocks lost, at the asked rate, hidden from labels and inputs alike."""

import pytest
import torch

import kdlib
from kdlib.preprocessing import TrafficWindows


def test_sensor_outages_lose_whole_blocks_at_the_rate():
    lost = kdlib.sensor_outages(1000, 300, rate=0.6, length=72, seed=3)
    assert lost.shape == (1000, 300) and lost.dtype == torch.bool
    blocks = lost[:936].reshape(13, 72, 300)  # the full blocks: each all lost or all kept
    assert (blocks.all(1) | ~blocks.any(1)).all()
    assert abs(blocks[:, 0].float().mean().item() - 0.6) < 0.03  # 3,900 independent blocks
    assert torch.equal(lost, kdlib.sensor_outages(1000, 300, rate=0.6, length=72, seed=3))
    assert not kdlib.sensor_outages(50, 4, rate=0.0, length=5).any() and kdlib.sensor_outages(50, 4, 1.0, 5).all()
    with pytest.raises(ValueError, match="rate"):
        kdlib.sensor_outages(10, 2, rate=1.5, length=3)


def test_hide_outages_masks_each_lost_reading_where_a_window_holds_it():
    steps, n, i, o = 30, 3, 4, 2
    series = torch.arange(steps * n, dtype=torch.float32).reshape(steps, n) + 1
    x, y = kdlib.sliding_windows(series, i, o)
    tod = torch.arange(len(x)) + i - 1  # the time of day of each window's last input: step k has time of day k
    w = TrafficWindows(x=x, tod=tod, y=y.clone(), start=torch.arange(len(x)), steps=range(100, 100 + steps))
    lost = torch.zeros(steps, n, dtype=torch.bool)
    lost[10, 1] = True
    h = kdlib.hide_outages(w, lost)
    # no other reading at time of day 10: the stand-in is sensor 1's mean over its surviving first inputs
    first = series[: len(x), 1]
    stand_in = (first.sum() - series[10, 1]) / (len(x) - 1)
    for k in range(len(x)):  # by hand: window k holds steps k .. k+3 as inputs, k+4 .. k+5 as targets
        for t in range(i):
            assert h.x[k, t, 1] == (stand_in if k + t == 10 else x[k, t, 1]) and h.x[k, t, 0] == x[k, t, 0]
        for t in range(o):
            assert h.y[k, t, 1].isnan().item() == (k + i + t == 10)
    assert not y.isnan().any()  # the original windows are untouched
    with pytest.raises(ValueError, match="lost must be"):
        kdlib.hide_outages(w, lost[:-1])


def test_hide_outages_fills_from_the_same_time_of_day():
    steps, i, o = 40, 2, 1
    series = torch.tensor([[float(s % 5)] for s in range(steps)])  # a 5-step "day"
    x, y = kdlib.sliding_windows(series, i, o)
    w = TrafficWindows(x=x, tod=(torch.arange(len(x)) + i - 1) % 5, y=y, start=torch.arange(len(x)), steps=range(steps))
    lost = torch.zeros(steps, 1, dtype=torch.bool)
    lost[12] = True  # time of day 2: the other days' readings there are all 2
    h = kdlib.hide_outages(w, lost, steps_per_day=5)
    assert h.x[12, 0, 0] == 2 and h.x[11, 1, 0] == 2 and torch.equal(h.x, x)


def test_shipped_outage_teacher_loads_and_knows_its_outages():
    from kdlib.teachers import METR_LA_OUTAGES, metr_la_outages

    teacher = kdlib.load_teacher("metr-la-outage-teacher")
    assert isinstance(teacher, kdlib.Ensemble) and len(teacher.members) == 1
    train = kdlib.traffic_splits()[0]["train"]
    lost = metr_la_outages(train)
    assert torch.equal(lost, kdlib.sensor_outages(len(train.steps), train.x.shape[2], **METR_LA_OUTAGES))
    assert 0.55 < lost.float().mean().item() < 0.65
