"""ep_gather's own shrink passes: fewer rows of input_tensor, fewer hidden columns.

A shrunk routing table leaves input_tensor with all M rows of the original scatter, most of them
named by no slot any more. ``compact_rows`` keeps the rows some input_index entry names, in order,
and renumbers the entries, so every slot still reads the same values (an entry outside [0, M)
stays outside). ``truncate_hidden`` is the engine's hidden-column bisection
(:func:`~moefuzz.shrinking.routing.hidden_pass`) over input_tensor.
"""

from __future__ import annotations

import numpy as np

from moefuzz.shrinking.passes import Shrinker, ShrinkPass
from moefuzz.shrinking.routing import hidden_columns, hidden_pass


def compact_rows(shrinker: Shrinker) -> None:
    """Drop the rows of input_tensor that no input_index entry names; renumber the entries."""
    case = shrinker.current
    values, index = case.arrays["input_tensor"], case.arrays["input_index"]
    named = (index >= 0) & (index < values.shape[0])
    keep = np.unique(index[named])
    if keep.size == values.shape[0]:
        return
    renumber = np.zeros(values.shape[0], dtype=np.int64)
    renumber[keep] = np.arange(keep.size)
    new_index = np.where(named, renumber[np.where(named, index, 0)], index).astype(np.int32)
    shrinker.consider(case.replace({"input_tensor": np.ascontiguousarray(values[keep]), "input_index": new_index}))


GATHER_PASSES = (ShrinkPass(compact_rows), hidden_pass(*hidden_columns("input_tensor")))
