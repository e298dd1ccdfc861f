// SHOT amounts for the purchase and claim screens: exact figures where money moves.
import { formatUnits } from "viem";
import { SHOT_DECIMALS, formatShot } from "../format";

/** Every digit of a wei amount as SHOT ("3 SHOT", "0.000000000000000001 SHOT"), grouped. */
export function formatShotExact(wei: bigint): string {
  const negative = wei < 0n;
  const [whole = "0", fraction] = formatUnits(negative ? -wei : wei, SHOT_DECIMALS).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction === undefined ? "" : `.${fraction}`} SHOT`;
}

/** A wei decimal string from the API as a bigint, or `null` when it is none. */
export function parseWei(value: string | null | undefined): bigint | null {
  if (value === null || value === undefined || !/^[0-9]{1,78}$/.test(value)) return null;
  return BigInt(value);
}

/** What the buyer is told before paying: the price, the balance and whether it covers it. */
export function affordability(price: bigint, balance: bigint): { enough: boolean; text: string } {
  if (balance >= price) return { enough: true, text: `Balance after purchase: ${formatShot(balance - price)}` };
  return { enough: false, text: `Not enough SHOT: ${formatShot(price - balance)} short.` };
}
