"""Training frames: the pairs drawn each epoch and the shards of distributed training."""
from __future__ import annotations

import numpy as np

from thyroid_studio.engine.training.frameset import epoch_pairs, shard


def test_pairs_are_redrawn_each_epoch_and_reproducible():
    order0, glands0 = epoch_pairs(50, 400, epoch=0, seed=3)
    order1, glands1 = epoch_pairs(50, 400, epoch=1, seed=3)
    assert sorted(order0) == list(range(50)) and len(glands0) == 50
    assert not np.array_equal(glands0, glands1), "gland partners must be re-drawn each epoch"
    again = epoch_pairs(50, 400, epoch=0, seed=3)
    assert np.array_equal(again[0], order0) and np.array_equal(again[1], glands0)


def test_shards_cover_every_pair_like_distributed_sampler():
    indices = np.arange(11)
    parts = [shard(indices, rank, 3) for rank in range(3)]
    assert len({len(p) for p in parts}) == 1
    assert set(np.concatenate(parts)) == set(indices.tolist())
