// "Buy licence" for one listed version: a confirmation with price and balance, then the
// wallet's signature(s), the transaction and the licence the backend grants.
import { useState } from "react";
import { type Address, type Hex, getAddress, isAddress, isHex } from "viem";
import { formatShot } from "../format";
import { useSignedInAddress, useWallet } from "../wallet/WalletContext";
import { affordability, formatShotExact } from "./amounts";
import { walletClients } from "./clients";
import { isUserRejection, walletErrorText } from "./errors";
import { type PurchaseStep, type Quote, buyLicence, readQuote } from "./purchase";

type Phase =
  | { readonly kind: "idle" }
  | { readonly kind: "quoting" }
  | { readonly kind: "confirm"; readonly quote: Quote }
  | { readonly kind: "buying"; readonly step: PurchaseStep | null }
  | { readonly kind: "done"; readonly hash: Hex }
  | { readonly kind: "failed"; readonly text: string };

/** The status line of a purchase step. */
export function stepText(step: PurchaseStep | null): string {
  if (step === null) return "Preparing the purchase…";
  switch (step.kind) {
    case "signature":
      return `Waiting for signature of ${step.what} in your wallet…`;
    case "sent":
      return `Transaction sent (${step.hash.slice(0, 10)}…), waiting for confirmation…`;
    case "confirmed":
      return "Confirmed on chain; waiting for the licence to be granted…";
    case "granted":
      return "Licence granted.";
  }
}

/** The buy flow for version `versionId` at `price` (wei) on `market`. */
export function BuyLicence({
  market,
  versionId,
  price,
  chainId,
  onGranted,
}: {
  market: string;
  versionId: string;
  price: bigint;
  chainId: number;
  onGranted?: () => void;
}) {
  const wallet = useWallet();
  const signedIn = useSignedInAddress();
  const [phase, setPhase] = useState<Phase>({ kind: "idle" });

  if (!isAddress(market, { strict: false }) || !isHex(versionId) || versionId.length !== 66) {
    return <p>This listing cannot be bought from the web app (malformed on-chain data).</p>;
  }
  const marketAddress: Address = getAddress(market);
  const version: Hex = versionId;
  if (signedIn === null || wallet.wallet === null) {
    return <p>Connect your wallet and sign in to buy a licence.</p>;
  }
  if (wallet.chainStatus !== "match" || wallet.chain === null || wallet.chain.id !== chainId) {
    return <p>Switch your wallet to the marketplace's network to buy a licence.</p>;
  }
  const provider = wallet.wallet.provider;
  const chain = wallet.chain;
  const account = signedIn;
  const clients = () => walletClients(provider, account, chain);

  const start = (): void => {
    setPhase({ kind: "quoting" });
    readQuote(clients(), marketAddress, account).then(
      (quote) => setPhase({ kind: "confirm", quote }),
      (error: unknown) => setPhase({ kind: "failed", text: `Could not read your balance: ${walletErrorText(error)}` }),
    );
  };

  const buy = (quote: Quote): void => {
    setPhase({ kind: "buying", step: null });
    buyLicence({
      clients: clients(),
      account,
      market: marketAddress,
      token: quote.token,
      versionId: version,
      price,
      onStep: (step) => setPhase({ kind: "buying", step }),
    }).then(
      (hash) => {
        setPhase({ kind: "done", hash });
        onGranted?.();
      },
      (error: unknown) =>
        setPhase({
          kind: "failed",
          text: isUserRejection(error) ? "Signature rejected in the wallet; nothing was paid." : walletErrorText(error),
        }),
    );
  };

  switch (phase.kind) {
    case "idle":
    case "failed":
      return (
        <div className="buy">
          {phase.kind === "failed" ? (
            <p role="alert" className="notice notice-error">
              {phase.text}
            </p>
          ) : null}
          <button type="button" onClick={start}>
            Buy licence
          </button>
        </div>
      );
    case "quoting":
      return <p role="status">Reading your SHOT balance…</p>;
    case "confirm": {
      const check = affordability(price, phase.quote.balance);
      return (
        <section className="buy confirm" aria-labelledby="confirm-purchase">
          <h3 id="confirm-purchase">Confirm purchase</h3>
          <dl className="facts">
            <div>
              <dt>Price</dt>
              <dd title={formatShotExact(price)}>{formatShot(price)}</dd>
            </div>
            <div>
              <dt>Your balance</dt>
              <dd title={formatShotExact(phase.quote.balance)}>{formatShot(phase.quote.balance)}</dd>
            </div>
          </dl>
          <p className={check.enough ? undefined : "notice notice-error"}>{check.text}</p>
          <div className="toolbar">
            <button type="button" disabled={!check.enough} onClick={() => buy(phase.quote)}>
              Confirm purchase
            </button>
            <button type="button" className="secondary" onClick={() => setPhase({ kind: "idle" })}>
              Cancel
            </button>
          </div>
        </section>
      );
    }
    case "buying":
      return (
        <p role="status" className="notice">
          {stepText(phase.step)}
        </p>
      );
    case "done":
      return (
        <p role="status" className="notice">
          Licence granted. Transaction <code className="hash">{phase.hash}</code>. See My licences for the download
          snippet.
        </p>
      );
  }
}
