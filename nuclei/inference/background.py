"""Lower CPU priority for the helper processes of a prediction (decoding, postprocessing).

On a machine with few cores the network's threads and the helpers compete for the same
cores; a thread of the network that loses its core stalls its partners at the next
synchronisation. Helpers at a lower priority (a higher ``nice`` value) take the cores when
the network leaves them idle and yield them when it needs them. The network is the
pipeline's bottleneck there, so this costs the helpers nothing they need.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: ``nice`` increment of decoding and postprocessing processes (0: same priority).
HELPER_NICENESS = 10


def lower_priority(worker_id: int | None = None) -> None:
    """Lower this process's CPU priority by :data:`HELPER_NICENESS` (a DataLoader
    ``worker_init_fn`` or a pool initializer); where the system refuses, run as is."""
    try:
        os.nice(HELPER_NICENESS)
    except (OSError, AttributeError) as exc:  # AttributeError: no os.nice (Windows)
        log.debug("could not lower the priority of process %d: %s", os.getpid(), exc)
