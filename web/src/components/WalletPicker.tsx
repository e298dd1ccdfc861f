// The "Choose a wallet" dialog, shown when several wallets announced themselves (EIP-6963).
import { useEffect, useId, useRef } from "react";
import { useWallet } from "../wallet/WalletContext";

/** A modal listing one button per announced wallet. */
export function WalletPicker() {
  const { wallets, picking, choose, cancelPicking } = useWallet();
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();

  useEffect(() => {
    const element = dialog.current;
    if (element === null) return;
    // showModal gives the focus trap, Escape and the inert page behind for free.
    if (picking && !element.open) element.showModal();
    if (!picking && element.open) element.close();
  }, [picking]);

  return (
    <dialog ref={dialog} aria-labelledby={titleId} className="picker" onClose={cancelPicking}>
      <h2 id={titleId}>Choose a wallet</h2>
      <ul className="picker-list">
        {wallets.map((wallet) => (
          <li key={wallet.info.uuid}>
            <button type="button" className="picker-wallet" onClick={() => choose(wallet)}>
              {wallet.info.icon.startsWith("data:image/") ? (
                <img src={wallet.info.icon} alt="" width={24} height={24} />
              ) : null}
              {wallet.info.name}
            </button>
          </li>
        ))}
      </ul>
      <button type="button" className="secondary" onClick={cancelPicking}>
        Cancel
      </button>
    </dialog>
  );
}
