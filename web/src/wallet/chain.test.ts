import { describe, expect, it } from "vitest";
import { addChainParameter, chainInfo, chainStatus, parseChainId, switchChain } from "./chain";
import type { Eip1193Provider, RequestArguments } from "./types";

/** A wallet that records requests and answers them with the given handlers. */
function fakeWallet(handlers: Record<string, () => unknown>): Eip1193Provider & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async request({ method }: RequestArguments) {
      calls.push(method);
      const handler = handlers[method];
      if (handler === undefined) throw Object.assign(new Error("unsupported"), { code: 4200 });
      return handler();
    },
  };
}

const rpcError = (code: number, nested = false) =>
  nested
    ? Object.assign(new Error("internal"), { code: -32603, data: { originalError: { code } } })
    : Object.assign(new Error(`code ${code}`), { code });

describe("parseChainId", () => {
  it("reads hex and decimal ids", () => {
    expect(parseChainId("0x7a69")).toBe(31337);
    expect(parseChainId("1")).toBe(1);
    expect(parseChainId(8453)).toBe(8453);
  });

  it("rejects what is not a chain id", () => {
    for (const value of ["", "0x", "0xzz", "-1", 0, 1.5, null, undefined, "0x" + "f".repeat(20)]) {
      expect(parseChainId(value)).toBeNull();
    }
  });
});

describe("chainStatus", () => {
  it("is unknown until both chains are known", () => {
    expect(chainStatus(null, 31337)).toBe("unknown");
    expect(chainStatus(31337, null)).toBe("unknown");
  });

  it("matches or mismatches", () => {
    expect(chainStatus(31337, 31337)).toBe("match");
    expect(chainStatus(1, 31337)).toBe("mismatch");
  });
});

describe("chainInfo", () => {
  it("names the dev chain and knows its RPC", () => {
    const chain = chainInfo(31337);
    expect(chain.name).toBe("Anvil");
    expect(chain.rpcUrls).toEqual(["http://127.0.0.1:8545"]);
  });

  it("describes an unknown chain without an RPC", () => {
    expect(chainInfo(424242)).toMatchObject({ name: "chain 424242", rpcUrls: [] });
  });

  it("builds wallet_addEthereumChain's parameter", () => {
    expect(addChainParameter(chainInfo(31337))).toEqual({
      chainId: "0x7a69",
      chainName: "Anvil",
      rpcUrls: ["http://127.0.0.1:8545"],
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    });
  });
});

describe("switchChain", () => {
  it("switches when the wallet knows the chain", async () => {
    const wallet = fakeWallet({ wallet_switchEthereumChain: () => null });
    await switchChain(wallet, chainInfo(31337));
    expect(wallet.calls).toEqual(["wallet_switchEthereumChain"]);
  });

  it.each([false, true])("adds the chain on 4902 (nested: %s)", async (nested) => {
    const wallet = fakeWallet({
      wallet_switchEthereumChain: () => {
        throw rpcError(4902, nested);
      },
      wallet_addEthereumChain: () => null,
    });
    await switchChain(wallet, chainInfo(31337));
    expect(wallet.calls).toEqual(["wallet_switchEthereumChain", "wallet_addEthereumChain"]);
  });

  it("passes a rejection through without adding", async () => {
    const wallet = fakeWallet({
      wallet_switchEthereumChain: () => {
        throw rpcError(4001);
      },
    });
    await expect(switchChain(wallet, chainInfo(31337))).rejects.toMatchObject({ code: 4001 });
    expect(wallet.calls).toEqual(["wallet_switchEthereumChain"]);
  });

  it("cannot add a chain it has no RPC for", async () => {
    const wallet = fakeWallet({
      wallet_switchEthereumChain: () => {
        throw rpcError(4902);
      },
    });
    await expect(switchChain(wallet, chainInfo(424242))).rejects.toThrow(/add it in the wallet/);
  });
});
