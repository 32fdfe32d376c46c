// Learning ablations on the default task: runs `mezo simulate` configurations in process (the library API, as
// the command does) for several seeds and writes one JSON line per run: shifted-test accuracy at the end and at
// every evaluation (curve: [round, accuracy]; curveSeconds: wall seconds at each of those evaluations), clean-test
// accuracy at the end, wall time and bytes per agent per round.
//   npm run build && node scripts/experiment/learning-sweep.mjs --configs sweep.json --seeds 0,1,2 --out runs.jsonl
// sweep.json: [{ "name": "defaults", "options": { } }, { "name": "m=50", "options": { "agentsPerRound": 50 } }, ...];
// an entry with "command": "train" runs `mezo train` instead, its options being the train config's flags.
// A train entry's "data" may contain SEED (replaced by each run's seed); with "model" (a prepared subset from
// prepare-subset.mjs) the clean-test score uses that model. A simulate run's line also says what the optimiser
// options did (undo entries, terms per entry, the logged rate at every tenth of the run).
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { runSimulation } = await import(new URL('simulation/simulate.js', root).href);
const { loadDefaultModel, defaultSplit, narrowTrainable, scaleTrainable } = await import(new URL('shared/model/index.js', root).href);
const { InProcessBackend } = await import(new URL('edge-agent/mezo-backend.js', root).href);
const { scoreDataset } = await import(new URL('edge-agent/dataset-evaluation.js', root).href);
const { noise } = await import(new URL('shared/noise/index.js', root).href);
const { logger } = await import(new URL('shared/logger.js', root).href);
const { resolveTrainConfig, runTrain } = await import(new URL('cli/train-command.js', root).href);

const { values: args } = parseArgs({
  options: {
    configs: { type: 'string' },
    seeds: { type: 'string', default: '0,1,2' },
    out: { type: 'string' },
  },
});
if (!args.configs || !args.out) throw new Error('--configs and --out are required');
if (process.env.MEZO_LOG_LEVEL === undefined) logger.level = 'warn';
const configs = JSON.parse(readFileSync(args.configs, 'utf8'));
const seeds = args.seeds.split(',').map(Number);

const prepared = await loadDefaultModel();
const clean = defaultSplit().test;
const scorer = await InProcessBackend.create(prepared, noise, { restore: 'subtract', intraOpThreads: 1 });
const cleanBefore = (await scoreDataset(scorer, clean, 500)).accuracy;

async function trainRun(name, options, seed) {
  rmSync(`${args.out}.train`, { recursive: true, force: true });
  const started = performance.now();
  const opts = { ...options, ...(options.data ? { data: options.data.replace('SEED', String(seed)) } : {}) };
  const config = resolveTrainConfig({ ...opts, seed: String(seed), out: `${args.out}.train` }, {});
  const { report } = await runTrain(config, { quiet: true });
  // A copy of exactly the file's bytes: a small file's Buffer is a view into a shared pool.
  const bytes = readFileSync(`${args.out}.train/trained.slab`);
  const trained = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let cleanAfter;
  if (options.model) {
    const { loadPrepared } = await import(new URL('shared/model/index.js', root).href);
    const own = await InProcessBackend.create(await loadPrepared(options.model), noise, { restore: 'subtract', intraOpThreads: 1 });
    await own.load(trained);
    cleanAfter = (await scoreDataset(own, clean, 500)).accuracy;
    await own.close();
  } else {
    await scorer.load(trained);
    cleanAfter = (await scoreDataset(scorer, clean, 500)).accuracy;
  }
  const curve = report.curve.filter((p) => p.eval).map((p) => [p.step, p.eval.accuracy]);
  // runTrain reports no time per step: its steps cost the same, so an evaluation's time is placed at
  // step / steps of the training wall time (marked as derived, unlike the simulation's measured curveSeconds).
  const curveSeconds = curve.map(([step]) => (step / Math.max(1, report.steps)) * (report.wallMs / 1000));
  let best = -Infinity;
  let worstDrop = 0;
  for (const [, acc] of curve.slice(1)) {
    best = Math.max(best, acc);
    worstDrop = Math.max(worstDrop, best - acc);
  }
  const line = {
    name, seed, command: 'train', options,
    accuracyBefore: report.initialEval.accuracy, accuracyAfter: report.finalEval.accuracy,
    cleanBefore, cleanAfter, bestAccuracy: best, worstDrop, curve, curveSeconds, curveSecondsDerived: true,
    wallSeconds: (performance.now() - started) / 1000, trainSeconds: report.wallMs / 1000, rounds: report.steps,
  };
  appendFileSync(args.out, `${JSON.stringify(line)}\n`);
  process.stdout.write(
    `${name} seed ${seed}: shifted ${(line.accuracyAfter * 100).toFixed(2)}% (best ${(best * 100).toFixed(2)}%, worst drop ${(worstDrop * 100).toFixed(2)}), clean ${(cleanAfter * 100).toFixed(2)}%, ${line.trainSeconds.toFixed(1)} s\n`,
  );
}

