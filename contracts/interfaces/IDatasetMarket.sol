// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title IDatasetMarket
/// @notice Licences for versioned Shotbank datasets, paid in SHOT. Each sale is split in basis
/// points between the contributor pool (funds the RewardDistributor, i.e. future epochs), the
/// validators' pool address and the treasury; the treasury takes the rounding remainder.
interface IDatasetMarket {
    /// @notice A listed dataset version.
    /// @param manifestHash Hash of the version's manifest (per-sample CID, SHA-256, annotation, scores, ...).
    /// @param price Licence price in SHOT wei.
    /// @param listed Whether the version can be bought.
    /// @param termsUri URI of the licence terms.
    struct DatasetVersion {
        bytes32 manifestHash;
        uint256 price;
        bool listed;
        string termsUri;
    }

    /// @notice A required address argument was the zero address.
    error DatasetMarketZeroAddress();
    /// @notice The zero version id or manifest hash was given.
    error DatasetMarketZeroId();
    /// @notice A price of zero was given.
    error DatasetMarketZeroPrice();
    /// @notice The terms URI is empty or longer than `MAX_TERMS_URI_LENGTH` bytes.
    error DatasetMarketInvalidTermsUri(uint256 length);
    /// @notice The version id is already used.
    error DatasetMarketVersionExists(bytes32 versionId);
    /// @notice No version with this id exists.
    error DatasetMarketUnknownVersion(bytes32 versionId);
    /// @notice The version exists but is not for sale.
    error DatasetMarketNotListed(bytes32 versionId);
    /// @notice The buyer already holds a licence for this version.
    error DatasetMarketAlreadyLicensed(address buyer, bytes32 versionId);
    /// @notice The current price is above the buyer's `maxPrice`.
    error DatasetMarketPriceAboveMax(uint256 price, uint256 maxPrice);
    /// @notice The split does not sum to 10,000 bps or breaks a bound.
    error DatasetMarketInvalidSplit(uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps);

    /// @notice A dataset version was listed.
    event VersionListed(
        bytes32 indexed versionId, bytes32 manifestHash, uint256 price, string termsUri, address indexed lister
    );
    /// @notice A version's price changed.
    event VersionPriceChanged(bytes32 indexed versionId, uint256 price);
    /// @notice A version was put on or taken off sale.
    event VersionListingChanged(bytes32 indexed versionId, bool listed);
    /// @notice `buyer` bought a licence for `versionId`.
    event LicencePurchased(
        address indexed buyer,
        bytes32 indexed versionId,
        uint256 price,
        uint256 contributorShare,
        uint256 validatorShare,
        uint256 treasuryShare
    );
    /// @notice The revenue split changed.
    event RevenueSplitChanged(uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps);
    /// @notice The treasury address changed.
    event TreasuryChanged(address indexed treasury);
    /// @notice The validators' pool address changed.
    event ValidatorPoolChanged(address indexed validatorPool);

    /// @notice Role allowed to list versions and change their price and listing.
    function LISTER_ROLE() external view returns (bytes32);

    /// @notice Basis-point denominator (10,000).
    function BPS_DENOMINATOR() external view returns (uint256);

    /// @notice Smallest allowed contributor share, in bps.
    function MIN_CONTRIBUTOR_BPS() external view returns (uint256);

    /// @notice Largest allowed treasury share, in bps.
    function MAX_TREASURY_BPS() external view returns (uint256);

    /// @notice Longest allowed terms URI, in bytes.
    function MAX_TERMS_URI_LENGTH() external view returns (uint256);

    /// @notice The payment token (SHOT).
    function token() external view returns (address);

    /// @notice The RewardDistributor funded with the contributor share.
    function rewardDistributor() external view returns (address);

    /// @notice Receiver of the treasury share.
    function treasury() external view returns (address);

    /// @notice Receiver of the validators' share.
    function validatorPool() external view returns (address);

    /// @notice The current split in bps.
    /// @return contributorBps Contributor pool share.
    /// @return validatorBps Validators' share.
    /// @return treasuryBps Treasury share (nominal; the treasury also takes rounding dust).
    function revenueSplit() external view returns (uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps);

    /// @notice The version `versionId` (reverts when unknown).
    /// @param versionId The dataset version id.
    function version(bytes32 versionId) external view returns (DatasetVersion memory);

    /// @notice Whether `buyer` holds a licence for `versionId`.
    /// @param buyer The buyer.
    /// @param versionId The dataset version id.
    function hasLicence(address buyer, bytes32 versionId) external view returns (bool);

    /// @notice How a sale at `price` is split under the current bps.
    /// @param price Sale price.
    /// @return contributorShare Amount to the RewardDistributor.
    /// @return validatorShare Amount to the validators' pool.
    /// @return treasuryShare Amount to the treasury (the remainder).
    function splitOf(uint256 price)
        external
        view
        returns (uint256 contributorShare, uint256 validatorShare, uint256 treasuryShare);

    /// @notice Lists a new dataset version. Lister role only.
    /// @param versionId Unique non-zero id of the version.
    /// @param manifestHash Non-zero hash of the version's manifest.
    /// @param price Non-zero licence price in SHOT wei.
    /// @param termsUri Licence terms URI (1 to `MAX_TERMS_URI_LENGTH` bytes).
    function listVersion(bytes32 versionId, bytes32 manifestHash, uint256 price, string calldata termsUri) external;

    /// @notice Changes a version's price. Lister role only.
    /// @param versionId The version.
    /// @param price New non-zero price.
    function setVersionPrice(bytes32 versionId, uint256 price) external;

    /// @notice Puts a version on or takes it off sale (licences already sold stay valid). Lister role only.
    /// @param versionId The version.
    /// @param listed Whether it can be bought.
    function setVersionListed(bytes32 versionId, bool listed) external;

    /// @notice Buys a licence for `versionId` for the caller, paying the current price (approve first).
    /// @param versionId The version.
    /// @param maxPrice Most the caller accepts to pay (guards against a price change in flight).
    function purchase(bytes32 versionId, uint256 maxPrice) external;

    /// @notice Like `purchase`, with an ERC-2612 permit of `maxPrice` to this market in the same call.
    /// @dev A permit that fails (e.g. front-run and already used) is ignored; the purchase then needs
    /// an existing allowance. Any allowance above the price stays with the market.
    /// @param versionId The version.
    /// @param maxPrice Most the caller accepts to pay; also the permit's value.
    /// @param deadline Permit deadline.
    /// @param v Permit signature v.
    /// @param r Permit signature r.
    /// @param s Permit signature s.
    function purchaseWithPermit(bytes32 versionId, uint256 maxPrice, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;

    /// @notice Sets the split. Admin only. Must sum to `BPS_DENOMINATOR`, with the contributor share at
    /// least `MIN_CONTRIBUTOR_BPS` and the treasury share at most `MAX_TREASURY_BPS`.
    /// @param contributorBps Contributor pool share.
    /// @param validatorBps Validators' share.
    /// @param treasuryBps Treasury share.
    function setRevenueSplit(uint256 contributorBps, uint256 validatorBps, uint256 treasuryBps) external;

    /// @notice Sets the treasury. Admin only.
    /// @param treasury_ New treasury address.
    function setTreasury(address treasury_) external;

    /// @notice Sets the validators' pool. Admin only.
    /// @param validatorPool_ New validators' pool address.
    function setValidatorPool(address validatorPool_) external;
}
