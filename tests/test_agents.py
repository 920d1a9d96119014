"""PSRs: which pools a PSR serves, and the allocator that shares free PSRs among pools."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.agents import BUSY, AgentRuntime, AgentState, PoolDemand, PoolKey, allocate

MakeAgent = Callable[..., AgentRuntime]
EN, ES = "en", "es"


def agent(
    id: int, languages: tuple[str, ...] = (EN,), campaigns: tuple[str, ...] | None = None
) -> AgentRuntime:
    """A ready PSR speaking ``languages``, serving ``campaigns`` (None: every campaign)."""
    return AgentRuntime(
        id,
        f"psr-{id}",
        frozenset(languages),
        state=AgentState.ready,
        campaigns=None if campaigns is None else frozenset(campaigns),
    )


@pytest.fixture
def make_agent() -> MakeAgent:
    """``make_agent(id, languages=("en",), campaigns=None)``: a ready PSR."""
    return agent


def pool(campaign: str, language: str, weight: float = 1.0, busy: int = 0) -> PoolDemand:
    """A pool's demand: its weight and the PSRs of the pool holding a call."""
    return PoolDemand((campaign, language), weight, busy)


def shares(result: dict[int, PoolKey]) -> dict[PoolKey, int]:
    """PSRs assigned per pool."""
    return dict(Counter(result.values()))


# -- serves ------------------------------------------------------------------------------------

SERVES: dict[str, tuple[dict[str, Any], dict[PoolKey, bool]]] = {
    "english-only": (
        {"languages": (EN,)},
        {("recall", EN): True, ("recall", ES): False, ("reminder", EN): True},
    ),
    "bilingual": (
        {"languages": (EN, ES)},
        {("recall", EN): True, ("recall", ES): True, ("reminder", ES): True},
    ),
    "spanish-only": ({"languages": (ES,)}, {("recall", EN): False, ("recall", ES): True}),
    "no-language-is-english": ({"languages": ()}, {("recall", EN): True, ("recall", ES): False}),
    "restricted-to-a-campaign": (
        {"languages": (EN, ES), "campaigns": ("recall",)},
        {("recall", EN): True, ("recall", ES): True, ("reminder", EN): False},
    ),
    "restricted-to-no-campaign": (
        {"languages": (EN,), "campaigns": ()},
        {("recall", EN): False, ("reminder", EN): False},
    ),
}


@pytest.mark.parametrize(("psr", "expected"), SERVES.values(), ids=SERVES.keys())
def test_serves(make_agent: MakeAgent, psr: dict[str, Any], expected: dict[PoolKey, bool]) -> None:
    a = make_agent(1, **psr)

    assert {key: a.serves(key) for key in expected} == expected


def test_busy_states_are_on_call_and_wrap_up() -> None:
    assert frozenset({AgentState.on_call, AgentState.wrap_up}) == BUSY


# -- allocate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "pools"),
    [
        pytest.param([], [pool("recall", EN)], id="no-free-psr"),
        pytest.param([agent(1)], [], id="no-pool"),
        pytest.param([agent(1), agent(2)], [pool("recall", EN, 0.0)], id="no-work"),
        pytest.param(
            [agent(1)], [pool("recall", EN, 0.0), pool("reminder", EN, 0.0)], id="no-work-anywhere"
        ),
        pytest.param([agent(1), agent(2)], [pool("recall", ES)], id="nobody-speaks-spanish"),
        pytest.param([agent(1, campaigns=("reminder",))], [pool("recall", EN)], id="not-mine"),
    ],
)
def test_no_assignment(free: list[AgentRuntime], pools: list[PoolDemand]) -> None:
    assert allocate(free, pools) == {}


def test_a_pool_without_work_gets_nobody(make_agent: MakeAgent) -> None:
    free = [make_agent(i) for i in range(1, 5)]

    result = allocate(free, [pool("recall", EN, 0.0), pool("reminder", EN, 1.0)])

    assert result == dict.fromkeys(range(1, 5), ("reminder", EN))


