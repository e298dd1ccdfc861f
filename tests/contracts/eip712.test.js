// Cross-language checks: typed data read from the SDK's single source of truth
// (sdk/shotbank/chain/eip712_types.json), signed with viem, accepted by the contracts; Merkle trees
// built with @openzeppelin/merkle-tree, claimed on chain.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it, before } from "node:test";
import { network } from "hardhat";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { hashTypedData, parseEther, keccak256, toHex, hexToSignature } from "viem";
import { mnemonicToAccount } from "viem/accounts";

const MNEMONIC = "test test test test test test test test test test test junk";
const TYPED = JSON.parse(
  readFileSync(new URL("../../sdk/shotbank/chain/eip712_types.json", import.meta.url), "utf8"),
).EpochRoot;

describe("EIP-712 and Merkle interoperability", async () => {
  const { viem, networkHelpers } = await network.create();
  const publicClient = await viem.getPublicClient();
  const wallets = await viem.getWalletClients();
  const [deployer] = wallets;
  const validators = wallets.slice(1, 4);
  const keys = validators.map((_, i) => mnemonicToAccount(MNEMONIC, { addressIndex: i + 1 }));
  let token;
  let registry;
  let distributor;
  let market;
  let domain;

  async function signEpochRoot(message) {
    const ordered = [...keys].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
    return Promise.all(
      ordered.map((key) => key.signTypedData({ domain, types: TYPED.types, primaryType: "EpochRoot", message })),
    );
  }

  before(async () => {
    token = await viem.deployContract("ShotToken", [
      deployer.account.address, parseEther("100000000"), parseEther("1"), deployer.account.address,
    ]);
    registry = await viem.deployContract("ValidatorRegistry", [
      token.address, parseEther("1000"), 7n * 86400n, deployer.account.address,
    ]);
    distributor = await viem.deployContract("RewardDistributor", [
      token.address, registry.address, deployer.account.address, deployer.account.address, 3600n, 1000n,
    ]);
    market = await viem.deployContract("DatasetMarket", [
      token.address, distributor.address, wallets[18].account.address, wallets[19].account.address,
      deployer.account.address, 7000n, 2000n, 1000n,
    ]);
    await token.write.setRewardDistributor([distributor.address]);
    await registry.write.setRewardDistributor([distributor.address]);
    for (const v of validators) {
      await token.write.transfer([v.account.address, parseEther("1000")]);
      await token.write.approve([registry.address, parseEther("1000")], { account: v.account });
      await registry.write.stake([parseEther("1000")], { account: v.account });
    }
    await token.write.approve([distributor.address, parseEther("1000000")]);
    await distributor.write.fund([parseEther("1000000")]);
    await networkHelpers.mine(1);
    assert.equal(TYPED.domain.verifyingContract, "ValidatorRegistry");
    domain = {
      name: TYPED.domain.name,
      version: TYPED.domain.version,
      chainId: await publicClient.getChainId(),
      verifyingContract: registry.address,
    };
  });

  it("computes the same EpochRoot digest as viem from the shared type file", async () => {
    const message = { epoch: 7n, root: keccak256(toHex("root")), cumulativeTotal: 123n };
    const expected = hashTypedData({ domain, types: TYPED.types, primaryType: "EpochRoot", message });
    assert.equal(await registry.read.epochRootDigest([message.epoch, message.root, message.cumulativeTotal]), expected);
  });

  it("accepts a root signed with viem and pays a StandardMerkleTree claim", async () => {
    const claimant = wallets[5].account.address;
    const values = [
      [claimant, parseEther("12")],
      [wallets[6].account.address, parseEther("3")],
      [wallets[7].account.address, parseEther("5")],
    ];
    const tree = StandardMerkleTree.of(values, ["address", "uint256"]);
    const total = values.reduce((sum, [, amount]) => sum + amount, 0n);
    const message = { epoch: 1n, root: tree.root, cumulativeTotal: total };
    const signatures = await signEpochRoot(message);
    const snapshot = (await publicClient.getBlockNumber()) - 1n;
    await distributor.write.submitRoot([1n, tree.root, total, snapshot, signatures]);
    assert.equal(await distributor.read.rootStatus([1n]), 1); // Pending
    await networkHelpers.time.increase(3600);
    assert.equal(await distributor.read.rootStatus([1n]), 2); // Claimable
    const proof = tree.getProof(0);
    await distributor.write.claim([claimant, parseEther("12"), proof], { account: wallets[9].account });
    assert.equal(await token.read.balanceOf([claimant]), parseEther("12"));
    assert.equal(await distributor.read.claimed([claimant]), parseEther("12"));
    await viem.assertions.revertWithCustomError(
      distributor.write.claim([claimant, parseEther("12"), proof]),
      distributor,
      "RewardDistributorNothingToClaim",
    );
  });

  it("rejects a signature over a different domain", async () => {
    const message = { epoch: 2n, root: keccak256(toHex("other")), cumulativeTotal: 1n };
    const wrongDomain = { ...domain, verifyingContract: distributor.address };
    const ordered = [...keys].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
    const signatures = await Promise.all(
      ordered.map((key) =>
        key.signTypedData({ domain: wrongDomain, types: TYPED.types, primaryType: "EpochRoot", message }),
      ),
    );
    await networkHelpers.mine(1);
    const snapshot = (await publicClient.getBlockNumber()) - 1n;
    await assert.rejects(distributor.write.submitRoot([2n, message.root, 1n, snapshot, signatures]));
  });

  it("buys a licence with an ERC-2612 permit signed by viem", async () => {
    const lister = wallets[10];
    await market.write.grantRole([await market.read.LISTER_ROLE(), lister.account.address]);
    const versionId = keccak256(toHex("dataset-v1"));
    const price = parseEther("100");
    await market.write.listVersion([versionId, keccak256(toHex("manifest")), price, "ipfs://terms"], {
      account: lister.account,
    });
    const buyer = wallets[11];
    const buyerKey = mnemonicToAccount(MNEMONIC, { addressIndex: 11 });
    await token.write.transfer([buyer.account.address, price]);
    const deadline = BigInt((await publicClient.getBlock()).timestamp) + 3600n;
    const signature = await buyerKey.signTypedData({
      domain: { name: await token.read.name(), version: "1", chainId: domain.chainId, verifyingContract: token.address },
      types: {
        Permit: [
          { name: "owner", type: "address" },
          { name: "spender", type: "address" },
          { name: "value", type: "uint256" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "Permit",
      message: { owner: buyerKey.address, spender: market.address, value: price, nonce: 0n, deadline },
    });
    const { r, s, v } = hexToSignature(signature);
    await viem.assertions.emitWithArgs(
      market.write.purchaseWithPermit([versionId, price, deadline, Number(v), r, s], { account: buyer.account }),
      market,
      "LicencePurchased",
      [buyer.account.address, versionId, price, parseEther("70"), parseEther("20"), parseEther("10")],
    );
    assert.equal(await market.read.hasLicence([buyer.account.address, versionId]), true);
  });
});
