"""The worker process: the only place a kernel runs.

A worker imports torch, triton, one target's oracle and one kernel, then answers one request at a
time over a pipe: run this case, reply with an :class:`~moefuzz.model.outcome.Outcome`. A CUDA error
breaks the device context for good, so after replying ``crash`` the worker exits (unless the
driver refused a launch for its configuration and the context still works when checked:
:func:`moefuzz.runtime.device.context_works`); a signal or a hang kills it outright. Either way
the parent, which holds the case, survives and starts another.
On the CPU, Triton kernels run in the interpreter with every access checked (:mod:`moefuzz.execute.oob`):
an out-of-bounds access is refused before it happens, reported as a crash, and the worker goes on.

The worker's stderr goes to a log file that the parent reads after a death, to name the signal's
cause, and a note of its first CUDA error and escaping exception (:mod:`moefuzz.runtime.deaths`).
The target's own code raising is a ``harness`` outcome, never the kernel's failure.
"""

from __future__ import annotations

import faulthandler
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from moefuzz.engine.storm import avoided_size
from moefuzz.execute.oob import find_out_of_bounds
from moefuzz.execute.perturb import Perturbation
from moefuzz.model.case import Case
from moefuzz.model.outcome import NON_STICKY_CRASHES, Outcome, classify_crash_text, is_cuda_oom
from moefuzz.runtime.deaths import escaped_record, module_file, note_path, write_note
from moefuzz.runtime.device import choose_device, context_works, describe_environment
from moefuzz.runtime.messages import Avoid, Failed, Ready, RunCase, RunPrepared, WorkerRequest, prepared_parts
from moefuzz.runtime.processes import child_setup, reset_environment
from moefuzz.runtime.warmup import warm_up

#: Where this worker writes its note (:func:`moefuzz.runtime.deaths.write_note`); ``None`` outside
#: a worker process.
_NOTE: str | None = None


class CaseRunner:
    """Runs cases of one target against one kernel on one device, in this process.

    Used by workers, and by benchmarks as the in-process floor (no isolation).
    """

    def __init__(self, target_name: str, kernel_name: str | None, device: str) -> None:
        import torch

        from moefuzz.model.registry import get_target
        from moefuzz.model.target import resolve_entry

        self.device = torch.device(device)
        self.target = get_target(target_name)
        self.kernel_spec = self.target.kernel(kernel_name)
        if self.kernel_spec.build is not None:  # the compiled extension, from the cache (built by the parent)
            from moefuzz.execute.cuda_compile import load_extension

            load_extension(self.kernel_spec.build)
        self.kernel: Callable[[Any], None] = resolve_entry(self.kernel_spec.entry)
        self.oracle: Callable[..., Mapping[str, Any]] = resolve_entry(self.target.oracle)

    def run(self, case: Case, config: Mapping[str, int] | None = None) -> Outcome:
        """Run ``case`` once: kernel on the device into poisoned buffers, oracle on the CPU,
        compare."""
        return self.run_plan(case, [Perturbation(dict(config or {}))])

    def run_plan(self, case: Case, plan: Sequence[Perturbation], expected: Mapping[str, Any] | None = None) -> Outcome:
        """Run ``case`` once per perturbation of ``plan`` (launch knobs and poison pattern); the
        oracle runs once, after the first launch that did not raise, unless ``expected`` holds
        its outputs already (a generator ran it: :mod:`moefuzz.runtime.generators`). Returns ``pass`` if every
        launch passed, else the first failure with ``runs``, ``failures`` (launches failing with
        its signature) and ``nondeterministic`` (launches disagreed). A crash ends the plan; after one of
        :data:`~moefuzz.model.outcome.NON_STICKY_CRASHES` the device context is checked
        (``context_intact``).

        A case outside the kernel's domain (:attr:`~moefuzz.model.target.KernelSpec.domain`) is
        not launched: ``skipped:outside-domain``.

        On the CPU (the Triton interpreter) every access is checked: one outside every buffer is
        a ``crash:out-of-bounds-<load|store|atomic>`` outcome instead of a wild read or write."""
        from moefuzz.execute.inprocess import launch_kernel, oracle_outputs

        if not self.kernel_spec.supports(case):
            return Outcome("skipped", SKIPPED_DETAIL, f"outside kernel {self.kernel_spec.name}'s domain")
        started = time.perf_counter()
        try:
            specs = self.target.output_specs(case)
        except Exception as exc:
            return harness_outcome("output_specs", exc, started)
        ref: Mapping[str, Any] | None = expected
        first: Outcome | None = None
        failures = passes = runs = 0
        disagree = False
        for perturbation in plan:
            runs += 1
            try:
                tri = launch_kernel(
                    self.kernel,
                    specs,
                    case,
                    self.device,
                    perturbation.config,
                    perturbation.poison,
                    perturbation.seed,
                    perturbation.stress,
                )
            except Exception as exc:  # the kernel's failure is the finding
                result = _kernel_failure(exc, 0.0)
            else:
                if ref is None:
                    try:
                        ref = oracle_outputs(self.oracle, case)
                    except Exception as exc:
                        return harness_outcome("oracle", exc, started)
                try:
                    mismatch = self.target.compare(case, tri, ref)
                except Exception as exc:
                    return harness_outcome("compare", exc, started)
                result = (
                    Outcome("pass")
                    if mismatch is None
                    else Outcome("divergence", mismatch.output, mismatch.headline(), mismatch)
                )
            if result.kind == "resource":  # the machine, not the kernel: nothing more runs here
                return replace(result, seconds=_since(started), runs=runs)
            if not result.failed:
                passes += 1
            elif first is None:
                first, failures = replace(result, perturbation=perturbation.to_json()), 1
            elif result.signature == first.signature and result.message == first.message:
                failures += 1
            else:
                disagree = True
                failures += result.signature == first.signature
            if result.kind == "crash":
                break
        if first is None:
            return Outcome("pass", seconds=_since(started), runs=runs)
        intact = first.kind == "crash" and first.detail in NON_STICKY_CRASHES and context_works(self.device)
        return replace(
            first,
            seconds=_since(started),
            runs=runs,
            failures=failures,
            nondeterministic=disagree or passes > 0,
            context_intact=intact,
        )


