#!/usr/bin/env node
// How the built-in dashboard holds up in a real browser against a daemon of any size.
//
// Responsible for: opening the dashboard in Debian's Chromium (playwright-core from the build
// directory's node_modules, never a downloaded browser; a fresh profile; loopback only), keeping
// it open for S seconds and printing ONE JSON object on stdout with what a person would feel:
//   first_render_ms      navigation start to the page's performance mark 'ntpmon-first-render'
//                        (set by web/app.js once the summary and the first table page are drawn);
//                        dom_content_loaded_ms beside it (the page and its scripts loaded)
//   roundtrip_ms         {max, p99, samples}: page.evaluate of a trivial function from Node,
//                        once per second: how long the page's main thread makes a caller wait
//   js_heap_mb           {max, final}: JSHeapUsedSize from CDP Performance.getMetrics
//   crashed              whether the renderer crashed (page 'crash' event)
//   bytes_per_refresh    {mean, max, cycles}: encodedDataLength of every api/v1/ response
//                        (CDP Network events) per refresh cycle; a cycle starts at each request
//                        of api/v1/summary, which the page asks once per refresh; decoded_mean
//                        is the same after content decoding (gzip)
//   dom_rows             {tr, table_rows}: <tr> elements in the document, and rows of the
//                        server table, at the end
//   long_tasks           {count, max_ms, total_ms}: the page's long tasks (PerformanceObserver
//                        'longtask', over 50 ms), from the start and (measured) during the S
//                        seconds: a slow round trip without a long task is the machine, not
//                        the page
// Not responsible for: starting daemons (bench/fleet_scale.py does), or judging the figures.
//
// Usage: node bench/dashboard_scale.js --url URL --seconds S --node-modules DIR
//                                      [--chromium /usr/bin/chromium] [--refresh-s 2]
//                                      [--timeout-s 60] [--screenshot FILE.png]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
  const out = {chromium: '/usr/bin/chromium', refreshS: 2, timeoutS: 60, screenshot: null};
  const names = {'--url': 'url', '--seconds': 'seconds', '--node-modules': 'nodeModules',
                 '--chromium': 'chromium', '--refresh-s': 'refreshS', '--timeout-s': 'timeoutS',
                 '--screenshot': 'screenshot'};
  for (let i = 0; i < argv.length; i++) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) usage(`unknown or incomplete argument: ${argv[i]}`);
    out[key] = argv[++i];
  }
  for (const k of ['seconds', 'refreshS', 'timeoutS']) out[k] = Number(out[k]);
  if (!out.url || !out.nodeModules || !(out.seconds > 0)) usage('--url, --seconds and --node-modules are required');
  const host = new URL(out.url).hostname;
  if (!/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(host)) usage(`loopback URLs only, not ${host}`);
  return out;
}

function usage(message) {
  process.stderr.write(`dashboard_scale: ${message}\n` +
    'usage: node bench/dashboard_scale.js --url URL --seconds S --node-modules DIR ' +
    '[--chromium PATH] [--refresh-s 2] [--timeout-s 60] [--screenshot FILE]\n');
  process.exit(2);
}

// Everything the browser needs is on loopback; these switches keep Chromium itself from reaching
// out (component updates, sync, field trials, QUIC probing). Same set as the dashboard test.
const kChromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--metrics-recording-only',
  '--no-default-browser-check',
];

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

const round1 = (v) => (v === null || v === undefined ? null : Math.round(v * 10) / 10);

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const {chromium} = require(require.resolve('playwright-core', {paths: [args.nodeModules]}));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ntpmon-dash-bench-'));
  const result = {
    url: args.url, seconds: args.seconds, first_render_ms: null,
    roundtrip_ms: {max: null, p99: null, samples: 0}, js_heap_mb: {max: null, final: null},
    crashed: false, bytes_per_refresh: {mean: null, max: null, cycles: 0},
    dom_rows: {tr: null, table_rows: null}, page_errors: [], errors: [],
  };
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium, headless: true, args: kChromiumArgs,
    viewport: {width: 1440, height: 900}, deviceScaleFactor: 1, timezoneId: 'UTC', locale: 'en-GB',
  });
  try {
    await measure(context, args, result);
  } catch (e) {
    result.errors.push(String(e.message || e).split('\n')[0]);
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, {recursive: true, force: true});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  return result.crashed || result.first_render_ms === null ? 1 : 0;
}

