import { recoverMessageAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { SIWE_STATEMENT, buildSiweMessage } from "./siwe";

// Anvil's first dev key: a well-known test key, never used for value.
const account = privateKeyToAccount("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
const issuedAt = new Date("2026-01-02T03:04:05.678Z");
const fields = {
  domain: "127.0.0.1:8000",
  address: account.address.toLowerCase(),
  uri: "http://127.0.0.1:8000",
  chainId: 31337,
  nonce: "abcDEF0123456789xyzXYZ",
  statement: SIWE_STATEMENT,
  issuedAt,
  expirationTime: new Date("2026-01-02T03:14:05.678Z"),
};

describe("buildSiweMessage", () => {
  it("writes the EIP-4361 layout with a checksummed address", () => {
    expect(buildSiweMessage(fields)).toBe(
      [
        "127.0.0.1:8000 wants you to sign in with your Ethereum account:",
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "",
        "Sign in to Shotbank.",
        "",
        "URI: http://127.0.0.1:8000",
        "Version: 1",
        "Chain ID: 31337",
        "Nonce: abcDEF0123456789xyzXYZ",
        "Issued At: 2026-01-02T03:04:05.678Z",
        "Expiration Time: 2026-01-02T03:14:05.678Z",
      ].join("\n"),
    );
  });

  it("signs to a message whose signer is recovered as the address", async () => {
    const message = buildSiweMessage(fields);
    const signature = await account.signMessage({ message });
    expect(await recoverMessageAddress({ message, signature })).toBe(account.address);
  });

  it("refuses a statement that would break the layout", () => {
    expect(() => buildSiweMessage({ ...fields, statement: "one\nURI: http://evil" })).toThrow(/one line/);
  });

  it("refuses a message that expires before it is issued", () => {
    expect(() => buildSiweMessage({ ...fields, expirationTime: issuedAt })).toThrow(/expire/);
  });

  it("refuses something that is not an address", () => {
    expect(() => buildSiweMessage({ ...fields, address: "0x1234" })).toThrow();
  });
});
