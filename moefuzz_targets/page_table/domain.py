"""Input domain of page_table (see :mod:`moefuzz.model.domain`): batch, page_size, table width,
sliding window."""

from __future__ import annotations

from moefuzz.model.domain import Dimension, Domain, Point
from moefuzz.strategies.domains import param, rows
from moefuzz.strategies.paged_kv import power_of_two
from moefuzz_targets.page_table.contract import MAX_PAGE_SIZE
from moefuzz_targets.page_table.strategy import MAX_BATCH

DOMAIN = Domain(
    dimensions=(
        Dimension("B", rows("seq_lens"), 0, MAX_BATCH, (1,), note="requests (drawn up to 16; contract 4096)"),
        Dimension("page_size", param("page_size"), 1, MAX_PAGE_SIZE, (16, 64, 256)),
    ),
    edges=(
        Point("page_size not a power of two", lambda c: not power_of_two(int(c.params["page_size"]))),
        Point("sliding window", lambda c: int(c.params["sliding_window"]) >= 1),
        Point("full attention", lambda c: int(c.params["sliding_window"]) < 1),
        Point("window below one page", lambda c: 1 <= int(c.params["sliding_window"]) < int(c.params["page_size"])),
        Point("a request of 0 tokens", lambda c: bool((c.arrays["seq_lens"] == 0).any())),
    ),
)
