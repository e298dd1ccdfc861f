import { api } from "../api/client";
import { useQuery } from "../api/useQuery";
import { LoadError, Loading, Page } from "../components/Page";
import { formatShot } from "../format";
import { useSignedInAddress, useWallet } from "../wallet/WalletContext";

/** Reward totals of the signed-in (or connected) address. */
export function Rewards() {
  const signedIn = useSignedInAddress();
  const { account } = useWallet();
  const address = signedIn ?? account;
  const rewards = useQuery(address === null ? null : `rewards:${address}`, () =>
    api.GET("/api/v1/rewards/{address}", { params: { path: { address: address ?? "" } } }),
  );
  return (
    <Page title="Rewards" intro="SHOT earned by your accepted clips, per epoch: claimed, claimable and pending.">
      {address === null ? <p>Connect your wallet to see your rewards.</p> : null}
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
