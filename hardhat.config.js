// Hardhat 3 configuration. The compiler comes from the exact-pinned npm `solc`
// package so that builds never try to download a compiler list.
import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";
import hardhatToolboxViem from "@nomicfoundation/hardhat-toolbox-viem";

const require = createRequire(import.meta.url);
const solcPackage = require("solc/package.json");
const soljsonPath = require.resolve("solc/soljson.js");

export default defineConfig({
  plugins: [hardhatToolboxViem],
  solidity: {
    profiles: {
      default: {
        version: solcPackage.version,
        path: soljsonPath,
        settings: {
          optimizer: { enabled: true, runs: 10_000 },
          evmVersion: "cancun",
        },
      },
      production: {
        version: solcPackage.version,
        path: soljsonPath,
        settings: {
          optimizer: { enabled: true, runs: 10_000 },
          evmVersion: "cancun",
        },
      },
    },
  },
  paths: {
    sources: "./contracts",
    tests: {
      solidity: "./tests/contracts",
      nodejs: "./tests/contracts",
    },
    artifacts: "./artifacts",
    cache: "./cache",
  },
  test: {
    // Applied by Hardhat's Solidity test runner: every fuzz test reports "(runs: 1000)", invariant
    // tests "(runs: 256)" (x depth 64 calls), and the fixed seed makes counterexamples reproducible.
    solidity: {
      fuzz: { runs: 1000, seed: "0x5307ba4c" },
      invariant: { runs: 256, depth: 64 },
    },
  },
  networks: {
    localhost: {
      type: "http",
      url: process.env.SHOTBANK_RPC_URL ?? "http://127.0.0.1:8545",
    },
  },
});
