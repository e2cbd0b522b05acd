"""alloc_extend's shrink passes keep cases valid and the untouched requests' slots unchanged, and
reach the smallest case of a failure, with pure predicates (no worker, no kernel)."""

from __future__ import annotations

import numpy as np
import torch

from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.alloc_extend import contract, shrink
from moefuzz_targets.alloc_extend.oracle import alloc_extend_torch
from moefuzz_targets.alloc_extend.strategy import allocation_case, to_case


def slots(case: Case) -> list[list[int]]:
    """The oracle's new slots, per request."""
    inputs = {name: torch.from_numpy(array) for name, array in case.arrays.items()}
    out = alloc_extend_torch(inputs, case.params)["out_indices"].tolist()
    extend = (case.arrays["seq_lens"] - case.arrays["prefix_lens"]).tolist()
    ends = np.cumsum([0, *extend])
    return [out[ends[i] : ends[i + 1]] for i in range(len(extend))]


def run_pass(case: Case, run, fails=lambda case: True) -> Case:
    """``case`` after one run of a pass whose candidates are all accepted when ``fails``."""
    shrinker = Shrinker(case, fails, [], shrink.size, contract.check, budget_s=30)
    run(shrinker)
    return shrinker.current


CASE = to_case(
    build_paged_kv_state(
        page_size=8,
        prefix_lens=[17, 0, 8, 40],
        seq_lens=[30, 9, 8, 41],
        spare_pages=3,
        other_pages=2,
        pool_gaps=1,
        extra_context=0,
        free_order="shuffled",
        garbage="stale",
        window="none",
        seed=11,
    )
)


def test_size_orders_by_tokens_then_batch_page_size_and_cache():
    assert shrink.size(CASE)[:5] == (88, 4, 8, CASE.params["num_pages"], CASE.params["num_free"])


def test_dropping_a_request_keeps_the_others_slots():
    def keeps_the_last_request(case: Case) -> bool:
        return case.arrays["seq_lens"].shape[0] >= 1 and case.arrays["seq_lens"][-1] == 41

    shrunk = run_pass(CASE, shrink.drop_requests, keeps_the_last_request)
    contract.check(shrunk)
    assert shrunk.arrays["seq_lens"].tolist() == [41]
    assert slots(shrunk) == slots(CASE)[3:]
    assert shrunk.params["num_free"] == CASE.params["num_free"] - sum(contract.new_pages(CASE)[:3])


def test_dropping_prefix_pages_and_shortening_extends_keep_the_last_page():
    first_slot = slots(CASE)[0][0]  # request 0 finishes its last prefix page first

    def keeps(case: Case) -> bool:
        return case.arrays["seq_lens"].shape[0] == 4 and slots(case)[0][:1] == [first_slot]

    shrunk = run_pass(run_pass(CASE, shrink.drop_prefix_pages, keeps), shrink.shorten_extends, keeps)
    contract.check(shrunk)
    assert shrunk.arrays["prefix_lens"][0] == 1 and shrunk.arrays["seq_lens"][0] == 2  # 17 = 2 pages + 1
    assert shrunk.arrays["last_loc"][0] == CASE.arrays["last_loc"][0]
    assert shrunk.params["num_free"] < CASE.params["num_free"]  # pages no longer needed were given back


def test_lowering_the_page_size_keeps_every_request_on_its_pages():
    lowered = shrink._with_page_size(CASE, 3)
    contract.check(lowered)
    assert lowered.arrays["prefix_lens"].tolist() == [2 * 3 + 1, 0, 3, 15]
    assert (contract.new_pages(lowered) == contract.new_pages(CASE)).all()
    assert (lowered.arrays["last_loc"] // 3 == CASE.arrays["last_loc"] // 8).all()
    to_one = shrink._with_page_size(CASE, 1)
    contract.check(to_one)
    assert to_one.arrays["seq_lens"].tolist() == [4, 2, 1, 6]  # ceil(L / 8)


def test_compacting_pages_gives_the_least_cache_the_contract_allows():
    compact = run_pass(CASE, shrink.compact_pages)
    contract.check(compact)
    named = np.unique(contract.last_pages(compact)[compact.arrays["prefix_lens"] > 0]).size
    assert compact.params["num_pages"] == 1 + compact.params["num_free"] + max(named, 5)  # 40 tokens: 5 pages
    assert shrink.size(compact) < shrink.size(CASE)


def test_a_full_last_page_at_the_end_of_the_cache_shrinks_to_one_token_on_page_size_one():
    def last_page_is_final_and_full(case: Case) -> bool:
        size, pages = case.params["page_size"], case.params["num_pages"]
        prefix, seq = case.arrays["prefix_lens"], case.arrays["seq_lens"]
        hits = (prefix > 0) & (prefix % size == 0) & (seq > prefix) & (contract.last_pages(case) == pages - 1)
        return bool(hits.any())

    start = allocation_case(
        page_size=4,
        num_pages=12,
        prefix_lens=[8, 5, 12],
        seq_lens=[13, 6, 14],
        last_loc=[27, 16, 47],
        free_pages=[9, 2, 1, 8, 10, 3],
    )
    assert last_page_is_final_and_full(start)
    result = Shrinker(start, last_page_is_final_and_full, shrink.PASSES, shrink.size, contract.check, 30).shrink()
    case = result.case
    assert result.complete
    assert (case.params["page_size"], case.params["num_pages"], case.params["num_free"]) == (1, 3, 1)
    assert case.arrays["prefix_lens"].tolist() == [1] and case.arrays["seq_lens"].tolist() == [2]
    assert case.arrays["last_loc"].tolist() == [2] and contract.valid_free_pages(case).tolist() == [1]
