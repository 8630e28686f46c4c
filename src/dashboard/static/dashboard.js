// The flatnet dashboard page: reads the JSON API of `flatnet dashboard`, follows its change events, and draws
// pools, hosts and one 256-address block at a time. Every text from the API goes in through textContent.

const STATES = [
  ['held', 'held by a container'],
  ['cooling', 'cooling (released)'],
  ['parked', 'parked for a name'],
  ['conflict', 'conflict (outside machine)'],
  ['gateway-aux', 'gateway / aux'],
  ['host-range', 'host range'],
  ['outside', 'outside the ranges'],
  ['free', 'free'],
];
const PAGE = 32;

const state = {
  pools: [],
  pool: undefined, // subnet text of the open pool
  pageFrom: 0n,
  pageTotal: 0n,
  pageBlocks: [], // hex indices on the page
  block: undefined, // hex index of the open block
  cells: [],
  selected: undefined, // address
  live: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const poolPath = (subnet) => encodeURIComponent(subnet.replace('/', '_'));

async function api(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

function showError(err) {
  const p = $('error');
  if (!err) {
    p.hidden = true;
    return;
  }
  p.textContent = String(err.message ?? err);
  p.hidden = false;
}

function pct(n, of) {
  return of > 0 ? `${Math.min(100, (100 * n) / of)}%` : '0%';
}

function bar(parts, total, cls = 'bar') {
  const b = el('div', { class: cls, role: 'img' });
  const label = [];
  for (const [name, n] of parts) {
    if (n <= 0) continue;
    const s = el('span', { class: `s-${name}` });
    s.style.width = pct(n, total);
    b.append(s);
    label.push(`${name} ${n}`);
  }
  b.setAttribute('aria-label', label.join(', ') || 'empty');
  b.title = label.join(', ') || 'empty';
  return b;
}

function ranges(list) {
  return list.map((r) => `${r.start}–${r.end}`).join(', ');
}

function drawPools(pools) {
  state.pools = pools;
  const tbody = $('pools').tBodies[0];
  tbody.replaceChildren(
    ...pools.map((p) => {
      const size = Number(p.size);
      const free = Number(p.free) - p.cooling - p.parked;
      const tr = el(
        'tr',
        { 'data-pool': p.subnet, onclick: () => openPool(p.subnet) },
        el('td', { text: p.subnet }),
        el('td', { text: p.gateway ?? '' }),
        el(
          'td',
          {},
          bar(
            [
              ['held', p.used],
              ['conflict', p.conflicts],
              ['cooling', p.cooling],
              ['parked', p.parked],
            ],
            size,
          ),
        ),
        el('td', { class: 'num', text: p.size }),
        el('td', { class: 'num held', text: String(p.used) }),
        el('td', { class: 'num cooling', text: String(p.cooling) }),
        el('td', { class: 'num parked', text: String(p.parked) }),
        el('td', { class: 'num conflicts', text: String(p.conflicts) }),
        el('td', { class: 'num free', text: String(Math.max(0, free)) }),
        el('td', { text: ranges(p.ranges) }),
        el('td', { text: ranges(p.hostRanges) }),
      );
      if (p.subnet === state.pool) tr.classList.add('open');
      return tr;
    }),
  );
  if (pools.length === 0) tbody.append(el('tr', {}, el('td', { colspan: '11', text: 'no pools yet' })));
}

function drawHosts(hosts) {
  const tbody = $('hosts').tBodies[0];
  tbody.replaceChildren(
    ...hosts.map((h) =>
      el(
        'tr',
        { 'data-host': h.hostId },
        el('td', { text: h.hostId }),
        el('td', { text: h.hostname ?? '' }),
        el('td', { class: `state ${h.state}`, text: h.state }),
        el('td', { text: h.version ?? '' }),
        el('td', { class: 'num addresses', text: String(h.addresses) }),
        el('td', { text: h.claims.map((c) => `${c.poolId} ×${c.networks}`).join(', ') }),
        el('td', { text: h.lastSeen ?? '' }),
      ),
    ),
  );
  if (hosts.length === 0) tbody.append(el('tr', {}, el('td', { colspan: '7', text: 'no hosts registered yet' })));
}

async function refreshOverview() {
  try {
    const [p, h] = await Promise.all([api('/api/pools'), api('/api/hosts')]);
    drawPools(p.pools);
    drawHosts(h.hosts);
    $('read-at').textContent = `read ${new Date(p.readAt).toLocaleTimeString()}`;
    showError();
    if (!state.pool && p.pools.length > 0) await openPool(p.pools[0].subnet);
  } catch (err) {
    showError(err);
  }
}

async function openPool(subnet, position = 0n, block) {
  state.pool = subnet;
  state.pageFrom = (position / BigInt(PAGE)) * BigInt(PAGE);
  for (const tr of $('pools').tBodies[0].rows) tr.classList.toggle('open', tr.dataset.pool === subnet);
  $('map').hidden = false;
  $('map-pool').textContent = subnet;
  await loadPage();
  const first = block ?? state.pageBlocks[0];
  if (first !== undefined) await openBlock(first);
}

async function loadPage() {
  const page = await api(`/api/pools/${poolPath(state.pool)}/blocks?from=${state.pageFrom}&count=${PAGE}`);
  state.pageTotal = BigInt(page.total);
  state.pageBlocks = page.blocks.map((b) => b.block);
  const last = state.pageFrom + BigInt(page.blocks.length);
  $('page-info').textContent = `blocks ${page.blocks.length ? state.pageFrom + 1n : 0n}–${last} of ${page.total}`;
  $('prev').disabled = state.pageFrom === 0n;
  $('next').disabled = last >= state.pageTotal;
  $('block-list').replaceChildren(
    ...page.blocks.map((b) => {
      const mini = bar(
        [
          ['held', b.taken],
          ['cooling', b.cooling],
        ],
        Math.max(1, b.inRanges || 256),
        'mini',
      );
      const btn = el(
        'button',
        { type: 'button', 'data-block': b.block, onclick: () => openBlock(b.block) },
        el('span', { text: `${b.first}` }),
        mini,
      );
      if (b.block === state.block) btn.classList.add('open');
      return el('li', {}, btn);
    }),
  );
}

async function openBlock(hex) {
  const view = await api(`/api/pools/${poolPath(state.pool)}/blocks/${hex}`);
  state.block = hex;
  for (const b of $('block-list').querySelectorAll('button')) b.classList.toggle('open', b.dataset.block === hex);
  drawBlock(view);
}

function drawBlock(view) {
  state.cells = view.cells;
  const first = view.cells[0]?.address ?? '';
  const last = view.cells.at(-1)?.address ?? '';
  $('block-title').textContent = `block ${view.block}: ${first} – ${last}`;
  const counts = Object.fromEntries(STATES.map(([s]) => [s, 0]));
  const grid = $('grid');
  grid.replaceChildren(
    ...view.cells.map((c) => {
      counts[c.state]++;
      const cell = el('div', {
        class: `cell s-${c.state}`,
        role: 'gridcell',
        tabindex: '-1',
        'data-address': c.address,
        'data-state': c.state,
        title: `${c.address}: ${describe(c)}`,
        onmouseenter: () => showCell(c),
        onclick: () => select(c.address),
        onfocus: () => showCell(c),
      });
      if (c.address === state.selected) cell.classList.add('selected');
      return cell;
    }),
  );
  $('legend').replaceChildren(
    ...STATES.map(([s, label]) =>
      el(
        'li',
        { 'data-state': s },
        el('span', { class: `swatch s-${s}` }),
        el('span', { text: `${label}: ` }),
        el('b', { class: 'count', text: String(counts[s]) }),
      ),
    ),
  );
  const sel = view.cells.find((c) => c.address === state.selected);
  if (sel) showCell(sel);
}

function describe(c) {
  switch (c.state) {
    case 'held':
      return `held by ${c.containerName ?? c.endpointName ?? c.containerId?.slice(0, 12) ?? 'a container'} on ${c.hostId ?? '?'}`;
    case 'cooling':
    case 'parked':
      return `${c.state}${c.endpointName ? ` for ${c.endpointName}` : ''}, released ${c.releasedAt}`;
    case 'conflict':
      return `answered by ${c.mac ?? 'an unknown MAC'} (outside flatnet)`;
    case 'gateway-aux':
      return c.kind ?? 'reserved';
    default:
      return c.state;
  }
}

function showCell(c) {
  const rows = [
    ['address', c.address],
    ['state', c.state],
    ['host', c.hostId],
    ['container', c.containerName],
    ['container id', c.containerId],
    ['endpoint name', c.endpointName],
    ['since', c.since],
    ['released', c.releasedAt],
    ['kind', c.kind],
    ['foreign MAC', c.mac],
    ['seen by', c.seenBy],
  ].filter(([, v]) => v !== undefined && v !== '');
  $('cell-info').replaceChildren(
    el('dl', {}, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { 'data-field': k, text: v })])),
  );
}

