// ntp-monitor dashboard.
//
// Responsible for: polling the daemon's read-only JSON API (docs/API.md) every 2 s, drawing the
// server table, the selection and alert panels, and offset/delay charts with uPlot; keeping a
// client-side ring of live points for the "live" window and fetching downsampled history for
// the longer windows. Not responsible for: any decision (states, selection and alerts come
// from the daemon as they are), or talking to anything but the API of the origin it was
// loaded from.
//
// Plain browser JavaScript, no build step: uPlot is the only library (loaded before this file).
// Everything received is shown with textContent, never parsed as HTML: server names, refids,
// error and alert messages come from configuration and from the network.
(function () {
  'use strict';

  const kPollIntervalMs = 2000;
  // A request slower than this is abandoned and counts as a failed poll.
  const kRequestTimeoutMs = 5000;
  // Without a successful poll for this long the data on screen is marked stale.
  const kStaleAfterMs = 10000;
  // The live window shows the last 15 minutes; the ring holds 30 min at a 1 s poll so that a
  // fast poll never pushes visible points out.
  const kLiveSpanS = 900;
  const kLiveRingSize = 1800;
  // Longer windows come from the history store. Steps keep each series at 360-720 points, which
  // uPlot draws in a few milliseconds; refreshes are rare because a bucket changes slowly.
  const kWindows = {
    '1h': {span_s: 3600, step_s: 5, refresh_ms: 15000},
    '24h': {span_s: 86400, step_s: 120, refresh_ms: 60000},
    '7d': {span_s: 7 * 86400, step_s: 900, refresh_ms: 300000},
  };
  // At most this many history requests in flight (one per server and refresh).
  const kHistoryConcurrency = 4;
  const kChartHeightPx = 300;
  // The "Log" offset axis is asinh: linear within ±10 µs (loopback noise), logarithmic beyond,
  // so a falseticker at +500 ms and servers within microseconds fit on one chart.
  const kAsinhLinearS = 1e-5;
  // Colour-blind-friendly enough on a dark background; red is left out on purpose so that red
  // only ever means "alert".
  const kPalette = ['#4e9cf5', '#56c28a', '#e5c04b', '#b07be8', '#4fc3d9', '#f08c4a',
                    '#e36fb1', '#9bd35a', '#8f9bff', '#d9a066', '#6fd6c4', '#c7c7c7'];
  const kMinus = '\u2212';

  const kStateText = {
    selected: 'selected', candidate: 'candidate', falseticker: 'falseticker',
    unreachable: 'unreachable', unsynchronized: 'unsynchronized', kod: 'kiss-o\'-death',
    pending: 'pending', auth_failed: 'auth failed',
  };
  const kStateHelp = {
    selected: 'The source the selection algorithm currently follows',
    candidate: 'A truechimer that survived selection but is not the one followed',
    falseticker: 'Its time interval does not overlap the majority: it tells the wrong time',
    unreachable: 'No valid reply to the last polls',
    unsynchronized: 'Answers, but says it is not synchronized (leap 3 or stratum 0/16)',
    kod: 'The server sent a kiss-o\'-death (RATE, DENY, ...)',
    pending: 'Not enough samples yet',
    auth_failed: 'Authentication fails: NTS-KE refused (certificate, TLS) or no reply passes the MAC / NTS check',
  };
  // Alerts that make a row red; the other kinds are warnings unless the API gives a severity.
  const kCriticalAlerts = new Set(['unreachable', 'falseticker', 'kod', 'no_majority',
                                   'unsynchronized', 'auth', 'nts']);

  const state = {
    servers: [],
    serversAtMs: null,  // the daemon's clock at /servers time (generated_at), ms
    selection: null,
    alerts: null,
    lastSuccessMs: 0,
    lastError: null,
    window: 'live',
    scale: 'linear',
    live: new Map(),    // series label -> ring of {t, offset, delay}
    colors: new Map(),  // series label -> colour, stable for the page's life
    prefilled: false,
    history: {window: null, fetchedMs: 0, loading: false, series: new Map(), error: null},
    pollTimer: null,
  };
  const charts = {offset: null, delay: null, signature: '', dataKey: null};

  // Read by tests/integration/web/dashboard_driver.js and handy from the devtools console.
  window.ntpmonDashboard = {state, charts};

  // ---- formatting ------------------------------------------------------------------------

  // Seconds with an SI prefix chosen by magnitude and 3 significant digits; offsets get a sign
  // because "+" (server ahead) and "−" (server behind) are what one reads first.
  function fmtSeconds(value_s, signed, compact) {
    if (value_s === null || value_s === undefined || !Number.isFinite(value_s)) return '—';
    const a = Math.abs(value_s);
    let v, unit;
    if (a === 0) return '0 s';
    if (a >= 1) { v = value_s; unit = 's'; }
    else if (a >= 1e-3) { v = value_s * 1e3; unit = 'ms'; }
    else if (a >= 1e-6) { v = value_s * 1e6; unit = 'µs'; }
    else { v = value_s * 1e9; unit = 'ns'; }
    const av = Math.abs(v);
    const digits = av >= 100 ? 0 : av >= 10 ? 1 : 2;
    // compact (axis labels): "10 µs" rather than "10.0 µs".
    const mag = compact ? String(Number(Math.abs(v).toFixed(digits))) : Math.abs(v).toFixed(digits);
    let text = mag + ' ' + unit;
    if (v < 0) text = kMinus + text;
    else if (signed && v > 0) text = '+' + text;
    return text;
  }

  // One unit for a whole axis (linear scale) so that ticks line up: "0.5 ms, 1.0 ms, ...".
  function axisUnit(splits) {
    let max = 0;
    for (const s of splits) if (s !== null && Number.isFinite(s)) max = Math.max(max, Math.abs(s));
    if (max >= 1) return [1, 's'];
    if (max >= 1e-3) return [1e3, 'ms'];
    if (max >= 1e-6) return [1e6, 'µs'];
    return [1e9, 'ns'];
  }

  function axisValues(splits, perValue) {
    // null: a split the axis filter dropped, which must stay unlabelled.
    if (perValue) return splits.map((s) => (s === null ? '' : s === 0 ? '0' : fmtSeconds(s, false, true)));
    const [scale, unit] = axisUnit(splits);
    let step = Infinity;
    for (let i = 1; i < splits.length; i++) step = Math.min(step, Math.abs(splits[i] - splits[i - 1]));
    const scaledStep = step * scale;
    const digits = !Number.isFinite(scaledStep) || scaledStep >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(scaledStep)));
    return splits.map((s) => {
      if (s === null) return '';
      if (s === 0) return '0';
      const v = s * scale;
      return (v < 0 ? kMinus : '') + Math.abs(v).toFixed(digits) + ' ' + unit;
    });
  }

  // Time axis in UTC, 24-hour: the tick interval picks the precision, and the date is added
  // under the first tick and wherever the day changes.
  function timeAxisValues(u, splits, axisIdx, space, incr) {
    let prevDay = null;
    return splits.map((ts) => {
      if (ts === null) return '';
      const d = new Date(ts * 1000);
      const day = pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());
      const hm = pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
      if (incr >= 86400) return day;
      const text = incr < 60 ? hm + ':' + pad2(d.getUTCSeconds()) : hm;
      const withDay = day !== prevDay ? text + '\n' + day : text;
      prevDay = day;
      return withDay;
    });
  }

  function isDecadeTick(v) {
    if (v === 0) return true;
    if (v === null || Math.abs(v) < kAsinhLinearS * 0.99) return false;
    const e = Math.log10(Math.abs(v));
    return Math.abs(e - Math.round(e)) < 1e-6;
  }

  function fmtAge(seconds) {
    if (seconds === null || !Number.isFinite(seconds)) return '—';
    const s = Math.max(0, seconds);
    if (s < 1) return 'now';
    if (s < 90) return Math.round(s) + ' s ago';
    if (s < 90 * 60) return Math.round(s / 60) + ' min ago';
    if (s < 36 * 3600) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function fmtInterval(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
    if (seconds < 120) return (Number.isInteger(seconds) ? seconds : seconds.toFixed(1)) + ' s';
    if (seconds < 7200) return Math.round(seconds / 60) + ' min';
    return Math.round(seconds / 3600) + ' h';
  }

  function pad2(n) { return String(n).padStart(2, '0'); }

  // "HH:MM:SS" for today (UTC), "MM-DD HH:MM" otherwise. NTP people read UTC.
  function fmtUtc(ms) {
    if (ms === null || !Number.isFinite(ms)) return '—';
    const d = new Date(ms);
    const now = new Date(nowMs());
    const time = pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
    if (d.toISOString().slice(0, 10) === now.toISOString().slice(0, 10)) {
      return time + ':' + pad2(d.getUTCSeconds());
    }
    return pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate()) + ' ' + time;
  }

  // API times come as RFC 3339 strings or Unix seconds; returns ms or null.
  function toMs(value) {
    if (value === null || value === undefined) return null;
    if (typeof value === 'number') return value * 1000;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms;
  }

  // "Now" on the daemon's clock when known: ages are then right even if this browser's clock
  // is off, which on a page about clocks is worth the trouble.
  function nowMs() {
    return state.serversAtMs !== null ? state.serversAtMs + (Date.now() - state.lastSuccessMs)
                                      : Date.now();
  }

  // Time of a server's latest accepted sample in Unix seconds, or null.
  function sampleUnix(s) {
    if (typeof s.last_sample_unix === 'number') return s.last_sample_unix;
    const ms = toMs(s.last_sample_at ?? s.last_sample);
    return ms === null ? null : ms / 1000;
  }

  // Selection changes newest first, whatever order the API lists them in.
  function selectionChanges(sel) {
    const list = sel && Array.isArray(sel.recent_changes) ? sel.recent_changes.slice() : [];
    return list.sort((a, b) => (toMs(b.at) ?? 0) - (toMs(a.at) ?? 0));
  }

  function lastFailover(sel) {
    if (!sel) return null;
    if (sel.last_failover) return sel.last_failover;
    // Without last_failover: the newest change away from a previously selected source.
    return selectionChanges(sel).find((c) => c.from) || null;
  }

  function hostPort(s) {
    if (!s.address) return s.host || '';
    const host = s.address.includes(':') ? '[' + s.address + ']' : s.address;
    return s.port ? host + ':' + s.port : host;
  }

  // ---- DOM helpers -----------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'style') node.style.cssText = v;
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  const $ = (id) => document.getElementById(id);

  function setText(id, text) { $(id).textContent = text; }

  function emptyRow(colspan, text) {
    return el('tr', {class: 'empty'}, el('td', {colspan}, text));
  }

  // ---- alerts helpers --------------------------------------------------------------------

  function alertKind(a) { return a.alert || a.kind || a.name || 'alert'; }

  function alertSeverity(a) {
    if (a.severity) return a.severity;
    return kCriticalAlerts.has(alertKind(a)) ? 'critical' : 'warning';
  }

  function activeAlerts() {
    if (state.alerts && Array.isArray(state.alerts.active)) return state.alerts.active;
    // Older daemons without /alerts: gather them from the server rows.
    const out = [];
    for (const s of state.servers) {
      for (const a of s.alerts || []) out.push(Object.assign({server: s.name, address: s.address}, a));
    }
    return out;
  }

  // ---- series identity -------------------------------------------------------------------

  // A chart series per configured name; a pool whose addresses share one name gets one
  // series per address so that lines do not interleave.
  function seriesLabels(servers) {
    const count = new Map();
    for (const s of servers) count.set(s.name, (count.get(s.name) || 0) + 1);
    return servers.map((s) => (count.get(s.name) > 1 && s.address ? s.name + ' ' + s.address : s.name));
  }

  function colorFor(label) {
    if (!state.colors.has(label)) state.colors.set(label, kPalette[state.colors.size % kPalette.length]);
    return state.colors.get(label);
  }

  // ---- fetching --------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function fetchJson(path) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), kRequestTimeoutMs);
    try {
      const response = await fetch(path, {cache: 'no-store', signal: controller.signal,
                                          headers: {Accept: 'application/json'}});
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      if (!response.ok) {
        const reason = body && body.error ? body.error : response.statusText;
        throw new ApiError(response.status, `${path}: HTTP ${response.status} ${reason}`);
      }
      if (body === null) throw new ApiError(response.status, `${path}: not JSON`);
      return body;
    } catch (e) {
      if (e.name === 'AbortError') throw new ApiError(0, `${path}: no answer within ${kRequestTimeoutMs / 1000} s`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // /selection and /alerts are optional: a daemon without one answers 404, and the page then
  // asks again only once a minute instead of every poll (the table works without them).
  const kOptionalRetryMs = 60000;
  const optionalRetryAt = {selection: 0, alerts: 0};

  async function fetchOptional(name) {
    if (Date.now() < optionalRetryAt[name]) throw new ApiError(404, `api/v1/${name}: not served`);
    try {
      return await fetchJson('api/v1/' + name);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) optionalRetryAt[name] = Date.now() + kOptionalRetryMs;
      throw e;
    }
  }

  async function poll() {
    state.pollTimer = null;
    if (document.hidden) return;  // resumed by the visibilitychange handler
    const [servers, selection, alerts] = await Promise.allSettled([
      fetchJson('api/v1/servers'), fetchOptional('selection'), fetchOptional('alerts')]);
    if (servers.status === 'fulfilled') {
      state.lastSuccessMs = Date.now();
      state.lastError = null;
      state.servers = Array.isArray(servers.value.servers) ? servers.value.servers : [];
      state.serversAtMs = toMs(servers.value.generated_at ?? servers.value.generated);
      state.selection = selection.status === 'fulfilled' ? selection.value : null;
      state.alerts = alerts.status === 'fulfilled' ? alerts.value : null;
      recordLive();
      if (!state.prefilled) prefillLive();
    } else {
      state.lastError = servers.reason && servers.reason.message ? servers.reason.message : String(servers.reason);
    }
    try {
      render();
    } finally {
      schedulePoll(kPollIntervalMs);
    }
  }

  function schedulePoll(delayMs) {
    if (state.pollTimer !== null) clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(poll, delayMs);
  }

  // ---- live ring -------------------------------------------------------------------------

  function ringFor(label) {
    let ring = state.live.get(label);
    if (!ring) {
      ring = {t: [], offset: [], delay: [], lastSample: null, inGap: false};
      state.live.set(label, ring);
    }
    return ring;
  }

  function pushPoint(ring, t, offset, delay) {
    // Keep time order: history prefill can arrive after the first live points.
    if (ring.t.length && t <= ring.t[ring.t.length - 1]) return;
    ring.t.push(t);
    ring.offset.push(offset);
    ring.delay.push(delay);
    if (ring.t.length > kLiveRingSize) {
      ring.t.shift();
      ring.offset.shift();
      ring.delay.shift();
    }
  }

  // One point per new sample (last_sample_unix changes), not per poll of this page: a server
  // polled every 64 s gives one point per 64 s. An unreachable server gets one null, which
  // uPlot draws as a gap.
  function recordLive() {
    const labels = seriesLabels(state.servers);
    const now_s = nowMs() / 1000;
    state.servers.forEach((s, i) => {
      const ring = ringFor(labels[i]);
      const t = sampleUnix(s);
      if (t !== null && t !== ring.lastSample && s.offset !== null && s.offset !== undefined) {
        ring.lastSample = t;
        ring.inGap = false;
        pushPoint(ring, t, s.offset, s.delay ?? null);
      } else if ((s.state === 'unreachable' || s.ok === false) && !ring.inGap && ring.t.length) {
        ring.inGap = true;
        pushPoint(ring, now_s, null, null);
      }
    });
  }

  // The live window starts with the last 15 minutes from the history store, so a freshly
  // opened page is not empty. Without history (503) the ring simply fills from now on.
  async function prefillLive() {
    state.prefilled = true;
    const until_s = Math.floor(nowMs() / 1000);
    const labels = seriesLabels(state.servers);
    const jobs = [];
    const seen = new Set();
    state.servers.forEach((s, i) => {
      if (labels[i] !== s.name || seen.has(s.name)) return;  // pools: live points only
      seen.add(s.name);
      jobs.push(async () => {
        try {
          const h = await fetchJson(historyPath(s.name, until_s - kLiveSpanS, until_s, 1));
          const ring = ringFor(s.name);
          const older = {t: [], offset: [], delay: []};
          const first = ring.t.length ? ring.t[0] : Infinity;
          for (const p of h.points || []) {
            if (p.t < first) { older.t.push(p.t); older.offset.push(p.offset ?? null); older.delay.push(p.delay ?? null); }
          }
          ring.t = older.t.concat(ring.t);
          ring.offset = older.offset.concat(ring.offset);
          ring.delay = older.delay.concat(ring.delay);
        } catch (e) {
          // History off or not yet there: the live ring fills by itself.
        }
      });
    });
    await runLimited(jobs, kHistoryConcurrency);
    if (state.window === 'live') renderCharts();
  }

  // ---- history ---------------------------------------------------------------------------

  function historyPath(name, since_s, until_s, step_s) {
    return `api/v1/servers/${encodeURIComponent(name)}/history?since=${since_s}&until=${until_s}&step=${step_s}`;
  }

  async function runLimited(jobs, limit) {
    let next = 0;
    const worker = async () => { while (next < jobs.length) await jobs[next++](); };
    await Promise.all(Array.from({length: Math.min(limit, jobs.length)}, worker));
  }

  async function loadHistory(win) {
    const w = kWindows[win];
    const h = state.history;
    if (h.loading) return;
    h.loading = true;
    const until_s = Math.floor(nowMs() / 1000);
    const since_s = until_s - w.span_s;
    const names = [...new Set(state.servers.map((s) => s.name))];
    const series = new Map();
    let error = null;
    let notFound = 0;
    await runLimited(names.map((name) => async () => {
      try {
        const body = await fetchJson(historyPath(name, since_s, until_s, w.step_s));
        const step_s = body.step || w.step_s;
        const out = {t: [], offset: [], delay: []};
        let prev = null;
        for (const p of body.points || []) {
          // A missing bucket run longer than 2.5 steps is a real outage: break the line.
          if (prev !== null && p.t - prev > 2.5 * step_s) {
            out.t.push(prev + step_s); out.offset.push(null); out.delay.push(null);
          }
          out.t.push(p.t); out.offset.push(p.offset ?? null); out.delay.push(p.delay ?? null);
          prev = p.t;
        }
        series.set(name, out);
      } catch (e) {
        // 404 for one name: a server added since the last poll; for every name: no history API.
        if (e instanceof ApiError && e.status === 404) notFound++;
        else error = e.message;
      }
    }), kHistoryConcurrency);
    h.loading = false;
    if (state.window !== win) return;  // the user moved on meanwhile
    h.window = win;
    h.fetchedMs = Date.now();
    h.series = series;
    if (series.size === 0 && !error && names.length && notFound === names.length) {
      error = 'this daemon does not serve api/v1/servers/{name}/history';
    }
    h.error = series.size === 0 ? error : null;
    h.range = [since_s, until_s];
    renderCharts();
  }

  // ---- charts ----------------------------------------------------------------------------

  function chartSeries() {
    const labels = seriesLabels(state.servers);
    const defs = [];
    const seen = new Set();
    state.servers.forEach((s, i) => {
      const label = labels[i];
      if (seen.has(label)) return;
      seen.add(label);
      defs.push({label, color: colorFor(label), falseticker: s.state === 'falseticker'});
    });
    return defs;
  }

  function chartTables(defs, metric) {
    const tables = [];
    const win = state.window;
    for (const d of defs) {
      let src;
      if (win === 'live') src = state.live.get(d.label);
      else src = state.history.series.get(d.label);
      if (!src || !src.t.length) { tables.push([[], []]); continue; }
      if (win === 'live') {
        const from_s = nowMs() / 1000 - kLiveSpanS;
        let i = 0;
        while (i < src.t.length && src.t[i] < from_s) i++;
        tables.push([src.t.slice(i), src[metric].slice(i)]);
      } else {
        tables.push([src.t, src[metric]]);
      }
    }
    return tables;
  }

  function joinTables(tables) {
    const nonEmpty = tables.filter((t) => t[0].length);
    if (!nonEmpty.length) return [[], ...tables.map(() => [])];
    // uPlot.join needs every table non-empty for alignment; empty series become all-undefined.
    const joined = uPlot.join(tables.map((t) => (t[0].length ? t : [[nonEmpty[0][0][0]], [undefined]])));
    return joined;
  }

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function makeChart(container, metric, defs) {
    const muted = cssVar('--muted');
    const grid = cssVar('--border-soft');
    const asinh = metric === 'offset' && state.scale === 'asinh';
    const yScale = metric === 'delay'
      ? {range: (u, min, max) => (max === null ? [0, 1e-3] : [0, max > 0 ? max * 1.15 : 1e-3])}
      : asinh ? {distr: 4, asinh: kAsinhLinearS} : {};
    // On the log axis only 0 and whole decades get a label, tick and grid line: the 2..9
    // multiples uPlot proposes would draw a line every few pixels.
    const yAxis = {stroke: muted, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1},
                   size: 74, values: (u, splits) => axisValues(splits, asinh)};
    if (asinh) {
      const decades = (u, splits) => splits.map((v) => (isDecadeTick(v) ? v : null));
      yAxis.filter = yAxis.grid.filter = yAxis.ticks.filter = decades;
    }
    const opts = {
      width: Math.max(300, container.clientWidth),
      height: kChartHeightPx,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      cursor: {sync: {key: 'ntpmon'}, drag: {x: true, y: false}, points: {size: 6}},
      legend: {live: true},
      scales: {x: {time: true}, y: yScale},
      axes: [
        {stroke: muted, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1},
         values: timeAxisValues},
        yAxis,
      ],
      series: [
        {label: 'UTC', value: (u, ts, seriesIdx, idx) => (idx === null || idx === undefined || ts === null
          ? 'latest' : fmtUtc(ts * 1000))},
        ...defs.map((d) => ({
          label: d.falseticker ? d.label + ' (falseticker)' : d.label,
          stroke: d.color,
          width: 1.5,
          dash: d.falseticker ? [6, 4] : undefined,
          spanGaps: false,
          points: {size: 4, fill: d.color},
          // Away from the cursor the legend shows each server's latest value, not a dash.
          value: (u, v, seriesIdx, idx) => fmtSeconds(idx === null || idx === undefined
            ? lastValue(u.data[seriesIdx]) : v, metric === 'offset'),
        })),
      ],
    };
    container.replaceChildren();
    return new uPlot(opts, [[], ...defs.map(() => [])], container);
  }

  function lastValue(values) {
    for (let i = (values || []).length - 1; i >= 0; i--) {
      if (values[i] !== null && values[i] !== undefined) return values[i];
    }
    return null;
  }

  function setEmptyNote(container, text) {
    let note = container.querySelector('.chart-empty');
    if (!text) { if (note) note.remove(); return; }
    if (!note) { note = el('div', {class: 'chart-empty'}); container.append(note); }
    note.textContent = text;
  }

  function renderCharts() {
    if (typeof uPlot === 'undefined') return;
    const defs = chartSeries();
    const signature = JSON.stringify([state.scale, defs]);
    const offsetBox = $('chart-offset');
    const delayBox = $('chart-delay');
    const win = state.window;
    let rebuilt = false;
    if (signature !== charts.signature || !charts.offset) {
      if (charts.offset) charts.offset.destroy();
      if (charts.delay) charts.delay.destroy();
      charts.offset = makeChart(offsetBox, 'offset', defs);
      charts.delay = makeChart(delayBox, 'delay', defs);
      charts.signature = signature;
      rebuilt = true;
    }
    // Live data changes at every poll. A history window changes only when it is fetched
    // again: setting the same data every 2 s would undo the user's zoom for nothing.
    const dataKey = win === 'live' ? null : `${win} ${state.history.window} ${state.history.fetchedMs}`;
    const offsetData = joinTables(chartTables(defs, 'offset'));
    if (rebuilt || dataKey === null || dataKey !== charts.dataKey) {
      charts.dataKey = dataKey;
      const delayData = joinTables(chartTables(defs, 'delay'));
      charts.offset.setData(offsetData);
      charts.delay.setData(delayData);
      if (win !== 'live') {
        // The whole window, even where there are no samples (a server added an hour ago).
        const now_s = nowMs() / 1000;
        const [min, max] = state.history.window === win && state.history.range
          ? state.history.range : [now_s - kWindows[win].span_s, now_s];
        charts.offset.setScale('x', {min, max});
        charts.delay.setScale('x', {min, max});
      }
    }

    let note = null;
    if (win !== 'live' && state.history.error) {
      note = 'History is unavailable for this window: ' + state.history.error;
    }
    const noteBox = $('chart-note');
    noteBox.hidden = note === null;
    noteBox.textContent = note || '';
    const loading = win !== 'live' && (state.history.window !== win);
    const empty = offsetData[0].length === 0;
    const emptyText = loading ? 'Loading history…'
      : empty ? (win === 'live' ? 'Waiting for the first samples…' : 'No samples in this window') : null;
    setEmptyNote(offsetBox, emptyText);
    setEmptyNote(delayBox, emptyText);
  }

  function resizeCharts() {
    for (const [chart, box] of [[charts.offset, $('chart-offset')], [charts.delay, $('chart-delay')]]) {
      if (chart && box.clientWidth > 0) chart.setSize({width: box.clientWidth, height: kChartHeightPx});
    }
  }

  // ---- rendering -------------------------------------------------------------------------

  function rowLevel(s) {
    const alerts = s.alerts || [];
    if (s.state === 'falseticker' || s.state === 'unreachable' || s.state === 'auth_failed') return 'bad';
    if (alerts.some((a) => alertSeverity(a) === 'critical')) return 'bad';
    if (s.state === 'kod') return 'kod';
    if (s.state === 'unsynchronized' || alerts.length) return 'warn';
    if (s.state === 'pending') return 'idle';
    if (s.state === 'selected') return 'ok';
    return null;
  }

  function reachCell(reach) {
    if (reach === null || reach === undefined) return el('td', {class: 'unknown'}, '—');
    const bits = el('span', {class: 'bits'});
    let ones = 0;
    for (let b = 7; b >= 0; b--) {
      const on = (reach >> b) & 1;
      ones += on;
      bits.append(el('span', {class: on ? 'bit on' : 'bit'}));
    }
    const level = (reach & 1) === 0 ? 'bad' : ones < 8 ? 'warn' : 'ok';
    return el('td', {title: `reach ${reach.toString(8).padStart(3, '0')} (octal): ${ones} of the last 8 polls answered`},
              el('span', {class: 'reach', 'data-level': level}, bits,
                 el('span', {class: 'octal'}, reach.toString(8).padStart(3, '0'))));
  }

  function authCell(auth) {
    if (!auth || auth === 'none') return el('td', {class: 'auth-none'}, 'none');
    const bad = /fail|error|invalid|expired/i.test(auth);
    return el('td', {class: bad ? 'auth-bad' : 'auth-ok'}, auth.toUpperCase() === 'NTS' ? 'NTS' : auth);
  }

  function renderServers() {
    const body = $('servers-body');
    if (!state.servers.length) {
      body.replaceChildren(emptyRow(13, state.lastSuccessMs ? 'No servers configured' : 'Loading…'));
      return;
    }
    const labels = seriesLabels(state.servers);
    const now_s = nowMs() / 1000;
    const rows = state.servers.map((s, i) => {
      const kinds = new Set((s.alerts || []).map(alertKind));
      const numCell = (value, kind, signed) => el('td', {
        class: 'num' + (kinds.has(kind) ? ' alerting' : '') + (value === null || value === undefined ? ' unknown' : '')},
        fmtSeconds(value, signed));
      const st = s.state || 'pending';
      const nameCell = el('td', null,
        el('span', {class: 'server-name'}, s.name),
        el('span', {class: 'server-addr'}, hostPort(s) + (s.refid ? '  ·  ' + s.refid : '')),
        s.error ? el('span', {class: 'server-error'}, s.error) : null);
      const t = sampleUnix(s);
      const age = t !== null ? now_s - t : null;
      const alertCell = el('td', null);
      for (const a of s.alerts || []) {
        alertCell.append(el('span', {class: 'chip ' + (alertSeverity(a) === 'critical' ? 'bad' : 'warn'),
                                     title: a.message || ''}, alertKind(a)));
      }
      const stratumUnknown = s.stratum === null || s.stratum === undefined;
      return el('tr', {'data-server': s.name, 'data-state': st, 'data-level': rowLevel(s),
                       'data-selected': s.selected ? 'true' : 'false'},
        el('td', null, el('span', {class: 'swatch', style: `background:${colorFor(labels[i])}`})),
        nameCell,
        el('td', null, el('span', {class: 'badge', 'data-state': st, title: kStateHelp[st] || ''},
                          kStateText[st] || st)),
        numCell(s.offset, 'offset', true),
        numCell(s.delay, 'delay', false),
        numCell(s.jitter, 'jitter', false),
        el('td', {class: 'num' + (kinds.has('stratum') ? ' alerting' : '') + (stratumUnknown ? ' unknown' : '')},
           stratumUnknown ? '—' : String(s.stratum)),
        reachCell(s.reach),
        el('td', {class: 'num'}, fmtInterval(s.poll)),
        authCell(s.authenticated),
        el('td', {class: 'center'}, s.selected ? el('span', {class: 'selected-mark', title: 'selected'}, '★') : ''),
        el('td', {class: 'num' + (age === null ? ' unknown' : '')}, fmtAge(age)),
        alertCell);
    });
    body.replaceChildren(...rows);
    setText('servers-hint', `${state.servers.length} monitored · updated ${fmtUtc(state.serversAtMs ?? Date.now())} UTC`);
  }

  function nameList(list) {
    // The selection may give names or counts (older daemons); both are shown sensibly.
    if (Array.isArray(list)) return list;
    return null;
  }

  function chips(list, cls, noneText) {
    if (!list.length) return [el('span', {class: 'hint'}, noneText)];
    return list.map((n) => el('span', {class: 'chip ' + cls}, n));
  }

  function selectedServer() {
    const sel = state.selection;
    if (sel && sel.selected) {
      return state.servers.find((s) => s.name === sel.selected &&
                                       (!sel.selected_address || s.address === sel.selected_address)) ||
             {name: sel.selected, address: sel.selected_address};
    }
    return state.servers.find((s) => s.selected) || null;
  }

  function changeText(c) {
    return `${c.from || 'none'} → ${c.to || 'none'}`;
  }

  function renderSummary() {
    const servers = state.servers;
    const sel = state.selection || {};
    const chosen = selectedServer();
    const card = (id, level) => { $(id).dataset.level = level || ''; };

    setText('sum-selected', chosen ? chosen.name : 'none');
    setText('sum-selected-sub', chosen
      ? [hostPort(chosen), chosen.stratum != null ? 'stratum ' + chosen.stratum : null].filter(Boolean).join(' · ')
      : 'no source survives selection');
    card('card-selected', chosen ? 'ok' : 'bad');

    const sysOffset = sel.system_offset ?? sel.consensus_offset ?? (chosen ? chosen.offset : null);
    const sysJitter = sel.system_jitter ?? sel.jitter ?? (chosen ? chosen.jitter : null);
    setText('sum-offset', fmtSeconds(sysOffset, true));
    setText('sum-offset-sub', sysJitter != null ? 'jitter ' + fmtSeconds(sysJitter, false) : '');
    card('card-offset', sysOffset == null ? '' : 'info');

    const count = (st) => servers.filter((s) => s.state === st).length;
    const unreachable = count('unreachable');
    const falsetickers = count('falseticker');
    const kod = count('kod');
    const authFailed = count('auth_failed');
    const answering = servers.filter((s) => s.state !== 'unreachable' && s.state !== 'auth_failed' && s.state !== 'pending' && s.ok !== false).length;
    setText('sum-servers', `${answering} / ${servers.length}`);
    const parts = [];
    if (falsetickers) parts.push(`${falsetickers} falseticker${falsetickers > 1 ? 's' : ''}`);
    if (unreachable) parts.push(`${unreachable} unreachable`);
    if (kod) parts.push(`${kod} kiss-o'-death`);
    if (authFailed) parts.push(`${authFailed} authentication failed`);
    setText('sum-servers-sub', parts.length ? parts.join(' · ') : 'answering, all truechimers');
    card('card-servers', !servers.length || answering === 0 ? 'bad' : parts.length ? 'warn' : 'ok');

    const active = activeAlerts();
    const critical = active.filter((a) => alertSeverity(a) === 'critical').length;
    setText('sum-alerts', String(active.length));
    setText('sum-alerts-sub', active.length
      ? `${critical} critical · ${active.length - critical} warning`
      : 'all clear');
    card('card-alerts', critical ? 'bad' : active.length ? 'warn' : 'ok');

    const changes = sel.selection_changes;
    setText('sum-changes', changes == null ? '—' : String(changes));
    const last = lastFailover(state.selection);
    setText('sum-changes-sub', last ? `last ${fmtAge((nowMs() - toMs(last.at)) / 1000)}: ${changeText(last)}` : 'no failover yet');
    card('card-failover', 'info');

    document.title = (active.length ? `(${active.length}) ` : '') + 'ntp-monitor';
  }

  function renderSelection() {
    const sel = state.selection;
    const chosen = selectedServer();
    const dd = (id, ...nodes) => $(id).replaceChildren(...nodes);
    if (!sel) {
      for (const id of ['sel-selected', 'sel-majority', 'sel-truechimers', 'sel-falsetickers', 'sel-jitter', 'sel-failover']) setText(id, '—');
      $('changes-body').replaceChildren(emptyRow(5, 'Selection not available'));
      return;
    }
    dd('sel-selected', chosen
      ? el('span', {class: 'chip ok'}, chosen.name + (chosen.address ? ' (' + hostPort(chosen) + ')' : ''))
      : el('span', {class: 'chip bad'}, 'none'));
    dd('sel-majority', sel.majority === true ? el('span', {class: 'chip ok'}, 'yes')
      : sel.majority === false ? el('span', {class: 'chip bad'}, 'no: truechimers are not a majority') : '—');

    const trueNames = nameList(sel.truechimers);
    const falseNames = nameList(sel.falsetickers) ||
      state.servers.filter((s) => s.state === 'falseticker').map((s) => s.name);
    dd('sel-truechimers', ...(trueNames ? chips(trueNames, '', 'none')
      : [String(sel.truechimers ?? '—')]));
    dd('sel-falsetickers', ...chips(falseNames, 'bad', 'none'));
    setText('sel-jitter', fmtSeconds(sel.system_jitter ?? sel.jitter ?? null, false));

    const last = lastFailover(sel);
    if (last) {
      const at = toMs(last.at);
      dd('sel-failover', el('span', null, `${fmtUtc(at)} UTC (${fmtAge((nowMs() - at) / 1000)}): `),
         el('strong', null, changeText(last)), last.reason ? el('span', {class: 'hint'}, ' — ' + last.reason) : null);
    } else {
      dd('sel-failover', el('span', {class: 'hint'}, 'none since start'));
    }

    const changes = selectionChanges(sel).slice(0, 10);
    $('changes-body').replaceChildren(...(changes.length ? changes.map((c) => el('tr', null,
      el('td', {class: 'when'}, fmtUtc(toMs(c.at))),
      el('td', null, c.from || 'none'),
      el('td', {class: 'arrow'}, '→'),
      el('td', null, c.to || 'none'),
      el('td', {class: 'msg'}, c.reason || ''))) : [emptyRow(5, 'No selection change yet')]));
  }

  function renderAlerts() {
    const rank = {critical: 0, warning: 1, info: 2};
    const active = activeAlerts().slice().sort((a, b) =>
      (rank[alertSeverity(a)] ?? 3) - (rank[alertSeverity(b)] ?? 3) || (toMs(a.since) ?? 0) - (toMs(b.since) ?? 0));
    $('alerts-body').replaceChildren(...(active.length ? active.map((a) => {
      const since = toMs(a.since);
      return el('tr', {'data-alert': alertKind(a), 'data-server': a.server || ''},
        el('td', null, el('span', {class: 'badge plain', 'data-severity': alertSeverity(a)}, alertSeverity(a))),
        el('td', null, el('span', {class: 'server-name'}, a.server || '—')),
        el('td', null, alertKind(a)),
        el('td', {class: 'when', title: since ? new Date(since).toISOString() : ''}, fmtAge(since ? (nowMs() - since) / 1000 : null)),
        el('td', {class: 'msg'}, a.message || ''));
    }) : [emptyRow(5, state.lastSuccessMs ? 'No active alerts' : 'Loading…')]));

    const recent = state.alerts && Array.isArray(state.alerts.recent) ? state.alerts.recent.slice(0, 10) : [];
    $('transitions-body').replaceChildren(...(recent.length ? recent.map((r) => el('tr', null,
      el('td', {class: 'when'}, fmtUtc(toMs(r.at))),
      el('td', null, r.server || '—'),
      el('td', null, alertKind(r)),
      el('td', null, el('span', {class: 'badge plain', 'data-status': r.status || ''}, r.status || '—')),
      el('td', {class: 'msg'}, r.message || ''))) : [emptyRow(5, state.alerts
        ? 'No alert transitions yet' : 'Not served by this daemon (api/v1/alerts)')]));
  }

  function renderConnection() {
    const conn = $('conn');
    const banner = $('banner');
    const sinceOk = Date.now() - state.lastSuccessMs;
    let mode, text;
    if (state.lastError && (!state.lastSuccessMs || sinceOk > kStaleAfterMs)) {
      mode = 'error'; text = 'API unreachable';
    } else if (state.lastSuccessMs && sinceOk > kStaleAfterMs) {
      mode = 'stale'; text = `stale (${Math.round(sinceOk / 1000)} s)`;
    } else if (state.lastSuccessMs) {
      mode = 'live'; text = 'live';
    } else {
      mode = 'connecting'; text = 'connecting';
    }
    conn.dataset.state = mode;
    setText('conn-text', text);
    banner.hidden = !state.lastError;
    banner.textContent = state.lastError
      ? `Cannot read the ntp-monitor API (${state.lastError}). Retrying every ${kPollIntervalMs / 1000} s` +
        (state.lastSuccessMs ? '; the data below is from ' + fmtUtc(state.serversAtMs ?? state.lastSuccessMs) + ' UTC.' : '.')
      : '';
  }

  // The daemon's own "history" alert (api/v1/alerts): the database is off, or cannot be written
  // and the samples wait in memory until it can.
  function renderHistoryNotice() {
    const active = state.alerts && Array.isArray(state.alerts.active) ? state.alerts.active : [];
    const h = active.find((a) => a.alert === 'history');
    const notice = $('history-notice');
    notice.hidden = !h;
    if (!h) { notice.textContent = ''; return; }
    const n = Number.isFinite(h.buffered) ? h.buffered : 0;
    notice.textContent = h.reason
      ? `History degraded: ${h.reason}, ${n} sample${n === 1 ? '' : 's'} buffered (retrying). ${h.message || ''}`
      : `History off: ${h.message || 'history database is off'}`;
  }

  function render() {
    renderConnection();
    renderHistoryNotice();
    renderServers();
    renderSummary();
    renderSelection();
    renderAlerts();
    if (state.window === 'live') {
      renderCharts();
    } else {
      const h = state.history;
      if (h.window !== state.window || Date.now() - h.fetchedMs > kWindows[state.window].refresh_ms) {
        loadHistory(state.window);
      }
      // Series styles (falseticker dash) follow the table even between history refreshes.
      renderCharts();
    }
  }

  function tickClock() {
    const d = new Date();
    setText('clock', `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} UTC`);
    renderConnection();
  }

  // ---- controls --------------------------------------------------------------------------

  function pressOnly(group, attr, value) {
    for (const b of group.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset[attr] === value));
  }

  function setWindow(win) {
    if (win !== 'live' && !kWindows[win]) return;
    state.window = win;
    pressOnly($('window-buttons'), 'window', win);
    if (win !== 'live') {
      state.history.window = null;
      state.history.error = null;
      state.history.series = new Map();
      loadHistory(win);
    }
    renderCharts();
    // Remember the choice in the URL so a refresh or a shared link keeps it.
    const url = new URL(window.location.href);
    url.searchParams.set('window', win);
    history.replaceState(null, '', url);
  }

  function setScale(scale) {
    state.scale = scale === 'asinh' ? 'asinh' : 'linear';
    pressOnly($('scale-buttons'), 'scale', state.scale);
    renderCharts();
  }

  function init() {
    $('window-buttons').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-window]');
      if (b) setWindow(b.dataset.window);
    });
    $('scale-buttons').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-scale]');
      if (b) setScale(b.dataset.scale);
    });
    const params = new URLSearchParams(window.location.search);
    if (params.get('window') && params.get('window') !== 'live') setWindow(params.get('window'));
    if (params.get('scale')) setScale(params.get('scale'));

    // One poll loop per page; a hidden tab stops polling entirely (50 forgotten tabs cost
    // nothing) and catches up at once when shown again.
    document.addEventListener('visibilitychange', () => { if (!document.hidden) schedulePoll(0); });
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(() => resizeCharts());
      ro.observe($('chart-offset'));
      ro.observe($('chart-delay'));
    } else {
      window.addEventListener('resize', resizeCharts);
    }
    if (typeof uPlot === 'undefined') {
      const banner = $('banner');
      banner.hidden = false;
      banner.textContent = 'The charting library did not load (assets/uPlot.iife.min.js); tables still update.';
    }
    tickClock();
    setInterval(tickClock, 1000);
    renderCharts();
    schedulePoll(0);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