async function measure(context, args, result) {
  const page = context.pages()[0] || (await context.newPage());
  page.on('crash', () => { result.crashed = true; });
  page.on('pageerror', (e) => { if (result.page_errors.length < 10) result.page_errors.push(String(e)); });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  await cdp.send('Network.enable');

  // Network accounting: request id -> {api, cycle}; a cycle starts at each summary request.
  const requests = new Map();
  let measuring = false;
  let cycle = -1;
  const cycleBytes = [];
  const cycleDecoded = [];
  cdp.on('Network.requestWillBeSent', (e) => {
    const url = e.request.url;
    if (!url.includes('/api/v1/')) return;
    if (measuring && /\/api\/v1\/summary(\?|$)/.test(url)) { cycle++; cycleBytes.push(0); cycleDecoded.push(0); }
    requests.set(e.requestId, {cycle: measuring ? cycle : -1});
  });
  cdp.on('Network.dataReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r && r.cycle >= 0) cycleDecoded[r.cycle] += e.dataLength;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = requests.get(e.requestId);
    if (!r) return;
    requests.delete(e.requestId);
    if (r.cycle >= 0) cycleBytes[r.cycle] += e.encodedDataLength;
  });

  const heapSamples = [];
  const heapMb = async () => {
    const {metrics} = await cdp.send('Performance.getMetrics');
    const m = metrics.find((x) => x.name === 'JSHeapUsedSize');
    return m ? m.value / (1024 * 1024) : null;
  };

  // The page's own long tasks (> 50 ms on its main thread), to tell a busy page from a busy
  // machine when a round trip is slow.
  await page.addInitScript(() => {
    window.__ntpmonLongTasks = {count: 0, max_ms: 0, total_ms: 0, measured: {count: 0, max_ms: 0, total_ms: 0}};
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          const t = window.__ntpmonLongTasks;
          t.count++; t.total_ms += e.duration; t.max_ms = Math.max(t.max_ms, e.duration);
          const m = t.measured;
          m.count++; m.total_ms += e.duration; m.max_ms = Math.max(m.max_ms, e.duration);
        }
      }).observe({type: 'longtask', buffered: true});
    } catch (e) { /* no longtask support: the figures stay 0 */ }
  });
  await page.goto(args.url, {waitUntil: 'load', timeout: args.timeoutS * 1000});
  try {
    await page.waitForFunction(() => performance.getEntriesByName('ntpmon-first-render').length > 0,
                               null, {timeout: args.timeoutS * 1000, polling: 50});
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return {mark: performance.getEntriesByName('ntpmon-first-render')[0].startTime,
              dcl: nav ? nav.domContentLoadedEventEnd : null};
    });
    result.first_render_ms = round1(t.mark);
    result.dom_content_loaded_ms = round1(t.dcl);
  } catch (e) {
    result.errors.push(`no first render within ${args.timeoutS} s: ${String(e.message || e).split('\n')[0]}`);
  }

  // Measurement: once per second, a round trip through the page's main thread and a heap
  // sample; the refresh cycles counted meanwhile are the page's own (every refresh_s).
  measuring = true;
  await page.evaluate(() => { window.__ntpmonLongTasks.measured = {count: 0, max_ms: 0, total_ms: 0}; });
  const roundtrips = [];
  const measureStart = Date.now();
  let worstAt = null;
  const endAt = measureStart + args.seconds * 1000;
  while (Date.now() < endAt && !result.crashed) {
    const tickStart = Date.now();
    try {
      const t0 = process.hrtime.bigint();
      await page.evaluate(() => 1);
      roundtrips.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (roundtrips[roundtrips.length - 1] === Math.max(...roundtrips)) worstAt = (Date.now() - measureStart) / 1000;
      const h = await heapMb();
      if (h !== null) heapSamples.push(h);
    } catch (e) {
      if (!result.crashed) result.errors.push(String(e.message || e).split('\n')[0]);
      break;
    }
    const wait = 1000 - (Date.now() - tickStart);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  measuring = false;
  // Let the responses of the last cycle arrive, then count only complete cycles (the last
  // one may have been cut by the end of the measurement).
  await new Promise((r) => setTimeout(r, 500));
  const complete = cycleBytes.slice(0, Math.max(0, cycleBytes.length - 1));
  if (complete.length) {
    result.bytes_per_refresh = {
      mean: Math.round(complete.reduce((a, b) => a + b, 0) / complete.length),
      max: Math.max(...complete), cycles: complete.length,
      expected_cycles: Math.floor(args.seconds / args.refreshS),
      // The same after content decoding (the API answers gzip when the browser asks).
      decoded_mean: Math.round(cycleDecoded.slice(0, complete.length).reduce((a, b) => a + b, 0) / complete.length),
    };
  }
  const sorted = roundtrips.slice().sort((a, b) => a - b);
  result.roundtrip_ms = {max: round1(sorted[sorted.length - 1] ?? null),
                         p99: round1(percentile(sorted, 99)), p50: round1(percentile(sorted, 50)),
                         samples: sorted.length, max_at_s: round1(worstAt)};
  result.js_heap_mb = {max: round1(heapSamples.length ? Math.max(...heapSamples) : null),
                       final: round1(heapSamples.length ? heapSamples[heapSamples.length - 1] : null)};
  if (!result.crashed) {
    try {
      const lt = await page.evaluate(() => window.__ntpmonLongTasks);
      result.long_tasks = {count: lt.count, max_ms: round1(lt.max_ms), total_ms: round1(lt.total_ms),
                           measured: {count: lt.measured.count, max_ms: round1(lt.measured.max_ms),
                                      total_ms: round1(lt.measured.total_ms)}};
      result.dom_rows = await page.evaluate(() => ({
        tr: document.getElementsByTagName('tr').length,
        table_rows: document.querySelectorAll('#servers-body tr[data-server]').length,
      }));
      if (args.screenshot) await page.screenshot({path: args.screenshot, fullPage: true});
    } catch (e) {
      result.errors.push(String(e.message || e).split('\n')[0]);
    }
  }
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`dashboard_scale: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