function select(address) {
  state.selected = address;
  for (const cell of $('grid').children) cell.classList.toggle('selected', cell.dataset.address === address);
  const c = state.cells.find((x) => x.address === address);
  if (c) showCell(c);
}

async function search(q) {
  const box = $('search-results');
  try {
    const { hits } = await api(`/api/search?q=${encodeURIComponent(q)}`);
    const ul = box.querySelector('ul');
    ul.replaceChildren(
      ...hits.map((h) =>
        el(
          'li',
          {},
          el(
            'button',
            { type: 'button', 'data-address': h.address, onclick: () => goTo(h) },
            el('span', { text: h.address }),
          ),
          el('span', {
            text: ` ${[h.containerName ?? h.endpointName, h.hostId && `on ${h.hostId}`, h.pool].filter(Boolean).join(' · ')}`,
          }),
        ),
      ),
    );
    if (hits.length === 0) ul.append(el('li', { text: `nothing matches ${q}` }));
    box.hidden = false;
    showError();
    if (hits.length === 1) await goTo(hits[0]);
  } catch (err) {
    showError(err);
  }
}

async function goTo(hit) {
  state.selected = hit.address;
  await openPool(hit.pool, BigInt(hit.position ?? '0'), hit.block);
  select(hit.address);
  $('grid')
    .querySelector(`[data-address="${CSS.escape(hit.address)}"]`)
    ?.focus();
}

