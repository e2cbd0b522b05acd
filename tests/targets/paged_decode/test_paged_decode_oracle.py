"""paged_decode's torch oracle on decode steps worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moefuzz_targets.paged_decode.oracle import attended_positions, paged_decode_torch

NAN = float("nan")


def run_oracle(q, k_cache, v_cache, page_table, cache_seqlens, sliding_window=0, sm_scale=1.0) -> np.ndarray:
    """ref_o [B, Hq, D] of hand-written inputs (nested lists, shapes as in the contract)."""
    inputs = {
        "q": torch.tensor(q, dtype=torch.float32),
        "k_cache": torch.tensor(k_cache, dtype=torch.float32),
        "v_cache": torch.tensor(v_cache, dtype=torch.float32),
        "page_table": torch.tensor(page_table, dtype=torch.int32),
        "cache_seqlens": torch.tensor(cache_seqlens, dtype=torch.int32),
    }
    return paged_decode_torch(inputs, {"sliding_window": sliding_window, "sm_scale": sm_scale})["o"].numpy()


def line_cache(values, page_size: int = 1) -> list:
    """[num_pages, page_size, 1, 1]: page 0 NaN (never attended), then ``values`` in order."""
    flat = [NAN] * page_size + list(values)
    flat += [NAN] * (-len(flat) % page_size)
    return [[[[x]] for x in flat[p : p + page_size]] for p in range(0, len(flat), page_size)]


def test_one_key_outputs_its_value_whatever_the_query():
    # one request, L = 1 at page 2 slot 0; page 1 is another request's, page 0 the reserved one
    k = [[[[NAN, NAN]]], [[[5.0, 5.0]]], [[[0.5, -2.0]]]]
    v = [[[[NAN, NAN]]], [[[9.0, 9.0]]], [[[0.25, -0.75]]]]
    o = run_oracle([[[3.0, -1.0]]], k, v, [[2]], [1], sm_scale=7.0)
    assert o.tolist() == [[[0.25, -0.75]]]


def test_two_keys_mix_their_values_by_the_softmax_of_the_scaled_scores():
    # q . k = 0 and ln 3 (sm_scale 1): weights 1/4 and 3/4
    k = line_cache([0.0, math.log(3.0)])
    o = run_oracle([[[1.0]]], k, line_cache([4.0, 8.0]), [[1, 2]], [2])
    assert o[0, 0, 0] == pytest.approx(0.25 * 4 + 0.75 * 8, rel=1e-6)
    # sm_scale 0.5 halves the scores: weights 1 / (1 + sqrt 3) and sqrt 3 / (1 + sqrt 3)
    o = run_oracle([[[1.0]]], k, line_cache([4.0, 8.0]), [[1, 2]], [2], sm_scale=0.5)
    r = math.sqrt(3.0)
    assert o[0, 0, 0] == pytest.approx((4 + 8 * r) / (1 + r), rel=1e-6)


def test_positions_are_found_through_the_page_table_and_the_slot_in_the_page():
    # page_size 2: positions 0, 1 on page 3; position 2 on page 1 slot 0. Equal keys: o = mean of v.
    k = [[[[NAN]], [[NAN]]], [[[0.0]], [[NAN]]], [[[NAN]], [[NAN]]], [[[0.0]], [[0.0]]]]
    v = [[[[NAN]], [[NAN]]], [[[30.0]], [[NAN]]], [[[NAN]], [[NAN]]], [[[10.0]], [[20.0]]]]
    o = run_oracle([[[1.0]]], k, v, [[3, 1]], [3])
    assert o[0, 0, 0] == pytest.approx(20.0, rel=1e-6)


@pytest.mark.parametrize(
    ("window", "mean"),
    [
        (0, (1 + 2 + 3 + 4 + 5) / 5),  # no window: all 5 positions
        (2, (4 + 5) / 2),  # W < L: the last W, positions 3..4
        (5, (1 + 2 + 3 + 4 + 5) / 5),  # W = L: all of them
        (9, (1 + 2 + 3 + 4 + 5) / 5),  # W > L: all of them
        (1, 5.0),  # W = 1: the query's own position only
    ],
    ids=["no-window", "window-smaller-than-L", "window-equal-to-L", "window-larger-than-L", "window-of-one"],
)
def test_a_window_of_w_attends_the_last_w_positions(window: int, mean: float):
    # equal keys so that every attended position weighs the same: o is the mean of their v
    o = run_oracle([[[1.0]]], line_cache([0.0] * 5), line_cache([1, 2, 3, 4, 5]), [[1, 2, 3, 4, 5]], [5], window)
    assert o[0, 0, 0] == pytest.approx(mean, rel=1e-6)


def test_attended_positions_follow_fa_window_size_w_minus_one_zero():
    # FA: query at i = L - 1 attends [i - window_size[0], i] with window_size[0] = W - 1
    assert attended_positions(9, 4) == range(5, 9)
    assert attended_positions(9, 0) == range(0, 9)
    assert attended_positions(3, 4) == range(0, 3)
    assert attended_positions(0, 4) == range(0, 0)


def test_gqa_q_heads_read_kv_head_h_floordiv_group_size():
    # Hq = 4, Hkv = 2: q heads 0, 1 read kv head 0; 2, 3 read kv head 1. Two keys per kv head.
    # kv head 0: keys 0 and 1 (D=1), values 10, 20; kv head 1: keys 1 and 0, values 30, 40.
    k = [[[[NAN], [NAN]]], [[[0.0], [1.0]]], [[[1.0], [0.0]]]]
    v = [[[[NAN], [NAN]]], [[[10.0], [30.0]]], [[[20.0], [40.0]]]]
    big = 50.0  # q = +50 picks the key 1, q = -50 the key 0 (weights e^-50 elsewhere)
    o = run_oracle([[[big], [-big], [big], [-big]]], k, v, [[1, 2]], [2])
    np.testing.assert_allclose(o[0, :, 0], [20.0, 10.0, 30.0, 40.0], rtol=1e-6)


def test_an_empty_request_outputs_zero_and_reads_no_page():
    # request 0 is empty with a wild page id; request 1 attends its one key
    k = [[[[NAN]]], [[[1.0]]]]
    v = [[[[NAN]]], [[[6.0]]]]
    o = run_oracle([[[1.0]], [[1.0]]], k, v, [[2**31 - 1], [1]], [0, 1])
    assert o.tolist() == [[[0.0]], [[6.0]]]


def test_garbage_past_a_requests_pages_is_never_read():
    # L = 2 on page_size 2: one page (1); the trailing entries are wild or name the NaN page 0
    k = [[[[NAN]], [[NAN]]], [[[0.0]], [[0.0]]]]
    v = [[[[NAN]], [[NAN]]], [[[2.0]], [[4.0]]]]
    o = run_oracle([[[1.0]]], k, v, [[1, -(2**31), 0, 7]], [2])
    assert o[0, 0, 0] == pytest.approx(3.0, rel=1e-6)
