// The web page: plain browser JavaScript modules, no build step. It talks to the API on its own
// origin with the user's key, kept in sessionStorage (this tab) unless the user asks to
// remember it (localStorage), and writes every text it gets with textContent, never as HTML.
import { api, listAll, useKey } from './api.js';
import { ImageCard } from './cards.js';
import { History } from './history.js';
import { checkImage, describeRules, idempotencyKey } from './images.js';

const $ = (id) => document.getElementById(id);
const KEY_ITEM = 'cxr-api-key';
/** Images sent and followed at once; the others wait their turn. */
const SENDERS = 3;
const TERMINAL = new Set(['classified', 'failed']);
/** Seconds each look at a request may wait for it to end: short, so a change to `started` shows. */
const FOLLOW_WAIT_SECONDS = 3;

let datasets = [];
let models = [];

function show(message, isError = false) {
  $('status').textContent = message;
  $('status').className = isError ? 'error' : '';
}

const history = new History({
  rows: $('history-rows'),
  pageSize: $('page-size'),
  newer: $('newer'),
  older: $('older'),
  pageInfo: $('page-info'),
  datasetName: (id) => datasets.find((d) => d.id === id)?.display_name ?? id,
  onError: (message) => show(message, true),
});

// The key: this tab only, or this browser when "remember" is ticked; never both.
function storedKey() {
  return sessionStorage.getItem(KEY_ITEM) ?? localStorage.getItem(KEY_ITEM) ?? '';
}

function storeKey(key) {
  const [keep, drop] = $('remember').checked ? [localStorage, sessionStorage] : [sessionStorage, localStorage];
  keep.setItem(KEY_ITEM, key);
  drop.removeItem(KEY_ITEM);
}

function hideSections() {
  $('classify-section').hidden = true;
  $('history-section').hidden = true;
}

function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
  localStorage.removeItem(KEY_ITEM);
  useKey('');
  $('api-key').value = '';
  $('remember').checked = false;
  for (const job of queue.splice(0)) job.card.setState('error', 'not sent: the key was forgotten');
  hideSections();
  show('The key is forgotten.');
}

function signInFailed(error) {
  hideSections();
  show(error.message, true);
}

async function signIn(key) {
  show('Checking the key…');
  useKey(key);
  const me = await api('/v1/users/me');
  storeKey(key);
  await loadDatasets();
  $('history-section').hidden = false;
  history.go(0, true);
  show(`Signed in as ${me.username}. ${datasets.length} dataset(s).`);
}

async function loadDatasets() {
  datasets = await listAll('/v1/datasets');
  const select = $('dataset');
  select.replaceChildren();
  for (const dataset of datasets) {
    const option = new Option(
      `${dataset.display_name} (${dataset.name})${dataset.default_model ? '' : ' – no model yet'}`,
      dataset.id,
    );
    option.disabled = !dataset.default_model;
    select.append(option);
  }
  const usable = datasets.find((d) => d.default_model);
  if (!usable) throw new Error('no dataset with a model yet: create one and upload a model through the API');
  select.value = usable.id;
  await loadModels();
  $('classify-section').hidden = false;
}

/** The chosen dataset's active models, its default chosen and marked, and its rules. */
async function loadModels() {
  const dataset = datasets.find((d) => d.id === $('dataset').value);
  $('rules').textContent = `Images for ${dataset.display_name}: ${describeRules(dataset)} Checked here before sending.`;
  const usable = (await listAll(`/v1/datasets/${dataset.id}/models`)).filter((m) => m.status === 'active');
  // Another dataset was chosen while these were on their way: its own answer fills the list.
  if ($('dataset').value !== dataset.id) return;
  models = usable;
  const select = $('model');
  select.replaceChildren(
    ...models.map((m) => new Option(`${m.name} v${m.version}${m.is_default ? ' (default)' : ''}`, m.id)),
  );
  select.value = models.find((m) => m.is_default)?.id ?? models[0]?.id ?? '';
  showLabels();
}

