"""Shrinking failing cases: a driver (:mod:`.shrinker`) and passes (:mod:`.routing`)."""

from moefuzz.shrinking.passes import ShrinkPass
from moefuzz.shrinking.shrinker import Shrinker, ShrinkResult

__all__ = ["ShrinkPass", "ShrinkResult", "Shrinker"]
