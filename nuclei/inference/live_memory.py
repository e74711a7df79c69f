"""Peak bytes of the tensors a computation keeps alive at once, counted op by op.

:class:`LiveTensorBytes` watches every aten operation run inside it (any device): each new
storage an operation returns is counted from its creation until the last tensor viewing it
is freed. Its ``peak`` is the most such bytes alive at once: what a forward pass holds in
activations, on top of what existed before it (weights, the input). It does not see
workspace that an operation allocates and frees internally (convolution scratch, allocator
slack); :mod:`nuclei.inference.network_profile` adds a safety factor for those.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


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
