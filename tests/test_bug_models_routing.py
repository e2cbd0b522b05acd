"""The routing bug models' ground truth (moefuzz_targets/<target>/bug_models.py) against the kernels.

Every minimum case fails on its bug model and passes on the correct kernel; no shrink pass of its
target finds a smaller triggering case; the predicates agree with the bug kernels on cases drawn
from the targets' own strategies (mutated so that both outcomes appear). Runs the kernels on a
GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.bug_models import BugModel, bug_model
from benchmarks.bug_models.routing import BUG_MODELS
from moefuzz.engine.generate import CaseSource
from moefuzz.model.case import Case
from moefuzz.model.registry import get_target
from moefuzz.model.target import Limits
from moefuzz.runtime.worker import CaseRunner
from moefuzz.shrinking.shrinker import Shrinker
from moefuzz.store.corpus import iter_finding_paths, load_finding
from moefuzz_targets.ep_scatter.strategy import make_case as make_scatter_case

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ROUTING_TARGETS = ("three_step_sort", "moe_align_block_size", "moe_permute", "ep_gather", "ep_scatter")
CORPUS = Path(__file__).resolve().parent.parent / "corpus"
#: Small enough for the interpreter; T up to 300 so three_step_sort's path past 256 is drawn.
LIMITS = Limits(max_tokens=300, max_topk=4, max_experts=16)
DRAWS = 24
#: Models whose ``triggered`` is exact one way only (its docstring says which coincidence masks
#: the bug): a failing case triggers it, a triggering case may pass.
ONE_WAY = {"ep_gather:bug-minus-one-slot"}

DETERMINISTIC = [model for model in BUG_MODELS if not model.race]


def key(model: BugModel) -> str:
    return model.key


# -- mutations: force the bug's condition on some drawn cases, take it away on others -----------
def mutate_three_step_sort(case: Case, step: int, rng: np.random.Generator) -> Case:
    """Step % 4: 0 tiles the table past 256 tokens (the three-step path) and repeats a local
    expert in one token's first two slots (adding a slot or a local expert where there is none);
    1 tiles it and makes every slot after the first a distinct non-local id (no repeat left); 2
    repeats a local expert in a table of exactly 256 tokens (the fused path, correct); 3 keeps
    the drawn table."""
    ids = case.arrays["token_selected_experts"].copy()
    num_experts = int(case.params["num_experts"])
    start, end = int(case.params["start_expert"]), int(case.params["end_expert"])
    mode = step % 4
    if mode in (0, 1) and 0 < ids.shape[0] <= 256:
        ids = np.resize(ids, (257 + int(rng.integers(0, 40)), ids.shape[1])).astype(np.int32)
    if mode == 2 and ids.shape[0]:
        ids = np.resize(ids, (256, ids.shape[1])).astype(np.int32)
    if mode in (0, 2) and ids.shape[0] and num_experts:
        if ids.shape[1] < 2:
            ids = np.concatenate([ids, ids], axis=1)
        if end == start:
            start, end = (start, start + 1) if start < num_experts else (start - 1, start)
        ids[int(rng.integers(ids.shape[0])), :2] = start
    elif mode == 1:
        ids[:, 1:] = -2 - np.arange(ids.shape[1] - 1)
    return case.replace({"token_selected_experts": ids}, start_expert=start, end_expert=end)


def mutate_moe_align_block_size(case: Case, step: int, rng: np.random.Generator) -> Case:
    """Step % 4: 0 puts a -1 at a random slot; 1 turns every -1 into the skipped id E; 2 puts a
    -1 and maps the last expert E-1 to another rank (experts 0..E-2 local, in order); 3 keeps
    the drawn case."""
    ids = case.arrays["topk_ids"].copy()
    num_experts = int(case.params["num_experts"])
    arrays = dict(case.arrays)
    mode = step % 4
    if mode in (0, 2) and ids.size:
        ids.flat[int(rng.integers(ids.size))] = -1
    elif mode == 1:
        ids[ids == -1] = num_experts
    if mode == 2:
        arrays["expert_map"] = np.append(np.arange(num_experts - 1), -1).astype(np.int32)
    arrays["topk_ids"] = ids
    return Case(arrays, case.params)


def mutate_moe_permute(case: Case, step: int, rng: np.random.Generator) -> Case:
    """Step % 3: 0 sets one slot of a real token to -1, 1 makes the padding (and every negative
    id) the out-of-range sentinel E."""
    ids = case.arrays["topk_ids"].copy()
    sentinel = int(case.params["sentinel"])
    num_experts = int(case.params["num_experts"])
    if step % 3 == 0:
        real = np.flatnonzero(~(ids == sentinel).all(axis=1))
        if real.size:
            ids[int(rng.choice(real)), 0] = -1
    elif step % 3 == 1:
        ids[(ids < 0) | (ids == sentinel)] = num_experts
        sentinel = num_experts
    return case.replace({"topk_ids": ids}, sentinel=sentinel)


def mutate_ep_gather(case: Case, step: int, rng: np.random.Generator) -> Case:
    """Step % 3: 0 makes one slot -1 with weight 1 reading row 0 = ones (a stale row), 1 points
    every -1 slot's input_index at -1 (nothing to read)."""
    arrays = {name: array.copy() for name, array in case.arrays.items()}
    topk, index = arrays["recv_topk"], arrays["input_index"]
    if step % 3 == 0 and topk.size and arrays["input_tensor"].shape[0]:
        slot = int(rng.integers(topk.size))
        topk.flat[slot], index.flat[slot], arrays["recv_topk_weight"].flat[slot] = -1, 0, 1.0
        arrays["input_tensor"][0] = 1.0
    elif step % 3 == 1:
        index[topk == -1] = -1
    return case.replace(arrays)


