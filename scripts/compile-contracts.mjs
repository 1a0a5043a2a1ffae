// Compiles contracts/*.sol and contracts/test/*.sol with the pinned solc from npm into
// contracts/out/<Contract>.json (ABI and creation bytecode). With --check, compiles into
// memory and fails if any committed artifact differs, is missing, or is left over.
//
// Run through scripts/compile-contracts, which installs the pinned packages first.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const contractsDir = path.join(root, "contracts");
const outDir = path.join(contractsDir, "out");
const check = process.argv.includes("--check");

// Runtime gas matters far more than deployment size: the contract is deployed once
// and called for every deal leg.
const OPTIMIZER_RUNS = 1000000;
// Cancun has been live on Ethereum since 2024 and is supported by Besu, Geth and anvil.
const EVM_VERSION = "cancun";

function solidityFiles(dir) {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".sol"))
    .sort()
    .map((name) => path.join(dir, name));
}

const files = [...solidityFiles(contractsDir), ...solidityFiles(path.join(contractsDir, "test"))];
const sources = {};
for (const file of files) {
  sources[path.relative(root, file)] = { content: fs.readFileSync(file, "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
    viaIR: true,
    evmVersion: EVM_VERSION,
    // No metadata hash in the bytecode: the artifact then depends only on the code,
    // not on comments or file paths.
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

function findImports(importPath) {
  const candidates = [path.join(root, "node_modules", importPath), path.join(root, importPath)];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `import ${importPath} not found (is node_modules installed? run scripts/compile-contracts)` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((entry) => entry.severity === "error");
for (const entry of output.errors || []) {
  console.error(entry.formattedMessage);
}
if (errors.length > 0) process.exit(1);

// One artifact per contract defined in the project's own files (not the imported ones).
const artifacts = new Map();
for (const source of Object.keys(sources)) {
  for (const [name, contract] of Object.entries(output.contracts[source] || {})) {
    const bytecode = contract.evm.bytecode.object;
    if (bytecode.length === 0) continue; // interfaces and abstract contracts
    const artifact = {
      contractName: name,
      sourceName: source,
      compiler: { solc: solc.version(), optimizerRuns: OPTIMIZER_RUNS, evmVersion: EVM_VERSION },
      abi: contract.abi,
      bytecode: "0x" + bytecode,
    };
    artifacts.set(`${name}.json`, JSON.stringify(artifact, null, 2) + "\n");
  }
}

if (check) {
  const committed = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((n) => n.endsWith(".json")) : [];
  const problems = [];
  for (const [name, text] of artifacts) {
    const file = path.join(outDir, name);
    if (!fs.existsSync(file)) problems.push(`missing: contracts/out/${name}`);
    else if (fs.readFileSync(file, "utf8") !== text) problems.push(`differs from its source: contracts/out/${name}`);
  }
  for (const name of committed) {
    if (!artifacts.has(name)) problems.push(`no longer produced by any contract: contracts/out/${name}`);
  }
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    console.error("the committed contract artifacts are stale: run scripts/compile-contracts and commit contracts/out");
    process.exit(1);
  }
  console.log(`contracts/out matches the sources (${artifacts.size} artifacts, solc ${solc.version()})`);
} else {
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of fs.readdirSync(outDir)) {
    if (name.endsWith(".json") && !artifacts.has(name)) fs.rmSync(path.join(outDir, name));
  }
  for (const [name, text] of artifacts) fs.writeFileSync(path.join(outDir, name), text);
  console.log(`wrote ${artifacts.size} artifacts to contracts/out (solc ${solc.version()})`);
}
