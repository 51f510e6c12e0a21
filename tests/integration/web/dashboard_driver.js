// Headless-browser driver of tests/integration/test_dashboard.py.
//
// Responsible for: opening the dashboard in Debian's Chromium (through playwright-core, never a
// downloaded browser) with a fresh profile, waiting until the page shows what the test expects,
// reading back what a person would see (table rows, badges, chart data and drawn pixels,
// selection and alert panels), switching the chart window, saving screenshots, and printing
// one JSON report on stdout. Not responsible for: deciding pass or fail (the pytest test
// asserts on the report) or starting the daemon.
//
// Usage: node dashboard_driver.js CONFIG_JSON
//   {"url": "...", "node_modules": "...", "chromium": "/usr/bin/chromium",
//    "user_data_dir": "...", "screenshot": "...png", "history_screenshot": "...png",
//    "expect": {"servers": ["name", ...], "states": {"name": "state", ...},
//               "min_chart_points": 3},
//    "timeout_ms": 60000,
//    "actions": [{"do": "search", "value": "x"} | {"do": "sort", "value": "delay"} |
//                {"do": "filter_state", "value": "unreachable"} | {"do": "filter_alert", ...} |
//                {"do": "state_count", "value": "falseticker"} | {"do": "next_page"} |
//                {"do": "clear"} | {"do": "pick", "value": "name", "min_points": 2}, ...]}
//   Each action is done through the page's controls as a person would (typing, clicking,
//   choosing), then the driver waits until the daemon's answer is on screen and records
//   readPage() in report.actions.
'use strict';

const config = JSON.parse(process.argv[2]);
// The package lives in the build directory or a test temporary directory, not beside this
// script: resolve it from there.
const {chromium} = require(require.resolve('playwright-core', {paths: [config.node_modules]}));

// Everything the browser may need is on loopback; these switches keep Chromium itself from
// reaching out (component updates, sync, field trials, QUIC probing).
const kChromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--metrics-recording-only',
  '--no-default-browser-check',
];

