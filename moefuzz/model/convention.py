"""A target built from its folder by convention: ``__init__.py`` states only what differs.

A target package ``pkg`` (say ``moefuzz_targets.page_table``, target name ``page_table``) holds:

- ``pkg.contract``: ``check``, ``output_specs`` and ``compare`` (required); ``explain``,
  ``derive`` and ``explain_crash`` when the contract has them (the :class:`Target` defaults
  otherwise);
- ``pkg.strategy``: ``cases``, a function of :class:`Limits` to a strategy of cases;
- ``pkg.oracle``: ``<name>_torch`` (named only: workers import it);
- ``pkg.kernels``: one function per kernel, ``<name>_<kernel>`` with the kernel's ``-`` as
  ``_`` (``page_table_triton``, ``page_table_bug_trailing_entries``), named only;
- ``pkg.domain`` (optional): ``DOMAIN``, the target's input domain
  (:class:`~moefuzz.model.domain.Domain`: what ``moefuzz coverage`` counts);
- ``pkg.shrink`` (optional): ``PASSES`` (or a function ``passes()``) and ``size``. Without a
  shrink module, a routing target whose strategy module defines ``LAYOUT`` (a
  :class:`~moefuzz.shrinking.routing.RoutingLayout`) shrinks with the routing passes and size of
  that layout.

:func:`conventional_target` imports the contract, strategy, domain and shrink modules (numpy
and hypothesis), never the oracle or the kernels.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from moefuzz.model.case import Case
from moefuzz.model.target import KernelSpec, Target

if TYPE_CHECKING:
    from moefuzz.execute.cuda_build import CudaBuild
    from moefuzz.shrinking.passes import ShrinkPass

#: The contract functions a target takes from ``contract.py`` when the module defines them.
OPTIONAL_CONTRACT = ("explain", "derive", "explain_crash")


def kernel(
    name: str, summary: str, *, models_bug: str | None = None, entry: str = "", build: CudaBuild | None = None
) -> KernelSpec:
    """A kernel of a conventional target: its entry is filled in by :func:`conventional_target`
    (``pkg.kernels:<target>_<name with - as _>``) unless ``entry`` names another
    ``"module:function"``; ``build``: the C++/CUDA source its entry calls into (see
    :class:`~moefuzz.execute.cuda_build.CudaBuild`)."""
    return KernelSpec(name, entry, summary, models_bug, build)


def kernel_entry(package: str, kernel_name: str) -> str:
    """``"pkg.kernels:<target>_<kernel>"``, the conventional entry of ``kernel_name`` (``-`` as
    ``_``) in the target package ``package``."""
    target = package.rpartition(".")[2]
    return f"{package}.kernels:{target}_{kernel_name.replace('-', '_')}"


def _optional_module(name: str) -> ModuleType | None:
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def _shrinking(package: str, strategy: ModuleType) -> tuple[Sequence[ShrinkPass], Callable[[Case], tuple[int, ...]]]:
    shrink = _optional_module(f"{package}.shrink")
    if shrink is not None:
        passes = shrink.PASSES if hasattr(shrink, "PASSES") else shrink.passes()
        return tuple(passes), shrink.size
    if hasattr(strategy, "LAYOUT"):
        from moefuzz.shrinking.routing import routing_passes, routing_size

        return tuple(routing_passes(strategy.LAYOUT)), routing_size(strategy.LAYOUT)
    raise AttributeError(f"{package} has no shrink module and its strategy no routing LAYOUT")


def conventional_target(
    package: str,
    *,
    summary: str,
    source: str,
    kernels: Sequence[KernelSpec],
    launch_knobs: Mapping[str, tuple[int, ...]] | None = None,
    **overrides: Any,
) -> Target:
    """The :class:`Target` of the package ``package``, from the names of the module doc.

    Args:
        package: the target's package (``moefuzz_targets.page_table``); its last component is
            the target's name.
        summary, source: one line each for ``moefuzz targets`` (what it computes; the upstream
            code its contract follows).
        kernels: the kernels, default first (:func:`kernel`); an empty entry becomes the
            conventional one.
        launch_knobs: the launch configurations its kernels honour (``{"num_warps": (1, 2)}``).
        overrides: any other :class:`Target` field, in place of the convention's
            (``shrink_passes``, ``size``, ``derive``...).

    Raises:
        ImportError: no contract or strategy module in ``package``.
        AttributeError: a required name is missing (``contract.compare``, ``strategy.cases``,
            a shrink module's ``size``), or there is neither a shrink module nor a ``LAYOUT``
            while ``shrink_passes`` or ``size`` is not given.
    """
    name = package.rpartition(".")[2]
    contract = importlib.import_module(f"{package}.contract")
    strategy = importlib.import_module(f"{package}.strategy")
    fields: dict[str, Any] = {
        "strategy": strategy.cases,
        "check": contract.check,
        "output_specs": contract.output_specs,
        "compare": contract.compare,
        "oracle": f"{package}.oracle:{name}_torch",
    }
    for optional in OPTIONAL_CONTRACT:
        if hasattr(contract, optional):
            fields[optional] = getattr(contract, optional)
    domain = _optional_module(f"{package}.domain")
    if domain is not None:
        fields["domain"] = domain.DOMAIN
    if "shrink_passes" not in overrides or "size" not in overrides:
        fields["shrink_passes"], fields["size"] = _shrinking(package, strategy)
    fields.update(overrides)
    specs = tuple(spec if spec.entry else replace(spec, entry=kernel_entry(package, spec.name)) for spec in kernels)
    return Target(
        name=name, summary=summary, source=source, kernels=specs, launch_knobs=dict(launch_knobs or {}), **fields
    )
