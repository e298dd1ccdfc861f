import { describe, expect, it } from "vitest";
import { formatBytes, formatShot, shortAddress } from "./format";

describe("shortAddress", () => {
  it("keeps the checksummed head and tail", () => {
    expect(shortAddress("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")).toBe("0xf39F…2266");
  });

  it("leaves non-addresses alone", () => {
    expect(shortAddress("not an address")).toBe("not an address");
  });
});

describe("formatShot", () => {
  it("shows whole SHOT with thousands separators", () => {
    expect(formatShot("1234000000000000000000")).toBe("1,234 SHOT");
  });

  it("keeps at most four decimals, rounding down", () => {
    expect(formatShot("1999999999999999999")).toBe("1.9999 SHOT");
    expect(formatShot(1_500_000_000_000_000_000n)).toBe("1.5 SHOT");
  });

  it("says zero plainly and marks dust", () => {
    expect(formatShot("0")).toBe("0 SHOT");
    expect(formatShot("1")).toBe("< 0.0001 SHOT");
  });

  it("shows a dash for missing or malformed amounts", () => {
    expect(formatShot(null)).toBe("—");
    expect(formatShot("12abc")).toBe("—");
  });

  it("handles amounts beyond a double's precision exactly", () => {
    expect(formatShot("123456789012345678901234567890")).toBe("123,456,789,012.3456 SHOT");
  });
});

describe("formatBytes", () => {
  it("uses decimal units", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1_500_000)).toBe("1.5 MB");
    expect(formatBytes(null)).toBe("—");
  });
});
