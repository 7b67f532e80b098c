"""Test-only fault injection, so tests make trials fail for real (documented in README's Tests).

`BILSTM_FAULTS` holds a JSON list of faults; each names a study trial number and an epoch
(1-based: the fault strikes as that epoch starts):

    [{"trial": 2, "epoch": 1, "fault": "raise"},             # raises on every attempt
     {"trial": 3, "epoch": 2, "fault": "raise", "once": true}, # raises once; the retry goes on
     {"trial": 4, "epoch": 2, "fault": "nan"},               # its weights become NaN: the loss diverges
     {"trial": "*", "epoch": 3, "fault": "pause", "seconds": 20, "once": true},  # every trial waits there
     {"trial": 5, "epoch": 1, "fault": "memory"},            # grows until Ray's memory monitor kills its worker
     {"point": "export", "fault": "pause", "seconds": 5}]    # the driver waits there

A "memory" fault allocates (and touches) memory in steps until the node's use passes Ray's
kill threshold (RAY_memory_usage_threshold, 0.95 by default) and Ray's memory monitor kills the
trial's worker: a real kill, as a trial that outgrows the node's memory gets. Where nothing kills
it within MEMORY_WAIT_S of passing the threshold, it raises.

A fault that strikes `once` leaves a marker file in the folder `BILSTM_FAULTS_STATE` names
(it must be set for such faults), so that a retry does not strike again. Unset (the normal
case), nothing happens.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ENV = "BILSTM_FAULTS"
STATE_ENV = "BILSTM_FAULTS_STATE"
RAY_THRESHOLD_ENV = "RAY_memory_usage_threshold"
"""The share of a node's memory past which Ray's memory monitor kills workers (Ray's own variable)."""
MEMORY_WAIT_S = 10.0
"""Seconds a "memory" fault waits, past the threshold, for Ray to kill its worker."""


class InjectedFault(RuntimeError):
    """Raised by a trial because BILSTM_FAULTS asked for it."""


def environment() -> dict:
    """The fault variables set in this process, for the trials' workers on every node (runtime_env)."""
    return {name: os.environ[name] for name in (ENV, STATE_ENV, RAY_THRESHOLD_ENV) if name in os.environ}


def planned() -> list[dict]:
    return json.loads(os.environ.get(ENV) or "[]")


def before_epoch(number: int, epoch: int, training) -> None:
    """Strike the faults planned for this trial and epoch (see the module's docstring)."""
    import numpy as np

    for fault in planned():
        if fault.get("trial") not in (number, "*") or fault.get("epoch") != epoch or _struck(fault, number, epoch):
            continue
        if fault["fault"] == "nan":
            weights = training.network.get_weights()
            training.network.set_weights(weights[:-1] + [np.full_like(weights[-1], np.nan)])
        elif fault["fault"] == "pause":
            time.sleep(float(fault.get("seconds", 5)))
        elif fault["fault"] == "raise":
            raise InjectedFault(f"injected fault: trial {number} raises at epoch {epoch}")
        elif fault["fault"] == "memory":
            _outgrow_memory(number, epoch)


def _outgrow_memory(number: int, epoch: int) -> None:
    """Allocate 128 MiB at a time, every page written, until Ray kills this process (see the module's docstring)."""
    import numpy as np
    import psutil

    threshold, held, passed = float(os.environ.get(RAY_THRESHOLD_ENV, 0.95)), [], None
    while passed is None or time.monotonic() - passed < MEMORY_WAIT_S:
        memory = psutil.virtual_memory()
        if passed is None and 1 - memory.available / memory.total > threshold + 0.01:
            passed = time.monotonic()
        if memory.available > 2 * 2**30:  # never take the node's last GiBs
            held.append(np.ones(2**27, np.uint8))
        time.sleep(0.05)
    raise InjectedFault(f"injected fault: trial {number} outgrew memory at epoch {epoch} and nothing killed it")


def _struck(fault: dict, number: int, epoch: int) -> bool:
    """For a fault that strikes once: whether it already has (and mark it as struck now)."""
    if not fault.get("once"):
        return False
    marker = Path(os.environ[STATE_ENV]) / f"{fault['fault']}-{number}-{epoch}"
    if marker.exists():
        return True
    marker.touch()
    return False


def pause(point: str) -> None:
    """Wait where a fault asks the driver to (so a test can stop it there)."""
    for fault in planned():
        if fault.get("point") == point and fault["fault"] == "pause":
            time.sleep(float(fault.get("seconds", 5)))
