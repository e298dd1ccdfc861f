// The header's wallet area: connect, wrong network, sign in, signed in; and its notices.
import { shortAddress } from "../format";
import { type Notice, useWallet } from "../wallet/WalletContext";

function NoticeView({ notice, onDismiss }: { notice: Notice; onDismiss: () => void }) {
  if (notice.kind === "no-wallet") {
    return (
      <div role="status" className="notice">
        <strong>No wallet found.</strong> Install a browser wallet (an Ethereum extension such as
        MetaMask or Rabby), then reload this page.
      </div>
    );
  }
  const text =
    notice.kind === "signature-rejected"
      ? "Signature rejected. You are not signed in; sign in again when ready."
      : notice.kind === "session-expired"
        ? "Session expired. Sign in again to continue."
        : notice.text;
  return (
    <div role="alert" className="notice notice-error">
      <span>{text}</span>
      <button type="button" className="link" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

/** Connect / switch / sign-in controls, per the state of the wallet and the session. */
export function WalletControls() {
  const state = useWallet();
  const { wallet, account, session, chain, busy } = state;
  const signedIn = session !== null && (account === null || account === session.address);
  const wrongChain = wallet !== null && state.chainStatus === "mismatch" && chain !== null;

  let control;
  if (signedIn) {
    control = (
      <>
        <span className="address" title={session.address}>
          {shortAddress(session.address)}
        </span>
        <button type="button" onClick={state.signOut} disabled={busy}>
          Sign out
        </button>
      </>
    );
  } else if (wallet === null || account === null) {
    control = (
      <button type="button" onClick={state.connect} disabled={busy}>
        Connect wallet
      </button>
    );
  } else if (!wrongChain) {
    control = (
      <button type="button" onClick={state.signIn} disabled={busy}>
        Sign in
      </button>
    );
  }

  return (
    <div className="wallet">
      <div className="wallet-controls">{control}</div>
      {wrongChain ? (
        <div role="alert" className="notice notice-error">
          <span>
            Wrong network: your wallet is on another chain; Shotbank runs on {chain.name}.
          </span>
          <button type="button" onClick={state.switchNetwork} disabled={busy}>
            Switch to {chain.name}
          </button>
        </div>
      ) : null}
      {state.notice !== null ? <NoticeView notice={state.notice} onDismiss={state.dismissNotice} /> : null}
    </div>
  );
}