@pytest.mark.parametrize(
    ("weights", "psrs", "expected"),
    [
        ((1, 1), 4, (2, 2)),
        ((3, 1), 8, (6, 2)),
        ((1, 3), 8, (2, 6)),
        ((2, 1), 3, (2, 1)),
        ((1, 1), 3, (2, 1)),  # the odd PSR goes to the first pool listed
        ((0.7, 0.3), 10, (7, 3)),
        ((1, 1), 1, (1, 0)),
    ],
    ids=["even", "3-to-1", "1-to-3", "2-to-1", "odd-one-out", "fractional", "one-psr"],
)
def test_shares_follow_the_weights(
    make_agent: MakeAgent, weights: tuple[float, float], psrs: int, expected: tuple[int, int]
) -> None:
    pools = [pool("recall", EN, weights[0]), pool("reminder", EN, weights[1])]

    result = allocate([make_agent(i) for i in range(1, psrs + 1)], pools)

    counts = shares(result)
    assert (counts.get(("recall", EN), 0), counts.get(("reminder", EN), 0)) == expected


def test_spanish_pool_gets_only_spanish_speakers(make_agent: MakeAgent) -> None:
    english = [make_agent(i) for i in range(1, 7)]
    bilingual = [make_agent(i, (EN, ES)) for i in range(7, 9)]

    result = allocate([*bilingual, *english], [pool("recall", EN, 0.5), pool("recall", ES, 0.5)])

    assert {i for i, key in result.items() if key == ("recall", ES)} == {7, 8}
    assert {i for i, key in result.items() if key == ("recall", EN)} == set(range(1, 7))


def test_spanish_pool_stays_empty_without_spanish_speakers(make_agent: MakeAgent) -> None:
    free = [make_agent(i) for i in range(1, 5)]

    result = allocate(free, [pool("recall", EN, 0.2), pool("recall", ES, 0.8)])

    assert result == dict.fromkeys(range(1, 5), ("recall", EN))


def test_bilingual_psrs_fill_spanish_first_then_english(make_agent: MakeAgent) -> None:
    # 8 PSRs, 75/25: targets 6 English and 2 Spanish; 5 English-only PSRs leave one English seat.
    free = [make_agent(i) for i in range(1, 6)] + [make_agent(i, (EN, ES)) for i in range(6, 9)]

    result = allocate(free, [pool("recall", EN, 0.75), pool("recall", ES, 0.25)])

    assert shares(result) == {("recall", EN): 6, ("recall", ES): 2}
    assert all(result[i] == ("recall", EN) for i in range(1, 6))


def test_spanish_only_psr_goes_to_spanish(make_agent: MakeAgent) -> None:
    result = allocate([make_agent(1, (ES,))], [pool("recall", EN, 9.0), pool("recall", ES, 1.0)])

    assert result == {1: ("recall", ES)}


def test_campaign_restricted_psr_goes_to_their_campaign(make_agent: MakeAgent) -> None:
    free = [make_agent(1, campaigns=("reminder",)), make_agent(2), make_agent(3)]

    result = allocate(free, [pool("recall", EN, 2.0), pool("reminder", EN, 1.0)])

    assert result == {1: ("reminder", EN), 2: ("recall", EN), 3: ("recall", EN)}


@pytest.mark.parametrize(
    ("busy", "free", "expected"),
    [
        ((4, 0), 4, {("reminder", EN): 4}),  # recall already holds its half
        ((2, 0), 4, {("recall", EN): 1, ("reminder", EN): 3}),  # 6 PSRs: 3 and 3
        ((6, 0), 2, {("reminder", EN): 2}),  # recall over its share keeps its busy PSRs
        ((0, 1), 3, {("recall", EN): 2, ("reminder", EN): 1}),
    ],
    ids=["busy-fill-the-share", "busy-count-toward-it", "busy-over-share", "other-pool-busy"],
)
def test_busy_psrs_count_toward_their_pools_share(
    make_agent: MakeAgent, busy: tuple[int, int], free: int, expected: dict[PoolKey, int]
) -> None:
    pools = [pool("recall", EN, 1.0, busy[0]), pool("reminder", EN, 1.0, busy[1])]

    result = allocate([make_agent(i) for i in range(1, free + 1)], pools)

    assert shares(result) == expected


