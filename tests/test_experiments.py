"""train_students / summarize / gap_recovered on a small synthetic problem, checked by hand."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdlib

from kdlib import HintDistillationLoss, Method, distillation_loss, fit, gap_recovered, paired_differences, summarize, train_students


def _blobs(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return centers[y] + 0.8 * torch.randn(n, 2, generator=g), y


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x, return_features=False):
        h = self.body(x)
        return (self.head(h), h) if return_features else self.head(h)


def test_same_initial_weights_and_same_result_as_a_manual_run():
    x, y = _blobs()
    xt, yt = _blobs(200, seed=1)
    teacher_logits = torch.randn(len(y), 3)
    methods = {
        "scratch": Method(F.cross_entropy, y),
        "kd": Method(partial(distillation_loss, T=2.0, alpha=0.5), (y, teacher_logits)),
    }
    runs = train_students(Tiny, methods, x, kdlib.classification_score(xt, yt), seeds=(0, 1), epochs=2, batch_size=32,
                          lr=1e-2, device="cpu")
    assert list(runs.table.columns) == ["seed", "method", "errors", "accuracy", "best_epoch", "seconds"]
    assert set(runs.histories) == set(runs.models) and len(runs.histories[("kd", 0)].train_loss) == 2
    assert len(runs.table) == 4 and set(runs.models) == {(m, s) for m in methods for s in (0, 1)}
    # Reproduce seed 1 / scratch by hand: seed, build, train with fit's seed = 1.
    torch.manual_seed(1)
    manual = Tiny()
    fit(manual, x, y, F.cross_entropy, epochs=2, batch_size=32, lr=1e-2, device="cpu", seed=1, progress=False)
    for p, q in zip(manual.parameters(), runs.models[("scratch", 1)].parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    row = runs.table.query("seed == 1 and method == 'scratch'").iloc[0]
    pred = manual(xt).argmax(1)
    assert row["errors"] == int((pred != yt).sum())
    assert row["accuracy"] == pytest.approx(float((pred == yt).float().mean()))


def test_methods_start_from_the_same_weights():
    x, y = _blobs(64)
    # lr = 0 leaves the initial weights in place: all methods of a seed must be equal.
    methods = {"a": Method(F.cross_entropy, y), "b": Method(F.cross_entropy, y)}
    runs = train_students(Tiny, methods, x, kdlib.classification_score(x, y), seeds=(3,), epochs=1, lr=0.0, device="cpu")
    for p, q in zip(runs.models[("a", 3)].parameters(), runs.models[("b", 3)].parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_loss_module_is_copied_and_trained():
    x, y = _blobs(128)
    feats = torch.randn(128, 5)
    hint = HintDistillationLoss(8, 5, beta=1.0)
    before = hint.hint.regressor.weight.detach().clone()
    m = Method(hint, (y, feats), forward_kwargs={"return_features": True})
    runs = train_students(Tiny, {"hint": m}, x, kdlib.classification_score(x, y), seeds=(0,), epochs=1, lr=1e-2, device="cpu")
    torch.testing.assert_close(hint.hint.regressor.weight, before)  # the template is untouched
    assert runs.table["errors"].iloc[0] >= 0


def test_summarize_by_hand():
    t = pd.DataFrame({"seed": [0, 1, 2, 0, 1, 2], "method": ["s"] * 3 + ["d"] * 3, "errors": [10, 12, 14, 5, 6, 10]})
    s = summarize(t)
    assert list(s.index) == ["s", "d"]
    assert s.loc["s", "mean"] == 12 and s.loc["s", "std"] == pytest.approx(2.0)  # sqrt(((-2)^2+0+2^2)/2)
    assert s.loc["d", "mean"] == 7 and s.loc["d", "std"] == pytest.approx((1 + 4 + 9) ** 0.5 / 2**0.5 * 1.0)
    assert list(paired_differences(t, "s", "d")) == [5, 6, 4]
    with pytest.raises(KeyError, match="no column"):
        summarize(t, value="accuracy")


def test_gap_recovered():
    assert gap_recovered(teacher=67, scratch=146, distilled=74) == pytest.approx(72 / 79)
    assert gap_recovered(10, 20, 20) == 0.0
    with pytest.raises(ValueError, match="no gap"):
        gap_recovered(5, 5, 4)


def test_bad_input_is_explained():
    x, y = _blobs(32)
    with pytest.raises(ValueError, match="methods is empty"):
        train_students(Tiny, {}, x, kdlib.classification_score(x, y))
    with pytest.raises(ValueError, match="no inputs"):
        train_students(Tiny, {"a": Method(F.cross_entropy, y)}, None, kdlib.classification_score(x, y))


def test_cosine_adam_schedule_by_hand():
    import math

    from kdlib import cosine_adam

    kw = cosine_adam(4, batch_size=16, lr=0.1)
    assert (kw["epochs"], kw["batch_size"], kw["lr"]) == (4, 16, 0.1)
    opt = torch.optim.Adam(nn.Linear(1, 1).parameters(), lr=0.1)
    sched = kw["scheduler"](opt)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    with pytest.raises(ValueError, match="epochs"):
        cosine_adam(0)


def test_epochs_and_seconds_to_target_by_hand():
    from kdlib import History, epochs_to_target, seconds_to_target

    acc = [0.80, 0.91, 0.90, 0.95]
    assert epochs_to_target(acc, 0.90, higher_is_better=True) == 2  # 1-based, first epoch reaching it
    assert epochs_to_target(acc, 0.95, higher_is_better=True) == 4  # reaching includes equality
    assert epochs_to_target(acc, 0.96, higher_is_better=True) is None
    mae = [4.0, 3.6, 3.4, 3.5]
    assert epochs_to_target(mae, 3.5, higher_is_better=False) == 3
    assert epochs_to_target(mae, 3.0, higher_is_better=False) is None
    h = History(val_score=acc, epoch_seconds=[1.0, 2.0, 0.5, 4.0])
    assert seconds_to_target(h, 0.90, True) == pytest.approx(3.0)
    assert seconds_to_target(h, 0.95, True) == pytest.approx(7.5)
    assert seconds_to_target(h, 0.99, True) is None


def test_epochs_to_target_on_a_real_fit():
    from kdlib import accuracy, epochs_to_target, seconds_to_target

    x, y = _blobs()
    torch.manual_seed(0)
    model = Tiny()
    h = fit(model, x, y, F.cross_entropy, epochs=6, lr=1e-2, val_data=(x, y), val_metric=accuracy,
            higher_is_better=True, restore_best=False, progress=False, device="cpu")
    target = max(h.val_score)  # reached, first at the first epoch holding the maximum
    e = epochs_to_target(h.val_score, target, True)
    assert e == h.val_score.index(target) + 1
    assert seconds_to_target(h, target, True) == pytest.approx(sum(h.epoch_seconds[:e]))
    assert epochs_to_target(h.val_score, target + 1e-6, True) is None


def test_to_target_bad_input():
    from kdlib import History, epochs_to_target, seconds_to_target

    with pytest.raises(ValueError, match="scores is empty"):
        epochs_to_target([], 0.9, True)
    with pytest.raises(ValueError, match="validation scores"):
        seconds_to_target(History(train_loss=[1.0], epoch_seconds=[1.0]), 0.9, True)


def _square_plus_pid(v):
    import os

    return v * v, os.getpid()


def test_parallel_map_keeps_order_and_uses_workers():
    import os

    out = kdlib.parallel_map(_square_plus_pid, list(range(8)), max_workers=2)
    assert [v for v, _ in out] == [i * i for i in range(8)]
    if (os.cpu_count() or 1) > 1 and "fork" in __import__("multiprocessing").get_all_start_methods():
        assert os.getpid() not in {pid for _, pid in out}  # ran in forked workers
    serial = kdlib.parallel_map(_square_plus_pid, list(range(3)), max_workers=1)
    assert [v for v, _ in serial] == [0, 1, 4] and {pid for _, pid in serial} == {os.getpid()}


def test_parallel_map_rejects_zero_workers():
    with pytest.raises(ValueError, match="max_workers must be >= 1"):
        kdlib.parallel_map(abs, [1], max_workers=0)


def test_params_become_columns_and_workers_give_the_same_table():
    x, y = _blobs()
    methods = {"kd": Method(partial(distillation_loss, T=2.0, alpha=0.5), (y, torch.randn(len(y), 3)),
                            params={"T": 2.0, "alpha": 0.5})}
    kw = dict(epochs=1, batch_size=64, lr=1e-2, device="cpu")
    one = train_students(Tiny, methods, x, kdlib.classification_score(x, y), seeds=(0, 1), **kw)
    two = train_students(Tiny, methods, x, kdlib.classification_score(x, y), seeds=(0, 1), workers=2, **kw)
    assert {"T", "alpha"} <= set(one.table.columns) and (one.table["alpha"] == 0.5).all()
    pd.testing.assert_frame_equal(one.table.drop(columns="seconds"), two.table.drop(columns="seconds"))


def test_forecast_score_columns_are_masked_mae_per_horizon():
    y = torch.rand(5, 12, 3) + 1
    pred = y + 0.5
    model = nn.Identity()
    score = kdlib.forecast_score(pred, y)
    assert score(model) == pytest.approx({"MAE 15min": 0.5, "MAE 30min": 0.5, "MAE 60min": 0.5})


def test_t_quantile_matches_tables():
    # two-sided 95 % critical values from any t table
    for df, t in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452)):
        assert kdlib.t_quantile(0.975, df) == pytest.approx(t, abs=1e-3)
    assert kdlib.t_quantile(0.025, 9) == pytest.approx(-2.2622, abs=1e-3)
    with pytest.raises(ValueError, match="df >= 1"):
        kdlib.t_quantile(0.975, 0)


def test_paired_ci_by_hand():
    import pandas as pd
    scratch, distilled = [10.0, 12.0, 11.0, 13.0], [9.0, 10.5, 10.0, 11.0]
    table = pd.DataFrame({"seed": [0, 1, 2, 3] * 2, "method": ["scratch"] * 4 + ["distilled"] * 4,
                          "errors": scratch + distilled})
    d = np.array(scratch) - np.array(distilled)
    half = 3.1824 * d.std(ddof=1) / np.sqrt(4)  # t_{0.975, 3}
    ci = kdlib.paired_ci(table, "scratch", "distilled")
    assert (ci.mean, ci.n) == (pytest.approx(d.mean()), 4)
    assert (ci.low, ci.high) == (pytest.approx(d.mean() - half, abs=1e-3), pytest.approx(d.mean() + half, abs=1e-3))
    assert ci.excludes_zero and "95% CI, n=4" in str(ci)
    with pytest.raises(ValueError, match="at least 2"):
        kdlib.paired_ci(table[table.seed == 0], "scratch", "distilled")


def test_compare_arms_by_hand():
    import pandas as pd
    scratch, distilled = np.array([10.0, 12.0, 11.0, 13.0]), np.array([9.0, 10.5, 10.0, 11.0])
    table = pd.DataFrame({"seed": [0, 1, 2, 3] * 2, "method": ["scratch"] * 4 + ["distilled"] * 4,
                          "mae": np.r_[scratch, distilled], "rmse": np.r_[scratch, scratch + 0.5]})
    t = kdlib.compare_arms(table, "scratch", "distilled", ["mae", "rmse"])
    assert list(t.index) == ["mae", "rmse"]
    row = t.loc["mae"]
    assert (row["scratch"], row["scratch std"]) == (pytest.approx(11.5), pytest.approx(scratch.std(ddof=1)))
    assert (row["distilled"], row["distilled std"]) == (pytest.approx(10.125), pytest.approx(distilled.std(ddof=1)))
    assert row["difference"] == pytest.approx(1.375) and row["difference %"] == pytest.approx(100 * 1.375 / 11.5)
    assert row["ci"] == kdlib.paired_ci(table, "scratch", "distilled", value="mae") and row["verdict"] == "gain"
    assert t.loc["rmse", "verdict"] == "loss" and t.loc["rmse", "n"] == 4  # distilled is 0.5 worse on every seed
    same = table.assign(mae=np.r_[scratch, scratch + [1.0, -1.0, 0.5, -0.5]])
    assert kdlib.compare_arms(same, "scratch", "distilled", ["mae"]).loc["mae", "verdict"] == "no difference distinguishable"
    with pytest.raises(KeyError, match="teacher"):
        kdlib.compare_arms(table, "scratch", "teacher", ["mae"])


def test_welch_ci_against_pooled_t_and_tables():
    # equal sizes and variances: Welch's df is 2(n - 1) and its interval is the pooled-variance t interval
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    b = a - 2.5  # same variance, mean lower by 2.5
    ci = kdlib.welch_ci(a, b)
    half = 2.1009 * np.sqrt(2 * a.var(ddof=1) / len(a))  # t_{0.975, 18} from a t table
    assert (ci.mean, ci.n) == (pytest.approx(2.5), 10)
    assert (ci.low, ci.high) == (pytest.approx(2.5 - half, abs=1e-3), pytest.approx(2.5 + half, abs=1e-3))
    # unequal: s_a^2/n_a = 0.5, s_b^2/n_b = 4/3, df = 3.53 by hand: the t factor lies between t_{.975,4} and t_{.975,3}
    ci = kdlib.welch_ci([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0])
    factor = (ci.high - ci.mean) / np.sqrt(0.5 + 4 / 3)
    assert ci.mean == pytest.approx(-1.0) and 2.7764 < factor < 3.1824 and not ci.excludes_zero and ci.n == 3
    with pytest.raises(ValueError, match="at least 2"):
        kdlib.welch_ci([1.0], [2.0, 3.0])
