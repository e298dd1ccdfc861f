import { useState } from "react";
import { type Schemas, api } from "../api/client";
import { useQuery } from "../api/useQuery";
import { LoadError, Loading, Page } from "../components/Page";
import { formatShot } from "../format";
import { parseWei } from "../market/amounts";
import { type ClaimStep, claimRewards } from "../market/claim";
import { walletClients } from "../market/clients";
import { isUserRejection, walletErrorText } from "../market/errors";
import { useSignedInAddress, useWallet } from "../wallet/WalletContext";

type ClaimPhase =
  | { readonly kind: "idle" }
  | { readonly kind: "running"; readonly step: ClaimStep | null }
  | { readonly kind: "failed"; readonly text: string };

function claimStepText(step: ClaimStep | null): string {
  if (step === null || step.kind === "signature") return "Waiting for signature in your wallet…";
  if (step.kind === "sent") return `Transaction sent (${step.hash.slice(0, 10)}…), waiting for confirmation…`;
  return `Confirmed. Your SHOT balance is now ${formatShot(step.balance)}.`;
}

/** The "Claim" button: sends RewardDistributor.claim with the backend's proof. */
function ClaimPanel({
  rewards,
  claimedUpTo,
  onClaimed,
}: {
  rewards: Schemas["RewardsView"];
  claimedUpTo: bigint;
  onClaimed: (text: string, cumulative: bigint) => void;
}) {
  const wallet = useWallet();
  const [phase, setPhase] = useState<ClaimPhase>({ kind: "idle" });
  const claim = rewards.claim ?? null;
  const claimable = parseWei(rewards.claimable) ?? 0n;
  if (phase.kind === "running") {
    // Once confirmed, the page's own line says so (it outlives this panel's reload).
    if (phase.step?.kind === "confirmed") return null;
    return (
      <p role="status" className="notice">
        {claimStepText(phase.step)}
      </p>
    );
  }
  if (claim === null || claimable <= 0n) return null;
  // Claimed here already, not yet indexed by the backend: a second claim would pay nothing.
  if ((parseWei(claim.cumulative_amount) ?? 0n) <= claimedUpTo) return null;
  const account = wallet.account;
  const ready =
    wallet.wallet !== null &&
    account !== null &&
    account.toLowerCase() === rewards.address.toLowerCase() &&
    wallet.chainStatus === "match" &&
    wallet.chain !== null &&
    wallet.chain.id === claim.chain_id;
  const start = (): void => {
    if (!ready || wallet.wallet === null || wallet.chain === null) return;
    const clients = walletClients(wallet.wallet.provider, account, wallet.chain);
    setPhase({ kind: "running", step: null });
    claimRewards(clients, account, claim, (step) => setPhase({ kind: "running", step })).then(
      (balance) =>
        onClaimed(
          `${claimStepText({ kind: "confirmed", hash: "0x", balance })} The totals below update once the claim is indexed.`,
          parseWei(claim.cumulative_amount) ?? 0n,
        ),
      (error: unknown) =>
        setPhase({
          kind: "failed",
          text: isUserRejection(error) ? "Claim rejected in the wallet." : walletErrorText(error),
        }),
    );
  };
  return (
    <div className="toolbar">
      {phase.kind === "failed" ? (
        <p role="alert" className="notice notice-error">
          {phase.text}
        </p>
      ) : null}
      <button type="button" disabled={!ready} onClick={start}>
        Claim
      </button>
      <span>
        {ready
          ? `${formatShot(claimable)} from epoch ${claim.epoch}`
          : "Connect this address's wallet on the right network to claim."}
      </span>
    </div>
  );
}

/** Reward totals of the signed-in (or connected) address. */
export function Rewards() {
  const signedIn = useSignedInAddress();
  const { account } = useWallet();
  const address = signedIn ?? account;
  // Bumped after a claim so the totals are read again (the claimed amount moves).
  const [round, setRound] = useState(0);
  const [claimed, setClaimed] = useState<string | null>(null);
  const [claimedUpTo, setClaimedUpTo] = useState(0n);
  const rewards = useQuery(address === null ? null : `rewards:${address}:${round}`, () =>
    api.GET("/api/v1/rewards/{address}", { params: { path: { address: address ?? "" } } }),
  );
  return (
    <Page title="Rewards" intro="SHOT earned by your accepted clips, per epoch: claimed, claimable and pending.">
      {address === null ? <p>Connect your wallet to see your rewards.</p> : null}
      {claimed !== null ? (
        <p role="status" className="notice">
          {claimed}
        </p>
      ) : null}
      {rewards.state === "loading" ? <Loading what="rewards" /> : null}
      {rewards.state === "error" ? <LoadError text={rewards.text} /> : null}
      {rewards.state === "ready" ? (
        <>
          <dl className="facts totals">
            <div>
              <dt>Earned</dt>
              <dd>{formatShot(rewards.data.earned)}</dd>
            </div>
            <div>
              <dt>Claimed</dt>
              <dd>{formatShot(rewards.data.claimed)}</dd>
            </div>
            <div>
              <dt>Claimable</dt>
              <dd>{formatShot(rewards.data.claimable)}</dd>
            </div>
            <div>
              <dt>Pending</dt>
              <dd>{formatShot(rewards.data.pending)}</dd>
            </div>
          </dl>
          <ClaimPanel
            rewards={rewards.data}
            claimedUpTo={claimedUpTo}
            onClaimed={(text, cumulative) => {
              setClaimed(text);
              setClaimedUpTo(cumulative);
              setRound(round + 1);
            }}
          />
          {rewards.data.epochs.length > 0 ? (
            <table>
              <caption>Earned per epoch</caption>
              <thead>
                <tr>
                  <th scope="col">Epoch</th>
                  <th scope="col">Amount</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {rewards.data.epochs.map((epoch) => (
                  <tr key={epoch.epoch}>
                    <td>{epoch.epoch}</td>
                    <td>{formatShot(epoch.amount)}</td>
                    <td>{epoch.status}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p>No rewards yet.</p>
          )}
        </>
      ) : null}
    </Page>
  );
}
