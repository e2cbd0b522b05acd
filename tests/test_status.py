"""The live status shows execs/s, findings by kind, corpus size, the shrink and the device."""

import io
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from moefuzz.engine.campaign import CampaignStatus
from moefuzz.model.case import Case
from moefuzz.store.corpus import Finding
from moefuzz.ui.status import StatusDisplay, status_line, status_panel


def finding(kind: str, detail: str) -> tuple[Path, Finding]:
    case = Case({"token_selected_experts": np.zeros((1, 1), np.int32)}, {"num_experts": 1})
    return Path("corpus") / kind, Finding("t", "k", kind, detail, "", case, case)


def a_status(**changes) -> CampaignStatus:
    status = CampaignStatus("three_step_sort", "bug-duplicate-topk", device="NVIDIA H200", device_kind="cuda")
    status.execs, status.known, status.corpus_size = 120, 7, 4
    status.findings = [finding("divergence", "expert_first_token_offset"), finding("crash", "SIGSEGV")]
    for name, value in changes.items():
        setattr(status, name, value)
    return status


def rendered(status: CampaignStatus) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(status_panel(status))
    return console.file.getvalue()


def test_the_panel_shows_execs_findings_by_kind_corpus_shrink_and_device():
    text = rendered(
        a_status(shrinking="bug-duplicate-topk--crash-SIGSEGV", shrink_pass="drop_tokens", shrink_accepted=3,
                 shrink_candidates=17)
    )  # fmt: skip
    assert "three_step_sort / bug-duplicate-topk on NVIDIA H200" in text
    assert "120 in " in text and "/s" in text
    assert "2 new (divergence 1, crash 1, hang 0), 7 known" in text
    assert "4 reproducers of three_step_sort" in text
    assert "bug-duplicate-topk--crash-SIGSEGV: pass drop_tokens, 3 accepted of 17 candidates" in text


def test_without_a_gpu_the_device_reads_triton_interpreter_on_cpu():
    status = a_status(device="cpu (Triton interpreter, TRITON_INTERPRET=1)", device_kind="cpu")
    assert "on Triton interpreter on CPU" in rendered(status)
    assert "on Triton interpreter on CPU]" in status_line(status)


def test_kinds_beyond_divergence_crash_and_hang_are_counted_when_met():
    status = a_status(findings=[finding("error", "ValueError")])
    assert "1 new (divergence 0, crash 0, hang 0, error 1), 7 known" in status_line(status)
    assert "shrinking" not in status_line(status)


def test_in_a_log_the_line_is_printed_at_most_every_interval_and_each_second_while_shrinking():
    out = io.StringIO()
    display = StatusDisplay(Console(file=out, width=400), log_interval_s=3600)
    with display:
        display.update(a_status())  # the first update always prints
        display.update(a_status())
        display.update(a_status(shrinking="x", shrink_pass="drop_tokens"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "corpus 4" in lines[0] and "findings 2 new" in lines[0]


def test_execs_per_s_counts_from_the_first_worker_ready_to_the_close_not_after():
    status = CampaignStatus("three_step_sort", "triton", execs=1000)
    assert status.execs_per_s == 0.0  # no worker ready yet
    status.fuzzing_since = time.monotonic() - 10.0
    status.fuzzing_until = status.fuzzing_since + 4.0  # workers and generators stopped for 6 s since
    assert status.execs_per_s == 250.0


def test_the_steady_rate_counts_from_the_first_case_to_the_close_and_is_none_before_a_case():
    status = CampaignStatus("three_step_sort", "triton", execs=1001)
    assert status.steady_execs_per_s is None
    status.fuzzing_since = time.monotonic() - 10.0
    status.first_case_at = status.fuzzing_since + 1.5  # generators starting, the first kernel load
    status.fuzzing_until = status.fuzzing_since + 6.5
    assert status.steady_execs_per_s == 200.0  # the 1,000 cases after the first, over 5 s