// Change events: redraw the open block and page at once, the counts at most every second.
let overviewTimer;
function onChange(ev) {
  const change = JSON.parse(ev.data);
  if (!overviewTimer) overviewTimer = setTimeout(() => ((overviewTimer = undefined), void refreshOverview()), 1000);
  const mine = state.pool && change.pools[state.pool];
  if (!mine) return;
  const touched = (hex) => mine === 'pool' || mine.includes(hex);
  if (state.block !== undefined && touched(state.block)) void openBlock(state.block).catch(showError);
  if (state.pageBlocks.some(touched)) void loadPage().catch(showError);
}

function follow() {
  const es = new EventSource('/api/events');
  const live = $('live');
  es.addEventListener('open', () => {
    state.live = true;
    live.textContent = 'live';
    live.className = 'live on';
    // Whatever changed while the stream was down is read again.
    void refreshOverview();
    if (state.pool !== undefined) void loadPage().catch(showError);
    if (state.block !== undefined) void openBlock(state.block).catch(showError);
  });
  es.addEventListener('error', () => {
    state.live = false;
    live.textContent = 'reconnecting…';
    live.className = 'live off';
    // A refused stream (etcd away: 503) is not retried by the browser itself.
    if (es.readyState === EventSource.CLOSED) setTimeout(follow, 5000);
  });
  es.addEventListener('change', onChange);
}

$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = $('search').value.trim();
  if (q) void search(q);
});
$('prev').addEventListener('click', () => {
  state.pageFrom = state.pageFrom >= BigInt(PAGE) ? state.pageFrom - BigInt(PAGE) : 0n;
  void loadPage().catch(showError);
});
$('next').addEventListener('click', () => {
  state.pageFrom += BigInt(PAGE);
  void loadPage().catch(showError);
});

void refreshOverview();
follow();
