"""A process that saves findings to a corpus in a loop, for the fault-injection tests
(tests/test_corpus_faults.py): ``python corpus_writer.py CORPUS SEED SAVES``.

It prints ``ready`` once imported, then ``saved <finding-id> <sha256 of the case>`` after each
save returns: what the killing test may hold it to. Findings are new ones and updates of the
same few ids (as a campaign saves a finding, then its shrink progress), with cases of varying
size, so a kill lands in every phase of a save, of a new finding and of an update.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moefuzz.model.case import Case  # noqa: E402
from moefuzz.store.corpus import Finding, save_finding  # noqa: E402

KERNELS = ("k0", "k1", "k2", "k3", "k4")


def finding(rng: np.random.Generator, kernel: str) -> Finding:
    """A finding of ``kernel`` with a random case of 1..400 tokens."""
    tokens = int(rng.integers(1, 401))
    ids = rng.integers(0, 8, size=(tokens, 2), dtype=np.int32)
    case = Case({"token_selected_experts": ids}, {"num_experts": 8, "start_expert": 0, "end_expert": 8})
    original = Case({"token_selected_experts": np.concatenate([ids, ids])}, dict(case.params))
    return Finding("fake_sort", kernel, "divergence", "expert_first_token_offset", "m", case, original)


def main(corpus: Path, seed: int, saves: int) -> None:
    rng = np.random.default_rng(seed)
    print("ready", flush=True)
    for number in range(saves):
        # Each id is saved new, then updated; every fourth save updates a shared id.
        kernel = KERNELS[number % len(KERNELS)] if number % 4 == 3 else f"s{seed}-{number // 2}"
        found = finding(rng, kernel)
        save_finding(corpus, found)
        print(f"saved {found.finding_id} {found.case.digest()}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
