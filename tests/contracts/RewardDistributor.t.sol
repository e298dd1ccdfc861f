// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {RewardDistributor} from "../../contracts/RewardDistributor.sol";
import {IRewardDistributor} from "../../contracts/interfaces/IRewardDistributor.sol";
import {IValidatorRegistry} from "../../contracts/interfaces/IValidatorRegistry.sol";
import {Fixture} from "./utils/Fixture.sol";

contract RewardDistributorTest is Fixture {

    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);
    address internal dave = address(0xDA7E);

    bytes32 internal root1;
    bytes32[] internal leaves1;
    uint256 internal total1;
    bytes32 internal root2;
    bytes32[] internal leaves2;
    uint256 internal total2;

    function setUp() public {
        _deploy();
        _stake(0, 1_000 ether);
        _stake(1, 1_000 ether);
        _stake(2, 1_000 ether);
        _fund(1_000_000 ether);
        _nextBlock();
        (root1, leaves1, total1) = _tree([alice, bob, carol, dave], [uint256(100 ether), 200 ether, 300 ether, 400 ether]);
        (root2, leaves2, total2) = _tree([alice, bob, carol, dave], [uint256(150 ether), 200 ether, 350 ether, 500 ether]);
    }

    function _claimable1() internal {
        _submit(1, root1, total1);
        vm.warp(block.timestamp + WINDOW);
        _nextBlock();
    }

    // --- constructor ---

    function test_constructor_setsParametersAndRoles() public view {
        vm.assertEq(distributor.token(), address(token), "token");
        vm.assertEq(distributor.registry(), address(registry), "registry");
        vm.assertEq(distributor.challengeWindow(), WINDOW, "window");
        vm.assertEq(distributor.maxSnapshotAge(), MAX_AGE, "age");
        vm.assertTrue(distributor.hasRole(distributor.DEFAULT_ADMIN_ROLE(), owner), "admin");
        vm.assertTrue(distributor.hasRole(distributor.GUARDIAN_ROLE(), guardian), "guardian");
        vm.assertEq(distributor.QUORUM_NUMERATOR(), 2, "num");
        vm.assertEq(distributor.QUORUM_DENOMINATOR(), 3, "den");
        vm.assertFalse(distributor.paused(), "not paused");
        vm.assertEq(distributor.lastEpoch(), 0, "no epoch");
        vm.assertEq(distributor.claimableEpoch(), 0, "no claimable epoch");
        vm.assertEq(distributor.claimableRoot(), bytes32(0), "no claimable root");
    }

    function test_constructor_reverts() public {
        IERC20 t = token;
        IValidatorRegistry r = registry;
        vm.expectRevert(IRewardDistributor.RewardDistributorZeroAddress.selector);
        new RewardDistributor(IERC20(address(0)), r, owner, guardian, WINDOW, MAX_AGE);
        vm.expectRevert(IRewardDistributor.RewardDistributorZeroAddress.selector);
        new RewardDistributor(t, IValidatorRegistry(address(0)), owner, guardian, WINDOW, MAX_AGE);
        vm.expectRevert(IRewardDistributor.RewardDistributorZeroAddress.selector);
        new RewardDistributor(t, r, address(0), guardian, WINDOW, MAX_AGE);
        vm.expectRevert(IRewardDistributor.RewardDistributorZeroAddress.selector);
        new RewardDistributor(t, r, owner, address(0), WINDOW, MAX_AGE);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidParameter.selector);
        new RewardDistributor(t, r, owner, guardian, 59, MAX_AGE);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidParameter.selector);
        new RewardDistributor(t, r, owner, guardian, 30 days + 1, MAX_AGE);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidParameter.selector);
        new RewardDistributor(t, r, owner, guardian, WINDOW, 0);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidParameter.selector);
        new RewardDistributor(t, r, owner, guardian, WINDOW, 50_001);
    }

    // --- submitRoot ---

    function test_submitRoot_acceptsQuorumAndRecordsPendingRoot() public {
        uint256 snapshot = block.number - 1;
        bytes[] memory sigs = _signatures(_indexes(0, 1, 2), 1, root1, total1);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.RootSubmitted(1, root1, total1, snapshot, block.timestamp + WINDOW, 3_000 ether, 3_000 ether);
        distributor.submitRoot(1, root1, total1, snapshot, sigs);
        vm.assertEq(distributor.lastEpoch(), 1, "last epoch");
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Pending), "pending");
        IRewardDistributor.EpochRoot memory record = distributor.epochRoot(1);
        vm.assertEq(record.root, root1, "root");
        vm.assertEq(record.cumulativeTotal, total1, "total");
        vm.assertEq(record.snapshotBlock, snapshot, "snapshot");
        vm.assertEq(record.claimableAt, block.timestamp + WINDOW, "claimable at");
        vm.assertEq(distributor.claimableRoot(), bytes32(0), "not claimable yet");

        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Claimable), "claimable");
        vm.assertEq(distributor.claimableEpoch(), 1, "claimable epoch");
        vm.assertEq(distributor.claimableRoot(), root1, "claimable root");
        vm.assertEq(uint256(distributor.rootStatus(2)), uint256(IRewardDistributor.RootStatus.None), "unknown");
    }

    function test_submitRoot_acceptsExactlyTwoThirds() public {
        uint256[] memory two = new uint256[](2);
        (two[0], two[1]) = (0, 2);
        bytes[] memory sigs = _signatures(two, 1, root1, total1);
        distributor.submitRoot(1, root1, total1, block.number - 1, sigs);
        vm.assertEq(distributor.lastEpoch(), 1, "accepted");
    }

    function test_submitRoot_revertsBelowQuorum() public {
        bytes[] memory sigs = _signatures(_indexes(1), 1, root1, total1);
        uint256 snapshot = block.number - 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IRewardDistributor.RewardDistributorQuorumNotReached.selector, 1_000 ether, 3_000 ether
            )
        );
        distributor.submitRoot(1, root1, total1, snapshot, sigs);
    }

    function test_submitRoot_revertsWithoutAnyStake() public {
        uint256 snapshot = 50; // before anyone staked
        bytes[] memory none = new bytes[](0);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorQuorumNotReached.selector, 0, 0));
        distributor.submitRoot(1, root1, total1, snapshot, none);
    }

    function test_submitRoot_revertsOnBadInputs() public {
        uint256 snapshot = block.number - 1;
        bytes[] memory sigs = _signatures(_indexes(0, 1, 2), 1, root1, total1);

        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorEpochNotIncreasing.selector, 0, 0));
        distributor.submitRoot(0, root1, total1, snapshot, sigs);

        vm.expectRevert(IRewardDistributor.RewardDistributorZeroRoot.selector);
        distributor.submitRoot(1, bytes32(0), total1, snapshot, sigs);

        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.RewardDistributorInvalidSnapshot.selector, block.number)
        );
        distributor.submitRoot(1, root1, total1, block.number, sigs);

        vm.roll(block.number + MAX_AGE + 1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorInvalidSnapshot.selector, snapshot));
        distributor.submitRoot(1, root1, total1, snapshot, sigs);
        vm.roll(snapshot + MAX_AGE); // exactly MAX_AGE blocks old is fine

        uint256 tooMuch = distributor.totalFunded() + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IRewardDistributor.RewardDistributorInsufficientFunding.selector, tooMuch, tooMuch - 1
            )
        );
        distributor.submitRoot(1, root1, tooMuch, snapshot, sigs);

        // Signatures over another message do not count (they recover to unrelated addresses).
        bytes[] memory otherSigs = _signatures(_indexes(0, 1, 2), 1, root2, total2);
        vm.expectRevert();
        distributor.submitRoot(1, root1, total1, snapshot, otherSigs);

        distributor.submitRoot(1, root1, total1, snapshot, sigs);
    }

    function test_submitRoot_revertsWhilePendingAndForOldEpochs() public {
        _submit(1, root1, total1);
        bytes[] memory sigs = _signatures(_indexes(0, 1, 2), 2, root2, total2);
        uint256 snapshot = block.number - 1;
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorRootPending.selector, 1));
        distributor.submitRoot(2, root2, total2, snapshot, sigs);
        vm.warp(block.timestamp + WINDOW);
        bytes[] memory sigs1 = _signatures(_indexes(0, 1, 2), 1, root2, total2);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorEpochNotIncreasing.selector, 1, 1));
        distributor.submitRoot(1, root2, total2, snapshot, sigs1);
    }

    function test_submitRoot_revertsWhenPaused() public {
        vm.prank(guardian);
        distributor.pause();
        bytes[] memory sigs = _signatures(_indexes(0, 1, 2), 1, root1, total1);
        uint256 snapshot = block.number - 1;
        vm.expectRevert(IRewardDistributor.RewardDistributorPaused.selector);
        distributor.submitRoot(1, root1, total1, snapshot, sigs);
    }

    function test_submitRoot_promotesPreviousRootAndSupersedesIt() public {
        _claimable1();
        _submit(5, root2, total2); // epochs may skip numbers
        // While epoch 5 is pending, claims still use epoch 1.
        vm.assertEq(distributor.claimableEpoch(), 1, "still epoch 1");
        vm.assertEq(distributor.claimableRoot(), root1, "still root 1");
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Claimable), "1 claimable");
        vm.assertEq(uint256(distributor.rootStatus(5)), uint256(IRewardDistributor.RootStatus.Pending), "5 pending");
        distributor.claim(alice, 100 ether, _proof(leaves1, 0));
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.claimableEpoch(), 5, "epoch 5");
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Superseded), "1 old");
        vm.assertEq(uint256(distributor.rootStatus(5)), uint256(IRewardDistributor.RootStatus.Claimable), "5 live");
        distributor.claim(alice, 150 ether, _proof(leaves2, 0));
        vm.assertEq(token.balanceOf(alice), 150 ether, "alice got the cumulative amount");
        // A third root promotes epoch 5 into the fallback slot.
        _nextBlock();
        (bytes32 root3,, uint256 total3) =
            _tree([alice, bob, carol, dave], [uint256(150 ether), 250 ether, 350 ether, 500 ether]);
        _submit(6, root3, total3);
        vm.assertEq(distributor.claimableEpoch(), 5, "fallback is 5");
        vm.assertEq(distributor.claimableRoot(), root2, "fallback root");
    }

    // --- veto ---

    function test_veto_byGuardianOrAdminCancelsPendingRoot() public {
        _claimable1();
        _submit(2, root2, total2);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.RootVetoed(2, guardian);
        vm.prank(guardian);
        distributor.veto(2);
        vm.assertEq(uint256(distributor.rootStatus(2)), uint256(IRewardDistributor.RootStatus.Vetoed), "vetoed");
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.claimableRoot(), root1, "falls back to root 1");
        // A corrected root goes in under a new epoch at once; the vetoed one is never promoted.
        _nextBlock();
        _submit(3, root2, total2);
        vm.prank(owner);
        distributor.veto(3);
        vm.assertEq(distributor.claimableEpoch(), 1, "still 1");
    }

    function test_veto_reverts() public {
        _submit(1, root1, total1);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.RewardDistributorUnauthorized.selector, address(this))
        );
        distributor.veto(1);
        vm.startPrank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorNotChallengeable.selector, 2));
        distributor.veto(2);
        distributor.veto(1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorNotChallengeable.selector, 1));
        distributor.veto(1);
        vm.stopPrank();
        _nextBlock();
        _submit(2, root2, total2);
        vm.warp(block.timestamp + WINDOW);
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorNotChallengeable.selector, 2));
        distributor.veto(2);
    }

    // --- challenge ---

    function test_challenge_slashesEquivocatorAndCancelsRoot() public {
        _submit(1, root1, total1);
        bytes memory overPending = _signRoot(1, 1, root1, total1);
        bytes memory overConflict = _signRoot(1, 1, root2, total2);
        uint256 fundedBefore = distributor.totalFunded();
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.RootChallenged(1, validators[1], carol);
        vm.prank(carol);
        distributor.challenge(1, validators[1], root2, total2, overPending, overConflict);
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Cancelled), "cancelled");
        vm.assertTrue(registry.isSlashed(validators[1], 1), "slashed");
        vm.assertEq(registry.stakeOf(validators[1]), 0, "stake gone");
        vm.assertEq(distributor.totalFunded(), fundedBefore + 1_000 ether, "slash funds the pool");
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.claimableRoot(), bytes32(0), "never claimable");
        // The remaining two validators re-sign a corrected root under a new epoch.
        _nextBlock();
        uint256[] memory two = new uint256[](2);
        (two[0], two[1]) = (0, 2);
        distributor.submitRoot(2, root1, total1, block.number - 1, _signatures(two, 2, root1, total1));
        vm.assertEq(distributor.lastEpoch(), 2, "corrected root accepted");
    }

    function test_challenge_cancelsEvenIfAlreadySlashedForThatEpoch() public {
        _submit(1, root1, total1);
        IValidatorRegistry.SignedEpochRoot memory a = _signed(1, root1, total1, 1);
        IValidatorRegistry.SignedEpochRoot memory b = _signed(1, bytes32(uint256(7)), 7, 1);
        registry.slash(1, validators[1], a, b);
        bytes memory overConflict = _signRoot(1, 1, root2, total2);
        distributor.challenge(1, validators[1], root2, total2, a.signature, overConflict);
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Cancelled), "cancelled");
    }

    function test_challenge_cancelsWhenStakeAlreadyGone() public {
        _submit(1, root1, total1);
        // Slashed for another epoch: nothing bonded is left, the evidence still cancels the root.
        IValidatorRegistry.SignedEpochRoot memory a = _signed(1, root1, total1, 99);
        IValidatorRegistry.SignedEpochRoot memory b = _signed(1, root2, total2, 99);
        registry.slash(99, validators[1], a, b);
        bytes memory overPending = _signRoot(1, 1, root1, total1);
        bytes memory overConflict = _signRoot(1, 1, root2, total2);
        distributor.challenge(1, validators[1], root2, total2, overPending, overConflict);
        vm.assertEq(uint256(distributor.rootStatus(1)), uint256(IRewardDistributor.RootStatus.Cancelled), "cancelled");
        vm.assertFalse(registry.isSlashed(validators[1], 1), "nothing to slash for epoch 1");
    }

    function test_challenge_reverts() public {
        bytes memory overPending = _signRoot(1, 1, root1, total1);
        bytes memory overConflict = _signRoot(1, 1, root2, total2);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorNotChallengeable.selector, 1));
        distributor.challenge(1, validators[1], root2, total2, overPending, overConflict);

        _submit(1, root1, total1);
        bytes memory outsiderPending = _signRoot(7, 1, root1, total1);
        bytes memory outsiderConflict = _signRoot(7, 1, root2, total2);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.RewardDistributorNotValidatorAtSnapshot.selector, validators[7])
        );
        distributor.challenge(1, validators[7], root2, total2, outsiderPending, outsiderConflict);

        // Evidence must conflict with the pending root and be signed by the accused validator.
        vm.expectRevert(IValidatorRegistry.ValidatorRegistryNotConflicting.selector);
        distributor.challenge(1, validators[1], root1, total1, overPending, overPending);
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorRegistry.ValidatorRegistrySignerMismatch.selector, validators[2], validators[1]
            )
        );
        distributor.challenge(1, validators[2], root2, total2, overPending, overConflict);

        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.RewardDistributorNotChallengeable.selector, 1));
        distributor.challenge(1, validators[1], root2, total2, overPending, overConflict);
    }

    // --- claims ---

    function test_claim_paysDifferenceToAccountWhoeverCalls() public {
        _claimable1();
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Claimed(bob, 200 ether);
        vm.prank(carol);
        uint256 paid = distributor.claim(bob, 200 ether, _proof(leaves1, 1));
        vm.assertEq(paid, 200 ether, "paid");
        vm.assertEq(token.balanceOf(bob), 200 ether, "bob paid");
        vm.assertEq(token.balanceOf(carol), 0, "caller unpaid");
        vm.assertEq(distributor.claimed(bob), 200 ether, "claimed");
        vm.assertEq(distributor.totalClaimed(), 200 ether, "total claimed");

        _submit(2, root2, total2);
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory oldProof = _proof(leaves1, 0);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidProof.selector); // root 1 is superseded
        distributor.claim(alice, 100 ether, oldProof);
    }

    function test_claim_reverts() public {
        vm.expectRevert(IRewardDistributor.RewardDistributorNoClaimableRoot.selector);
        distributor.claim(alice, 100 ether, _proof(leaves1, 0));
        _claimable1();
        bytes32[] memory proof = _proof(leaves1, 0);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidProof.selector);
        distributor.claim(alice, 101 ether, proof);
        vm.expectRevert(IRewardDistributor.RewardDistributorInvalidProof.selector);
        distributor.claim(bob, 100 ether, proof);
        distributor.claim(alice, 100 ether, proof);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRewardDistributor.RewardDistributorNothingToClaim.selector, alice, 100 ether, 100 ether
            )
        );
        distributor.claim(alice, 100 ether, proof);
        vm.prank(guardian);
        distributor.pause();
        vm.expectRevert(IRewardDistributor.RewardDistributorPaused.selector);
        distributor.claim(bob, 200 ether, _proof(leaves1, 1));
    }

    function test_claim_repeatPaysOnlyTheIncrease() public {
        _claimable1();
        distributor.claim(alice, 100 ether, _proof(leaves1, 0));
        _submit(2, root2, total2);
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.claim(alice, 150 ether, _proof(leaves2, 0)), 50 ether, "difference");
        vm.assertEq(token.balanceOf(alice), 150 ether, "cumulative");
        // An older, smaller leaf never pays again.
        bytes32[] memory oldProof = _proof(leaves1, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRewardDistributor.RewardDistributorNothingToClaim.selector, alice, 100 ether, 150 ether
            )
        );
        distributor.claim(alice, 100 ether, oldProof);
    }

    // --- funding ---

    function test_fund_recordsFunding() public {
        uint256 before = distributor.totalFunded();
        token.approve(address(distributor), 5 ether);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Funded(address(this), 5 ether, before + 5 ether);
        distributor.fund(5 ether);
        vm.assertEq(distributor.totalFunded(), before + 5 ether, "funded");
        vm.expectRevert(IRewardDistributor.RewardDistributorZeroAmount.selector);
        distributor.fund(0);
    }

    function test_drawEmission_mintsReleasedEmissionIntoPool() public {
        vm.warp(token.emissionStart());
        vm.expectRevert(IRewardDistributor.RewardDistributorNoEmission.selector);
        distributor.drawEmission();
        vm.warp(token.emissionStart() + 100);
        uint256 before = distributor.totalFunded();
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Funded(address(token), 100 * RATE, before + 100 * RATE);
        vm.assertEq(distributor.drawEmission(), 100 * RATE, "drawn");
        vm.assertEq(distributor.totalFunded(), before + 100 * RATE, "funded");
        vm.assertEq(token.balanceOf(address(distributor)), before + 100 * RATE, "balance");
    }

    function test_totalClaimed_ignoresTokensSentWithoutFund() public {
        RewardDistributor fresh = new RewardDistributor(token, registry, owner, guardian, WINDOW, MAX_AGE);
        token.transfer(address(fresh), 10 ether);
        vm.assertEq(fresh.totalClaimed(), 0, "donation is not a claim");
        vm.assertEq(fresh.totalFunded(), 0, "nor funding");
    }

    // --- pause ---

    function test_pause_unpause() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.RewardDistributorUnauthorized.selector, address(this))
        );
        distributor.pause();
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Paused(guardian);
        vm.prank(guardian);
        distributor.pause();
        vm.assertTrue(distributor.paused(), "paused");
        vm.prank(guardian);
        vm.expectRevert(IRewardDistributor.RewardDistributorPaused.selector);
        distributor.pause();
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.RewardDistributorUnauthorized.selector, address(this))
        );
        distributor.unpause();
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Unpaused(owner);
        vm.prank(owner);
        distributor.unpause();
        vm.assertFalse(distributor.paused(), "unpaused");
        vm.prank(owner);
        vm.expectRevert(IRewardDistributor.RewardDistributorNotPaused.selector);
        distributor.unpause();
    }

    // --- fuzz ---

    /// Two successive cumulative amounts pay exactly their difference, once.
    function test_fuzz_claimPaysDifferenceOnce(uint256 first, uint256 increase) public {
        first = _bound(first, 1, 400_000 ether);
        increase = _bound(increase, 0, 400_000 ether);
        bytes32[] memory leavesA = new bytes32[](2);
        leavesA[0] = _leaf(alice, first);
        leavesA[1] = _leaf(bob, 1);
        _submit(1, _root(leavesA), first + 1);
        vm.warp(block.timestamp + WINDOW);
        _nextBlock();
        vm.assertEq(distributor.claim(alice, first, _proof(leavesA, 0)), first, "first payment");

        bytes32[] memory leavesB = new bytes32[](2);
        leavesB[0] = _leaf(alice, first + increase);
        leavesB[1] = _leaf(bob, 1);
        _submit(2, _root(leavesB), first + increase + 1);
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory proofB = _proof(leavesB, 0);
        if (increase == 0) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IRewardDistributor.RewardDistributorNothingToClaim.selector, alice, first, first
                )
            );
            distributor.claim(alice, first, proofB);
        } else {
            vm.assertEq(distributor.claim(alice, first + increase, proofB), increase, "second payment");
        }
        vm.assertEq(token.balanceOf(alice), first + increase, "total paid");
        vm.assertEq(distributor.claimed(alice), first + increase, "claimed");
        vm.assertEq(distributor.totalClaimed(), first + increase, "total claimed");
    }

    /// A root is accepted exactly when the signers hold at least 2/3 of the stake at the snapshot.
    function test_fuzz_quorumThreshold(uint256 s3, uint256 s4, uint256 s5, uint8 mask) public {
        uint256[3] memory stakes =
            [_bound(s3, MIN_STAKE, 10_000_000 ether), _bound(s4, MIN_STAKE, 10_000_000 ether), _bound(s5, MIN_STAKE, 10_000_000 ether)];
        for (uint256 i = 0; i < 3; ++i) _stake(3 + i, stakes[i]);
        _nextBlock();
        uint256 total = 3_000 ether + stakes[0] + stakes[1] + stakes[2];
        uint256 count;
        for (uint256 i = 0; i < 6; ++i) if (mask & (1 << i) != 0) ++count;
        uint256[] memory signers = new uint256[](count);
        uint256 signed;
        uint256 k;
        for (uint256 i = 0; i < 6; ++i) {
            if (mask & (1 << i) == 0) continue;
            signers[k++] = i;
            signed += i < 3 ? 1_000 ether : stakes[i - 3];
        }
        bytes[] memory sigs = _signatures(signers, 1, root1, total1);
        uint256 snapshot = block.number - 1;
        if (signed * 3 < total * 2) {
            vm.expectRevert(
                abi.encodeWithSelector(IRewardDistributor.RewardDistributorQuorumNotReached.selector, signed, total)
            );
        }
        distributor.submitRoot(1, root1, total1, snapshot, sigs);
    }
}