function showLabels() {
  const model = models.find((m) => m.id === $('model').value);
  $('labels').textContent = model ? `Labels: ${model.labels.join(', ')}.` : 'This dataset has no active model.';
}

// Dropped images wait in `queue`; SENDERS of them at a time are checked, sent and followed.
const queue = [];
let sending = 0;

function addFiles(files) {
  const dataset = datasets.find((d) => d.id === $('dataset').value);
  const model = models.find((m) => m.id === $('model').value);
  if (!dataset || !model) {
    show('Choose a dataset and a model first.', true);
    return;
  }
  for (const file of files) {
    const card = new ImageCard(file);
    $('cards').append(card.root);
    queue.push({ card, file, dataset, model });
  }
  show(`${files.length} image(s) added.`);
  pump();
}

function pump() {
  while (sending < SENDERS && queue.length > 0) {
    const job = queue.shift();
    sending += 1;
    classify(job)
      // A 4xx but 429 is the API refusing this image (its rules, its size…); anything else an error on the way.
      .catch((error) => {
        const refused = error.status >= 400 && error.status < 500 && error.status !== 429;
        job.card.setState(refused ? 'refused' : 'error', error.message);
      })
      .finally(() => {
        sending -= 1;
        history.refreshFirstPage();
        pump();
      });
  }
}

/** One image: refused here if it breaks the dataset's rules, else sent and followed to its end. */
async function classify({ card, file, dataset, model }) {
  card.setState('checking');
  const checked = await checkImage(file, dataset, card.img);
  if (checked.refusal) {
    card.setState('refused', checked.refusal);
    return;
  }
  const waiting =
    (state) =>
    ({ message, pauseMs }) =>
      card.setState(state, `${message}; trying again in ${Math.ceil(pauseMs / 1000)} s`);
  card.setState(
    'sending',
    checked.width ? `${checked.width}×${checked.height}` : 'not decoded here: the server checks it',
  );
  const form = new FormData();
  form.append('image', file, file.name);
  const submission = await api(`/v1/models/${model.id}/classifications`, {
    method: 'POST',
    headers: { 'idempotency-key': await idempotencyKey(file, model.id) },
    body: form,
    onRetry: waiting('retrying'),
  });
  card.setRequest(submission.id);
  let view = submission;
  for (;;) {
    card.setState(view.state, `request ${submission.id}`);
    view = await api(`/v1/classifications/${submission.id}?wait=${FOLLOW_WAIT_SECONDS}`, {
      onRetry: waiting(view.state),
    });
    if (TERMINAL.has(view.state)) break;
  }
  card.showOutcome(view);
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  signIn($('api-key').value.trim()).catch(signInFailed);
});
$('remember').addEventListener('change', () => {
  if (storedKey()) storeKey(storedKey());
});
$('forget').addEventListener('click', forgetKey);
$('dataset').addEventListener('change', () => loadModels().catch((error) => show(error.message, true)));
$('model').addEventListener('change', showLabels);
$('refresh').addEventListener('click', () => history.go(history.index));
$('clear').addEventListener('click', () => {
  for (const card of $('cards').querySelectorAll('.card')) {
    if (['classified', 'failed', 'refused', 'error'].includes(card.dataset.state)) {
      const preview = card.querySelector('img');
      if (preview) URL.revokeObjectURL(preview.src);
      card.remove();
    }
  }
});

$('images').addEventListener('change', () => {
  addFiles([...$('images').files]);
  $('images').value = '';
});
// A file dropped beside the zone would make the browser leave the page to show it.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());
const zone = $('drop-zone');
zone.addEventListener('dragover', (event) => {
  event.preventDefault();
  zone.classList.add('over');
});
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (event) => {
  event.preventDefault();
  zone.classList.remove('over');
  addFiles([...event.dataTransfer.files]);
});

const saved = storedKey();
if (saved) {
  $('api-key').value = saved;
  $('remember').checked = localStorage.getItem(KEY_ITEM) !== null;
  signIn(saved).catch(signInFailed);
}
