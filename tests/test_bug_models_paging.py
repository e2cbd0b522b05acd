"""The paging bug models' ground truth (moefuzz_targets/<target>/bug_models.py) against the kernels.

Every minimum case is legal, triggered, fails on its bug model and passes on the correct kernel
(the stream races pass on the CPU, where the launches run in order); no shrink pass of its target
finds a smaller failing case; near misses of each condition (the data coincidences the
predicates compute) pass; and on cases drawn from the targets' own strategies, ``triggered``
says whether the bug model fails them: both ways where no data can mask the bug, "failed implies
triggered" where the predicate's docstring names a coincidence that can. Runs the kernels on a
GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from benchmarks.bug_models import BugModel, bug_model
from benchmarks.bug_models import paging as models
from benchmarks.bug_models.paging import BUG_MODELS
from moefuzz.engine.generate import CaseSource
from moefuzz.model.case import Case
from moefuzz.model.registry import get_target
from moefuzz.model.target import Limits
from moefuzz.runtime.worker import CaseRunner
from moefuzz.shrinking.shrinker import Shrinker
from moefuzz_targets.alloc_extend.strategy import allocation_case
from moefuzz_targets.page_table.strategy import table_case
from moefuzz_targets.paged_decode.strategy import paged_case

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PAGING_TARGETS = ("alloc_extend", "page_table", "paged_decode", "stream_overlap")
#: Small enough for the interpreter: paged_decode gets B <= 2, Hkv * B <= 4 and 128 tokens.
LIMITS = Limits(max_tokens=512)
#: Cases run per model, at least MIN_EACH of them triggering and MIN_EACH not.
DRAWS = 20
MIN_EACH = 4
#: Models whose bug kernel reads outside every buffer on some cases, and those cases: on a GPU
#: that is an illegal memory access, which ends this process's CUDA context (a campaign's
#: workers survive it; these tests run in-process), so there they are not run.
WILD: dict[str, Callable[[Case], bool]] = {
    "page_table:bug-trailing-entries": lambda case: models.trailing_entry_reads(case)[1] > 0,
    "paged_decode:bug-trailing-pages": models.trailing_pages_wild,
}
#: Models whose ``triggered`` can be masked by data, and the cases where it can be: there only
#: "failed implies triggered" is asserted (each predicate's docstring names the coincidence).
MASKABLE: dict[str, Callable[[Case], bool]] = {**WILD, "paged_decode:bug-window-off-by-one": models.window_triggered}
#: Sizes of the reproducers the fuzzer shrank to (docs/gpu-results.md, docs/gpu-races.md,
#: tests/targets/paged_decode/test_paged_decode_campaign.py); fields the docs leave open at their least legal value,
#: so that each tuple is at most the real reproducer's size.
SHRUNK_AT_LEAST = {
    # one decode request, prefix 1 on page 2 of a 3-page cache, page_size 1
    "alloc_extend:bug-page-past-capacity": (2, 1, 1, 3, 1, 0),
    # one request, seq_len 0, one column, page_size 1, a 1x1 req_to_token
    "page_table:bug-trailing-entries": (1, 0, 1, 0, 1, 0, 1, 1, 1, 0),
    # one window token, page_size 2 or 7, mapping of 2 pages, reads mapping[1] = 0 (SWA page >= 1)
    "page_table:bug-translate-page-ids": (1, 1, 1, 1, 2, 1, 1, 1, 2, 2),
    "paged_decode:bug-window-off-by-one": (1, 1, 1, 2, 1, 1, 3, 2, 1, 1, 0),
    "paged_decode:bug-trailing-pages": (1, 1, 1, 1, 1, 1, 2, 2, 0, 0, 0),
    # 1 batch, 1 page of 1 slot, one forward of 11 spin rounds
    "stream_overlap:bug-missing-wait-forward": (1, 1, 1, 1, 1, 1, 11, 1),
    # 3 batches of 1 page (seed 3)
    "stream_overlap:bug-missing-wait-write": (3, 1, 3, 1, 3, 1, 0, 1),
}

DETERMINISTIC = [model for model in BUG_MODELS if not model.race]


def key(model: BugModel) -> str:
    return model.key


def unsafe_here(model: BugModel, case: Case) -> bool:
    """The bug kernel would read outside every buffer on a GPU (see :data:`WILD`)."""
    return DEVICE == "cuda" and WILD.get(model.key, lambda case: False)(case)


def fails_only_on_the_bug(model: BugModel) -> Callable[[Case], bool]:
    """``case -> bool``: the bug model fails the case and the correct kernel passes it (on a
    GPU, a case the bug kernel would read wild memory on counts as failing if triggered)."""
    bug = CaseRunner(model.target, model.kernel, DEVICE)
    fix = CaseRunner(model.target, get_target(model.target).default_kernel.name, DEVICE)

    def fails(case: Case) -> bool:
        if unsafe_here(model, case):
            return model.triggered(case)
        return bug.run(case).failed and fix.run(case).kind == "pass"

    return fails


def balanced_draws(model: BugModel, seed: int) -> list[Case]:
    """DRAWS cases from the target's strategy, at least MIN_EACH triggering and MIN_EACH not (the
    majority's surplus is skipped, not run)."""
    target = get_target(model.target)
    source = CaseSource(target.strategy(LIMITS), seed=seed)
    kept: dict[bool, list[Case]] = {True: [], False: []}
    for _ in range(40 * DRAWS):
        case = source.draw()
        side = model.triggered(case)
        if len(kept[side]) < DRAWS - MIN_EACH:
            kept[side].append(case)
        if min(len(kept[True]), len(kept[False])) >= MIN_EACH and len(kept[True]) + len(kept[False]) >= DRAWS:
            break
    assert min(len(kept[True]), len(kept[False])) >= MIN_EACH, {side: len(cases) for side, cases in kept.items()}
    return kept[True] + kept[False]


