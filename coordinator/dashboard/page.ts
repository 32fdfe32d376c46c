/**
 * The dashboard page, its stylesheet and its browser script, as strings: they ship inside the compiled
 * JavaScript (no separate files to copy into dist/), and the page loads uPlot from the server's /assets route
 * (the npm package's own build), never from a CDN. The script opens /events (server-sent events): a 'snapshot'
 * with the run so far, then 'round', 'evaluation', 'fleet' and 'end' events.
 */

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function dashboardPage(job: string): string {
  const title = `mezo-fleet · ${escapeHtml(job)}`;
  // Each chart has a note under it, shown when something it would draw is missing and why (dashboard.js).
  const chart = (id: string, heading: string, note = ''): string =>
    `<section class="card"><h2>${heading}${note ? ` <small>${note}</small>` : ''}</h2><div class="chart" id="chart-${id}" data-chart="${id}" data-points="0"></div><p class="note" id="note-${id}" hidden></p></section>`;
  const kpi = (id: string, label: string, wide = false): string =>
    `<div class="kpi${wide ? ' wide' : ''}"><span class="label">${label}</span><span class="value" id="kpi-${id}">–</span><span class="note" id="kpi-${id}-note"></span></div>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${title}</title>
<link rel="stylesheet" href="assets/uplot.css">
<link rel="stylesheet" href="assets/dashboard.css">
</head>
<body data-rounds="0">
<header>
  <h1>mezo-fleet <span id="job">${escapeHtml(job)}</span></h1>
  <span id="status" class="pill">connecting</span>
</header>
<main>
  <section class="kpis" aria-label="current state">
    ${kpi('round', 'round')}
    ${kpi('version', 'log version')}
    ${kpi('loss', 'train loss')}
    ${kpi('accuracy', 'eval accuracy')}
    ${kpi('online', 'agents online')}
    ${kpi('round-agents', 'asked / answered / dropped', true)}
    ${kpi('agreement', 'sign agreement')}
    ${kpi('lag', '<abbr title="replay lag in versions over connected agents: 90th percentile / largest">lag p90 / max</abbr>')}
    ${kpi('divergent', 'divergent replicas')}
    ${kpi('bytes', 'bytes up / down', true)}
    <div class="kpi wide"><span class="label">log head</span><span class="value mono" id="kpi-head">–</span></div>
    <div class="kpi wide" id="kpi-record-privacy-card" hidden><span class="label"><abbr title="record-level DP on the agents: ε per agent's data (the smallest shard) so far at δ, of the budget (docs/privacy.md)">record ε spent</abbr></span><span class="value" id="kpi-record-privacy">–</span><span class="note" id="kpi-record-privacy-note"></span></div>
    <div class="kpi wide" id="kpi-privacy-card" hidden><span class="label"><abbr title="central agent-level DP: ε spent so far at δ, of the budget (docs/privacy.md)">privacy ε spent</abbr></span><span class="value" id="kpi-privacy">–</span><span class="note" id="kpi-privacy-note"></span></div>
  </section>
  <div class="grid">
    ${chart('loss', 'Loss', 'train (per round) and held-out')}
    ${chart('accuracy', 'Evaluation accuracy')}
    ${chart('agents', 'Agents per round', 'online · sampled · answered · dropped')}
    ${chart('bytes', 'Bytes per round')}
    ${chart('scalars', 'Scalars g, latest round', '<span id="scalars-round"></span>')}
    ${chart('agreement', 'Sign agreement across agents')}
  </div>
  <div class="grid tables">
    <section class="card"><h2>Replicas whose weights disagree</h2><div class="scroll"><table id="divergent"><thead><tr><th>agent</th><th>version</th><th>lag</th><th>divergent heartbeats</th></tr></thead><tbody></tbody></table></div><p class="empty" id="divergent-empty">none</p></section>
    <section class="card"><h2>Agents <small>most lagging first</small></h2><div class="scroll"><table id="agents"><thead><tr><th>agent</th><th>online</th><th>version</th><th>lag</th><th>accepted</th><th>rejected</th><th>late</th><th>up</th><th>down</th></tr></thead><tbody></tbody></table></div></section>
  </div>
</main>
<footer>read-only view · live over server-sent events · <a href="metrics">metrics</a> · <a href="api/run">run record</a></footer>
<script src="assets/uplot.js"></script>
<script src="assets/dashboard.js"></script>
</body>
</html>
`;
}

