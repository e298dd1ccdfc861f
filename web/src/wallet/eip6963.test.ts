import { describe, expect, it } from "vitest";
import { MAX_WALLETS, chooseWallet, createWalletStore, discoverWallets, isWalletDetail } from "./eip6963";
import type { Eip1193Provider, WalletDetail } from "./types";

const provider = (): Eip1193Provider => ({ request: async () => null });
const detail = (uuid: string, name = `Wallet ${uuid}`, p = provider()): WalletDetail => ({
  info: { uuid, name, icon: "data:image/svg+xml,<svg/>", rdns: `com.example.${uuid}` },
  provider: p,
});

describe("createWalletStore", () => {
  it("keeps wallets in announcement order and notifies", () => {
    const store = createWalletStore();
    let notified = 0;
    store.subscribe(() => (notified += 1));
    store.add(detail("a"));
    store.add(detail("b"));
    expect(store.list().map((wallet) => wallet.info.uuid)).toEqual(["a", "b"]);
    expect(notified).toBe(2);
  });

  it("ignores a repeated announcement and keeps the snapshot stable", () => {
    const store = createWalletStore();
    const first = detail("a");
    store.add(first);
    const snapshot = store.list();
    store.add(first);
    expect(store.list()).toBe(snapshot);
  });

  it("replaces a wallet that re-announces with a new provider, in place", () => {
    const store = createWalletStore();
    store.add(detail("a"));
    store.add(detail("b"));
    const fresh = detail("a", "Wallet A again");
    store.add(fresh);
    expect(store.list().map((wallet) => wallet.info.name)).toEqual(["Wallet A again", "Wallet b"]);
  });

  it("stops at MAX_WALLETS", () => {
    const store = createWalletStore();
    for (let index = 0; index < MAX_WALLETS + 5; index += 1) store.add(detail(String(index)));
    expect(store.list()).toHaveLength(MAX_WALLETS);
  });

  it("stops notifying after unsubscribe", () => {
    const store = createWalletStore();
    let notified = 0;
    const unsubscribe = store.subscribe(() => (notified += 1));
    unsubscribe();
    store.add(detail("a"));
    expect(notified).toBe(0);
  });
});

describe("isWalletDetail", () => {
  it("accepts a well-formed announcement", () => {
    expect(isWalletDetail(detail("a"))).toBe(true);
  });

  it("rejects malformed ones", () => {
    const good = detail("a");
    expect(isWalletDetail(null)).toBe(false);
    expect(isWalletDetail({ info: good.info })).toBe(false);
    expect(isWalletDetail({ info: good.info, provider: {} })).toBe(false);
    expect(isWalletDetail({ info: { ...good.info, name: " " }, provider: good.provider })).toBe(false);
    expect(isWalletDetail({ info: { ...good.info, uuid: 1 }, provider: good.provider })).toBe(false);
  });
});

describe("discoverWallets", () => {
  it("requests announcements and stores valid ones only", () => {
    const target = new EventTarget();
    const store = createWalletStore();
    target.addEventListener("eip6963:requestProvider", () => {
      target.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: detail("a") }));
      target.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: { bogus: true } }));
    });
    const stop = discoverWallets(target as unknown as Window, store);
    expect(store.list().map((wallet) => wallet.info.uuid)).toEqual(["a"]);
    stop();
    target.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: detail("late") }));
    expect(store.list()).toHaveLength(1);
  });
});

describe("chooseWallet", () => {
  it("asks to pick among several announced wallets", () => {
    const wallets = [detail("a"), detail("b")];
    expect(chooseWallet(wallets, provider())).toEqual({ kind: "pick", wallets });
  });

  it("uses the one announced wallet directly", () => {
    const only = detail("a");
    expect(chooseWallet([only], provider())).toEqual({ kind: "one", wallet: only });
  });

  it("falls back to window.ethereum when nothing announced", () => {
    const injected = provider();
    const choice = chooseWallet([], injected);
    expect(choice.kind === "one" && choice.wallet.provider).toBe(injected);
  });

  it("reports no wallet at all", () => {
    expect(chooseWallet([], undefined)).toEqual({ kind: "none" });
  });
});
