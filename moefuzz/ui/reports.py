"""Machine-readable reports of ``moefuzz run`` and ``moefuzz replay``: JSON and JUnit XML.

Both are built from one JSON document and written atomically (a reader never sees half a file).
The JSON schema, ``format`` ``moefuzz-report``, ``format_version`` 1::

    format, format_version   "moefuzz-report", 1
    command                  "run" or "replay"
    moefuzz_version          the package version
    started_at               UTC, ISO 8601, to the second
    duration_s               wall time of the command, seconds
    device                   the worker's device name ("NVIDIA H200", "cpu (Triton interpreter, ...)")
    environment              the worker's versions: python, torch, triton, numpy, device, ...
    passed                   true when the command exits 0
    tests, failures          what the JUnit file counts

    run only:
    target, kernel, seed     what was fuzzed
    budget_s                 the fuzzing budget
    execs, execs_per_s       cases run, and per second of fuzzing
    workers                  workers that ran cases at once
    generators               CPU-only processes that generated cases for them (0: the workers drew)
    startup_s                seconds from the start to the first worker ready (its CUDA context
                             made and first case run), null if none started
    first_case_s             seconds from the start to the first case's outcome (generators ready,
                             the kernel compiled), null if none ran
    cuda_build               how the kernel's CUDA source was built (``compiled in 41.2 s``,
                             ``cached (compiled in 41.2 s)``), "" for a kernel without one
    worker_restarts          workers replaced after a crash or a hang
    worker_recovery_s        seconds from each crash or hang to the next case done: {p50, p95, n}
    corpus                   the corpus directory
    findings                 new findings: [{id, kind, signature, message, path, size,
                             original_size, shrink_complete, shrink_s, found_after_s, report}]
    known                    failures matching reproducers already in the corpus:
                             [{id, path, count}]
    ray                      only over a Ray cluster (--ray): {address, nodes, gpus,
                             actor_restarts, blamed, actors: [{slot, node, gpus, restarts,
                             seed, state}]}; workers and generators are then summed over the actors

    replay only:
    kernel                   the kernel every reproducer replayed on, or null (each its own)
    results                  [{id, path, target, kernel, recorded, outcome, passed, message,
                             seconds, report}]; recorded is the saved signature, outcome
                             "pass" or the signature of the failure now

``report`` is the finding as ``moefuzz show`` prints it. In JUnit XML, ``run`` gives one
testcase per new finding and per known one (a passing ``campaign`` testcase when there is
neither), ``replay`` one per reproducer; a failure's ``message`` is the one-line report and its
text the full one.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moefuzz.cluster.data import ClusterStatus
from moefuzz.engine.campaign import CampaignConfig, CampaignStatus
from moefuzz.errors import UsageError
from moefuzz.store.corpus import atomic_write
from moefuzz.store.replay import ReplayResult
from moefuzz.ui.render import render_finding

FORMAT = "moefuzz-report"
FORMAT_VERSION = 1


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"p50", "p95", "n"}`` of ``values`` (nearest rank; ``None`` for none)."""
    ordered = sorted(values)

    def rank(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 4) if ordered else None

    return {"p50": rank(0.5), "p95": rank(0.95), "n": len(ordered)}


def run_document(
    config: CampaignConfig, status: CampaignStatus, started_at: float, duration_s: float
) -> dict[str, Any]:
    """The JSON document of a finished campaign (see the module doc)."""
    findings = []
    for path, finding in status.findings:
        shrink = finding.shrink
        findings.append(
            {
                "id": finding.finding_id,
                "kind": finding.kind,
                "signature": finding.signature,
                "message": finding.message,
                "path": str(path),
                "size": list(shrink.get("size", shrink.get("original_size", []))),
                "original_size": list(shrink.get("original_size", [])),
                "shrink_complete": bool(shrink.get("complete", False)),
                "shrink_s": shrink.get("seconds"),
                "found_after_s": finding.found.get("elapsed_s"),
                "report": render_finding(finding),
            }
        )
    known = [
        {"id": finding_id, "path": str(config.corpus / status.target / finding_id), "count": count}
        for finding_id, count in sorted(status.matched.items())
    ]
    document = _header("run", started_at, duration_s, status.device, status.environment)
    document.update(
        {
            "passed": not findings and not known and not status.interrupted,
            "tests": max(1, len(findings) + len(known)),
            "failures": len(findings) + len(known),
            "target": status.target,
            "kernel": status.kernel,
            "seed": config.seed,
            "budget_s": config.duration_s,
            "execs": status.execs,
            "skipped_outside_domain": status.skipped_outside_domain,
            "coverage": status.coverage.to_json() if status.coverage is not None else None,
            "execs_per_s": round(status.execs_per_s, 3),
            "workers": status.workers,
            "generators": status.generators,
            "startup_s": None if status.fuzzing_since is None else round(status.fuzzing_since - status.started, 3),
            "first_case_s": None if status.first_case_at is None else round(status.first_case_at - status.started, 3),
            "cuda_build": status.build,
            "worker_restarts": status.worker_restarts,
            "worker_recovery_s": percentiles(status.recovery_seconds),
            "generator_restarts": status.generator_restarts,
            "resource_failures": dict(status.resource_failures),
            "skipped_known_crashers": status.skipped_known_crashers,
            "interrupted": status.interrupted or None,
            "corpus": str(config.corpus),
            "findings": findings,
            "known": known,
        }
    )
    if isinstance(status, ClusterStatus):
        document["ray"] = {
            "address": status.address,
            "nodes": status.nodes,
            "gpus": status.gpus,
            "actor_restarts": status.actor_restarts,
            "blamed": status.blamed,
            "actors": [
                {
                    "slot": a.slot,
                    "node": a.node,
                    "gpus": a.gpus,
                    "restarts": a.restarts,
                    "seed": a.seed,
                    "state": a.state,
                }
                for a in status.actors
            ],
        }
    return document


