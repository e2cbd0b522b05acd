"""moefuzz's Triton paged decode against the torch oracle, and its two bug models.

Runs on a GPU when there is one, else under the Triton interpreter (tests/conftest.py). The
trailing-pages bug model is only ever run here on garbage that names a page of the cache (page 0,
NaN): wild ids would crash this process, which is the campaign's job to survive.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from moefuzz.engine.generate import CaseSource
from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.execute.launch import LaunchContext
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.paged_decode import contract
from moefuzz_targets.paged_decode.kernels import (
    paged_decode_bug_trailing_pages,
    paged_decode_bug_window_off_by_one,
    paged_decode_triton,
)
from moefuzz_targets.paged_decode.oracle import paged_decode_torch
from moefuzz_targets.paged_decode.strategy import cases, decode_case, paged_case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def mismatch_of(kernel: Callable[[LaunchContext], None], case: Case, **config: int):
    return contract.compare(case, run_kernel(kernel, case, **config), oracle_outputs(paged_decode_torch, case))


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> None:
    mismatch = mismatch_of(kernel, case, **config)
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


def state_case(
    seq_lens,
    page_size=16,
    *,
    prefix_lens=None,
    garbage="wild",
    window="none",
    heads=(2, 2),
    head_dim=32,
    extra=1,
    seed=0,
) -> Case:
    """A case from the engine's paged KV builder: shuffled free pages, spare and foreign pages."""
    state = build_paged_kv_state(
        page_size=page_size,
        prefix_lens=prefix_lens if prefix_lens is not None else [max(0, n - 1) for n in seq_lens],
        seq_lens=seq_lens,
        spare_pages=3,
        other_pages=2,
        pool_gaps=1,
        extra_context=0,
        free_order="shuffled",
        garbage=garbage,
        window=window,
        seed=seed,
    )
    return decode_case(state, heads[0], heads[1], head_dim, extra, seed + 1)


CASES = {
    "decode-step-mixed-lengths-wild-garbage": state_case([9, 0, 33, 1, 64]),
    "page-size-one-zeros-garbage": state_case([5, 70], page_size=1, garbage="zeros", extra=2),
    "odd-page-size-stale-garbage-mha": state_case([40, 7], page_size=7, garbage="stale", heads=(4, 1)),
    "page-size-256-one-long-request": state_case([300, 2], page_size=256, heads=(1, 8), head_dim=16),
    "window-below-a-page": state_case([20, 3, 17], page_size=16, window="below_page", seed=3),
    "window-above-a-page": state_case([50, 9], page_size=7, window="above_page", seed=4),
    "head-dim-80-gqa-4": state_case([30, 31], page_size=16, heads=(2, 4), head_dim=80),
    "head-dim-1": state_case([12], page_size=3, head_dim=1),
    "group-of-32-spans-two-programs": state_case([10, 3], heads=(1, 32), head_dim=16),
    "every-request-empty": state_case([0, 0], garbage="wild", extra=2),
    "no-request": state_case([]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    assert_equals_oracle(paged_decode_triton, CASES[name])


@pytest.mark.parametrize("window", [1, 2, 9, 64, 65, 200])
def test_triton_kernel_honours_any_window_across_blocks_and_pages(window: int):
    assert_equals_oracle(
        paged_decode_triton, CASES["decode-step-mixed-lengths-wild-garbage"].replace(sliding_window=window)
    )


def test_triton_kernel_equals_the_oracle_at_num_warps_1_and_8():
    case = CASES["head-dim-80-gqa-4"].replace(sliding_window=5)
    assert_equals_oracle(paged_decode_triton, case, num_warps=1)
    assert_equals_oracle(paged_decode_triton, case, num_warps=8)


def test_triton_kernel_equals_the_oracle_on_strategy_examples():
    source = CaseSource(cases(INTERPRETER_LIMITS), seed=11)
    for _ in range(8):
        assert_equals_oracle(paged_decode_triton, source.draw())


def test_the_correct_kernel_never_reads_garbage_even_when_every_spare_column_is_wild():
    case = CASES["decode-step-mixed-lengths-wild-garbage"]
    table = case.arrays["page_table"].copy()
    used = contract.pages_used(case.arrays["cache_seqlens"], 16)
    trailing = np.arange(table.shape[1])[None, :] >= used[:, None]
    table[trailing] = np.where(np.arange(int(trailing.sum())) % 2, 2**31 - 1, -(2**31))
    assert_equals_oracle(paged_decode_triton, case.replace({"page_table": table}))


def test_bug_window_off_by_one_attends_one_position_too_many():
    # L = 3 positions with values 0, 3, 6 (equal keys): W = 2 means mean(3, 6) = 4.5;
    # the bug also attends position 0: mean(0, 3, 6) = 3
    k = [[[[np.nan]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]]
    v = [[[[np.nan]]], [[[0.0]]], [[[3.0]]], [[[6.0]]]]
    case = paged_case([[[1.0]]], k, v, [[1, 2, 3]], [3], sliding_window=2)
    assert run_kernel(paged_decode_triton, case)["o"][0, 0, 0] == pytest.approx(4.5)
    assert run_kernel(paged_decode_bug_window_off_by_one, case)["o"][0, 0, 0] == pytest.approx(3.0)


@pytest.mark.parametrize("window", [0, 64, 65, 500])
def test_bug_window_off_by_one_is_correct_without_a_window_shorter_than_every_request(window: int):
    assert_equals_oracle(
        paged_decode_bug_window_off_by_one,
        CASES["decode-step-mixed-lengths-wild-garbage"].replace(sliding_window=window),
    )


def test_bug_window_off_by_one_diverges_on_a_window_shorter_than_a_request():
    mismatch = mismatch_of(paged_decode_bug_window_off_by_one, CASES["window-below-a-page"])
    assert mismatch is not None and "is the first outside it" in contract.explain(
        CASES["window-below-a-page"], mismatch
    )


def test_bug_trailing_pages_reads_the_nan_page_a_zero_garbage_entry_names():
    # page_size 3, L = 2: the block of positions reaches column 1, garbage 0 (NaN page). Slot 2
    # of page 1 (past L, the bug reads it too) holds a stale finite value, as drawn cases do.
    k = [[[[np.nan]]] * 3, [[[0.5]], [[0.25]], [[9.0]]]]
    v = [[[[np.nan]]] * 3, [[[1.0]], [[2.0]], [[9.0]]]]
    case = paged_case([[[1.0]]], k, v, [[1, 0]], [2])
    assert_equals_oracle(paged_decode_triton, case)
    tri = run_kernel(paged_decode_bug_trailing_pages, case)
    assert np.isnan(tri["o"]).all()
    # without the garbage column the bug has nothing to read: correct
    assert_equals_oracle(paged_decode_bug_trailing_pages, case.replace({"page_table": np.array([[1]], np.int32)}))


def test_bug_trailing_pages_is_correct_when_blocks_end_on_page_boundaries():
    # page_size 64 = BLOCK_N: a block never reaches past the request's last page
    case = state_case([9, 64, 100], page_size=64, garbage="zeros", extra=2)
    assert_equals_oracle(paged_decode_bug_trailing_pages, case)