// Runs in the page: what the dashboard shows right now.
function readPage() {
  const text = (node) => (node ? node.textContent.trim() : null);
  if (!document.getElementById('servers-body')) {
    return {notDashboard: true, body: text(document.body)};
  }
  const rows = [...document.querySelectorAll('#servers-body tr[data-server]')].map((tr) => ({
    server: tr.dataset.server,
    state: tr.dataset.state,
    level: tr.dataset.level || null,
    selected: tr.dataset.selected === 'true',
    badge: text(tr.querySelector('.badge')),
    cells: [...tr.children].map((td) => td.textContent.trim()),
    alerts: [...tr.querySelectorAll('.chip')].map((c) => c.textContent.trim()),
    offsetAlerting: tr.children[3].classList.contains('alerting'),
    badgeColor: getComputedStyle(tr.querySelector('.badge')).color,
  }));
  const dash = window.ntpmonDashboard;
  const paintedLike = (canvas, color) => {
    const img = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const want = [1, 3, 5].map((i) => parseInt(String(color).slice(i, i + 2), 16));
    let n = 0;
    for (let p = 0; p < img.length; p += 4) {
      if (img[p + 3] > 160 && Math.abs(img[p] - want[0]) < 24 && Math.abs(img[p + 1] - want[1]) < 24 &&
          Math.abs(img[p + 2] - want[2]) < 24) n++;
    }
    return n;
  };
  const histInfo = (chart) => {
    if (!chart) return null;
    const canvas = chart.root.querySelector('canvas');
    const counts = chart.data[1] || [];
    return {bars: counts.length, servers: counts.reduce((a, b) => a + (b || 0), 0),
            pixels: canvas ? paintedLike(canvas, typeof chart.series[1].stroke === 'function'
              ? chart.series[1].stroke(chart, 1) : chart.series[1].stroke) : 0};
  };
  const chartInfo = (chart) => {
    if (!chart) return null;
    const series = chart.series.slice(1).map((s, i) => {
      const values = chart.data[i + 1] || [];
      return {label: s.label, stroke: typeof s.stroke === 'function' ? s.stroke(chart, i + 1) : s.stroke,
              points: values.filter((v) => v !== null && v !== undefined).length};
    });
    // Pixels actually painted in each series' colour: proof that uPlot drew the lines, not just
    // that data arrived (lines on top of each other hide the ones below, hence per series).
    const canvas = chart.root.querySelector('canvas');
    if (canvas) for (const s of series) s.pixels = paintedLike(canvas, s.stroke);
    return {x: chart.data[0].length, series,
            width: canvas ? canvas.width : 0, height: canvas ? canvas.height : 0};
  };
  return {
    title: document.title,
    connection: document.getElementById('conn').dataset.state,
    banner: document.getElementById('banner').hidden ? null : text(document.getElementById('banner')),
    rows,
    cards: Object.fromEntries([...document.querySelectorAll('.card')].map((c) => [
      c.id, {value: text(c.querySelector('.value')), sub: text(c.querySelector('.sub')), level: c.dataset.level || null}])),
    selection: {
      selected: text(document.getElementById('sel-selected')),
      majority: text(document.getElementById('sel-majority')),
      truechimers: [...document.querySelectorAll('#sel-truechimers .chip')].map((c) => c.textContent),
      falsetickers: [...document.querySelectorAll('#sel-falsetickers .chip')].map((c) => c.textContent),
    },
    activeAlerts: [...document.querySelectorAll('#alerts-body tr[data-alert]')].map((tr) => ({
      server: tr.dataset.server, alert: tr.dataset.alert})),
    window: dash ? dash.state.window : null,
    chartNote: document.getElementById('chart-note').hidden ? null : text(document.getElementById('chart-note')),
    charts: dash ? {offset: chartInfo(dash.charts.offset), delay: chartInfo(dash.charts.delay)} : null,
    // The fleet view (api/v1/summary): counts, histograms (bars per bucket, the servers they
    // count, pixels painted in the bars' colour), worst offsets and state changes.
    fleet: {
      states: Object.fromEntries([...document.querySelectorAll('#state-counts button[data-state]')].map(
        (b) => [b.dataset.state, Number(b.dataset.count)])),
      alerts: Object.fromEntries([...document.querySelectorAll('#alert-counts button[data-alert]')].map(
        (b) => [b.dataset.alert, Number(b.dataset.count)])),
      histograms: dash ? {offset: histInfo(dash.charts.histOffset), delay: histInfo(dash.charts.histDelay)} : null,
      worst: [...document.querySelectorAll('#worst-body tr[data-server]')].map((tr) => ({
        server: tr.dataset.server, offset: tr.children[2].textContent.trim()})),
      stateChanges: [...document.querySelectorAll('#state-changes-body tr[data-server]')].map((tr) => tr.dataset.server),
    },
    table: {
      domRows: document.querySelectorAll('#servers-body tr').length,
      hint: text(document.getElementById('servers-hint')),
      pageInfo: text(document.getElementById('page-info')),
      pagerHidden: document.getElementById('pager').hidden,
      sorted: [...document.querySelectorAll('#servers th[aria-sort]')].map((th) => `${th.dataset.sort} ${th.getAttribute('aria-sort')}`),
      charted: [...document.querySelectorAll('#servers-body tr[data-charted="true"]')].map((tr) => tr.dataset.server),
    },
    firstRenderMark: performance.getEntriesByName('ntpmon-first-render').length,
  };
}

// Runs in the page: true once every expected server shows its expected state and both charts
// have enough points in some series.
function pageReady(expect) {
  const rows = new Map([...document.querySelectorAll('#servers-body tr[data-server]')]
    .map((tr) => [tr.dataset.server, tr.dataset.state]));
  for (const name of expect.servers || []) {
    if (!rows.has(name)) return false;
  }
  for (const [name, st] of Object.entries(expect.states || {})) {
    if (rows.get(name) !== st) return false;
  }
  const dash = window.ntpmonDashboard;
  // The summary and the first table page are drawn (the page's first-render mark).
  if (!performance.getEntriesByName('ntpmon-first-render').length) return false;
  if (expect.charts === false) return true;
  if (!dash || !dash.charts.offset || !dash.charts.delay) return false;
  const enough = (chart) => chart.data.slice(1).some(
    (vals) => vals.filter((v) => v !== null && v !== undefined).length >= (expect.min_chart_points || 1));
  return enough(dash.charts.offset) && enough(dash.charts.delay);
}

