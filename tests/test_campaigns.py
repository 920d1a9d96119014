"""Campaign files: the examples load, validation errors are exact, defaults are documented."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.campaigns import (
    DEFAULT_RETRY_AFTER,
    CampaignModel,
    campaign_files,
    campaign_schema,
    campaigns_dir,
    duration,
    find_campaign,
    load_campaign_file,
    load_campaigns,
    packaged_campaigns_dir,
)
from dialer.cli import cli
from dialer.errors import CampaignError, CampaignInvalid, ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "campaigns").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_campaign_loads(path: Path) -> None:
    campaign = load_campaign_file(path)
    assert campaign.name == path.stem


def test_examples_cover_the_three_kinds_and_ship_in_the_package() -> None:
    kinds = {load_campaign_file(p).kind for p in EXAMPLES}
    assert kinds == {"reminder", "recall", "reactivation"}
    packaged = {p.name for p in campaign_files(packaged_campaigns_dir())}
    assert packaged == {p.name for p in EXAMPLES}


def test_minimal_campaign_gets_documented_defaults(
    make_campaign: Callable[..., CampaignModel],
) -> None:
    campaign = make_campaign("recall")
    assert campaign.clinics == "all"
    assert campaign.audience.overdue_days == (0, 730)  # type: ignore[union-attr]
    assert campaign.audience.due_within_days == 14  # type: ignore[union-attr]
    assert campaign.audience.recall_types == ["prophy", "child_prophy", "perio"]  # type: ignore[union-attr]
    assert campaign.priority_fields == ["overdue_days"]
    assert campaign.calling.phones == ["mobile", "home", "work"]
    assert (campaign.calling.max_attempts, campaign.calling.max_attempts_per_day) == (4, 1)
    assert campaign.calling.retry_after == DEFAULT_RETRY_AFTER
    assert campaign.dialing.mode == "predictive"
    assert campaign.dialing.max_abandon_rate == 0.03
    assert set(campaign.messages.safe_harbor) == {"en", "es"}
    assert "{clinic_name}" in campaign.messages.safe_harbor["es"]


def test_retry_after_overrides_merge_with_defaults(
    make_campaign: Callable[..., CampaignModel],
) -> None:
    campaign = make_campaign("recall", calling={"retry_after": {"busy": "1h30m"}})
    assert campaign.calling.retry_after == {**DEFAULT_RETRY_AFTER, "busy": "1h30m"}
    assert duration("1h30m") == timedelta(minutes=90)
    assert duration("1d") == timedelta(hours=24)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"audience": {"overdue_days": [5, 1]}},
            "audience.overdue_days: overdue_days must be [low, high] with 0 <= low <= high",
            id="bounds",
        ),
        pytest.param(
            {"audience": {"foo": 1}}, "audience.foo: Extra inputs are not permitted", id="extra-key"
        ),
        pytest.param(
            {"calling": {"windows": [{"days": ["mon"], "start": "07:30", "end": "12:00"}]}},
            "calling.windows.0: window 07:30-12:00 must start before it ends and lie inside "
            "08:00-21:00 callee-local time",
            id="window-outside-federal",
        ),
        pytest.param(
            {"calling": {"windows": [{"days": ["mon"], "start": "9:00", "end": "12:00"}]}},
            "calling.windows.0.start: expected a time as HH:MM",
            id="time-format",
        ),
        pytest.param(
            {"calling": {"retry_after": {"busy": "5 minutes"}}},
            "calling.retry_after.busy: expected a duration such as 30m, 4h or 1d (1d = 24 hours)",
            id="duration",
        ),
        pytest.param(
            {"dialing": {"max_abandon_rate": 0.05}},
            "dialing.max_abandon_rate: Input should be less than or equal to 0.03",
            id="abandon-cap",
        ),
        pytest.param(
            {"dialing": {"caller_id": "5035550100"}},
            "dialing.caller_id: expected 'clinic' or an E.164 number such as +15035550100",
            id="caller-id",
        ),
        pytest.param(
            {"priority": [{"field": "months_since_visit"}]},
            "priority.0.field: 'months_since_visit' does not apply to a recall campaign (use "
            "attempts, household_size, no_show_count, overdue_days)",
            id="priority-kind",
        ),
        pytest.param(
            {"messages": {"safe_harbor": {"en": "Hi {first_name}, call {callback_number}"}}},
            "messages.safe_harbor: en: {first_name} not allowed; recorded messages may use "
            "only {callback_number} and {clinic_name}",
            id="patient-data-in-message",
        ),
        pytest.param(
            {"name": "Spring Recall"},
            "name: expected a slug of lower-case letters, digits and -",
            id="slug",
        ),
        pytest.param(
            {"kind": "recal"}, "kind: expected one of reminder, recall, reactivation", id="kind"
        ),
    ],
)
def test_validation_errors_are_file_field_message(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    import yaml

    data: dict[str, object] = {"name": "spring", "kind": "recall", "audience": {}}
    data.update(overrides)
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(CampaignInvalid) as caught:
        load_campaign_file(path)
    assert caught.value.problems == [f"{path}: {message}"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nkind: recall\naudience: [\n", encoding="utf-8")
    with pytest.raises(CampaignInvalid) as caught:
        load_campaign_file(path)
    assert caught.value.problems[0].startswith(f"{path}: line 4: not valid YAML")


def test_two_files_with_one_name_fail_naming_both(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yml"):
        (tmp_path / name).write_text("name: same\nkind: recall\naudience: {}\n", encoding="utf-8")
    with pytest.raises(CampaignInvalid) as caught:
        load_campaigns(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path / 'b.yml'}: name: campaign 'same' is also defined in {tmp_path / 'a.yaml'}"
    ]
    with pytest.raises(CampaignInvalid):
        find_campaign("same", tmp_path)


def test_find_by_name_or_path_ignores_other_broken_files(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("name: good\nkind: reactivation\naudience: {}\n")
    (tmp_path / "broken.yaml").write_text("name: broken\nkind: nope\n")
    assert find_campaign("good", tmp_path)[0].kind == "reactivation"
    assert find_campaign(str(tmp_path / "good.yaml"), tmp_path)[0].name == "good"
    with pytest.raises(CampaignError) as caught:
        find_campaign("missing", tmp_path)
    assert (
        caught.value.message == f"No campaign named 'missing' in {tmp_path} (known: broken, good)"
    )


def test_campaigns_folder_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert campaigns_dir(None) == packaged_campaigns_dir()
    (tmp_path / "campaigns").mkdir()
    assert campaigns_dir(None) == Path("campaigns")
    with pytest.raises(ConfigError, match="Campaigns folder nowhere does not exist"):
        campaigns_dir(Path("nowhere"))


def test_schema_describes_the_three_kinds() -> None:
    schema = campaign_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["discriminator"]["mapping"]) == {"reminder", "recall", "reactivation"}


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["campaign", "validate", *map(str, EXAMPLES)])
    assert (ok.exit_code, ok.output) == (0, "3 campaign file(s) are valid.\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nkind: recall\naudience: {overdue_days: [9, 1]}\ndialing: {mode: turbo}\n"
    )
    out = runner.invoke(cli, ["campaign", "validate", str(bad)])
    assert out.exit_code == 1
    assert out.output == (
        f"Error: {bad}: dialing.mode: Input should be 'preview', 'progressive', 'ratio', "
        f"'adaptive' or 'predictive'\n{bad}: audience.overdue_days: overdue_days must be "
        "[low, high] with 0 <= low <= high\n"
    )
    folder = runner.invoke(cli, ["--campaigns", str(ROOT / "campaigns"), "campaign", "validate"])
    assert folder.exit_code == 0
    assert folder.output.endswith("are valid: hygiene-recall, reactivation, reminders\n")


def test_cli_schema_is_json() -> None:
    out = CliRunner().invoke(cli, ["campaign", "schema"])
    assert out.exit_code == 0
    assert json.loads(out.output)["title"] == "dialer campaign"
