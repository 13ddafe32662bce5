// One card per dropped image: its preview, its state as it moves (checking → sending → queued →
// started → classified | failed, or refused here) and, once classified, a bar per label. Every
// text from the API or a file name is written with textContent, never as HTML.

/** The API's states as the page names them: `assigned` means a worker has started on it. */
export const STATE_NAMES = {
  waiting: 'waiting to send',
  checking: 'checking',
  refused: 'refused',
  sending: 'sending',
  retrying: 'waiting to retry',
  queued: 'queued',
  assigned: 'started',
  classified: 'classified',
  failed: 'failed',
  error: 'error',
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A list of score bars, highest first; each bar's width is its score (0 to 1) of the full width. */
function scoreList(label, scores) {
  const list = element('ol', 'scores');
  for (const entry of [...scores].sort((a, b) => b.score - a.score)) {
    const row = element('li', entry.label === label ? 'top' : '');
    const bar = element('div', 'bar');
    bar.setAttribute('role', 'meter');
    bar.setAttribute('aria-label', entry.label);
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '1');
    bar.setAttribute('aria-valuenow', String(entry.score));
    const fill = element('span');
    fill.style.width = `${(Math.min(Math.max(entry.score, 0), 1) * 100).toFixed(2)}%`;
    bar.append(fill);
    row.append(element('span', 'label', entry.label), bar, element('span', 'value', entry.score.toFixed(3)));
    list.append(row);
  }
  return list;
}

export class ImageCard {
  constructor(file) {
    this.root = element('li', 'card');
    this.img = element('img', 'preview');
    this.img.alt = `preview of ${file.name}`;
    this.img.src = URL.createObjectURL(file);
    // A file this browser cannot show (damaged, or no image at all) gets a plain box, not a broken-image icon.
    this.img.addEventListener(
      'error',
      () => {
        URL.revokeObjectURL(this.img.src);
        this.img.replaceWith(element('div', 'preview no-preview', 'no preview'));
      },
      { once: true },
    );
    const body = element('div', 'card-body');
    this.state = element('p', 'state');
    this.detail = element('p', 'detail');
    // A live region per card: a screen reader hears each image's state and its reason as they change.
    const status = element('div');
    status.setAttribute('role', 'status');
    status.append(this.state, this.detail);
    body.append(element('h3', 'name', file.name), status);
    this.root.append(this.img, body);
    this.setState('waiting');
  }

  /** Shows the state (an API state or one of the page's own) and, optionally, why. */
  setState(state, detail = '') {
    this.root.dataset.state = state;
    this.state.textContent = STATE_NAMES[state] ?? state;
    this.detail.textContent = detail;
  }

  /** The request the image became. */
  setRequest(id) {
    this.root.dataset.request = id;
  }

  /** A final view of the request: its label and score bars, or the reasons it failed. */
  showOutcome(view) {
    if (view.state === 'failed') {
      this.setState('failed', view.errors.map((e) => `${e.code}: ${e.message}`).join('; ') || 'no reason given');
      return;
    }
    const { label, score, scores } = view.result;
    this.setState('classified', `request ${view.id}`);
    this.state.textContent = `classified: ${label} (${score.toFixed(3)})`;
    this.detail.parentElement.after(scoreList(label, scores));
  }
}
