// The user's requests, newest first, a page at a time: GET /v1/classifications?role=submitter
// with the API's own paging (`limit`, and `before` = the previous page's `next`).
import { api } from './api.js';
import { STATE_NAMES } from './cards.js';

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

export class History {
  /** `datasetName(id)` names a dataset for the table; `onError(message)` reports a failed load. */
  constructor({ rows, pageSize, newer, older, pageInfo, datasetName, onError }) {
    Object.assign(this, { rows, pageSize, newer, older, pageInfo, datasetName, onError });
    /** `before` of each page seen so far: the first page has none. */
    this.cursors = [null];
    this.index = 0;
    this.loads = 0;
    newer.addEventListener('click', () => this.go(this.index - 1));
    older.addEventListener('click', () => this.go(this.index + 1));
    pageSize.addEventListener('change', () => this.go(0, true));
  }

  /** Shows page `index`; `fromStart` forgets the cursors (a new page size). */
  go(index, fromStart = false) {
    if (fromStart) this.cursors = [null];
    this.index = Math.max(0, Math.min(index, this.cursors.length - 1));
    void this.load();
  }

  /** Reloads the page shown when it is the first one, where new requests appear. */
  refreshFirstPage() {
    if (this.index === 0) void this.load();
  }

  async load() {
    // A slower, older load must not overwrite a newer one's page.
    const load = ++this.loads;
    const before = this.cursors[this.index];
    const query = new URLSearchParams({ role: 'submitter', limit: this.pageSize.value });
    if (before) query.set('before', before);
    let page;
    try {
      page = await api(`/v1/classifications?${query}`);
    } catch (error) {
      this.onError(`history: ${error.message}`);
      return;
    }
    if (load !== this.loads) return;
    this.cursors.length = this.index + 1;
    if (page.next) this.cursors.push(page.next);
    this.rows.replaceChildren(...page.items.map((item) => this.row(item)));
    if (page.items.length === 0) {
      const empty = cell(this.index === 0 ? 'No requests yet.' : 'No older requests.');
      empty.colSpan = 6;
      this.rows.append(document.createElement('tr'));
      this.rows.lastChild.append(empty);
    }
    this.newer.disabled = this.index === 0;
    this.older.disabled = !page.next;
    this.pageInfo.textContent = `Page ${this.index + 1}`;
  }

  row(item) {
    const tr = document.createElement('tr');
    tr.dataset.request = item.id;
    tr.dataset.state = item.state;
    tr.append(
      cell(new Date(item.created_at).toLocaleString()),
      cell(this.datasetName(item.dataset)),
      cell(STATE_NAMES[item.state] ?? item.state),
      cell(item.label ?? ''),
      cell(item.score === null ? '' : item.score.toFixed(3)),
      cell(item.id),
    );
    return tr;
  }
}
