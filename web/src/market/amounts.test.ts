import { describe, expect, it } from "vitest";
import { affordability, formatShotExact, parseWei } from "./amounts";

const SHOT = 10n ** 18n;

describe("formatShotExact", () => {
  it("keeps every digit and groups thousands", () => {
    expect(formatShotExact(3n * SHOT)).toBe("3 SHOT");
    expect(formatShotExact(1_234_567n * SHOT + 5n * 10n ** 17n)).toBe("1,234,567.5 SHOT");
    expect(formatShotExact(1n)).toBe("0.000000000000000001 SHOT");
    expect(formatShotExact(0n)).toBe("0 SHOT");
    expect(formatShotExact(-2n * SHOT)).toBe("-2 SHOT");
  });
});

describe("parseWei", () => {
  it("reads the API's decimal strings and nothing else", () => {
    expect(parseWei("3000000000000000000")).toBe(3n * SHOT);
    expect(parseWei("0")).toBe(0n);
    for (const bad of [null, undefined, "", "-1", "1e18", "0x10", "1.5", "9".repeat(79)]) {
      expect(parseWei(bad)).toBeNull();
    }
  });
});

describe("affordability", () => {
  it("says what is left after paying when the balance covers the price", () => {
    expect(affordability(3n * SHOT, 10n * SHOT)).toEqual({ enough: true, text: "Balance after purchase: 7 SHOT" });
    expect(affordability(3n * SHOT, 3n * SHOT)).toEqual({ enough: true, text: "Balance after purchase: 0 SHOT" });
  });

  it("says how much is missing otherwise", () => {
    expect(affordability(3n * SHOT, 5n * 10n ** 17n)).toEqual({ enough: false, text: "Not enough SHOT: 2.5 SHOT short." });
  });
});
