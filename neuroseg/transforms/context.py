"""2.5D input: each slice with its neighbours as channels."""

from __future__ import annotations

import torch


def with_context(slices: torch.Tensor, indices, context: int, first=None, last=None) -> torch.Tensor:
    """``(N, H, W)`` slices -> ``(len(indices), 2 * context + 1, H, W)``.

    Channel ``context`` is the slice itself; neighbours beyond the volume's ends repeat
    the edge slice, as a scanner's first and last slices have no outer neighbour.
    ``first`` and ``last`` (per index) bound each slice's neighbours when ``slices`` holds
    several volumes one after another (the training cache); by default the whole stack is one volume.
    """
    indices = torch.as_tensor(indices, dtype=torch.long, device=slices.device)
    offsets = torch.arange(-context, context + 1, device=slices.device)
    neighbours = indices[:, None] + offsets[None, :]
    low = torch.zeros_like(indices) if first is None else torch.as_tensor(first, device=slices.device)
    high = torch.full_like(indices, slices.shape[0] - 1) if last is None else torch.as_tensor(last, device=slices.device)
    neighbours = torch.maximum(torch.minimum(neighbours, high[:, None]), low[:, None])
    return slices[neighbours]
