// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IDatasetMarket} from "./interfaces/IDatasetMarket.sol";
import {IRewardDistributor} from "./interfaces/IRewardDistributor.sol";

/// @title DatasetMarket
/// @notice Sells licences for dataset versions in SHOT and splits each sale between the contributor
/// pool (the RewardDistributor), the validators' pool and the treasury.
contract DatasetMarket is IDatasetMarket, AccessControl {
    using SafeERC20 for IERC20;

    /// @inheritdoc IDatasetMarket
    bytes32 public constant LISTER_ROLE = keccak256("LISTER_ROLE");
    /// @inheritdoc IDatasetMarket
    uint256 public constant BPS_DENOMINATOR = 10_000;
    /// @inheritdoc IDatasetMarket
    uint256 public constant MIN_CONTRIBUTOR_BPS = 5_000;
    /// @inheritdoc IDatasetMarket
    uint256 public constant MAX_TREASURY_BPS = 2_000;
    /// @inheritdoc IDatasetMarket
    uint256 public constant MAX_TERMS_URI_LENGTH = 512;

    struct Split {
        uint16 contributorBps;
        uint16 validatorBps;
        uint16 treasuryBps;
    }

    IERC20 private immutable _token;
    IRewardDistributor private immutable _rewardDistributor;

    Split private _split;
    address private _treasury;
    address private _validatorPool;
    mapping(bytes32 versionId => DatasetVersion) private _versions;
    mapping(address buyer => mapping(bytes32 versionId => bool)) private _licences;

    /// @notice Deploys the market.
    /// @param token_ The payment token (SHOT, which supports ERC-2612 permits).
    /// @param rewardDistributor_ The RewardDistributor receiving the contributor share.
    /// @param treasury_ Receiver of the treasury share.
    /// @param validatorPool_ Receiver of the validators' share.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance: split, treasury, pool, role grants).
    /// @param contributorBps Initial contributor share in bps.
    /// @param validatorBps Initial validators' share in bps.
    /// @param treasuryBps Initial treasury share in bps.
    constructor(
        IERC20 token_,
        IRewardDistributor rewardDistributor_,
        address treasury_,
        address validatorPool_,
        address admin,
        uint256 contributorBps,
        uint256 validatorBps,
        uint256 treasuryBps
    ) {
        if (address(token_) == address(0) || address(rewardDistributor_) == address(0) || admin == address(0)) {
            revert DatasetMarketZeroAddress();
        }
        _token = token_;
        _rewardDistributor = rewardDistributor_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setTreasury(treasury_);
        _setValidatorPool(validatorPool_);
        _setRevenueSplit(contributorBps, validatorBps, treasuryBps);
    }

    // ----------------------------------------------------------------------------------------------
    // Listing
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IDatasetMarket
    function listVersion(bytes32 versionId, bytes32 manifestHash, uint256 price, string calldata termsUri)
        external
        onlyRole(LISTER_ROLE)
    {
        if (versionId == bytes32(0) || manifestHash == bytes32(0)) revert DatasetMarketZeroId();
        if (price == 0) revert DatasetMarketZeroPrice();
        uint256 uriLength = bytes(termsUri).length;
        if (uriLength == 0 || uriLength > MAX_TERMS_URI_LENGTH) revert DatasetMarketInvalidTermsUri(uriLength);
        DatasetVersion storage entry = _versions[versionId];
        if (entry.manifestHash != bytes32(0)) revert DatasetMarketVersionExists(versionId);
        entry.manifestHash = manifestHash;
        entry.price = price;
        entry.listed = true;
        entry.termsUri = termsUri;
        emit VersionListed(versionId, manifestHash, price, termsUri, msg.sender);
    }

    /// @inheritdoc IDatasetMarket
    function setVersionPrice(bytes32 versionId, uint256 price) external onlyRole(LISTER_ROLE) {
        if (price == 0) revert DatasetMarketZeroPrice();
        _existing(versionId).price = price;
        emit VersionPriceChanged(versionId, price);
    }

    /// @inheritdoc IDatasetMarket
    function setVersionListed(bytes32 versionId, bool listed) external onlyRole(LISTER_ROLE) {
        _existing(versionId).listed = listed;
        emit VersionListingChanged(versionId, listed);
    }

    // ----------------------------------------------------------------------------------------------
    // Purchases
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IDatasetMarket
    function purchase(bytes32 versionId, uint256 maxPrice) external {
        _purchase(versionId, maxPrice);
    }

    /// @inheritdoc IDatasetMarket
    function purchaseWithPermit(bytes32 versionId, uint256 maxPrice, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        // A permit can be front-run by anyone who saw it; the allowance it set is then already there,
        // so a failed permit is not fatal (the transfer below fails if the allowance is missing).
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), maxPrice, deadline, v, r, s) {} catch {}
        _purchase(versionId, maxPrice);
    }

    // ----------------------------------------------------------------------------------------------
    // Governance
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IDatasetMarket
    function setRevenueSplit(uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setRevenueSplit(contributorBps, validatorBps, treasuryBps);
    }

    /// @inheritdoc IDatasetMarket
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @inheritdoc IDatasetMarket
    function setValidatorPool(address validatorPool_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setValidatorPool(validatorPool_);
    }

    // ----------------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------------

    /// @inheritdoc IDatasetMarket
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IDatasetMarket
    function rewardDistributor() external view returns (address) {
        return address(_rewardDistributor);
    }

    /// @inheritdoc IDatasetMarket
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IDatasetMarket
    function validatorPool() external view returns (address) {
        return _validatorPool;
    }

    /// @inheritdoc IDatasetMarket
    function revenueSplit() external view returns (uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps) {
        Split memory split = _split;
        return (split.contributorBps, split.validatorBps, split.treasuryBps);
    }

    /// @inheritdoc IDatasetMarket
    function version(bytes32 versionId) external view returns (DatasetVersion memory) {
        DatasetVersion memory entry = _versions[versionId];
        if (entry.manifestHash == bytes32(0)) revert DatasetMarketUnknownVersion(versionId);
        return entry;
    }

    /// @inheritdoc IDatasetMarket
    function hasLicence(address buyer, bytes32 versionId) external view returns (bool) {
        return _licences[buyer][versionId];
    }

    /// @inheritdoc IDatasetMarket
    function splitOf(uint256 price)
        public
        view
        returns (uint256 contributorShare, uint256 validatorShare, uint256 treasuryShare)
    {
        Split memory split = _split;
        // mulDiv keeps the products exact for any price; each share rounds down.
        contributorShare = Math.mulDiv(price, split.contributorBps, BPS_DENOMINATOR);
        validatorShare = Math.mulDiv(price, split.validatorBps, BPS_DENOMINATOR);
        // The bps sum to BPS_DENOMINATOR and both shares round down, so they sum to at most `price`.
        unchecked {
            treasuryShare = price - contributorShare - validatorShare;
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------------------

    function _purchase(bytes32 versionId, uint256 maxPrice) private {
        DatasetVersion storage entry = _existing(versionId);
        if (!entry.listed) revert DatasetMarketNotListed(versionId);
        if (_licences[msg.sender][versionId]) revert DatasetMarketAlreadyLicensed(msg.sender, versionId);
        uint256 price = entry.price;
        if (price > maxPrice) revert DatasetMarketPriceAboveMax(price, maxPrice);
        (uint256 contributorShare, uint256 validatorShare, uint256 treasuryShare) = splitOf(price);

        _licences[msg.sender][versionId] = true;
        emit LicencePurchased(msg.sender, versionId, price, contributorShare, validatorShare, treasuryShare);

        _token.safeTransferFrom(msg.sender, address(this), price);
        if (contributorShare != 0) {
            _token.forceApprove(address(_rewardDistributor), contributorShare);
            _rewardDistributor.fund(contributorShare);
        }
        if (validatorShare != 0) _token.safeTransfer(_validatorPool, validatorShare);
        if (treasuryShare != 0) _token.safeTransfer(_treasury, treasuryShare);
    }

    function _existing(bytes32 versionId) private view returns (DatasetVersion storage entry) {
        entry = _versions[versionId];
        if (entry.manifestHash == bytes32(0)) revert DatasetMarketUnknownVersion(versionId);
    }

    function _setRevenueSplit(uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps) private {
        // Bounding each term first keeps the sum from overflowing.
        if (
            contributorBps > BPS_DENOMINATOR || validatorBps > BPS_DENOMINATOR || treasuryBps > MAX_TREASURY_BPS
                || contributorBps + validatorBps + treasuryBps != BPS_DENOMINATOR || contributorBps < MIN_CONTRIBUTOR_BPS
        ) {
            revert DatasetMarketInvalidSplit(contributorBps, validatorBps, treasuryBps);
        }
        // Each value is at most BPS_DENOMINATOR (their sum is), so the casts are lossless.
        _split = Split(uint16(contributorBps), uint16(validatorBps), uint16(treasuryBps));
        emit RevenueSplitChanged(contributorBps, validatorBps, treasuryBps);
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert DatasetMarketZeroAddress();
        _treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    function _setValidatorPool(address validatorPool_) private {
        if (validatorPool_ == address(0)) revert DatasetMarketZeroAddress();
        _validatorPool = validatorPool_;
        emit ValidatorPoolChanged(validatorPool_);
    }
}
