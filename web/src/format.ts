// Display helpers: addresses, SHOT amounts, dates, sizes.
import { formatUnits, getAddress, isAddress } from "viem";

/** SHOT has 18 decimals. */
export const SHOT_DECIMALS = 18;

/** `0x1234…abcd` (checksummed), or the input unchanged when it is no address. */
export function shortAddress(address: string): string {
  if (!isAddress(address, { strict: false })) return address;
  const checksummed = getAddress(address);
  return `${checksummed.slice(0, 6)}…${checksummed.slice(-4)}`;
}

/**
 * A wei amount (decimal string or bigint) as SHOT: thousands separators, at most
 * `maxFraction` decimals (rounded down, so nothing shows more than is there), and
 * "< 0.0001 SHOT" for dust.
 */
export function formatShot(wei: string | bigint | null | undefined, maxFraction = 4): string {
  if (wei === null || wei === undefined) return "—";
  let amount: bigint;
  try {
    amount = typeof wei === "bigint" ? wei : BigInt(wei);
  } catch {
    return "—";
  }
  const negative = amount < 0n;
  const absolute = negative ? -amount : amount;
  const [whole = "0", fraction = ""] = formatUnits(absolute, SHOT_DECIMALS).split(".");
  const kept = fraction.slice(0, maxFraction).replace(/0+$/, "");
  if (absolute > 0n && whole === "0" && kept === "") {
    return `< 0.${"0".repeat(Math.max(0, maxFraction - 1))}1 SHOT`;
  }
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${kept ? `.${kept}` : ""} SHOT`;
}

/** A byte count in B/KB/MB/GB (decimal units). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A timestamp from the API as a short local date and time. */
export function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
