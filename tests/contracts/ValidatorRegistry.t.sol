// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ValidatorRegistry} from "../../contracts/ValidatorRegistry.sol";
import {IValidatorRegistry} from "../../contracts/interfaces/IValidatorRegistry.sol";
import {IRewardDistributor} from "../../contracts/interfaces/IRewardDistributor.sol";
import {Fixture} from "./utils/Fixture.sol";

contract ValidatorRegistryTest is Fixture {

    bytes32 internal constant ROOT_A = keccak256("root A");
    bytes32 internal constant ROOT_B = keccak256("root B");

    function setUp() public {
        _deploy();
    }

    // --- constructor and wiring ---

    function test_constructor_setsParameters() public view {
        vm.assertEq(registry.token(), address(token), "token");
        vm.assertEq(registry.minStake(), MIN_STAKE, "min stake");
        vm.assertEq(registry.unbondingDelay(), UNBONDING, "delay");
        vm.assertEq(registry.rewardDistributor(), address(distributor), "distributor");
        vm.assertEq(registry.owner(), owner, "owner");
        vm.assertEq(registry.MAX_ACTIVE_VALIDATORS(), 100, "max validators");
        vm.assertEq(
            registry.EPOCH_ROOT_TYPEHASH(),
            keccak256("EpochRoot(uint64 epoch,bytes32 root,uint256 cumulativeTotal)"),
            "typehash"
        );
    }

    function test_constructor_revertsOnZeroToken() public {
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryZeroAddress.selector);
        new ValidatorRegistry(IERC20(address(0)), MIN_STAKE, UNBONDING, owner);
    }

    function test_constructor_revertsOnBadParameters() public {
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryInvalidParameter.selector);
        new ValidatorRegistry(token, 0, UNBONDING, owner);
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryInvalidParameter.selector);
        new ValidatorRegistry(token, MIN_STAKE, 0, owner);
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryInvalidParameter.selector);
        new ValidatorRegistry(token, MIN_STAKE, 366 days, owner);
    }

    function test_setRewardDistributor_setsOnce() public {
        ValidatorRegistry fresh = new ValidatorRegistry(token, MIN_STAKE, UNBONDING, owner);
        vm.expectEmit(address(fresh));
        emit IValidatorRegistry.RewardDistributorSet(address(0xD15));
        vm.prank(owner);
        fresh.setRewardDistributor(address(0xD15));
        vm.assertEq(fresh.rewardDistributor(), address(0xD15), "set");
    }

    function test_setRewardDistributor_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        registry.setRewardDistributor(address(0xD15));
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryRewardDistributorAlreadySet.selector, address(distributor)
            )
        );
        registry.setRewardDistributor(address(0xD15));
        ValidatorRegistry fresh = new ValidatorRegistry(token, MIN_STAKE, UNBONDING, owner);
        vm.prank(owner);
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryZeroAddress.selector);
        fresh.setRewardDistributor(address(0));
    }

    // --- staking ---

    function test_stake_addsValidatorAndCheckpoints() public {
        address v = validators[0];
        _give(v, 3_000 ether);
        vm.startPrank(v);
        token.approve(address(registry), 3_000 ether);
        vm.expectEmit(address(registry));
        emit IValidatorRegistry.Staked(v, 2_000 ether, 2_000 ether);
        registry.stake(2_000 ether);
        uint256 firstBlock = block.number;
        _nextBlock();
        registry.stake(1_000 ether);
        vm.stopPrank();
        _nextBlock();
        vm.assertEq(registry.stakeOf(v), 3_000 ether, "stake");
        vm.assertEq(registry.stakeAt(v, firstBlock), 2_000 ether, "stake at first block");
        vm.assertEq(registry.stakeAt(v, firstBlock - 1), 0, "before");
        vm.assertEq(registry.totalStake(), 3_000 ether, "total");
        vm.assertEq(registry.totalStakeAt(firstBlock), 2_000 ether, "total at first block");
        vm.assertTrue(registry.isActiveValidator(v), "active");
        vm.assertEq(registry.activeValidatorCount(), 1, "count");
        vm.assertEq(registry.bondedStakeOf(v), 3_000 ether, "bonded");
        vm.assertEq(registry.totalBonded(), 3_000 ether, "total bonded");
        vm.assertEq(token.balanceOf(address(registry)), 3_000 ether, "registry balance");
        (address[] memory list, uint256[] memory stakes) = registry.activeValidators();
        vm.assertEq(list.length, 1, "list length");
        vm.assertEq(list[0], v, "listed");
        vm.assertEq(stakes[0], 3_000 ether, "listed stake");
    }

    function test_stake_revertsOnZero() public {
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryZeroAmount.selector);
        registry.stake(0);
    }

    function test_stake_revertsBelowMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryBelowMinStake.selector, MIN_STAKE - 1, MIN_STAKE
            )
        );
        registry.stake(MIN_STAKE - 1);
    }

    function test_stake_revertsWhenActiveSetIsFull() public {
        for (uint256 i = 0; i < 100; ++i) {
            address v = address(uint160(0x10000 + i));
            _give(v, MIN_STAKE);
            vm.startPrank(v);
            token.approve(address(registry), MIN_STAKE);
            registry.stake(MIN_STAKE);
            vm.stopPrank();
        }
        address late = validators[0];
        _give(late, MIN_STAKE);
        vm.startPrank(late);
        token.approve(address(registry), MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryTooManyValidators.selector, 100));
        registry.stake(MIN_STAKE);
        vm.stopPrank();
        // A member may still top up.
        address member = address(uint160(0x10000));
        _give(member, 1 ether);
        vm.startPrank(member);
        token.approve(address(registry), 1 ether);
        registry.stake(1 ether);
        vm.stopPrank();
        vm.assertEq(registry.stakeOf(member), MIN_STAKE + 1 ether, "top-up");
    }

    // --- unstaking and withdrawal ---

    function test_requestUnstake_partialKeepsValidatorActive() public {
        _stake(0, 3_000 ether);
        _nextBlock();
        address v = validators[0];
        uint256 release = block.timestamp + UNBONDING;
        vm.expectEmit(address(registry));
        emit IValidatorRegistry.UnstakeRequested(v, 1_000 ether, 1_000 ether, release);
        vm.prank(v);
        registry.requestUnstake(1_000 ether);
        vm.assertEq(registry.stakeOf(v), 2_000 ether, "active");
        (uint256 amount, uint256 releaseTime) = registry.unbondingOf(v);
        vm.assertEq(amount, 1_000 ether, "unbonding");
        vm.assertEq(releaseTime, release, "release");
        vm.assertEq(registry.bondedStakeOf(v), 3_000 ether, "bonded unchanged");
        vm.assertEq(registry.totalStake(), 2_000 ether, "total active");
        vm.assertTrue(registry.isActiveValidator(v), "still active");
    }

    function test_requestUnstake_fullExitLeavesActiveSetAndRestartsDelay() public {
        _stake(0, 3_000 ether);
        address v = validators[0];
        vm.prank(v);
        registry.requestUnstake(1_000 ether);
        vm.warp(block.timestamp + 1 days);
        vm.prank(v);
        registry.requestUnstake(2_000 ether);
        vm.assertFalse(registry.isActiveValidator(v), "left the set");
        vm.assertEq(registry.activeValidatorCount(), 0, "empty set");
        (uint256 amount, uint256 releaseTime) = registry.unbondingOf(v);
        vm.assertEq(amount, 3_000 ether, "unbonding sums");
        vm.assertEq(releaseTime, block.timestamp + UNBONDING, "delay restarted");
    }

    function test_requestUnstake_reverts() public {
        _stake(0, 2_000 ether);
        address v = validators[0];
        vm.startPrank(v);
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryZeroAmount.selector);
        registry.requestUnstake(0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryInsufficientStake.selector, 2_001 ether, 2_000 ether
            )
        );
        registry.requestUnstake(2_001 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryBelowMinStake.selector, 500 ether, MIN_STAKE)
        );
        registry.requestUnstake(1_500 ether);
        vm.stopPrank();
    }

    function test_withdraw_paysAfterDelay() public {
        _stake(0, 2_000 ether);
        address v = validators[0];
        vm.prank(v);
        registry.requestUnstake(2_000 ether);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectEmit(address(registry));
        emit IValidatorRegistry.Withdrawn(v, 2_000 ether);
        vm.prank(v);
        uint256 amount = registry.withdraw();
        vm.assertEq(amount, 2_000 ether, "amount");
        vm.assertEq(token.balanceOf(v), 2_000 ether, "paid");
        vm.assertEq(registry.totalBonded(), 0, "bonded");
        (uint256 left,) = registry.unbondingOf(v);
        vm.assertEq(left, 0, "cleared");
    }

    function test_withdraw_reverts() public {
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryNothingToWithdraw.selector);
        registry.withdraw();
        _stake(0, 2_000 ether);
        address v = validators[0];
        vm.prank(v);
        registry.requestUnstake(2_000 ether);
        uint256 release = block.timestamp + UNBONDING;
        vm.warp(release - 1);
        vm.prank(v);
        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryUnbondingNotElapsed.selector, release)
        );
        registry.withdraw();
    }

    // --- snapshots ---

    function test_snapshotLookups_rejectCurrentAndFutureBlocks() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryFutureLookup.selector, block.number, block.number
            )
        );
        registry.stakeAt(validators[0], block.number);
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryFutureLookup.selector, block.number + 1, block.number
            )
        );
        registry.totalStakeAt(block.number + 1);
    }

    // --- signatures ---

    function test_epochRootDigest_isEip712OverTheRegistryDomain() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Shotbank"),
                keccak256("1"),
                block.chainid,
                address(registry)
            )
        );
        bytes32 structHash = keccak256(abi.encode(registry.EPOCH_ROOT_TYPEHASH(), uint64(7), ROOT_A, uint256(42)));
        vm.assertEq(
            registry.epochRootDigest(7, ROOT_A, 42),
            keccak256(abi.encodePacked("\x19\x01", domain, structHash)),
            "digest"
        );
    }

    function _threeStaked() internal {
        _stake(0, 1_000 ether);
        _stake(1, 2_000 ether);
        _stake(2, 3_000 ether);
        _nextBlock();
    }

    function test_verifyEpochRootSignatures_sumsSignerStakeAtSnapshot() public {
        _threeStaked();
        uint256 snapshot = block.number - 1;
        _stake(3, 5_000 ether); // after the snapshot: does not count
        _nextBlock();
        bytes[] memory sigs = _signatures(_indexes(0, 1, 2), 1, ROOT_A, 10);
        (uint256 signed, uint256 total) = registry.verifyEpochRootSignatures(1, ROOT_A, 10, snapshot, sigs);
        vm.assertEq(signed, 6_000 ether, "signed");
        vm.assertEq(total, 6_000 ether, "total");
        (signed, total) = registry.verifyEpochRootSignatures(1, ROOT_A, 10, block.number - 1, sigs);
        vm.assertEq(total, 11_000 ether, "total later");
    }

    function test_verifyEpochRootSignatures_rejectsBadSignatures() public {
        _threeStaked();
        uint256 snapshot = block.number - 1;
        bytes[] memory sigs = _signatures(_indexes(0, 1, 2), 1, ROOT_A, 10);

        bytes[] memory malleable = new bytes[](1);
        malleable[0] = _highS(sigs[0]);
        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryInvalidSignature.selector, 0));
        registry.verifyEpochRootSignatures(1, ROOT_A, 10, snapshot, malleable);

        bytes[] memory short = new bytes[](1);
        short[0] = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryInvalidSignature.selector, 0));
        registry.verifyEpochRootSignatures(1, ROOT_A, 10, snapshot, short);

        bytes[] memory reversed = new bytes[](2);
        (reversed[0], reversed[1]) = (sigs[1], sigs[0]);
        address second = _signerOf(sigs[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistrySignersNotAscending.selector, 1, second)
        );
        registry.verifyEpochRootSignatures(1, ROOT_A, 10, snapshot, reversed);

        bytes[] memory duplicate = new bytes[](2);
        (duplicate[0], duplicate[1]) = (sigs[0], sigs[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistrySignersNotAscending.selector, 1, second)
        );
        registry.verifyEpochRootSignatures(1, ROOT_A, 10, snapshot, duplicate);

        bytes[] memory outsider = new bytes[](1);
        outsider[0] = _signRoot(5, 1, ROOT_A, 10);
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryNotValidatorAtSnapshot.selector, validators[5], snapshot
            )
        );
        registry.verifyEpochRootSignatures(1, ROOT_A, 10, snapshot, outsider);

        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistryFutureLookup.selector, block.number, block.number
            )
        );
        registry.verifyEpochRootSignatures(1, ROOT_A, 10, block.number, sigs);
    }

    function _signerOf(bytes memory sig) internal view returns (address) {
        for (uint256 i = 0; i < validators.length; ++i) {
            if (keccak256(_signRoot(i, 1, ROOT_A, 10)) == keccak256(sig)) return validators[i];
        }
        revert("unknown signature");
    }

    // --- slashing ---

    function test_slash_takesActiveAndUnbondingStakeIntoRewardPool() public {
        _stake(0, 3_000 ether);
        address v = validators[0];
        vm.prank(v);
        registry.requestUnstake(1_000 ether);
        _nextBlock();
        vm.expectEmit(address(registry));
        emit IValidatorRegistry.Slashed(v, 9, 3_000 ether, address(this));
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Funded(address(registry), 3_000 ether, 3_000 ether);
        uint256 amount = registry.slash(9, v, _signed(0, ROOT_A, 10, 9), _signed(0, ROOT_B, 10, 9));
        vm.assertEq(amount, 3_000 ether, "slashed");
        vm.assertEq(registry.stakeOf(v), 0, "active gone");
        vm.assertEq(registry.bondedStakeOf(v), 0, "bonded gone");
        vm.assertFalse(registry.isActiveValidator(v), "removed");
        vm.assertEq(registry.totalStake(), 0, "total");
        vm.assertEq(registry.totalBonded(), 0, "total bonded");
        vm.assertTrue(registry.isSlashed(v, 9), "marked");
        vm.assertEq(token.balanceOf(address(registry)), 0, "registry emptied");
        vm.assertEq(token.balanceOf(address(distributor)), 3_000 ether, "pool got it");
        vm.assertEq(distributor.totalFunded(), 3_000 ether, "recorded as funding");
    }

    function test_slash_differentTotalSameRootIsEquivocation() public {
        _stake(0, 1_000 ether);
        uint256 amount = registry.slash(9, validators[0], _signed(0, ROOT_A, 10, 9), _signed(0, ROOT_A, 11, 9));
        vm.assertEq(amount, 1_000 ether, "slashed");
    }

    function test_slash_onlyUnbondingStake() public {
        _stake(0, 1_000 ether);
        vm.prank(validators[0]);
        registry.requestUnstake(1_000 ether);
        uint256 amount = registry.slash(9, validators[0], _signed(0, ROOT_A, 10, 9), _signed(0, ROOT_B, 10, 9));
        vm.assertEq(amount, 1_000 ether, "unbonding slashed");
        vm.assertEq(registry.totalStake(), 0, "total untouched");
    }

    function test_slash_revertsWithoutValidEvidence() public {
        _stake(0, 1_000 ether);
        address v = validators[0];
        IValidatorRegistry.SignedEpochRoot memory a0 = _signed(0, ROOT_A, 10, 9);
        IValidatorRegistry.SignedEpochRoot memory b0 = _signed(0, ROOT_B, 10, 9);
        IValidatorRegistry.SignedEpochRoot memory a1 = _signed(1, ROOT_A, 10, 9);
        IValidatorRegistry.SignedEpochRoot memory b1 = _signed(1, ROOT_B, 10, 9);
        IValidatorRegistry.SignedEpochRoot memory otherEpoch = _signed(0, ROOT_B, 10, 8);

        vm.expectRevert(IValidatorRegistry.ValidatorRegistryNotConflicting.selector);
        registry.slash(9, v, a0, a0);

        // A signature over another epoch recovers to an unrelated address for this epoch's digest.
        vm.expectRevert();
        registry.slash(9, v, a0, otherEpoch);

        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistrySignerMismatch.selector, v, validators[1])
        );
        registry.slash(9, v, a1, b0);

        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistrySignerMismatch.selector, v, validators[1])
        );
        registry.slash(9, v, a0, b1);

        IValidatorRegistry.SignedEpochRoot memory malleable = _signed(0, ROOT_B, 10, 9);
        malleable.signature = _highS(malleable.signature);
        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryInvalidSignature.selector, 1));
        registry.slash(9, v, a0, malleable);

        IValidatorRegistry.SignedEpochRoot memory garbled = _signed(0, ROOT_A, 10, 9);
        garbled.signature = hex"00";
        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryInvalidSignature.selector, 0));
        registry.slash(9, v, garbled, b0);

        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryInvalidSignature.selector, 0));
        registry.checkEquivocation(9, v, garbled, b0);
    }

    function test_slash_revertsWhenAlreadySlashedOrEmpty() public {
        _stake(0, 1_000 ether);
        address v = validators[0];
        IValidatorRegistry.SignedEpochRoot memory a0 = _signed(0, ROOT_A, 10, 9);
        IValidatorRegistry.SignedEpochRoot memory b0 = _signed(0, ROOT_B, 10, 9);
        registry.slash(9, v, a0, b0);
        _stake(0, 1_000 ether); // re-stakes: the old evidence must not be replayable
        vm.expectRevert(abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryAlreadySlashed.selector, v, 9));
        registry.slash(9, v, a0, b0);
        IValidatorRegistry.SignedEpochRoot memory a4 = _signed(4, ROOT_A, 10, 9);
        IValidatorRegistry.SignedEpochRoot memory b4 = _signed(4, ROOT_B, 10, 9);
        vm.expectRevert(
            abi.encodeWithSelector(IValidatorRegistry.ValidatorRegistryNothingToSlash.selector, validators[4])
        );
        registry.slash(9, validators[4], a4, b4);
    }

    function test_slash_revertsWithoutDistributor() public {
        ValidatorRegistry fresh = new ValidatorRegistry(token, MIN_STAKE, UNBONDING, owner);
        bytes32 digestA = fresh.epochRootDigest(9, ROOT_A, 10);
        bytes32 digestB = fresh.epochRootDigest(9, ROOT_B, 10);
        IValidatorRegistry.SignedEpochRoot memory a =
            IValidatorRegistry.SignedEpochRoot(ROOT_A, 10, _sign(validatorKeys[0], digestA));
        IValidatorRegistry.SignedEpochRoot memory b =
            IValidatorRegistry.SignedEpochRoot(ROOT_B, 10, _sign(validatorKeys[0], digestB));
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryRewardDistributorNotSet.selector);
        fresh.slash(9, validators[0], a, b);
    }

    // --- fuzz: stake accounting ---

    /// Stake, partial unstake and withdrawal keep active + unbonding == token balance, and the
    /// snapshots agree with the live values.
    function test_fuzz_stakeAccounting(uint256 a, uint256 b, uint256 unstake, bool full) public {
        a = _bound(a, MIN_STAKE, 10_000_000 ether);
        b = _bound(b, 1, 10_000_000 ether);
        _stake(0, a);
        _stake(1, MIN_STAKE + b);
        _nextBlock();
        uint256 active = a;
        uint256 amount = full ? a : _bound(unstake, 1, a - MIN_STAKE == 0 ? 1 : a - MIN_STAKE);
        if (!full && a - amount < MIN_STAKE && a != amount) amount = a;
        vm.prank(validators[0]);
        registry.requestUnstake(amount);
        active -= amount;
        vm.assertEq(registry.stakeOf(validators[0]), active, "active");
        vm.assertEq(registry.totalStake(), active + MIN_STAKE + b, "total");
        vm.assertEq(registry.totalStakeAt(block.number - 1), a + MIN_STAKE + b, "snapshot before");
        vm.assertEq(registry.totalBonded(), token.balanceOf(address(registry)), "bonded == balance");
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(validators[0]);
        vm.assertEq(registry.withdraw(), amount, "withdrawn");
        vm.assertEq(registry.totalBonded(), token.balanceOf(address(registry)), "bonded == balance after");
        vm.assertEq(registry.isActiveValidator(validators[0]), active != 0, "membership");
    }
}
