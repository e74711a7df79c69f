"""What planning windows needs to know of a network, measured by small probes.

- **Input multiple**: the sides a network needs (its stride): the largest
  :class:`~nuclei.models.padding.PadToMultiple` it holds (a U-Net of depth 4: 16), else 1.
  Windows start and measure multiples of it, so a window's pooling grid is the whole image's.
- **Reach** (receptive field): how wide a band along a window's interior edge (aligned on
  the multiple) the missing image beyond it can change. Measured by one forward pass of a
  probe image holding a ``multiple`` x ``multiple`` block of NaN (every phase of the stride
  grid) in its middle: NaN spreads through convolutions (whatever the weights), ReLU,
  pooling, normalisation and upsampling to exactly the outputs that depend on the block, so
  how far the NaN region extends past the block is the band a border can reach. The probe
  grows until that region stays clear of its border. (The default U-Net, depth 4: 94 px,
  the last row that changes when the image is cut at a multiple of 16.) Blending that
  ignores a ``margin >= reach`` band at interior edges reproduces the whole-image forward.
  An operation that hides NaN (``nan_to_num``, masking on ``isnan``) would make it too small.
- **Bytes per pixel** of one forward pass: the peak bytes of tensors alive during that probe
  forward (:class:`LiveTensorBytes`) per input pixel, times
  :data:`MEMORY_SAFETY` for what the count does not see (convolution workspace, allocator
  slack). Activations grow with the pixels (constant costs make small probes overestimate),
  so it scales to any window and batch. (Default U-Net: 408 B/px counted; the resident
  memory of a repeated 768x768 CPU forward grows by 448 B/px, 1.1x; a process's first
  forward of a size adds a one-off of code pages and malloc arenas, 550-830 B/px in all.)

Profiles are cached per network (weakly) and device, so a network is probed once.

Live bytes are counted by :class:`LiveTensorBytes`, a dispatch mode that watches every aten
operation run inside it (any device): each new storage an operation returns is counted from
its creation until the last tensor viewing it is freed. Its ``peak`` is the most such bytes
alive at once: what a forward pass holds in activations, on top of what existed before it
(weights, the input). It does not see workspace that an operation allocates and frees
internally (convolution scratch, allocator slack): hence :data:`MEMORY_SAFETY`.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from nuclei.models.padding import PadToMultiple


def _storage_key(tensor: torch.Tensor) -> tuple[str, int]:
    return str(tensor.device), tensor.untyped_storage().data_ptr()


class LiveTensorBytes(TorchDispatchMode):
    """A dispatch mode counting the storage bytes of tensors created inside it while alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._views: dict[tuple[str, int], int] = {}  # storage -> live tensors viewing it
        self._sizes: dict[tuple[str, int], int] = {}

    def _release(self, key: tuple[str, int]) -> None:
        self._views[key] -= 1
        if self._views[key] == 0:
            del self._views[key]
            self.live -= self._sizes.pop(key)

    def _track(self, tensor: torch.Tensor, existing: set[tuple[str, int]]) -> None:
        key = _storage_key(tensor)
        if key[1] == 0 or (key in existing and key not in self._views):
            return  # empty, or a view of (or in place on) a tensor made before the mode
        if key not in self._views:
            self._views[key] = 0
            self._sizes[key] = tensor.untyped_storage().nbytes()
            self.live += self._sizes[key]
            self.peak = max(self.peak, self.live)
        self._views[key] += 1
        weakref.finalize(tensor, self._release, key)

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Run the operation, then count the storages of its outputs."""
        out = func(*args, **(kwargs or {}))
        inputs = tree_flatten((args, kwargs or {}))[0]
        existing = {_storage_key(t) for t in inputs if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided:
                self._track(tensor, existing)
        return out


def peak_live_bytes(call: Callable[[], Any]) -> int:
    """The most bytes of tensors created by ``call()`` alive at once while it runs."""
    with LiveTensorBytes() as counter:
        call()
    return counter.peak


log = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor], torch.Tensor]

#: Estimated peak memory / counted live tensor bytes (workspace, allocator slack).
MEMORY_SAFETY = 1.5
#: Side of the first probe, and the largest one tried.
REACH_PROBE_SIDES = (256, 1024)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple``."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class NetworkProfile:
    """A network's input multiple, receptive-field reach (px) and forward bytes per pixel."""

    multiple: int
    reach: int
    bytes_per_pixel: float

    @property
    def margin(self) -> int:
        """The zero-weight band at interior window edges: the reach, rounded up to the multiple."""
        return round_up(self.reach, self.multiple)

    @property
    def overlap(self) -> int:
        """Overlap of neighbouring windows: both margins and a ``multiple``-wide blend."""
        return 2 * self.margin + self.multiple

    def forward_bytes(self, height: int, width: int, windows: int = 1) -> float:
        """Estimated peak memory of one forward pass of ``windows`` windows of that size."""
        return self.bytes_per_pixel * height * width * windows


