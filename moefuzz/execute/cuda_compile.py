"""The torch side of :mod:`moefuzz.execute.cuda_build`: compile a build into the cache, load it.

``python -m moefuzz.execute.cuda_compile`` reads a build as JSON on stdin, compiles it (or finds
it cached) and prints one JSON line: ``{"ok": true, "directory": ..., "seconds": ...,
"cached": ...}`` or ``{"ok": false, "error": <compiler output>}``. The campaign's parent runs it
so that neither torch nor CUDA is initialised there. Workers call :func:`load_extension`, which
imports the cached ``.so`` directly (no ninja run), and compiles in-process only when nothing
built it before (a replay or ``show --rerun`` of a kernel never fuzzed on this machine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from functools import cache
from types import ModuleType
from typing import Any

from moefuzz.execute.cuda_build import (
    BuildError,
    BuildResult,
    CudaBuild,
    build_directory,
    cached,
    first_errors,
    from_json,
    machine_key,
)


def compile_build(build: CudaBuild) -> BuildResult:
    """Compile ``build`` into its cache directory with ``torch.utils.cpp_extension`` (ninja; nvcc
    with ``-lineinfo``, ``TORCH_CUDA_ARCH_LIST`` set to this machine's GPUs) unless it is there.
    Concurrent callers wait on torch's lock file in that directory.

    Raises:
        BuildError: no GPU architecture to build for, or the compiler failed (``RuntimeError``
            of torch, its output quoted).
    """
    key = machine_key(allow_torch=True, cuda=build.uses_cuda)
    if key is None:
        raise BuildError(f"CUDA build {build.name}: no CUDA GPU to build for")
    hit = cached(build, key)
    if hit is not None:
        return hit
    from torch.utils import cpp_extension

    directory = build_directory(build, key)
    directory.mkdir(parents=True, exist_ok=True)
    if build.uses_cuda:
        os.environ["TORCH_CUDA_ARCH_LIST"] = key["archs"]
    cflags, cuda_flags = build.flags()
    started = time.perf_counter()
    common: dict[str, Any] = {
        "name": build.module_name,
        "extra_cflags": cflags,
        "build_directory": str(directory),
        "verbose": False,
    }
    try:
        if build.sources:
            cpp_extension.load(
                sources=list(build.sources), extra_cuda_cflags=cuda_flags if build.uses_cuda else None, **common
            )
        else:
            cpp_extension.load_inline(
                cpp_sources=[build.cpp_source],
                cuda_sources=[build.cuda_source] if build.cuda_source else None,
                functions=list(build.functions) or None,
                extra_cuda_cflags=cuda_flags if build.uses_cuda else None,
                **common,
            )
    except (RuntimeError, OSError, ImportError) as exc:
        raise BuildError(f"CUDA build {build.name} failed\n{first_errors(str(exc))}") from None
    seconds = time.perf_counter() - started
    library = f"{build.module_name}.so"
    record = {"library": library, "seconds": round(seconds, 3), "machine": key, "defines": dict(build.defines)}
    temporary = directory / "build.json.tmp"
    temporary.write_text(json.dumps(record, indent=1))
    temporary.replace(directory / "build.json")
    return BuildResult(directory, seconds, cached=False)


@cache
def load_extension(build: CudaBuild) -> ModuleType:
    """The compiled extension of ``build`` as a Python module (once per process): the cached
    ``.so`` imported directly, compiled first by :func:`compile_build` if it is not cached.

    Raises:
        BuildError: see :func:`compile_build`.
    """
    import torch  # noqa: F401  (the extension links against torch's libraries)

    result = cached(build, machine_key(allow_torch=True, cuda=build.uses_cuda)) or compile_build(build)
    path = result.directory / f"{build.module_name}.so"
    spec = importlib.util.spec_from_file_location(build.module_name, path)
    if spec is None or spec.loader is None:
        raise BuildError(f"CUDA build {build.name}: {path} is not a loadable extension")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main() -> int:
    build = from_json(json.loads(sys.stdin.read()))
    try:
        result = compile_build(build)
    except BuildError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
        return 1
    answer = {"ok": True, "directory": str(result.directory), "seconds": result.seconds, "cached": result.cached}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
