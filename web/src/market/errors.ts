// Wallet errors as the market screens need them: viem wraps the wallet's EIP-1193 error in
// layers of its own, so the code is looked for along the `cause` chain.
import { rpcErrorCode } from "../wallet/types";

/** The first EIP-1193/JSON-RPC code along `error`'s cause chain (at most 8 deep). */
export function walletErrorCode(error: unknown): number | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth += 1) {
    const code = rpcErrorCode(current);
    if (code !== undefined) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The user said no in the wallet (EIP-1193 4001). */
export const isUserRejection = (error: unknown): boolean => walletErrorCode(error) === 4001;

/** The wallet does not do this method (EIP-1193 4200, JSON-RPC -32601). */
export const isUnsupportedMethod = (error: unknown): boolean => {
  const code = walletErrorCode(error);
  return code === 4200 || code === -32601;
};

/** A short sentence for people: viem's `shortMessage` when it has one. */
export function walletErrorText(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const short = (error as { shortMessage?: unknown }).shortMessage;
    if (typeof short === "string" && short !== "") return short;
    const message = (error as { message?: unknown }).message;
    if (typeof message === "string" && message !== "") return message.split("\n")[0] ?? message;
  }
  return String(error);
}
