"""Public strategies of moefuzz, usable in a user's own ``@given`` tests.

Example::

    from hypothesis import given
    from moefuzz.strategies import routing_tables

    @given(routing_tables(max_tokens=1024))
    def test_my_sort(table):
        ...
"""

from moefuzz.strategies._routing import (
    DUPLICATE_MODES,
    EXPERT_EDGES,
    PADDING_MODES,
    SKEWS,
    TOKEN_EDGES,
    RoutingTable,
    build_routing_table,
    local_expert_range,
    routing_tables,
)

__all__ = [
    "DUPLICATE_MODES",
    "EXPERT_EDGES",
    "PADDING_MODES",
    "SKEWS",
    "TOKEN_EDGES",
    "RoutingTable",
    "build_routing_table",
    "local_expert_range",
    "routing_tables",
]
