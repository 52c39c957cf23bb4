// KestrelTcp dashboard. No framework, no library, no inline code (the page's Content-Security-Policy
// allows scripts, styles and fetches from this server only): it asks /dashboard/data for everything
// once a second and updates the page in place.
'use strict';

(() => {
  const REFRESH_MS = 1000;
  const FETCH_TIMEOUT_MS = 5000;
  const CHART_WIDTH = 300;
  const CHART_HEIGHT = 60;

  const panels = new Map();
  const sort = { key: null, type: 'text', descending: false };
  let last = null;
  let refreshes = 0;

  const byId = (id) => document.getElementById(id);

  // 1.2k, 34k, 5.6M: three significant figures at most, exact value in the title.
  function formatCount(n) {
    if (n === null || n === undefined) return '–';
    const abs = Math.abs(n);
    if (abs < 1000) return Number.isInteger(n) ? String(n) : trimZero(n.toFixed(1));
    const units = ['k', 'M', 'G', 'T', 'P'];
    let value = n;
    let unit = -1;
    while (Math.abs(value) >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit++;
    }
    return trimZero(value.toFixed(Math.abs(value) < 100 ? 1 : 0)) + units[unit];
  }

  // Decimal units, as network rates are given: 1 kB = 1000 B.
  function formatBytes(n) {
    if (n === null || n === undefined) return '–';
    if (n < 1000) return `${Math.round(n)} B`;
    const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
    let value = n;
    let unit = -1;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit++;
    }
    return `${value.toFixed(value < 100 ? 1 : 0)} ${units[unit]}`;
  }

  const formatRate = (n) => `${formatBytes(n)}/s`;

  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
  }

  const pad = (n) => String(n).padStart(2, '0');
  const trimZero = (text) => text.replace(/\.0$/, '');
  const exact = (n) => (typeof n === 'number' ? n.toLocaleString() : String(n));

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  // The shown text, and the raw figure as data-value (what /metrics says) and as the tooltip.
  function setFigure(el, text, raw, unit) {
    setText(el, text);
    el.dataset.value = raw === null || raw === undefined ? '' : String(raw);
    el.title = raw === null || raw === undefined ? '' : `${exact(raw)}${unit ? ` ${unit}` : ''}`;
  }

  function setState(el, state) {
    el.dataset.state = state;
    setText(el, state.replace(/_/g, ' '));
  }

  function renderServer(server) {
    setState(byId('server-state'), server.state);
    const [release, commit] = server.version.split('+');
    setFigure(byId('server-version'), commit ? `${release}+${commit.slice(0, 7)}` : release, server.version);
    setText(byId('server-machine'), server.machineName);
    setFigure(byId('server-uptime'), formatDuration(server.uptimeSeconds), server.uptimeSeconds, 's');
    setFigure(byId('server-memory'), `${formatBytes(server.workingSetBytes)} (managed ${formatBytes(server.managedHeapBytes)})`,
      server.workingSetBytes, 'bytes resident');
    setText(byId('server-transport'), server.transport + (server.inlineScheduling ? ', inline' : ''));
    setText(byId('server-http'), server.http ?? '–');
    const title = `KestrelTcp · ${server.machineName}`;
    if (document.title !== title) document.title = title;
  }

  function panelFor(listener) {
    let panel = panels.get(listener.name);
    if (panel) return panel;
    const article = byId('listener-template').content.firstElementChild.cloneNode(true);
    article.dataset.listener = listener.name;
    byId('listeners').append(article);
    const field = (name) => article.querySelector(`[data-field="${name}"]`);
    panel = {
      article,
      name: article.querySelector('.name'),
      handler: article.querySelector('.handler'),
      endpoint: article.querySelector('.endpoint'),
      state: article.querySelector('.state'),
      open: field('open'),
      peak: field('peak'),
      limit: field('limit'),
      accepted: field('accepted'),
      acceptedRate: field('acceptedRate'),
      bytesIn: field('bytesIn'),
      bytesInRate: field('bytesInRate'),
      bytesOut: field('bytesOut'),
      bytesOutRate: field('bytesOutRate'),
      rejected: field('rejected'),
      closed: field('closed'),
      rejectedReasons: article.querySelector('[data-reasons="rejected"]'),
      closedReasons: article.querySelector('[data-reasons="closed"]'),
      openChart: article.querySelector('[data-chart="open"]'),
      bytesChart: article.querySelector('[data-chart="bytes"]'),
    };
    panels.set(listener.name, panel);
    return panel;
  }

  function renderReasons(list, totalEl, reasons) {
    const entries = Object.entries(reasons).filter(([, count]) => count > 0);
    const total = Object.values(reasons).reduce((sum, count) => sum + count, 0);
    setFigure(totalEl, formatCount(total), total);
    const items = entries.map(([reason, count]) => {
      const li = document.createElement('li');
      li.dataset.reason = reason;
      li.dataset.value = String(count);
      li.title = `${reason}: ${exact(count)}`;
      li.textContent = `${reason.replace(/_/g, ' ')} ${formatCount(count)}`;
      return li;
    });
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'none';
      li.textContent = 'none';
      items.push(li);
    }
    list.replaceChildren(...items);
  }

  // Rounds a chart's top up to 1, 2 or 5 times a power of ten.
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    const step = [1, 2, 5, 10].find((m) => m * power >= value);
    return step * power;
  }

  // Each series is drawn right-aligned on the chart's full width: the newest sample at "now",
  // one sample per interval back to capacity samples ago.
  function drawChart(figure, capacity, series, format) {
    const all = series.flatMap(([, values]) => values);
    const max = niceMax(Math.max(0, ...all));
    const step = CHART_WIDTH / Math.max(1, capacity - 1);
    for (const [el, values, area] of series) {
      const offset = capacity - values.length;
      const points = values.map((v, i) =>
        `${((offset + i) * step).toFixed(1)},${(CHART_HEIGHT - 1 - (v / max) * (CHART_HEIGHT - 2)).toFixed(1)}`);
      el.setAttribute('points', points.join(' '));
      el.dataset.points = String(values.length);
      if (area) {
        area.setAttribute('points', values.length === 0 ? '' :
          `${points.join(' ')} ${((capacity - 1) * step).toFixed(1)},${CHART_HEIGHT} ${(offset * step).toFixed(1)},${CHART_HEIGHT}`);
      }
    }
    const label = figure.querySelector('.max');
    setFigure(label, `max ${format(max)}`, max);
  }

  function renderListener(listener, capacity) {
    const p = panelFor(listener);
    p.article.dataset.state = listener.state;
    setText(p.name, listener.name);
    setText(p.handler, listener.handler);
    setText(p.endpoint, listener.endpoint);
    setState(p.state, listener.state);

    setFigure(p.open, formatCount(listener.activeConnections), listener.activeConnections);
    setFigure(p.peak, formatCount(listener.peakConnections), listener.peakConnections);
    setFigure(p.limit, listener.maxConnections === null ? 'none' : formatCount(listener.maxConnections), listener.maxConnections);
    setFigure(p.accepted, formatCount(listener.acceptedTotal), listener.acceptedTotal);
    setFigure(p.acceptedRate, formatCount(listener.acceptedPerSecond), listener.acceptedPerSecond);
    setFigure(p.bytesIn, formatBytes(listener.bytesReceivedTotal), listener.bytesReceivedTotal, 'bytes');
    setFigure(p.bytesInRate, formatRate(listener.bytesReceivedPerSecond), listener.bytesReceivedPerSecond, 'bytes/s');
    setFigure(p.bytesOut, formatBytes(listener.bytesSentTotal), listener.bytesSentTotal, 'bytes');
    setFigure(p.bytesOutRate, formatRate(listener.bytesSentPerSecond), listener.bytesSentPerSecond, 'bytes/s');
    renderReasons(p.rejectedReasons, p.rejected, listener.rejectedTotal);
    renderReasons(p.closedReasons, p.closed, listener.closedTotal);

    const h = listener.history;
    drawChart(p.openChart, capacity,
      [[p.openChart.querySelector('.line.open'), h.open, p.openChart.querySelector('.area.open')]], formatCount);
    drawChart(p.bytesChart, capacity,
      [[p.bytesChart.querySelector('.line.in'), h.bytesReceivedPerSecond], [p.bytesChart.querySelector('.line.out'), h.bytesSentPerSecond]],
      formatRate);
  }

  // Numbers by value, addresses with their numbers read as numbers (10.0.0.9 before 10.0.0.10),
  // other text (ids, names) by code unit; ties by id, so the order is the same at every refresh.
  function compare(a, b, type) {
    if (type === 'number') return a - b;
    if (type === 'address') return String(a).localeCompare(String(b), 'en', { numeric: true });
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function compareRows(a, b) {
    let order = compare(a[sort.key], b[sort.key], sort.type);
    if (order === 0) order = compare(a.id, b.id, 'text');
    return sort.descending ? -order : order;
  }

  function renderConnections(data) {
    const rows = [];
    const notes = [];
    let open = 0;
    for (const listener of data.listeners) {
      open += listener.openConnections;
      if (listener.truncated) {
        notes.push(`${listener.name}: ${exact(listener.listed)} of ${exact(listener.openConnections)} listed`);
      }
      for (const c of listener.connections) {
        rows.push({
          id: c.id,
          listener: listener.name,
          client: c.remote ?? '',
          peer: c.peer,
          connectedSeconds: c.connectedSeconds,
          bytesReceived: c.bytesReceived,
          bytesSent: c.bytesSent,
        });
      }
    }
    if (sort.key) rows.sort(compareRows);

    const cell = (text, raw, className, title) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (raw !== undefined) td.dataset.value = String(raw);
      if (className) td.className = className;
      if (title) td.title = title;
      return td;
    };
    const trs = rows.map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.id = r.id;
      tr.append(
        cell(r.id, r.id),
        cell(r.listener, r.listener),
        cell(r.client, r.client, null, r.peer ? `through the proxy ${r.peer}` : null),
        cell(formatDuration(r.connectedSeconds), r.connectedSeconds, 'num'),
        cell(formatBytes(r.bytesReceived), r.bytesReceived, 'num', `${exact(r.bytesReceived)} bytes`),
        cell(formatBytes(r.bytesSent), r.bytesSent, 'num', `${exact(r.bytesSent)} bytes`));
      return tr;
    });
    document.querySelector('#connections tbody').replaceChildren(...trs);

    setFigure(byId('connections-count'), `(${formatCount(open)})`, open);
    const note = byId('connections-note');
    note.hidden = notes.length === 0;
    setText(note, notes.length === 0 ? '' :
      `At most ${exact(data.maxListedConnections)} listed per listener, as on /connections — ${notes.join('; ')}.`);
    byId('connections-empty').hidden = rows.length > 0;
  }

  function render(data) {
    renderServer(data.server);
    for (const listener of data.listeners) renderListener(listener, data.history.capacity);
    renderConnections(data);
  }

  function setLive(state, text) {
    const el = byId('live');
    el.dataset.live = state;
    setText(el, text);
  }

  async function refresh() {
    const started = performance.now();
    try {
      let data;
      try {
        const response = await fetch('/dashboard/data', {
          cache: 'no-store',
          headers: { Accept: 'application/json' },
          signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        data = await response.json();
      } catch (error) {
        setLive('offline', `no answer from the server (${error.message}) · showing the last figures`);
        return;
      }
      last = data;
      render(data);
      refreshes++;
      document.body.dataset.refreshes = String(refreshes);
      setLive('live', `live · ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      console.error(error);
      setLive('offline', `the page failed to draw the figures (${error.message})`);
    } finally {
      setTimeout(refresh, Math.max(0, REFRESH_MS - (performance.now() - started)));
    }
  }

  for (const th of document.querySelectorAll('#connections th')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.key;
      sort.descending = sort.key === key ? !sort.descending : th.dataset.type === 'number';
      sort.key = key;
      sort.type = th.dataset.type;
      for (const other of document.querySelectorAll('#connections th')) {
        other.setAttribute('aria-sort', other === th ? (sort.descending ? 'descending' : 'ascending') : 'none');
      }
      if (last) renderConnections(last);
    });
  }

  refresh();
})();
