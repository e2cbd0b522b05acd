"""stream_overlap: SGLang HiCache write-through, a forward stream racing a device-to-host copy.

Files: ``contract.py`` (the schedule, preconditions, masked comparison, explanations),
``oracle.py`` (``stream_overlap_torch``: the schedule run serially), ``kernels.py`` (the
two-stream schedule with Triton forward and SM-copy kernels: the correct default and the
``bug-missing-wait-forward`` / ``bug-missing-wait-write`` models), ``strategy.py`` (schedules from
drawn structure), ``shrink.py`` (fewer batches, pages, slots, shorter spins).

On a GPU the bug models race; without one there are no streams, the launches run in order, and
all three kernels equal the oracle: this target finds nothing on the CPU.
"""

from moefuzz.model.target import KernelSpec, Target
from moefuzz_targets.stream_overlap import contract, shrink
from moefuzz_targets.stream_overlap.domain import DOMAIN
from moefuzz_targets.stream_overlap.strategy import cases

TARGET = Target(
    name="stream_overlap",
    summary="HiCache write-through: forward and device-to-host copy on two streams (races on a GPU only)",
    source="SGLang managers/cache_controller.py + scheduler.py write_stream / forward_stream (sglang#20611)",
    strategy=cases,
    check=contract.check,
    output_specs=contract.output_specs,
    oracle="moefuzz_targets.stream_overlap.oracle:stream_overlap_torch",
    compare=contract.compare,
    explain=contract.explain,
    kernels=(
        KernelSpec(
            "triton",
            "moefuzz_targets.stream_overlap.kernels:stream_overlap_triton",
            "events both ways: each copy waits for its forward, each forward for the previous copy",
        ),
        KernelSpec(
            "bug-missing-wait-forward",
            "moefuzz_targets.stream_overlap.kernels:stream_overlap_bug_missing_wait_forward",
            "the write stream does not wait for the forward: a copy may read slots not yet written",
            models_bug="SGLang HiCache write_stream without wait_stream(forward_stream) (sglang#20611, fix 1)",
        ),
        KernelSpec(
            "bug-missing-wait-write",
            "moefuzz_targets.stream_overlap.kernels:stream_overlap_bug_missing_wait_write",
            "the next forward does not wait for the copy: it may overwrite slots not yet copied",
            models_bug="SGLang forward_stream without wait_event(last_write_finish_event) (sglang#20611, fix 2)",
        ),
    ),
    shrink_passes=shrink.PASSES,
    size=shrink.size,
    launch_knobs={"num_warps": (1, 2, 4, 8)},
    domain=DOMAIN,
)
