"""2.5D input: each slice with its neighbours as channels."""

from __future__ import annotations

import torch


def with_context(slices: torch.Tensor, indices, context: int) -> torch.Tensor:
    """``(N, H, W)`` slices -> ``(len(indices), 2 * context + 1, H, W)``.

    Channel ``context`` is the slice itself; neighbours beyond the volume's ends repeat
    the edge slice, as a scanner's first and last slices have no outer neighbour.
    """
    indices = torch.as_tensor(indices, dtype=torch.long, device=slices.device)
    offsets = torch.arange(-context, context + 1, device=slices.device)
    neighbours = (indices[:, None] + offsets[None, :]).clamp(0, slices.shape[0] - 1)
    return slices[neighbours]
