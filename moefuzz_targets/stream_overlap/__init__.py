"""stream_overlap: SGLang HiCache write-through, a forward stream racing a device-to-host copy.

Files: ``contract.py`` (the schedule, preconditions, masked comparison, explanations),
``oracle.py`` (``stream_overlap_torch``: the schedule run serially), ``kernels.py`` (the
two-stream schedule with Triton forward and SM-copy kernels: the correct default and the
``bug-missing-wait-forward`` / ``bug-missing-wait-write`` models), ``strategy.py`` (schedules from
drawn structure), ``shrink.py`` (fewer batches, pages, slots, shorter spins).

On a GPU the bug models race; without one there are no streams, the launches run in order, and
all three kernels equal the oracle: this target finds nothing on the CPU.
"""

from moefuzz.model.convention import conventional_target, kernel

TARGET = conventional_target(
    __name__,
    summary="HiCache write-through: forward and device-to-host copy on two streams (races on a GPU only)",
    source="SGLang managers/cache_controller.py + scheduler.py write_stream / forward_stream (sglang#20611)",
    kernels=(
        kernel(
            "triton",
            "events both ways: each copy waits for its forward, each forward for the previous copy",
        ),
        kernel(
            "bug-missing-wait-forward",
            "the write stream does not wait for the forward: a copy may read slots not yet written",
            models_bug="SGLang HiCache write_stream without wait_stream(forward_stream) (sglang#20611, fix 1)",
        ),
        kernel(
            "bug-missing-wait-write",
            "the next forward does not wait for the copy: it may overwrite slots not yet copied",
            models_bug="SGLang forward_stream without wait_event(last_write_finish_event) (sglang#20611, fix 2)",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8)},
)
