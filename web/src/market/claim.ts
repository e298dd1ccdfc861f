// Claiming rewards: RewardDistributor.claim(account, cumulativeAmount, proof) with the
// backend's proof, as `shotbank rewards claim` sends it.
import { type Address, type Hex, getAddress, isHex } from "viem";
import { rewardDistributorAbi, shotTokenAbi } from "./abi";
import type { WalletClients } from "./clients";

/** The backend's claim for an address (`GET /api/v1/rewards/{address}`'s `claim`). */
export interface ClaimData {
  readonly distributor: string;
  readonly cumulative_amount: string;
  readonly proof: readonly string[];
}

/** Where a claim stands. */
export type ClaimStep =
  | { readonly kind: "signature" }
  | { readonly kind: "sent"; readonly hash: Hex }
  | { readonly kind: "confirmed"; readonly hash: Hex; readonly balance: bigint };

/** At most this many proof nodes (a tree of 2**64 leaves needs 64). */
const MAX_PROOF = 64;

/** The call's arguments from the API's claim, checked. */
export function claimArguments(account: Address, claim: ClaimData): readonly [Address, bigint, readonly Hex[]] {
  if (!/^[0-9]{1,78}$/.test(claim.cumulative_amount)) throw new Error("The claim's amount is malformed.");
  if (claim.proof.length > MAX_PROOF) throw new Error("The claim's proof is too long.");
  const proof = claim.proof.map((node) => {
    if (!isHex(node) || node.length !== 66) throw new Error("The claim's proof is malformed.");
    return node;
  });
  return [getAddress(account), BigInt(claim.cumulative_amount), proof];
}

/** Send the claim, wait for it, and read the new SHOT balance. */
export async function claimRewards(
  clients: WalletClients,
  account: Address,
  claim: ClaimData,
  onStep: (step: ClaimStep) => void,
): Promise<bigint> {
  const distributor = getAddress(claim.distributor);
  onStep({ kind: "signature" });
  const hash = await clients.writer.writeContract({
    address: distributor,
    abi: rewardDistributorAbi,
    functionName: "claim",
    args: claimArguments(account, claim),
    account,
  });
  onStep({ kind: "sent", hash });
  const receipt = await clients.reader.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`The claim ${hash} failed on chain.`);
  const token = await clients.reader.readContract({ address: distributor, abi: rewardDistributorAbi, functionName: "token" });
  const balance = await clients.reader.readContract({
    address: token,
    abi: shotTokenAbi,
    functionName: "balanceOf",
    args: [account],
  });
  onStep({ kind: "confirmed", hash, balance });
  return balance;
}