# -- the models and their minimum cases -------------------------------------------------------
def test_every_bug_model_of_the_paging_targets_has_its_ground_truth() -> None:
    kernels = {
        f"{name}:{spec.name}"
        for name in PAGING_TARGETS
        for spec in get_target(name).kernels
        if spec.name.startswith("bug-") and spec.build is None  # CUDA models: benchmarks/cuda_gpu.sh
    }
    assert {model.key for model in BUG_MODELS} == kernels
    assert all(bug_model(model.target, model.kernel) is model for model in BUG_MODELS)
    assert {model.key for model in BUG_MODELS if model.race} == {
        "stream_overlap:bug-missing-wait-forward",
        "stream_overlap:bug-missing-wait-write",
    }


@pytest.mark.parametrize("model", BUG_MODELS, ids=key)
def test_minimum_case_of_every_paging_bug_model_fails_on_it_and_passes_on_the_fix(model: BugModel) -> None:
    target = get_target(model.target)
    case = model.minimum_case
    target.check(case)
    assert model.reached(case) and model.triggered(case)
    assert CaseRunner(model.target, target.default_kernel.name, DEVICE).run(case).kind == "pass"
    if unsafe_here(model, case):
        pytest.skip(f"{model.key}'s minimum case is an illegal memory access on a GPU: not run in-process")
    outcome = CaseRunner(model.target, model.kernel, DEVICE).run(case)
    if model.race:
        assert model.perturb == 8  # what docs/gpu-races.md found both races with
        if DEVICE == "cpu":  # no streams on the CPU: the launches run in order, no race
            assert outcome.kind == "pass", outcome.signature
    else:
        assert outcome.failed, f"{model.key} passes its minimum case"


@pytest.mark.parametrize("model", BUG_MODELS, ids=key)
def test_the_hand_minimum_is_no_larger_than_the_reproducer_the_fuzzer_shrank(model: BugModel) -> None:
    assert get_target(model.target).size(model.minimum_case) <= SHRUNK_AT_LEAST[model.key]


@pytest.mark.parametrize("model", BUG_MODELS, ids=key)
def test_no_shrink_pass_of_the_target_finds_a_smaller_failing_case(model: BugModel) -> None:
    target = get_target(model.target)
    fails = model.triggered if model.race else fails_only_on_the_bug(model)
    shrinker = Shrinker(
        model.minimum_case, fails, target.shrink_passes, target.size, target.check, budget_s=15.0, derive=target.derive
    )
    result = shrinker.shrink()
    assert result.complete
    assert result.size == target.size(model.minimum_case), f"{model.key}: {result.case.describe()}"


def test_the_decode_predicates_walk_the_kernels_blocks_of_positions() -> None:
    from moefuzz_targets.paged_decode.kernels import BLOCK_N

    assert models.DECODE_BLOCK_N == BLOCK_N