def replay_document(
    results: Sequence[ReplayResult], kernel: str | None, started_at: float, duration_s: float
) -> dict[str, Any]:
    """The JSON document of a replay (see the module doc)."""
    environment = results[0].environment if results else {}
    rows = [
        {
            "id": r.finding.finding_id,
            "path": str(r.path),
            "target": r.finding.target,
            "kernel": r.kernel,
            "recorded": r.finding.signature,
            "outcome": r.outcome.signature,
            "passed": r.outcome.kind == "pass",
            "message": r.outcome.message,
            "seconds": round(r.outcome.seconds, 3),
            "report": render_finding(r.finding, r.outcome),
        }
        for r in results
    ]
    failures = sum(not row["passed"] for row in rows)
    device = environment.get("device_name", environment.get("device", ""))
    document = _header("replay", started_at, duration_s, device, environment)
    document.update(
        {"passed": failures == 0, "tests": len(rows), "failures": failures, "kernel": kernel, "results": rows}
    )
    return document


def junit_xml(document: dict[str, Any]) -> bytes:
    """The JUnit XML of a report document: one ``testsuite`` of one testcase per finding."""
    cases: list[tuple[str, str, float | None, tuple[str, str, str] | None]]
    if document["command"] == "run":
        suite_name = f"moefuzz run {document['target']}/{document['kernel']}"
        classname = f"moefuzz.{document['target']}"
        cases = [
            (classname, f["id"], f["found_after_s"], _failure(f["signature"], f["message"], f["report"]))
            for f in document["findings"]
        ]
        cases += [
            (
                classname,
                k["id"],
                None,
                (f"met again {k['count']} times; reproducer already at {k['path']}", "known", ""),
            )
            for k in document["known"]
        ]
        if not cases:
            cases = [(classname, "campaign", document["duration_s"], None)]
    else:
        suite_name = "moefuzz replay"
        cases = [
            (
                f"moefuzz.store.replay.{r['target']}",
                f"{r['path']} [{r['kernel']}]",
                r["seconds"],
                None if r["passed"] else _failure(r["outcome"], r["message"], r["report"]),
            )
            for r in document["results"]
        ]
    suites = ET.Element("testsuites", name="moefuzz")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=suite_name,
        tests=str(len(cases)),
        failures=str(sum(failure is not None for *_, failure in cases)),
        errors="0",
        skipped="0",
        time=f"{document['duration_s']:.3f}",
        timestamp=document["started_at"],
    )
    properties = ET.SubElement(suite, "properties")
    for name in ("device", "moefuzz_version", "seed", "execs"):
        if document.get(name) is not None:
            ET.SubElement(properties, "property", name=name, value=str(document[name]))
    for classname, name, seconds, failure in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{float(seconds or 0):.3f}")
        if failure is not None:
            message, kind, text = failure
            ET.SubElement(case, "failure", message=message, type=kind).text = text
    suites.set("tests", suite.get("tests", "0"))
    suites.set("failures", suite.get("failures", "0"))
    for element in suites.iter():
        element.text = None if element.text is None else xml_safe(element.text)
        for key, value in element.attrib.items():
            element.set(key, xml_safe(value))
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


#: Characters XML 1.0 cannot hold even escaped: C0 controls but tab, newline and carriage
#: return; surrogates; U+FFFE and U+FFFF.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with each character XML 1.0 cannot hold written as ``\\xNN`` or ``\\uNNNN``
    (a kernel's message may hold a NUL or an escape sequence); the rest is left to the XML
    writer to escape."""
    return _XML_ILLEGAL.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


def write_reports(document: dict[str, Any], json_path: Path | None, junit_path: Path | None) -> None:
    """Write the JSON and/or JUnit XML file, each atomically, creating parent directories.

    Raises:
        UsageError: a path that cannot be written.
    """
    outputs = []
    if json_path is not None:
        outputs.append((json_path, (json.dumps(document, indent=2) + "\n").encode()))
    if junit_path is not None:
        outputs.append((junit_path, junit_xml(document)))
    for path, data in outputs:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError as exc:
            raise UsageError(f"cannot write report path={str(path)!r}: {exc.strerror or exc}") from None


def _failure(signature: str, message: str, report: str) -> tuple[str, str, str]:
    """(message, type, text) of a JUnit failure: the one-line report, the kind, the full one."""
    return f"{signature}: {message}", signature.split(":")[0], report


def _header(command: str, started_at: float, duration_s: float, device: str, environment: dict[str, str]) -> dict:
    try:
        version = importlib.metadata.version("moefuzz")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    when = datetime.datetime.fromtimestamp(started_at, datetime.timezone.utc)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "command": command,
        "moefuzz_version": version,
        "started_at": when.isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
        "device": device,
        "environment": dict(environment),
    }
