// The gaxx dashboard: a server-sent event stream of changes, rendered in place (no reloads).
// Every piece of data goes into the page as text (textContent), never as markup: task output
// and agent errors are not trusted.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || '';
  // ?fleet=a,b: the server sends only those fleets' agents, runs and limits.
  const fleetParam = params.getAll('fleet').join(',');
  const state = { agents: [], runs: new Map(), queue: {}, fleets: [], selected: null, dirty: new Set() };
  const charts = { load: window.gaxxCharts.loadChart($('load-chart')), run: window.gaxxCharts.runChart($('run-chart')) };
  const rows = new Map();
  const runCards = new Map();
  let frame = 0;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function set(e, text, cls) {
    const t = String(text);
    if (e.textContent !== t) e.textContent = t;
    if (cls !== undefined && e.className !== cls) e.className = cls;
  }
  const fmt = (n, d) => (n == null || !isFinite(n) ? '–' : Number(n).toFixed(d));
  function duration(s) {
    if (s == null || !isFinite(s)) return '–';
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  function expiry(ms) {
    if (!ms) return ['–', ''];
    const days = (ms - Date.now()) / 86400000;
    return [days < 1 ? duration((ms - Date.now()) / 1000) : days.toFixed(1) + ' d', days < 7 ? 'soon' : ''];
  }

  // --- views -------------------------------------------------------------------------------
  function showView() {
    const v = location.hash === '#runs' ? 'runs' : 'agents';
    for (const name of ['agents', 'runs']) {
      $('view-' + name).classList.toggle('active', name === v);
      $('tab-' + name).classList.toggle('active', name === v);
    }
    state.dirty.add('agents').add('runs');
    schedule();
  }

  // --- agents ------------------------------------------------------------------------------
  function agentRow(a) {
    const key = a.fleet + '/' + a.host;
    let r = rows.get(key);
    if (!r) {
      const tr = el('tr');
      tr.dataset.host = a.host;
      const cells = [];
      for (let i = 0; i < 11; i++) cells.push(tr.appendChild(el('td', i === 10 ? 'err' : '')));
      r = { tr, cells };
      rows.set(key, r);
    }
    const c = r.cells;
    set(c[0], a.fleet || '–');
    set(c[1], a.host);
    set(c[2], a.reachable ? 'reachable' : 'unreachable', a.reachable ? 'state-up' : 'state-down');
    set(c[3], a.version || '–');
    set(c[4], a.uid == null ? '–' : a.uid);
    set(c[5], a.load ? a.load.map((x) => fmt(x, 2)).join(' / ') : '–');
    set(c[6], a.capacity == null ? '–' : a.running + ' / ' + a.capacity);
    const [exp, cls] = expiry(a.certNotAfterMs);
    set(c[7], exp + (a.certRenewalDue ? ' (renewal due)' : ''), cls);
    set(c[8], a.breaker, 'b-' + a.breaker);
    set(c[9], a.blockedPeers.length ? a.blockedPeers.map((b) => b.address + ' (' + b.reason + ')').join(', ') : '–');
    set(c[10], a.error || '', 'err');
    return r.tr;
  }

  function renderAgents() {
    // A hidden table is brought up to date when its view is shown (showView marks it dirty).
    if (!$('view-agents').classList.contains('active')) {
      const up = state.agents.filter((a) => a.reachable).length;
      set($('agents-summary'), state.agents.length + ' agents: ' + up + ' reachable, ' + (state.agents.length - up) + ' unreachable');
      return;
    }
    const body = $('agents-table').tBodies[0];
    const seen = new Set();
    let prev = null;
    for (const a of state.agents) {
      const tr = agentRow(a);
      seen.add(a.fleet + '/' + a.host);
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== tr) body.insertBefore(tr, want);
      prev = tr;
    }
    for (const [k, r] of rows) {
      if (seen.has(k)) continue;
      r.tr.remove();
      rows.delete(k);
    }
    const up = state.agents.filter((a) => a.reachable).length;
    const fleets = new Set(state.agents.map((a) => a.fleet || '(agents)'));
    set(
      $('agents-summary'),
      state.agents.length + ' agents in ' + fleets.size + ' fleet(s): ' + up + ' reachable, ' + (state.agents.length - up) + ' unreachable',
    );
    charts.load.update(
      state.agents.map((a) => a.host),
      state.agents.map((a) => (a.load ? a.load[0] : null)),
    );
  }

  // --- fleet TTL and budget ------------------------------------------------------------------
  function renderFleets() {
    const box = $('fleets-box');
    box.hidden = state.fleets.length === 0;
    const body = $('fleets-table').tBodies[0];
    body.textContent = '';
    for (const f of state.fleets) {
      const tr = body.appendChild(el('tr'));
      tr.dataset.fleet = f.fleet;
      const left = f.expiresAtMs == null ? null : Math.max(0, (f.expiresAtMs - Date.now()) / 1000);
      const used = f.budgetUsed == null ? null : f.budgetUsed;
      const cells = [
        [f.fleet, ''],
        [left == null ? '–' : left > 0 ? duration(left) : 'passed', left != null && left < 600 ? 'soon' : ''],
        [fmt(f.costSoFar, 4) + ' ' + f.currency, 'cost'],
        [f.budget == null ? '–' : fmt(f.budget, 2) + ' ' + f.currency, ''],
        [used == null ? '–' : Math.round(used * 100) + '%', used != null && used >= 0.8 ? 'soon' : ''],
        [fmt(f.pricePerHour, 4), ''],
      ];
      for (const [text, cls] of cells) tr.appendChild(el('td', cls, text));
    }
  }

  // --- runs --------------------------------------------------------------------------------
  function runCard(r) {
    let c = runCards.get(r.runId);
    if (!c) {
      const root = el('div', 'run');
      root.dataset.run = r.runId;
      const top = root.appendChild(el('div', 'top'));
      const id = top.appendChild(el('span', 'id'));
      const cmd = top.appendChild(el('span', 'cmd'));
      const st = top.appendChild(el('span', 'state'));
      const cancel = top.appendChild(el('button', 'cancel', 'Cancel…'));
      cancel.type = 'button';
      cancel.addEventListener('click', (ev) => {
        ev.stopPropagation();
        askCancel(r.runId);
      });
      const bar = root.appendChild(el('div', 'bar'));
      const ok = bar.appendChild(el('div', 'ok'));
      const bad = bar.appendChild(el('div', 'bad'));
      const nums = root.appendChild(el('div', 'nums'));
      const progress = nums.appendChild(el('span', 'progress'));
      const rate = nums.appendChild(el('span', 'rate'));
      const eta = nums.appendChild(el('span', 'eta'));
      const failed = nums.appendChild(el('span', 'failed'));
      root.addEventListener('click', () => select(r.runId));
      c = { root, id, cmd, st, cancel, ok, bad, progress, rate, eta, failed };
      runCards.set(r.runId, c);
    }
    const failed = r.failedTotal;
    set(c.id, r.runId);
    set(c.cmd, r.command + (r.fleets.length ? ' on ' + r.fleets.join(', ') : ''));
    set(c.st, r.state);
    c.cancel.hidden = r.state !== 'running';
    c.ok.style.width = (100 * (r.done - failed)) / Math.max(1, r.total) + '%';
    c.bad.style.width = (100 * failed) / Math.max(1, r.total) + '%';
    set(c.progress, r.done + '/' + r.total);
    set(c.rate, fmt(r.rate, 1) + ' tasks/s');
    set(c.eta, r.state === 'done' || r.state === 'cancelled' ? 'finished' : 'ETA ' + duration(r.etaS));
    set(c.failed, failed + ' failed');
    c.root.classList.toggle('selected', state.selected === r.runId);
    return c.root;
  }

  function renderRuns() {
    const list = $('runs-list');
    const runs = [...state.runs.values()].sort((a, b) => b.createdAt - a.createdAt);
    if (!runs.length) set(list, 'No runs yet.');
    else if (list.firstChild && list.firstChild.nodeType === 3) list.textContent = '';
    runs.forEach((r, i) => {
      const card = runCard(r);
      if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
    });
    if (!state.selected && runs.length) state.selected = runs[0].runId;
    renderDetail();
  }

  function renderDetail() {
    const r = state.runs.get(state.selected);
    $('run-detail').hidden = !r;
    if (!r || !$('view-runs').classList.contains('active')) return;
    set($('run-title'), 'Run ' + r.runId);
    const stats = $('run-stats');
    stats.textContent = '';
    const outcomes =
      Object.entries(r.byOutcome)
        .map(([k, v]) => k + ' ' + v)
        .join(', ') || 'no results yet';
    for (const t of [
      r.done + '/' + r.total + ' done',
      fmt(r.rate, 1) + ' tasks/s',
      r.state === 'done' || r.state === 'cancelled' ? 'finished' : 'ETA ' + duration(r.etaS),
      outcomes,
    ])
      stats.appendChild(el('span', '', t));
    charts.run.update(r.series);
    renderHosts(r.hosts);
    set($('failed-count'), '(' + r.failedTotal + ')');
    // The failures list changes only when a new failure arrives.
    const fkey = r.runId + ':' + r.failedTotal;
    const fl = $('failures');
    if (fl.dataset.key === fkey) return;
    fl.dataset.key = fkey;
    fl.textContent = '';
    for (const f of r.failures) {
      const d = fl.appendChild(el('div', 'failure'));
      d.dataset.task = f.taskId;
      d.appendChild(
        el(
          'div',
          '',
          f.taskId + ' on ' + f.host + ': ' + f.outcome + (f.exitCode != null ? ' (exit ' + f.exitCode + ')' : '') + (f.error ? ' – ' + f.error : ''),
        ),
      );
      d.appendChild(el('pre', 'tail', f.tail || '(no output)'));
    }
  }

  // Rows are kept per host and only their changed cells rewritten (hundreds of hosts).
  const hostRows = new Map();
  function renderHosts(hosts) {
    const body = $('hosts-table').tBodies[0];
    const seen = new Set();
    hosts.forEach((h, i) => {
      let r = hostRows.get(h.host);
      if (!r) {
        const tr = el('tr');
        r = { tr, cells: [0, 1, 2, 3, 4].map(() => tr.appendChild(el('td'))) };
        hostRows.set(h.host, r);
      }
      seen.add(h.host);
      set(r.cells[0], h.host);
      set(r.cells[1], h.done);
      set(r.cells[2], h.failed);
      set(r.cells[3], fmt(h.rate, 2));
      set(r.cells[4], h.straggler ? 'straggler' : '', h.straggler ? 'straggler' : '');
      if (body.children[i] !== r.tr) body.insertBefore(r.tr, body.children[i] || null);
    });
    for (const [k, r] of hostRows) {
      if (seen.has(k)) continue;
      r.tr.remove();
      hostRows.delete(k);
    }
  }

  function select(runId) {
    if (state.selected !== runId) charts.run.reset();
    state.selected = runId;
    state.dirty.add('runs');
    schedule();
  }

  // A message in the header (a failed cancel), until the next one.
  function notice(text) {
    $('notice').hidden = !text;
    set($('notice'), text);
  }

  function askCancel(runId) {
    const dlg = $('confirm');
    set($('confirm-text'), 'Cancel run ' + runId + '? Tasks not started are withdrawn, running ones are stopped on their agents.');
    const done = (yes) => {
      dlg.close();
      $('confirm-yes').onclick = $('confirm-no').onclick = null;
      if (yes)
        fetch('/api/runs/' + encodeURIComponent(runId) + '/cancel', { method: 'POST', headers: { 'x-gaxx-token': token } })
          .then(async (res) => {
            const body = res.ok ? null : await res.json().catch(() => null);
            notice(res.ok ? '' : 'cancel of run ' + runId + ' failed: ' + ((body && body.error) || 'HTTP ' + res.status));
          })
          .catch((e) => notice('cancel of run ' + runId + ' failed: ' + e.message));
    };
    $('confirm-yes').onclick = () => done(true);
    $('confirm-no').onclick = () => done(false);
    dlg.showModal();
  }

  // --- updates -----------------------------------------------------------------------------
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }
  function render() {
    frame = 0;
    performance.mark('gaxx:update:start');
    if (state.dirty.has('agents')) renderAgents();
    if (state.dirty.has('fleets')) renderFleets();
    if (state.dirty.has('runs')) renderRuns();
    if (state.dirty.has('queue')) {
      const q = state.queue;
      set($('queue'), 'queue: ' + (q.waiting || 0) + ' waiting, ' + (q.active || 0) + ' active, ' + (q.delayed || 0) + ' delayed');
    }
    state.dirty.clear();
    performance.measure('gaxx:update', 'gaxx:update:start');
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  function connect() {
    const es = new EventSource('/events?token=' + encodeURIComponent(token) + (fleetParam ? '&fleet=' + encodeURIComponent(fleetParam) : ''));
    es.addEventListener('open', () => set($('conn'), 'live', 'conn live'));
    es.addEventListener('error', () => set($('conn'), 'reconnecting…', 'conn lost'));
    es.addEventListener('agents', (e) => ((state.agents = JSON.parse(e.data)), state.dirty.add('agents'), schedule()));
    es.addEventListener('runs', (e) => {
      for (const r of JSON.parse(e.data)) state.runs.set(r.runId, r);
      state.dirty.add('runs');
      schedule();
    });
    es.addEventListener('queue', (e) => ((state.queue = JSON.parse(e.data)), state.dirty.add('queue'), schedule()));
    // Runs, queue and limits are as Redis last gave them: shown with why when it does not answer.
    es.addEventListener('redis', (e) => {
      const r = JSON.parse(e.data);
      $('redis').hidden = !r.error;
      set($('redis'), r.error ? r.error + ' (runs and queue as last read)' : '');
    });
    es.addEventListener('fleets', (e) => ((state.fleets = JSON.parse(e.data)), state.dirty.add('fleets'), schedule()));
  }

  if (fleetParam) {
    $('watching').hidden = false;
    set($('watching'), 'fleet: ' + fleetParam.split(',').join(', '));
  }
  // The TTL counts down between events.
  window.setInterval(() => {
    if (!state.fleets.length) return;
    state.dirty.add('fleets');
    schedule();
  }, 1000);

  window.addEventListener('hashchange', showView);
  showView();
  connect();
})();
