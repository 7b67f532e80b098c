"""Learning-rate schedules the search can choose, registered so checkpoints of their optimizers load."""

from __future__ import annotations

import keras

from models.saving import serializable


@serializable
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    Steps are optimizer updates (batches). Planned over the trial's whole training, so a
    trial stopped early has spent its steps at the larger rates.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        done = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        return ops.where(step < self.warmup_steps, warm, self.peak * (1.0 - done))

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}