def mutate_ep_scatter(case: Case, step: int, rng: np.random.Generator) -> Case:
    """Step % 4: 0 widens the rank to 513 + step local experts (the drawn items kept, one on
    expert 0 added where there is none): past the 512 of bug-wide-local-experts' prefix; 2 widens
    it with every slot -1 (reached, not triggered); 1 and 3 keep the drawn case."""
    if step % 2:
        return case
    ids = case.arrays["recv_topk"].copy()
    if step % 4 == 2:
        ids[:] = -1
    elif not (ids >= 0).any():
        ids = np.zeros((1, 1), dtype=np.int32)
    return make_scatter_case(ids, 513 + step, case.arrays["recv_x"].shape[1], str(case.params["dtype"]), step)


MUTATIONS: dict[str, Callable[[Case, int, np.random.Generator], Case]] = {
    "three_step_sort": mutate_three_step_sort,
    "moe_align_block_size": mutate_moe_align_block_size,
    "moe_permute": mutate_moe_permute,
    "ep_gather": mutate_ep_gather,
    "ep_scatter": mutate_ep_scatter,
}


# -- tests ----------------------------------------------------------------------------------------
def test_every_bug_model_of_the_routing_targets_has_its_ground_truth() -> None:
    kernels = {
        f"{name}:{spec.name}"
        for name in ROUTING_TARGETS
        for spec in get_target(name).kernels
        if spec.name.startswith("bug-") and spec.build is None  # CUDA models: benchmarks/cuda_gpu.sh
    }
    assert {model.key for model in BUG_MODELS} == kernels
    assert all(bug_model(model.target, model.kernel) is model for model in BUG_MODELS)


@pytest.mark.parametrize("model", BUG_MODELS, ids=key)
def test_minimum_case_of_every_routing_bug_model_fails_on_it_and_passes_on_the_fix(model: BugModel) -> None:
    target = get_target(model.target)
    case = model.minimum_case
    target.check(case)
    assert model.reached(case) and model.triggered(case)
    assert CaseRunner(model.target, target.default_kernel.name, DEVICE).run(case).kind == "pass"
    outcome = CaseRunner(model.target, model.kernel, DEVICE).run(case)
    if model.race:
        assert model.perturb > 1
        if DEVICE == "cpu":  # the interpreter runs a program's operations in order: no race
            assert outcome.kind == "pass", outcome.signature
    else:
        assert outcome.failed, f"{model.key} passes its minimum case"


@pytest.mark.parametrize("model", BUG_MODELS, ids=key)
def test_no_shrink_pass_of_the_target_finds_a_smaller_case_that_triggers_the_bug(model: BugModel) -> None:
    target = get_target(model.target)
    shrinker = Shrinker(
        model.minimum_case,
        model.triggered,
        target.shrink_passes,
        target.size,
        target.check,
        budget_s=20.0,
        derive=target.derive,
    )
    result = shrinker.shrink()
    assert result.complete
    assert result.size == target.size(model.minimum_case), f"{model.key}: {result.case.describe()}"


@pytest.mark.parametrize(
    "path", sorted(iter_finding_paths([CORPUS])), ids=lambda path: f"{path.parent.name}/{path.name}"
)
def test_the_hand_minimum_is_no_larger_than_the_reproducer_the_fuzzer_shrank(path: Path) -> None:
    finding = load_finding(path)
    if finding.target not in ROUTING_TARGETS:
        pytest.skip(f"{finding.target} is not a routing target")
    model = bug_model(finding.target, finding.kernel)
    size = get_target(finding.target).size
    assert model.triggered(finding.case)
    assert size(model.minimum_case) <= size(finding.case)


@pytest.mark.parametrize("model", DETERMINISTIC, ids=key)
def test_triggered_says_whether_the_bug_model_fails_a_drawn_case(model: BugModel) -> None:
    target = get_target(model.target)
    source = CaseSource(target.strategy(LIMITS), seed=1)
    runner = CaseRunner(model.target, model.kernel, DEVICE)
    rng = np.random.default_rng(0)
    seen = {True: 0, False: 0}
    failed_when_triggered = 0
    for step in range(DRAWS):
        case = target.derive(MUTATIONS[model.target](source.draw(), step, rng))
        target.check(case)
        triggered, failed = model.triggered(case), runner.run(case).failed
        assert model.reached(case) or not triggered, case.describe()
        seen[triggered] += 1
        failed_when_triggered += triggered and failed
        if model.key in ONE_WAY:
            assert triggered or not failed, f"{model.key} failed an untriggered case: {case.describe()}"
        else:
            assert failed == triggered, f"{model.key}: triggered={triggered}, failed={failed}: {case.describe()}"
    assert seen[True] >= 3 and seen[False] >= 3, seen
    assert failed_when_triggered >= 3
