"""A new contract: per-expert token counts of a routing table (strategy + oracle + comparison).

moefuzz run --targets examples/my_contract.py --target expert_counts --time 2m
"""

import numpy as np
import torch

from moefuzz.model.case import Case
from moefuzz.model.compare import compare_exact
from moefuzz.model.target import KernelSpec, OutputSpec, Target, entry_of
from moefuzz.model.validation import require_array, require_int_param
from moefuzz.shrinking.routing import RoutingLayout, routing_passes, routing_size
from moefuzz.strategies import routing_tables

LAYOUT = RoutingLayout(ids="topk_ids", start_expert="start_expert", end_expert="end_expert")


def cases(limits):
    """Any routing table within the engine's size limits, as a case."""
    return routing_tables(max_tokens=limits.max_tokens, max_topk=limits.max_topk).map(
        lambda t: Case(
            {"topk_ids": t.topk_ids},
            {"num_experts": t.num_experts, "start_expert": t.start_expert, "end_expert": t.end_expert},
        )
    )


def check(case):
    """topk_ids [T, K] int32; 0 <= start_expert <= end_expert <= num_experts."""
    require_array(case, "topk_ids", np.int32, 2)
    num_experts = require_int_param(case, "num_experts", 0)
    end = require_int_param(case, "end_expert", 0, num_experts)
    require_int_param(case, "start_expert", 0, end)


def output_specs(case):
    """expert_counts [end_expert - start_expert] int32."""
    return {"expert_counts": OutputSpec((case.params["end_expert"] - case.params["start_expert"],), "int32")}


def expert_counts_torch(inputs, params):
    """The oracle: expert_counts[e] = number of slots (t, k) with topk_ids[t, k] == start_expert + e."""
    start, end = params["start_expert"], params["end_expert"]
    ids = inputs["topk_ids"].reshape(-1).long()
    local = ids[(ids >= start) & (ids < end)] - start
    return {"expert_counts": torch.bincount(local, minlength=end - start).int()}


def compare(case, tri, ref):
    """Exact equality of every count."""
    return compare_exact("expert_counts", tri["expert_counts"], ref["expert_counts"])


def my_counts(ctx):
    """My kernel: one scatter-add of ones."""
    start, end = ctx.params["start_expert"], ctx.params["end_expert"]
    ids = ctx.inputs["topk_ids"].reshape(-1).long()
    local = (ids >= start) & (ids < end)
    counts = torch.zeros(end - start + 1, dtype=torch.int32, device=ctx.device)
    counts.scatter_add_(0, torch.where(local, ids - start, end - start), torch.ones_like(ids, dtype=torch.int32))
    ctx.outputs["expert_counts"].copy_(counts[: end - start])


TARGET = Target(
    name="expert_counts",
    summary="tokens routed to each local expert",
    source="examples/my_contract.py",
    strategy=cases,
    check=check,
    output_specs=output_specs,
    oracle=entry_of(expert_counts_torch),
    compare=compare,
    kernels=(KernelSpec("scatter-add", entry_of(my_counts), "my scatter-add kernel"),),
    shrink_passes=routing_passes(LAYOUT),
    size=routing_size(LAYOUT),
)