# -- near misses: each condition's edge, by hand ------------------------------------------------
def decode_case(page_table, cache_seqlens, *, window=0, num_pages=None, nan_k=(), nan_v=()) -> Case:
    """One head, D = 1, page_size 1: q = 1, k = 0 and v = p + 1 on page p (NaN on the pages
    ``nan_k`` / ``nan_v``), so that every attended key has the same weight."""
    pages = num_pages if num_pages is not None else 1 + max(max(row) for row in page_table)
    k_cache = np.zeros((pages, 1, 1, 1), np.float32)
    v_cache = np.arange(1, pages + 1, dtype=np.float32).reshape(pages, 1, 1, 1)
    k_cache[list(nan_k)] = np.nan
    v_cache[list(nan_v)] = np.nan
    q = np.ones((len(cache_seqlens), 1, 1), np.float32)
    return paged_case(q, k_cache, v_cache, page_table, cache_seqlens, sliding_window=window)


NEAR_MISSES = [
    pytest.param(
        "alloc_extend:bug-page-past-capacity",
        allocation_case(page_size=1, num_pages=3, prefix_lens=[1], seq_lens=[2], last_loc=[1], free_pages=[2]),
        (True, False),
        id="alloc-next-free-page-is-the-page-after-the-prefix",
    ),
    pytest.param(
        "alloc_extend:bug-page-past-capacity",
        allocation_case(page_size=1, num_pages=4, prefix_lens=[1], seq_lens=[3], last_loc=[2], free_pages=[1, 3]),
        (False, False),
        id="alloc-an-extend-of-two-tokens-takes-the-extend-kernel",
    ),
    pytest.param(
        "alloc_extend:bug-page-past-capacity",
        allocation_case(
            page_size=2, num_pages=5, prefix_lens=[1, 2], seq_lens=[2, 3], last_loc=[2, 7], free_pages=[2, 4]
        ),
        (True, True),
        id="alloc-the-second-request-of-a-batch-on-a-page-boundary",
    ),
    pytest.param(
        "page_table:bug-trailing-entries",
        table_case(req_to_token=[[0]], req_pool_indices=[0], seq_lens=[0], page_size=1, num_pages=1, max_pages=1),
        (True, False),
        id="trailing-cell-holds-a-slot-of-page-0",
    ),
    pytest.param(
        "page_table:bug-trailing-entries",
        table_case(req_to_token=[[-1, 0]], req_pool_indices=[0], seq_lens=[0], page_size=2, num_pages=1, max_pages=1),
        (True, False),
        id="trailing-cell--1-truncates-to-page-0",
    ),
    pytest.param(
        "page_table:bug-trailing-entries",
        table_case(
            req_to_token=[[2, 3, 1, 0]],
            req_pool_indices=[0],
            seq_lens=[2],
            page_size=2,
            num_pages=2,
            max_pages=2,
            full_to_swa_index_mapping=[0, 0, 2, 3],
            sliding_window=1,
            swa_num_pages=2,
        ),
        (True, False),
        id="swa-trailing-cell-maps-to-swa-page-0",
    ),
    pytest.param(
        "page_table:bug-trailing-entries",
        table_case(
            req_to_token=[[2, 3, 3, 0]],
            req_pool_indices=[0],
            seq_lens=[2],
            page_size=2,
            num_pages=2,
            max_pages=2,
            full_to_swa_index_mapping=[0, 0, 2, 3],
            sliding_window=1,
            swa_num_pages=2,
        ),
        (True, True),
        id="swa-trailing-cell-maps-to-swa-page-1",
    ),
    pytest.param(
        "page_table:bug-translate-page-ids",
        table_case(
            req_to_token=[[1]],
            req_pool_indices=[0],
            seq_lens=[1],
            page_size=1,
            num_pages=2,
            full_to_swa_index_mapping=[0, 1],
            sliding_window=1,
            swa_num_pages=2,
        ),
        (True, False),
        id="translate-page-size-1",
    ),
    pytest.param(
        "page_table:bug-translate-page-ids",
        table_case(
            req_to_token=[[2]],
            req_pool_indices=[0],
            seq_lens=[1],
            page_size=2,
            num_pages=2,
            full_to_swa_index_mapping=[0, 1, 2, 3],
            sliding_window=1,
            swa_num_pages=2,
        ),
        (True, False),
        id="translate-stale-entry-equals-the-swa-page",
    ),
    pytest.param(
        "paged_decode:bug-window-off-by-one",
        decode_case([[0, 1]], [2], window=2),
        (True, False),
        id="window-as-long-as-the-request",
    ),
    pytest.param(
        "paged_decode:bug-window-off-by-one",
        decode_case([[0, 1, 2]], [3], window=1),
        (True, True),
        id="window-of-1-in-3-positions",
    ),
    pytest.param(
        "paged_decode:bug-trailing-pages",
        decode_case([[1, 0]], [1]),
        (True, False),
        id="garbage-names-a-finite-page",
    ),
    pytest.param(
        "paged_decode:bug-trailing-pages",
        decode_case([[1, 0]], [1], nan_k=[0]),
        (True, False),
        id="garbage-page-has-nan-k-only",
    ),
    pytest.param(
        "paged_decode:bug-trailing-pages",
        decode_case([[1, 0]], [1], nan_v=[0]),
        (True, True),
        id="garbage-page-has-nan-v",
    ),
    pytest.param(
        "paged_decode:bug-trailing-pages",
        decode_case([[0, 1]], [2], window=1, nan_v=[0]),
        (True, True),
        id="nan-v-before-the-window-in-the-first-block",
    ),
    pytest.param(
        "paged_decode:bug-trailing-pages",
        decode_case([[0]], [1], nan_v=[]),
        (False, False),
        id="one-column-no-lane-to-misread",
    ),
]


