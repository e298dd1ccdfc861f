// ERC-2612 permits: the EIP-712 typed data a wallet signs with eth_signTypedData_v4.
import { type Address, type Hex, getAddress, isHex } from "viem";

/** The token's EIP-712 domain, as read from chain (never assumed). */
export interface PermitDomain {
  readonly name: string;
  readonly version: string;
  readonly chainId: number;
  readonly verifyingContract: Address;
}

/** What one permit grants. */
export interface PermitFields {
  readonly owner: Address;
  readonly spender: Address;
  readonly value: bigint;
  readonly nonce: bigint;
  readonly deadline: bigint;
}

/** ERC-2612's `Permit` struct. */
export const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

/** How long a permit stays valid: long enough for a slow wallet, short enough to be harmless. */
export const PERMIT_LIFETIME_S = 20n * 60n;

/** The typed data for viem's `signTypedData` (addresses checksummed, amounts as bigint). */
export function buildPermitTypedData(domain: PermitDomain, fields: PermitFields) {
  if (domain.name === "") throw new Error("The token's EIP-712 domain has no name.");
  if (!Number.isSafeInteger(domain.chainId) || domain.chainId <= 0) throw new Error("Invalid chain id.");
  if (fields.value <= 0n) throw new Error("A permit must allow a positive amount.");
  if (fields.nonce < 0n || fields.deadline <= 0n) throw new Error("Invalid permit nonce or deadline.");
  return {
    domain: {
      name: domain.name,
      version: domain.version,
      chainId: domain.chainId,
      verifyingContract: getAddress(domain.verifyingContract),
    },
    types: PERMIT_TYPES,
    primaryType: "Permit" as const,
    message: {
      owner: getAddress(fields.owner),
      spender: getAddress(fields.spender),
      value: fields.value,
      nonce: fields.nonce,
      deadline: fields.deadline,
    },
  };
}

/** A permit deadline `PERMIT_LIFETIME_S` after the later of the chain's and the local clock. */
export function permitDeadline(chainTimestamp: bigint, nowMs: number): bigint {
  const local = BigInt(Math.floor(nowMs / 1000));
  return (chainTimestamp > local ? chainTimestamp : local) + PERMIT_LIFETIME_S;
}

/** A 65-byte signature as the `v, r, s` the contract takes (v 27/28, also from 0/1 wallets). */
export function splitSignature(signature: Hex): { v: number; r: Hex; s: Hex } {
  if (!isHex(signature) || signature.length !== 132) throw new Error("The wallet returned a malformed signature.");
  const r = `0x${signature.slice(2, 66)}` as Hex;
  const s = `0x${signature.slice(66, 130)}` as Hex;
  let v = Number.parseInt(signature.slice(130, 132), 16);
  if (v < 27) v += 27;
  if (v !== 27 && v !== 28) throw new Error("The wallet returned a signature with an invalid v.");
  return { v, r, s };
}
