import { hashTypedData, parseSignature, recoverTypedDataAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { PERMIT_LIFETIME_S, buildPermitTypedData, permitDeadline, splitSignature } from "./permit";

// Anvil's first dev key: a well-known test key, never used for value.
const owner = privateKeyToAccount("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
const domain = {
  name: "Shotbank Token",
  version: "1",
  chainId: 31337,
  verifyingContract: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
} as const;
const fields = {
  owner: owner.address,
  spender: "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
  value: 3n * 10n ** 18n,
  nonce: 0n,
  deadline: 1_800_000_000n,
} as const;

describe("buildPermitTypedData", () => {
  it("uses the token's domain and ERC-2612's Permit struct with checksummed addresses", () => {
    const typed = buildPermitTypedData(domain, fields);
    expect(typed.primaryType).toBe("Permit");
    expect(typed.domain).toEqual({ ...domain, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" });
    expect(typed.types.Permit.map((field) => `${field.type} ${field.name}`)).toEqual([
      "address owner",
      "address spender",
      "uint256 value",
      "uint256 nonce",
      "uint256 deadline",
    ]);
    expect(typed.message.spender).toBe("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
    expect(typed.message.value).toBe(3_000_000_000_000_000_000n);
  });

  it("hashes to the ERC-2612 digest, so the signer is recovered as the owner", async () => {
    const typed = buildPermitTypedData(domain, fields);
    const signature = await owner.signTypedData(typed);
    expect(await recoverTypedDataAddress({ ...typed, signature })).toBe(owner.address);
    // Another nonce or another chain is another permit: a replay elsewhere does not verify.
    expect(hashTypedData(buildPermitTypedData(domain, { ...fields, nonce: 1n }))).not.toBe(hashTypedData(typed));
    expect(hashTypedData(buildPermitTypedData({ ...domain, chainId: 1 }, fields))).not.toBe(hashTypedData(typed));
  });

  it("refuses a zero amount, a nameless domain and a bad chain id", () => {
    expect(() => buildPermitTypedData(domain, { ...fields, value: 0n })).toThrow(/positive/);
    expect(() => buildPermitTypedData({ ...domain, name: "" }, fields)).toThrow(/name/);
    expect(() => buildPermitTypedData({ ...domain, chainId: 0 }, fields)).toThrow(/chain/);
  });
});

describe("permitDeadline", () => {
  it("counts from the later of the chain's clock and the local one", () => {
    expect(permitDeadline(2_000_000_000n, 1_000_000_000_000)).toBe(2_000_000_000n + PERMIT_LIFETIME_S);
    expect(permitDeadline(1n, 1_700_000_000_999)).toBe(1_700_000_000n + PERMIT_LIFETIME_S);
  });
});

describe("splitSignature", () => {
  it("gives the v, r, s viem parses, with v as 27 or 28", async () => {
    const signature = await owner.signTypedData(buildPermitTypedData(domain, fields));
    const parsed = parseSignature(signature);
    const { v, r, s } = splitSignature(signature);
    expect([r, s]).toEqual([parsed.r, parsed.s]);
    expect(v).toBe(Number(parsed.v));
  });

  it("normalises a 0/1 recovery id and refuses malformed signatures", () => {
    const zero = `0x${"11".repeat(32)}${"22".repeat(32)}00` as const;
    expect(splitSignature(zero).v).toBe(27);
    expect(() => splitSignature("0x1234")).toThrow(/malformed/);
    expect(() => splitSignature(`0x${"11".repeat(64)}05`)).toThrow(/invalid v/);
  });
});
