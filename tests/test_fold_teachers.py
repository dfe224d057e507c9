"""Out-of-fold teacher forecasts: the two blocks share no time step, and each block is labelled by the right member."""

import pytest
import torch
from torch import nn

import kdlib
from kdlib.teachers import fold_forecasts, metr_la_fold_blocks


@pytest.mark.parametrize("n, span", [(100, 24), (1388, 24), (7, 3)])
def test_chronological_halves_share_no_step(n, span):
    a, b = kdlib.chronological_halves(n, span)
    steps_a = {s for w in a.tolist() for s in range(w, w + span)}
    steps_b = {s for w in b.tolist() for s in range(w, w + span)}
    assert not steps_a & steps_b  # window w covers steps w .. w + span - 1
    assert len(a) + len(b) == n - (span - 1) and abs(len(a) - len(b)) <= 1  # only the overlapping windows dropped
    assert a.tolist() == list(range(len(a))) and b.tolist() == list(range(n - len(b), n))


def test_chronological_halves_rejects_too_few_windows():
    with pytest.raises(ValueError, match="more than span windows"):
        kdlib.chronological_halves(24, 24)


class _Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x, tod):
        return torch.full((x.shape[0], 2, 3), self.value)


def test_fold_forecasts_take_each_block_from_the_member_that_did_not_see_it():
    teachers = kdlib.Ensemble([_Constant(0.0), _Constant(1.0)])
    x, tod = torch.zeros(10, 4, 3), torch.zeros(10, dtype=torch.long)
    blocks = kdlib.chronological_halves(10, 3)  # [0..3], [6..9]; windows 4 and 5 in neither
    oof = fold_forecasts(teachers, (x, tod), blocks)
    assert (oof[blocks[0]] == 1).all() and (oof[blocks[1]] == 0).all() and oof[4:6].isnan().all()
    own = fold_forecasts(teachers, (x, tod), blocks, out_of_fold=False)
    assert (own[blocks[0]] == 0).all() and (own[blocks[1]] == 1).all() and own[4:6].isnan().all()
    with pytest.raises(ValueError, match="two members"):
        fold_forecasts(kdlib.Ensemble([_Constant(0.0)]), (x, tod), blocks)


def test_shipped_fold_teachers_load_and_were_trained_on_their_blocks():
    teachers = kdlib.load_teacher("metr-la-fold-teachers")
    assert isinstance(teachers, kdlib.Ensemble) and len(teachers.members) == 2
    a, b = metr_la_fold_blocks()
    assert len(a) == 682 and len(b) == 683 and int(b[0]) - int(a[-1]) == 24  # the 1,388 training windows, span 24
