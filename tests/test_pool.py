"""The CycleGAN image history pool: filling, 50/50 swaps, torch RNG, checkpoint round trip."""

from __future__ import annotations

import io
import random

import pytest
import torch

from gankit.errors import DataError
from gankit.pool import ImagePool


def _images(values, shape=(1, 2, 2)) -> torch.Tensor:
    """A batch whose image i is filled with values[i] (so images can be told apart)."""
    return torch.stack([torch.full(shape, float(v)) for v in values])


def _ids(batch: torch.Tensor) -> list[int]:
    return [int(img.flatten()[0].item()) for img in batch]


def test_size_zero_returns_input():
    pool = ImagePool(0)
    x = torch.randn(3, 1, 2, 2)
    assert pool.query(x) is x
    assert len(pool) == 0


def test_filling_returns_and_stores_each_image():
    torch.manual_seed(0)
    pool = ImagePool(4)
    assert _ids(pool.query(_images([1, 2, 3]))) == [1, 2, 3]
    assert len(pool) == 3
    out = pool.query(_images([4, 5, 6]))
    assert _ids(out)[0] == 4  # fills the last free slot
    assert len(pool) == 4
    # a swap returns an old image and stores the new one, so nothing is lost or duplicated
    # (4 was both stored and returned)
    kept = _ids(torch.stack(pool.images))
    assert sorted(_ids(out) + kept) == [1, 2, 3, 4, 4, 5, 6]


def test_stores_detached_clones():
    pool = ImagePool(2)
    x = torch.randn(2, 1, 2, 2, requires_grad=True)
    out = pool.query(x)
    assert not out.requires_grad and not pool.images[0].requires_grad
    before = pool.images[0].clone()
    with torch.no_grad():
        x.add_(100.0)
    assert torch.equal(pool.images[0], before)


def test_half_of_queries_swap_with_history():
    torch.manual_seed(1234)
    pool = ImagePool(10)
    pool.query(_images(range(10)))
    from_history = 0
    n = 2000
    for i in range(n):
        new_id = 1000 + i
        stored_before = set(_ids(torch.stack(pool.images)))
        (got,) = _ids(pool.query(_images([new_id])))
        stored_after = set(_ids(torch.stack(pool.images)))
        if got == new_id:
            assert stored_after == stored_before  # not swapped: pool untouched
        else:
            from_history += 1
            assert got in stored_before  # an old image comes back ...
            assert new_id in stored_after and got not in stored_after  # ... and is replaced
    assert 0.46 < from_history / n < 0.54


def test_randomness_comes_from_torch_not_python():
    results = []
    for python_seed in (1, 2):
        random.seed(python_seed)
        torch.manual_seed(7)
        pool = ImagePool(3)
        pool.query(_images([0, 1, 2]))
        results.append(_ids(pool.query(_images(range(10, 40)))))
    assert results[0] == results[1]
    torch.manual_seed(8)
    pool = ImagePool(3)
    pool.query(_images([0, 1, 2]))
    assert _ids(pool.query(_images(range(10, 40)))) != results[0]


def test_state_round_trip_reproduces_queries():
    torch.manual_seed(3)
    pool = ImagePool(5)
    pool.query(_images(range(7)))
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    rng = torch.get_rng_state()
    expected = [_ids(pool.query(_images(range(100 + 10 * k, 110 + 10 * k)))) for k in range(5)]

    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["size"] == 5 and state["images"].shape == (5, 1, 2, 2)
    restored = ImagePool(5)
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    got = [_ids(restored.query(_images(range(100 + 10 * k, 110 + 10 * k)))) for k in range(5)]
    assert got == expected
    assert any(i < 100 for batch in got for i in batch)  # history really was used


def test_empty_state_round_trip():
    buffer = io.BytesIO()
    torch.save(ImagePool(4).state_dict(), buffer)
    buffer.seek(0)
    restored = ImagePool(4)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert len(restored) == 0
    assert _ids(restored.query(_images([5, 6]))) == [5, 6]


def test_smaller_pool_keeps_first_images():
    pool = ImagePool(4)
    pool.query(_images([1, 2, 3, 4]))
    small = ImagePool(2)
    small.load_state_dict(pool.state_dict())
    assert _ids(torch.stack(small.images)) == [1, 2]


def test_shape_change_is_a_clear_error():
    pool = ImagePool(4)
    pool.query(torch.zeros(2, 3, 8, 8))
    with pytest.raises(DataError, match="fixed training image size"):
        pool.query(torch.zeros(2, 3, 16, 16))
