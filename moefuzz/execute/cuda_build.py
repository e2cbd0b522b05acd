"""CUDA C++ kernels: built once per source and machine, cached, before any worker starts.

A kernel entry may call into a torch extension compiled from C++/CUDA source with
``torch.utils.cpp_extension`` (``load`` for files, ``load_inline`` for strings; ninja). Its
:class:`CudaBuild`, set as :attr:`moefuzz.model.target.KernelSpec.build`, says what to compile::

    campaign start (parent, no torch)      prebuild(build)
        cache hit: build.json of this source and machine exists  -> nothing to do (milliseconds)
        miss: python -m moefuzz.execute.cuda_compile (a child process that imports torch and runs
              nvcc with -lineinfo) -> build.json; a compiler error is a BuildError (exit 2)
    worker (torch, CUDA)                   load_extension(build): imports the cached .so

Cache layout: ``cache_root()/cuda/<name>-<source hash>-<machine hash>/`` holds torch's build
files, ``<module>.so`` and ``build.json`` (written last: its presence means the .so is complete).
The source hash covers the name, every source file's bytes, the inline sources, the ``-D``
defines and extra flags; the machine hash the torch version, torch's CUDA version, the GPUs'
compute capabilities (``nvidia-smi``, else torch) and the Python ABI. ``MOEFUZZ_CACHE`` moves the
cache root (default ``$XDG_CACHE_HOME/moefuzz``, else ``~/.cache/moefuzz``).

This module does not import torch: the parent checks the cache and the toolchain without it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from moefuzz.errors import MoefuzzError

#: What a CUDA kernel needs, as ``moefuzz targets`` and ``run`` say it.
NEEDS = "needs a CUDA GPU and nvcc"
#: Flags every CUDA build gets: ``-lineinfo`` so that compute-sanitizer names source lines.
CUDA_FLAGS = ("-O3", "-lineinfo")
#: Seconds a build may take before the parent gives up on it.
BUILD_TIMEOUT_S = 1800.0
#: Compiler error lines a :class:`BuildError` quotes.
ERROR_LINES = 8
#: Bumped when the cache layout or the build flags change: old entries are then ignored.
FORMAT = 1


class CudaUnavailable(MoefuzzError):
    """A CUDA kernel was asked for where it cannot be built or run (no GPU, no nvcc, a CPU torch)."""


class BuildError(MoefuzzError):
    """A CUDA kernel's source did not compile (the message quotes the compiler's first errors)."""


@dataclass(frozen=True)
class CudaBuild:
    """What to compile for one CUDA kernel (a torch extension).

    Attributes:
        name: an identifier, the stem of the extension's module name.
        sources: absolute paths of ``.cu`` / ``.cpp`` files (``torch.utils.cpp_extension.load``).
        cpp_source, cuda_source, functions: inline sources (``load_inline``): C++ declarations
            and bindings, CUDA code, and the functions to bind when ``cpp_source`` has no
            ``PYBIND11_MODULE`` of its own.
        defines: ``-D`` macros, ``((NAME, VALUE), ...)``: bug models are defines of one source.
        extra_cuda_cflags: nvcc flags beyond :data:`CUDA_FLAGS`.
    """

    name: str
    sources: tuple[str, ...] = ()
    cpp_source: str = ""
    cuda_source: str = ""
    functions: tuple[str, ...] = ()
    defines: tuple[tuple[str, str], ...] = ()
    extra_cuda_cflags: tuple[str, ...] = field(default=())

    @classmethod
    def from_files(cls, name: str, *paths: str | Path, relative_to: str | Path | None = None) -> CudaBuild:
        """A build of source files; ``relative_to`` (a file or a directory, typically the
        caller's ``__file__``) anchors relative paths.

        Raises:
            MoefuzzError: a name that is not an identifier.
        """
        base = Path(relative_to) if relative_to is not None else Path.cwd()
        if base.suffix:
            base = base.parent
        resolved = tuple(str((base / path).resolve()) for path in paths)
        return cls(_identifier(name), sources=resolved)

    @classmethod
    def inline(cls, name: str, cpp_source: str, cuda_source: str, functions: tuple[str, ...] = ()) -> CudaBuild:
        """A build of inline sources, as ``torch.utils.cpp_extension.load_inline`` takes them."""
        return cls(_identifier(name), cpp_source=cpp_source, cuda_source=cuda_source, functions=tuple(functions))

    def with_defines(self, **defines: int | str) -> CudaBuild:
        """The same source with more ``-D`` macros (``with_defines(MOEFUZZ_BUG_FIRST_MATCH=1)``)."""
        merged = dict(self.defines) | {key: str(value) for key, value in defines.items()}
        return replace(self, defines=tuple(sorted(merged.items())))

    @property
    def uses_cuda(self) -> bool:
        """Whether nvcc compiles part of it (a ``.cu`` file or inline CUDA source)."""
        return bool(self.cuda_source) or any(path.endswith((".cu", ".cuh")) for path in self.sources)

    @property
    def source_hash(self) -> str:
        """sha256 of everything that changes the compiled code (see the module doc)."""
        digest = hashlib.sha256(f"moefuzz-cuda-{FORMAT}\0{self.name}\0".encode())
        for path in self.sources:
            digest.update(Path(path).name.encode() + b"\0")
            digest.update(Path(path).read_bytes() + b"\0")
        for part in (self.cpp_source, self.cuda_source, *self.functions, *self.extra_cuda_cflags):
            digest.update(part.encode() + b"\0")
        for key, value in self.defines:
            digest.update(f"-D{key}={value}\0".encode())
        return digest.hexdigest()

    @property
    def module_name(self) -> str:
        """The extension's Python module name: unique per source, so two builds of one name
        can be loaded in one process."""
        return f"{self.name}_{self.source_hash[:12]}"

    def flags(self) -> tuple[list[str], list[str]]:
        """(C++ flags, nvcc flags) of this build."""
        defines = [f"-D{key}={value}" for key, value in self.defines]
        return ["-O3", *defines], [*CUDA_FLAGS, *defines, *self.extra_cuda_cflags]


@dataclass(frozen=True)
class BuildResult:
    """A build in the cache: its directory, the compile's seconds, and whether this call found
    it there already (``cached``) or compiled it."""

    directory: Path
    seconds: float
    cached: bool

    def describe(self) -> str:
        """``cuda build cached (compiled in 41.2 s)`` or ``cuda build 41.2 s``, for the status."""
        if self.cached:
            return f"cached (compiled in {self.seconds:.1f} s)"
        return f"compiled in {self.seconds:.1f} s"


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise MoefuzzError(f"CUDA build name={name!r} must be a Python identifier")
    return name


def cache_root() -> Path:
    """moefuzz's cache directory: ``$MOEFUZZ_CACHE``, else ``$XDG_CACHE_HOME/moefuzz``, else
    ``~/.cache/moefuzz``."""
    explicit = os.environ.get("MOEFUZZ_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "moefuzz"


def find_nvcc() -> str | None:
    """Path of nvcc as torch's extension builder finds it: ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``,
    PATH, ``/usr/local/cuda/bin``; None if absent."""
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return str(Path(root) / "bin" / "nvcc")
    return shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").is_file() else None)


def torch_cuda_version() -> str | None:
    """``torch.version.cuda`` read from torch's ``version.py`` without importing torch (None for
    a CPU build, or if torch is not installed)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return None
    match = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return match.group(1) if match else None


