"""The run command's names: ``--engine random`` (``hypothesis`` its hidden former name) and
``--generators`` (``--drawers`` its hidden former name), passed to the campaign as such."""

import pytest
from click.testing import CliRunner

from moefuzz.engine import campaign as campaign_module
from moefuzz.engine.config import CampaignConfig, CampaignStatus, engine_name
from moefuzz.ui.cli import main


@pytest.fixture
def configs(monkeypatch):
    """The configs ``moefuzz run`` hands to the campaign (which does not run)."""
    seen: list[CampaignConfig] = []

    def fake_run(config, on_status=None):
        seen.append(config)
        return CampaignStatus(config.target, config.kernel or "correct", device="cpu")

    monkeypatch.setattr(campaign_module, "run_campaign", fake_run)
    return seen


RUN = ["run", "--target", "three_step_sort", "--time", "1s", "--device", "cpu"]


def test_the_default_engine_is_random_and_takes_the_generators_count(configs, tmp_path):
    result = CliRunner().invoke(main, [*RUN, "--corpus", str(tmp_path), "--generators", "3"])
    assert result.exit_code == 0, result.output
    assert (configs[0].engine, configs[0].generators) == ("random", 3)


def test_the_former_names_hypothesis_and_drawers_still_work(configs, tmp_path):
    args = [*RUN, "--corpus", str(tmp_path), "--engine", "hypothesis", "--drawers", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (configs[0].engine, configs[0].generators) == ("random", 2)
    assert "now called --engine random" in result.output


def test_an_unknown_engine_is_a_usage_error(configs, tmp_path):
    result = CliRunner().invoke(main, [*RUN, "--corpus", str(tmp_path), "--engine", "afl"])
    assert result.exit_code == 2 and not configs
    assert "'random', 'atheris'" in result.output


def test_the_help_names_only_the_current_names():
    text = CliRunner().invoke(main, ["run", "--help"]).output
    assert "--generators" in text and "random|atheris" in text
    assert "--drawers" not in text and "hypothesis" not in text


def test_the_former_engine_name_maps_to_the_current_one_and_others_pass_through():
    assert engine_name("hypothesis") == "random"
    assert engine_name("random") == "random" and engine_name("afl") == "afl"
