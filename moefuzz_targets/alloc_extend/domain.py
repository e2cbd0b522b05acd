"""Input domain of alloc_extend (see :mod:`moefuzz.model.domain`): batch, page_size, tokens after
the extend, and the paged-KV edges (page sizes off powers of two, a request with no prefix, an
extend of zero tokens)."""

from __future__ import annotations

from moefuzz.model.domain import Dimension, Domain, Point
from moefuzz.strategies.domains import param, rows
from moefuzz.strategies.paged_kv import power_of_two
from moefuzz_targets.alloc_extend.contract import MAX_PAGE_SIZE
from moefuzz_targets.alloc_extend.strategy import MAX_BATCH


def _tokens(case: object) -> int:
    return int(case.arrays["seq_lens"].sum())  # type: ignore[attr-defined]


DOMAIN = Domain(
    dimensions=(
        Dimension("B", rows("seq_lens"), 0, MAX_BATCH, (1,), note="requests (drawn up to 16; contract 65536)"),
        Dimension("page_size", param("page_size"), 1, MAX_PAGE_SIZE, (16, 64, 256, 1024)),
        Dimension("tokens", _tokens, 0, 1 << 24, cap="max_tokens", note="sum of seq_lens after the extend", slack=0.05),
    ),
    edges=(
        Point("page_size not a power of two", lambda c: not power_of_two(int(c.params["page_size"]))),
        Point("a request with no prefix", lambda c: bool((c.arrays["prefix_lens"] == 0).any())),
        Point(
            "a request extending by 0 tokens", lambda c: bool((c.arrays["prefix_lens"] == c.arrays["seq_lens"]).any())
        ),
        Point("no free page left after it", lambda c: int(c.params["num_free"]) == 0),
    ),
)
