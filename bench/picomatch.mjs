// picomatch 4 (the matcher dorny/paths-filter uses) on the rules and paths `benches/scope.rs`
// exported: node picomatch.mjs RULES.json PATHS.txt ANSWERS.txt [RUNS]
//
// RULES.json is an array of rules, each an array of globs (a path matches the rule when it
// matches one of them). Times two things, as a workflow would use picomatch:
//   any: one matcher built from every glob, `isMatch(path)` for each path;
//   all: one matcher per glob, every one tried on each path (which rules match).
// Writes, for each path, the indices of the matching rules (space-separated) to ANSWERS.txt,
// and prints one JSON object with the medians (ms) to stdout. Options: { dot: true } so
// `.github/…` paths match `**` as they do for git; everything else is picomatch's default.
// PICOMATCH_DIR: the directory where `npm install picomatch@4` ran.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [rulesFile, pathsFile, answersFile, runsArg] = process.argv.slice(2);
const require = createRequire(join(process.env.PICOMATCH_DIR ?? '.', 'package.json'));
const picomatch = require('picomatch');
const version = require('picomatch/package.json').version;

const rules = JSON.parse(readFileSync(rulesFile, 'utf8'));
const paths = readFileSync(pathsFile, 'utf8').split('\n').filter((l) => l.length > 0);
const runs = Math.max(1, Number(runsArg ?? 3));
const options = { dot: true };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
// Median of `n` runs; a run over 20 s is not repeated (the machine is shared).
const timeIt = (n, f) => {
  const all = [];
  let result;
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    result = f();
    all.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (all[0] > 20000) break;
  }
  return [median(all), result, all.length];
};

let t = process.hrtime.bigint();
const everyGlob = rules.flat();
const any = picomatch(everyGlob, options);
const each = rules.flatMap((globs, rule) => globs.map((g) => [picomatch(g, options), rule]));
const compileMs = Number(process.hrtime.bigint() - t) / 1e6;

const [anyMs, anyCount, anyRuns] = timeIt(runs, () => {
  let n = 0;
  for (const p of paths) if (any(p)) n++;
  return n;
});

// Every matching rule: one run takes about a minute.
const [allMs, answers, allRuns] = timeIt(runs, () => {
  const out = new Array(paths.length);
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i];
    const matched = [];
    for (const [m, rule] of each) {
      if (m(p) && matched[matched.length - 1] !== rule) matched.push(rule);
    }
    out[i] = matched;
  }
  return out;
});
writeFileSync(answersFile, answers.map((m) => m.join(' ')).join('\n') + '\n');
console.log(
  JSON.stringify({
    version,
    node: process.version,
    globs: everyGlob.length,
    paths: paths.length,
    compile_ms: compileMs,
    any_ms: anyMs,
    any_runs: anyRuns,
    any_count: anyCount,
    all_ms: allMs,
    all_runs: allRuns,
  }),
);
