"""Quality: the correct ep_scatter kernel survives a campaign from an empty corpus.

The target's bug model (``bug-stale-start-loc``) is a race between warps that only a GPU can show;
under the interpreter it computes the right answer (test_ep_scatter_kernels.py), so there is
nothing for a CPU campaign to find and shrink.
"""

from __future__ import annotations

import pytest

from moefuzz.campaign import CampaignConfig, run_campaign

pytestmark = pytest.mark.slow


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    status = run_campaign(CampaignConfig("ep_scatter", "triton", duration_s=25, corpus=tmp_path, seed=2))
    assert status.execs >= 10
    assert status.findings == [] and status.known == 0
