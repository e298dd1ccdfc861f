// Sign-In with Ethereum (EIP-4361): the message the wallet signs and the backend verifies.
import { getAddress } from "viem";

/** How long a signed message stays valid; the backend's nonce outlives it. */
export const SIWE_LIFETIME_MS = 10 * 60 * 1000;

/** The fields of one sign-in message; domain, URI, chain id and nonce come from the backend. */
export interface SiweFields {
  readonly domain: string;
  readonly address: string;
  readonly uri: string;
  readonly chainId: number;
  readonly nonce: string;
  readonly statement: string;
  readonly issuedAt: Date;
  readonly expirationTime: Date;
}

/** The statement shown in the wallet. */
export const SIWE_STATEMENT = "Sign in to Shotbank.";

/** The EIP-4361 text (with the address in EIP-55 checksum form, as the standard requires). */
export function buildSiweMessage(fields: SiweFields): string {
  if (/[\n\r]/.test(fields.statement)) throw new Error("The statement must be one line.");
  if (fields.expirationTime <= fields.issuedAt) throw new Error("The message must expire after it is issued.");
  return [
    `${fields.domain} wants you to sign in with your Ethereum account:`,
    getAddress(fields.address),
    "",
    fields.statement,
    "",
    `URI: ${fields.uri}`,
    "Version: 1",
    `Chain ID: ${fields.chainId}`,
    `Nonce: ${fields.nonce}`,
    `Issued At: ${fields.issuedAt.toISOString()}`,
    `Expiration Time: ${fields.expirationTime.toISOString()}`,
  ].join("\n");
}
