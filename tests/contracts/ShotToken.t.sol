// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ShotToken} from "../../contracts/ShotToken.sol";
import {IShotToken} from "../../contracts/interfaces/IShotToken.sol";
import {TestBase} from "./utils/TestBase.sol";

contract ShotTokenTest is TestBase {
    uint256 internal constant GENESIS = 100_000_000 ether;
    uint256 internal constant RATE = 2 ether;
    address internal treasury = address(0xBEEF);
    address internal owner = address(0xA0);
    address internal distributor = address(0xD15);
    ShotToken internal token;
    uint256 internal start;


    function setUp() public {
        vm.warp(1_700_000_000);
        start = block.timestamp;
        token = new ShotToken(treasury, GENESIS, RATE, owner);
    }

    function _wire() internal {
        vm.prank(owner);
        token.setRewardDistributor(distributor);
    }

    function test_constructor_mintsGenesisToTreasuryAndSetsMetadata() public view {
        vm.assertEq(token.balanceOf(treasury), GENESIS, "treasury balance");
        vm.assertEq(token.totalSupply(), GENESIS, "supply");
        vm.assertEq(token.genesisSupply(), GENESIS, "genesis");
        vm.assertEq(token.emissionStart(), start, "start");
        vm.assertEq(token.emissionRatePerSecond(), RATE, "rate");
        vm.assertEq(token.emissionCap(), token.MAX_SUPPLY() - GENESIS, "cap");
        vm.assertEq(token.owner(), owner, "owner");
        vm.assertEq(token.rewardDistributor(), address(0), "distributor unset");
        vm.assertEq(token.decimals(), 18, "decimals");
        vm.assertEq(keccak256(bytes(token.symbol())), keccak256("SHOT"), "symbol");
    }

    function test_constructor_revertsOnZeroTreasury() public {
        vm.expectRevert(IShotToken.ShotTokenZeroAddress.selector);
        new ShotToken(address(0), GENESIS, RATE, owner);
    }

    function test_constructor_revertsWhenGenesisExceedsCap() public {
        uint256 cap = 1_000_000_000 ether;
        vm.expectRevert(abi.encodeWithSelector(IShotToken.ShotTokenGenesisExceedsCap.selector, cap + 1, cap));
        new ShotToken(treasury, cap + 1, RATE, owner);
    }

    function test_constructor_revertsWhenRateExceedsEmissionCap() public {
        uint256 cap = 1_000_000_000 ether - GENESIS;
        vm.expectRevert(abi.encodeWithSelector(IShotToken.ShotTokenEmissionRateTooHigh.selector, cap + 1, cap));
        new ShotToken(treasury, GENESIS, cap + 1, owner);
    }

    function test_setRewardDistributor_setsOnceAndEmits() public {
        vm.expectEmit(address(token));
        emit IShotToken.RewardDistributorSet(distributor);
        _wire();
        vm.assertEq(token.rewardDistributor(), distributor, "distributor");
    }

    function test_setRewardDistributor_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        token.setRewardDistributor(distributor);
    }

    function test_setRewardDistributor_revertsOnZeroAddress() public {
        vm.prank(owner);
        vm.expectRevert(IShotToken.ShotTokenZeroAddress.selector);
        token.setRewardDistributor(address(0));
    }

    function test_setRewardDistributor_revertsWhenAlreadySet() public {
        _wire();
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IShotToken.ShotTokenRewardDistributorAlreadySet.selector, distributor));
        token.setRewardDistributor(address(0xD16));
    }

    function test_scheduledEmission_isZeroAtAndBeforeStart() public view {
        vm.assertEq(token.scheduledEmission(start), 0, "at start");
        vm.assertEq(token.scheduledEmission(start - 1), 0, "before start");
        vm.assertEq(token.releasableEmission(), 0, "releasable now");
    }

    function test_scheduledEmission_isLinearThenCapped() public view {
        vm.assertEq(token.scheduledEmission(start + 10), 10 * RATE, "linear");
        uint256 cap = token.emissionCap();
        vm.assertEq(token.scheduledEmission(start + cap / RATE), cap, "exactly at cap");
        vm.assertEq(token.scheduledEmission(start + cap / RATE + 1), cap, "past cap");
        vm.assertEq(token.scheduledEmission(type(uint256).max), cap, "far future");
    }

    function test_scheduledEmission_isZeroWithZeroRate() public {
        ShotToken flat = new ShotToken(treasury, GENESIS, 0, owner);
        vm.assertEq(flat.scheduledEmission(start + 365 days), 0, "no emission");
    }

    function test_mintEmission_mintsReleasedAmount() public {
        _wire();
        vm.warp(start + 100);
        vm.assertEq(token.releasableEmission(), 100 * RATE, "releasable");
        vm.expectEmit(address(token));
        emit IShotToken.EmissionMinted(address(0xCAFE), 60 * RATE, 60 * RATE);
        vm.prank(distributor);
        token.mintEmission(address(0xCAFE), 60 * RATE);
        vm.assertEq(token.balanceOf(address(0xCAFE)), 60 * RATE, "balance");
        vm.assertEq(token.emissionMinted(), 60 * RATE, "minted");
        vm.assertEq(token.releasableEmission(), 40 * RATE, "rest releasable");
        vm.assertEq(token.totalSupply(), GENESIS + 60 * RATE, "supply");
    }

    function test_mintEmission_revertsForOthers() public {
        _wire();
        vm.warp(start + 100);
        vm.expectRevert(abi.encodeWithSelector(IShotToken.ShotTokenUnauthorizedMinter.selector, address(this)));
        token.mintEmission(address(this), 1);
    }

    function test_mintEmission_revertsBeforeDistributorIsSet() public {
        vm.warp(start + 100);
        vm.prank(distributor);
        vm.expectRevert(abi.encodeWithSelector(IShotToken.ShotTokenUnauthorizedMinter.selector, distributor));
        token.mintEmission(distributor, 1);
    }

    function test_mintEmission_revertsAboveReleasable() public {
        _wire();
        vm.warp(start + 5);
        vm.prank(distributor);
        vm.expectRevert(
            abi.encodeWithSelector(IShotToken.ShotTokenEmissionExceedsReleasable.selector, 5 * RATE + 1, 5 * RATE)
        );
        token.mintEmission(distributor, 5 * RATE + 1);
    }

    function test_permit_setsAllowanceFromSignature() public {
        uint256 key = 0xA11CE;
        address holder = vm.addr(key);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                holder,
                address(this),
                5 ether,
                token.nonces(holder),
                block.timestamp + 1 hours
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        token.permit(holder, address(this), 5 ether, block.timestamp + 1 hours, v, r, s);
        vm.assertEq(token.allowance(holder, address(this)), 5 ether, "allowance");
        vm.assertEq(token.nonces(holder), 1, "nonce");
    }

    /// Supply never exceeds MAX_SUPPLY and releasable emission tracks the schedule, whatever the
    /// genesis, rate, mint sizes and times.
    function test_fuzz_emissionNeverExceedsCap(
        uint256 genesis,
        uint256 rate,
        uint256 dt1,
        uint256 dt2,
        uint256 mintFraction
    ) public {
        genesis = _bound(genesis, 0, 1_000_000_000 ether);
        uint256 cap = 1_000_000_000 ether - genesis;
        rate = _bound(rate, 0, cap);
        ShotToken t = new ShotToken(treasury, genesis, rate, owner);
        vm.prank(owner);
        t.setRewardDistributor(distributor);

        vm.warp(start + _bound(dt1, 0, 100 * 365 days));
        uint256 releasable = t.releasableEmission();
        uint256 elapsed = block.timestamp - start;
        uint256 expected = rate == 0 ? 0 : (elapsed > cap / rate ? cap : rate * elapsed);
        vm.assertEq(releasable, expected, "schedule");
        uint256 first = releasable * _bound(mintFraction, 0, 100) / 100;
        vm.prank(distributor);
        t.mintEmission(distributor, first);

        vm.warp(block.timestamp + _bound(dt2, 0, 100 * 365 days));
        uint256 rest = t.releasableEmission();
        vm.prank(distributor);
        t.mintEmission(distributor, rest);
        vm.assertLe(t.totalSupply(), t.MAX_SUPPLY(), "supply cap");
        vm.assertEq(t.emissionMinted(), t.scheduledEmission(block.timestamp), "minted == schedule");
        vm.assertEq(t.releasableEmission(), 0, "nothing left");
    }
}
