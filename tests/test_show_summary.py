"""``moefuzz show`` of a large, unshrunk reproducer: summarised to a screen, in full on request."""

from __future__ import annotations

import numpy as np

from moefuzz.model.compare import Mismatch
from moefuzz.store.corpus import Finding
from moefuzz.ui.render import render_finding
from moefuzz_targets.ep_scatter.strategy import make_case


def unshrunk_finding() -> Finding:
    """An ep_scatter finding of 4,000 tokens x H = 128 whose explanation names token 2,718."""
    ids = np.random.default_rng(0).integers(-1, 1024, size=(4000, 8)).astype(np.int32)
    case = make_case(ids, 1024, 128, "fp8", 1)
    return Finding(
        target="ep_scatter",
        kernel="triton",
        kind="divergence",
        detail="output_index",
        message="output_index[21744]: tri=7 ref=9",
        case=case,
        original_case=case,
        mismatch=Mismatch("output_index", 21744, 7, 9, 1, 30000),
        explanation="token t=2718, k=0, local expert 3: expert 3's segment is rows [384, 512)",
    )


def test_show_of_an_unshrunk_4000_by_128_case_fits_in_60_lines():
    finding = unshrunk_finding()
    text = render_finding(finding)
    lines = text.splitlines()
    assert len(lines) <= 60, text
    assert max(len(line) for line in lines) <= 200
    recv_x = text[text.index("recv_x: float32 [4000, 128]") :]
    assert "distinct rows of 4000" in recv_x and "min " in recv_x
    assert "[2718] " in recv_x and "(named by the failure)" in recv_x
    topk = text[text.index("recv_topk: int32 [4000, 8]") :]
    assert "per expert: 1024 experts hold" in topk and "slots < 0" in topk
    row = finding.case.arrays["recv_topk"][2718].tolist()
    assert f"[2718] {row}" in topk  # 8 entries: shown whole


def test_show_full_prints_every_row():
    finding = unshrunk_finding()
    lines = render_finding(finding, full=True).splitlines()
    assert len(lines) > 3 * 4000  # recv_x, recv_x_scale, recv_topk: a line a row
    assert f"    [3999] {finding.case.arrays['recv_x'][3999].tolist()}" in lines