def test_allocation_is_deterministic_whatever_the_order_of_free_psrs(
    make_agent: MakeAgent,
) -> None:
    free = [make_agent(i, (EN, ES) if i % 3 == 0 else (EN,)) for i in range(1, 8)]
    pools = [pool("recall", EN, 2.0), pool("recall", ES, 1.0), pool("reminder", EN, 1.0, busy=1)]
    first = allocate(free, pools)

    for order in itertools.permutations(free):
        assert allocate(list(order), pools) == first
    # 8 PSRs (one busy on reminder), weights 2:1:1: 4, 2 and 2. English-only PSRs choose first.
    assert first == {
        1: ("recall", EN),
        2: ("recall", EN),
        4: ("recall", EN),
        5: ("recall", EN),
        7: ("reminder", EN),
        3: ("recall", ES),
        6: ("recall", ES),
    }


def test_ties_go_to_the_pool_listed_first(make_agent: MakeAgent) -> None:
    a, b = pool("recall", EN), pool("reminder", EN)

    assert allocate([make_agent(1)], [a, b]) == {1: a.key}
    assert allocate([make_agent(1)], [b, a]) == {1: b.key}


def test_the_only_spanish_speaker_serves_spanish_when_english_is_covered(
    make_agent: MakeAgent,
) -> None:
    free = [make_agent(1, (EN, ES), campaigns=("recall",)), make_agent(2), make_agent(3)]
    pools = [pool("recall", EN), pool("recall", ES), pool("reminder", EN)]

    result = allocate(free, pools)

    assert result[1] == ("recall", ES)
    assert shares(result) == {("recall", EN): 1, ("recall", ES): 1, ("reminder", EN): 1}


# -- properties --------------------------------------------------------------------------------

LANGUAGES = [(EN,), (ES,), (EN, ES), ()]
CAMPAIGNS = ["recall", "reminder", "reactivation"]
free_psrs = st.lists(
    st.tuples(
        st.sampled_from(LANGUAGES),
        st.one_of(st.none(), st.sets(st.sampled_from(CAMPAIGNS)).map(tuple)),
    ),
    max_size=12,
).map(lambda rows: [agent(i, langs, camps) for i, (langs, camps) in enumerate(rows, 1)])
demands = st.dictionaries(
    st.tuples(st.sampled_from(CAMPAIGNS), st.sampled_from([EN, ES])),
    st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), st.integers(0, 4)),
    max_size=6,
).map(lambda d: [PoolDemand(key, weight, busy) for key, (weight, busy) in d.items()])


@given(free_psrs, demands)
def test_every_psr_who_can_serve_a_pool_with_work_gets_one_they_serve(
    free: list[AgentRuntime], pools: list[PoolDemand]
) -> None:
    result = allocate(free, pools)

    working = [p.key for p in pools if p.weight > 0]
    for a in free:
        if any(a.serves(key) for key in working):
            assert a.id in result and result[a.id] in working and a.serves(result[a.id])
        else:
            assert a.id not in result
    assert allocate(list(reversed(free)), pools) == result


@given(st.integers(0, 20), st.lists(st.integers(1, 5), min_size=1, max_size=5))
def test_psrs_who_serve_every_pool_split_within_one_of_the_weighted_share(
    psrs: int, weights: list[int]
) -> None:
    pools = [pool(f"campaign-{n}", EN, float(w)) for n, w in enumerate(weights)]

    counts = shares(allocate([agent(i) for i in range(1, psrs + 1)], pools))

    for p in pools:
        share = psrs * p.weight / sum(weights)
        assert math.floor(share) <= counts.get(p.key, 0) <= math.ceil(share)
