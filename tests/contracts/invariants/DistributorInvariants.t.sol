// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IRewardDistributor} from "../../../contracts/interfaces/IRewardDistributor.sol";
import {IValidatorRegistry} from "../../../contracts/interfaces/IValidatorRegistry.sol";
import {Fixture} from "../utils/Fixture.sol";
import {InvariantBase} from "../utils/InvariantBase.sol";

/// @notice Drives the distributor through random funding, root submissions (with and without quorum),
/// vetoes, challenges, time jumps and claims. Honest roots pay account `i` a cumulative
/// `(i + 1) * epoch` ether, so amounts only grow; minority roots hand everything to an attacker.
contract DistributorHandler is Fixture {
    uint256 public constant ACCOUNTS = 4;
    address public constant ATTACKER = address(0xBAD);

    address[4] internal accounts = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    mapping(uint64 epoch => bytes32) public honestRootOf;
    mapping(bytes32 root => bool) public quorumRoot;
    mapping(bytes32 root => bool) public minorityRoot;
    mapping(address account => uint256) public maxCumulative;
    uint256 public ghostPaid;
    uint256 public minorityAccepted;
    uint256 public claims;
    uint256 public submissions;
    uint64 public nextEpoch = 1;

    constructor() {
        _deploy();
        for (uint256 i = 0; i < 3; ++i) _stake(i, 1_000 ether);
        _nextBlock();
    }

    function distributorAddress() external view returns (address) {
        return address(distributor);
    }

    function tokenAddress() external view returns (address) {
        return address(token);
    }

    function accountAt(uint256 i) external view returns (address) {
        return accounts[i];
    }

    function _honestTree(uint64 epoch) internal view returns (bytes32 root, bytes32[] memory leaves, uint256 total) {
        uint256[4] memory amounts;
        for (uint256 i = 0; i < 4; ++i) amounts[i] = (i + 1) * uint256(epoch) * 1 ether;
        return _tree(accounts, amounts);
    }

    /// @dev Validators (of the first three) holding stake at `snapshot`.
    function _stakedAt(uint256 snapshot) internal view returns (uint256[] memory out) {
        uint256 n;
        for (uint256 i = 0; i < 3; ++i) if (registry.stakeAt(validators[i], snapshot) != 0) ++n;
        out = new uint256[](n);
        n = 0;
        for (uint256 i = 0; i < 3; ++i) if (registry.stakeAt(validators[i], snapshot) != 0) out[n++] = i;
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + _bound(dt, 1, 2 * WINDOW));
        vm.roll(block.number + 1);
    }

    function fund(uint256 amount) external {
        _fund(_bound(amount, 1, 50 ether));
    }

    function drawEmission(uint256 dt) external {
        vm.warp(block.timestamp + _bound(dt, 1, 1 days));
        distributor.drawEmission();
    }

    function submitHonest() external {
        vm.roll(block.number + 1);
        uint64 epoch = nextEpoch;
        (bytes32 root,, uint256 total) = _honestTree(epoch);
        if (total > distributor.totalFunded()) _fund(total - distributor.totalFunded());
        uint256 snapshot = block.number - 1;
        bytes[] memory sigs = _signatures(_stakedAt(snapshot), epoch, root, total);
        distributor.submitRoot(epoch, root, total, snapshot, sigs);
        honestRootOf[epoch] = root;
        quorumRoot[root] = true;
        for (uint256 i = 0; i < 4; ++i) {
            uint256 amount = (i + 1) * uint256(epoch) * 1 ether;
            if (amount > maxCumulative[accounts[i]]) maxCumulative[accounts[i]] = amount;
        }
        ++nextEpoch;
        ++submissions;
    }

    /// A single validator (1/3 of the stake) signs a root paying everything to the attacker.
    function submitMinority(uint256 signerSeed) external {
        vm.roll(block.number + 1);
        uint64 epoch = nextEpoch;
        bytes32 root = _leaf(ATTACKER, distributor.totalFunded());
        minorityRoot[root] = true;
        uint256[] memory staked = _stakedAt(block.number - 1);
        if (staked.length < 2) return; // one validator left would hold all the stake
        uint256[] memory one = _indexes(staked[signerSeed % staked.length]);
        bytes[] memory sigs = _signatures(one, epoch, root, distributor.totalFunded());
        try distributor.submitRoot(epoch, root, distributor.totalFunded(), block.number - 1, sigs) {
            ++minorityAccepted;
        } catch {}
    }

    function veto() external {
        vm.prank(guardian);
        distributor.veto(distributor.lastEpoch());
    }

    /// A validator that signed the pending root also signs a conflicting one; anyone challenges.
    function challenge(uint256 signerSeed) external {
        uint64 epoch = distributor.lastEpoch();
        IRewardDistributor.EpochRoot memory pending = distributor.epochRoot(epoch);
        uint256[] memory staked = _stakedAt(pending.snapshotBlock);
        if (staked.length == 0) return;
        uint256 i = staked[signerSeed % staked.length];
        bytes memory overPending = _signRoot(i, epoch, pending.root, pending.cumulativeTotal);
        bytes32 conflicting = keccak256(abi.encode("conflict", epoch));
        bytes memory overConflicting = _signRoot(i, epoch, conflicting, 1);
        distributor.challenge(epoch, validators[i], conflicting, 1, overPending, overConflicting);
        // The slashed validator re-joins so that quorums stay reachable.
        if (registry.stakeOf(validators[i]) == 0) _stake(i, 1_000 ether);
    }

    function claim(uint256 accountSeed) external {
        uint64 epoch = distributor.claimableEpoch();
        if (epoch == 0) return;
        (, bytes32[] memory leaves,) = _honestTree(epoch);
        uint256 index = accountSeed % ACCOUNTS;
        uint256 amount = (index + 1) * uint256(epoch) * 1 ether;
        uint256 paid = distributor.claim(accounts[index], amount, _proof(leaves, index));
        ghostPaid += paid;
        ++claims;
    }
}

