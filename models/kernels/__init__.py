"""The LSTM recurrence as a compiled TensorFlow op (`lstm.cc`), built once per machine.

    python -m models.kernels        # build it now (a cluster node's setup step); prints its path

The op library is compiled with the local C++ compiler against the installed TensorFlow,
for this machine's CPU, and cached under `$BILSTM_KERNEL_CACHE` (default
`~/.cache/bilstm-search/kernels`). The cache key covers the source, TensorFlow's version,
the CPU, and the compiler's command line and version (not where the source lies), so each
machine builds it once (about 30 s), also where a Ray job unpacks the project anew on each
node. Builds take a file lock, so concurrent processes wait for one build instead of
compiling side by side; the compiler's whole output is kept beside the library
(`lstm-KEY.log`). Where it cannot be built, `load()` returns None and `why_unavailable()`
says why (the compiler's first `error:` line); callers then use Keras's own LSTM.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from filelock import FileLock

SOURCE = Path(__file__).with_name("lstm.cc")
LOCK_TIMEOUT_S = 600
"""How long a process waits for another one's build before giving up."""
_failure: str | None = None


class KernelBuildError(RuntimeError):
    """The kernel could not be built here; the message is one line saying why."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "bilstm-search" / "kernels"
    return Path(os.environ.get("BILSTM_KERNEL_CACHE", default)).expanduser()


def _cpu_identity() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    wanted = ("model name", "flags")
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if line.split(":")[0].strip() in wanted}
    return platform.machine() + "".join(lines.values())


def _compiler() -> str:
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise KernelBuildError(f"no C++ compiler ({compiler}) to build {SOURCE.name}; set CXX or install g++")
    return compiler


def _compiler_version(compiler: str) -> str:
    done = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return (done.stdout.strip().splitlines() or [""])[0]


def _command(compiler: str, output: Path, source: Path | None = None) -> list[str]:
    """The compiler's command line for the op library (TensorFlow's flags included); `source`: SOURCE."""
    import tensorflow as tf

    flags = ["-shared", "-fPIC", "-O3", "-march=native", "-w"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags.append("-mno-avx512fp16")  # TensorFlow's Eigen headers do not compile with it
    return [
        compiler,
        *flags,
        *tf.sysconfig.get_compile_flags(),
        str(source or SOURCE),
        "-o",
        str(output),
        *tf.sysconfig.get_link_flags(),
    ]


def library_path(compiler: str | None = None) -> Path:
    """Where this machine's build lives (whether or not it exists yet)."""
    import tensorflow as tf

    compiler = compiler or _compiler()
    # The source by its name only (its bytes are in the key): a Ray job's workers run a copy of the
    # project unpacked in a folder of each node's session, which would otherwise rebuild per job and node.
    command = " ".join(_command(compiler, Path("OUT"), Path(SOURCE.name)))
    identity = [SOURCE.read_bytes(), tf.__version__, _cpu_identity(), command, _compiler_version(compiler)]
    key = hashlib.sha256(b"\0".join(part if isinstance(part, bytes) else part.encode() for part in identity)).hexdigest()
    return cache_dir() / f"lstm-{key[:16]}.so"


def build() -> Path:
    """Compile the op library unless this machine has it; returns its path.

    Raises KernelBuildError (one line: the compiler's first `error:` line, and where the
    whole log is) when the build fails or another process's build takes too long.
    """
    compiler = _compiler()
    target = library_path(compiler)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S):
            if not target.exists():  # another process may have built it while we waited
                _compile(compiler, target)
    except TimeoutError:
        raise KernelBuildError(f"waited {LOCK_TIMEOUT_S} s for another process to build {target.name}") from None
    return target


def _compile(compiler: str, target: Path) -> None:
    log = target.with_suffix(".log")
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        command = _command(compiler, built)
        done = subprocess.run(command, capture_output=True, text=True)
        log.write_text(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}exit status {done.returncode}\n")
        if done.returncode != 0:
            raise KernelBuildError(f"building {SOURCE.name} failed: {first_error(done.stderr)} (full log: {log})")
        os.replace(built, target)  # atomic: a reader finds a whole file or none


def first_error(output: str) -> str:
    """The compiler's first `error:` line, else its last line."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return next((line for line in lines if "error:" in line), lines[-1] if lines else "(no output)")


@functools.cache
def load():
    """The loaded op library (`lstm_sequence`, `lstm_sequence_grad`), or None."""
    global _failure
    import tensorflow as tf

    _failure = None
    try:
        return tf.load_op_library(str(build()))
    except (KernelBuildError, OSError, tf.errors.NotFoundError) as error:
        _failure = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None


def why_unavailable() -> str | None:
    """Why `load()` returned None; None when the kernel loaded (or was not tried)."""
    return _failure
