"""Quality: the correct ep_scatter kernel survives a campaign from an empty corpus.

The target's bug model (``bug-stale-start-loc``) is a race between warps that only a GPU can show;
under the interpreter it computes the right answer (test_ep_scatter_kernels.py), so there is
nothing for a CPU campaign to find and shrink.
"""

from __future__ import annotations

import pytest

from tests.campaign_checks import assert_correct_kernel_survives

pytestmark = pytest.mark.slow


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("ep_scatter", tmp_path, duration_s=25, min_execs=10, seed=2)