#: Detail of the outcome of a case outside the kernel's domain (``skipped:outside-domain``).
SKIPPED_DETAIL = "outside-domain"


def _since(started: float) -> float:
    return time.perf_counter() - started


def harness_outcome(stage: str, exc: BaseException, started: float) -> Outcome:
    """The ``harness`` outcome of the target's code raising ``exc`` at ``stage`` (``compare``...)."""
    tail = "".join(traceback.format_exception(exc)[-8:])
    message = f"{stage} raised {_one_line(exc)}"
    return Outcome("harness", f"{stage}-{type(exc).__name__}", message, seconds=_since(started), log_tail=tail)


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def _kernel_failure(exc: Exception, seconds: float) -> Outcome:
    oob = find_out_of_bounds(exc)
    if oob is not None:  # refused by moefuzz.execute.oob before it happened: crash:out-of-bounds-<access>
        text = str(oob)
        return Outcome("crash", classify_crash_text(text), text[:500], seconds=seconds)
    text = f"{type(exc).__name__}: {exc}"
    if "cuda" in text.lower() or type(exc).__name__ in ("AcceleratorError", "CudaError", "OutOfMemoryError"):
        write_note(_NOTE, "cuda_error", _one_line(exc))  # the first one names a death that follows
        if is_cuda_oom(text):
            return Outcome("resource", "cuda-oom", _one_line(exc), seconds=seconds)
        return Outcome("crash", classify_crash_text(text), _one_line(exc), seconds=seconds)
    tail = "".join(traceback.format_exception(exc)[-6:])
    return Outcome("error", type(exc).__name__, _one_line(exc), seconds=seconds, log_tail=tail)


def worker_main(
    conn: Connection,
    target_name: str,
    kernel_name: str | None,
    device: str,
    log_path: str,
    environ: dict[str, str] | None = None,
    limits: Mapping[str, int] | None = None,
    warm_up_seeds: Sequence[int] = (),
    warm_up_on_cpu: bool = False,
) -> None:
    """Entry point of a worker process (forked from the fork server, or spawned).

    ``environ`` is the parent's environment when it asked for this worker: the fork server's own
    is a snapshot from when it started, which would miss a ``MOEFUZZ_TARGETS`` set since.
    ``limits`` (a :class:`~moefuzz.model.target.Limits` as a dict, ``None`` for the device's default)
    bounds the cases drawn from bytes. Before it reports ready the worker runs the warm-up cases
    of ``warm_up_seeds`` (:mod:`moefuzz.runtime.warmup`; on the CPU only with ``warm_up_on_cpu``),
    so that a spare promoted after a crash starts on warm kernels; if one of them crashes, it exits,
    and its note names the seed.

    Protocol (:mod:`moefuzz.runtime.messages`): sends :class:`Ready` with the environment or
    :class:`Failed`; then for each request (:class:`RunCase`, :class:`RunPrepared` with a
    generator's case and oracle outputs, or :class:`RunBytes`) replies one :class:`Outcome`;
    ``None`` ends it. A failing case the parent did not send as arrays comes back in the outcome's ``case``.
    A thread reads requests off the pipe as they come (:class:`_Inbox`), so that the next case
    is unpickled while this one runs.
    """
    global _NOTE
    child_setup()
    if environ is not None:
        reset_environment(environ)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 2)
    faulthandler.enable(file=2, all_threads=True)  # a fatal signal leaves the Python stacks in the log
    _NOTE = str(note_path(log_path))
    try:
        device = choose_device(device)
        runner = CaseRunner(target_name, kernel_name, device)
        write_note(_NOTE, "kernel_file", module_file(runner.kernel))
        source = _LazySource(runner.target, limits, device, runner.kernel_spec.domain)
        seeds = warm_up_seeds if device == "cuda" or warm_up_on_cpu else ()
        if seeds and warm_up(runner, source, seeds, _NOTE) is not None:
            os._exit(3)  # a CUDA error: the note names the seed (warmup.crashed_warm_up)
        conn.send(Ready(describe_environment(device)))
    except Exception as exc:
        conn.send(Failed(_one_line(exc)))
        return
    inbox = _Inbox(conn)
    try:
        while True:
            request = inbox.get()
            if request is None:
                return
            if isinstance(request, Avoid):
                source.avoid = request.corners
                continue
            outcome = _answer(runner, source, request)
            conn.send(outcome)
            if outcome.ends_worker:
                # A CUDA error is sticky: this context can run nothing more. (An out-of-bounds access
                # refused under the interpreter never happened: this process goes on.)
                os._exit(3)
    except BaseException as exc:  # escaping: the parent labels the death from the note
        if "cuda" in str(exc).lower():
            write_note(_NOTE, "cuda_error", _one_line(exc))
        write_note(_NOTE, "exception", escaped_record(exc, module_file(runner.kernel)))
        raise


