"""The allocation rule on small epochs whose every number is worked out by hand below."""

from __future__ import annotations

from shotbank.rewards import EpochResult, allocate

from .builders import address, clip, inputs, validator

A, B, C, D, E, X = (address(b) for b in (0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6))
V1, V2, V3 = (address(b) for b in (0x11, 0x22, 0x33))


def amounts(result: EpochResult) -> dict[str, tuple[int, int]]:
    """address -> (contributor_amount, validator_amount)."""
    return {a.address: (a.contributor_amount, a.validator_amount) for a in result.allocations}


def test_pro_rata_split_floors_every_division_and_carries_the_dust() -> None:
    result = allocate(
        inputs(
            funded_total=1000,
            share_bps=1000,
            cap_bps=10_000,  # cap = the whole contributor pool: never binds
            clips=[
                clip(1, A, 7000),
                clip(2, A, 3001),
                clip(3, B, 5000),
                clip(4, C, 9000, accepted=False),  # rejected: weighs nothing
            ],
            validators=[validator(V1, 4, 3), validator(V2, 2, 1), validator(V3, 5, 0)],
        )
    )
    # pool = 1000 - 0; validator_pool = 1000 * 1000 // 10000 = 100;
    # contributor_pool = 1000 * 9000 // 10000 = 900.
    assert (result.pool, result.validator_pool, result.contributor_pool) == (1000, 100, 900)
    # W_A = 7000 + 3001 = 10001, W_B = 5000, WS = 15001; nobody above the cap (900):
    # budget_A = 900 * 10001 // 15001 = 9000900 // 15001 = 600 (15001 * 600 = 9000600)
    # budget_B = 900 * 5000 // 15001 = 4500000 // 15001 = 299 (15001 * 300 = 4500300)
    # clip 1 = 600 * 7000 // 10001 = 4200000 // 10001 = 419 (10001 * 420 = 4200420)
    # clip 2 = 600 * 3001 // 10001 = 1800600 // 10001 = 180 (10001 * 181 = 1810181)
    # clip 3 = 299 * 5000 // 5000 = 299
    assert result.clip_amounts == {
        f"{1:032x}": 419,
        f"{2:032x}": 180,
        f"{3:032x}": 299,
        f"{4:032x}": 0,
    }
    # Validators: sum agreed = 3 + 1 + 0 = 4; V1 = 100 * 3 // 4 = 75, V2 = 100 * 1 // 4 = 25.
    assert amounts(result) == {A: (599, 0), B: (299, 0), V1: (0, 75), V2: (0, 25)}
    # allocated = 599 + 299 + 75 + 25 = 998; carry = 1000 - 998 = 2.
    assert (result.allocated, result.carry) == (998, 2)
    assert result.cumulative == {V1: 75, V2: 25, A: 599, B: 299}
    assert result.cumulative_total == 998
    assert [a.address for a in result.allocations] == [V1, V2, A, B]  # address order
    assert result.root is not None


def test_capped_contributors_excess_is_water_filled_to_the_others() -> None:
    result = allocate(
        inputs(
            epoch=2,
            previous={A: 500, X: 700},
            funded_total=1200 + 10_000,
            share_bps=2000,
            cap_bps=2500,
            clips=[
                clip(1, A, 5000),
                clip(2, A, 4000),
                clip(3, B, 3000),
                clip(4, C, 2400),
                clip(5, D, 1500),
                clip(6, E, 1000),
            ],
            validators=[validator(V1, 10, 10), validator(V2, 8, 5)],
        )
    )
    # pool = 11200 - (500 + 700) = 10000; validator_pool = 10000 * 2000 // 10000 = 2000;
    # contributor_pool = 8000; cap = 8000 * 2500 // 10000 = 2000.
    assert (result.pool, result.validator_pool, result.contributor_pool) == (10_000, 2000, 8000)
    # Weights: A 9000, B 3000, C 2400, D 1500, E 1000; WS = 16900, R = 8000.
    # A: 8000 * 9000 = 72000000 > 2000 * 16900 = 33800000 -> capped at 2000; R = 6000, WS = 7900.
    #    (Without the cap A would get 8000 * 9000 // 16900 = 4260.)
    # B: 6000 * 3000 = 18000000 > 2000 * 7900 = 15800000 -> capped at 2000; R = 4000, WS = 4900.
    # C: 4000 * 2400 = 9600000 <= 2000 * 4900 = 9800000 -> C, D, E share R = 4000 by weight:
    #    C = 9600000 // 4900 = 1959, D = 6000000 // 4900 = 1224, E = 4000000 // 4900 = 816.
    # A's clips: 2000 * 5000 // 9000 = 1111 and 2000 * 4000 // 9000 = 888 -> 1999.
    assert result.clip_amounts == {
        f"{1:032x}": 1111,
        f"{2:032x}": 888,
        f"{3:032x}": 2000,
        f"{4:032x}": 1959,
        f"{5:032x}": 1224,
        f"{6:032x}": 816,
    }
    # Validators: sum agreed 15; V1 = 2000 * 10 // 15 = 1333, V2 = 2000 * 5 // 15 = 666.
    assert amounts(result) == {
        A: (1999, 0),
        B: (2000, 0),
        C: (1959, 0),
        D: (1224, 0),
        E: (816, 0),
        V1: (0, 1333),
        V2: (0, 666),
    }
    # allocated = 1999 + 2000 + 1959 + 1224 + 816 + 1333 + 666 = 9997; carry = 3.
    assert (result.allocated, result.carry) == (9997, 3)
    # A had 500 from earlier epochs; X earned nothing now and keeps its 700.
    assert result.cumulative[A] == 2499
    assert result.cumulative[X] == 700
    assert result.cumulative_total == 1200 + 9997
    assert result.previous_cumulative_total == 1200
    assert {a.address: a.cumulative for a in result.allocations}[A] == 2499


