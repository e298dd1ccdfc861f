// EIP-6963 discovery: wallets announce themselves on window; the store keeps one entry per
// wallet (by uuid), in announcement order, with a stable snapshot for useSyncExternalStore.
import type { Eip1193Provider, WalletDetail } from "./types";

/** At most this many wallets are kept (a page cannot flood the picker). */
export const MAX_WALLETS = 32;

/** Announced wallets, observable. */
export interface WalletStore {
  add(detail: WalletDetail): void;
  list(): readonly WalletDetail[];
  subscribe(listener: () => void): () => void;
}

/** Whether an announcement's detail has the shape EIP-6963 requires. */
export function isWalletDetail(value: unknown): value is WalletDetail {
  if (typeof value !== "object" || value === null) return false;
  const { info, provider } = value as { info?: unknown; provider?: unknown };
  if (typeof info !== "object" || info === null) return false;
  const fields = info as Record<string, unknown>;
  const strings = ["uuid", "name", "icon", "rdns"].every((key) => typeof fields[key] === "string");
  return (
    strings &&
    (fields.name as string).trim() !== "" &&
    typeof provider === "object" &&
    provider !== null &&
    typeof (provider as { request?: unknown }).request === "function"
  );
}

/** An empty store. */
export function createWalletStore(): WalletStore {
  let wallets: readonly WalletDetail[] = [];
  const listeners = new Set<() => void>();
  return {
    add(detail) {
      const index = wallets.findIndex((known) => known.info.uuid === detail.info.uuid);
      if (index >= 0) {
        // A wallet re-announces after a reload of its extension: keep its place.
        if (wallets[index]?.provider === detail.provider) return;
        wallets = wallets.map((known, at) => (at === index ? detail : known));
      } else {
        if (wallets.length >= MAX_WALLETS) return;
        wallets = [...wallets, detail];
      }
      listeners.forEach((listener) => listener());
    },
    list: () => wallets,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Listens for announcements on `target` and asks wallets to announce; returns the unsubscribe. */
export function discoverWallets(target: Window, store: WalletStore): () => void {
  const onAnnounce = (event: Event): void => {
    const detail = (event as CustomEvent<unknown>).detail;
    if (isWalletDetail(detail)) store.add(detail);
  };
  target.addEventListener("eip6963:announceProvider", onAnnounce);
  target.dispatchEvent(new Event("eip6963:requestProvider"));
  return () => target.removeEventListener("eip6963:announceProvider", onAnnounce);
}

/** What "Connect wallet" does with the wallets at hand. */
export type WalletChoice =
  | { readonly kind: "none" }
  | { readonly kind: "one"; readonly wallet: WalletDetail }
  | { readonly kind: "pick"; readonly wallets: readonly WalletDetail[] };

/** Name and id given to a bare `window.ethereum` (it announces nothing about itself). */
export const INJECTED_INFO = {
  uuid: "injected",
  name: "Browser wallet",
  icon: "",
  rdns: "injected",
} as const;

/**
 * Several announced wallets: the user picks. One announced wallet, or none but an injected
 * `window.ethereum`: that one. Nothing: no wallet.
 */
export function chooseWallet(
  announced: readonly WalletDetail[],
  injected: Eip1193Provider | undefined,
): WalletChoice {
  if (announced.length > 1) return { kind: "pick", wallets: announced };
  const [only] = announced;
  if (only !== undefined) return { kind: "one", wallet: only };
  if (injected !== undefined) return { kind: "one", wallet: { info: INJECTED_INFO, provider: injected } };
  return { kind: "none" };
}
