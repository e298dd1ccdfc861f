// The Shotbank test wallet, page side: EIP-1193 providers announced through EIP-6963
// (and one of them set as window.ethereum). Every request goes to Python through the
// binding that tests/web/wallet.py exposes; Python signs with a real dev key and sends
// transactions to the dev node. `__WALLET_CONFIG__` is replaced by wallet.py with JSON:
//   {binding, windowEthereum: id | null, wallets: [{id, uuid, name, icon, rdns, announce}]}
(function installTestWallets(config) {
  "use strict";

  class ProviderRpcError extends Error {
    constructor(code, message, data) {
      super(message);
      this.name = "ProviderRpcError";
      this.code = code;
      if (data !== undefined && data !== null) this.data = data;
    }
  }

  function makeProvider(spec) {
    const listeners = new Map();

    function emit(event, value) {
      for (const listener of [...(listeners.get(event) || [])]) {
        try {
          listener(value);
        } catch (error) {
          // A throwing listener must not stop the others nor the request; rethrown
          // asynchronously so that the page's own error handling still sees it.
          setTimeout(() => {
            throw error;
          });
        }
      }
    }

    function on(event, listener) {
      if (!listeners.has(event)) listeners.set(event, []);
      listeners.get(event).push(listener);
      return provider;
    }

    function removeListener(event, listener) {
      const list = listeners.get(event) || [];
      const index = list.indexOf(listener);
      if (index >= 0) list.splice(index, 1);
      return provider;
    }

    function request(args) {
      if (!args || typeof args !== "object" || typeof args.method !== "string") {
        return Promise.reject(new ProviderRpcError(-32600, "Invalid request: no method"));
      }
      const params = args.params === undefined ? [] : args.params;
      // Looked up at call time: the binding is installed by Playwright, not by this script.
      const bridge = window[config.binding];
      return bridge({ wallet: spec.id, method: args.method, params }).then((answer) => {
        for (const event of answer.events || []) emit(event.name, event.data);
        if (answer.error) {
          throw new ProviderRpcError(answer.error.code, answer.error.message, answer.error.data);
        }
        return answer.result;
      });
    }

    const provider = {
      isShotbankTestWallet: true,
      request,
      on,
      addListener: on,
      removeListener,
      off: removeListener,
    };
    emitters.set(spec.id, emit);
    return provider;
  }

  const emitters = new Map();
  const providers = new Map(config.wallets.map((spec) => [spec.id, makeProvider(spec)]));
  // What the user does in the wallet's own UI (switch chain...) reaches the page as events:
  // wallet.py calls this through page.evaluate.
  window[config.binding + "Emit"] = (id, name, data) => emitters.get(id)(name, data);

  const details = config.wallets
    .filter((spec) => spec.announce)
    .map((spec) =>
      Object.freeze({
        info: Object.freeze({ uuid: spec.uuid, name: spec.name, icon: spec.icon, rdns: spec.rdns }),
        provider: providers.get(spec.id),
      }),
    );

  function announce() {
    for (const detail of details) {
      window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
    }
  }

  if (config.windowEthereum !== null) {
    window.ethereum = providers.get(config.windowEthereum);
  }
  // EIP-6963: announce now and again whenever a dapp asks (it usually listens later).
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})(__WALLET_CONFIG__);
