import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTrainConfig, runTrain } from '../../../cli/train-command.js';
import { resolveAgentConfig, runAgent } from '../../../cli/agent-command.js';
import { Coordinator } from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { noise } from '../../../shared/noise/index.js';
import { GrpcTransport } from '../../../shared/transport/index.js';
import { registerPrepareCommand } from '../../../cli/prepare-command.js';
import { registerZooCommand } from '../../../cli/zoo-command.js';
import { LocalDataset, featureDtypeForInput, readDatasetFile, writeMzds } from '../../../shared/data/index.js';
import { loadPrepared, paddingRanges } from '../../../shared/model/index.js';
import { runCli } from '../../helpers/run-cli.js';

// A text model (the zoo transformer) reads int64 token ids; its data comes in the usual JSONL/CSV files of
// plain numbers, and the model's input type decides how they are read.
const SEQ = 6;
const VOCAB = 20;
const CLASSES = 3;
const dir = mkdtempSync(join(tmpdir(), 'mezo-train-tokens-'));
const model = join(dir, 'prepared');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Token rows whose class is the first token's id mod 3, so there is something to learn. */
function rows(n: number): Array<{ ids: number[]; label: number }> {
  return Array.from({ length: n }, (_, i) => {
    const ids = Array.from({ length: SEQ }, (_, j) => (i * 7 + j * 3) % VOCAB);
    return { ids, label: ids[0]! % CLASSES };
  });
}

beforeAll(async () => {
  const mezo = (...args: string[]) => runCli([registerZooCommand, registerPrepareCommand], ...args);
  const onnx = join(dir, 'transformer.onnx');
  const zoo = await mezo('zoo', 'transformer', '--out', onnx, '--vocab', String(VOCAB), '--dim', '8', '--heads', '2', '--layers', '1', '--seq', String(SEQ), '--ffn', '16', '--classes', String(CLASSES));
  expect(zoo.exitCode).toBe(0);
  const prepared = await mezo('prepare', onnx, '--out', model);
  expect(prepared.exitCode).toBe(0);
});

describe('mezo train --data with token ids', () => {
  it('reads a JSONL file as int64 token ids for an int64 model input and trains on it', async () => {
    const { manifest } = await loadPrepared(model);
    expect(manifest.dataInputs[0]!.elemType).toBe('int64');
    expect(featureDtypeForInput(manifest.dataInputs[0]!.elemType)).toBe('int64');
    const path = join(dir, 'tokens.jsonl');
    writeFileSync(path, rows(48).map((r) => JSON.stringify({ x: r.ids, y: r.label })).join('\n') + '\n');
    const config = resolveTrainConfig({ model, data: path, steps: 3, batchSize: 16, evalEvery: 0, out: join(dir, 'jsonl'), worker: false }, {});
    const { report } = await runTrain(config, { quiet: true });
    expect(report.logVersion).toBe(3);
  });

  it('reads a CSV file (token columns, then the label) the same way, also as the held-out set', async () => {
    const path = join(dir, 'tokens.csv');
    const header = [...Array.from({ length: SEQ }, (_, j) => `t${j}`), 'label'].join(',');
    writeFileSync(path, [header, ...rows(40).map((r) => [...r.ids, r.label].join(','))].join('\n') + '\n');
    const config = resolveTrainConfig({ model, data: path, heldOut: path, steps: 2, batchSize: 8, evalEvery: 2, out: join(dir, 'csv'), worker: false }, {});
    const { report } = await runTrain(config, { quiet: true });
    expect(report.logVersion).toBe(2);
    expect(report.finalEval?.accuracy).toEqual(expect.any(Number));
  });

  it('rejects a token that is not a non-negative integer, naming the line and field', async () => {
    const path = join(dir, 'bad.jsonl');
    writeFileSync(path, `${JSON.stringify({ x: [1, 2, 3, 4, 5, 6], y: 0 })}\n${JSON.stringify({ x: [1, 2, 3.5, 4, 5, 6], y: 1 })}\n`);
    const config = resolveTrainConfig({ model, data: path, steps: 1, evalEvery: 0, out: join(dir, 'bad'), worker: false }, {});
    await expect(runTrain(config, { quiet: true })).rejects.toThrow(/bad\.jsonl line 2: x\[2\]/);
  });

  it('serves `mezo agent --data tokens.jsonl` (the CLI path) through a federated job to its end', async () => {
    const prepared = await loadPrepared(model);
    const path = join(dir, 'agent-tokens.jsonl');
    writeFileSync(path, rows(32).map((r) => JSON.stringify({ x: r.ids, y: r.label })).join('\n') + '\n');
    const header = { jobId: 'tokens', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian' as const, decayRanges: [] };
    const coordinator = new Coordinator({
      log: UpdateLog.inMemory(header),
      baseSlab: prepared.slab,
      padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length),
      engine: noise,
      transport: new GrpcTransport({ address: '127.0.0.1:0' }),
      options: { jobId: 'tokens', rounds: 2, deadlineMs: 600_000, batchSize: 8, strategy: { agentsPerRound: 1, seedsPerAgent: 1 } },
    });
    await coordinator.listen();
    try {
      const config = resolveAgentConfig({ coordinator: coordinator.address!, model, data: path, agentId: 'reader', agentIndex: 0, numAgents: 1, worker: false }, {});
      const agent = runAgent(config, ['mezo-test-stop-token-agent' as NodeJS.Signals]);
      // An agent that cannot read its data fails at once: report that, not the coordinator waiting for it.
      const early = agent.then((exit) => {
        throw new Error(`the agent exited before the job ended: ${JSON.stringify(exit)}`);
      });
      early.catch(() => undefined);
      expect(await Promise.race([coordinator.run(), early])).toMatchObject({ roundsRun: 2, version: 2, failedAttempts: 0 });
      expect(await agent).toMatchObject({ reason: 'job-ended' });
      expect(coordinator.agentStatus('reader')!.stats).toMatchObject({ accepted: 2, rejected: 0 });
    } finally {
      await coordinator.close();
    }
  });

  it('refuses a binary file whose declared dtype is not the model input type', async () => {
    const path = join(dir, 'floats.mzds');
    await writeMzds(path, new LocalDataset({ features: new Float32Array(2 * SEQ), labels: Int32Array.of(0, 1), featureShape: [SEQ], numClasses: CLASSES }));
    await expect(readDatasetFile(path, { dtype: 'int64' })).rejects.toThrow(/floats\.mzds: holds float32 features, but the model's input is int64/);
    expect((await readDatasetFile(path)).dtype).toBe('float32');
  });
});
