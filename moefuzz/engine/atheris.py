"""The coverage-guided engine: libFuzzer (through atheris) chooses the bytes the strategy reads.

The default engine (``random``) feeds a target's strategy seeded random bytes
(:class:`~moefuzz.engine.generate.CaseSource`). This one lets libFuzzer mutate them instead, keeping the
byte strings that reach new coverage of the *strategy code*: the functions of
``moefuzz.strategies`` and of the target's strategy module are instrumented, so "new coverage"
means "a new structure of generated input" (another branch of the routing-table builder, a new
comparison outcome such as T > 256). libFuzzer starts from :data:`SEED_INPUTS` random inputs, the
default engine's first draws. Kernel code runs in worker processes that libFuzzer does not
see: coverage of the kernel itself is not measured.

libFuzzer's ``Fuzz()`` never returns and owns its process (signal handlers, ``exit``), so it runs
in a process of its own, spawned fresh (never forked: the caller may hold threads):

    caller (run_campaign)            fuzzing process                    workers
    polls the pipe, calls  <-status-  atheris.Fuzz() -> one_input(bytes)
    on_status, returns the  <-done--   -> Campaign.run_case(case)  ---> kernel, oracle
    final status                       deadline: close, send, _exit

Every case goes through the same :class:`~moefuzz.engine.scheduler.Campaign` as with the default
engine: isolation, saving at once, shrinking, the corpus. When the budget is spent, the next
callback stops the workers, sends the final status and leaves with ``os._exit`` (libFuzzer's own
end-of-run handling never runs). libFuzzer's output (``cov:``, ``ft:``, ``corp:``) goes to a log
whose last line of statistics becomes :attr:`CampaignStatus.engine_stats`.
"""

from __future__ import annotations

import gc
import importlib.util
import multiprocessing
import os
import random
import re
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from moefuzz.engine.config import CampaignConfig, CampaignStatus
from moefuzz.engine.generate import DRAW_BYTES, CaseSource
from moefuzz.engine.scheduler import Campaign
from moefuzz.errors import MoefuzzError, UsageError, WorkerError
from moefuzz.model.target import Target
from moefuzz.runtime.processes import stop_process, track

#: Least seconds between two status messages from the fuzzing process (a new finding, the start
#: and the end of a shrink are always sent).
STATUS_INTERVAL_S = 0.5
#: Random inputs libFuzzer starts from: the byte strings of the default engine's first draws with
#: the same seed. From an empty corpus libFuzzer would start at the empty input, the simplest
#: case, and stay near it for a long time (padding and sentinels appear only after many
#: mutations); with them it starts where the default engine does and mutates from there.
SEED_INPUTS = 8
#: libFuzzer's per-input timeout: a day, i.e. none (cases time out in the executor).
INPUT_TIMEOUT_S = 86400
#: Seconds each step of stopping the fuzzing process waits (it may be closing its workers).
STOP_DEADLINE_S = 10.0
#: libFuzzer's statistics line: ``#123 NEW cov: 45 ft: 67 corp: 8/1024b ...``.
_STATS = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)")


def libfuzzer_args(config: CampaignConfig, artifacts: Path, corpus: Path) -> list[str]:
    """libFuzzer's command line for a campaign whose seed inputs are in ``corpus`` (libFuzzer
    adds the inputs it keeps there too).

    ``-seed`` is the campaign's seed + 1 (0 means "random" to libFuzzer). Inputs up to
    :data:`~moefuzz.engine.generate.DRAW_BYTES` long, from the first run (``-len_control=0``). A
    per-input timeout of :data:`INPUT_TIMEOUT_S` and no RSS limit: one input may shrink a finding
    for minutes, and hangs are the workers' business (atheris reads ``-timeout=0`` as zero
    seconds, not as "none"). Comparison operands as features (``-use_value_profile=1``).
    libFuzzer's own artifacts (it writes one if the fuzzing process dies) go to ``artifacts``,
    not to the working directory.
    """
    return [
        "moefuzz-atheris",
        f"-seed={config.seed + 1}",
        f"-max_len={DRAW_BYTES}",
        "-len_control=0",
        f"-timeout={INPUT_TIMEOUT_S}",
        "-rss_limit_mb=0",
        "-use_value_profile=1",
        "-print_final_stats=0",
        f"-artifact_prefix={artifacts}{os.sep}",
        str(corpus),
    ]


