"""The committed corpus is replayed in CI: every reproducer still fails on the bug model it was
found on, with the same signature, and passes on its target's correct kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from moefuzz.model.registry import get_target
from moefuzz.store.corpus import iter_finding_paths, load_finding
from moefuzz.store.replay import replay_findings

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
PATHS = sorted(iter_finding_paths([CORPUS]))


def test_the_committed_corpus_holds_a_reproducer_of_every_routing_bug_found_on_a_gpu() -> None:
    found_on = {load_finding(path).target for path in PATHS}
    assert {"three_step_sort", "moe_align_block_size", "moe_permute", "ep_gather"} <= found_on


@pytest.mark.parametrize("path", PATHS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_committed_reproducer_fails_on_its_bug_model_and_passes_on_the_correct_kernel(path: Path) -> None:
    finding = load_finding(path)
    (buggy,) = replay_findings([path], device="cpu")
    assert buggy.outcome.signature == finding.signature
    (fixed,) = replay_findings([path], kernel=get_target(finding.target).default_kernel.name, device="cpu")
    assert fixed.outcome.kind == "pass", fixed.outcome.signature
