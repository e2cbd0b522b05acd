"""ep_scatter's shrink passes with derive: shrunk cases stay valid (counts re-derived, fp8
scales cut with the hidden columns) and get as small as a failure allows."""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz_targets.ep_scatter import TARGET
from moefuzz_targets.ep_scatter.contract import check
from moefuzz_targets.ep_scatter.strategy import make_case


def shrink(case: Case, fails) -> Case:
    shrinker = Shrinker(case, fails, TARGET.shrink_passes, TARGET.size, check, budget_s=60, derive=TARGET.derive)
    return shrinker.shrink().case


def test_a_failure_that_needs_129_items_of_one_expert_shrinks_with_counts_rederived():
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, 6, size=(400, 4)).astype(np.int32)
    ids[:, 1] = 3  # every token on expert 3: 400+ items
    case = make_case(ids, 6, hidden=300, dtype="fp8", seed=0)

    def fails(candidate: Case) -> bool:
        check(candidate)
        return bool(candidate.arrays["num_recv_tokens_per_expert"].max() > 128)

    shrunk = shrink(case, fails)
    check(shrunk)
    topk = shrunk.arrays["recv_topk"]
    assert 129 <= topk.size and topk.shape[0] < 129  # fewer tokens, slots repeating the expert
    assert shrunk.arrays["num_recv_tokens_per_expert"].max() == 256
    assert shrunk.arrays["recv_x"].shape[1] == 1 and shrunk.arrays["recv_x_scale"].shape[1] == 1


def test_a_failure_that_needs_a_wide_hidden_row_keeps_just_past_the_first_scale_group():
    case = make_case(np.array([[0, -1], [1, 0]], np.int32), 2, hidden=384, dtype="fp8", seed=1)
    shrunk = shrink(case, lambda c: c.arrays["recv_x_scale"].shape[1] >= 2)
    assert shrunk.arrays["recv_x"].shape == (0, 129)
    assert shrunk.arrays["recv_x_scale"].shape == (0, 2)