/** The sign-in page's own styles: inline, because its assets sit behind the same token (CSP allows them by hash). */
export const LOGIN_CSS = `body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;color:#111827}
main{max-width:420px;margin:12vh auto;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:20px}
h1{font-size:18px;margin:0 0 8px}form{display:flex;gap:8px}
input{flex:1;min-width:0;padding:8px;font:inherit;border:1px solid #d1d5db;border-radius:6px}
button{padding:8px 14px;font:inherit;border:0;border-radius:6px;background:#2563eb;color:#fff}`;

export function loginPage(failed: boolean): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>mezo-fleet · sign in</title>
<style>${LOGIN_CSS}</style>
</head>
<body>
<main>
  <h1>mezo-fleet dashboard</h1>
  <p>${failed ? 'That is not the operator token. ' : ''}Enter the operator token (the coordinator's metrics token).</p>
  <form method="get">
    <input type="password" name="token" autocomplete="current-password" aria-label="operator token" required autofocus>
    <button type="submit">Sign in</button>
  </form>
</main>
</body>
</html>
`;
}

export const DASHBOARD_CSS = `
:root { --bg: #f6f7f9; --card: #fff; --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1115; --card: #181b21; --fg: #e5e7eb; --muted: #9ca3af; --line: #2b303a; --accent: #60a5fa; }
  .uplot .u-legend, .uplot text { color: var(--fg); }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; justify-content: space-between; gap: 8px; padding: 10px 16px; border-bottom: 1px solid var(--line); background: var(--card); position: sticky; top: 0; z-index: 2; }
h1 { font-size: 17px; margin: 0; font-weight: 600; }
h1 span { color: var(--muted); font-weight: 400; }
h2 { font-size: 14px; margin: 0 0 8px; font-weight: 600; }
h2 small { color: var(--muted); font-weight: 400; }
main { padding: 12px; max-width: 1600px; margin: 0 auto; }
.pill { font-size: 12px; padding: 2px 10px; border-radius: 999px; background: var(--line); white-space: nowrap; }
.pill.live { background: #dcfce7; color: #166534; }
.pill.reconnecting { background: #fef3c7; color: #92400e; }
.pill.finished { background: #dbeafe; color: #1e40af; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; margin-bottom: 12px; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; min-width: 0; }
.kpi.wide { grid-column: span 2; }
.kpi .label { display: block; font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.kpi .value { display: block; font-size: 18px; font-weight: 600; overflow-wrap: anywhere; }
.kpi .note, .card .note { display: block; font-size: 12px; color: var(--muted); }
.card .note { margin: 4px 0 0; }
/* A chart with nothing at all to draw shows its note inside the empty plot instead of under it. */
.card { position: relative; }
.card .note.overlay { position: absolute; left: 10%; right: 10%; top: 38%; margin: 0; text-align: center; font-size: 13px; }
.card .note[hidden] { display: none; }
.kpi[hidden] { display: none; }
.kpi .value.mono { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px !important; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 440px), 1fr)); gap: 12px; margin-bottom: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.chart { width: 100%; min-height: 180px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 500; }
.empty { color: var(--muted); margin: 6px 0 0; }
.offline { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px 12px 20px; }
footer a { color: var(--accent); }
@media (max-width: 520px) {
  main { padding: 8px; }
  .kpis { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .kpi .value { font-size: 16px; }
  header { padding: 8px 10px; }
}
`;

/** Browser code (plain ES2017, no build step). Kept small: state, one render per animation frame, uPlot charts. */
export const DASHBOARD_JS = String.raw`
(function () {
  'use strict';
  var state = { rows: [], evals: [], fleet: null, endedAt: null, source: null, config: {}, kind: null };
  var charts = {};
  // Rounds and counts are whole numbers: their axes tick on these steps only.
  var WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000];
  // The histogram's x range is its bins' edges, so the outermost bars are drawn whole.
  var histRange = null;
  var COLORS = { train: '#2563eb', heldOut: '#dc2626', accuracy: '#16a34a', online: '#64748b', asked: '#2563eb', answered: '#16a34a',
    dropped: '#dc2626', up: '#9333ea', down: '#0891b2', hist: '#2563eb', agree: '#ea580c', positive: '#64748b',
    // Agent lines often coincide (all sampled answer): wider, paler lines underneath keep each one visible.
    onlineBand: 'rgba(100,116,139,0.3)', askedBand: 'rgba(37,99,235,0.45)' };

  function $(id) { return document.getElementById(id); }
  function num(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    var a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
    return x.toFixed(digits === undefined ? 4 : digits).replace(/\.?0+$/, '') || '0';
  }
  function pct(x) { return x === null || x === undefined ? '–' : (100 * x).toFixed(1) + ' %'; }
  function bytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    var units = ['B', 'kB', 'MB', 'GB', 'TB'];
    var i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n >= 100 ? 0 : 1)) + ' ' + units[i];
  }
  function setText(id, text, title) { var el = $(id); if (el) { el.textContent = text; if (title !== undefined) el.title = title; } }

  function size(el) {
    var width = Math.max(220, Math.floor(el.clientWidth));
    return { width: width, height: Math.round(Math.max(170, Math.min(260, width * 0.5))) };
  }

  function axes(yLabel, yValues, yWhole) {
    var x = { label: 'round', labelSize: 18, size: 34, incrs: WHOLE };
    var y = { label: yLabel, labelSize: 18, size: 56 };
    if (yValues) y.values = function (u, splits) { return splits.map(yValues); };
    if (yWhole) y.incrs = WHOLE;
    return [x, y];
  }

  function lineChart(id, yLabel, series, yValues, yRange, yWhole) {
    var el = $('chart-' + id);
    var s = size(el);
    var opts = {
      width: s.width, height: s.height,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: yRange ? { range: yRange } : {} },
      axes: axes(yLabel, yValues, yWhole),
      series: [{ label: 'round' }].concat(series.map(function (d) {
        var s = { label: d.label, stroke: d.color, width: d.width || 2, spanGaps: true, points: d.width ? { show: false } : { size: 4 } };
        if (d.dash) s.dash = d.dash;
        return s;
      }))
    };
    var data = [[]].concat(series.map(function () { return []; }));
    charts[id] = { plot: new uPlot(opts, data, el), el: el, width: s.width };
  }

  function histogramChart() {
    var el = $('chart-scalars');
    var s = size(el);
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.92, Infinity] }) : undefined;
    var opts = {
      width: s.width, height: s.height,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: function (u, min, max) { return histRange || [min, max]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{ label: 'g', labelSize: 18, size: 34, values: function (u, splits) { return splits.map(function (v) { return num(v, 3); }); } },
        { label: 'agents × seeds', labelSize: 18, size: 56, incrs: WHOLE }],
      series: [{ label: 'g' }, { label: 'count', stroke: COLORS.hist, fill: 'rgba(37,99,235,0.35)', width: 1, paths: bars, points: { show: false } }]
    };
    charts.scalars = { plot: new uPlot(opts, [[], []], el), el: el, width: s.width };
  }

  function createCharts() {
    lineChart('loss', 'loss', [{ label: 'train', color: COLORS.train }, { label: 'held-out', color: COLORS.heldOut }]);
    lineChart('accuracy', 'accuracy', [{ label: 'held-out accuracy', color: COLORS.accuracy }], pct);
    lineChart('agents', 'agents', [{ label: 'online', color: COLORS.onlineBand, width: 10 }, { label: 'sampled', color: COLORS.askedBand, width: 6 },
      { label: 'answered', color: COLORS.answered }, { label: 'dropped', color: COLORS.dropped, dash: [6, 4] }], null, null, true);
    lineChart('bytes', 'bytes', [{ label: 'up', color: COLORS.up }, { label: 'down', color: COLORS.down }], bytes);
    histogramChart();
    lineChart('agreement', 'fraction', [{ label: 'sign agreement', color: COLORS.agree }, { label: 'g > 0', color: COLORS.positive }], pct, [0, 1]);
    if (window.ResizeObserver) {
      var observer = new ResizeObserver(function () {
        Object.keys(charts).forEach(function (key) {
          var c = charts[key];
          var s = size(c.el);
          if (s.width !== c.width) { c.width = s.width; c.plot.setSize(s); }
        });
      });
      Object.keys(charts).forEach(function (key) { observer.observe(charts[key].el); });
    }
  }

  function setData(id, data) {
    charts[id].plot.setData(data);
    charts[id].el.setAttribute('data-points', String(data[0].length));
  }

  // Shows a chart's note (why something is missing) or hides it; greys out the legend entry of a series with
  // nothing to draw, so no legend key points at an invisible line.
  function explain(id, text, series) {
    var note = $('note-' + id);
    note.hidden = !text;
    note.textContent = text || '';
    note.classList.toggle('overlay', charts[id].el.getAttribute('data-points') === '0');
    if (series !== undefined) {
      var c = charts[id];
      var show = !text;
      if (c.plot.series[series].show !== show) c.plot.setSeries(series, { show: show });
    }
  }

  // Why there is no held-out evaluation (the run's config says whether it was turned off, and why).
  function evaluationAbsent() {
    var cfg = state.config || {};
    if (typeof cfg.evalOff === 'string') {
      return { short: 'off: ' + cfg.evalOff, long: 'No held-out evaluation in this run (' + cfg.evalOff +
        '): the coordinator evaluates with --eval-every N, and --eval-data FILE for a model of its own.' };
    }
    if ((typeof cfg.evalEvery === 'number' && cfg.evalEvery > 0) || state.kind === 'simulate') {
      return { short: 'first evaluation pending', long: 'The first held-out evaluation is still running.' };
    }
    return { short: 'no held-out set', long: 'No held-out evaluation reported: the coordinator evaluates with --eval-every N (and --eval-data FILE for a model of its own).' };
  }

  function row(cells, offline) {
    var tr = document.createElement('tr');
    if (offline) tr.className = 'offline';
    cells.forEach(function (c) { var td = document.createElement('td'); td.textContent = c; tr.appendChild(td); });
    return tr;
  }

  function renderTables(fleet) {
    var divergent = $('divergent').tBodies[0];
    divergent.replaceChildren.apply(divergent, fleet.divergent.map(function (a) {
      return row([a.id, String(a.version), String(a.replayLag), String(a.divergentHeartbeats)]);
    }));
    $('divergent-empty').hidden = fleet.divergent.length > 0;
    var agents = $('agents').tBodies[0];
    agents.replaceChildren.apply(agents, fleet.agents.map(function (a) {
      return row([a.id, a.connected ? 'yes' : 'no', String(a.version), a.connected ? String(a.replayLag) : '–', String(a.accepted),
        String(a.rejected), String(a.late), bytes(a.bytesUp), bytes(a.bytesDown)], !a.connected);
    }));
  }

  function render() {
    var rows = state.rows;
    var x = rows.map(function (r) { return r.round; });
    var heldOut = {};
    state.evals.forEach(function (e) { heldOut[e.round] = e; });
    setData('loss', [x, rows.map(function (r) { return r.trainLoss; }), x.map(function (round) { var e = heldOut[round]; return e ? e.loss : null; })]);
    var evals = state.evals.filter(function (e) { return e.accuracy !== null; });
    setData('accuracy', [evals.map(function (e) { return e.round; }), evals.map(function (e) { return e.accuracy; })]);
    setData('agents', [x, rows.map(function (r) { return r.connected; }), rows.map(function (r) { return r.asked; }),
      rows.map(function (r) { return r.answered; }), rows.map(function (r) { return r.dropped; })]);
    setData('bytes', [x, rows.map(function (r) { return r.bytesUp; }), rows.map(function (r) { return r.bytesDown; })]);
    setData('agreement', [x, rows.map(function (r) { return r.signAgreement; }), rows.map(function (r) { return r.scalars.positiveFraction; })]);
    var absent = evals.length === 0 ? evaluationAbsent() : null;
    explain('accuracy', absent && absent.long);
    var heldOutLoss = state.evals.some(function (e) { return e.loss !== null; });
    explain('loss', heldOutLoss ? '' : 'held-out: ' + (absent ? absent.short : 'no loss reported'), 2);
    var agreed = rows.some(function (r) { return r.signAgreement !== null; });
    var seedMode = (state.config || {}).seedMode;
    explain('agreement', rows.length === 0 || agreed ? '' : 'Sign agreement: n/a, every seed was evaluated by one agent' +
      (seedMode === 'distinct' ? ' (distinct seeds)' : '') + ', so there is nothing to agree on; g > 0 is drawn alone.', 1);
    var last = rows[rows.length - 1];
    var h = last && last.scalars.histogram;
    if (h) {
      var width = (h.max - h.min) / h.counts.length;
      var centres = h.counts.map(function (_, i) { return h.counts.length === 1 ? h.min : h.min + (i + 0.5) * width; });
      var pad = h.counts.length === 1 ? Math.max(1e-9, Math.abs(h.min) * 0.1) : 0;
      histRange = [h.min - pad, h.max + pad];
      setData('scalars', [centres, h.counts.slice()]);
      setText('scalars-round', 'round ' + last.round + ' · ' + last.scalars.count + ' values · mean ' + num(last.scalars.mean, 3));
    }
    document.body.setAttribute('data-rounds', String(rows.length));
    var lastEval = evals[evals.length - 1];
    setText('kpi-round', last ? String(last.round) : '–');
    setText('kpi-loss', last ? num(last.trainLoss) : '–');
    setText('kpi-accuracy', lastEval ? pct(lastEval.accuracy) : '–');
    setText('kpi-accuracy-note', lastEval ? (lastEval.round < 0 ? 'before training' : 'after round ' + lastEval.round) : absent.short);
    setText('kpi-round-agents', last ? last.asked + ' / ' + last.answered + ' / ' + last.dropped : '–');
    setText('kpi-agreement', last ? (last.signAgreement === null ? 'n/a' : pct(last.signAgreement)) : '–',
      'over seeds evaluated by two or more agents');
    setText('kpi-agreement-note', last && last.signAgreement === null ? 'one agent per seed' : '');
    var up = 0, down = 0;
    rows.forEach(function (r) { up += r.bytesUp; down += r.bytesDown; });
    setText('kpi-bytes', bytes(up) + ' / ' + bytes(down));
    // Only a run with central DP has a budget (its config's dp); the card stays hidden otherwise.
    var dp = (state.config || {}).dp;
    if (dp && typeof dp === 'object') {
      $('kpi-privacy-card').hidden = false;
      var spent = last && typeof last.privacyEpsilon === 'number' ? last.privacyEpsilon : 0;
      setText('kpi-privacy', num(spent, 3) + (typeof dp.epsilon === 'number' ? ' of ' + num(dp.epsilon, 3) : ''));
      setText('kpi-privacy-note', 'at δ = ' + dp.delta + (typeof dp.noiseMultiplier === 'number' ? ', σ = ' + num(dp.noiseMultiplier, 3) : '') + ', clip ' + dp.clip);
    }
    // Likewise record-level DP (its config's recordDp): ε per agent's data after the last round.
    var rdp = (state.config || {}).recordDp;
    if (rdp && typeof rdp === 'object') {
      $('kpi-record-privacy-card').hidden = false;
      var recordSpent = last && typeof last.recordPrivacyEpsilon === 'number' ? last.recordPrivacyEpsilon : 0;
      setText('kpi-record-privacy', num(recordSpent, 3) + (typeof rdp.epsilon === 'number' ? ' of ' + num(rdp.epsilon, 3) : ''));
      setText('kpi-record-privacy-note', 'at δ = ' + (rdp.delta === undefined ? '1e-5' : rdp.delta) + (typeof rdp.noiseMultiplier === 'number' ? ', σ = ' + num(rdp.noiseMultiplier, 3) : '') + ', clip ' + rdp.clip + (rdp.private ? ', private mode' : ''));
    }
    var fleet = state.fleet;
    if (fleet) {
      setText('kpi-version', String(fleet.version));
      setText('kpi-online', fleet.connected + ' of ' + fleet.known);
      setText('kpi-lag', fleet.lag.p90 + ' / ' + fleet.lag.max);
      setText('kpi-divergent', String(fleet.divergent.length));
      setText('kpi-head', fleet.headHash.slice(0, 16) + '…', fleet.headHash);
      renderTables(fleet);
    }
  }

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; render(); });
  }

  function status(text) { var el = $('status'); el.textContent = text; el.className = 'pill ' + text; }

  function connect() {
    var source = new EventSource('events');
    state.source = source;
    source.addEventListener('open', function () { if (!state.endedAt) status('live'); });
    source.addEventListener('error', function () { if (!state.endedAt) status('reconnecting'); });
    source.addEventListener('snapshot', function (e) {
      var s = JSON.parse(e.data);
      state.rows = s.rounds; state.evals = s.evaluations; state.fleet = s.fleet; state.endedAt = s.endedAt;
      state.config = s.config || {}; state.kind = s.kind;
      if (s.endedAt) status('finished'); else status('live');
      schedule();
    });
    source.addEventListener('round', function (e) {
      var r = JSON.parse(e.data);
      var rows = state.rows;
      if (!rows.length || rows[rows.length - 1].round < r.round) rows.push(r);
      schedule();
    });
    source.addEventListener('evaluation', function (e) {
      var v = JSON.parse(e.data);
      state.evals = state.evals.filter(function (x) { return x.round !== v.round; }).concat([v]).sort(function (a, b) { return a.round - b.round; });
      schedule();
    });
    source.addEventListener('fleet', function (e) { state.fleet = JSON.parse(e.data); schedule(); });
    source.addEventListener('end', function (e) { state.endedAt = JSON.parse(e.data).endedAt; status('finished'); schedule(); });
  }

  createCharts();
  connect();
})();
`;
