"""The simulator's unlimited synthetic list: fresh households written into the store as needed.

Each synthetic household is one entry with its own number, in the scenario's zone; a share of
them speak Spanish. Entries are real rows (a clinic, a dial list, campaign households and
entries), so the engine claims and dials them exactly as it does a built list.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, insert, select

from dialer.campaigns import CampaignModel
from dialer.store.dial_lists import insert_rows, sync_campaign
from dialer.store.models import CampaignHousehold, Clinic, DialList, DialListEntry

if TYPE_CHECKING:
    from dialer.simulate import Scenario, World

DIALS_PER_AGENT_HOUR = 250  # comfortably above any pacer's appetite (S3 needs about 160)
SIM_CLINIC = "SIM"
FIRST_NUMBER = 2_015_550_000  # +1 201 555 0000 onwards: fictional numbers
HOUSEHOLD_COLUMNS = [
    "campaign_id",
    "household_key",
    "attempts",
    "created_at",
    "done",
    "phone_index",
]
ENTRY_COLUMNS = [
    "dial_list_id",
    "entry_id",
    "rank",
    "clinic_id",
    "household_key",
    "phone",
    "phones",
    "timezones",
    "timezone_source",
    "language",
    "patient_ids",
    "patient_count",
    "priority",
    "states",
]


class SyntheticList:
    """Keeps enough undialed synthetic entries in the store for the next shift."""

    def __init__(
        self, engine: Engine, scenario: Scenario, world: World, rng: random.Random
    ) -> None:
        self.engine = engine
        self.scenario = scenario
        self.world = world
        self.rng = rng
        self.made = 0
        self.list_id: int | None = None
        self.clinic_id: int | None = None

    def _per_shift(self) -> int:
        return int(self.scenario.peak_agents * self.scenario.shift_hours * DIALS_PER_AGENT_HOUR)

    def _setup(self, campaign: CampaignModel, now: datetime) -> None:
        with self.engine.begin() as conn:
            self.clinic_id = int(
                conn.execute(
                    insert(Clinic)
                    .values(
                        external_id=SIM_CLINIC,
                        name="Simulated Dental",
                        timezone=self.scenario.timezone,
                        state=None,
                        phone="+12015559999",
                        default_language="en",
                        source="simulation",
                        source_hash="",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Clinic.id)
                ).scalar_one()
            )
            cid = sync_campaign(conn, campaign, None, now)
            self.list_id = int(
                conn.execute(
                    insert(DialList)
                    .values(
                        campaign_id=cid,
                        as_of=now.date(),
                        as_of_by_clinic={},
                        built_at=now,
                        candidates=0,
                        eligible_patients=0,
                        entries=0,
                        excluded={},
                        priority_fields=campaign.priority_fields,
                    )
                    .returning(DialList.id)
                ).scalar_one()
            )
            self.campaign_id = cid

    def top_up(self, campaign: CampaignModel, now: datetime) -> int:
        """Make sure a shift's worth of fresh entries is waiting; returns how many were added."""
        if self.list_id is None:
            self._setup(campaign, now)
        with self.engine.begin() as conn:
            fresh = int(
                conn.execute(
                    select(func.count())
                    .select_from(CampaignHousehold)
                    .where(
                        CampaignHousehold.campaign_id == self.campaign_id,
                        CampaignHousehold.attempts == 0,
                    )
                ).scalar_one()
            )
            missing = self._per_shift() - fresh
            if missing <= 0:
                return 0
            self._add(conn, missing, now)
        return missing

    def _add(self, conn: Connection, count: int, now: datetime) -> None:
        numbers = range(self.made, self.made + count)
        keys = [f"sim-{n}" for n in numbers]
        before = conn.execute(select(func.max(CampaignHousehold.id))).scalar_one() or 0
        insert_rows(
            conn,
            CampaignHousehold.__table__,  # type: ignore[arg-type]
            HOUSEHOLD_COLUMNS,
            [(self.campaign_id, key, 0, now, False, 0) for key in keys],
        )
        added = select(CampaignHousehold.household_key, CampaignHousehold.id).where(
            CampaignHousehold.id > before  # the rows just added (not every undialed one)
        )
        ids = dict(conn.execute(added).all())
        spanish = self.scenario.languages
        languages = ["es" if self.rng.random() < spanish else "en" for _ in numbers]
        zone = self.scenario.timezone
        entries = [
            (
                self.list_id,
                ids[key],
                n + 1,  # rank
                self.clinic_id,
                key,
                phone,
                phone,
                zone,
                "simulation",
                language,
                str(n + 1),  # patient ids
                1,
                [0],  # priority
                "",  # states
            )
            for n, key, language in zip(numbers, keys, languages, strict=True)
            for phone in (f"+1{FIRST_NUMBER + n}",)
        ]
        insert_rows(conn, DialListEntry.__table__, ENTRY_COLUMNS, entries)  # type: ignore[arg-type]
        self.made += count
