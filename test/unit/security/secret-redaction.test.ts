/**
 * No credential reaches a record, a report or a log line: `mezo simulate --dashboard-token` and the files it
 * writes, `mezo report`'s HTML, and the process logger.
 */
import fs, { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { registerReportCommand } from '../../../cli/report-command.js';
import { registerSimulateCommand } from '../../../cli/simulate-command.js';
import { logger } from '../../../shared/logger.js';
import { REDACTED, redactSecrets } from '../../../shared/redact.js';
import { runCli } from '../../helpers/run-cli.js';

describe('secrets in records, reports and logs', () => {
  it('redactSecrets replaces credentials at any depth and keeps everything else', () => {
    const input = { token: 's1', tokens: { a: 's2' }, nats: { pass: 's3', user: 'u', nkeySeedFile: '/x/seed' }, dashboardToken: '', seed: 7, tlsKey: 'k.pem', list: [{ password: 's4' }] };
    const out = redactSecrets(input);
    expect(out).toEqual({ token: REDACTED, tokens: REDACTED, nats: { pass: REDACTED, user: 'u', nkeySeedFile: '/x/seed' }, dashboardToken: '', seed: 7, tlsKey: 'k.pem', list: [{ password: REDACTED }] });
    expect(input.token).toBe('s1');
  });

  it('mezo simulate --dashboard-token writes the token into neither run.json, report.json nor the rendered report', async () => {
    const secret = 'dash-secret-4f1c9a';
    const out = mkdtempSync(join(tmpdir(), 'mezo-redact-'));
    const sim = await runCli([registerSimulateCommand], 'simulate', '--agents', '6', '--agents-per-round', '3', '--rounds', '3', '--no-worker',
      '--dashboard-listen', '127.0.0.1:0', '--dashboard-token', secret, '--out', out, '--json');
    expect(sim.error, sim.stderr).toBeUndefined();
    expect(sim.exitCode, sim.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { options: { dashboardToken: string } };
    expect(report.options.dashboardToken).toBe(REDACTED);
    const runJson = readFileSync(join(out, 'run.json'), 'utf8');
    expect(runJson).toContain(REDACTED);
    expect(sim.stdout).not.toContain(secret);
    const rendered = await runCli([registerReportCommand], 'report', join(out, 'run.json'), '--out', join(out, 'html'));
    expect(rendered.exitCode).toBe(0);
    const files = readdirSync(join(out, 'html'));
    expect(files.some((f) => f.endsWith('.html'))).toBe(true);
    for (const file of [join(out, 'report.json'), join(out, 'run.json'), ...files.map((f) => join(out, 'html', f))]) {
      expect(readFileSync(file).toString('latin1'), file).not.toContain(secret);
    }
  }, 120_000);

  it('mezo report does not render a secret left in an older run record', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mezo-redact-'));
    const sim = await runCli([registerSimulateCommand], 'simulate', '--agents', '4', '--agents-per-round', '2', '--rounds', '2', '--no-worker', '--out', out, '--json');
    expect(sim.exitCode, sim.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { config: Record<string, unknown> };
    record.config.dashboardToken = 'old-secret-77aa';
    fs.writeFileSync(join(out, 'old.json'), JSON.stringify(record));
    const rendered = await runCli([registerReportCommand], 'report', join(out, 'old.json'), '--out', join(out, 'html'));
    expect(rendered.exitCode).toBe(0);
    const html = readdirSync(join(out, 'html')).filter((f) => f.endsWith('.html'));
    expect(html.length).toBeGreaterThan(0);
    for (const f of html) expect(readFileSync(join(out, 'html', f), 'utf8')).not.toContain('old-secret-77aa');
  }, 120_000);

  it('the logger censors credentials in logged objects', () => {
    const lines: string[] = [];
    const spy = vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: unknown) => {
      if (fd === 2) lines.push(String(data));
      return String(data).length;
    }) as typeof fs.writeSync);
    const level = logger.level;
    logger.level = 'info';
    try {
      logger.info({ token: 'log-secret-1', config: { password: 'log-secret-2' }, agent: 'a1' }, 'redaction probe');
    } finally {
      logger.level = level;
      spy.mockRestore();
    }
    const line = lines.find((l) => l.includes('redaction probe'));
    expect(line).toBeDefined();
    expect(line).toContain('a1');
    expect(line).not.toContain('log-secret');
  });
});