def test_validator_pool_is_zero_when_no_report_agreed_and_its_share_is_carried() -> None:
    result = allocate(
        inputs(
            funded_total=500,
            share_bps=1000,
            cap_bps=10_000,
            clips=[clip(1, A, 8000), clip(2, A, 6000, accepted=False)],
            validators=[validator(V1, 3, 0), validator(V2, 0, 0)],
        )
    )
    # validator_pool = 0 (sum agreed = 0); contributor_pool = 500 * 9000 // 10000 = 450;
    # A alone: budget = 450 * 8000 // 8000 = 450, its accepted clip = 450 * 8000 // 8000 = 450.
    assert (result.validator_pool, result.contributor_pool) == (0, 450)
    assert amounts(result) == {A: (450, 0)}
    # The validators' 50 is not allocated: carry = 500 - 450 = 50.
    assert (result.allocated, result.carry) == (450, 50)


def test_a_lone_contributor_gets_the_cap_and_the_rest_is_the_next_epochs_pool() -> None:
    first = allocate(
        inputs(funded_total=10_000, share_bps=0, cap_bps=2500, clips=[clip(1, A, 5000)])
    )
    # contributor_pool = 10000, cap = 2500: 10000 * 5000 > 2500 * 5000, so A is capped.
    assert amounts(first) == {A: (2500, 0)}
    assert (first.allocated, first.carry) == (2500, 7500)
    # No new funding: the next pool is exactly the carry (10000 - 2500).
    second = allocate(
        inputs(
            epoch=2,
            previous=dict(first.cumulative),
            funded_total=10_000,
            share_bps=0,
            cap_bps=2500,
            clips=[clip(2, B, 4000)],
        )
    )
    assert second.pool == first.carry == 7500
    # cap = 7500 * 2500 // 10000 = 1875; B alone is capped again.
    assert amounts(second) == {B: (1875, 0)}
    assert second.cumulative == {A: 2500, B: 1875}
    assert second.cumulative_total == 4375


def test_epoch_without_accepted_clips_or_agreed_reports_allocates_nothing_and_has_no_root() -> None:
    result = allocate(
        inputs(
            epoch=3,
            previous={A: 40},
            funded_total=100,
            clips=[clip(1, B, 9000, accepted=False)],
            validators=[validator(V1, 1, 0)],
        )
    )
    assert (result.pool, result.contributor_pool, result.validator_pool) == (60, 0, 0)
    assert (result.allocated, result.carry) == (0, 60)
    assert result.allocations == ()
    assert result.root is None
    assert result.tree() is None
    assert result.cumulative == {A: 40}
    assert result.cumulative_total == 40


def test_accepted_clips_of_zero_quality_weigh_nothing() -> None:
    result = allocate(
        inputs(funded_total=1000, share_bps=0, cap_bps=10_000, clips=[clip(1, A, 0), clip(2, B, 0)])
    )
    # An accepted clip exists, so the contributor pool is 1000, but no weight to share it.
    assert result.contributor_pool == 1000
    assert (result.allocated, result.carry) == (0, 1000)
    assert result.clip_amounts == {f"{1:032x}": 0, f"{2:032x}": 0}
    assert result.root is None


def test_contributor_who_also_validates_gets_both_amounts_in_one_leaf() -> None:
    result = allocate(
        inputs(
            funded_total=1000,
            share_bps=1000,
            cap_bps=10_000,
            clips=[clip(1, A, 10_000)],
            validators=[validator(A, 2, 2)],
        )
    )
    # contributor 900 (alone, no cap), validator 100 (alone agreed).
    assert amounts(result) == {A: (900, 100)}
    assert result.cumulative == {A: 1000}
    assert (result.allocated, result.carry) == (1000, 0)