class _Inbox:
    """Requests read off ``conn`` by a daemon thread as they arrive, handed out in order.

    A pipe holds 64 KiB; a generated case with its oracle outputs is larger from T ~ 1024 on. The
    thread reads and unpickles the next case while this one waits for the device (the GIL is
    free then), so the worker finds it ready. The end of the pipe (the parent gone) reads as
    ``None``: the worker stops.
    """

    def __init__(self, conn: Connection) -> None:
        import queue
        import threading

        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn = conn
        threading.Thread(target=self._read, name="moefuzz-inbox", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                request = self._conn.recv()
            except (EOFError, OSError):
                request = None
            self._queue.put(request)
            if request is None:
                return

    def get(self) -> Any:
        """The next request (waits for it); ``None`` once the parent ended the worker."""
        return self._queue.get()


class _LazySource:
    """The target's strategy within the worker's limits (drawing into the kernel's ``domain``),
    built at the first draw from bytes; it also says which points of the target's domain a case
    hits (:meth:`coverage`)."""

    def __init__(self, target: Any, limits: Mapping[str, int] | None, device: str, domain: Any = None) -> None:
        self.target, self.limits, self.device, self.domain = target, limits, device, domain
        self._source: Any = None  # avoid: the known crashers' corners to skip (messages.Avoid)
        self.avoid: frozenset[tuple[int, ...]] = frozenset()
        self._coverage: Any = None

    def _limits(self) -> Any:
        from moefuzz.model.target import Limits, default_limits

        return Limits(**self.limits) if self.limits is not None else default_limits(self.device)

    def from_bytes(self, buffer: bytes) -> Case | None:
        if self._source is None:
            from moefuzz.engine.generate import CaseSource

            self._source = CaseSource(self.target.strategy(self._limits()), seed=0, domain=self.domain)
        case: Case | None = self._source.from_bytes(buffer)
        return case

    def coverage(self, case: Case) -> int:
        """The domain points ``case`` hits, as a bit mask (0 for a target with no domain)."""
        if self._coverage is None:
            from moefuzz.model.domain import Coverage

            domain = self.target.domain
            self._coverage = Coverage(domain.points(self._limits()) if domain is not None else [])
        mask: int = self._coverage.mask(case)
        return mask


def _answer(runner: CaseRunner, source: _LazySource, request: WorkerRequest) -> Outcome:
    """The outcome of one request (see :func:`worker_main`)."""
    from moefuzz.engine.generate import draw_checked

    plan = [Perturbation.from_json(p) for p in request.plan]
    if isinstance(request, RunCase):
        sent = Case(request.arrays, request.params)
        return replace(runner.run_plan(sent, plan), coverage=source.coverage(sent))
    if isinstance(request, RunPrepared):
        prepared, expected, coverage = prepared_parts(request.payload)
        size = avoided_size(runner.target, source.avoid, prepared)
        if size is None:
            return Outcome("avoided", message="like a known crasher's case")
        outcome = runner.run_plan(prepared, plan, expected)
        return replace(outcome, case=prepared if _sends_case(outcome) else None, coverage=coverage, size=size)
    started = time.perf_counter()
    try:
        case, error = draw_checked(source, runner.target.check, request.buffer)
    except Exception as exc:
        return harness_outcome("strategy", exc, started)
    if case is None:
        return Outcome("rejected", message="the strategy rejected these bytes")
    if error:
        return Outcome("invalid", message=error.splitlines()[0][:500], case=case)
    size = avoided_size(runner.target, source.avoid, case)
    if size is None:
        return Outcome("avoided", message="like a known crasher's case")
    outcome = runner.run_plan(case, plan)
    return replace(outcome, case=case if _sends_case(outcome) else None, coverage=source.coverage(case), size=size)


def _sends_case(outcome: Outcome) -> bool:
    """Whether the parent needs the case back: a failure, or the target's own code raising."""
    return outcome.failed or outcome.kind == "harness"