/// Money invariants of the reward pool.
contract DistributorInvariantsTest is InvariantBase {
    DistributorHandler internal handler;
    IRewardDistributor internal distributor;

    function setUp() public {
        handler = new DistributorHandler();
        distributor = IRewardDistributor(handler.distributorAddress());
        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = DistributorHandler.warp.selector;
        selectors[1] = DistributorHandler.fund.selector;
        selectors[2] = DistributorHandler.drawEmission.selector;
        selectors[3] = DistributorHandler.submitHonest.selector;
        selectors[4] = DistributorHandler.submitMinority.selector;
        selectors[5] = DistributorHandler.veto.selector;
        selectors[6] = DistributorHandler.challenge.selector;
        selectors[7] = DistributorHandler.claim.selector;
        _target(address(handler), selectors);
    }

    function invariant_totalClaimedNeverExceedsTotalFunded() public view {
        vm.assertLe(handler.ghostPaid(), distributor.totalFunded(), "paid <= funded");
        vm.assertEq(distributor.totalClaimed(), handler.ghostPaid(), "totalClaimed == sum of payouts");
        vm.assertLe(distributor.totalClaimed(), distributor.totalFunded(), "view agrees");
    }

    function invariant_noAccountClaimsAboveItsCumulativeAmount() public view {
        for (uint256 i = 0; i < handler.ACCOUNTS(); ++i) {
            address account = handler.accountAt(i);
            uint256 claimedSoFar = distributor.claimed(account);
            vm.assertLe(claimedSoFar, handler.maxCumulative(account), "claimed <= cumulative");
            vm.assertEq(IBalance(handler.tokenAddress()).balanceOf(account), claimedSoFar, "paid == claimed");
        }
        vm.assertEq(IBalance(handler.tokenAddress()).balanceOf(handler.ATTACKER()), 0, "attacker never paid");
    }

    function invariant_rootWithoutQuorumIsNeverClaimable() public view {
        vm.assertEq(handler.minorityAccepted(), 0, "minority root accepted");
        bytes32 root = distributor.claimableRoot();
        vm.assertFalse(handler.minorityRoot(root), "minority root claimable");
        if (root != bytes32(0)) vm.assertTrue(handler.quorumRoot(root), "claimable root had quorum");
        uint64 epoch = distributor.claimableEpoch();
        if (epoch != 0) {
            vm.assertEq(
                uint256(distributor.rootStatus(epoch)), uint256(IRewardDistributor.RootStatus.Claimable), "status"
            );
        }
    }
}

interface IBalance {
    function balanceOf(address account) external view returns (uint256);
}