def input_multiple(net: Forward) -> int:
    """The multiple a network's input sides must have: the least common multiple of the
    :class:`PadToMultiple` wrappers it holds; 1 for anything else."""
    if not isinstance(net, nn.Module):
        return 1
    found = [m.multiple for m in net.modules() if isinstance(m, PadToMultiple)]
    return math.lcm(*found) if found else 1


def _nan_probe(
    net: Forward, side: int, multiple: int, device: torch.device, channels: int
) -> tuple[int, bool, float]:
    """Reach of a NaN block in a ``side`` probe, whether its region stayed clear of the
    border, and the forward's counted bytes per pixel."""
    start = side // 2 // multiple * multiple
    image = torch.rand(1, channels, side, side, generator=torch.Generator().manual_seed(0))
    image[..., start : start + multiple, start : start + multiple] = float("nan")
    image = image.to(device)
    outputs: list[torch.Tensor] = []
    counted = peak_live_bytes(lambda: outputs.append(net(image)))
    out = outputs.pop()
    if out.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"the network maps {side}x{side} inputs to {tuple(out.shape[-2:])}")
    reached = out.isnan().flatten(0, -3).any(dim=0).cpu()
    rows = torch.nonzero(reached.any(dim=1)).flatten()
    cols = torch.nonzero(reached.any(dim=0)).flatten()
    if rows.numel() == 0:
        return 0, True, counted / side**2  # the output does not depend on the input
    low, high = int(min(rows[0], cols[0])), int(max(rows[-1], cols[-1]))
    reach = max(start - low, high - (start + multiple - 1), 0)
    return reach, low > 0 and high < side - 1, counted / side**2


@torch.inference_mode()
def probe_network(
    net: Forward, multiple: int, device: torch.device, channels: int = 3
) -> tuple[int, float]:
    """The reach (px) and estimated forward bytes per pixel of ``net``, by NaN probes."""
    side, largest = (round_up(s, multiple) for s in REACH_PROBE_SIDES)
    while True:
        reach, contained, per_pixel = _nan_probe(net, side, multiple, device, channels)
        if contained or side >= largest:
            break
        side *= 2
    if not contained:
        log.warning("receptive field wider than a %d px probe; reach taken as %d", side, reach)
    return reach, per_pixel * MEMORY_SAFETY


def network_profile(net: Forward, device: torch.device | str, channels: int = 3) -> NetworkProfile:
    """The :class:`NetworkProfile` of ``net`` on ``device`` (probed once, then cached)."""
    device = torch.device(device)
    key = (str(device), channels)
    try:
        known = _CACHE.setdefault(net, {})
    except TypeError:  # not weakly referable: probe every time
        known = {}
    if key not in known:
        multiple = input_multiple(net)
        reach, per_pixel = probe_network(net, multiple, device, channels)
        known[key] = NetworkProfile(multiple, reach, per_pixel)
        log.info("Network profile on %s: %s", device, known[key])
    return known[key]
