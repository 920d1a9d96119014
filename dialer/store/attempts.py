"""What the dialing engine reads and writes: claims, attempts, events, PSR states, learned facts.

- Entries are claimed atomically: one statement marks the households claimed by this node for a
  lease (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), so no entry is dialed twice at once.
- An attempt is committed before its call is placed: :meth:`EngineStore.launch` inserts the
  attempts (after a last do-not-call and retired-number check) in one transaction, together with
  every write queued since the last flush. Other writes (outcomes, events, PSR states) are queued
  and flushed with the next launch or at the next :meth:`EngineStore.flush`.
- Facts that must take effect at once (do-not-call, retired numbers, callbacks) are written
  immediately.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update

from dialer.campaigns import CampaignModel
from dialer.compliance import Verdict
from dialer.store.dial_lists import sync_campaign
from dialer.store.fastpath import FastPath
from dialer.store.models import (
    Agent,
    Attempt,
    Callback,
    CampaignHousehold,
    Clinic,
    DialList,
    DialListEntry,
)

HISTORY_DAYS = 8  # phone attempts kept in view: the longest cap window is 7 days
_HISTORY = timedelta(days=HISTORY_DAYS)
FLUSH_ROWS = 500  # queued writes that ride along with the next launch
FLUSH_SECONDS = 5.0  # the longest a queued write waits for a flush


SWEEP_HOURS = 24  # a periodic sweep reads the attempts started this long ago or since
# The note on an attempt ended by reconcile or sweep.
ORPHAN_NOTE = "reconciled: the node that placed the call stopped before its end was reported"


@dataclass(frozen=True)
class ClinicInfo:
    """What calls need to know of a clinic (no patient data)."""

    name: str
    phone: str | None
    timezone: str | None


@dataclass
class CampaignInfo:
    """A campaign as the engine runs it."""

    id: int
    model: CampaignModel
    list_id: int | None
    clinics: dict[int, ClinicInfo]


@dataclass
class ClaimedEntry:
    """A household claimed for dialing, with what the compliance gate needs."""

    household_id: int
    campaign_id: int
    clinic_id: int
    phones: list[str]
    phone_index: int
    zones: tuple[str, ...]
    states: tuple[str, ...]
    language: str
    patient_ids: str
    attempts: int
    household_attempts: list[datetime] = field(default_factory=list)
    phone_attempts: list[datetime] = field(default_factory=list)
    phone_kind: str = "home"
    has_consent: bool = True
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None  # this node's lease on the household, as it set it

    @property
    def phone(self) -> str | None:
        """The number to dial now, or None when every phone has been retired for it."""
        return self.phones[self.phone_index] if self.phone_index < len(self.phones) else None


@dataclass(frozen=True)
class Launch:
    """An attempt about to be placed."""

    entry: ClaimedEntry
    mode: str
    started_at: datetime
    agent_id: int | None


@dataclass(frozen=True)
class Launched:
    """What became of a launch: its attempt, or why the last checks stopped it."""

    attempt_id: int | None
    lease_lost: bool = False  # another node claimed the household after this one's lease ran out
    verdict: Verdict | None = None  # the per-phone check refused it (with its next time)
    retired: bool = False  # the number was retired (a wrong number) since the claim

    # attempt_id None, lease_lost False, verdict None and not retired: do-not-call


# What a claim reads of an entry and its household, in the order _entry unpacks them.
_ENTRY_COLUMNS = (
    DialListEntry.entry_id,
    DialListEntry.clinic_id,
    DialListEntry.phones,
    DialListEntry.timezones,
    DialListEntry.states,
    DialListEntry.language,
    DialListEntry.patient_ids,
    DialListEntry.rank,
    CampaignHousehold.attempts,
    CampaignHousehold.phone_index,
    CampaignHousehold.next_attempt_at,
)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


class EngineStore:
    """The engine's window on the store."""

    def __init__(self, engine: Engine, node: str = "local") -> None:
        self.engine = engine
        self.node = node
        self._attempts: dict[int, dict[str, Any]] = defaultdict(dict)
        self._households: dict[int, dict[str, Any]] = defaultdict(dict)
        # Rows to insert, in their INSERT's column order (see _write_pending).
        self._events: list[tuple[int, str, str, datetime]] = []
        self._agent_events: list[tuple[int, str, str | None, datetime, int | None]] = []
        self._pending = 0
        self._queued_since: datetime | None = None
        self._cursors: dict[tuple[int, str], int] = {}  # (list, pool) -> last fresh rank taken
        self._insert_cache: dict[tuple[str, ...], str] = {}
        self.fast = FastPath(engine)

    # Campaigns and PSRs -----------------------------------------------------------------

    def load_campaign(self, campaign: CampaignModel, now: datetime) -> CampaignInfo:
        """Store the definition and find the campaign's latest list and its clinics."""
        with self.engine.begin() as conn:
            cid = sync_campaign(conn, campaign, None, now)
            list_id = conn.execute(
                select(DialList.id)
                .where(DialList.campaign_id == cid)
                .order_by(DialList.id.desc())
                .limit(1)
            ).scalar()
            clinics = {
                int(r.id): ClinicInfo(r.name, r.phone, r.timezone)
                for r in conn.execute(select(Clinic.id, Clinic.name, Clinic.phone, Clinic.timezone))
            }
        return CampaignInfo(cid, campaign, list_id, clinics)

    def register_agent(self, name: str, languages: frozenset[str], now: datetime) -> int:
        """The id of the PSR called ``name``, created when new."""
        with self.engine.begin() as conn:
            found = conn.execute(select(Agent.id).where(Agent.name == name)).scalar()
            if found is not None:
                conn.execute(
                    update(Agent)
                    .where(Agent.id == found)
                    .values(languages=" ".join(sorted(languages)))
                )
                return int(found)
            return int(
                conn.execute(
                    insert(Agent)
                    .values(name=name, languages=" ".join(sorted(languages)), created_at=now)
                    .returning(Agent.id)
                ).scalar_one()
            )

    # Claims -------------------------------------------------------------------------------

    def claim(
        self, info: CampaignInfo, language: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[ClaimedEntry]:
        """Claim up to ``limit`` due households of the campaign's latest list in a language pool
        (``es`` or everything else): retries that are due first, then the next fresh entries
        by rank. A cursor per list and pool remembers how far the fresh entries have been
        taken, so a claim reads only what it returns, however long the list has been dialed
        (entries passed over because they were not due come back through the retry query)."""
        if info.list_id is None or limit <= 0:
            return []
        e, h = DialListEntry, CampaignHousehold
        pool = e.language == "es" if language == "es" else e.language != "es"
        columns = _ENTRY_COLUMNS
        claimable = and_(
            e.dial_list_id == info.list_id,
            pool,
            h.done.is_(False),
            or_(h.claimed_until.is_(None), h.claimed_until < now),
            h.attempts < info.model.calling.max_attempts,
        )
        cursor_key = (info.list_id, language)
        cursor = self._cursors.get(cursor_key, 0)
        retries = (
            select(*columns)
            .join(e, e.entry_id == h.id)
            .where(claimable, h.campaign_id == info.id, h.next_attempt_at <= now)
            # ``rank + 0``: read the few due households through their index and sort them,
            # rather than walk the whole list in rank order looking for due ones (which SQLite
            # would otherwise choose, and which grows with every entry dialed).
            .order_by(e.rank + 0)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            postgres = self._claiming(conn)
            if postgres:
                retries = retries.with_for_update(of=h, skip_locked=True)
            rows = list(conn.execute(retries).all())
            if len(rows) < limit:
                fresh = (
                    select(*columns)
                    .join(h, h.id == e.entry_id)
                    .where(
                        claimable,
                        e.rank > cursor,
                        or_(h.next_attempt_at.is_(None), h.next_attempt_at <= now),
                    )
                    .order_by(e.rank)
                    .limit(limit - len(rows))
                )
                if postgres:
                    fresh = fresh.with_for_update(of=h, skip_locked=True)
                taken = list(conn.execute(fresh).all())
                if taken:
                    self._cursors[cursor_key] = max(int(r.rank) for r in taken)
                seen = {r.entry_id for r in rows}
                rows.extend(r for r in taken if r.entry_id not in seen)
            if not rows:
                return []
            ids = [int(r.entry_id) for r in rows]
            until = now + timedelta(seconds=lease_seconds)
            conn.execute(
                update(h).where(h.id.in_(ids)).values(claimed_by=self.node, claimed_until=until)
            )
            entries = [self._entry(info, r) for r in rows]
            for entry in entries:
                entry.claimed_until = until
            self._histories(conn, info, entries, now)
        return entries

    @staticmethod
    def _claiming(conn: Connection) -> bool:
        """Begin a claim. SQLite: take the write lock before reading, so that two claimers
        queue (busy timeout) instead of the second failing to upgrade its stale read with
        "database is locked". True on PostgreSQL, where the claim locks the rows it reads."""
        if conn.dialect.name == "postgresql":
            return True
        conn.exec_driver_sql("UPDATE campaign_households SET claimed_by = claimed_by WHERE 0")
        return False

    @staticmethod
    def _entry(info: CampaignInfo, row: Any) -> ClaimedEntry:
        # By position (_ENTRY_COLUMNS): a claim reads hundreds of rows at a time.
        (entry_id, clinic_id, phones, zones, states, language, patients, _, attempts,
         phone_index, next_attempt_at) = row  # fmt: skip
        return ClaimedEntry(
            household_id=int(entry_id),
            campaign_id=info.id,
            clinic_id=int(clinic_id),
            phones=list(_split(phones)),
            phone_index=int(phone_index),
            zones=_split(zones),
            states=_split(states),
            language=language,
            patient_ids=patients,
            attempts=int(attempts),
            next_attempt_at=next_attempt_at,
        )

    def _histories(
        self, conn: Connection, info: CampaignInfo, entries: list[ClaimedEntry], now: datetime
    ) -> None:
        """Fill in attempt histories, phone kinds and consent for claimed entries (plain SQL on
        the claim's own connection: a claim reads hundreds of households at a time)."""
        fast = self.fast
        by_household = {entry.household_id: entry for entry in entries}
        households = list(by_household)
        # A campaign household belongs to one campaign: no campaign filter, which would tempt
        # the planner into the campaign's whole attempt history.
        for hid, started in conn.exec_driver_sql(
            "SELECT household_id, started_at FROM attempts "
            f"WHERE household_id IN ({fast.marks(len(households))})",
            tuple(households),
        ):
            by_household[int(hid)].household_attempts.append(fast.read_time(started))
        phones = sorted({entry.phone for entry in entries if entry.phone})
        recent: dict[str, list[datetime]] = defaultdict(list)
        kinds: dict[str, tuple[str, bool]] = {}
        if phones:
            since = fast.adapt(now - timedelta(days=HISTORY_DAYS))
            marks = fast.marks(len(phones))
            for phone, started in conn.exec_driver_sql(
                f"SELECT phone, started_at FROM attempts WHERE phone IN ({marks}) "
                f"AND started_at >= {fast.mark}",
                (*phones, since),
            ):
                recent[phone].append(fast.read_time(started))
            for number, kind, consent in conn.exec_driver_sql(
                f"SELECT phone, kind, consent_source FROM phones WHERE phone IN ({marks})",
                tuple(phones),
            ):
                if number is None:
                    continue
                known_kind, known_consent = kinds.get(number, (kind, False))
                kinds[number] = (known_kind, known_consent or consent is not None)
        for entry in entries:
            number = entry.phone or ""
            entry.phone_attempts = recent.get(number, [])
            entry.phone_kind, entry.has_consent = kinds.get(number, ("home", True))

    def release(self, household_id: int, **fields: Any) -> None:
        """Give a claimed household back (queued), optionally changing its state. A household
        that is done has no next attempt (so the due-retry index holds only live retries).
        Like every queued change to a household, it is written only if this node still holds
        the claim then."""
        if fields.get("done"):
            fields.setdefault("next_attempt_at", None)
        self._households[household_id].update(claimed_by=None, claimed_until=None, **fields)
        self._pending += 1

    # Launching ----------------------------------------------------------------------------

    def launch(
        self,
        launches: list[Launch],
        campaign: str,
        lease_seconds: float,
        phone_check: Callable[[Launch, list[datetime]], Verdict],
        *,
        renew_below_seconds: float = math.inf,
    ) -> list[Launched]:
        """Commit the attempts (and the queued writes, when enough have gathered) after the
        last checks, in one transaction:

        - the household is still claimed by this node, checked in the attempt's insert; a node
          that held an entry past its lease, which another node has since claimed, does not
          dial it. The lease is renewed for ``lease_seconds`` from the launch: at once when
          less than ``renew_below_seconds`` of it is left, else with the queued writes (the
          caller renews the leases of its calls in progress before that much time has passed,
          so the lease cannot lapse meanwhile, and a statement per call is saved);
        - ``phone_check`` passes given every campaign's and every node's recent calls to the
          phone as the store has them now (calls of this batch included), so calls placed
          since the entry was claimed count against the per-phone caps;
        - the number is not do-not-call or retired: the check and the insert are one
          statement (``INSERT ... SELECT ... WHERE NOT EXISTS``), so no number listed before
          the commit is ever attempted.
        """
        if not launches:
            return []
        fast = self.fast
        lease = timedelta(seconds=lease_seconds)
        renew_below = timedelta(seconds=min(renew_below_seconds, lease_seconds))
        renew_sql, node = self._renew_sql, self.node
        # One transaction (not the transaction() context manager: this runs for every call).
        fast.begin()
        try:
            if self._pending >= FLUSH_ROWS:
                self._write_pending()
            since = min(launch.started_at for launch in launches) - _HISTORY
            calls = self._recent_calls([launch.entry.phone for launch in launches], since)
            results: list[Launched] = []
            for launch in launches:
                entry = launch.entry
                hid = entry.household_id
                until = launch.started_at + lease
                held = entry.claimed_until
                renew = held is None or held - launch.started_at < renew_below
                if renew:
                    if not fast.execute(renew_sql, [until, hid, node]):
                        results.append(Launched(None, lease_lost=True))
                        continue
                    entry.claimed_until = until
                history = calls[entry.phone or ""]
                verdict = phone_check(launch, history)
                if not verdict.allowed:
                    lost = not renew and not self._holds(hid)
                    results.append(
                        Launched(None, lease_lost=lost, verdict=None if lost else verdict)
                    )
                    continue
                row = self._attempt_row(launch)
                found = fast.execute(
                    self._insert_sql(tuple(row)),
                    [*row.values(), *self._check_params(launch, campaign), hid, node],
                )
                if not found:
                    if not renew and not self._holds(hid):
                        results.append(Launched(None, lease_lost=True))
                    else:
                        results.append(Launched(None, retired=self._retired(entry.phone)))
                    continue
                if not renew:  # rides with the queued writes (the household's row is queued)
                    self.note_household(hid, claimed_until=until)
                    entry.claimed_until = until
                entry.phone_attempts = list(history)
                history.append(launch.started_at)
                results.append(Launched(int(found[0][0])))
            fast.commit()
        except BaseException:
            fast.rollback()
            raise
        return results

    def _retired(self, phone: str | None) -> bool:
        return bool(self.fast.execute(self._retired_sql, [phone]))

    def _holds(self, household_id: int) -> bool:
        """Does this node still hold its claim on the household?"""
        mark = self.fast.mark
        return bool(
            self.fast.execute(
                f"SELECT 1 FROM campaign_households WHERE id = {mark} AND claimed_by = {mark}",
                [household_id, self.node],
            )
        )

    @cached_property
    def _retired_sql(self) -> str:
        """Is the number retired now (and not restored)?"""
        return (
            f"SELECT 1 FROM retired_phones WHERE phone = {self.fast.mark} AND restored_at IS NULL"
        )

    @cached_property
    def _renew_sql(self) -> str:
        mark = self.fast.mark
        return (
            f"UPDATE campaign_households SET claimed_until = {mark} "
            f"WHERE id = {mark} AND claimed_by = {mark} RETURNING id"
        )

    def _recent_calls(self, phones: list[str | None], since: datetime) -> dict[str, list[datetime]]:
        """Every attempt's start to these phones since ``since``, per phone, oldest first."""
        numbers = sorted({phone for phone in phones if phone})
        calls: dict[str, list[datetime]] = defaultdict(list)
        if not numbers:
            return calls
        fast = self.fast
        rows = fast.execute(
            f"SELECT phone, started_at FROM attempts WHERE phone IN ({fast.marks(len(numbers))}) "
            f"AND started_at >= {fast.mark}",
            [*numbers, since],
        )
        for phone, started in rows:
            calls[phone].append(fast.read_time(started))
        for history in calls.values():
            history.sort()
        return calls

    def _insert_sql(self, columns: tuple[str, ...]) -> str:
        sql = self._insert_cache.get(columns)
        if sql is None:
            mark = self.fast.mark
            values = ", ".join(self._typed_mark(column) for column in columns)
            sql = (
                f"INSERT INTO attempts ({', '.join(columns)}) "
                f"SELECT {values} WHERE NOT EXISTS ("
                f"SELECT 1 FROM dnc_entries WHERE phone = {mark} AND removed_at IS NULL AND "
                f"(scope = 'global' OR (scope = 'campaign' AND campaign = {mark}) "
                f"OR (scope = 'clinic' AND clinic_id = {mark}))) AND NOT EXISTS ("
                f"SELECT 1 FROM retired_phones WHERE phone = {mark} AND restored_at IS NULL) "
                "AND EXISTS ("
                f"SELECT 1 FROM campaign_households WHERE id = {mark} AND claimed_by = {mark}) "
                "RETURNING id"
            )
            self._insert_cache[columns] = sql
        return sql

    def _typed_mark(self, column: str) -> str:
        """A parameter marker; on PostgreSQL cast to the column's type, since parameters in a
        SELECT list would otherwise be read as text."""
        if self.fast.sqlite:
            return self.fast.mark
        sql_type = Attempt.__table__.c[column].type.compile(dialect=self.engine.dialect)
        return f"{self.fast.mark}::{sql_type}"

    @staticmethod
    def _check_params(launch: Launch, campaign: str) -> list[Any]:
        phone = launch.entry.phone
        return [phone, campaign, launch.entry.clinic_id, phone]

    @staticmethod
    def _attempt_row(launch: Launch) -> dict[str, Any]:
        entry = launch.entry
        return {
            "campaign_id": entry.campaign_id,
            "household_id": entry.household_id,
            "clinic_id": entry.clinic_id,
            "attempt_number": entry.attempts + 1,
            "phone": entry.phone,
            "phone_kind": entry.phone_kind,
            "language": entry.language,
            "timezones": " ".join(entry.zones),
            "states": " ".join(entry.states),
            "patient_ids": entry.patient_ids,
            "mode": launch.mode,
            "agent_id": launch.agent_id,
            "started_at": launch.started_at,
            "is_contact": False,
            "is_conversion": False,
            "abandoned": False,
            "opted_out": False,
        }

    # Queued writes ------------------------------------------------------------------------

    def note_attempt(self, attempt_id: int, **fields: Any) -> None:
        """Queue changes to an attempt."""
        self._attempts[attempt_id].update(fields)
        self._pending += 1

    def note_household(self, household_id: int, **fields: Any) -> None:
        """Queue changes to a campaign household."""
        self._households[household_id].update(fields)
        self._pending += 1

    def note_event(self, attempt_id: int, event_id: str, kind: str, at: datetime) -> None:
        """Queue the record of a provider event."""
        self._events.append((attempt_id, event_id, kind, at))
        self._pending += 1

    def note_agent_state(
        self,
        agent_id: int,
        state: str,
        at: datetime,
        *,
        reason: str | None = None,
        attempt_id: int | None = None,
    ) -> None:
        """Queue a PSR state change (their history)."""
        self._agent_events.append((agent_id, state, reason, at, attempt_id))
        self._pending += 1

    def maybe_flush(self, now: datetime, within_seconds: float = FLUSH_SECONDS) -> None:
        """Flush when many writes are queued, or some have waited ``within_seconds``."""
        if not self._pending:
            self._queued_since = None
            return
        if self._queued_since is None:
            self._queued_since = now
        waited = (now - self._queued_since).total_seconds()
        if self._pending >= FLUSH_ROWS or waited >= within_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every queued change in one transaction."""
        self._queued_since = None
        if not self._pending:
            return
        with self.fast.transaction():
            self._write_pending()

    def _write_pending(self) -> None:
        fast = self.fast
        if self._agent_events:
            fast.executemany(
                "INSERT INTO agent_events (agent_id, state, reason, at, attempt_id) "
                f"VALUES ({fast.marks(5)})",
                self._agent_events,
            )
        if self._events:
            fast.executemany(
                "INSERT INTO call_events (attempt_id, event_id, kind, at) "
                f"VALUES ({fast.marks(4)})",
                self._events,
            )
        # A household's changes are written only while this node still holds its claim: an
        # entry it kept past its lease may have been claimed (and dialed) by another node
        # since, and giving it back would erase that node's claim.
        for table, pending, only_if_held in (
            ("attempts", self._attempts, ""),
            ("campaign_households", self._households, f" AND claimed_by = {fast.mark}"),
        ):
            extra = [self.node] if only_if_held else []
            groups: dict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
            for key, fields in pending.items():
                names = tuple(sorted(fields))
                groups[names].append([fields[n] for n in names] + [key, *extra])
            for names, rows in groups.items():
                sets = ", ".join(f"{n} = {fast.mark}" for n in names)
                where = f"id = {fast.mark}{only_if_held}"
                fast.executemany(f"UPDATE {table} SET {sets} WHERE {where}", rows)
        self._attempts.clear()
        self._households.clear()
        self._events.clear()
        self._agent_events.clear()
        self._pending = 0

    # Facts that take effect at once ----------------------------------------------------------

    def add_dnc(self, phone: str, *, source: str, reason: str | None, now: datetime) -> None:
        """Put a number on the global do-not-call list now (idempotent)."""
        mark = self.fast.mark
        self._add_once(
            f"SELECT 1 FROM dnc_entries WHERE phone = {mark} AND scope = 'global' "
            "AND removed_at IS NULL",
            [phone],
            "INSERT INTO dnc_entries (phone, scope, source, reason, added_at) "
            f"VALUES ({mark}, 'global', {self.fast.marks(3)})",
            [phone, source, reason, now],
        )

    def retire_phone(self, phone: str, *, reason: str, now: datetime) -> None:
        """Retire a number for everyone (a wrong number), now."""
        self._add_once(
            self._retired_sql,
            [phone],
            f"INSERT INTO retired_phones (phone, reason, retired_at) VALUES ({self.fast.marks(3)})",
            [phone, reason, now],
        )

    def _add_once(
        self, exists: str, exists_params: list[Any], insert: str, insert_params: list[Any]
    ) -> None:
        """Insert a row unless ``exists`` finds one, committed at once (on the engine's own
        connection: a disposition can add one every few seconds)."""
        fast = self.fast
        with fast.transaction():
            if not fast.execute(exists, exists_params):
                fast.execute(insert, insert_params)

    def add_callback(
        self,
        campaign_id: int,
        household_id: int,
        agent_id: int | None,
        attempt_id: int,
        due_at: datetime,
        now: datetime,
    ) -> int:
        """Record a call-back the callee asked for."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    insert(Callback)
                    .values(
                        campaign_id=campaign_id,
                        household_id=household_id,
                        agent_id=agent_id,
                        attempt_id=attempt_id,
                        due_at=due_at,
                        created_at=now,
                    )
                    .returning(Callback.id)
                ).scalar_one()
            )

    def reconcile(self, campaign_id: int, now: datetime) -> int:
        """When this node starts dialing a campaign: end the campaign's attempts no node is
        finishing (see :meth:`sweep`), this node's own from before it started included,
        whatever their lease, and release this node's claims. Returns how many attempts were
        ended."""
        with self.engine.begin() as conn:
            ended = self._end_orphans(conn, campaign_id, now)
            conn.execute(
                update(CampaignHousehold)
                .where(
                    CampaignHousehold.campaign_id == campaign_id,
                    CampaignHousehold.claimed_by == self.node,
                )
                .values(claimed_by=None, claimed_until=None)
            )
        return ended

    def sweep(self, campaign_id: int, now: datetime, in_progress: set[int]) -> int:
        """End the campaign's attempts a node left without an end: no node holds a lease on
        the household any more (a live node renews the leases of its calls in progress, see
        :meth:`renew_leases`), so that node is gone and no provider report will reach anyone.
        This node's queued writes are flushed first and its own calls in progress
        (``in_progress``, attempt ids) are kept. Only attempts started in the last
        ``SWEEP_HOURS`` are read (through the campaign's start-time index: a sweep runs every
        few minutes); older ones are ended when a node starts (:meth:`reconcile`). The attempts
        end as ``failed``, noted, and their households are due again. Returns how many
        attempts were ended."""
        self.flush()
        since = now - timedelta(hours=SWEEP_HOURS)
        if not self._open_attempts(campaign_id, since) - in_progress:
            return 0  # the usual case: this node's own calls are all that is open
        with self.engine.begin() as conn:
            return self._end_orphans(conn, campaign_id, now, keep=in_progress, since=since)

    def _open_attempts(self, campaign_id: int, since: datetime) -> set[int]:
        """The campaign's attempts started since ``since`` and not ended (plain SQL through
        the partial index of open attempts, without a lock: a sweep runs every few minutes,
        and one that finds more than this node's calls reads them again under its locks)."""
        fast = self.fast
        with fast.transaction():  # (PostgreSQL: not left idle in a transaction, holding locks)
            rows = fast.execute(
                f"SELECT id FROM attempts WHERE campaign_id = {fast.mark} AND ended_at IS NULL "
                f"AND started_at >= {fast.mark}",
                [campaign_id, since],
            )
        return {int(row[0]) for row in rows}

    def _end_orphans(
        self,
        conn: Connection,
        campaign_id: int,
        now: datetime,
        *,
        keep: set[int] | None = None,
        since: datetime | None = None,
    ) -> int:
        """End the campaign's attempts without an end whose household no node holds (nor this
        one, before it started: ``keep`` None), but those in ``keep``. The households read are
        locked first (SQLite: the write lock; PostgreSQL: their rows, skipping those a claim or
        a launch holds), and each write re-states what was read, so a node claiming or dialing
        the household meanwhile is never undone."""
        h = CampaignHousehold
        postgres = self._claiming(conn)
        lapsed = or_(h.claimed_by.is_(None), h.claimed_until < now)
        if keep is None:
            lapsed = or_(lapsed, h.claimed_by == self.node)
        query = (
            select(Attempt.id, Attempt.household_id)
            .join(h, h.id == Attempt.household_id)
            .where(Attempt.campaign_id == campaign_id, Attempt.ended_at.is_(None), lapsed)
        )
        if since is not None:
            query = query.where(Attempt.started_at >= since)
        if postgres:
            query = query.with_for_update(of=h, skip_locked=True)
        dangling = [row for row in conn.execute(query).all() if row.id not in (keep or set())]
        ended = 0
        for attempt_id, household_id in dangling:
            ended += conn.execute(
                update(Attempt)
                .where(Attempt.id == attempt_id, Attempt.ended_at.is_(None))
                .values(ended_at=now, outcome="failed", notes=ORPHAN_NOTE)
            ).rowcount
            later = select(Attempt.id).where(
                Attempt.household_id == household_id, Attempt.id > attempt_id
            )
            conn.execute(  # due again, unless it is done or has been dialed since
                update(h)
                .where(h.id == household_id, h.done.is_(False), lapsed, ~later.exists())
                .values(next_attempt_at=now, claimed_by=None, claimed_until=None)
            )
        return ended

    def renew_leases(self, household_ids: list[int], until: datetime) -> None:
        """Extend this node's claims on these households (its calls in progress) to ``until``,
        so that a long call is not taken for one a dead node left (:meth:`sweep`)."""
        if not household_ids:
            return
        fast = self.fast
        with fast.transaction():
            fast.execute(
                f"UPDATE campaign_households SET claimed_until = {fast.mark} "
                f"WHERE claimed_by = {fast.mark} AND id IN ({fast.marks(len(household_ids))})",
                [until, self.node, *household_ids],
            )

    def abandonment_history(self, campaign_id: int) -> tuple[datetime | None, list[Any]]:
        """The campaign's first attempt time and every person detected (time, abandoned), for
        the abandonment ledger to pick up where it left off."""
        with self.engine.connect() as conn:
            first = conn.execute(
                select(func.min(Attempt.started_at)).where(Attempt.campaign_id == campaign_id)
            ).scalar()
            rows = conn.execute(
                select(Attempt.person_detected_at, Attempt.abandoned).where(
                    Attempt.campaign_id == campaign_id, Attempt.person_detected_at.is_not(None)
                )
            ).all()
        return first, list(rows)

    def open_callbacks(self, campaign_id: int) -> list[Any]:
        """The campaign's callbacks not yet placed: id, household_id, agent_id, due_at."""
        with self.engine.connect() as conn:
            query = (
                select(Callback.id, Callback.household_id, Callback.agent_id, Callback.due_at)
                .where(Callback.campaign_id == campaign_id, Callback.done_at.is_(None))
                .order_by(Callback.due_at)
            )
            return list(conn.execute(query).all())

    def close_callback(self, callback_id: int, now: datetime) -> None:
        """Mark a callback done."""
        with self.engine.begin() as conn:
            conn.execute(update(Callback).where(Callback.id == callback_id).values(done_at=now))

    def entry_for(
        self, info: CampaignInfo, household_id: int, now: datetime, lease_seconds: float
    ) -> ClaimedEntry | None:
        """Claim one household of the latest list by id (callbacks), whatever its retry time."""
        if info.list_id is None:
            return None
        e, h = DialListEntry, CampaignHousehold
        query = (
            select(*_ENTRY_COLUMNS)
            .join(h, h.id == e.entry_id)
            .where(
                e.dial_list_id == info.list_id,
                h.id == household_id,
                and_(or_(h.claimed_until.is_(None), h.claimed_until < now)),
            )
        )
        with self.engine.begin() as conn:
            if self._claiming(conn):
                query = query.with_for_update(of=h)
            row = conn.execute(query).first()
            if row is None:
                return None
            until = now + timedelta(seconds=lease_seconds)
            conn.execute(
                update(h)
                .where(h.id == household_id)
                .values(claimed_by=self.node, claimed_until=until)
            )
            entry = self._entry(info, row)
            entry.claimed_until = until
            # The callback's own time is due: the household's retry time (the fallback the
            # callback set) must not hold it back at the gate.
            entry.next_attempt_at = None
            self._histories(conn, info, [entry], now)
        return entry
