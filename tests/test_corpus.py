"""The corpus stores findings as data only, atomically, and refuses anything it cannot trust."""

import json
import zipfile

import numpy as np
import pytest

from moefuzz.errors import CaseError, CorpusError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch
from moefuzz.store.corpus import FINDING_FILE, Finding, iter_finding_paths, load_finding, save_finding


def make_finding(tokens: int = 3) -> Finding:
    ids = np.arange(tokens * 2, dtype=np.int32).reshape(tokens, 2) % 5
    case = Case({"token_selected_experts": ids}, {"num_experts": 5, "start_expert": 0, "end_expert": 5})
    return Finding(
        target="three_step_sort",
        kernel="bug-duplicate-topk",
        kind="divergence",
        detail="expert_first_token_offset",
        message="expert_first_token_offset[1]: ...",
        case=case,
        original_case=case,
        mismatch=Mismatch("expert_first_token_offset", 1, 2, 3, 1, 6),
        environment={"torch": "x"},
        found={"seed": 7},
    )


def test_saved_finding_loads_back_equal(tmp_path):
    finding = make_finding()
    directory = save_finding(tmp_path, finding)
    assert directory == tmp_path / "three_step_sort" / "bug-duplicate-topk--divergence-expert_first_token_offset"
    loaded = load_finding(directory)
    assert loaded.signature == finding.signature
    assert loaded.mismatch == finding.mismatch
    assert loaded.case.digest() == finding.case.digest()
    assert loaded.found == {"seed": 7}
    assert load_finding(directory / FINDING_FILE).case.digest() == finding.case.digest()


def test_updating_a_finding_replaces_its_case_file_and_leaves_no_temporaries(tmp_path):
    finding = make_finding(4)
    directory = save_finding(tmp_path, finding)
    finding.case = make_finding(2).case
    save_finding(tmp_path, finding)
    names = sorted(p.name for p in directory.iterdir())
    assert len([n for n in names if n.startswith("case-")]) == 1
    assert not [n for n in names if n.endswith(".tmp")]
    assert load_finding(directory).case.arrays["token_selected_experts"].shape == (2, 2)
    assert load_finding(directory).original_case.arrays["token_selected_experts"].shape == (4, 2)


def test_finding_json_is_plain_json_naming_an_npz(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    document = json.loads((directory / FINDING_FILE).read_text())
    assert document["format"] == "moefuzz-finding" and document["format_version"] == 1
    assert document["case"]["file"].endswith(".npz")
    assert document["case"]["arrays"]["token_selected_experts"] == {"dtype": "<i4", "shape": [3, 2]}


def test_corrupt_json_is_a_corpus_error_naming_the_path(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    (directory / FINDING_FILE).write_text("{not json")
    with pytest.raises(CorpusError, match="not JSON"):
        load_finding(directory)


def test_unknown_format_version_is_refused(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    document = json.loads((directory / FINDING_FILE).read_text())
    document["format_version"] = 99
    (directory / FINDING_FILE).write_text(json.dumps(document))
    with pytest.raises(CorpusError, match="format_version=99"):
        load_finding(directory)


def test_truncated_npz_is_a_corpus_error(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    npz = next(directory.glob("case-*.npz"))
    npz.write_bytes(npz.read_bytes()[:20])
    with pytest.raises(CorpusError, match="corrupt case file"):
        load_finding(directory)


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    npz = next(directory.glob("case-*.npz"))
    with zipfile.ZipFile(npz, "w") as archive, archive.open("token_selected_experts.npy", "w") as handle:
        np.save(handle, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CorpusError):
        load_finding(directory)


def test_case_content_that_does_not_match_its_digest_is_refused(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    npz = next(directory.glob("case-*.npz"))
    np.savez(npz, token_selected_experts=np.zeros((3, 2), dtype=np.int32))
    with pytest.raises(CorpusError, match="sha256"):
        load_finding(directory)


def test_paths_expand_to_finding_directories_and_empty_ones_are_errors(tmp_path):
    directory = save_finding(tmp_path, make_finding())
    assert iter_finding_paths([tmp_path]) == [directory]
    assert iter_finding_paths([directory / FINDING_FILE]) == [directory]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no findings"):
        iter_finding_paths([tmp_path / "empty"])
    with pytest.raises(CorpusError, match="no such path"):
        iter_finding_paths([tmp_path / "missing"])


def test_cases_refuse_object_arrays_and_non_scalar_params():
    with pytest.raises(CaseError):
        Case({"x": np.array([object()], dtype=object)})
    with pytest.raises(CaseError):
        Case({"x": np.zeros(2)}, {"p": [1, 2]})  # type: ignore[dict-item]
