"""Stratified samples of IMHI sets: the same N rows every time, in the same label (and aspect) proportions.

`--limit N` must give a sample whose F1 is comparable to the full set's (so strata keep their shares,
largest-remainder rounding, every stratum with a non-zero share keeps at least one row when N allows),
and that is identical across runs and machines (a seeded generator per set, not Python's hash()).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

R = TypeVar("R")


def _allocate(sizes: dict[Hashable, int], n: int) -> dict[Hashable, int]:
    """Per-stratum quotas summing to n (n < total), proportional with largest remainders."""
    total = sum(sizes.values())
    keys = sorted(sizes, key=repr)
    exact = {k: n * sizes[k] / total for k in keys}
    quota = {k: int(exact[k]) for k in keys}
    # each stratum gets a row before any gets a second one, when n allows (small strata stay visible)
    if n >= len(keys):
        for k in keys:
            if quota[k] == 0:
                quota[k] = 1
    while sum(quota.values()) > n:  # the minimum-one rule overshot: take from the largest quotas
        k = max(keys, key=lambda k: (quota[k] - exact[k], quota[k]))
        quota[k] -= 1
    remaining = n - sum(quota.values())
    order = sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), -sizes[k], repr(k)))
    i = 0
    while remaining > 0:
        k = order[i % len(order)]
        if quota[k] < sizes[k]:
            quota[k] += 1
            remaining -= 1
        i += 1
    return quota


def stratified_sample(
    items: Sequence[R], n: int | None, key: Callable[[R], Hashable], seed: int = 0, salt: str = ""
) -> list[R]:
    """n items of `items` stratified by key(item), chosen by a generator seeded with (seed, salt).

    Returns the chosen items in their original order; all items when n is None or >= len(items).
    """
    import numpy as np

    if n is None or n >= len(items):
        return list(items)
    if n <= 0:
        return []
    strata: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        strata[key(item)].append(i)
    quota = _allocate({k: len(v) for k, v in strata.items()}, n)
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode("utf-8"))])
    chosen: list[int] = []
    for k in sorted(strata, key=repr):
        idx = strata[k]
        if quota[k]:
            picks = rng.permutation(len(idx))[: quota[k]]
            chosen.extend(idx[j] for j in picks)
    return [items[i] for i in sorted(chosen)]


__all__ = ["stratified_sample"]
