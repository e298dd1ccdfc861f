// Buying a licence: one purchaseWithPermit transaction (ERC-2612 permit signed as typed
// data), or approve + purchase when the wallet does not sign typed data.
import { type Address, type Hex, getAddress } from "viem";
import { api } from "../api/client";
import { datasetMarketAbi, shotTokenAbi } from "./abi";
import type { WalletClients } from "./clients";
import { isUnsupportedMethod } from "./errors";
import { type PermitDomain, buildPermitTypedData, permitDeadline, splitSignature } from "./permit";

/** Where a purchase stands, for the `status` line. */
export type PurchaseStep =
  | { readonly kind: "signature"; readonly what: string }
  | { readonly kind: "sent"; readonly hash: Hex }
  | { readonly kind: "confirmed"; readonly hash: Hex }
  | { readonly kind: "granted"; readonly hash: Hex };

/** What the confirmation shows: the token paid with and the buyer's balance of it. */
export interface Quote {
  readonly token: Address;
  readonly balance: bigint;
}

/** How long the backend may take to index a confirmed purchase. */
const LICENCE_WAIT_MS = 60_000;
const LICENCE_POLL_MS = 500;

/** The market's token and `account`'s balance of it. */
export async function readQuote({ reader }: WalletClients, market: Address, account: Address): Promise<Quote> {
  const token = await reader.readContract({ address: market, abi: datasetMarketAbi, functionName: "token" });
  const balance = await reader.readContract({
    address: token,
    abi: shotTokenAbi,
    functionName: "balanceOf",
    args: [account],
  });
  return { token: getAddress(token), balance };
}

/** The token's EIP-712 domain from chain: ERC-5267 `eip712Domain()`, else `name()` and "1". */
export async function readPermitDomain({ reader }: WalletClients, token: Address): Promise<PermitDomain> {
  try {
    const [, name, version, chainId, verifyingContract] = await reader.readContract({
      address: token,
      abi: shotTokenAbi,
      functionName: "eip712Domain",
    });
    return { name, version, chainId: Number(chainId), verifyingContract: getAddress(verifyingContract) };
  } catch {
    // A token without ERC-5267: OpenZeppelin's ERC20Permit uses version "1".
    const name = await reader.readContract({ address: token, abi: shotTokenAbi, functionName: "name" });
    return { name, version: "1", chainId: await reader.getChainId(), verifyingContract: token };
  }
}

async function confirm(clients: WalletClients, hash: Hex, onStep: (step: PurchaseStep) => void): Promise<void> {
  onStep({ kind: "sent", hash });
  const receipt = await clients.reader.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`The transaction ${hash} failed on chain.`);
}

async function purchaseWithPermit(
  clients: WalletClients,
  account: Address,
  market: Address,
  token: Address,
  versionId: Hex,
  price: bigint,
  onStep: (step: PurchaseStep) => void,
): Promise<Hex | null> {
  const domain = await readPermitDomain(clients, token);
  const nonce = await clients.reader.readContract({
    address: token,
    abi: shotTokenAbi,
    functionName: "nonces",
    args: [account],
  });
  const block = await clients.reader.getBlock();
  const deadline = permitDeadline(block.timestamp, Date.now());
  const typed = buildPermitTypedData(domain, { owner: account, spender: market, value: price, nonce, deadline });
  onStep({ kind: "signature", what: "the permit" });
  let signature: Hex;
  try {
    signature = await clients.writer.signTypedData({ account, ...typed });
  } catch (error) {
    if (isUnsupportedMethod(error)) return null;
    throw error;
  }
  const { v, r, s } = splitSignature(signature);
  onStep({ kind: "signature", what: "the purchase" });
  const hash = await clients.writer.writeContract({
    address: market,
    abi: datasetMarketAbi,
    functionName: "purchaseWithPermit",
    args: [versionId, price, deadline, v, r, s],
    account,
  });
  await confirm(clients, hash, onStep);
  return hash;
}

async function approveAndPurchase(
  clients: WalletClients,
  account: Address,
  market: Address,
  token: Address,
  versionId: Hex,
  price: bigint,
  onStep: (step: PurchaseStep) => void,
): Promise<Hex> {
  onStep({ kind: "signature", what: "the approval" });
  const approval = await clients.writer.writeContract({
    address: token,
    abi: shotTokenAbi,
    functionName: "approve",
    args: [market, price],
    account,
  });
  await confirm(clients, approval, onStep);
  onStep({ kind: "signature", what: "the purchase" });
  const hash = await clients.writer.writeContract({
    address: market,
    abi: datasetMarketAbi,
    functionName: "purchase",
    args: [versionId, price],
    account,
  });
  await confirm(clients, hash, onStep);
  return hash;
}

/** Until `GET /api/v1/licences` lists `versionId` (the backend indexed the purchase). */
export async function waitForLicence(versionId: Hex, timeoutMs = LICENCE_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { data, response } = await api.GET("/api/v1/licences");
    // Signed out meanwhile: the purchase stands, only this page cannot see the licence.
    if (response.status === 401) throw new Error("Purchase confirmed, but your session ended: sign in again to see the licence.");
    if (data?.licences.some((licence) => licence.version_id.toLowerCase() === versionId.toLowerCase())) return;
    if (Date.now() > deadline) throw new Error("The purchase is confirmed but the licence is not indexed yet; check My licences shortly.");
    await new Promise((resolve) => setTimeout(resolve, LICENCE_POLL_MS));
  }
}

/**
 * Buy `versionId` at `price` (also the most paid: a price raised in flight reverts), then
 * wait until the backend grants the licence. Wallet rejections propagate.
 */
export async function buyLicence(options: {
  clients: WalletClients;
  account: Address;
  market: Address;
  token: Address;
  versionId: Hex;
  price: bigint;
  onStep: (step: PurchaseStep) => void;
}): Promise<Hex> {
  const { clients, account, market, token, versionId, price, onStep } = options;
  const hash =
    (await purchaseWithPermit(clients, account, market, token, versionId, price, onStep)) ??
    (await approveAndPurchase(clients, account, market, token, versionId, price, onStep));
  onStep({ kind: "confirmed", hash });
  await waitForLicence(versionId);
  onStep({ kind: "granted", hash });
  return hash;
}
