"""Rule ``shotbank-rewards/1`` stays exactly what it was when rule /2 came.

Epochs closed under /1 published their ``inputs_sha256`` and root; anyone must still be
able to verify them with today's code. The figures below were computed with the code of
rule /1 before rule /2 existed, and must never change.
"""

from __future__ import annotations

from shotbank.rewards import EpochInputs, allocate, canonical_json, inputs_hash

from .builders import address, clip, inputs, validator

#: The canonical JSON of :func:`pinned_inputs` as rule /1 wrote it.
PINNED_JSON = (
    '{"chain_id":31337,"clips":[{"accepted":true,"clip_id":"00000000000000000000000000000001",'
    '"contributor":"0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1","quality_bps":7000},'
    '{"accepted":true,"clip_id":"00000000000000000000000000000002",'
    '"contributor":"0xb2b2b2b2b2B2b2B2B2b2b2B2B2b2B2B2b2b2b2b2","quality_bps":3001},'
    '{"accepted":false,"clip_id":"00000000000000000000000000000003",'
    '"contributor":"0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1","quality_bps":5000}],'
    '"distributor":"0xD1d1d1D1d1d1D1d1D1D1D1d1d1D1D1D1d1D1d1d1","epoch":3,'
    '"funded_total":"1000000000000000001200","funding_block":100,'
    '"previous_cumulative":{"0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1":"500",'
    '"0xF6f6F6f6f6f6F6F6F6F6F6f6f6F6f6f6F6f6f6f6":"700"},"previous_epoch":2,'
    '"rule":{"contributor_cap_bps":2500,"validator_share_bps":1000,'
    '"version":"shotbank-rewards/1"},'
    '"validators":[{"address":"0x1111111111111111111111111111111111111111",'
    '"agreed_reports":2,"reports":3}]}'
)
PINNED_HASH = "77656c4526d8714ef92db5d6a2796b61406c4188f47c43eaeff7db86966df08b"
PINNED_ROOT = "0xd05e2792e93dce65a04f0e8100a480e8dd6bbfda4fad2b7c5df7ced3ac1aaccc"


def pinned_inputs() -> EpochInputs:
    """A rule /1 epoch with a previous map, accepted and rejected clips and a validator."""
    a, b = address(0xA1), address(0xB2)
    return inputs(
        epoch=3,
        previous={a: 500, address(0xF6): 700},
        funded_total=10**21 + 1200,
        clips=[clip(1, a, 7000), clip(2, b, 3001), clip(3, a, 5000, accepted=False)],
        validators=[validator(address(0x11), 3, 2)],
    )


def test_v1_canonical_json_and_inputs_hash_are_byte_identical_to_before_rule_v2() -> None:
    pinned = pinned_inputs()
    assert canonical_json(pinned).decode("ascii") == PINNED_JSON
    assert inputs_hash(pinned) == PINNED_HASH
    assert pinned.model_dump_json() == pinned.model_dump_json(exclude={"sales", "versions"})


def test_v1_allocation_gives_the_root_it_gave_before_rule_v2() -> None:
    result = allocate(pinned_inputs())
    assert result.root == PINNED_ROOT
    assert (result.allocated, result.carry) == (550 * 10**18, 450 * 10**18)
    assert (result.sales_pool, result.sales_allocated) == (0, 0)
    assert all(allocation.sales_amount == 0 for allocation in result.allocations)
