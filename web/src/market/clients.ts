// viem clients over the connected wallet's EIP-1193 provider: reads and writes go through
// the same wallet, so they see the chain the wallet is on.
import { type Address, type Chain, createPublicClient, createWalletClient, custom, defineChain } from "viem";
import type { ChainInfo } from "../wallet/chain";
import type { Eip1193Provider } from "../wallet/types";

/** How often receipts are polled (a dev chain mines in well under a second). */
const POLL_MS = 500;

function viemChain(info: ChainInfo): Chain {
  return defineChain({
    id: info.id,
    name: info.name,
    nativeCurrency: info.nativeCurrency,
    rpcUrls: { default: { http: [...info.rpcUrls] } },
  });
}

/** A public and a wallet client bound to `account` on `chain`. */
export function walletClients(provider: Eip1193Provider, account: Address, chain: ChainInfo) {
  const transport = custom(provider as Parameters<typeof custom>[0]);
  const viem = viemChain(chain);
  return {
    reader: createPublicClient({ chain: viem, transport, pollingInterval: POLL_MS }),
    writer: createWalletClient({ account, chain: viem, transport, pollingInterval: POLL_MS }),
  };
}

/** The pair {@link walletClients} returns. */
export type WalletClients = ReturnType<typeof walletClients>;
