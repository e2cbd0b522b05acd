"""Test doubles of stream_overlap: the schedule run serially in the worst order a missing fence
allows, so that a CPU campaign meets what a GPU race would show, every time.

``copy-first`` runs each batch's copy before its forward (``bug-missing-wait-forward`` when the
copy wins the race outright); ``forward-first`` runs batch b+1's forward before batch b's copy
(``bug-missing-wait-write`` when the next forward wins). They pin the engine path of this target
(strategy, comparison, explanation, shrink passes through real workers, corpus, replay) without a
GPU; the real bug models are found on one (tests/targets/stream_overlap/test_stream_overlap_gpu.py). Loaded through
``MOEFUZZ_TARGETS``.
"""

from __future__ import annotations

import dataclasses

import torch

from moefuzz.execute.launch import LaunchContext, poison_value
from moefuzz.model.target import KernelSpec
from moefuzz_targets.stream_overlap import TARGET as STREAM_OVERLAP
from moefuzz_targets.stream_overlap.contract import OUTPUT, slot_value

MODULE = __name__


def _serial(ctx: LaunchContext, order: list[tuple[str, int]]) -> None:
    """Run the forwards and copies of ``order`` (("forward" | "copy", batch)) one after another."""
    pages = ctx.inputs["batch_pages"].cpu().tolist()
    fills = ctx.inputs["page_fills"].cpu().tolist()
    page_size, slot_size = int(ctx.params["page_size"]), int(ctx.params["slot_size"])
    num_slots = int(ctx.params["num_pages"]) * page_size
    pool = torch.zeros((num_slots, slot_size), dtype=torch.int64)
    host = torch.full(tuple(ctx.outputs[OUTPUT].shape), poison_value(torch.int32), dtype=torch.int64)
    elements = torch.arange(slot_size)
    for step, batch in order:
        for j, page in enumerate(pages[batch]):
            if page < 0:
                continue
            if step == "forward":
                slots = page * page_size + torch.arange(fills[batch][j])
                pool[slots] = torch.as_tensor(
                    slot_value(batch, slots[:, None].numpy(), elements.numpy(), num_slots, slot_size)
                )
            else:
                host[batch, j] = pool[page * page_size : (page + 1) * page_size]
    ctx.outputs[OUTPUT].copy_(host.to(torch.int32))


def copy_first(ctx: LaunchContext) -> None:
    batches = range(ctx.inputs["batch_pages"].shape[0])
    _serial(ctx, [(step, b) for b in batches for step in ("copy", "forward")])


def forward_first(ctx: LaunchContext) -> None:
    count = ctx.inputs["batch_pages"].shape[0]
    order = [("forward", 0)]
    for b in range(count):
        order += ([("forward", b + 1)] if b + 1 < count else []) + [("copy", b)]
    _serial(ctx, order)


TARGET = dataclasses.replace(
    STREAM_OVERLAP,
    name="stream_overlap_worst_order",
    summary="stream_overlap with serial worst-order test doubles of its two missing fences",
    source="tests/targets/stream_overlap/stream_overlap_doubles.py",
    kernels=(
        STREAM_OVERLAP.default_kernel,
        KernelSpec("copy-first", f"{MODULE}:copy_first", "test double: every copy before its forward"),
        KernelSpec("forward-first", f"{MODULE}:forward_first", "test double: every forward before the previous copy"),
    ),
)
