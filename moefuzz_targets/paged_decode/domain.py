"""Input domain of paged_decode (see :mod:`moefuzz.model.domain`): batch, page_size, query and KV
heads, head dim, window."""

from __future__ import annotations

from moefuzz.model.domain import Dimension, Domain, Point
from moefuzz.strategies.domains import columns, rows
from moefuzz.strategies.paged_kv import power_of_two
from moefuzz_targets.paged_decode.contract import MAX_HEAD_DIM, MAX_HEADS


def _page_size(case: object) -> int:
    return int(case.arrays["k_cache"].shape[1])  # type: ignore[attr-defined]


DOMAIN = Domain(
    dimensions=(
        Dimension(
            "B", rows("cache_seqlens"), 0, 1 << 16, (1,), cap=lambda limits: max(2, limits.max_tokens // 128) // 2
        ),
        Dimension("page_size", _page_size, 1, 256, (16, 64), note="drawn up to 256 (no contract max)"),
        Dimension("Hq", columns("q"), 1, MAX_HEADS, (8, 64)),
        Dimension("Hkv", columns("k_cache", 2), 1, 8),
        Dimension("D", columns("q", 2), 1, MAX_HEAD_DIM, (16, 80, 128), note="head dim (drawn from 16)"),
    ),
    edges=(
        Point("page_size not a power of two", lambda c: not power_of_two(_page_size(c))),
        Point("sliding window", lambda c: int(c.params["sliding_window"]) > 0),
        Point("a request of 0 tokens", lambda c: bool((c.arrays["cache_seqlens"] == 0).any())),
        Point("GQA (Hq > Hkv)", lambda c: c.arrays["q"].shape[1] > c.arrays["k_cache"].shape[2]),
    ),
)
