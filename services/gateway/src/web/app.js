// The web page's script: plain browser JavaScript, no build step. It talks to the API on its
// own origin with the key the user types, kept in sessionStorage (this tab only), and writes
// every text it gets from the API with textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(['classified', 'failed']);

function key() {
  return sessionStorage.getItem('cxr-api-key') ?? '';
}

function show(message, isError = false) {
  $('status').textContent = message;
  $('status').className = isError ? 'error' : '';
}

/** Calls the API; answers the parsed body, or throws the API's own message. */
async function api(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { ...(init.headers ?? {}), authorization: `Bearer ${key()}` },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message ?? `the server answered ${response.status}`);
  return body;
}

async function loadDatasets() {
  const { items } = await api('/v1/datasets?limit=100');
  const select = $('dataset');
  select.replaceChildren();
  for (const dataset of items) {
    const option = document.createElement('option');
    option.value = dataset.id;
    option.textContent = `${dataset.display_name} (${dataset.name})${dataset.default_model ? '' : ' – no model yet'}`;
    option.disabled = !dataset.default_model;
    select.append(option);
  }
  if (items.length === 0) throw new Error('no dataset yet: create one and upload a model through the API');
  $('classify-form').hidden = false;
  show(`${items.length} dataset(s). Choose an image.`);
}

function render(view) {
  $('outcome').hidden = false;
  const scores = $('scores');
  scores.replaceChildren();
  if (view.state === 'failed') {
    $('label').textContent = 'Failed';
    $('details').textContent = view.errors.map((e) => `${e.code}: ${e.message}`).join('; ');
    return;
  }
  const { label, scores: all } = view.result;
  $('label').textContent = label;
  for (const entry of [...all].sort((a, b) => b.score - a.score)) {
    const item = document.createElement('li');
    if (entry.label === label) item.className = 'top';
    const name = document.createElement('span');
    name.textContent = entry.label;
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${(entry.score * 100).toFixed(1)}%`;
    bar.append(fill);
    const value = document.createElement('span');
    value.textContent = entry.score.toFixed(3);
    item.append(name, bar, value);
    scores.append(item);
  }
  const total = view.timings?.total;
  $('details').textContent =
    `request ${view.id}, model ${view.model}${total ? `, ${Math.round(total)} ms in the worker` : ''}`;
}

async function classify(file, datasetId) {
  const form = new FormData();
  form.append('image', file);
  show('Sending…');
  const accepted = await api(`/v1/datasets/${encodeURIComponent(datasetId)}/classifications`, {
    method: 'POST',
    body: form,
  });
  show(`Request ${accepted.id} ${accepted.state}; waiting for its result…`);
  for (;;) {
    const view = await api(`/v1/classifications/${accepted.id}?wait=30`);
    if (TERMINAL.has(view.state)) return view;
    show(`Request ${accepted.id} is ${view.state}…`);
  }
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem('cxr-api-key', $('api-key').value.trim());
  loadDatasets().catch((error) => show(error.message, true));
});

$('image').addEventListener('change', () => {
  const file = $('image').files[0];
  if (!file) return;
  URL.revokeObjectURL($('preview').src);
  $('preview').src = URL.createObjectURL(file);
});

$('classify-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const file = $('image').files[0];
  $('classify').disabled = true;
  classify(file, $('dataset').value)
    .then((view) => {
      render(view);
      show(`Done: ${view.state}.`);
    })
    .catch((error) => show(error.message, true))
    .finally(() => {
      $('classify').disabled = false;
    });
});

if (key()) {
  $('api-key').value = key();
  loadDatasets().catch((error) => show(error.message, true));
}
