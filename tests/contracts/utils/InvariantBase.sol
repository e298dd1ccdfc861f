// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {TestBase} from "./TestBase.sol";

/// @notice The target-selection hooks the invariant runner reads (the same names forge-std's
/// StdInvariant exposes).
abstract contract InvariantBase is TestBase {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targets;
    FuzzSelector[] private _selectors;

    function _target(address target, bytes4[] memory selectors) internal {
        _targets.push(target);
        _selectors.push(FuzzSelector(target, selectors));
    }

    function targetContracts() public view returns (address[] memory) {
        return _targets;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _selectors;
    }
}
