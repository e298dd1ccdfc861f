// Wallet connection, chain check and the SIWE session, shared by the header and the pages.
import {
  type ReactNode,
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import { type Address, getAddress, isAddress, toHex } from "viem";
import { api, apiErrorText, onUnauthorized } from "../api/client";
import { type ChainInfo, type ChainStatus, chainInfo, chainStatus, parseChainId, switchChain } from "./chain";
import { chooseWallet, createWalletStore, discoverWallets } from "./eip6963";
import { SIWE_LIFETIME_MS, SIWE_STATEMENT, buildSiweMessage } from "./siwe";
import { type Eip1193Provider, USER_REJECTED, type WalletDetail, errorText, rpcErrorCode } from "./types";

/** A message the header shows; `status` ones are informational, the rest alerts. */
export type Notice =
  | { readonly kind: "no-wallet" }
  | { readonly kind: "signature-rejected" }
  | { readonly kind: "session-expired" }
  | { readonly kind: "error"; readonly text: string };

/** The signed-in session. */
export interface Session {
  readonly address: Address;
  readonly expiresAt: string;
}

/** Everything the UI reads and does about the wallet. */
export interface WalletState {
  readonly wallets: readonly WalletDetail[];
  readonly picking: boolean;
  readonly wallet: WalletDetail | null;
  readonly account: Address | null;
  readonly chain: ChainInfo | null;
  readonly chainStatus: ChainStatus;
  readonly session: Session | null;
  readonly notice: Notice | null;
  readonly busy: boolean;
  connect(): void;
  choose(wallet: WalletDetail): void;
  cancelPicking(): void;
  switchNetwork(): void;
  signIn(): void;
  signOut(): void;
  dismissNotice(): void;
}

const WalletContext = createContext<WalletState | null>(null);
const store = createWalletStore();
/** Set while a session is believed open, so a reload checks it (and only then). */
const SIGNED_IN_KEY = "shotbank.signedIn";

function injectedProvider(): Eip1193Provider | undefined {
  const candidate = (window as { ethereum?: unknown }).ethereum;
  if (typeof candidate !== "object" || candidate === null) return undefined;
  return typeof (candidate as { request?: unknown }).request === "function"
    ? (candidate as Eip1193Provider)
    : undefined;
}

function firstAccount(value: unknown): Address | null {
  if (!Array.isArray(value)) return null;
  const [first] = value as unknown[];
  return typeof first === "string" && isAddress(first, { strict: false }) ? getAddress(first) : null;
}

function readStored(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeStored(key: string, value: string | null): void {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch {
    // Storage disabled: a reload then simply starts signed out.
  }
}

const readFlag = (): boolean => readStored(SIGNED_IN_KEY) === "1";
const writeFlag = (on: boolean): void => writeStored(SIGNED_IN_KEY, on ? "1" : null);

/** Provides {@link WalletState} to the app. */
export function WalletProvider({ children }: { children: ReactNode }) {
  const wallets = useSyncExternalStore(store.subscribe, store.list, store.list);
  const [picking, setPicking] = useState(false);
  const [wallet, setWallet] = useState<WalletDetail | null>(null);
  const [account, setAccount] = useState<Address | null>(null);
  const [walletChainId, setWalletChainId] = useState<number | null>(null);
  const [expectedChainId, setExpectedChainId] = useState<number | null>(null);
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [busy, setBusy] = useState(false);
  const sessionRef = useRef<Session | null>(null);
  sessionRef.current = session;

  useEffect(() => discoverWallets(window, store), []);

  // The chain the backend serves, and a session left open by an earlier visit.
  useEffect(() => {
    let live = true;
    void api.GET("/api/v1/version").then(({ data }) => {
      if (live && data) setExpectedChainId(data.chain_id);
    });
    if (readFlag()) {
      void api.GET("/api/v1/auth/session").then(({ data, response }) => {
        if (!live) return;
        if (data && isAddress(data.address, { strict: false })) {
          setSession({ address: getAddress(data.address), expiresAt: data.expires_at });
        } else {
          writeFlag(false);
          if (response.status === 401) setNotice({ kind: "session-expired" });
        }
      });
    }
    return () => {
      live = false;
    };
  }, []);

  // Any API call answering 401 while signed in: the session ended on the server.
  useEffect(
    () =>
      onUnauthorized(() => {
        if (sessionRef.current === null) return;
        writeFlag(false);
        setSession(null);
        setNotice({ kind: "session-expired" });
      }),
    [],
  );

  // Follow the wallet's account and chain as the user changes them there.
  useEffect(() => {
    const provider = wallet?.provider;
    if (provider?.on === undefined) return undefined;
    const onAccounts = (accounts: unknown): void => setAccount(firstAccount(accounts));
    const onChain = (chainId: unknown): void => setWalletChainId(parseChainId(chainId));
    provider.on("accountsChanged", onAccounts);
    provider.on("chainChanged", onChain);
    return () => {
      provider.removeListener?.("accountsChanged", onAccounts);
      provider.removeListener?.("chainChanged", onChain);
    };
  }, [wallet]);

  const run = useCallback(async (task: () => Promise<void>): Promise<void> => {
    setBusy(true);
    try {
      await task();
    } catch (error) {
      setNotice({ kind: "error", text: errorText(error) });
    } finally {
      setBusy(false);
    }
  }, []);

  const choose = useCallback(
    (detail: WalletDetail): void => {
      setPicking(false);
      setNotice(null);
      void run(async () => {
        try {
          const accounts = await detail.provider.request({ method: "eth_requestAccounts" });
          const chainId = await detail.provider.request({ method: "eth_chainId" });
          setWallet(detail);
          setAccount(firstAccount(accounts));
          setWalletChainId(parseChainId(chainId));
        } catch (error) {
          if (rpcErrorCode(error) === USER_REJECTED) {
            setNotice({ kind: "error", text: "Connection request rejected in the wallet." });
            return;
          }
          throw error;
        }
      });
    },
    [run],
  );

  const connect = useCallback((): void => {
    setNotice(null);
    const choice = chooseWallet(store.list(), injectedProvider());
    if (choice.kind === "none") setNotice({ kind: "no-wallet" });
    else if (choice.kind === "pick") setPicking(true);
    else choose(choice.wallet);
  }, [choose]);

  const chain = useMemo(
    () => (expectedChainId === null ? null : chainInfo(expectedChainId)),
    [expectedChainId],
  );

  const switchNetwork = useCallback((): void => {
    if (wallet === null || chain === null) return;
    setNotice(null);
    void run(async () => {
      try {
        await switchChain(wallet.provider, chain);
        setWalletChainId(parseChainId(await wallet.provider.request({ method: "eth_chainId" })));
      } catch (error) {
        if (rpcErrorCode(error) === USER_REJECTED) {
          setNotice({ kind: "error", text: "Network switch rejected in the wallet." });
          return;
        }
        throw error;
      }
    });
  }, [wallet, chain, run]);

  const signIn = useCallback((): void => {
    if (wallet === null || account === null) return;
    setNotice(null);
    void run(async () => {
      const nonce = await api.GET("/api/v1/auth/nonce");
      if (!nonce.data) throw new Error(apiErrorText(nonce.error, "Could not start signing in."));
      const issuedAt = new Date();
      const message = buildSiweMessage({
        domain: nonce.data.domain,
        address: account,
        uri: nonce.data.uri,
        chainId: nonce.data.chain_id,
        nonce: nonce.data.nonce,
        statement: SIWE_STATEMENT,
        issuedAt,
        expirationTime: new Date(issuedAt.getTime() + SIWE_LIFETIME_MS),
      });
      let signature: unknown;
      try {
        signature = await wallet.provider.request({
          method: "personal_sign",
          params: [toHex(message), account],
        });
      } catch (error) {
        if (rpcErrorCode(error) === USER_REJECTED) {
          setNotice({ kind: "signature-rejected" });
          return;
        }
        throw error;
      }
      if (typeof signature !== "string") throw new Error("The wallet returned no signature.");
      const verified = await api.POST("/api/v1/auth/verify", {
        body: { message, signature, cookie: true },
      });
      if (!verified.data) throw new Error(apiErrorText(verified.error, "Sign-in failed."));
      writeFlag(true);
      setSession({ address: getAddress(verified.data.address), expiresAt: verified.data.expires_at });
    });
  }, [wallet, account, run]);

  const signOut = useCallback((): void => {
    setNotice(null);
    void run(async () => {
      // Revoke on the server first; a session it already forgot is signed out all the same.
      await api.POST("/api/v1/auth/logout");
      writeFlag(false);
      setSession(null);
    });
  }, [run]);

  const value = useMemo<WalletState>(
    () => ({
      wallets,
      picking,
      wallet,
      account,
      chain,
      chainStatus: chainStatus(walletChainId, expectedChainId),
      session,
      notice,
      busy,
      connect,
      choose,
      cancelPicking: () => setPicking(false),
      switchNetwork,
      signIn,
      signOut,
      dismissNotice: () => setNotice(null),
    }),
    [wallets, picking, wallet, account, chain, walletChainId, expectedChainId, session, notice, busy, connect, choose, switchNetwork, signIn, signOut],
  );
  return <WalletContext.Provider value={value}>{children}</WalletContext.Provider>;
}

/** The wallet state; only inside {@link WalletProvider}. */
export function useWallet(): WalletState {
  const state = useContext(WalletContext);
  if (state === null) throw new Error("useWallet outside WalletProvider");
  return state;
}

/** The signed-in address when the connected account is the session's, else `null`. */
export function useSignedInAddress(): Address | null {
  const { session, account } = useWallet();
  if (session === null) return null;
  if (account !== null && account !== session.address) return null;
  return session.address;
}
