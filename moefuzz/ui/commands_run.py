"""The ``moefuzz run`` command: fuzz a target for a time budget."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click

from moefuzz.runtime import stopping
from moefuzz.runtime.stopping import Interrupted
from moefuzz.ui.cli_common import (
    DEVICES,
    Reports,
    kill_started_children,
    one_line_errors,
    parse_devices,
    report_options,
    targets_option,
)
from moefuzz.ui.commands_findings import TOOLS_ALL, sanitize_and_print

#: Where ``moefuzz run`` saves findings without ``--corpus``: a directory of its own, apart from
#: the regression corpus a repository commits and replays (``corpus/``, as ci/moefuzz.yml names
#: it), so that a campaign reports what it finds instead of matching the committed reproducers.
DEFAULT_CORPUS = "moefuzz-corpus"


def engine_option(value: str) -> str:
    """The engine ``--engine`` names: ``random`` or ``atheris``; the former name ``hypothesis``
    still means ``random`` (with a note on stderr).

    Raises:
        click.BadParameter: an unknown engine.
    """
    from moefuzz.engine.config import ENGINES, engine_name

    name = engine_name(value)
    if name not in ENGINES:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(map(repr, ENGINES))}")
    if name != value:
        click.echo(f"moefuzz: note: --engine {value} is now called --engine {name}", err=True)
    return name


@click.command()
@targets_option
@click.option("--target", "target_name", required=True, help="Target to fuzz (see `moefuzz targets`).")
@click.option("--time", "duration", required=True, help="Fuzzing budget: 90s, 10m, 1h, 1h30m.")
@click.option("--kernel", default=None, help="Kernel of the target (default: its correct Triton kernel).")
@click.option(
    "--corpus",
    "corpus_dir",
    default=DEFAULT_CORPUS,
    show_default=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Where findings are saved (DIR/<target>/<finding-id>/); failures it already holds count as known. "
    "Kept apart from a repository's committed regression corpus, corpus/, which CI replays: --corpus corpus "
    "adds to that one.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the case source.")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="cpu runs Triton's interpreter.")
@click.option("--case-timeout", default=None, type=float, help="Seconds before a case is a hang.")
@click.option("--shrink-time", default=None, help="Budget to shrink each finding (default: time/4, 1m..10m).")
@click.option(
    "--perturb",
    "perturb_runs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Launches per case: the plain one, then varied launch knobs and poison patterns (races).",
)
@click.option("--sanitize", is_flag=True, help="Re-run each new finding under compute-sanitizer (GPU only).")
@click.option(
    "--no-caching-allocator", is_flag=True, help="Run workers with PYTORCH_NO_CUDA_MEMORY_CACHING=1 (fresh buffers)."
)
@click.option(
    "--engine",
    default="random",
    show_default=True,
    metavar="[random|atheris]",
    callback=lambda ctx, param, value: engine_option(value),
    help="What chooses the cases: seeded random bytes through the target's strategy, or libFuzzer's "
    "coverage-guided mutations of those bytes (atheris).",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 256),
    help="Workers running cases at once (default: in the interpreter 1; on a GPU with generators two per GPU "
    "where the host has 12 cores a GPU, else one per GPU; without generators half the CPU cores, at most 8).",
)
@click.option(
    "--generators",
    default=None,
    type=click.IntRange(0, 256),
    help="CPU-only processes generating cases and running the oracle for the workers (0: each worker draws "
    "its own; default: none in the interpreter, on a GPU the spare cores, at most 8).",
)
@click.option("--drawers", "drawers_alias", default=None, type=click.IntRange(0, 256), hidden=True)
@click.option(
    "--devices",
    "device_list",
    default=None,
    help="CUDA device indices to spread the workers over, e.g. 0,1 (default: the first GPU).",
)
@click.option(
    "--max-findings",
    default=None,
    type=click.IntRange(1),
    help="End once this many new findings are saved and shrunk (default: run the whole budget).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    metavar="[ADDRESS]",
    help="Run over a Ray cluster, one actor per GPU: auto (the running cluster, the default), local "
    "(start one here) or HOST:PORT. Needs moefuzz[ray].",
)
@click.option(
    "--ray-actors",
    default=None,
    type=click.IntRange(1, 4096),
    help="Actors of a --ray campaign (default: one per GPU of the cluster; without GPUs, one CPU actor).",
)
@report_options
@one_line_errors
def run(
    target_name: str,
    duration: str,
    kernel: str | None,
    corpus_dir: Path,
    seed: int,
    device: str,
    case_timeout: float | None,
    shrink_time: str | None,
    perturb_runs: int,
    sanitize: bool,
    no_caching_allocator: bool,
    reports: Reports,
    engine: str,
    workers: int | None,
    device_list: str | None,
    max_findings: int | None,
    generators: int | None,
    drawers_alias: int | None,
    ray_address: str | None,
    ray_actors: int | None,
) -> None:
    """Fuzz a target for a time budget; save and shrink every failure."""
    from moefuzz.model.registry import get_target
    from moefuzz.ui.duration import parse_duration

    devices = parse_devices(device_list) if device_list is not None else ()
    seconds = parse_duration(duration)
    shrink_seconds = parse_duration(shrink_time) if shrink_time else None
    get_target(target_name).kernel(kernel)  # unknown names fail here, before any worker starts

    from moefuzz.engine.campaign import CampaignConfig, CampaignStatus, run_campaign
    from moefuzz.ui.status import StatusDisplay, status_line

    config = CampaignConfig(
        target_name,
        kernel,
        seconds,
        corpus_dir,
        seed,
        device,
        case_timeout,
        shrink_seconds,
        perturb_runs=perturb_runs,
        caching_allocator=not no_caching_allocator,
        engine=engine,
        workers=workers,
        devices=devices,
        max_findings=max_findings,
        generators=generators if generators is not None else drawers_alias,
    )
    fuzz: Callable[[CampaignConfig, Callable[[CampaignStatus], None] | None], CampaignStatus] = run_campaign
    if ray_address is not None or ray_actors is not None:  # Ray is imported here, and only here
        from moefuzz.cluster.driver import ray_runner

        fuzz = ray_runner(ray_address, ray_actors)
    with StatusDisplay() as display:
        try:
            status = fuzz(config, display.update)
        except Interrupted as exc:  # before fuzzing began, or a second signal: reports if a status is there
            if exc.status is None:
                raise
            kill_started_children()
            status = exc.status
        finally:
            stopping.finish()  # from here a first signal is recorded: the reports get written
    click.echo(status_line(status))
    for problem in status.corpus_problems:
        click.echo(f"warning: not a known finding: {problem}", err=True)
    if status.engine_stats:
        click.echo(f"engine {engine}: {status.engine_stats}")
    if "interpreter" in status.device:
        click.echo("note: no GPU used: Triton kernels ran in the interpreter on the CPU (TRITON_INTERPRET=1)")
    for path, finding in status.findings:
        shrink = finding.shrink
        click.echo(
            f"saved {path}  {finding.signature}  size {tuple(shrink.get('size', []))} "
            f"(from {tuple(shrink.get('original_size', []))})"
        )
        if finding.explanation:
            click.echo(f"  {finding.explanation.splitlines()[0]}")
        if int(finding.found.get("runs", 1)) > 1:
            rate = f"{finding.found.get('failures')}/{finding.found.get('runs')}"
            click.echo(f"  failed {rate} perturbed launches when found; shrunk case {finding.shrink.get('rate', '?')}")
    if status.known:
        click.echo(f"{status.known} failures matched findings already in {corpus_dir}")
    from moefuzz.ui.reports import run_document

    # A signal since fuzzing ended (stopping.finish recorded it): the report and exit status say so.
    status.interrupted = status.interrupted or stopping.stopped_by()
    reports.write(lambda at, seconds: run_document(config, status, at, seconds))
    if sanitize:
        for path, _finding in status.findings:
            if stopping.requested() is None:
                sanitize_and_print(path, TOOLS_ALL, None)
    if status.resource_failures:
        counts = ", ".join(f"{count} {name}" for name, count in sorted(status.resource_failures.items()))
        click.echo(f"cases the machine could not run (not findings): {counts}")
    status.interrupted = status.interrupted or stopping.stopped_by()
    if status.interrupted:
        click.echo(f"moefuzz: interrupted by {status.interrupted}; findings so far are saved", err=True)
        signum = getattr(signal, status.interrupted, None)
        sys.exit(128 + int(signum) if signum is not None else 130)
    sys.exit(1 if status.findings or status.known else 0)
