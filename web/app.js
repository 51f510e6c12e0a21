// ntp-monitor dashboard.
//
// Responsible for: polling the daemon's read-only JSON API (docs/API.md) every 2 s and drawing
// the fleet view: the summary first (/api/v1/summary: counts by state and alert kind, offset
// and delay histograms, worst offsets, recent state changes), then one page of the server
// table (/api/v1/servers with limit, cursor, sort and filters: the daemon sorts, filters and
// pages, so only the visible rows are fetched and in the DOM), the selection and alert panels,
// and offset/delay charts with uPlot of the servers a person picks in the table (plus the
// selected source), never of every server. What one refresh fetches does not grow with the
// fleet: the summary, one page, the alerts up to a limit, and the picked servers' new points.
// Not responsible for: any decision (states, selection and alerts come from the daemon as
// they are), or talking to anything but the API of the origin it was loaded from.
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
  // At most this many history requests in flight (one per charted server and refresh).
  const kHistoryConcurrency = 4;
  const kChartHeightPx = 300;
  const kHistogramHeightPx = 180;
  // A fleet this small is charted whole, as before the fleet view (the demo's 8 servers);
  // a larger one charts what a person picks in the table, plus the selected source.
  const kAutoChartMax = 12;
  // At most this many servers on the time-series charts (one palette colour each).
  const kMaxCharted = 12;
  // /api/v1/selection lists every truechimer's name: it is fetched only for fleets up to this
  // size, so that a refresh stays the same size whatever the fleet (the summary has the rest).
  const kSelectionMaxEntries = 200;
  // Active alerts fetched per refresh (api/v1/alerts?limit=); active_total counts them all.
  const kAlertsLimit = 50;
  const kPageSizes = [25, 50, 100, 200];
  const kDefaultPageSize = 50;
  const kSearchDebounceMs = 250;
  // The "Log" offset axis is asinh: linear within ±10 µs (loopback noise), logarithmic beyond,
  // so a falseticker at +500 ms and servers within microseconds fit on one chart.
  const kAsinhLinearS = 1e-5;
  // Colour-blind-friendly enough on a dark background; red is left out on purpose so that red
  // only ever means "alert".
  const kPalette = ['#4e9cf5', '#56c28a', '#e5c04b', '#b07be8', '#4fc3d9', '#f08c4a',
                    '#e36fb1', '#9bd35a', '#8f9bff', '#d9a066', '#6fd6c4', '#c7c7c7'];
  const kMinus = '\u2212';

  const kStates = ['selected', 'candidate', 'falseticker', 'unreachable', 'unsynchronized', 'kod',
                   'pending', 'auth_failed'];
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
  // Per-server alert kinds the table can filter on (api/v1/servers?alert=).
  const kAlertKinds = ['offset', 'delay', 'stratum', 'unreachable', 'falseticker', 'kod', 'leap',
                       'unsynchronized', 'authentication', 'certificate'];
  // Alerts that make a row red; the other kinds are warnings unless the API gives a severity.
  const kCriticalAlerts = new Set(['unreachable', 'falseticker', 'kod', 'no_majority',
                                   'unsynchronized', 'auth', 'nts', 'authentication',
                                   'certificate']);

  const state = {
    summary: null,      // api/v1/summary
    servers: [],        // the visible page of api/v1/servers (at most table.limit rows)
    total: null,        // entries matching the table's filters, all pages
    nextCursor: null,
    serversAtMs: null,  // the daemon's clock at /servers time (generated_at), ms
    selection: null,    // api/v1/selection, small fleets only (kSelectionMaxEntries)
    alerts: null,       // api/v1/alerts?limit=kAlertsLimit
    lastSuccessMs: 0,
    lastError: null,
    window: 'live',
    scale: 'linear',
    // The table's query: the daemon sorts, filters and pages. cursors[i] starts page i.
    table: {q: '', state: '', alert: '', sort: '', limit: kDefaultPageSize, cursors: [null],
            generation: 0},
    // Servers on the time-series charts (names), in the order they were picked; while
    // picksAuto holds, a small fleet is charted whole.
    picks: [],
    picksAuto: true,
    known: new Map(),   // charted name -> its latest entry seen (state, for the chart legend)
    live: new Map(),    // charted name -> ring of {t, offset, delay}
    colors: new Map(),  // series label -> colour, stable for the page's life
    prefilled: new Set(),
    historyLive: null,  // null: not known yet; false: the history API does not answer
    history: {window: null, fetchedMs: 0, loading: false, series: new Map(), error: null},
    pollTimer: null,
    polling: false,
    pollAgain: false,
    firstRender: false,
    pageGeneration: -1,  // the table.generation of the page on screen (tests wait for it)
  };
  const charts = {offset: null, delay: null, signature: '', scale: null, defs: [], dataKey: null,
                  histOffset: null, histDelay: null, histKey: ''};

  // Read by tests/integration/web/dashboard_driver.js, bench/dashboard_scale.js and handy from
  // the devtools console.
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

  // Puts `nodes` into `parent`, touching only what changed: every refresh rebuilds the panels
  // and the table, but an unchanged row or cell must not cost the browser a layout (it lays
  // out only what was touched). Rows are compared cell by cell: a refresh typically changes
  // a few numbers and the ages, not the rows.
  function patchChildren(parent, nodes) {
    const fresh = nodes.map((n) => (n instanceof Node ? n : document.createTextNode(String(n))));
    const old = parent.childNodes;
    if (old.length !== fresh.length) { parent.replaceChildren(...fresh); return; }
    for (let i = fresh.length - 1; i >= 0; i--) {
      const a = old[i], b = fresh[i];
      if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) { a.replaceWith(b); continue; }
      if (a.nodeType === Node.TEXT_NODE) {
        if (a.nodeValue !== b.nodeValue) a.nodeValue = b.nodeValue;
        continue;
      }
      if (a.outerHTML === b.outerHTML) continue;
      if (a.nodeName === 'TR' && sameAttributes(a, b)) patchChildren(a, [...b.childNodes]);
      else a.replaceWith(b);
    }
  }

  function sameAttributes(a, b) {
    if (a.attributes.length !== b.attributes.length) return false;
    for (const attr of a.attributes) if (b.getAttribute(attr.name) !== attr.value) return false;
    return true;
  }

  function replaceKids(node, nodes) { patchChildren(node, nodes); }

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }

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
    return state.alerts && Array.isArray(state.alerts.active) ? state.alerts.active : [];
  }

  // ---- series identity -------------------------------------------------------------------

  // A charted server keeps its colour while it is charted; a newly picked one takes the first
  // palette colour no charted server uses.
  function colorFor(name) {
    if (!state.colors.has(name)) {
      const used = new Set(state.colors.values());
      const free = kPalette.find((c) => !used.has(c));
      state.colors.set(name, free || kPalette[state.colors.size % kPalette.length]);
    }
    return state.colors.get(name);
  }

  // The servers on the time-series charts: the picked ones, then the selected source.
  function chartNames() {
    const names = state.picks.slice(0, kMaxCharted);
    const sel = state.summary && state.summary.selected;
    if (sel && !names.includes(sel)) names.push(sel);
    return names;
  }

  // Forgets rings, colours and entries of servers no longer charted: the page's memory stays
  // bounded by the charted servers, not by the servers ever seen.
  function pruneCharted() {
    const keep = new Set(chartNames());
    for (const map of [state.live, state.colors, state.known]) {
      for (const name of [...map.keys()]) if (!keep.has(name)) map.delete(name);
    }
    for (const name of [...state.prefilled]) if (!keep.has(name)) state.prefilled.delete(name);
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

  // /selection and /alerts are optional: a daemon without one answers 404, and the page then
  // asks again only once a minute instead of every poll (the table works without them).
  const kOptionalRetryMs = 60000;
  const optionalRetryAt = {selection: 0, alerts: 0};

  async function fetchOptional(name, query) {
    if (Date.now() < optionalRetryAt[name]) throw new ApiError(404, `api/v1/${name}: not served`);
    try {
      return await fetchJson('api/v1/' + name + (query || ''));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) optionalRetryAt[name] = Date.now() + kOptionalRetryMs;
      throw e;
    }
  }

  function tableIsDefault() {
    const t = state.table;
    return !t.q && !t.state && !t.alert && !t.sort;
  }

  // One page of the table: the daemon filters, sorts and pages (keyset cursor).
  function pagePath() {
    const t = state.table;
    const p = new URLSearchParams();
    p.set('limit', String(t.limit));
    const cursor = t.cursors[t.cursors.length - 1];
    if (cursor) p.set('cursor', cursor);
    if (t.sort) p.set('sort', t.sort);
    if (t.state) p.append('state', t.state);
    if (t.alert) p.set('alert', t.alert);
    if (t.q) p.set('q', t.q);
    return 'api/v1/servers?' + p.toString();
  }

  async function poll() {
    state.pollTimer = null;
    if (document.hidden) return;  // resumed by the visibilitychange handler
    if (state.polling) { state.pollAgain = true; return; }
    state.polling = true;
    const generation = state.table.generation;
    try {
      const summaryP = fetchJson('api/v1/summary');
      // The selection's name lists grow with the fleet: asked for small fleets only.
      const selectionP = summaryP.then((s) => (s && s.entries <= kSelectionMaxEntries
        ? fetchOptional('selection') : null));
      const [summary, page, selection, alerts] = await Promise.allSettled([
        summaryP, fetchJson(pagePath()), selectionP, fetchOptional('alerts', '?limit=' + kAlertsLimit)]);
      const failed = [summary, page].find((r) => r.status !== 'fulfilled');
      if (page.status !== 'fulfilled' && page.reason instanceof ApiError && page.reason.status === 400 &&
          state.table.cursors.length > 1 && generation === state.table.generation) {
        // A cursor the daemon no longer takes (it restarted, say): back to the first page.
        state.table.cursors = [null];
        state.table.generation++;
        state.pollAgain = true;
      }
      if (summary.status === 'fulfilled') {
        state.summary = summary.value;
        state.selection = selection.status === 'fulfilled' ? selection.value : null;
        state.alerts = alerts.status === 'fulfilled' ? alerts.value : null;
      }
      if (page.status === 'fulfilled' && generation === state.table.generation) {
        const body = page.value;
        state.servers = Array.isArray(body.servers) ? body.servers : [];
        state.total = Number.isFinite(body.total) ? body.total : state.servers.length;
        state.nextCursor = body.next_cursor || null;
        state.serversAtMs = toMs(body.generated_at ?? body.generated);
        state.pageGeneration = generation;
      }
      if (!failed) {
        state.lastSuccessMs = Date.now();
        state.lastError = null;
        updateAutoPicks();
        pruneCharted();
        await recordLive();
      } else {
        state.lastError = failed.reason && failed.reason.message ? failed.reason.message : String(failed.reason);
      }
      render();
      if (!failed && !state.firstRender && generation === state.table.generation) {
        // The summary and the first table page are on screen: first meaningful paint, read
        // by bench/dashboard_scale.js.
        state.firstRender = true;
        performance.mark('ntpmon-first-render');
      }
    } finally {
      state.polling = false;
      if (state.pollAgain) { state.pollAgain = false; schedulePoll(0); }
      else schedulePoll(kPollIntervalMs);
    }
  }

  function schedulePoll(delayMs) {
    if (state.pollTimer !== null) clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(poll, delayMs);
  }

  // ---- picks -----------------------------------------------------------------------------

  // A small fleet is charted whole until a person picks or drops a server themselves.
  function updateAutoPicks() {
    if (!state.picksAuto || !state.summary) return;
    if (state.summary.entries <= kAutoChartMax && tableIsDefault() && state.table.cursors.length === 1) {
      const names = [];
      for (const s of state.servers) if (!names.includes(s.name)) names.push(s.name);
      state.picks = names.slice(0, kMaxCharted);
    } else if (state.summary.entries > kAutoChartMax) {
      state.picks = [];
    }
  }

  function togglePick(name) {
    if (!state.picks.includes(name) && state.picks.length >= kMaxCharted) {
      setText('pick-hint', `At most ${kMaxCharted} servers on the charts: click a charted row to drop it`);
      return;
    }
    state.picksAuto = false;
    const i = state.picks.indexOf(name);
    if (i >= 0) state.picks.splice(i, 1);
    else state.picks.push(name);
    pruneCharted();
    renderPickHint();
    renderServers();
    if (state.window !== 'live') {
      state.history.window = null;
      loadHistory(state.window);
    } else {
      recordLive().then(() => { if (state.window === 'live') renderCharts(); });
    }
    renderCharts();
  }

  function renderPickHint() {
    const n = state.picks.length;
    setText('pick-hint', n ? `${n} charted · click a row to chart it or drop it`
      : 'Click a row to chart it');
  }

  // ---- live ring -------------------------------------------------------------------------

  function ringFor(name) {
    let ring = state.live.get(name);
    if (!ring) {
      ring = {t: [], offset: [], delay: [], lastSample: null, inGap: false};
      state.live.set(name, ring);
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

  // The freshest entry the page holds for a name: the visible table page or the summary's
  // worst offsets (both come with every refresh at no extra cost).
  function entryFor(name) {
    const onPage = state.servers.find((s) => s.name === name);
    if (onPage) return onPage;
    const worst = state.summary && Array.isArray(state.summary.worst_offset) ? state.summary.worst_offset : [];
    return worst.find((s) => s.name === name) || null;
  }

  // One point per new sample (last_sample_unix changes), not per poll of this page: a server
  // polled every 64 s gives one point per 64 s. An unreachable server gets one null, which
  // uPlot draws as a gap. A charted server that is neither on the visible page nor among the
  // worst offsets gets its new points from the history API (since its last point, step 1 s).
  async function recordLive() {
    const now_s = nowMs() / 1000;
    const missing = [];
    for (const name of chartNames()) {
      const s = entryFor(name);
      if (!s) { missing.push(name); continue; }
      state.known.set(name, s);
      const ring = ringFor(name);
      const t = sampleUnix(s);
      if (t !== null && t !== ring.lastSample && s.offset !== null && s.offset !== undefined) {
        ring.lastSample = t;
        ring.inGap = false;
        pushPoint(ring, t, s.offset, s.delay ?? null);
      } else if ((s.state === 'unreachable' || s.ok === false) && !ring.inGap && ring.t.length) {
        ring.inGap = true;
        pushPoint(ring, now_s, null, null);
      }
    }
    const fresh = chartNames().filter((name) => !state.prefilled.has(name));
    if (fresh.length) prefillLive(fresh);
    if (state.historyLive === false) return;
    const until_s = Math.floor(now_s) + 1;
    await runLimited(missing.filter((name) => state.prefilled.has(name) && state.live.has(name)).map((name) => async () => {
      const ring = state.live.get(name);
      const since_s = ring.t.length ? Math.floor(ring.t[ring.t.length - 1]) + 1 : until_s - kLiveSpanS;
      if (since_s >= until_s) return;
      try {
        const h = await fetchJson(historyPath(name, since_s, until_s, 1));
        for (const p of h.points || []) pushPoint(ring, p.t, p.offset ?? null, p.delay ?? null);
      } catch (e) {
        // Missed this time; the next refresh asks from the same point.
      }
    }), kHistoryConcurrency);
  }

  // A newly charted server starts with its last 15 minutes from the history store, so a
  // freshly opened page or a fresh pick is not empty. Without history (503) the ring simply
  // fills from now on.
  async function prefillLive(names) {
    for (const name of names) state.prefilled.add(name);
    const until_s = Math.floor(nowMs() / 1000) + 1;
    await runLimited(names.map((name) => async () => {
      try {
        const h = await fetchJson(historyPath(name, until_s - kLiveSpanS, until_s, 1));
        state.historyLive = true;
        if (!chartNames().includes(name)) return;  // dropped meanwhile
        const ring = ringFor(name);
        const older = {t: [], offset: [], delay: []};
        const first = ring.t.length ? ring.t[0] : Infinity;
        for (const p of h.points || []) {
          if (p.t < first) { older.t.push(p.t); older.offset.push(p.offset ?? null); older.delay.push(p.delay ?? null); }
        }
        ring.t = older.t.concat(ring.t);
        ring.offset = older.offset.concat(ring.offset);
        ring.delay = older.delay.concat(ring.delay);
        if (ring.t.length > kLiveRingSize) {
          const cut = ring.t.length - kLiveRingSize;
          ring.t = ring.t.slice(cut); ring.offset = ring.offset.slice(cut); ring.delay = ring.delay.slice(cut);
        }
      } catch (e) {
        // History off (503) or not served: the live ring fills from the entries by itself.
        if (e instanceof ApiError && (e.status === 503 || e.status === 404) && state.historyLive === null) {
          state.historyLive = e.status === 404 ? null : false;
        }
      }
    }), kHistoryConcurrency);
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
    const names = chartNames();
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
    return chartNames().map((name) => {
      const known = state.known.get(name);
      return {label: name, color: colorFor(name), falseticker: !!known && known.state === 'falseticker'};
    });
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
        ...defs.map((d) => seriesOpts(d, metric)),
      ],
    };
    container.replaceChildren();
    return new uPlot(opts, [[], ...defs.map(() => [])], container);
  }

  function seriesOpts(d, metric) {
    return {
      label: d.falseticker ? d.label + ' (falseticker)' : d.label,
      stroke: d.color,
      width: 1.5,
      dash: d.falseticker ? [6, 4] : undefined,
      spanGaps: false,
      points: {size: 4, fill: d.color},
      // Away from the cursor the legend shows each server's latest value, not a dash.
      value: (u, v, seriesIdx, idx) => fmtSeconds(idx === null || idx === undefined
        ? lastValue(u.data[seriesIdx]) : v, metric === 'offset'),
    };
  }

  // A server picked or dropped (or a new selected source) changes the charts' series in place:
  // rebuilding both charts would cost the page a long task at every selection change.
  function updateSeries(wanted) {
    const key = (d) => JSON.stringify(d);
    const wantedKeys = new Set(wanted.map(key));
    const kept = [];
    for (let i = charts.defs.length - 1; i >= 0; i--) {
      if (wantedKeys.has(key(charts.defs[i]))) { kept.unshift(charts.defs[i]); continue; }
      charts.offset.delSeries(i + 1);
      charts.delay.delSeries(i + 1);
    }
    const keptKeys = new Set(kept.map(key));
    const added = wanted.filter((d) => !keptKeys.has(key(d)));
    for (const d of added) {
      charts.offset.addSeries(seriesOpts(d, 'offset'), charts.offset.series.length);
      charts.delay.addSeries(seriesOpts(d, 'delay'), charts.delay.series.length);
    }
    charts.defs = kept.concat(added);
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
    const wanted = chartSeries();
    const signature = JSON.stringify(wanted);
    const offsetBox = $('chart-offset');
    const delayBox = $('chart-delay');
    const win = state.window;
    let rebuilt = false;
    if (state.scale !== charts.scale || !charts.offset) {
      if (charts.offset) charts.offset.destroy();
      if (charts.delay) charts.delay.destroy();
      charts.offset = makeChart(offsetBox, 'offset', wanted);
      charts.delay = makeChart(delayBox, 'delay', wanted);
      charts.scale = state.scale;
      charts.signature = signature;
      charts.defs = wanted;
      rebuilt = true;
    } else if (signature !== charts.signature) {
      updateSeries(wanted);
      charts.signature = signature;
      rebuilt = true;
    }
    // The charts' own series order (kept ones first, new ones at the end).
    const defs = charts.defs;
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
    const emptyText = !defs.length ? 'No server charted: click servers in the table'
      : loading ? 'Loading history…'
      : empty ? (win === 'live' ? 'Waiting for the first samples…' : 'No samples in this window') : null;
    setEmptyNote(offsetBox, emptyText);
    setEmptyNote(delayBox, emptyText);
  }

  function resizeCharts() {
    for (const [chart, box, height] of [[charts.offset, $('chart-offset'), kChartHeightPx],
                                        [charts.delay, $('chart-delay'), kChartHeightPx],
                                        [charts.histOffset, $('hist-offset'), kHistogramHeightPx],
                                        [charts.histDelay, $('hist-delay'), kHistogramHeightPx]]) {
      if (chart && box.clientWidth > 0 && chart.width !== box.clientWidth) chart.setSize({width: box.clientWidth, height});
    }
  }


  // ---- fleet histograms ------------------------------------------------------------------

  // Bucket i of a distribution counts bounds[i-1] < |v| <= bounds[i]; the last one is beyond
  // the last bound. Labels name the upper bound ("≤ 10 µs", "> 10 s").
  function bucketLabel(bounds, i, negative) {
    const text = i < bounds.length ? fmtSeconds(bounds[i], false, true) : '> ' + fmtSeconds(bounds[bounds.length - 1], false, true);
    return negative ? kMinus + text : text;
  }

  // Offsets become one signed axis: the negative buckets from the largest magnitude down, then
  // the positive ones up. Only the span with servers in it (and one empty bucket either side)
  // is drawn, at least kMinBuckets wide, so loopback microseconds are not one thin bar.
  const kMinBuckets = 5;

  function bucketSpan(countsList, n) {
    let lo = n, hi = -1;
    for (const counts of countsList) {
      for (let i = 0; i < n; i++) if ((counts[i] || 0) > 0) { lo = Math.min(lo, i); hi = Math.max(hi, i); }
    }
    if (hi < 0) { lo = 0; hi = kMinBuckets - 1; }
    lo = Math.max(0, lo - 1);
    hi = Math.min(n - 1, hi + 1);
    while (hi - lo + 1 < kMinBuckets && (lo > 0 || hi < n - 1)) {
      if (hi < n - 1) hi++;
      if (hi - lo + 1 < kMinBuckets && lo > 0) lo--;
    }
    return [lo, hi];
  }

  function histogramData(dist, bounds, metric) {
    const n = bounds.length + 1;
    const labels = [];
    const counts = [];
    if (metric === 'offset') {
      const neg = dist.negative || [];
      const pos = dist.positive || [];
      const [lo, hi] = bucketSpan([neg, pos], n);
      for (let i = hi; i >= lo; i--) { labels.push(bucketLabel(bounds, i, true)); counts.push(neg[i] || 0); }
      for (let i = lo; i <= hi; i++) { labels.push(bucketLabel(bounds, i, false)); counts.push(pos[i] || 0); }
    } else {
      const c = dist.counts || [];
      const [lo, hi] = bucketSpan([c], n);
      for (let i = lo; i <= hi; i++) { labels.push(bucketLabel(bounds, i, false)); counts.push(c[i] || 0); }
    }
    return {labels, counts, missing: dist.missing || 0};
  }

  function makeHistogram(container, color, labelsRef) {
    const muted = cssVar('--muted');
    const grid = cssVar('--border-soft');
    const opts = {
      width: Math.max(300, container.clientWidth),
      height: kHistogramHeightPx,
      legend: {show: true, live: true},
      cursor: {drag: {x: false, y: false}, points: {show: false}},
      scales: {
        x: {time: false, range: (u, min, max) => [min - 0.5, max + 0.5]},
        y: {range: (u, min, max) => [0, Math.max(1, Math.ceil((max || 0) * 1.15))]},
      },
      axes: [
        {stroke: muted, grid: {show: false}, ticks: {stroke: grid, width: 1},
         // One label per bar where there is room, else every k-th.
         splits: (u) => {
           const n = labelsRef.labels.length;
           const every = Math.max(1, Math.ceil(n * 64 / Math.max(1, u.bbox.width / (window.devicePixelRatio || 1))));
           const out = [];
           for (let i = 0; i < n; i += every) out.push(i);
           return out;
         },
         values: (u, splits) => splits.map((i) => labelsRef.labels[i] ?? '')},
        {stroke: muted, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}, size: 50,
         values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : ''))},
      ],
      series: [
        {label: 'bucket', value: (u, v) => (v === null || v === undefined ? '—' : (labelsRef.labels[v] ?? '—'))},
        {label: 'servers', stroke: color, fill: color + 'cc', width: 1,
         paths: uPlot.paths.bars({size: [0.8, 48], align: 0}), points: {show: false},
         value: (u, v) => (v === null || v === undefined ? '—' : String(v))},
      ],
    };
    container.replaceChildren();
    return new uPlot(opts, [[], []], container);
  }

  function renderHistograms() {
    if (typeof uPlot === 'undefined' || !state.summary) return;
    const d = state.summary.distributions;
    if (!d || !Array.isArray(d.bounds)) return;
    for (const [key, metric, box, color] of [['histOffset', 'offset', 'hist-offset', kPalette[0]],
                                            ['histDelay', 'delay', 'hist-delay', kPalette[1]]]) {
      const data = histogramData(d[metric] || {}, d.bounds, metric);
      if (!charts[key]) {
        charts[key + 'Labels'] = {labels: data.labels};
        charts[key] = makeHistogram($(box), color, charts[key + 'Labels']);
      }
      const dataKey = JSON.stringify(data);
      if (charts[key + 'Key'] === dataKey) continue;
      charts[key + 'Key'] = dataKey;
      charts[key + 'Labels'].labels = data.labels;
      charts[key].setData([data.labels.map((_, i) => i), data.counts]);
      const total = data.counts.reduce((a, b) => a + b, 0);
      charts[key].root.dataset.total = String(total);
      $(box).closest('figure').querySelector('.missing').textContent =
        data.missing ? ` · ${data.missing} without a value` : '';
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
      const filtered = !tableIsDefault();
      replaceKids(body, [emptyRow(13, !state.lastSuccessMs && state.total === null ? 'Loading…'
        : filtered ? 'No server matches the search and filters' : 'No servers configured')]);
    } else {
      const charted = new Set(chartNames());
      const now_s = nowMs() / 1000;
      const rows = state.servers.map((s) => {
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
        const isCharted = charted.has(s.name);
        // The swatch is the server's colour on the charts; an empty box when it is not charted.
        const swatch = isCharted
          ? el('span', {class: 'swatch', style: `background:${colorFor(s.name)}`})
          : el('span', {class: 'swatch off'});
        return el('tr', {'data-server': s.name, 'data-state': st, 'data-level': rowLevel(s),
                         'data-selected': s.selected ? 'true' : 'false',
                         'data-charted': isCharted ? 'true' : 'false',
                         title: isCharted ? 'On the charts: click to drop it' : 'Click to chart this server'},
          el('td', null, swatch),
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
      patchChildren(body, rows);
    }
    renderPager();
    const entries = state.summary ? state.summary.entries : null;
    const matching = state.total ?? state.servers.length;
    const of = entries !== null && !tableIsDefault() ? `${matching} of ${entries} match` : `${entries ?? matching} monitored`;
    setText('servers-hint', `${of} · updated ${fmtUtc(state.serversAtMs ?? Date.now())} UTC`);
    renderSortHeaders();
  }

  function renderPager() {
    const t = state.table;
    const page = t.cursors.length - 1;
    const first = page * t.limit + 1;
    const shown = state.servers.length;
    const total = state.total ?? shown;
    $('page-prev').disabled = page === 0;
    $('page-first').disabled = page === 0;
    $('page-next').disabled = !state.nextCursor;
    // Pages start where the previous page's last server was: as the fleet changes, a page can
    // start a little off a multiple of the page size, hence "about" past the first page.
    setText('page-info', shown ? `${page ? '≈ ' : ''}${first}–${first + shown - 1} of ${total}` : `0 of ${total}`);
    $('pager').hidden = total <= t.limit && page === 0;
  }

  function renderSortHeaders() {
    const key = state.table.sort.replace(/^-/, '');
    const desc = state.table.sort.startsWith('-');
    for (const th of document.querySelectorAll('#servers th[data-sort]')) {
      if (th.dataset.sort === key) th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
    }
  }

  function chips(list, cls, noneText) {
    if (!list.length) return [el('span', {class: 'hint'}, noneText)];
    return list.map((n) => el('span', {class: 'chip ' + cls}, n));
  }

  // The selected source's entry when the page holds it, else what the summary says.
  function selectedServer() {
    const sum = state.summary || {};
    const sel = state.selection && state.selection.selected ? state.selection : sum;
    if (sel && sel.selected) {
      const match = (s) => s.name === sel.selected && (!sel.selected_address || s.address === sel.selected_address);
      const worst = Array.isArray(sum.worst_offset) ? sum.worst_offset : [];
      return state.servers.find(match) || worst.find(match) || state.known.get(sel.selected) ||
             {name: sel.selected, address: sel.selected_address};
    }
    return null;
  }

  function changeText(c) {
    return `${c.from || 'none'} → ${c.to || 'none'}`;
  }

  function stateCounts() {
    const out = {};
    const st = (state.summary && state.summary.states) || {};
    for (const k of kStates) out[k] = st[k] || 0;
    return out;
  }

  // Server alerts counted by kind (summary) plus the daemon's own (history, local clock).
  function alertTotals() {
    const kinds = (state.summary && state.summary.alerts) || {};
    let total = 0, critical = 0;
    for (const [kind, n] of Object.entries(kinds)) {
      total += n;
      if (kCriticalAlerts.has(kind)) critical += n;
    }
    for (const a of activeAlerts()) {
      if (a.server === null || a.server === undefined) {
        total++;
        if (alertSeverity(a) === 'critical') critical++;
      }
    }
    return {total, critical};
  }

  function renderSummary() {
    const sum = state.summary || {};
    const sel = state.selection || {};
    const chosen = selectedServer();
    const card = (id, level) => { if ($(id).dataset.level !== (level || '')) $(id).dataset.level = level || ''; };

    setText('sum-selected', chosen ? chosen.name : 'none');
    setText('sum-selected-sub', chosen
      ? [hostPort(chosen), chosen.stratum != null ? 'stratum ' + chosen.stratum : null].filter(Boolean).join(' · ')
      : 'no source survives selection');
    card('card-selected', chosen ? 'ok' : 'bad');

    const sysOffset = sum.system_offset ?? sel.system_offset ?? (chosen ? chosen.offset : null);
    const sysJitter = sum.system_jitter ?? sel.system_jitter ?? (chosen ? chosen.jitter : null);
    setText('sum-offset', fmtSeconds(sysOffset, true));
    setText('sum-offset-sub', sysJitter != null ? 'jitter ' + fmtSeconds(sysJitter, false) : '');
    card('card-offset', sysOffset == null ? '' : 'info');

    const counts = stateCounts();
    const entries = sum.entries ?? 0;
    const answering = Math.max(0, entries - counts.unreachable - counts.auth_failed - counts.pending -
                                  counts.unsynchronized);
    setText('sum-servers', `${answering} / ${entries}`);
    const parts = [];
    const plural = (n, one, many) => `${n} ${n > 1 ? many : one}`;
    if (counts.falseticker) parts.push(plural(counts.falseticker, 'falseticker', 'falsetickers'));
    if (counts.unreachable) parts.push(`${counts.unreachable} unreachable`);
    if (counts.unsynchronized) parts.push(`${counts.unsynchronized} unsynchronized`);
    if (counts.kod) parts.push(`${counts.kod} kiss-o'-death`);
    if (counts.auth_failed) parts.push(`${counts.auth_failed} authentication failed`);
    setText('sum-servers-sub', parts.length ? parts.join(' · ') : 'answering, all truechimers');
    card('card-servers', !entries || answering === 0 ? 'bad' : parts.length ? 'warn' : 'ok');

    const {total, critical} = alertTotals();
    setText('sum-alerts', String(total));
    setText('sum-alerts-sub', total ? `${critical} critical · ${total - critical} warning` : 'all clear');
    card('card-alerts', critical ? 'bad' : total ? 'warn' : 'ok');

    const changes = sel.selection_changes;
    setText('sum-changes', changes == null ? '—' : String(changes));
    const last = lastFailover(state.selection);
    setText('sum-changes-sub', !state.selection && entries > kSelectionMaxEntries
      ? 'details in api/v1/selection'
      : last ? `last ${fmtAge((nowMs() - toMs(last.at)) / 1000)}: ${changeText(last)}` : 'no failover yet');
    card('card-failover', 'info');

    document.title = (total ? `(${total}) ` : '') + 'ntp-monitor';
  }

  // Counts by state and by alert kind: each is a button that filters the table.
  function renderFleet() {
    const sum = state.summary;
    if (!sum) return;
    const counts = stateCounts();
    const entries = sum.entries || 0;
    // A fleet the table shows whole (the demo's 8 servers) keeps the page as it was: table
    // and charts first, the fleet view at the end. Moved in the DOM (once, when the size
    // class changes) rather than ordered by a flex layout, which would lay out every panel
    // again whenever one changes.
    const small = entries <= kAutoChartMax;
    const main = document.querySelector('main');
    const fleetPanel = $('fleet');
    if (small && fleetPanel.nextElementSibling) main.append(fleetPanel);
    else if (!small && fleetPanel.nextElementSibling !== $('servers-panel')) main.insertBefore(fleetPanel, $('servers-panel'));
    main.dataset.fleet = small ? 'small' : 'large';
    replaceKids($('state-counts'), kStates.map((st) => el('button', {
      type: 'button', class: 'count', 'data-state': st, 'data-count': counts[st],
      'aria-pressed': state.table.state === st ? 'true' : 'false',
      title: `${kStateHelp[st]}. Click to show only these servers.`},
      el('span', {class: 'badge', 'data-state': st}, kStateText[st]),
      el('span', {class: 'n'}, String(counts[st])))));
    const kinds = sum.alerts || {};
    const kindList = [...new Set([...kAlertKinds, ...Object.keys(kinds)])];
    replaceKids($('alert-counts'), kindList.map((kind) => {
      const n = kinds[kind] || 0;
      return el('button', {type: 'button', class: 'count' + (n ? '' : ' zero'), 'data-alert': kind, 'data-count': n,
                           'aria-pressed': state.table.alert === kind ? 'true' : 'false',
                           title: `Servers with a firing ${kind} alert. Click to show only these servers.`},
        el('span', {class: 'chip ' + (n ? (kCriticalAlerts.has(kind) ? 'bad' : 'warn') : '')}, kind),
        el('span', {class: 'n'}, String(n)));
    }));
    setText('fleet-hint', `${entries} monitored · ${sum.sources ?? entries} addresses · ` +
      `${sum.truechimer_count ?? '—'} truechimers` +
      (sum.generated_at ? ` · ${fmtUtc(toMs(sum.generated_at))} UTC` : ''));

    const worst = Array.isArray(sum.worst_offset) ? sum.worst_offset.slice(0, 10) : [];
    replaceKids($('worst-body'), (worst.length ? worst.map((s) => {
      const st = s.state || 'pending';
      const kinds = new Set((s.alerts || []).map(alertKind));
      return el('tr', {'data-server': s.name, 'data-state': st, class: 'pickable',
                       title: 'Click to chart this server'},
        el('td', null, el('span', {class: 'server-name'}, s.name),
           el('span', {class: 'server-addr'}, hostPort(s))),
        el('td', null, el('span', {class: 'badge', 'data-state': st}, kStateText[st] || st)),
        el('td', {class: 'num' + (kinds.has('offset') ? ' alerting' : '')}, fmtSeconds(s.offset, true)),
        el('td', {class: 'num'}, fmtSeconds(s.delay, false)));
    }) : [emptyRow(4, 'No offsets measured yet')]));

    const changes = Array.isArray(sum.recent_state_changes) ? sum.recent_state_changes.slice(0, 10) : [];
    replaceKids($('state-changes-body'), (changes.length ? changes.map((c) => el('tr', {
      'data-server': c.name, class: 'pickable', title: 'Click to chart this server'},
      el('td', {class: 'when'}, fmtUtc(toMs(c.at_unix ?? c.at))),
      el('td', null, el('span', {class: 'server-name'}, c.name || '—')),
      el('td', null, el('span', {class: 'badge plain', 'data-state': c.from || ''}, kStateText[c.from] || c.from || '—')),
      el('td', {class: 'arrow'}, '→'),
      el('td', null, el('span', {class: 'badge plain', 'data-state': c.to || ''}, kStateText[c.to] || c.to || '—'))))
      : [emptyRow(5, 'No state change yet')]));
    renderHistograms();
  }

  function renderSelection() {
    const sum = state.summary;
    const sel = state.selection;
    const chosen = selectedServer();
    const dd = (id, ...nodes) => replaceKids($(id), nodes);
    if (!sel && !sum) {
      for (const id of ['sel-selected', 'sel-majority', 'sel-truechimers', 'sel-falsetickers', 'sel-jitter', 'sel-failover']) setText(id, '—');
      replaceKids($('changes-body'), [emptyRow(5, 'Selection not available')]);
      return;
    }
    const src = sel || sum;
    dd('sel-selected', chosen
      ? el('span', {class: 'chip ok'}, chosen.name + (chosen.address ? ' (' + hostPort(chosen) + ')' : ''))
      : el('span', {class: 'chip bad'}, 'none'));
    dd('sel-majority', src.majority === true ? el('span', {class: 'chip ok'}, 'yes')
      : src.majority === false ? el('span', {class: 'chip bad'}, 'no: truechimers are not a majority') : '—');
    const counts = stateCounts();
    if (sel && Array.isArray(sel.truechimers)) {
      dd('sel-truechimers', ...chips(sel.truechimers, '', 'none'));
      dd('sel-falsetickers', ...chips(Array.isArray(sel.falsetickers) ? sel.falsetickers : [], 'bad', 'none'));
    } else {
      // A large fleet: counts, and a button that lists them in the table.
      dd('sel-truechimers', String(sum.truechimer_count ?? counts.selected + counts.candidate));
      dd('sel-falsetickers', counts.falseticker
        ? el('button', {type: 'button', class: 'chip bad linkish', 'data-filter-state': 'falseticker'},
             `${counts.falseticker}: show them`)
        : el('span', {class: 'hint'}, 'none'));
    }
    setText('sel-jitter', fmtSeconds((sel && sel.system_jitter) ?? (sum && sum.system_jitter) ?? null, false));

    if (!sel) {
      dd('sel-failover', el('span', {class: 'hint'}, 'see api/v1/selection'));
      replaceKids($('changes-body'), [emptyRow(5, `Selection changes are read for fleets up to ${kSelectionMaxEntries} servers (api/v1/selection)`)]);
      return;
    }
    const last = lastFailover(sel);
    if (last) {
      const at = toMs(last.at);
      dd('sel-failover', el('span', null, `${fmtUtc(at)} UTC (${fmtAge((nowMs() - at) / 1000)}): `),
         el('strong', null, changeText(last)), last.reason ? el('span', {class: 'hint'}, ' — ' + last.reason) : null);
    } else {
      dd('sel-failover', el('span', {class: 'hint'}, 'none since start'));
    }

    const changes = selectionChanges(sel).slice(0, 10);
    replaceKids($('changes-body'), (changes.length ? changes.map((c) => el('tr', null,
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
    const rows = active.map((a) => {
      const since = toMs(a.since);
      return el('tr', {'data-alert': alertKind(a), 'data-server': a.server || ''},
        el('td', null, el('span', {class: 'badge plain', 'data-severity': alertSeverity(a)}, alertSeverity(a))),
        el('td', null, el('span', {class: 'server-name'}, a.server || '—')),
        el('td', null, alertKind(a)),
        el('td', {class: 'when', title: since ? new Date(since).toISOString() : ''}, fmtAge(since ? (nowMs() - since) / 1000 : null)),
        el('td', {class: 'msg'}, a.message || ''));
    });
    const total = state.alerts && Number.isFinite(state.alerts.active_total) ? state.alerts.active_total : active.length;
    if (total > active.length) {
      rows.push(el('tr', {class: 'more'}, el('td', {colspan: 5},
        `… and ${total - active.length} more: the alert counts above filter the table by kind`)));
    }
    replaceKids($('alerts-body'), (rows.length ? rows
      : [emptyRow(5, state.lastSuccessMs ? 'No active alerts' : 'Loading…')]));

    const recent = state.alerts && Array.isArray(state.alerts.recent) ? state.alerts.recent.slice(0, 10) : [];
    replaceKids($('transitions-body'), (recent.length ? recent.map((r) => el('tr', null,
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
    renderFleet();
    renderServers();
    renderSummary();
    renderSelection();
    renderAlerts();
    renderFilterControls();
    renderPickHint();
    const names = chartNames();
    setText('charts-hint', names.length ? '' : '· click servers in the table to chart them');
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
    setUrlParam('window', win);
  }

  function setScale(scale) {
    state.scale = scale === 'asinh' ? 'asinh' : 'linear';
    pressOnly($('scale-buttons'), 'scale', state.scale);
    renderCharts();
  }

  // Remember a choice in the URL so a refresh or a shared link keeps it.
  function setUrlParam(name, value) {
    const url = new URL(window.location.href);
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
    history.replaceState(null, '', url);
  }

  // The state and alert <select>s list every value with its fleet count.
  function renderFilterControls() {
    const counts = stateCounts();
    const kinds = (state.summary && state.summary.alerts) || {};
    // Options are updated in place: replacing them would close a menu a person has open.
    const fill = (select, values, textOf, current) => {
      values.forEach((v, i) => {
        const opt = select.options[i + 1];
        if (opt && opt.value === v) { if (opt.textContent !== textOf(v)) opt.textContent = textOf(v); }
        else if (opt) opt.replaceWith(el('option', {value: v}, textOf(v)));
        else select.append(el('option', {value: v}, textOf(v)));
      });
      while (select.options.length > values.length + 1) select.options[select.options.length - 1].remove();
      if (select.value !== current) select.value = current;
    };
    fill($('filter-state'), kStates, (st) => `${kStateText[st]} (${counts[st]})`, state.table.state);
    const kindList = [...new Set([...kAlertKinds, ...Object.keys(kinds)])];
    fill($('filter-alert'), kindList, (k) => `${k} (${kinds[k] || 0})`, state.table.alert);
    if (document.activeElement !== $('filter-q')) $('filter-q').value = state.table.q;
    $('page-size').value = String(state.table.limit);
  }

  // Any change of search, filter, sort or page size starts again at the first page.
  function setQuery(changes) {
    Object.assign(state.table, changes);
    state.table.cursors = [null];
    state.table.generation++;
    for (const k of ['q', 'state', 'alert', 'sort']) setUrlParam(k, state.table[k]);
    renderFleet();
    renderFilterControls();
    renderSortHeaders();
    schedulePoll(0);
  }

  function goPage(direction) {
    const t = state.table;
    if (direction === 'next' && state.nextCursor) t.cursors.push(state.nextCursor);
    else if (direction === 'prev' && t.cursors.length > 1) t.cursors.pop();
    else if (direction === 'first') t.cursors = [null];
    else return;
    t.generation++;
    schedulePoll(0);
  }

  function sortBy(th) {
    const key = th.dataset.sort;
    const current = state.table.sort;
    let next;
    if (current.replace(/^-/, '') !== key) next = th.dataset.first || key;
    else if (current === (th.dataset.first || key)) next = current.startsWith('-') ? key : '-' + key;
    else next = '';  // third click: configuration order again
    setQuery({sort: next});
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
    $('table-tools').addEventListener('submit', (e) => e.preventDefault());
    let searchTimer = null;
    $('filter-q').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setQuery({q: $('filter-q').value.trim()}), kSearchDebounceMs);
    });
    $('filter-state').addEventListener('change', () => setQuery({state: $('filter-state').value}));
    $('filter-alert').addEventListener('change', () => setQuery({alert: $('filter-alert').value}));
    $('page-size').addEventListener('change', () => setQuery({limit: Number($('page-size').value) || kDefaultPageSize}));
    $('filter-clear').addEventListener('click', () => setQuery({q: '', state: '', alert: '', sort: ''}));
    $('page-next').addEventListener('click', () => goPage('next'));
    $('page-prev').addEventListener('click', () => goPage('prev'));
    $('page-first').addEventListener('click', () => goPage('first'));
    for (const th of document.querySelectorAll('#servers th[data-sort]')) {
      th.tabIndex = 0;
      th.addEventListener('click', () => sortBy(th));
      th.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(th); } });
    }
    $('state-counts').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-state]');
      if (b) setQuery({state: state.table.state === b.dataset.state ? '' : b.dataset.state});
    });
    $('alert-counts').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-alert]');
      if (b) setQuery({alert: state.table.alert === b.dataset.alert ? '' : b.dataset.alert});
    });
    $('selection-facts').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-filter-state]');
      if (b) setQuery({state: b.dataset.filterState});
    });
    // A click on a server row (table, worst offsets, state changes) charts it or drops it.
    for (const id of ['servers-body', 'worst-body', 'state-changes-body']) {
      $(id).addEventListener('click', (e) => {
        const tr = e.target.closest('tr[data-server]');
        if (tr && tr.dataset.server) togglePick(tr.dataset.server);
      });
    }

    const params = new URLSearchParams(window.location.search);
    const t = state.table;
    t.q = params.get('q') || '';
    t.state = kStates.includes(params.get('state')) ? params.get('state') : '';
    // Only values the API takes: a stale link must not leave the table on an error.
    t.alert = kAlertKinds.includes(params.get('alert')) ? params.get('alert') : '';
    const sorts = [...document.querySelectorAll('#servers th[data-sort]')].map((th) => th.dataset.sort);
    const sort = params.get('sort') || '';
    t.sort = sorts.includes(sort.replace(/^-/, '')) ? sort : '';
    if (params.get('window') && params.get('window') !== 'live') setWindow(params.get('window'));
    if (params.get('scale')) setScale(params.get('scale'));
    renderFilterControls();
    renderSortHeaders();

    // One poll loop per page; a hidden tab stops polling entirely (50 forgotten tabs cost
    // nothing) and catches up at once when shown again.
    document.addEventListener('visibilitychange', () => { if (!document.hidden) schedulePoll(0); });
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(() => resizeCharts());
      for (const id of ['chart-offset', 'chart-delay', 'hist-offset', 'hist-delay']) ro.observe($(id));
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
