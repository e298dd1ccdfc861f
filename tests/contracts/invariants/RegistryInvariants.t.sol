// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IValidatorRegistry} from "../../../contracts/interfaces/IValidatorRegistry.sol";
import {Fixture} from "../utils/Fixture.sol";
import {InvariantBase} from "../utils/InvariantBase.sol";

/// @notice Drives the registry through random stake / unstake / withdraw / slash sequences.
contract RegistryHandler is Fixture {
    uint256 public constant ACTORS = 5;
    uint256 public calls;
    uint256 public slashes;
    uint256 public ghostSlashed;

    constructor() {
        _deploy();
    }

    function tokenAddress() external view returns (address) {
        return address(token);
    }

    function registryAddress() external view returns (address) {
        return address(registry);
    }

    function validatorAt(uint256 i) external view returns (address) {
        return validators[i];
    }

    function _advance(uint256 seed) internal {
        ++calls;
        vm.roll(block.number + 1 + seed % 3);
        vm.warp(block.timestamp + 1 + seed % 2 days);
    }

    function stake(uint256 actorSeed, uint256 amount) external {
        _advance(amount);
        uint256 i = actorSeed % ACTORS;
        uint256 current = registry.stakeOf(validators[i]);
        amount = current == 0 ? _bound(amount, MIN_STAKE, 1_000_000 ether) : _bound(amount, 1, 1_000_000 ether);
        if (registry.activeValidatorCount() >= 100 && current == 0) return;
        _stake(i, amount);
    }

    function requestUnstake(uint256 actorSeed, uint256 amount, bool all) external {
        _advance(amount);
        uint256 i = actorSeed % ACTORS;
        uint256 current = registry.stakeOf(validators[i]);
        if (current == 0) return;
        if (all || current < 2 * MIN_STAKE) {
            amount = current;
        } else {
            amount = _bound(amount, 1, current - MIN_STAKE);
        }
        vm.prank(validators[i]);
        registry.requestUnstake(amount);
    }

    function withdraw(uint256 actorSeed) external {
        _advance(actorSeed);
        uint256 i = actorSeed % ACTORS;
        (uint256 amount, uint256 releaseTime) = registry.unbondingOf(validators[i]);
        if (amount == 0) return;
        if (block.timestamp < releaseTime) vm.warp(releaseTime);
        vm.prank(validators[i]);
        registry.withdraw();
    }

    function slash(uint256 actorSeed, uint64 epoch) external {
        _advance(epoch);
        uint256 i = actorSeed % ACTORS;
        address v = validators[i];
        if (registry.isSlashed(v, epoch) || registry.bondedStakeOf(v) == 0) return;
        IValidatorRegistry.SignedEpochRoot memory a = _signed(i, keccak256(abi.encode(epoch, "a")), 1, epoch);
        IValidatorRegistry.SignedEpochRoot memory b = _signed(i, keccak256(abi.encode(epoch, "b")), 1, epoch);
        ghostSlashed += registry.slash(epoch, v, a, b);
        ++slashes;
    }
}

/// Sum of stakes == tokens held by the registry, and the totals agree with the per-validator values.
contract RegistryInvariantsTest is InvariantBase {
    RegistryHandler internal handler;
    IValidatorRegistry internal registry;

    function setUp() public {
        handler = new RegistryHandler();
        registry = IValidatorRegistry(handler.registryAddress());
        bytes4[] memory selectors = new bytes4[](4);
        selectors[0] = RegistryHandler.stake.selector;
        selectors[1] = RegistryHandler.requestUnstake.selector;
        selectors[2] = RegistryHandler.withdraw.selector;
        selectors[3] = RegistryHandler.slash.selector;
        _target(address(handler), selectors);
    }

    function invariant_sumOfStakesEqualsRegistryBalance() public view {
        uint256 active;
        uint256 bonded;
        uint256 members;
        for (uint256 i = 0; i < handler.ACTORS(); ++i) {
            address v = handler.validatorAt(i);
            active += registry.stakeOf(v);
            bonded += registry.bondedStakeOf(v);
            if (registry.isActiveValidator(v)) ++members;
            vm.assertEq(registry.isActiveValidator(v), registry.stakeOf(v) != 0, "active iff staked");
        }
        uint256 balance = IERC20Like(handler.tokenAddress()).balanceOf(address(registry));
        vm.assertEq(bonded, balance, "sum of bonded stake == registry balance");
        vm.assertEq(registry.totalBonded(), balance, "totalBonded == registry balance");
        vm.assertEq(registry.totalStake(), active, "totalStake == sum of active stake");
        vm.assertEq(registry.activeValidatorCount(), members, "active set size");
    }

    function invariant_slashedStakeReachedThePool() public view {
        address pool = registry.rewardDistributor();
        vm.assertEq(IERC20Like(handler.tokenAddress()).balanceOf(pool), handler.ghostSlashed(), "slashed -> pool");
    }
}

interface IERC20Like {
    function balanceOf(address account) external view returns (uint256);
}