// Does one action of config.actions through the page's own controls.
async function act(page, action, timeoutMs) {
  const before = await page.evaluate(() => window.ntpmonDashboard.state.table.generation);
  switch (action.do) {
    case 'search': await page.fill('#filter-q', action.value); break;
    case 'sort': await page.click(`#servers th[data-sort="${action.value}"]`); break;
    case 'filter_state': await page.selectOption('#filter-state', action.value); break;
    case 'filter_alert': await page.selectOption('#filter-alert', action.value); break;
    case 'state_count': await page.click(`#state-counts button[data-state="${action.value}"]`); break;
    case 'next_page': await page.click('#page-next'); break;
    case 'clear': await page.click('#filter-clear'); break;
    case 'pick': await page.click(`#servers-body tr[data-server="${action.value}"] td:nth-child(2)`); break;
    default: throw new Error(`unknown action ${action.do}`);
  }
  if (action.do === 'pick') {
    // Charted: a series of that name on both charts with enough points.
    await page.waitForFunction(([name, min]) => {
      const c = window.ntpmonDashboard.charts;
      const has = (chart) => chart && chart.series.some((s, i) => i > 0 && (s.label === name || s.label.startsWith(name + ' (')) &&
        (chart.data[i] || []).filter((v) => v !== null && v !== undefined).length >= min);
      return has(c.offset) && has(c.delay);
    }, [action.value, action.min_points || 1], {timeout: timeoutMs, polling: 100});
  } else {
    // The page asked the daemon again (a new table generation) and drew its answer.
    await page.waitForFunction((gen) => {
      const st = window.ntpmonDashboard.state;
      return st.table.generation > gen && st.pageGeneration === st.table.generation && !st.polling;
    }, before, {timeout: timeoutMs, polling: 50});
  }
  return Object.assign({action}, await page.evaluate(readPage));
}

async function main() {
  const report = {consoleErrors: [], pageErrors: [], failedRequests: [], badResponses: [], apiRequests: []};
  const context = await chromium.launchPersistentContext(config.user_data_dir, {
    executablePath: config.chromium || '/usr/bin/chromium',
    headless: true,
    args: kChromiumArgs,
    viewport: {width: 1440, height: 900},
    deviceScaleFactor: 1,
    timezoneId: 'UTC',
    locale: 'en-GB',
  });
  const timeoutMs = config.timeout_ms || 60000;
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => report.pageErrors.push(String(e)));
    page.on('requestfailed', (r) => report.failedRequests.push(`${r.url()} ${r.failure() && r.failure().errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) report.badResponses.push(`${r.status()} ${r.url()}`); });
    // Every API request the page made (path and query), in order: what one refresh costs.
    report.apiRequests = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.includes('/api/v1/')) report.apiRequests.push(u.pathname + u.search);
    });

    const started = Date.now();
    await page.goto(config.url, {waitUntil: 'load', timeout: timeoutMs});
    try {
      await page.waitForFunction(pageReady, config.expect || {}, {timeout: timeoutMs, polling: 250});
      report.ready = true;
    } catch (e) {
      report.ready = false;
      report.readyError = String(e.message || e).split('\n')[0];
    }
    report.readyAfterMs = Date.now() - started;
    // One more poll so the charts include the latest sample and relative times settle.
    await page.waitForTimeout(2200);
    report.live = await page.evaluate(readPage);
    await page.screenshot({path: config.screenshot, fullPage: true});

    report.actions = [];
    for (const action of config.actions || []) {
      try {
        const t0 = Date.now();
        report.actions.push(Object.assign(await act(page, action, 15000), {ms: Date.now() - t0}));
      } catch (e) {
        report.actions.push({action, error: String(e.message || e).split('\n')[0]});
        break;
      }
    }
    if (config.actions_screenshot) await page.screenshot({path: config.actions_screenshot, fullPage: true});

    if (config.history_screenshot) {
      await page.click('#window-buttons button[data-window="1h"]');
      try {
        await page.waitForFunction(() => {
          const d = window.ntpmonDashboard;
          return d.state.history.window === '1h' && !d.state.history.loading;
        }, null, {timeout: 15000, polling: 250});
      } catch (e) {
        report.historyError = String(e.message || e).split('\n')[0];
      }
      await page.waitForTimeout(300);
      report.history = await page.evaluate(readPage);
      await page.screenshot({path: config.history_screenshot, fullPage: true});
    }
  } finally {
    await context.close();
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e) => {
  process.stderr.write(`dashboard_driver: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
