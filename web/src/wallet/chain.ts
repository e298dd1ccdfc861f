// Which chain the wallet is on versus the one the backend serves, and how to move it there.
import { numberToHex } from "viem";
import { type Eip1193Provider, UNRECOGNIZED_CHAIN, rpcErrorCode } from "./types";

/** What the app needs to name a chain and to add it to a wallet. */
export interface ChainInfo {
  readonly id: number;
  readonly name: string;
  readonly rpcUrls: readonly string[];
  readonly nativeCurrency: { readonly name: string; readonly symbol: string; readonly decimals: number };
  readonly blockExplorerUrls: readonly string[];
}

const ETHER = { name: "Ether", symbol: "ETH", decimals: 18 } as const;

// The chains a deployment may name, written out rather than imported from viem/chains:
// that module's barrel pulls Node-only code into the browser bundle.
const KNOWN: readonly ChainInfo[] = [
  { id: 31337, name: "Anvil", rpcUrls: ["http://127.0.0.1:8545"], nativeCurrency: ETHER, blockExplorerUrls: [] },
  { id: 1, name: "Ethereum", rpcUrls: [], nativeCurrency: ETHER, blockExplorerUrls: ["https://etherscan.io"] },
  { id: 11155111, name: "Sepolia", rpcUrls: [], nativeCurrency: ETHER, blockExplorerUrls: ["https://sepolia.etherscan.io"] },
  { id: 8453, name: "Base", rpcUrls: ["https://mainnet.base.org"], nativeCurrency: ETHER, blockExplorerUrls: ["https://basescan.org"] },
  { id: 84532, name: "Base Sepolia", rpcUrls: ["https://sepolia.base.org"], nativeCurrency: ETHER, blockExplorerUrls: ["https://sepolia.basescan.org"] },
];

/** The chain with this id: a known one by name, else a generic description (no RPC to add). */
export function chainInfo(id: number): ChainInfo {
  return (
    KNOWN.find((chain) => chain.id === id) ?? {
      id,
      name: `chain ${id}`,
      rpcUrls: [],
      nativeCurrency: ETHER,
      blockExplorerUrls: [],
    }
  );
}

/** A chain id as wallets send it (`"0x7a69"`) or as a number; `null` when unreadable. */
export function parseChainId(value: unknown): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value > 0 ? value : null;
  if (typeof value !== "string" || !/^(0x[0-9a-fA-F]{1,14}|[0-9]{1,16})$/.test(value)) return null;
  const id = Number(value);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** Whether the wallet is where the backend is: unknown until both are known. */
export type ChainStatus = "unknown" | "match" | "mismatch";

/** Compare the wallet's chain with the backend's. */
export function chainStatus(walletChainId: number | null, expectedChainId: number | null): ChainStatus {
  if (walletChainId === null || expectedChainId === null) return "unknown";
  return walletChainId === expectedChainId ? "match" : "mismatch";
}

/** `wallet_addEthereumChain`'s parameter for a chain. */
export function addChainParameter(chain: ChainInfo): Record<string, unknown> {
  return {
    chainId: numberToHex(chain.id),
    chainName: chain.name,
    rpcUrls: chain.rpcUrls,
    nativeCurrency: chain.nativeCurrency,
    ...(chain.blockExplorerUrls.length > 0 ? { blockExplorerUrls: chain.blockExplorerUrls } : {}),
  };
}

/**
 * Ask the wallet to switch to `chain`; a wallet that does not know it (4902) is asked to add
 * it, which also switches in the wallets that follow EIP-3085. Rejections propagate.
 */
export async function switchChain(provider: Eip1193Provider, chain: ChainInfo): Promise<void> {
  const chainId = numberToHex(chain.id);
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
  } catch (error) {
    if (rpcErrorCode(error) !== UNRECOGNIZED_CHAIN) throw error;
    if (chain.rpcUrls.length === 0) {
      throw new Error(`Your wallet does not know ${chain.name}; add it in the wallet first.`);
    }
    await provider.request({ method: "wallet_addEthereumChain", params: [addChainParameter(chain)] });
  }
}
