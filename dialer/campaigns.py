"""Campaign definitions: pydantic models, YAML loading, folder discovery and JSON Schema.

A campaign file is YAML validated with ``extra="forbid"``; only ``name``, ``kind`` and
``audience`` are required and every other key has the default documented on its field.
Every validation problem is reported as ``file: field.path: message``.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from enum import Enum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from dialer.errors import CampaignError, CampaignInvalid, ConfigError


class CampaignKind(str, Enum):
    """What a campaign calls about; decides its audience and what counts as conversion."""

    reminder = "reminder"
    recall = "recall"
    reactivation = "reactivation"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PhoneKindName = Literal["mobile", "home", "work"]
DialingMode = Literal["preview", "progressive", "ratio", "adaptive", "predictive"]


def _check(pattern: str, expected: str) -> BeforeValidator:
    """A validator of strings against ``pattern`` with a readable error."""
    compiled = re.compile(pattern)

    def check(value: object) -> object:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}")
        return value

    return BeforeValidator(check)


def _schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern})


_DURATION = r"(\d+d)?(\d+h)?(\d+m)?(\d+s)?(?<=[dhms])"
_HHMM = r"([01]\d|2[0-4]):[0-5]\d"
_SLUG = r"[a-z0-9][a-z0-9-]{0,63}"
Duration = Annotated[
    str,
    _check(_DURATION, "a duration such as 30m, 4h or 1d (1d = 24 hours)"),
    _schema(_DURATION),
]
HHMM = Annotated[str, _check(_HHMM, "a time as HH:MM"), _schema(_HHMM)]
Slug = Annotated[str, _check(_SLUG, "a slug of lower-case letters, digits and -"), _schema(_SLUG)]

FEDERAL_START, FEDERAL_END = "08:00", "21:00"
RetryOutcome = Literal[
    "no_answer",
    "busy",
    "failed",
    "machine",
    "left_message",
    "abandoned",
    "no_disposition",
    "wrong_number",
]
DEFAULT_RETRY_AFTER: dict[RetryOutcome, str] = {
    "no_answer": "4h",  # rang out: try at another time of day
    "busy": "30m",  # someone is there: soon
    "failed": "1d",  # network or carrier failure: tomorrow
    "machine": "1d",  # answering machine, no message left
    "left_message": "2d",  # give them time to call back
    "abandoned": "1h",  # we dropped them: make it right soon, on a PSR's line
    "no_disposition": "1h",  # the PSR never recorded what happened
    "wrong_number": "0m",  # the household's next phone can be tried at once
}
MESSAGE_PLACEHOLDERS = frozenset({"clinic_name", "callback_number"})
SCRIPT_PLACEHOLDERS = MESSAGE_PLACEHOLDERS | {"agent_name", "household_name", "patient_names"}
DEFAULT_MESSAGES = {
    "safe_harbor": {
        "en": "Hello, this is {clinic_name} calling. We are sorry we missed you. Please call us "
        "at {callback_number}. To stop calls from us, press 9 now.",
        "es": "Hola, le llama {clinic_name}. Lamentamos no haber podido atenderle. Por favor "
        "llámenos al {callback_number}. Para no recibir más llamadas, oprima 9 ahora.",
    },
    "voicemail": {
        "en": "Hello, this is {clinic_name} calling about your dental care. Please call us back "
        "at {callback_number}. Thank you.",
        "es": "Hola, le llama {clinic_name} sobre su cuidado dental. Por favor devuélvanos la "
        "llamada al {callback_number}. Gracias.",
    },
}
DEFAULT_SCRIPTS = {
    "en": "Hi, this is {agent_name} from {clinic_name}. I'm calling for {household_name} about "
    "{patient_names}.",
    "es": "Hola, habla {agent_name} de {clinic_name}. Le llamo de parte de la familia "
    "{household_name} sobre {patient_names}.",
}
PRIORITY_FIELDS_BY_KIND: dict[str, frozenset[str]] = {
    "reminder": frozenset({"days_until_appointment"}),
    "recall": frozenset({"overdue_days"}),
    "reactivation": frozenset({"months_since_visit"}),
}
COMMON_PRIORITY_FIELDS = frozenset({"household_size", "no_show_count", "attempts"})
PriorityField = Literal[
    "overdue_days",
    "days_until_appointment",
    "months_since_visit",
    "household_size",
    "no_show_count",
    "attempts",
]


@lru_cache(maxsize=256)
def duration(text: str) -> timedelta:
    """``30m``, ``4h``, ``1d`` (24 hours), ``90s`` or combinations like ``1h30m``
    (remembered: the engine reads a retry delay after every call)."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return timedelta(seconds=sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhms])", text)))


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _bounds(value: tuple[int, int], name: str) -> tuple[int, int]:
    low, high = value
    if low < 0 or high < low:
        raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
    return value