for (const { name, options, command } of configs) {
  for (const seed of seeds) {
    if (command === 'train') {
      await trainRun(name, options, seed);
      continue;
    }
    let cleanAfter = Number.NaN;
    const optimiser = { undos: 0, termsPerEntry: 0, lrByRound: [] };
    // Wall seconds from the fleet being ready (just before the base evaluation and round 0) to the end of each
    // round, so the curve can be drawn against time as well as rounds.
    let readyAt = Number.NaN;
    const roundEnds = new Map();
    const report = await runSimulation(
      { ...options, seed },
      {
        onReady: () => {
          readyAt = performance.now();
        },
        onProgress: ({ round }) => {
          roundEnds.set(round, (performance.now() - readyAt) / 1000);
        },
        onFinished: async ({ coordinator }) => {
          // A run on a transformed model (options.trainable, options.tensorScales) scores with that model.
          const narrowed = options.trainable ? narrowTrainable(prepared, options.trainable) : prepared;
          const own = options.trainable || options.tensorScales
            ? await InProcessBackend.create(options.tensorScales ? scaleTrainable(narrowed, options.tensorScales) : narrowed, noise, { restore: 'subtract', intraOpThreads: 1 })
            : scorer;
          await own.load(coordinator.materialise().slice());
          cleanAfter = (await scoreDataset(own, clean, 500)).accuracy;
          if (own !== scorer) await own.close();
          // What the optimiser options did, read back from the log: entries that undo the one before (the loss
          // guard), the mean terms per entry (momentum), and the logged rate at every tenth of the run (plateau).
          const entries = coordinator.log.entries();
          entries.forEach((e, i) => {
            const prev = entries[i - 1];
            if (prev && e.terms.length === prev.terms.length && e.terms.every((t, k) => t.seed === prev.terms[k].seed && t.coeff === -prev.terms[k].coeff)) optimiser.undos++;
          });
          optimiser.termsPerEntry = entries.reduce((n, e) => n + e.terms.length, 0) / Math.max(1, entries.length);
          const step = Math.max(1, Math.floor(entries.length / 10));
          optimiser.lrByRound = entries.filter((_, i) => (i + 1) % step === 0).map((e) => [e.round, e.lr]);
        },
      },
    );
    const curve = report.accuracyByRound.filter(([r]) => r >= 0);
    // The largest drop below the running best at any later evaluation (the "never degrades" criterion).
    let best = -Infinity;
    let worstDrop = 0;
    for (const [, acc] of curve) {
      best = Math.max(best, acc);
      worstDrop = Math.max(worstDrop, best - acc);
    }
    const line = {
      name,
      seed,
      options,
      accuracyBefore: report.accuracyBefore,
      accuracyAfter: report.accuracyAfter,
      cleanBefore,
      cleanAfter,
      bestAccuracy: best,
      worstDrop,
      curve,
      curveSeconds: curve.map(([round]) => roundEnds.get(round) ?? null),
      wallSeconds: report.wallSeconds,
      rounds: report.rounds,
      // Round time (coordinator.run() alone) and what DP spent, for the privacy table (docs/privacy.md).
      roundsPerSecond: report.roundsPerSecond,
      ...(report.privacy ? { privacy: report.privacy } : {}),
      ...(report.recordPrivacy ? { recordPrivacy: report.recordPrivacy } : {}),
      bytesUpPerAgentRound: report.traffic.bytesUpPerAgentRound,
      bytesDownPerAgentRound: report.traffic.bytesDownPerAgentRound,
      optimiser,
    };
    appendFileSync(args.out, `${JSON.stringify(line)}\n`);
    process.stdout.write(
      `${name} seed ${seed}: shifted ${(report.accuracyAfter * 100).toFixed(2)}% (best ${(best * 100).toFixed(2)}%, worst drop ${(worstDrop * 100).toFixed(2)}), clean ${(cleanAfter * 100).toFixed(2)}%, ${report.wallSeconds.toFixed(1)} s, ${optimiser.undos} undone, ${optimiser.termsPerEntry.toFixed(0)} terms/entry, final lr ${optimiser.lrByRound.at(-1)?.[1].toExponential(2)}\n`,
    );
  }
}
await scorer.close();
