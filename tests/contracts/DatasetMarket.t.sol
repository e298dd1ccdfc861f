// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {DatasetMarket} from "../../contracts/DatasetMarket.sol";
import {IDatasetMarket} from "../../contracts/interfaces/IDatasetMarket.sol";
import {IRewardDistributor} from "../../contracts/interfaces/IRewardDistributor.sol";
import {Fixture} from "./utils/Fixture.sol";

contract DatasetMarketTest is Fixture {

    bytes32 internal constant VERSION = keccak256("camera-moves/v1");
    bytes32 internal constant MANIFEST = keccak256("manifest v1");
    uint256 internal constant PRICE = 250 ether;
    uint256 internal constant BUYER_KEY = 0xB0FFE4;
    address internal buyer;

    function setUp() public {
        _deploy();
        buyer = vm.addr(BUYER_KEY);
        _give(buyer, 10_000 ether);
        vm.prank(lister);
        market.listVersion(VERSION, MANIFEST, PRICE, "ipfs://terms-v1");
    }

    function _adminRevert(address account, bytes32 role) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role)
        );
    }

    // --- constructor ---

    function test_constructor_setsParameters() public view {
        vm.assertEq(market.token(), address(token), "token");
        vm.assertEq(market.rewardDistributor(), address(distributor), "distributor");
        vm.assertEq(market.treasury(), treasury, "treasury");
        vm.assertEq(market.validatorPool(), validatorPool, "pool");
        (uint256 c, uint256 v, uint256 t) = market.revenueSplit();
        vm.assertEq(c, 7_000, "contributor");
        vm.assertEq(v, 2_000, "validators");
        vm.assertEq(t, 1_000, "treasury bps");
        vm.assertEq(market.BPS_DENOMINATOR(), 10_000, "denominator");
        vm.assertEq(market.MIN_CONTRIBUTOR_BPS(), 5_000, "floor");
        vm.assertEq(market.MAX_TREASURY_BPS(), 2_000, "cap");
        vm.assertEq(market.MAX_TERMS_URI_LENGTH(), 512, "uri cap");
        vm.assertTrue(market.hasRole(market.DEFAULT_ADMIN_ROLE(), owner), "admin");
    }

    function test_constructor_reverts() public {
        IERC20 t = token;
        IRewardDistributor d = distributor;
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        new DatasetMarket(IERC20(address(0)), d, treasury, validatorPool, owner, 7_000, 2_000, 1_000);
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        new DatasetMarket(t, IRewardDistributor(address(0)), treasury, validatorPool, owner, 7_000, 2_000, 1_000);
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        new DatasetMarket(t, d, treasury, validatorPool, address(0), 7_000, 2_000, 1_000);
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        new DatasetMarket(t, d, address(0), validatorPool, owner, 7_000, 2_000, 1_000);
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        new DatasetMarket(t, d, treasury, address(0), owner, 7_000, 2_000, 1_000);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidSplit.selector, 7_000, 2_000, 999));
        new DatasetMarket(t, d, treasury, validatorPool, owner, 7_000, 2_000, 999);
    }

    // --- listing ---

    function test_listVersion_storesVersion() public {
        bytes32 id = keccak256("v2");
        vm.expectEmit(address(market));
        emit IDatasetMarket.VersionListed(id, MANIFEST, 1 ether, "ipfs://t", lister);
        vm.prank(lister);
        market.listVersion(id, MANIFEST, 1 ether, "ipfs://t");
        IDatasetMarket.DatasetVersion memory v = market.version(id);
        vm.assertEq(v.manifestHash, MANIFEST, "manifest");
        vm.assertEq(v.price, 1 ether, "price");
        vm.assertTrue(v.listed, "listed");
        vm.assertEq(keccak256(bytes(v.termsUri)), keccak256("ipfs://t"), "terms");
    }

    function test_listVersion_reverts() public {
        _adminRevert(address(this), market.LISTER_ROLE());
        market.listVersion(keccak256("v2"), MANIFEST, 1, "u");
        vm.startPrank(lister);
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroId.selector);
        market.listVersion(bytes32(0), MANIFEST, 1, "u");
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroId.selector);
        market.listVersion(keccak256("v2"), bytes32(0), 1, "u");
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroPrice.selector);
        market.listVersion(keccak256("v2"), MANIFEST, 0, "u");
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidTermsUri.selector, 0));
        market.listVersion(keccak256("v2"), MANIFEST, 1, "");
        string memory long = string(new bytes(513));
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidTermsUri.selector, 513));
        market.listVersion(keccak256("v2"), MANIFEST, 1, long);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketVersionExists.selector, VERSION));
        market.listVersion(VERSION, MANIFEST, 1, "u");
        vm.stopPrank();
    }

    function test_setVersionPrice_and_setVersionListed() public {
        vm.startPrank(lister);
        vm.expectEmit(address(market));
        emit IDatasetMarket.VersionPriceChanged(VERSION, 300 ether);
        market.setVersionPrice(VERSION, 300 ether);
        vm.expectEmit(address(market));
        emit IDatasetMarket.VersionListingChanged(VERSION, false);
        market.setVersionListed(VERSION, false);
        vm.stopPrank();
        IDatasetMarket.DatasetVersion memory v = market.version(VERSION);
        vm.assertEq(v.price, 300 ether, "price");
        vm.assertFalse(v.listed, "delisted");
    }

    function test_setVersionPrice_and_setVersionListed_revert() public {
        bytes32 unknown = keccak256("nope");
        _adminRevert(address(this), market.LISTER_ROLE());
        market.setVersionPrice(VERSION, 1);
        _adminRevert(address(this), market.LISTER_ROLE());
        market.setVersionListed(VERSION, false);
        vm.startPrank(lister);
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroPrice.selector);
        market.setVersionPrice(VERSION, 0);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketUnknownVersion.selector, unknown));
        market.setVersionPrice(unknown, 1);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketUnknownVersion.selector, unknown));
        market.setVersionListed(unknown, true);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketUnknownVersion.selector, unknown));
        market.version(unknown);
    }

    // --- purchases ---

    function test_purchase_splitsRevenueAndGrantsLicence() public {
        vm.startPrank(buyer);
        token.approve(address(market), PRICE);
        vm.expectEmit(address(market));
        emit IDatasetMarket.LicencePurchased(buyer, VERSION, PRICE, 175 ether, 50 ether, 25 ether);
        market.purchase(VERSION, PRICE);
        vm.stopPrank();
        vm.assertTrue(market.hasLicence(buyer, VERSION), "licensed");
        vm.assertFalse(market.hasLicence(address(this), VERSION), "others not");
        vm.assertEq(token.balanceOf(address(distributor)), 175 ether, "contributor pool");
        vm.assertEq(distributor.totalFunded(), 175 ether, "recorded as funding");
        vm.assertEq(token.balanceOf(validatorPool), 50 ether, "validators");
        vm.assertEq(token.balanceOf(treasury), 25 ether, "treasury");
        vm.assertEq(token.balanceOf(address(market)), 0, "market keeps nothing");
        vm.assertEq(token.balanceOf(buyer), 10_000 ether - PRICE, "buyer paid");
    }

    function test_purchase_skipsZeroShares() public {
        vm.prank(owner);
        market.setRevenueSplit(10_000, 0, 0);
        vm.startPrank(buyer);
        token.approve(address(market), PRICE);
        market.purchase(VERSION, PRICE);
        vm.stopPrank();
        vm.assertEq(token.balanceOf(address(distributor)), PRICE, "all to contributors");
        // A price of 1 wei rounds the contributor share to zero under a 50/30/20 split.
        vm.prank(owner);
        market.setRevenueSplit(5_000, 3_000, 2_000);
        bytes32 cheap = keccak256("cheap");
        vm.prank(lister);
        market.listVersion(cheap, MANIFEST, 1, "u");
        vm.startPrank(buyer);
        token.approve(address(market), 1);
        market.purchase(cheap, 1);
        vm.stopPrank();
        vm.assertEq(token.balanceOf(treasury), 1, "dust to treasury");
    }

    function test_purchase_reverts() public {
        bytes32 unknown = keccak256("nope");
        vm.startPrank(buyer);
        token.approve(address(market), 2 * PRICE);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketUnknownVersion.selector, unknown));
        market.purchase(unknown, PRICE);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketPriceAboveMax.selector, PRICE, PRICE - 1));
        market.purchase(VERSION, PRICE - 1);
        market.purchase(VERSION, PRICE);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketAlreadyLicensed.selector, buyer, VERSION));
        market.purchase(VERSION, PRICE);
        vm.stopPrank();
        vm.prank(lister);
        market.setVersionListed(VERSION, false);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketNotListed.selector, VERSION));
        market.purchase(VERSION, PRICE);
    }

    function _permit(uint256 value, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                buyer,
                address(market),
                value,
                token.nonces(buyer),
                deadline
            )
        );
        return vm.sign(BUYER_KEY, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function test_purchaseWithPermit_buysInOneCall() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(PRICE, deadline);
        vm.prank(buyer);
        market.purchaseWithPermit(VERSION, PRICE, deadline, v, r, s);
        vm.assertTrue(market.hasLicence(buyer, VERSION), "licensed");
        vm.assertEq(token.allowance(buyer, address(market)), 0, "allowance used");
    }

    function test_purchaseWithPermit_survivesFrontRunPermit() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(PRICE, deadline);
        token.permit(buyer, address(market), PRICE, deadline, v, r, s); // someone used it first
        vm.prank(buyer);
        market.purchaseWithPermit(VERSION, PRICE, deadline, v, r, s);
        vm.assertTrue(market.hasLicence(buyer, VERSION), "licensed");
    }

    function test_purchaseWithPermit_revertsWithoutAllowance() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(PRICE, deadline);
        vm.warp(deadline + 1); // expired permit, no allowance
        vm.prank(buyer);
        vm.expectRevert();
        market.purchaseWithPermit(VERSION, PRICE, deadline, v, r, s);
    }

    // --- governance ---

    function test_setRevenueSplit_enforcesBounds() public {
        vm.startPrank(owner);
        vm.expectEmit(address(market));
        emit IDatasetMarket.RevenueSplitChanged(5_000, 3_000, 2_000);
        market.setRevenueSplit(5_000, 3_000, 2_000);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidSplit.selector, 4_999, 3_001, 2_000));
        market.setRevenueSplit(4_999, 3_001, 2_000);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidSplit.selector, 5_000, 2_999, 2_001));
        market.setRevenueSplit(5_000, 2_999, 2_001);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidSplit.selector, 7_000, 2_000, 0));
        market.setRevenueSplit(7_000, 2_000, 0);
        uint256 huge = type(uint256).max;
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidSplit.selector, huge, 0, 0));
        market.setRevenueSplit(huge, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IDatasetMarket.DatasetMarketInvalidSplit.selector, 6_000, huge, 0));
        market.setRevenueSplit(6_000, huge, 0);
        vm.stopPrank();
        _adminRevert(address(this), bytes32(0));
        market.setRevenueSplit(5_000, 3_000, 2_000);
    }

    function test_setTreasury_and_setValidatorPool() public {
        vm.startPrank(owner);
        vm.expectEmit(address(market));
        emit IDatasetMarket.TreasuryChanged(address(0x7E));
        market.setTreasury(address(0x7E));
        vm.expectEmit(address(market));
        emit IDatasetMarket.ValidatorPoolChanged(address(0x7F));
        market.setValidatorPool(address(0x7F));
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        market.setTreasury(address(0));
        vm.expectRevert(IDatasetMarket.DatasetMarketZeroAddress.selector);
        market.setValidatorPool(address(0));
        vm.stopPrank();
        vm.assertEq(market.treasury(), address(0x7E), "treasury");
        vm.assertEq(market.validatorPool(), address(0x7F), "pool");
        _adminRevert(address(this), bytes32(0));
        market.setTreasury(address(1));
        _adminRevert(address(this), bytes32(0));
        market.setValidatorPool(address(1));
    }

    // --- fuzz ---

    /// The three shares always sum to the price, each share is its bps rounded down (treasury takes
    /// the dust), and the bounds on the split hold.
    function test_fuzz_splitSumsToPrice(uint256 price, uint256 contributorBps, uint256 validatorBps) public {
        contributorBps = _bound(contributorBps, 5_000, 10_000);
        uint256 rest = 10_000 - contributorBps;
        validatorBps = _bound(validatorBps, rest > 2_000 ? rest - 2_000 : 0, rest);
        uint256 treasuryBps = rest - validatorBps;
        vm.prank(owner);
        market.setRevenueSplit(contributorBps, validatorBps, treasuryBps);
        (uint256 c, uint256 v, uint256 t) = market.splitOf(price);
        vm.assertEq(c, Math.mulDiv(price, contributorBps, 10_000), "contributor share");
        vm.assertEq(v, Math.mulDiv(price, validatorBps, 10_000), "validator share");
        vm.assertEq(c + v + t, price, "sum");
        vm.assertLe(t, Math.mulDiv(price, treasuryBps, 10_000) + 2, "treasury only gains rounding dust");
        vm.assertGe(c, Math.mulDiv(price, 5_000, 10_000), "contributor floor");
    }

    /// A real purchase at any price moves exactly the price out of the buyer's wallet.
    function test_fuzz_purchaseConservesTokens(uint256 price) public {
        price = _bound(price, 1, 10_000 ether);
        vm.prank(lister);
        market.setVersionPrice(VERSION, price);
        uint256 before = token.balanceOf(buyer);
        vm.startPrank(buyer);
        token.approve(address(market), price);
        market.purchase(VERSION, price);
        vm.stopPrank();
        vm.assertEq(before - token.balanceOf(buyer), price, "paid price");
        vm.assertEq(
            token.balanceOf(address(distributor)) + token.balanceOf(validatorPool) + token.balanceOf(treasury),
            price,
            "all of it arrived"
        );
        vm.assertEq(distributor.totalFunded(), token.balanceOf(address(distributor)), "funding recorded");
    }
}
