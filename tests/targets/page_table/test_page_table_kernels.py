"""moefuzz's Triton page table against the torch oracle, and its two bug models.

Runs on a GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.execute.launch import INT_POISON, LaunchContext
from moefuzz.model.case import Case
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.page_table import contract
from moefuzz_targets.page_table.kernels import (
    BLOCK_BATCH,
    BLOCK_PAGES,
    page_table_bug_trailing_entries,
    page_table_bug_translate_page_ids,
    page_table_triton,
)
from moefuzz_targets.page_table.oracle import page_table_torch
from moefuzz_targets.page_table.strategy import table_case, to_case
from tests.targets.page_table.test_page_table_oracle import FULL, swa_case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def mismatch_of(kernel: Callable[[LaunchContext], None], case: Case, **config: int):
    return contract.compare(case, run_kernel(kernel, case, **config), oracle_outputs(page_table_torch, case))


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> None:
    mismatch = mismatch_of(kernel, case, **config)
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


def state_case(seed: int, width: str = "context", **structure) -> Case:
    """A case from the engine's paged KV builder (stale garbage, a shuffled free list)."""
    fields = dict(
        page_size=16,
        prefix_lens=[0, 20, 33, 5],
        seq_lens=[0, 47, 48, 6],
        spare_pages=3,
        other_pages=2,
        pool_gaps=2,
        extra_context=17,
        free_order="shuffled",
        garbage="stale",
        window="none",
        seed=seed,
    )
    fields.update(structure)
    return to_case(build_paged_kv_state(**fields), width)


CASES = {
    "hand-worked-boundaries-and-an-empty-request": FULL,
    "hand-worked-swa-window-across-a-boundary": swa_case(3),
    "hand-worked-swa-window-above-a-page": swa_case(7),
    "hand-worked-swa-empty-request": swa_case(4, seq_len=0),
    "empty-batch": table_case(
        req_to_token=np.zeros((2, 3)), req_pool_indices=[], seq_lens=[], page_size=4, num_pages=2
    ),
    "requests-without-tokens-and-no-table-column": table_case(
        req_to_token=np.zeros((2, 0)), req_pool_indices=[1, 0], seq_lens=[0, 0], page_size=16, num_pages=1
    ),
    "wild-garbage-past-seq-len": state_case(0, garbage="wild"),
    "zeros-garbage-eager-width": state_case(1, width="batch_max", garbage="zeros"),
    "page-size-1-long-request-across-table-blocks": state_case(
        2, page_size=1, prefix_lens=[600, 3], seq_lens=[BLOCK_PAGES * 2 + 91, 9], extra_context=40
    ),
    "odd-page-size-swa-random-window": state_case(3, page_size=7, window="random"),
    "page-size-256-swa-one-page-window": state_case(4, page_size=256, window="one_page", seq_lens=[0, 300, 513, 256]),
    "more-requests-than-one-indptr-block": state_case(
        5, page_size=3, prefix_lens=[0] * (BLOCK_BATCH + 5), seq_lens=[i % 11 for i in range(BLOCK_BATCH + 5)]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    assert_equals_oracle(page_table_triton, CASES[name])


@pytest.mark.parametrize("num_warps", [1, 8])
def test_the_kernel_honours_num_warps(num_warps: int):
    assert_equals_oracle(page_table_triton, state_case(6, window="below_page"), num_warps=num_warps)


@pytest.mark.parametrize("seed", range(6))
def test_triton_kernel_equals_the_oracle_on_seeded_states(seed: int):
    rng = np.random.default_rng(3000 + seed)
    page_size = int(rng.choice([1, 3, 16, 33, 64, 100]))
    batch = int(rng.integers(1, 9))
    seq_lens = rng.integers(0, 6 * page_size + 2, size=batch)
    case = state_case(
        seed,
        width=str(rng.choice(["batch_max", "one_more", "context"])),
        page_size=page_size,
        prefix_lens=(seq_lens // 2).tolist(),
        seq_lens=seq_lens.tolist(),
        garbage=str(rng.choice(["stale", "wild", "zeros"])),
        window=str(rng.choice(["none", "below_page", "one_page", "above_page", "random"])),
        extra_context=int(rng.choice([0, 1, page_size])),
    )
    assert_equals_oracle(page_table_triton, case)


def test_the_kernel_writes_each_flat_index_once_and_nothing_past_the_table():
    case = CASES["odd-page-size-swa-random-window"]
    tri = run_kernel(page_table_triton, case)
    first, num = contract.table_spans(case)
    assert (np.diff(tri["kv_indptr"]) == num - first).all()
    table = tri["page_table"]
    rows = [table[i, first[i] : num[i]] for i in range(table.shape[0])]
    np.testing.assert_array_equal(tri["kv_indices"], np.concatenate(rows))
    assert (tri["kv_indices"] != INT_POISON).all()


def test_bug_trailing_entries_stores_the_garbage_page_past_seq_len():
    tri = run_kernel(page_table_bug_trailing_entries, FULL)
    # request 2 (row 0, seq_len 7): page 2 reads req_to_token[0, 8] = 99 -> page 24; request 3's
    # row holds -1 and 2**31 - 1 in its first two columns.
    assert tri["page_table"][2].tolist() == [6, 4, 24]
    assert tri["page_table"][3, 0] in (-1, 0)  # -1 // 4: floor (-1) or C-style truncation (0)
    assert tri["page_table"][3, 1] == 24  # column 4: 99 // 4
    mismatch = mismatch_of(page_table_bug_trailing_entries, FULL)
    assert (mismatch.output, mismatch.index) == ("page_table", 2)  # request 0 page 2: 99 // 4 = 24
    assert contract.explain(FULL, mismatch).startswith("request 0 page 2: tri=24 ref=0 (past seq_len=8")
    np.testing.assert_array_equal(tri["kv_indices"], oracle_outputs(page_table_torch, FULL)["kv_indices"])


def test_bug_trailing_entries_translates_stale_cells_on_a_sliding_window_layer():
    mismatch = mismatch_of(page_table_bug_trailing_entries, swa_case(4, seq_len=5))  # page 2 holds garbage 28
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("page_table", 2, 2, 0)


def test_bug_trailing_entries_is_correct_when_every_request_fills_the_table():
    case = table_case(
        req_to_token=[[20, 21, 22, 23, 8, 9, 99], [4, 5, 6, 7, 12, 99, 99]],
        req_pool_indices=[0, 1],
        seq_lens=[6, 5],
        page_size=4,
        num_pages=8,
    )
    assert_equals_oracle(page_table_bug_trailing_entries, case)


def test_bug_translate_page_ids_reads_the_mapping_at_the_page_id():
    case = swa_case(1)
    tri = run_kernel(page_table_bug_translate_page_ids, case)
    assert tri["page_table"].tolist() == [[0, 0, 13]]  # mapping[28 // 4] = 13, where mapping[28] // 4 = 2
    mismatch = mismatch_of(page_table_bug_translate_page_ids, case)
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("page_table", 2, 13, 2)
    assert "tri page 13 is outside the SWA pool's 4 pages" in contract.explain(case, mismatch)


@pytest.mark.parametrize("window", ["below_page", "above_page", "random"])
def test_bug_translate_page_ids_is_correct_at_page_size_one(window: str):
    assert_equals_oracle(page_table_bug_translate_page_ids, state_case(7, page_size=1, window=window))


def test_bug_translate_page_ids_is_correct_on_a_full_attention_layer():
    assert_equals_oracle(page_table_bug_translate_page_ids, state_case(8, page_size=64))
