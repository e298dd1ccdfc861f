// The small slice of EIP-1193 (provider) and EIP-6963 (discovery) the app relies on.

/** One JSON-RPC request to a wallet. */
export interface RequestArguments {
  readonly method: string;
  readonly params?: readonly unknown[] | object;
}

/** An injected wallet (EIP-1193). */
export interface Eip1193Provider {
  request(args: RequestArguments): Promise<unknown>;
  on?(event: string, listener: (...args: unknown[]) => void): void;
  removeListener?(event: string, listener: (...args: unknown[]) => void): void;
}

/** What a wallet says about itself in an EIP-6963 announcement. */
export interface WalletInfo {
  readonly uuid: string;
  readonly name: string;
  readonly icon: string;
  readonly rdns: string;
}

/** One announced wallet. */
export interface WalletDetail {
  readonly info: WalletInfo;
  readonly provider: Eip1193Provider;
}

/** EIP-1193 error codes the app reacts to. */
export const USER_REJECTED = 4001;
export const UNRECOGNIZED_CHAIN = 4902;

/** The numeric code of a wallet error, also where a wallet nests it (MetaMask mobile). */
export function rpcErrorCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const record = error as { code?: unknown; data?: { originalError?: { code?: unknown } } };
  const nested = record.data?.originalError?.code;
  if (typeof nested === "number") return nested;
  return typeof record.code === "number" ? record.code : undefined;
}

/** A sentence for people from any thrown value. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "object" && error !== null && "message" in error) {
    const message = (error as { message: unknown }).message;
    if (typeof message === "string") return message;
  }
  return String(error);
}
