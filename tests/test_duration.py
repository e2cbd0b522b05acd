import pytest

from moefuzz.errors import UsageError
from moefuzz.ui.duration import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("45", 45), ("2.5m", 150), (" 1D ", 86400)],
)
def test_durations_with_units_and_bare_seconds_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "-5s", "0s", "1h 30m", "s10"])
def test_malformed_or_non_positive_durations_are_usage_errors(text):
    with pytest.raises(UsageError, match="duration="):
        parse_duration(text)