def toolchain_problem() -> str | None:
    """Why a CUDA kernel cannot be built and run here (``no CUDA GPU``, ``no nvcc``, ``torch
    ... is a CPU build``), or None. Cheap: no torch import, no CUDA context."""
    missing = []
    if not os.path.exists("/dev/nvidiactl"):
        missing.append("no CUDA GPU")
    if find_nvcc() is None:
        missing.append("no nvcc (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    if torch_cuda_version() is None:
        missing.append("torch is a CPU build")
    return ", ".join(missing) or None


def unavailable_message(what: str) -> str:
    """``<what> needs a CUDA GPU and nvcc (here: no CUDA GPU)``, or "" where it can run."""
    problem = toolchain_problem()
    return f"{what} {NEEDS} (here: {problem})" if problem else ""


@lru_cache(maxsize=1)
def _nvidia_smi_archs() -> tuple[str, ...] | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    archs = sorted({line.strip() for line in done.stdout.splitlines() if re.fullmatch(r"\d+\.\d+", line.strip())})
    return tuple(archs) if done.returncode == 0 and archs else None


def gpu_archs(allow_torch: bool) -> tuple[str, ...] | None:
    """The GPUs' compute capabilities (``("9.0",)``), from nvidia-smi; else, with
    ``allow_torch``, from torch (initialises CUDA: never in the campaign's parent); else None."""
    archs = _nvidia_smi_archs()
    if archs is not None or not allow_torch:
        return archs
    import torch

    if not torch.cuda.is_available():
        return None
    found = {"{}.{}".format(*torch.cuda.get_device_capability(i)) for i in range(torch.cuda.device_count())}
    return tuple(sorted(found))


def machine_key(allow_torch: bool = False, cuda: bool = True) -> dict[str, str] | None:
    """What a compiled extension depends on besides its source: torch and its CUDA version, the
    GPU architectures (``cpu`` for a build without CUDA source), the Python ABI; None when the
    architectures are unknown without torch."""
    archs = gpu_archs(allow_torch) if cuda else ("cpu",)
    if archs is None:
        return None
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "none"
    return {
        "torch": torch_version,
        "torch_cuda": torch_cuda_version() or "none",
        "archs": ";".join(archs),
        "python": sys.implementation.cache_tag or sys.version.split()[0],
    }


def build_directory(build: CudaBuild, key: dict[str, str]) -> Path:
    """The cache directory of ``build`` on the machine ``key`` describes."""
    machine = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "cuda" / f"{build.name}-{build.source_hash[:16]}-{machine}"


def cached(build: CudaBuild, key: dict[str, str] | None) -> BuildResult | None:
    """The cache entry of ``build`` for ``key`` if it is complete, else None."""
    if key is None:
        return None
    directory = build_directory(build, key)
    try:
        record = json.loads((directory / "build.json").read_text())
    except (OSError, ValueError):
        return None
    if not (directory / record.get("library", "")).is_file():
        return None
    return BuildResult(directory, float(record.get("seconds", 0.0)), cached=True)


def prebuild(build: CudaBuild, what: str = "this kernel", timeout_s: float = BUILD_TIMEOUT_S) -> BuildResult:
    """Make sure ``build`` is compiled for this machine, from the parent of a campaign (no torch
    import, no CUDA context here): a cache hit returns at once; a miss compiles in a child
    process (``python -m moefuzz.execute.cuda_compile``) and waits for it.

    Args:
        build: what to compile.
        what: how errors name the kernel (``three_step_sort/cuda``).
        timeout_s: seconds the compile may take.

    Raises:
        CudaUnavailable: no GPU, no nvcc or a CPU torch, for a build with CUDA source.
        BuildError: the compiler failed (its first error lines quoted), or ran past ``timeout_s``.
    """
    if build.uses_cuda:
        problem = toolchain_problem()
        if problem:
            raise CudaUnavailable(f"{what} {NEEDS} (here: {problem})")
    hit = cached(build, machine_key(cuda=build.uses_cuda))
    if hit is not None:
        return hit
    started = time.perf_counter()
    command = [sys.executable, "-m", "moefuzz.execute.cuda_compile"]
    try:
        done = subprocess.run(
            command,
            input=json.dumps(to_json(build)),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: the CUDA build ran past {timeout_s:g} s") from None
    result = _last_json(done.stdout)
    if done.returncode != 0 or result is None or not result.get("ok"):
        if result is not None and result.get("error"):
            raise BuildError(f"{what}: {result['error']}")
        raise BuildError(f"{what}: the CUDA build failed\n{first_errors(done.stdout + done.stderr)}")
    seconds = time.perf_counter() - started
    return BuildResult(Path(result["directory"]), float(result.get("seconds", seconds)), cached=bool(result["cached"]))


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


_ERROR_LINE = re.compile(r"(\berror\b|\bError\b|fatal|undefined reference)")


def first_errors(text: str, limit: int = ERROR_LINES) -> str:
    """The compiler's first error lines in ``text`` (nvcc's ``file.cu(12): error: ...``, gcc's
    ``file.cpp:12:5: error: ...``), each indented; the last lines when none says error."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    skip = ("ninja:", "FAILED:", "Error building extension", "[")
    picked = [line for line in lines if _ERROR_LINE.search(line) and not line.lstrip().startswith(skip)]
    chosen = (picked or lines[-limit:])[:limit]
    return "\n".join(f"  {line[:300]}" for line in chosen) or "  (the compiler printed nothing)"


def to_json(build: CudaBuild) -> dict[str, Any]:
    """``build`` as JSON (what the compile process reads on stdin)."""
    return {
        "name": build.name,
        "sources": list(build.sources),
        "cpp_source": build.cpp_source,
        "cuda_source": build.cuda_source,
        "functions": list(build.functions),
        "defines": [list(pair) for pair in build.defines],
        "extra_cuda_cflags": list(build.extra_cuda_cflags),
    }


def from_json(data: dict[str, Any]) -> CudaBuild:
    """The inverse of :func:`to_json`."""
    return CudaBuild(
        name=data["name"],
        sources=tuple(data["sources"]),
        cpp_source=data["cpp_source"],
        cuda_source=data["cuda_source"],
        functions=tuple(data["functions"]),
        defines=tuple((str(key), str(value)) for key, value in data["defines"]),
        extra_cuda_cflags=tuple(data["extra_cuda_cflags"]),
    )


def prebuild_kernel(target: str, kernel: Any, device: str = "auto") -> str:
    """Build a campaign's kernel before its workers start, if it has a
    :attr:`~moefuzz.model.target.KernelSpec.build`; return what the status shows about it
    (``compiled in 41.2 s``, ``cached (compiled in 41.2 s)``), "" for a kernel without one.

    Raises:
        CudaUnavailable: a CUDA kernel asked for on ``device="cpu"`` or where the toolchain or
            the GPU is missing (the message says it needs a CUDA GPU and nvcc).
        BuildError: the compiler failed.
    """
    build = getattr(kernel, "build", None)
    if build is None:
        return ""
    what = f"kernel {target}/{kernel.name}"
    if device == "cpu" and build.uses_cuda:
        raise CudaUnavailable(f"{what} {NEEDS} (here: --device cpu)")
    return prebuild(build, what).describe()
