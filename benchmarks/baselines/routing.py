"""The routing targets' two baselines: a plain ``@given`` strategy and an engines-style grid.

One :class:`~benchmarks.baselines.Baselines` per target (three_step_sort, moe_align_block_size,
moe_permute, ep_gather, ep_scatter); :mod:`benchmarks.baselines` runs them.

- ``given``: what a property test of the contract would draw with plain Hypothesis: sizes with
  ``st.integers``, arrays element by element (``hypothesis.extra.numpy.arrays``), ids over the
  contract's documented domain, nothing from :mod:`moefuzz.strategies` (the thing compared
  against). Float arrays are drawn as small integers and scaled, so that every value is exact
  in bf16 and e4m3 as the contracts ask. Each factory takes ``max_tokens`` (default 2048, the
  real size; tests pass less).
- ``grid``: the parameter lists of the engines' own tests of that kernel (vLLM
  ``tests/kernels/moe/test_moe_align_block_size.py`` and ``test_moe_permute_unpermute.py``, the
  LightLLM / SGLang / DLBlas ep_scatter and ep_gather tests), capped at the contracts' bounds
  (K <= 8, H <= 4096), each point once; ids are ``torch.topk`` of random router scores from
  ``torch.Generator().manual_seed(seed)``, so a token's K experts are distinct, and an EP rank
  owns vLLM's linear split of the experts (``determine_expert_map``).

Shapes of the cases are the targets' own (``moefuzz_targets/<target>/contract.py``).
"""

from __future__ import annotations

from moefuzz_targets.ep_gather import baselines as _ep_gather
from moefuzz_targets.ep_gather.baselines import ep_gather_given, ep_gather_grid, gather_case, scatter_rows
from moefuzz_targets.ep_scatter import baselines as _ep_scatter
from moefuzz_targets.ep_scatter.baselines import ep_scatter_given, ep_scatter_grid, scale_columns, scatter_case
from moefuzz_targets.moe_align_block_size import baselines as _moe_align_block_size
from moefuzz_targets.moe_align_block_size.baselines import (
    ALIGN_BLOCK_SIZES,
    ALIGN_EXPERTS,
    ALIGN_MAP_TOKENS,
    ALIGN_MAP_TOPK,
    ALIGN_TOKENS,
    ALIGN_TOPK,
    align_case,
    moe_align_block_size_given,
    moe_align_block_size_grid,
)
from moefuzz_targets.moe_permute import baselines as _moe_permute
from moefuzz_targets.moe_permute.baselines import (
    PERMUTE_EP_SIZES,
    PERMUTE_EXPERTS,
    PERMUTE_TOKENS,
    PERMUTE_TOPK,
    moe_permute_given,
    moe_permute_grid,
    permute_case,
)
from moefuzz_targets.shared.baselines import (
    GIVEN_MAX_EXPERTS,
    GIVEN_MAX_HIDDEN,
    GIVEN_MAX_TOKENS,
    GIVEN_MAX_TOPK,
    GRID_EP_SIZES,
    GRID_EXPERTS,
    GRID_HIDDEN,
    GRID_TOKENS,
    GRID_TOPK,
    Baselines,
    aligned_counts,
    draw_rank,
    ep_split,
    exact_values,
    received_tokens,
    router_topk,
)
from moefuzz_targets.three_step_sort import baselines as _three_step_sort
from moefuzz_targets.three_step_sort.baselines import three_step_case, three_step_sort_given, three_step_sort_grid

BASELINES: tuple[Baselines, ...] = (
    _three_step_sort.BASELINES,
    _moe_align_block_size.BASELINES,
    _moe_permute.BASELINES,
    _ep_scatter.BASELINES,
    _ep_gather.BASELINES,
)

__all__ = [
    "ALIGN_BLOCK_SIZES",
    "ALIGN_EXPERTS",
    "ALIGN_MAP_TOKENS",
    "ALIGN_MAP_TOPK",
    "ALIGN_TOKENS",
    "ALIGN_TOPK",
    "BASELINES",
    "GIVEN_MAX_EXPERTS",
    "GIVEN_MAX_HIDDEN",
    "GIVEN_MAX_TOKENS",
    "GIVEN_MAX_TOPK",
    "GRID_EP_SIZES",
    "GRID_EXPERTS",
    "GRID_HIDDEN",
    "GRID_TOKENS",
    "GRID_TOPK",
    "PERMUTE_EP_SIZES",
    "PERMUTE_EXPERTS",
    "PERMUTE_TOKENS",
    "PERMUTE_TOPK",
    "Baselines",
    "align_case",
    "aligned_counts",
    "draw_rank",
    "ep_gather_given",
    "ep_gather_grid",
    "ep_scatter_given",
    "ep_scatter_grid",
    "ep_split",
    "exact_values",
    "gather_case",
    "moe_align_block_size_given",
    "moe_align_block_size_grid",
    "moe_permute_given",
    "moe_permute_grid",
    "permute_case",
    "received_tokens",
    "router_topk",
    "scale_columns",
    "scatter_case",
    "scatter_rows",
    "three_step_case",
    "three_step_sort_given",
    "three_step_sort_grid",
]
