"""The LSTM recurrence as a compiled TensorFlow op (`lstm.cc`), built on first use.

The op library is compiled with the local C++ compiler against the installed TensorFlow,
for this machine's CPU, and cached under `$BILSTM_KERNEL_CACHE` (default
`~/.cache/bilstm-search/kernels`), keyed by the source, TensorFlow's version and the CPU,
so each machine builds it once (about 30 s). Where it cannot be built, `load()` returns
None and `why_unavailable()` says why; callers then use Keras's own LSTM.
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

SOURCE = Path(__file__).with_name("lstm.cc")
_failure: str | None = None


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "bilstm-search" / "kernels"
    return Path(os.environ.get("BILSTM_KERNEL_CACHE", default))


def _cpu_identity() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    wanted = ("model name", "flags")
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if line.split(":")[0].strip() in wanted}
    return platform.machine() + "".join(lines.values())


def _command(compiler: str, output: Path) -> list[str]:
    import tensorflow as tf

    flags = ["-shared", "-fPIC", "-O3", "-march=native", "-w"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags.append("-mno-avx512fp16")  # TensorFlow's Eigen headers do not compile with it
    return [compiler, *flags, *tf.sysconfig.get_compile_flags(), str(SOURCE), "-o", str(output), *tf.sysconfig.get_link_flags()]


def library_path() -> Path:
    """Where this machine's build lives (whether or not it exists yet)."""
    import tensorflow as tf

    key = hashlib.sha256(SOURCE.read_bytes() + tf.__version__.encode() + _cpu_identity().encode()).hexdigest()[:16]
    return cache_dir() / f"lstm-{key}.so"


def build() -> Path:
    """Compile the op library unless this machine has it; returns its path.

    Raises RuntimeError with the compiler's last line when the build fails.
    """
    target = library_path()
    if target.exists():
        return target
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler}) to build {SOURCE.name}; set CXX or install g++")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        done = subprocess.run(_command(compiler, built), capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"building {SOURCE.name} failed: {last}")
        os.replace(built, target)  # atomic: a concurrent build finds a whole file or none
    return target


@functools.cache
def load():
    """The loaded op library (`lstm_sequence`, `lstm_sequence_grad`), or None."""
    global _failure
    import tensorflow as tf

    _failure = None
    try:
        return tf.load_op_library(str(build()))
    except (RuntimeError, OSError, tf.errors.NotFoundError) as error:
        _failure = str(error)
        return None


def why_unavailable() -> str | None:
    """Why `load()` returned None; None when the kernel loaded (or was not tried)."""
    return _failure