class AudienceBase(Strict):
    """Filters shared by every kind; all bounds inclusive."""

    ages: tuple[int, int] | None = Field(
        None,
        description="[min, max] age in years on the as-of date; unset: any age. "
        "When set, an unknown birth date fails it.",
    )
    languages: list[str] | None = Field(
        None, description="Entry languages to call (e.g. [en, es]); unset: every language."
    )

    @field_validator("ages")
    @classmethod
    def _check_ages(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value is None else _bounds(value, "ages")


class RecallAudience(AudienceBase):
    """Patients whose hygiene recall is due or overdue."""

    overdue_days: tuple[int, int] = Field(
        (0, 730), description="Earliest due date between as_of - high and as_of - low days."
    )
    due_within_days: int = Field(14, ge=0, description="Also patients due in the next N days.")
    recall_types: list[str] = Field(
        ["prophy", "child_prophy", "perio"],
        min_length=1,
        description="Recall types that count (Open Dental names in lower case, spaces as _).",
    )

    @field_validator("overdue_days")
    @classmethod
    def _check_overdue(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _bounds(value, "overdue_days")


class ReminderAudience(AudienceBase):
    """Patients with an appointment coming up."""

    days_ahead: tuple[int, int] = Field(
        (1, 3), description="Appointments from as_of + low to as_of + high days (clinic-local)."
    )
    statuses: list[Literal["scheduled", "confirmed"]] = Field(
        ["scheduled"], min_length=1, description="Appointment statuses to remind."
    )

    @field_validator("days_ahead")
    @classmethod
    def _check_days(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _bounds(value, "days_ahead")


class ReactivationAudience(AudienceBase):
    """Lapsed patients: last visit between low and high calendar months ago."""

    months_since_visit: tuple[int, int] = Field(
        (18, 60), description="Calendar months since the last visit, [low, high]."
    )

    @field_validator("months_since_visit")
    @classmethod
    def _check_months(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _bounds(value, "months_since_visit")


class PriorityKey(Strict):
    """One sort key of the list; nulls always sort last."""

    field: PriorityField
    order: Literal["asc", "desc"] = "asc"


class Window(Strict):
    """A callee-local calling window [start, end) on some weekdays, inside 08:00-21:00."""

    days: list[Weekday] = Field(min_length=1)
    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _inside_federal(self) -> Window:
        if not FEDERAL_START <= self.start < self.end <= FEDERAL_END:
            raise ValueError(
                f"window {self.start}-{self.end} must start before it ends and lie inside "
                f"{FEDERAL_START}-{FEDERAL_END} callee-local time"
            )
        return self


def _default_windows() -> list[Window]:
    return [
        Window(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="20:00"),
        Window(days=["sat"], start="10:00", end="14:00"),
    ]


class Calling(Strict):
    """When and how often a household may be called."""

    windows: list[Window] = Field(
        default_factory=_default_windows,
        min_length=1,
        description="Callee-local windows; default Mon-Fri 09:00-20:00, Sat 10:00-14:00.",
    )
    skip_holidays: bool = Field(
        True, description="No calls on US federal or the callee's state holidays."
    )
    phones: list[PhoneKindName] = Field(
        ["mobile", "home", "work"], min_length=1, description="Phone kinds to use, in order."
    )
    max_attempts: int = Field(4, ge=1, description="Attempts per household per campaign.")
    max_attempts_per_day: int = Field(1, ge=1, description="Per household per callee-local day.")
    retry_after: dict[RetryOutcome, Duration] = Field(
        default_factory=lambda: dict(DEFAULT_RETRY_AFTER),
        description="Delay before the next attempt after each outcome; unset outcomes keep "
        "their defaults (no_answer 4h, busy 30m, failed 1d, machine 1d, left_message 2d, "
        "abandoned 1h, no_disposition 1h, wrong_number 0m).",
    )
    require_consent_for_mobile: bool = Field(
        False, description="Dial a mobile only with a consent record."
    )

    @field_validator("retry_after")
    @classmethod
    def _merge_defaults(cls, value: dict[RetryOutcome, str]) -> dict[RetryOutcome, str]:
        return {**DEFAULT_RETRY_AFTER, **value}

    @field_validator("phones")
    @classmethod
    def _unique_phones(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each phone kind may appear once")
        return value


def _check_number(value: str) -> str:
    if value == "clinic":
        return value
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("expected 'clinic' or an E.164 number such as +15035550100") from exc
    if not phonenumbers.is_valid_number(number) or value != phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    ):
        raise ValueError("expected 'clinic' or an E.164 number such as +15035550100")
    return value


class Dialing(Strict):
    """How lines are paced."""

    mode: DialingMode = Field(
        "predictive", description="preview, progressive, ratio, adaptive or predictive."
    )
    ratio: float = Field(2.0, ge=1.0, le=10.0, description="Lines per idle PSR in ratio mode.")
    max_abandon_rate: float = Field(
        0.03, gt=0, le=0.03, description="Hard cap on abandoned / live answers."
    )
    caller_id: str = Field("clinic", description="'clinic' (the clinic's phone) or E.164.")
    callback_number: str = Field(
        "clinic", description="Number the messages give: 'clinic' or E.164."
    )
    voicemail: Literal["leave_message", "hang_up"] = "leave_message"
    weight: float = Field(
        1.0, gt=0, description="Share of the PSRs when several campaigns dial at once (relative)."
    )

    @field_validator("caller_id", "callback_number")
    @classmethod
    def _numbers(cls, value: str) -> str:
        return _check_number(value)


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValueError(f"unbalanced braces in text: {exc}") from exc


def _check_texts(texts: dict[str, str], allowed: frozenset[str], what: str) -> dict[str, str]:
    for language, text in texts.items():
        bad = sorted(_placeholders(text) - allowed)
        if bad:
            names = ", ".join("{" + b + "}" for b in bad)
            permitted = " and ".join("{" + a + "}" for a in sorted(allowed))
            raise ValueError(f"{language}: {names} not allowed; {what} may use only {permitted}")
    return texts


class Messages(Strict):
    """Recorded messages per language; they may name only the clinic and the call-back number."""

    safe_harbor: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_MESSAGES["safe_harbor"]),
        description="Played when no PSR is free within 2 seconds; must offer the opt-out.",
    )
    voicemail: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MESSAGES["voicemail"]))

    @field_validator("safe_harbor", "voicemail")
    @classmethod
    def _no_patient_data(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_texts(value, MESSAGE_PLACEHOLDERS, "recorded messages")


class CampaignBase(Strict):
    """Fields every campaign has."""

    name: Slug = Field(description="Unique slug, e.g. hygiene-recall.")
    description: str | None = None
    clinics: Literal["all"] | list[str] = Field("all", description="'all' or clinic ids.")
    priority: list[PriorityKey] = Field(
        default_factory=list, description="Sort keys, most important first."
    )
    calling: Calling = Field(default_factory=Calling)
    dialing: Dialing = Field(default_factory=Dialing)
    messages: Messages = Field(default_factory=Messages)
    scripts: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SCRIPTS))

    @field_validator("scripts")
    @classmethod
    def _script_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_texts(value, SCRIPT_PLACEHOLDERS, "scripts")

    @field_validator("clinics")
    @classmethod
    def _some_clinics(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("list at least one clinic id, or say 'all'")
        return value

    @model_validator(mode="after")
    def _priority_fits_kind(self) -> CampaignBase:
        kind = getattr(self, "kind", "")
        allowed = PRIORITY_FIELDS_BY_KIND[kind] | COMMON_PRIORITY_FIELDS
        if not self.priority:
            self.priority = [PriorityKey(field=f, order=o) for f, o in DEFAULT_PRIORITY[kind]]
        for index, key in enumerate(self.priority):
            if key.field not in allowed:
                raise ValueError(
                    f"priority.{index}.field: {key.field!r} does not apply to a {kind} campaign "
                    f"(use {', '.join(sorted(allowed))})"
                )
        return self

    @property
    def priority_fields(self) -> list[str]:
        """The priority fields, in order."""
        return [key.field for key in self.priority]


DEFAULT_PRIORITY: dict[str, list[tuple[str, str]]] = {
    "reminder": [("days_until_appointment", "asc")],
    "recall": [("overdue_days", "desc")],
    "reactivation": [("months_since_visit", "asc")],
}


class ReminderCampaign(CampaignBase):
    """Confirm upcoming appointments."""

    kind: Literal["reminder"]
    audience: ReminderAudience


class RecallCampaign(CampaignBase):
    """Book hygiene recalls that are due."""

    kind: Literal["recall"]
    audience: RecallAudience


class ReactivationCampaign(CampaignBase):
    """Bring back patients not seen for a long time."""

    kind: Literal["reactivation"]
    audience: ReactivationAudience


Campaign = Annotated[
    ReminderCampaign | RecallCampaign | ReactivationCampaign, Field(discriminator="kind")
]
CampaignModel = ReminderCampaign | RecallCampaign | ReactivationCampaign
_ADAPTER: TypeAdapter[CampaignModel] = TypeAdapter(Campaign)


def campaign_schema() -> dict[str, Any]:
    """JSON Schema of a campaign file, for editors."""
    schema = _ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dialer campaign"
    return schema


def _format_error(path: Path, error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    if loc and loc[0] in CampaignKind.__members__:
        loc = loc[1:]
    where = ".".join(loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
        where, message = "kind", "expected one of reminder, recall, reactivation"
    return f"{path}: {where}: {message}" if where else f"{path}: {message}"


def parse_campaign(data: Any, path: Path) -> CampaignModel:
    """Validate a loaded YAML document; raises :class:`CampaignInvalid` listing every problem."""
    if not isinstance(data, dict):
        raise CampaignInvalid([f"{path}: a campaign file must be a YAML mapping"])
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise CampaignInvalid([_format_error(path, e) for e in exc.errors()]) from exc


def load_campaign_file(path: Path) -> CampaignModel:
    """Read and validate one campaign file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CampaignInvalid([f"{path}: cannot read the file: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CampaignInvalid([f"{path}: {where}not valid YAML: {problem}"]) from exc
    return parse_campaign(data, path)


def packaged_campaigns_dir() -> Path:
    """The example campaigns shipped inside the package."""
    return Path(str(resources.files("dialer") / "data" / "campaigns"))


def campaigns_dir(explicit: Path | None) -> Path:
    """``explicit`` (which must exist), else ./campaigns when present, else the examples."""
    if explicit is not None:
        if not explicit.is_dir():
            raise ConfigError(f"Campaigns folder {explicit} does not exist")
        return explicit
    local = Path("campaigns")
    return local if local.is_dir() else packaged_campaigns_dir()


def campaign_files(folder: Path) -> list[Path]:
    """Every ``*.yaml`` and ``*.yml`` file of a folder, sorted."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_campaigns(folder: Path) -> dict[str, tuple[CampaignModel, Path]]:
    """Every campaign of a folder by name; all problems of all files are raised together."""
    found: dict[str, tuple[CampaignModel, Path]] = {}
    problems: list[str] = []
    for path in campaign_files(folder):
        try:
            campaign = load_campaign_file(path)
        except CampaignInvalid as exc:
            problems.extend(exc.problems)
            continue
        if campaign.name in found:
            other = found[campaign.name][1]
            problems.append(f"{path}: name: campaign {campaign.name!r} is also defined in {other}")
            continue
        found[campaign.name] = (campaign, path)
    if problems:
        raise CampaignInvalid(problems)
    return found


def _declared_name(path: Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def find_campaign(ref: str, folder: Path) -> tuple[CampaignModel, Path]:
    """A campaign by name (in ``folder``) or by path to its file.

    Only the files declaring that name are validated, so a broken file elsewhere in the folder
    does not stop work on this campaign.
    """
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise CampaignError(f"No campaign file {ref}")
        return load_campaign_file(candidate), candidate
    names = {path: _declared_name(path) for path in campaign_files(folder)}
    matches = [path for path, name in names.items() if name == ref]
    if len(matches) > 1:
        raise CampaignInvalid(
            [f"{matches[1]}: name: campaign {ref!r} is also defined in {matches[0]}"]
        )
    if not matches:
        known = ", ".join(sorted(n for n in names.values() if n)) or "none"
        raise CampaignError(f"No campaign named {ref!r} in {folder} (known: {known})")
    return load_campaign_file(matches[0]), matches[0]
