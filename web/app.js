// The ecapture web view: a live, virtualised list of captured rows (Server-Sent Events read with
// fetch so that a bearer token can be sent), filters, a detail pane and exports. Captured bytes
// are untrusted: they only ever reach the page as text (textContent) or as a blob: image.
'use strict';

(() => {
  const ROW_H = 26;
  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem('ecapture-token') || '',
    rows: [],            // row summaries, ids ascending
    byId: new Map(),     // id → row
    view: [],            // rows shown (filtered), in order
    history: 10000,      // server's --web-history: the page keeps as many
    paused: false,
    held: [],            // batches that arrived while paused
    clearedBelow: 0,     // rows with an id up to this one were cleared
    selected: null,      // id of the row in the detail pane
    multi: new Set(),    // ids selected for export (ctrl/shift-click)
    modules: new Set(),
    dropped: 0,
    dirty: false,
    lastFilterMs: 0,
    info: null,
  };
  window.ecapture = state;  // for tests and the curious

  // ---- HTTP helpers (the token rides along when there is one) ----
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (state.token) h['Authorization'] = 'Bearer ' + state.token;
    return h;
  }
  async function api(path, opts) {
    const o = Object.assign({}, opts || {});
    o.headers = headers(o.headers);
    const res = await fetch(path, o);
    if (res.status === 401) { askToken(); throw new Error('token required'); }
    return res;
  }
  function askToken(message) {
    $('token-dialog').hidden = false;
    $('token-error').textContent = message || (state.token ? 'wrong token' : '');
    $('token-input').focus();
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token-input').value.trim();
    sessionStorage.setItem('ecapture-token', state.token);
    $('token-dialog').hidden = true;
    start();
  });

  // ---- formatting ----
  const pad = (n, w) => String(n).padStart(w, '0');
  function fmtTime(ns) {
    const d = new Date(Number(ns) / 1e6);
    return pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2) +
        '.' + pad(d.getMilliseconds(), 3);
  }
  function fmtSize(n) {
    if (n === undefined || n === null) return '';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }
  function fmtDur(ns) {
    if (ns === undefined || ns === null) return '';
    const ms = ns / 1e6;
    if (ms < 1) return (ns / 1e3).toFixed(0) + ' µs';
    if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + ' ms';
    return (ms / 1000).toFixed(2) + ' s';
  }
  function statusClass(r) {
    if (r.kind === 'http') {
      if (r.status === null || r.status === undefined) return 'pend';
      return String(Math.floor(r.status / 100));
    }
    if (r.kind === 'shell' || r.kind === 'sql') {
      if (r.status === null || r.status === undefined) return 'pend';
      return r.status === 0 ? '2' : 'fail';
    }
    return '';
  }
  function statusText(r) {
    const none = r.status === null || r.status === undefined;
    if (r.kind === 'http') return none ? '…' : String(r.status);
    if (r.kind === 'shell' || r.kind === 'sql') {
      return r.status === null || r.status === undefined ? '?' : String(r.status);
    }
    return r.direction === 'WRITE' ? '→' : '←';
  }
  function whatText(r) {
    if (r.kind === 'http') return (r.host || '') + (r.path || '');
    if (r.kind === 'tls') return r.binary ? '(binary)' : (r.text || '').replace(/\s+/g, ' ');
    return (r.type ? '[' + r.type + '] ' : '') + (r.text || '').replace(/\s+/g, ' ');
  }
  function sizeOf(r) {
    if (r.kind === 'http') return r.resp_size !== undefined ? r.resp_size : r.req_size;
    if (r.kind === 'tls') return r.size;
    return undefined;
  }

  // ---- filters ----
  const f = {};
  function readFilters() {
    f.text = $('filter-text').value.trim().toLowerCase();
    const pids = $('filter-pid').value.split(/[\s,]+/).filter((s) => s !== '');
    f.pids = pids.length ? new Set(pids.map(Number)) : null;
    f.comm = $('filter-comm').value.trim().toLowerCase();
    f.host = $('filter-host').value.trim().toLowerCase();
    f.status = $('filter-status').value;
    f.kind = $('filter-kind').value;
    f.module = $('filter-module').value;
  }
  function matches(r) {
    if (r.id <= state.clearedBelow) return false;
    if (f.pids && !f.pids.has(r.pid)) return false;
    if (f.kind && r.kind !== f.kind) return false;
    if (f.module && r.module !== f.module) return false;
    if (f.comm && !(r.comm || '').toLowerCase().includes(f.comm)) return false;
    if (f.host && !(r.host || '').toLowerCase().includes(f.host)) return false;
    if (f.status) {
      const c = statusClass(r);
      if (f.status === 'pending') { if (c !== 'pend') return false; }
      else if (f.status === 'fail') { if (!(c === 'fail' || c === '4' || c === '5')) return false; }
      else if (c !== f.status) return false;
    }
    if (f.text) {
      if (r._hay === undefined) {
        r._hay = [r.method, r.host, r.path, r.comm, r.text, r.src, r.dst, r.status, r.pid, r.module,
                  r.type, r.mime].join(' ').toLowerCase();
      }
      if (!r._hay.includes(f.text)) return false;
    }
    return true;
  }
  function keep(r) {
    r._in = matches(r);
    return r._in;
  }
  function refilter() {
    const t0 = performance.now();
    readFilters();
    state.view = state.rows.filter(keep);
    state.lastFilterMs = performance.now() - t0;
    render(true);
  }
  for (const id of ['filter-text', 'filter-pid', 'filter-comm', 'filter-host']) {
    $(id).addEventListener('input', refilter);
  }
  for (const id of ['filter-status', 'filter-kind', 'filter-module']) {
    $(id).addEventListener('change', refilter);
  }
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());

  // ---- rows arriving ----
  function addModule(m) {
    if (!m || state.modules.has(m)) return;
    state.modules.add(m);
    const o = document.createElement('option');
    o.value = m;
    o.textContent = m;
    $('filter-module').appendChild(o);
  }
  function ingest(batch) {
    let appended = false, changed = false;
    for (const r of batch) {
      const old = state.byId.get(r.id);
      if (old) {            // a response completed a request: update in place
        Object.assign(old, r);
        delete old._hay;
        old._ver = (old._ver || 0) + 1;
        const now = matches(old);
        if (now !== old._in) changed = true; else appended = appended || now;
        old._in = now;
        continue;
      }
      if (state.rows.length && r.id < state.rows[state.rows.length - 1].id) continue;
      state.rows.push(r);
      state.byId.set(r.id, r);
      addModule(r.module);
      r._in = matches(r);
      if (r._in) { state.view.push(r); appended = true; }
    }
    // Bounded like the server: the oldest rows go.
    if (state.rows.length > state.history) {
      const cut = state.rows.length - state.history;
      for (const r of state.rows.slice(0, cut)) {
        state.byId.delete(r.id);
        state.multi.delete(r.id);
      }
      state.rows = state.rows.slice(cut);
      changed = true;
    }
    if (changed) state.view = state.rows.filter(keep);
    if (appended || changed) schedule();
  }
  function schedule() {
    if (state.dirty) return;
    state.dirty = true;
    requestAnimationFrame(() => { state.dirty = false; render(false); });
  }

  // ---- the virtualised list ----
  const list = $('rows');
  const spacer = $('spacer');
  const pool = [];  // row elements in use
  let stick = true; // follow the newest row while the user is at the bottom
  list.addEventListener('scroll', () => {
    stick = list.scrollTop + list.clientHeight >= list.scrollHeight - ROW_H * 1.5;
    render(false, true);
  });
  function cell(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }
  function fillRow(el, r) {
    el.textContent = '';
    el.dataset.id = r.id;
    el.className = 'row' + (r.id === state.selected ? ' sel' : '') +
        (state.multi.has(r.id) ? ' multi' : '');
    el.appendChild(cell('c-time', fmtTime(r.time_ns)));
    el.appendChild(cell('c-comm', r.comm || ''));
    el.appendChild(cell('c-pid', String(r.pid)));
    el.appendChild(cell('c-ctr', r.container || '-'));
    const kind = cell('c-kind', '');
    kind.appendChild(cell('badge k-' + r.kind, r.kind));
    el.appendChild(kind);
    el.appendChild(cell('c-status s-' + statusClass(r), statusText(r)));
    const method = r.kind === 'http' ? (r.method || '—') : '';
    el.appendChild(cell('c-method m-' + (r.method || ''), method));
    const what = cell('c-what', '');
    if (r.kind === 'http') {
      what.appendChild(cell('host', r.host || ''));
      what.appendChild(document.createTextNode(r.path || ''));
    } else {
      what.textContent = whatText(r);
    }
    what.title = whatText(r);
    el.appendChild(what);
    el.appendChild(cell('c-size', fmtSize(sizeOf(r))));
    el.appendChild(cell('c-dur', fmtDur(r.duration_ns)));
    el.appendChild(cell('c-addr', r.src || r.dst ? (r.src || '?') + ' → ' + (r.dst || '?') : ''));
  }
  function render(force, fromScroll) {
    const n = state.view.length;
    spacer.style.height = n * ROW_H + 'px';
    if (!fromScroll && stick) list.scrollTop = list.scrollHeight;
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
    const last = Math.min(n, Math.ceil((list.scrollTop + list.clientHeight) / ROW_H) + 5);
    const want = last - first;
    while (pool.length < want) {
      const el = document.createElement('div');
      list.appendChild(el);
      pool.push(el);
    }
    while (pool.length > want) pool.pop().remove();
    for (let i = 0; i < want; i++) {
      const r = state.view[first + i];
      const el = pool[i];
      el.style.top = (first + i) * ROW_H + 'px';
      if (force || el._row !== r || el._ver !== r._ver) {
        fillRow(el, r);
        el._row = r;
        el._ver = r._ver;
      }
    }
    $('count-shown').textContent = n.toLocaleString();
    $('count-total').textContent = state.rows.length.toLocaleString();
    $('count-dropped').textContent = state.dropped.toLocaleString();
    $('empty').hidden = n > 0;
  }
  window.addEventListener('resize', () => render(true));

  list.addEventListener('click', (ev) => {
    const el = ev.target.closest('.row');
    if (!el) return;
    const id = Number(el.dataset.id);
    if (ev.ctrlKey || ev.metaKey) {
      if (state.multi.has(id)) state.multi.delete(id); else state.multi.add(id);
    } else if (ev.shiftKey && state.selected !== null) {
      const a = state.view.findIndex((r) => r.id === state.selected);
      const b = state.view.findIndex((r) => r.id === id);
      for (let i = Math.min(a, b); i <= Math.max(a, b); i++) state.multi.add(state.view[i].id);
    } else {
      state.multi.clear();
      state.multi.add(id);
    }
    select(id);
  });
  list.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
    ev.preventDefault();
    let i = state.view.findIndex((r) => r.id === state.selected);
    i = ev.key === 'ArrowDown' ? Math.min(state.view.length - 1, i + 1) : Math.max(0, i - 1);
    if (state.view[i]) {
      state.multi.clear();
      state.multi.add(state.view[i].id);
      select(state.view[i].id);
      const top = i * ROW_H;
      if (top < list.scrollTop) list.scrollTop = top;
      const bottom = list.scrollTop + list.clientHeight;
      if (top + ROW_H > bottom) list.scrollTop = top + ROW_H - list.clientHeight;
    }
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeDetail();
  });

  // ---- detail pane ----
  function b64bytes(b64) {
    const s = atob(b64 || '');
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function kvTable(pairs) {
    const t = el('table', 'kv');
    for (const [k, v] of pairs) {
      const tr = el('tr');
      tr.appendChild(el('td', '', k));
      tr.appendChild(el('td', '', v === undefined || v === null ? '' : String(v)));
      t.appendChild(tr);
    }
    return t;
  }
  function section(title, note) {
    const s = el('div', 'section');
    const h = el('h3', '', title);
    if (note) h.appendChild(el('span', 'note', note));
    s.appendChild(h);
    return s;
  }
  function hexDump(bytes, limit) {
    const lines = [];
    const n = Math.min(bytes.length, limit);
    for (let off = 0; off < n; off += 16) {
      let hex = '', asc = '';
      for (let i = 0; i < 16; i++) {
        if (off + i < n) {
          const b = bytes[off + i];
          hex += b.toString(16).padStart(2, '0') + (i === 7 ? '  ' : ' ');
          asc += b >= 32 && b < 127 ? String.fromCharCode(b) : '.';
        } else {
          hex += i === 7 ? '    ' : '   ';
        }
      }
      lines.push(off.toString(16).padStart(8, '0') + '  ' + hex + ' |' + asc + '|');
    }
    if (bytes.length > n) lines.push('… ' + (bytes.length - n) + ' more bytes');
    return lines.join('\n');
  }
  // Shows a body: JSON pretty-printed, images as images, text as text, the rest as hex.
  function bodyView(msg, forceHex) {
    const bytes = b64bytes(msg.body_b64);
    const ct = (msg.content_type || '').toLowerCase();
    const box = el('div', 'body-view');
    if (!bytes.length) { box.appendChild(el('div', 'note', '(no body)')); return box; }
    if (!forceHex && ct.startsWith('image/') && !ct.includes('svg')) {
      const img = el('img', 'body-img');
      img.alt = ct;
      img.src = URL.createObjectURL(new Blob([bytes], { type: ct }));
      box.appendChild(img);
      return box;
    }
    let text = null;
    if (!forceHex) {
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch (e) {
        text = null;
      }
      if (text !== null && /[\x00-\x08\x0e-\x1f]/.test(text)) text = null;
    }
    if (text === null) {
      box.appendChild(el('pre', 'body hex', hexDump(bytes, 256 * 1024)));
      return box;
    }
    if (ct.includes('json') || /^\s*[{[]/.test(text)) {
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as is */ }
    }
    box.appendChild(el('pre', 'body body-text', text));
    return box;
  }
  function messagePane(msg, what) {
    const frag = document.createDocumentFragment();
    if (!msg) { frag.appendChild(el('div', 'note', 'No ' + what + ' captured.')); return frag; }
    if (msg.start_line !== undefined) {
      const s = section('Headers', msg.proto + (msg.stream ? ' · stream ' + msg.stream : ''));
      s.appendChild(kvTable(msg.headers || []));
      frag.appendChild(s);
    }
    const notes = [fmtSize(msg.body_size)];
    if (msg.content_encoding) notes.push('decoded from ' + msg.content_encoding);
    if (msg.partial) notes.push('partial');
    if (msg.truncated) notes.push('cut by -t');
    const b = section('Body', notes.join(' · '));
    const hexBtn = el('button', '', 'hex');
    hexBtn.type = 'button';
    let hex = false;
    let view = bodyView(msg, false);
    hexBtn.addEventListener('click', () => {
      hex = !hex;
      hexBtn.classList.toggle('on', hex);
      const nv = bodyView(msg, hex);
      view.replaceWith(nv);
      view = nv;
    });
    b.querySelector('h3').appendChild(hexBtn);
    b.appendChild(view);
    frag.appendChild(b);
    return frag;
  }
  function processPane(d) {
    const p = d.process || {};
    const s = section('Process');
    s.appendChild(kvTable([['comm', p.comm], ['pid', p.pid], ['tid', p.tid], ['uid', p.uid],
      ['container', d.container || '-'], ['cgroup', d.cgroup || '-'], ['exe', p.exe],
      ['cmdline', p.cmdline]]));
    const c = section('Connection');
    c.appendChild(kvTable([['module', d.module], ['src', d.src], ['dst', d.dst], ['fd', p.fd],
      ['connection', p.conn_id], ['protocol', d.proto]]));
    const frag = document.createDocumentFragment();
    frag.appendChild(s);
    frag.appendChild(c);
    return frag;
  }
  function auditPane(d) {
    const cut = d.audit && d.audit.text_length > (d.audit.text || '').length;
    const s = section(d.kind === 'shell' ? 'Command' : 'Statement', cut ? 'truncated' : '');
    s.appendChild(el('pre', 'body body-text', d.audit ? d.audit.text : ''));
    const m = section('Outcome');
    const pairs = [['status', d.status === null ? '?' : d.status], ['type', d.type],
                   ['duration', fmtDur(d.duration_ns)]];
    for (const [k, v] of Object.entries((d.audit && d.audit.attrs) || {})) pairs.push([k, v]);
    m.appendChild(kvTable(pairs));
    const frag = document.createDocumentFragment();
    frag.appendChild(s);
    frag.appendChild(m);
    return frag;
  }
  async function select(id) {
    state.selected = id;
    render(true);
    const res = await api('/api/rows/' + id);
    if (state.selected !== id) return;
    const pane = $('detail');
    pane.hidden = false;
    $('split').classList.add('with-detail');
    const body = $('detail-body');
    const tabs = $('tabs');
    body.textContent = '';
    tabs.textContent = '';
    const title = $('detail-title');
    title.textContent = '';
    if (!res.ok) { title.textContent = 'Row ' + id + ' is no longer kept by the server.'; return; }
    const d = await res.json();
    if (state.selected !== id) return;
    pane.dataset.id = id;
    if (d.kind === 'http') {
      const big = el('div', 'big');
      big.appendChild(el('span', 'm-' + (d.method || ''), (d.method || '(no request)') + ' '));
      big.appendChild(document.createTextNode(d.url || d.path || ''));
      title.appendChild(big);
      title.appendChild(el('span', 's-' + statusClass(d), statusText(d) + '  '));
      const who = d.comm + ' (' + d.pid + ')';
      title.appendChild(el('span', 'note',
                           [d.proto, fmtDur(d.duration_ns), who].filter(Boolean).join(' · ')));
    } else {
      const who = d.comm + ' (' + d.pid + ')';
      title.appendChild(el('div', 'big', d.kind.toUpperCase() + ' · ' + who));
      title.appendChild(el('span', 'note', fmtTime(d.time_ns)));
    }
    const panes = [];
    if (d.kind === 'http') {
      panes.push(['Request', () => messagePane(d.request, 'request')]);
      panes.push(['Response', () => messagePane(d.response, 'response')]);
    } else if (d.kind === 'tls') {
      panes.push(['Message', () => messagePane(d.message, 'message')]);
    } else {
      panes.push([d.kind === 'shell' ? 'Command' : 'Statement', () => auditPane(d)]);
    }
    panes.push(['Process', () => processPane(d)]);
    const want = state.tab && panes.find((p) => p[0] === state.tab) ? state.tab :
      (d.kind === 'http' && d.response ? 'Response' : panes[0][0]);
    for (const [name, make] of panes) {
      const b = el('button', name === want ? 'active' : '', name);
      b.type = 'button';
      b.dataset.tab = name;
      b.addEventListener('click', () => {
        state.tab = name;
        for (const x of tabs.children) x.classList.toggle('active', x === b);
        body.textContent = '';
        body.appendChild(make());
      });
      tabs.appendChild(b);
      if (name === want) body.appendChild(make());
    }
  }
  function closeDetail() {
    state.selected = null;
    $('detail').hidden = true;
    $('split').classList.remove('with-detail');
    render(true);
  }
  $('detail-close').addEventListener('click', closeDetail);

  // ---- pause / clear ----
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
    $('pause').classList.toggle('on', state.paused);
    setConn(state.paused ? 'paused' : 'live');
    if (!state.paused) {
      const held = state.held;
      state.held = [];
      for (const b of held) ingest(b);
    }
  });
  $('clear').addEventListener('click', () => {
    const last = state.rows.length ? state.rows[state.rows.length - 1].id : 0;
    state.clearedBelow = Math.max(state.clearedBelow, last);
    state.multi.clear();
    refilter();
  });

  // ---- exports ----
  function idsOf(scope) {
    if (scope === 'selected') return Array.from(state.multi).sort((a, b) => a - b);
    return state.view.map((r) => r.id);
  }
  // Returns the export's text (also used by tests); the menu saves it as a file.
  async function buildExport(kind, scope) {
    const res = await api('/api/export/' + kind, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ids: idsOf(scope) }),
    });
    return await res.text();
  }
  state.buildExport = buildExport;
  function save(blob, name) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
  $('export').addEventListener('click', () => {
    $('export-menu').hidden = !$('export-menu').hidden;
  });
  $('export-menu').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button');
    if (!b) return;
    $('export-menu').hidden = true;
    if (b.dataset.download) {
      const res = await api('/api/download/' + b.dataset.download);
      if (!res.ok) return;
      const name = (res.headers.get('Content-Disposition') || '').match(/filename="([^"]+)"/);
      save(await res.blob(), name ? name[1] : b.dataset.download);
      return;
    }
    const text = await buildExport(b.dataset.export, b.dataset.scope);
    const har = b.dataset.export === 'har';
    save(new Blob([text], { type: har ? 'application/json' : 'application/x-ndjson' }),
         har ? 'ecapture.har' : 'ecapture.jsonl');
  });

  // ---- the live stream ----
  function setConn(kind, text) {
    $('conn').className = 'dot ' + kind;
    const names = { live: 'live', paused: 'paused', off: 'disconnected' };
    $('conn-text').textContent = text || names[kind];
  }
  function handle(event, data) {
    if (event === 'hello') {
      const h = JSON.parse(data);
      state.history = h.history;
      state.rows = []; state.byId.clear(); state.view = [];
    } else if (event === 'rows') {
      const batch = JSON.parse(data);
      if (state.paused) state.held.push(batch); else ingest(batch);
    } else if (event === 'stats') {
      state.dropped = JSON.parse(data).dropped || 0;
    } else if (event === 'ready') {
      setConn(state.paused ? 'paused' : 'live');
      state.ready = true;
      render(true);
    }
  }
  async function stream() {
    const res = await api('/api/stream');
    if (!res.ok) { setConn('off', 'server refused the stream (' + res.status + ')'); return false; }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let sep;
      while ((sep = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        let event = 'message', data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        handle(event, data);
      }
    }
    return true;
  }
  async function start() {
    try {
      const res = await api('/api/info');
      state.info = await res.json();
      $('dl-pcap').hidden = !state.info.pcap;
      $('dl-keylog').hidden = !state.info.keylog;
    } catch (e) {
      setConn('off', 'not connected');
      return;
    }
    for (;;) {
      try { await stream(); } catch (e) { if (e.message === 'token required') return; }
      setConn('off', 'reconnecting…');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  readFilters();
  render(true);
  start();
})();