def run_atheris_campaign(
    config: CampaignConfig, on_status: Callable[[CampaignStatus], None] | None = None
) -> CampaignStatus:
    """Run a campaign whose cases libFuzzer chooses; return the final status.

    Raises:
        UsageError: atheris is not installed.
        WorkerError: the fuzzing process died before it could report (its log's tail is in the
            message; findings it saved stay in the corpus).
        MoefuzzError: what the campaign raised in the fuzzing process (an unknown target, a
            case the contract rejects...).
    """
    if importlib.util.find_spec("atheris") is None:
        raise UsageError("engine='atheris' needs the atheris package: pip install 'moefuzz[atheris]'")
    notify = on_status or (lambda _: None)
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    work = Path(tempfile.mkdtemp(prefix="moefuzz-atheris-"))
    log = work / "libfuzzer.log"
    process = context.Process(
        target=fuzz_process, args=(config, sender, str(work), started), name="moefuzz-atheris", daemon=False
    )
    process.start()
    track(process)  # a signal at the CLI kills it (kill_children); its workers die with it
    sender.close()
    final: CampaignStatus | None = None
    try:
        while True:
            try:
                kind, payload = receiver.recv()
            except EOFError:
                break
            if kind == "status":
                notify(payload)
            elif kind == "done":
                final = payload
            elif kind == "error":
                raise payload
        process.join(timeout=30)
        if final is None:
            tail = [line for line in _read(log).splitlines() if line.strip()]
            raise WorkerError(
                f"the atheris fuzzing process exited with status {process.exitcode} before reporting; "
                f"log={str(log)!r}: {tail[-1][:300] if tail else 'empty'}"
            )
        final.engine_stats = ", ".join(filter(None, [_last_stats(_read(log)), final.engine_stats]))
    except WorkerError:
        stop_process(process, deadline_s=STOP_DEADLINE_S)  # the log stays, for the message's sake
        raise
    except BaseException:
        stop_process(process, deadline_s=STOP_DEADLINE_S)
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        receiver.close()
    shutil.rmtree(work, ignore_errors=True)
    return final


def fuzz_process(config: CampaignConfig, conn: Connection, work: str, started: float) -> None:
    """Entry point of the fuzzing process: a campaign whose cases come from libFuzzer.

    Sends ``("status", CampaignStatus)`` while it runs, then ``("done", CampaignStatus)`` or
    ``("error", exception)``, and leaves with ``os._exit``: atheris' ``Fuzz()`` never returns.
    Its stderr (libFuzzer's output) goes to ``work/libfuzzer.log``.
    """
    log_fd = os.open(os.path.join(work, "libfuzzer.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 2)
    sent_at, sent_state = 0.0, ""

    def send_status(status: CampaignStatus) -> None:
        nonlocal sent_at, sent_state
        state = f"{len(status.findings)}/{status.known}/{status.shrinking}"
        if state != sent_state or time.monotonic() - sent_at >= STATUS_INTERVAL_S:
            sent_at, sent_state = time.monotonic(), state
            conn.send(("status", status))

    campaign: Campaign | None = None

    def finish(error: BaseException | None = None) -> None:
        if campaign is not None:
            campaign.close()
        try:
            conn.send(("error", error) if error is not None else ("done", campaign and campaign.status))
        except Exception:  # an exception that does not pickle
            conn.send(("error", MoefuzzError(f"{type(error).__name__}: {error}")))
        conn.close()
        sys.stderr.flush()
        os._exit(0)

    try:
        import atheris

        campaign = Campaign(config, send_status, started=started)
        limits = campaign.start()
        source = CaseSource(campaign.target.strategy(limits), config.seed)
        count = instrument_strategy_code(campaign.target)
        campaign.status.engine_stats = f"{count} strategy functions instrumented (kernel code not seen)"
    except BaseException as exc:
        finish(exc)
    assert campaign is not None

    def one_input(data: bytes) -> None:
        try:
            if campaign.expired:
                finish()
            # Zero bytes draw hypothesis' simplest choices, so a short input is a valid case too.
            case = source.from_bytes(data.ljust(DRAW_BYTES, b"\0"))
            if case is not None:
                campaign.run_case(case)
        except BaseException as exc:
            finish(exc)

    corpus = write_seed_inputs(Path(work) / "corpus", config.seed)
    atheris.Setup(libfuzzer_args(config, Path(work), corpus), one_input)
    atheris.Fuzz()
    finish(MoefuzzError("atheris.Fuzz() returned"))


def write_seed_inputs(directory: Path, seed: int, count: int = SEED_INPUTS) -> Path:
    """Write ``count`` inputs of :data:`~moefuzz.engine.generate.DRAW_BYTES` random bytes, the same
    ones :class:`~moefuzz.engine.generate.CaseSource` draws first with ``seed``; return ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    source = random.Random(seed)
    for index in range(count):
        (directory / f"seed-{index:02d}").write_bytes(source.randbytes(DRAW_BYTES))
    return directory


def instrument_strategy_code(target: Target) -> int:
    """Add atheris' coverage instrumentation to every function of ``moefuzz.strategies`` and of
    the module that defines ``target.strategy`` (and the functions nested in them); return how
    many were instrumented. Works on modules already imported (``instrument_imports`` would not)."""
    import atheris

    module = getattr(target.strategy, "__module__", None) or ""

    def wanted(name: str) -> bool:
        return name == module or name == "moefuzz.strategies" or name.startswith("moefuzz.strategies.")

    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and wanted(getattr(obj, "__module__", None) or ""):
            try:
                atheris.instrument_func(obj)
            except Exception:  # pragma: no cover - code atheris cannot rewrite stays uninstrumented
                continue
            count += 1
    return count


def _last_stats(log: str) -> str:
    matches = _STATS.findall(log)
    if not matches:
        return ""
    cov, ft, corp = matches[-1]
    return f"libFuzzer cov {cov} ft {ft} corpus {corp}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