@pytest.mark.parametrize(("name", "case", "expected"), NEAR_MISSES)
def test_near_misses_of_each_condition_are_reached_and_triggered_as_the_kernel_says(
    name: str, case: Case, expected: tuple[bool, bool]
) -> None:
    model = bug_model(*name.split(":"))
    get_target(model.target).check(case)
    reached, triggered = expected
    assert (model.reached(case), model.triggered(case)) == (reached, triggered)
    assert CaseRunner(model.target, model.kernel, DEVICE).run(case).failed == triggered
    assert CaseRunner(model.target, None, DEVICE).run(case).kind == "pass"


def test_the_stream_races_need_a_copied_page_and_a_page_two_batches_share() -> None:
    def schedule(pages: list[list[int]], num_pages: int = 4) -> Case:
        return models.one_slot_schedule(pages, num_pages)

    forward = bug_model("stream_overlap", "bug-missing-wait-forward")
    write = bug_model("stream_overlap", "bug-missing-wait-write")
    nothing_copied = schedule([[-1], [-1]])
    distinct = schedule([[0, 1], [2, -1], [3, -1]])
    far_apart = schedule([[0, 1], [2, -1], [1, -1]])  # batches 0 and 2 share page 1
    for case in (nothing_copied, distinct, far_apart):
        get_target("stream_overlap").check(case)
    assert (forward.triggered(nothing_copied), forward.triggered(distinct)) == (False, True)
    assert (write.reached(distinct), write.triggered(distinct), write.triggered(far_apart)) == (True, False, True)
    assert not write.reached(schedule([[0, 1]]))


# -- drawn cases --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", DETERMINISTIC, ids=key)
def test_triggered_says_whether_the_bug_model_fails_a_drawn_case(model: BugModel) -> None:
    runner = CaseRunner(model.target, model.kernel, DEVICE)
    maskable = MASKABLE.get(model.key, lambda case: False)
    failed_when_triggered = 0
    for case in balanced_draws(model, seed=1):
        if unsafe_here(model, case):
            continue
        triggered, failed = model.triggered(case), runner.run(case).failed
        assert model.reached(case) or not triggered, case.describe()
        failed_when_triggered += triggered and failed
        if maskable(case):
            assert triggered or not failed, f"{model.key} failed an untriggered case: {case.describe()}"
        else:
            assert failed == triggered, f"{model.key}: triggered={triggered}, failed={failed}: {case.describe()}"
    assert failed_when_triggered >= MIN_EACH


@pytest.mark.parametrize("model", [m for m in BUG_MODELS if m.race], ids=key)
def test_a_drawn_schedule_that_triggers_a_race_reaches_its_missing_fence(model: BugModel) -> None:
    source = CaseSource(get_target(model.target).strategy(LIMITS), seed=2)
    seen = {True: 0, False: 0}
    for _ in range(60):
        case = source.draw()
        seen[model.triggered(case)] += 1
        assert model.reached(case) or not model.triggered(case), case.describe()
    assert seen[True] >= 1
