#!/usr/bin/env node
// Contracts test gate (`make test-contracts`):
//   1. `hardhat test --coverage`: Solidity unit/fuzz/invariant tests + node:test suites, with coverage;
//   2. line coverage of contracts/ from coverage/lcov.info must be 100%;
//   3. `hardhat build` again (coverage leaves instrumented artifacts behind), then
//   4. the exported ABIs in sdk/shotbank/chain/abi must match the build (scripts/export_abi.py --check),
//   5. the gas benchmark must not grow > 5% over benchmarks/gas/snapshot.json.
// Exits non-zero when any step fails; every step runs so one report shows all problems.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const HARDHAT = join(ROOT, "node_modules", ".bin", "hardhat");
const PYTHON = join(ROOT, ".venv", "bin", "python");
const REQUIRED_LINE_COVERAGE = 100;

function run(title, command, args) {
  const started = Date.now();
  console.log(`\n== ${title}: ${[command, ...args].join(" ")}`);
  const result = spawnSync(command, args, { cwd: ROOT, stdio: "inherit", env: process.env });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  console.log(`== ${title}: ${ok ? "ok" : `FAILED (exit ${result.status ?? result.signal})`} in ${seconds}s`);
  return ok;
}

/** Line coverage of files under contracts/, from an lcov report: {files: [[path, hit, found]], hit, found}. */
export function contractsLineCoverage(lcov) {
  const files = [];
  let current = null;
  for (const line of lcov.split("\n")) {
    if (line.startsWith("SF:")) current = { path: line.slice(3).trim(), hit: 0, found: 0 };
    else if (line.startsWith("LH:") && current) current.hit = Number(line.slice(3));
    else if (line.startsWith("LF:") && current) current.found = Number(line.slice(3));
    else if (line.trim() === "end_of_record" && current) {
      if (current.path.replaceAll("\\", "/").replace(/^\.\//, "").startsWith("contracts/")) files.push(current);
      current = null;
    }
  }
  const hit = files.reduce((sum, f) => sum + f.hit, 0);
  const found = files.reduce((sum, f) => sum + f.found, 0);
  return { files, hit, found };
}

function checkCoverage() {
  const path = join(ROOT, "coverage", "lcov.info");
  if (!existsSync(path)) {
    console.log(`== coverage: FAILED (${path} missing)`);
    return false;
  }
  const { files, hit, found } = contractsLineCoverage(readFileSync(path, "utf8"));
  console.log("\n== line coverage of contracts/");
  for (const f of files) {
    const pct = f.found === 0 ? 100 : (100 * f.hit) / f.found;
    console.log(`   ${f.path.padEnd(40)} ${String(f.hit).padStart(4)}/${String(f.found).padEnd(4)} ${pct.toFixed(2)}%`);
  }
  const total = found === 0 ? 0 : (100 * hit) / found;
  const ok = files.length > 0 && total >= REQUIRED_LINE_COVERAGE;
  console.log(`== coverage: ${total.toFixed(2)}% of ${found} lines (need ${REQUIRED_LINE_COVERAGE}%): ${ok ? "ok" : "FAILED"}`);
  return ok;
}

function main() {
  const started = Date.now();
  const results = {};
  results.tests = run("tests", HARDHAT, ["test", "--coverage"]);
  results.coverage = checkCoverage();
  results.build = run("rebuild without instrumentation", HARDHAT, ["build", "--quiet", "--no-tests"]);
  if (existsSync(PYTHON)) {
    results.abi = run("ABI export check", PYTHON, [join("scripts", "export_abi.py"), "--check"]);
  } else {
    console.log(`== ABI export check: FAILED (${PYTHON} missing; run scripts/setup.sh)`);
    results.abi = false;
  }
  results.gas = run("gas snapshot check", process.execPath, [join("benchmarks", "gas", "run.mjs"), "--check"]);
  const failed = Object.entries(results).filter(([, ok]) => !ok).map(([name]) => name);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`\ncontracts-test: ${failed.length ? `FAILED (${failed.join(", ")})` : "all passed"} in ${seconds}s`);
  return failed.length ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exit(main());
