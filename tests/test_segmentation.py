"""Tests of explbench.core.segmentation against slow, obvious reference computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explbench.core.segmentation import (
    Segmentation,
    freq_segments,
    from_spec,
    grid,
    selection_matrix,
    time_segments,
    top_k,
)

SHAPE = (80, 115)  # (mel bands, frames) of the svd excerpt


def assert_partition(seg: Segmentation) -> None:
    m = seg.masks.numpy()
    assert set(np.unique(m)) <= {0.0, 1.0}
    np.testing.assert_array_equal(m.sum(axis=0), np.ones(seg.shape))  # disjoint and covering


def test_protocol_grid_layout():
    seg = grid(SHAPE)
    assert seg.d == 20 and seg.shape == SHAPE and len(seg.names) == 20
    assert_partition(seg)
    m = seg.masks.numpy()
    for t in range(5):
        for f in range(4):
            i = 4 * t + f
            rows, cols = np.nonzero(m[i])
            # 20 bands x 23 frames, frequency fastest, f = 0 the lowest bands
            assert (rows.min(), rows.max()) == (20 * f, 20 * f + 19)
            assert (cols.min(), cols.max()) == (23 * t, 23 * t + 22)
            assert m[i].sum() == 20 * 23
            assert seg.names[i] == f"t{t} f{f}"


def test_labels_map():
    seg = grid(SHAPE)
    lab = seg.labels()
    assert lab.shape == SHAPE
    assert lab[0, 0] == 0 and lab[79, 0] == 3 and lab[0, 114] == 16 and lab[79, 114] == 19
    assert lab[25, 30] == 4 * 1 + 1


def test_compose_matches_per_sample_loop():
    seg = grid(SHAPE)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=SHAPE), dtype=torch.float32)
    b = torch.full(SHAPE, float(x.mean()))
    z = (rng.random((9, seg.d)) < 0.5).astype(np.float32)
    fast = seg.compose(x, z, b)
    assert fast.shape == (9, *SHAPE)
    lab = seg.labels()
    xs, bs = x.numpy(), b.numpy()
    for n in range(z.shape[0]):  # one sample at a time, from the label map
        slow = np.where(z[n][lab] == 1, xs, bs)
        np.testing.assert_allclose(fast[n].numpy(), slow, rtol=0, atol=1e-6)
    # and one sample cell by cell
    xl, bl, ll, z0 = xs.tolist(), bs.tolist(), lab.tolist(), z[0].tolist()
    cells = [[xl[i][j] if z0[ll[i][j]] else bl[i][j] for j in range(SHAPE[1])] for i in range(SHAPE[0])]
    np.testing.assert_allclose(fast[0].numpy(), np.array(cells), rtol=0, atol=1e-6)
    # the all-ones row reproduces x, the all-zeros row the baseline
    ends = seg.compose(x, np.stack([np.ones(seg.d), np.zeros(seg.d)]), b)
    torch.testing.assert_close(ends[0], x)
    torch.testing.assert_close(ends[1], b)


def test_apply_delta_adds_only_on_selected_segments():
    seg = grid(SHAPE)
    x = torch.zeros(SHAPE)
    delta = torch.ones(SHAPE)
    z = np.zeros((1, seg.d), dtype=np.float32)
    z[0, [0, 7]] = 1
    out = seg.apply_delta(x, delta, z)[0].numpy()
    assert out.sum() == 2 * 20 * 23
    assert np.isin(seg.labels()[out == 1], [0, 7]).all()


def test_project_equals_per_segment_sums():
    seg = grid(SHAPE)
    rng = np.random.default_rng(1)
    dense = rng.normal(size=SHAPE)
    lab = seg.labels()
    sums = np.array([dense[lab == i].sum() for i in range(seg.d)])
    np.testing.assert_allclose(seg.project(dense), sums, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(seg.project(dense, reduce="mean"), sums / (20 * 23), rtol=1e-10)
    batch = seg.project(np.stack([dense, 2 * dense]))
    np.testing.assert_allclose(batch, np.stack([sums, 2 * sums]), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(seg.energy(dense), [np.sum(dense[lab == i] ** 2) for i in range(20)])
    with pytest.raises(ValueError, match="mean_pos"):
        seg.project(dense, reduce="max")


def test_project_positive_and_absolute_means_on_uneven_segments():
    seg = grid((37, 50), 3, 2)  # segments of 17 or 16 frames x 18 or 19 bands
    rng = np.random.default_rng(2)
    dense = rng.normal(size=(37, 50))
    lab = seg.labels()
    sizes = np.array([(lab == i).sum() for i in range(seg.d)])
    assert len(set(sizes.tolist())) > 1
    expected = {
        "sum": [dense[lab == i].sum() for i in range(seg.d)],
        "mean": [dense[lab == i].mean() for i in range(seg.d)],
        "mean_pos": [np.maximum(dense[lab == i], 0).mean() for i in range(seg.d)],
        "mean_abs": [np.abs(dense[lab == i]).mean() for i in range(seg.d)],
    }
    for reduce, values in expected.items():
        np.testing.assert_allclose(seg.project(dense, reduce=reduce), values, rtol=1e-12, atol=1e-12)
    # a segment whose relevance cancels: signed means miss it, mean_abs and mean_pos find it
    dense = np.zeros((37, 50))
    cells = np.argwhere(lab == 4)
    dense[tuple(cells[::2].T)] = 1.0
    dense[tuple(cells[1::2].T)] = -1.0
    dense[lab == 1] = 0.01
    assert top_k(seg.project(dense, "mean_abs"), 1)[0] == 4
    assert top_k(seg.project(dense, "mean_pos"), 1)[0] == 4
    assert top_k(seg.project(dense, "mean"), 1)[0] != 4


def test_top_k_breaks_ties_uniformly_with_a_generator():
    w = np.array([0.0, 2.0, 1.0, 1.0, 1.0, -1.0])
    counts = np.zeros(6)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        order = top_k(w, 6, rng)
        assert order[0] == 1 and order[-1] == 5 and order[4] == 0  # untied places never move
        counts[order[1]] += 1
    assert counts[[0, 1, 5]].sum() == 0
    np.testing.assert_allclose(counts[2:5] / 3000, 1 / 3, atol=4 * np.sqrt(2 / 9 / 3000))
    # reproducible under a seed; without one, index order
    a, b = top_k(np.zeros(20), 20, np.random.default_rng(5)), top_k(np.zeros(20), 20, np.random.default_rng(5))
    assert a.tolist() == b.tolist() and a.tolist() != list(range(20))
    assert top_k(np.zeros(20), 20).tolist() == list(range(20))


def test_top_k_order_and_ties():
    w = np.array([0.1, 0.5, 0.5, -1.0, 0.5, 0.2])
    assert top_k(w, 1).tolist() == [1]
    assert top_k(w, 3).tolist() == [1, 2, 4]
    assert top_k(w, 4).tolist() == [1, 2, 4, 5]
    assert top_k(np.zeros(5), 2).tolist() == [0, 1]
    assert top_k(w, len(w)).tolist() == [1, 2, 4, 5, 0, 3]


def test_selection_matrix_is_nested():
    order = np.array([3, 0, 2])
    z = selection_matrix(order, 5)
    np.testing.assert_array_equal(
        z, [[0, 0, 0, 1, 0], [1, 0, 0, 1, 0], [1, 0, 1, 1, 0]]
    )


def test_time_and_freq_segments():
    t = time_segments(SHAPE, 5)
    assert t.d == 5
    assert_partition(t)
    # each time segment spans every band
    assert (t.masks.numpy().sum(axis=2) == 23).all()
    f = freq_segments(SHAPE, 8)
    assert f.d == 8
    assert_partition(f)
    assert (f.masks.numpy().sum(axis=1) == 10).all()
    assert f.masks[0, :10].all() and not f.masks[0, 10:].any()  # f0 lowest bands


@pytest.mark.parametrize(
    "spec, d", [("grid:5x4", 20), ("grid", 20), ("grid:2x3", 6), ("time:10", 10), ("freq:8", 8)]
)
def test_from_spec(spec, d):
    seg = from_spec(spec, SHAPE)
    assert seg.d == d
    assert_partition(seg)


def test_time_major_grid_keeps_segment_meaning():
    band_major = grid(SHAPE)
    time_major = grid(SHAPE[::-1], time_axis=0)  # frames x bands
    assert time_major.shape == (115, 80) and time_major.time_dim == 0 and band_major.time_dim == 1
    assert_partition(time_major)
    for i in range(20):  # segment i is the same block of the same bands and frames
        torch.testing.assert_close(time_major.masks[i], band_major.masks[i].T)
    assert time_major.names == band_major.names
    t = from_spec("time:5", (115, 80), time_axis=0)
    assert set(np.unique(t.masks.numpy().sum(axis=2))) == {0.0, 80.0}  # a time segment spans every band


def test_one_dimensional_domain_takes_time_segments_only():
    seg = from_spec("time:4", (1000,))
    assert seg.shape == (1000,) and seg.d == 4 and seg.time_dim == 0
    assert_partition(seg)
    assert seg.masks[1, 250:500].all() and not seg.masks[1, :250].any()
    assert from_spec("grid:4x1", (1000,)).d == 4
    with pytest.raises(ValueError, match="no frequency axis"):
        from_spec("grid:5x4", (1000,))
    with pytest.raises(ValueError, match="no frequency axis"):
        from_spec("freq:4", (1000,))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        grid((4, 4, 4))


def test_from_spec_uneven_split_still_partitions():
    seg = from_spec("time:7", SHAPE)
    assert_partition(seg)


@pytest.mark.parametrize("spec", ["grid:5by4", "time:x", "bands:4", "grid:0x4", "freq:200"])
def test_bad_spec_raises_naming_valid_forms(spec):
    with pytest.raises(ValueError) as info:
        from_spec(spec, SHAPE)
    message = str(info.value)
    assert spec in message


def test_unknown_kind_lists_valid_forms():
    with pytest.raises(ValueError, match=r"grid:TxF.*time:N.*freq:N"):
        from_spec("bands:4", SHAPE)


@pytest.mark.parametrize("spec", ["grid:5by4", "time:x"])
def test_malformed_argument_names_valid_forms(spec):
    with pytest.raises(ValueError, match=r"grid:TxF.*time:N.*freq:N"):
        from_spec(spec, SHAPE)
