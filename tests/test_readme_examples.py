"""The README's "Use the strategies in your own @given tests" block runs and its tests pass."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_block_of(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"## {heading}\n") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def test_the_readme_strategies_example_runs_its_given_tests(tmp_path):
    # compiled from a file of its own: hypothesis reads a test's source by its file and line
    source = tmp_path / "readme_strategies_example.py"
    source.write_text(python_block_of("Use the strategies in your own @given tests"))
    namespace: dict = {"__name__": "readme_strategies_example"}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    tests = {name: value for name, value in namespace.items() if name.startswith("test_")}
    assert sorted(tests) == ["test_my_expert_counts", "test_my_request_pages"]
    for test in tests.values():
        test()  # hypothesis runs its examples; a failing one raises
