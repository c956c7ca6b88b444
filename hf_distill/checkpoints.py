"""What a checkpoint holds beyond ``Trainer``'s own files, and the checks before resuming from one."""

from __future__ import annotations

import json
import os

from .base import write_json_atomic

#: what the trainer resolved during a run, saved in every checkpoint beside Trainer's own state
STATE_FILE = "hf_distill_state.json"


def save_trainer_state(folder: str, auto_kd_weight: float | None) -> None:
    write_json_atomic(os.path.join(folder, STATE_FILE), {"auto_kd_weight": auto_kd_weight})


def resume_state(checkpoint: str, kd_weight: str) -> float | None:
    """The resolved ``auto`` KD weight saved in ``checkpoint``; raises when the checkpoint lacks the optimizer
    or scheduler state (resuming would silently restart them) or the ``auto`` weight it needs."""
    missing = [f for f in ("optimizer.pt", "scheduler.pt") if not os.path.isfile(os.path.join(checkpoint, f))]
    if missing:
        raise ValueError(f"{checkpoint} lacks {', '.join(missing)} (saved with save_only_model=True?): "
                         "resuming would restart the optimizer; start a new run from its weights instead")
    state = os.path.join(checkpoint, STATE_FILE)
    if os.path.isfile(state):
        with open(state) as f:
            return json.load(f).get("auto_kd_weight")
    if kd_weight == "auto":
        raise ValueError(f"{checkpoint} has no {STATE_FILE}: the resolved kd_weight='auto' is unknown")
    return None
