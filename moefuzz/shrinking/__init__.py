"""Shrinking failing cases: a driver (:mod:`.shrinker`), its searches (:mod:`.search`), and
passes shared by targets (:mod:`.routing`, :mod:`.paging`)."""

from moefuzz.shrinking.shrinker import Shrinker, ShrinkPass, ShrinkResult

__all__ = ["ShrinkPass", "ShrinkResult", "Shrinker"]
