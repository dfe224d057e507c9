import pytest
import torch

from kdlib import random_shift


def test_random_shift_moves_each_image_by_at_most_max_shift():
    img = torch.zeros(50, 1, 8, 8)
    img[:, 0, 4, 4] = 1.0  # one bright pixel in the middle
    out = random_shift(img, 2, torch.Generator().manual_seed(0))
    assert out.shape == img.shape
    pos = out[:, 0].flatten(1).argmax(1)
    r, c = pos // 8, pos % 8
    assert torch.all((r - 4).abs() <= 2) and torch.all((c - 4).abs() <= 2)
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1.0)  # the pixel is never lost
    assert len(set(zip(r.tolist(), c.tolist()))) > 10  # shifts differ between images


def test_random_shift_by_hand_and_errors():
    img = torch.arange(16.0).view(1, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(random_shift(img, 0, g), img)
    with pytest.raises(ValueError, match="batch, channels"):
        random_shift(torch.zeros(4, 4), 1)
