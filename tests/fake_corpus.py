"""A two-reproducer corpus of the ``fake_sort`` test double (tests/fake_targets.py), written with
the corpus's own writer: one that still fails and one whose kernel now passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moefuzz.model.case import Case
from moefuzz.store.corpus import Finding, save_finding

#: Five tokens, the first one routed twice to expert 0: ``miscount-duplicates`` undercounts it.
CASE = Case(
    {"token_selected_experts": np.array([[0, 0], [1, 2], [2, 1], [0, 1], [1, 0]], dtype=np.int32)},
    {"num_experts": 3, "start_expert": 0, "end_expert": 3},
)
MESSAGE = "expert_first_token_offset[3]: tri_expert_first_token_offset=9 ref_expert_first_token_offset=10"


def build_fake_corpus(corpus: Path) -> tuple[Path, Path]:
    """Save the two reproducers under ``corpus``; return (still failing, now passing)."""
    paths = []
    for kernel in ("miscount-duplicates", "correct"):
        finding = Finding("fake_sort", kernel, "divergence", "expert_first_token_offset", MESSAGE, CASE, CASE)
        paths.append(save_finding(corpus, finding))
    return paths[0], paths[1]
