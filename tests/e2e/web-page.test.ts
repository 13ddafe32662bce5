// The web page in a real browser (Debian's headless Chromium, driven by playwright-core) against
// the running system: a user stores a key, picks a dataset and a model, drops X-rays and follows
// each to its label and score bars, or to the reason it was refused or failed, and pages through
// the history. infra/test.sh installs Chromium; CHROMIUM_PATH overrides where.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildDemoModel, DEMO_LABELS, renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm, modelForm } from '@cxr/client';
import { GatewayConfigSchema } from '../../services/gateway/src/config';
import { imageRuleViolation } from '../../services/gateway/src/lib/image-rules';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

const SCREENSHOT = join(__dirname, '../../.state/artifacts/web-page.png');

interface Submission {
  path: string;
  idempotencyKey: string | undefined;
}

interface View {
  state: string;
  model: string;
  result: { label: string; scores: { label: string; score: number }[] } | null;
}

/** A PNG whose IDAT chunk has a wrong CRC: its header passes the gateway's check, inference refuses it. */
async function pngWithBadCrc(): Promise<Buffer> {
  const png = Buffer.from(await renderSample('striped', { seed: 3 }));
  const idat = png.indexOf('IDAT');
  png[idat + 4 + png.readUInt32BE(idat - 4)]! ^= 0xff; // the first byte of the chunk's CRC
  return png;
}

const png = (name: string, buffer: Buffer) => ({ name, mimeType: 'image/png', buffer });

/** Drops files on the page's drop zone as a user dragging them from a file manager does (a DataTransfer drop). */
async function dropFiles(page: Page, files: { name: string; mimeType: string; buffer: Buffer }[]) {
  const list = JSON.stringify(
    files.map((f) => ({ name: f.name, type: f.mimeType, base64: f.buffer.toString('base64') })),
  );
  // Browser code as a string: the tests' TypeScript has no DOM types.
  await page.evaluate(`(() => {
    const transfer = new DataTransfer();
    for (const { name, type, base64 } of ${list}) {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], name, { type }));
    }
    const zone = document.getElementById('drop-zone');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  })()`);
}

describe('the web page in a browser', () => {
  let system: System;
  let admin: Client;
  let browser: Browser;

  beforeAll(async () => {
    system = await startSystem();
    admin = new Client(system.gatewayUrl, system.adminKey);
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await system?.stop();
  });

  /** A user of the test's own, with a 64×64 dataset whose default model is the demo model. */
  async function newUser(name: string) {
    const { client } = await createUser(admin, name);
    const { datasetId, modelId } = await datasetWithDemoModel(client, `${name}-films`, `${name}'s chest films`);
    return { client, key: client.apiKey!, datasetId, modelId };
  }

  /**
   * A fresh page (its own storage) signed in with `key`, collecting the page's errors and the
   * submissions it sends.
   */
  async function openPage(key: string, viewport = { width: 1000, height: 800 }) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const errors: string[] = [];
    const submissions: Submission[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      // The browser itself logs each answer of 4xx or 5xx it loads (a bad key's 401, a busy gateway's 503).
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) errors.push(message.text());
    });
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (request.method() === 'POST' && path.endsWith('/classifications'))
        submissions.push({ path, idempotencyKey: request.headers()['idempotency-key'] });
    });
    const response = await page.goto(system.gatewayUrl);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.fill('#api-key', key);
    await page.click('#key-form button[type=submit]');
    // Said once the datasets, the chosen one's models and the history's first load are under way.
    await page.locator('#status', { hasText: /^Signed in as / }).waitFor();
    return { page, errors, submissions, close: () => context.close() };
  }

  const card = (page: Page, name: string) => page.locator('.card', { has: page.locator('h3', { hasText: name }) });

  async function waitForState(page: Page, name: string, state: string) {
    await card(page, name)
      .and(page.locator(`[data-state="${state}"]`))
      .waitFor({ timeout: 90_000 });
  }

  it('keeps the key in the tab unless asked to remember it, and says what is wrong with a bad one', async () => {
    const { key } = await newUser('keeper');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(system.gatewayUrl);

    await page.fill('#api-key', `cxr_${'0'.repeat(16)}_${'A'.repeat(43)}`);
    await page.click('#key-form button[type=submit]');
    await expect(page.locator('#status.error').textContent()).resolves.toMatch(/API key is not valid/);
    expect(await page.locator('#classify-section').isHidden()).toBe(true);

    await page.fill('#api-key', key);
    await page.click('#key-form button[type=submit]');
    await page.locator('#status', { hasText: /^Signed in as keeper\./ }).waitFor();
    expect(await page.locator('#classify-section').isVisible()).toBe(true);
    // Browser code as strings: the tests' TypeScript has no DOM types.
    const stored = () =>
      page.evaluate<[string | null, string | null]>(
        "[sessionStorage.getItem('cxr-api-key'), localStorage.getItem('cxr-api-key')]",
      );
    expect(await stored()).toEqual([key, null]);

    // Reloaded, the tab still has it and signs in by itself.
    await page.reload();
    await page.locator('#classify-section').waitFor({ state: 'visible' });

    await page.check('#remember');
    expect(await stored()).toEqual([null, key]);
    const laterTab = await context.newPage();
    await laterTab.goto(system.gatewayUrl);
    await laterTab.locator('#classify-section').waitFor({ state: 'visible' });
    expect(await laterTab.locator('#remember').isChecked()).toBe(true);

    await laterTab.click('#forget');
    expect(await laterTab.evaluate<string | null>("localStorage.getItem('cxr-api-key')")).toBeNull();
    expect(await laterTab.locator('#classify-section').isHidden()).toBe(true);
    await context.close();
  });

  it('refuses an image that breaks the dataset’s rules without sending it, and classifies the others with score bars', async () => {
    const { client, key, datasetId, modelId } = await newUser('radiologist');
    expect((await client.patch(`/v1/datasets/${datasetId}`, { maintain_ratio: true })).status).toBe(200);
    const demo = buildDemoModel();
    const second = await client.post(
      `/v1/datasets/${datasetId}/models`,
      modelForm(demo.onnx, demo.labels, demo.inputSpec, 'demo-second'),
    );
    expect(second.status).toBe(201);
    const secondId = second.body.id as string;

    const { page, errors, submissions, close } = await openPage(key);
    expect(await page.locator('#dataset option').allTextContents()).toEqual([
      "radiologist's chest films (radiologist-films)",
    ]);
    // The dataset's models, newest first, its default marked and chosen.
    expect(await page.locator('#model option').allTextContents()).toEqual(['demo-second v2', 'demo v1 (default)']);
    expect(await page.locator('#model').inputValue()).toBe(modelId);
    expect(await page.locator('#rules').textContent()).toMatch(/at least 64×64 pixels, in the ratio 64:64/);
    await page.selectOption('#model', secondId);
    expect(await page.locator('#labels').textContent()).toBe(`Labels: ${DEMO_LABELS.join(', ')}.`);

    await page.setInputFiles('#images', [
      png('striped.png', await renderSample('striped', { width: 256, height: 256 })),
      png('wide.png', await renderSample('bright', { width: 200, height: 100 })),
      png('bright.png', await renderSample('bright', { width: 128, height: 128 })),
    ]);
    await waitForState(page, 'wide.png', 'refused');
    expect(await card(page, 'wide.png').locator('.detail').textContent()).toMatch(
      /^image ratio 200:100 .* differs from this dataset's 64:64/,
    );
    await waitForState(page, 'striped.png', 'classified');
    await waitForState(page, 'bright.png', 'classified');

    // Two sent, to the chosen model; the refused one never was.
    expect(submissions.map((s) => s.path)).toEqual([
      `/v1/models/${secondId}/classifications`,
      `/v1/models/${secondId}/classifications`,
    ]);
    expect(await system.db.models.ClassificationRequest.countDocuments({ model: secondId })).toBe(2);

    for (const [name, label] of [
      ['striped.png', 'striped'],
      ['bright.png', 'bright'],
    ] as const) {
      const images = card(page, name);
      expect(await images.locator('.state').textContent()).toMatch(new RegExp(`^classified: ${label} \\(`));
      // Its preview is the image itself, decoded from the dropped file.
      expect(
        await images.locator('.preview').evaluate((img: { naturalWidth: number }) => img.naturalWidth),
      ).toBeGreaterThan(0);
      const id = (await images.getAttribute('data-request'))!;
      const view = (await client.get<View>(`/v1/classifications/${id}`)).body;
      expect(view.model).toBe(secondId);
      // One bar per label, highest first, each as wide as its score of the full bar.
      const rows = images.locator('.scores li');
      expect(await rows.locator('.label').allTextContents()).toEqual(
        [...view.result!.scores].sort((a, b) => b.score - a.score).map((s) => s.label),
      );
      for (const { label: rowLabel, score } of view.result!.scores) {
        const bar = images.locator(`.bar[aria-label="${rowLabel}"]`);
        const full = (await bar.boundingBox())!.width;
        const fill = (await bar.locator('span').boundingBox())?.width ?? 0;
        expect(Math.abs(fill - score * full)).toBeLessThan(1);
      }
      expect(await images.locator('.scores li.top .label').textContent()).toBe(label);
    }

    // The history's first page lists both.
    await waitFor(
      'the history to list both requests',
      () => page.locator('#history-rows tr[data-state="classified"]').count(),
      (count) => count === 2,
    );
    expect((await page.locator('#history-rows tr td:nth-child(4)').allTextContents()).sort()).toEqual([
      'bright',
      'striped',
    ]);
    expect(errors).toEqual([]);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await close();
  });

  it('shows why a request failed, and refuses a file that is no image, at a phone’s width', async () => {
    const { key } = await newUser('pathologist');
    const { page, errors, submissions, close } = await openPage(key, { width: 380, height: 800 });
    await dropFiles(page, [
      png('damaged.png', await pngWithBadCrc()),
      { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image at all') },
    ]);
    await waitForState(page, 'notes.png', 'refused');
    expect(await card(page, 'notes.png').locator('.detail').textContent()).toBe('the file is not a PNG or JPEG');
    await waitForState(page, 'damaged.png', 'failed');
    expect(submissions).toHaveLength(1);
    expect(await card(page, 'damaged.png').locator('.detail').textContent()).toMatch(
      /^IMAGE_CORRUPT: .*libpng read error/,
    );
    await waitFor(
      'the history to list the failed request',
      () => page.locator('#history-rows tr[data-state="failed"]').count(),
      (count) => count === 1,
    );
    // At a phone's width nothing is wider than the screen.
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(380);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOT, '../web-page-narrow.png'), fullPage: true });
    await close();
  });

  it('checks the dataset’s rules in the browser as the gateway does, to its words', async () => {
    // As the API answers a dataset: the tolerance is the gateway's RATIO_TOLERANCE.
    const defaultTolerance = GatewayConfigSchema.properties.RATIO_TOLERANCE.default as number;
    const dataset = (width: number, height: number, ratio: boolean, tolerance = defaultTolerance) => ({
      img_width: width,
      img_height: height,
      maintain_ratio: ratio,
      ratio_tolerance: tolerance,
    });
    const cases: [number, number, ReturnType<typeof dataset>][] = [
      [64, 64, dataset(64, 64, false)],
      [63, 640, dataset(64, 64, false)],
      [640, 63, dataset(64, 64, true)],
      [200, 100, dataset(64, 64, true)],
      [1300, 1024, dataset(1280, 1024, true)], // 1.56% off
      [1300, 1024, dataset(1280, 1024, true, 0.02)], // 1.56% off, within a gateway's 2%
      [1290, 1024, dataset(1280, 1024, true)], // 0.78% off
      [4000, 3000, dataset(1024, 768, true)],
    ];
    const expected = cases.map(([width, height, d]) =>
      imageRuleViolation(width, height, {
        minWidth: d.img_width,
        minHeight: d.img_height,
        maintainRatio: d.maintain_ratio,
        ratioTolerance: d.ratio_tolerance,
        maxPixels: Infinity,
        maxDecodedBytes: Infinity,
      }),
    );
    expect(expected.filter((violation) => violation !== null)).toHaveLength(4);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(system.gatewayUrl);
    const inBrowser = await page.evaluate<(string | null)[]>(
      `import('/images.js').then((m) => ${JSON.stringify(cases)}.map(([w, h, d]) => m.ruleViolation(w, h, d)))`,
    );
    expect(inBrowser).toEqual(expected);
    await context.close();
  });

  it('pages through the history with the API’s own paging', async () => {
    const { client, key, datasetId } = await newUser('archivist');
    const ids: string[] = [];
    for (let seed = 1; seed <= 7; seed++) {
      const sent = await client.post(
        `/v1/datasets/${datasetId}/classifications`,
        imageForm(await renderSample('dark', { seed })),
      );
      expect(sent.status).toBe(202);
      ids.push(sent.body.id as string);
    }
    const newestFirst = [...ids].reverse();
    const { page, errors, close } = await openPage(key);
    const shown = () =>
      page
        .locator('#history-rows tr')
        .evaluateAll((rows: { dataset: { request?: string } }[]) => rows.map((r) => r.dataset.request));

    await page.selectOption('#page-size', '5');
    await waitFor('page 1 of 5', shown, (rows) => rows.join() === newestFirst.slice(0, 5).join());
    expect(await page.locator('#newer').isDisabled()).toBe(true);
    await page.click('#older');
    await waitFor('page 2', shown, (rows) => rows.join() === newestFirst.slice(5).join());
    expect(await page.locator('#page-info').textContent()).toBe('Page 2');
    expect(await page.locator('#older').isDisabled()).toBe(true);
    await page.click('#newer');
    await waitFor('page 1 again', shown, (rows) => rows.join() === newestFirst.slice(0, 5).join());
    expect(errors).toEqual([]);
    await close();
  });

  it('waits for Retry-After when the gateway is busy and retries with the same Idempotency-Key', async () => {
    const { key } = await newUser('patient');
    // A gateway that refuses a submission while one job waits, and no worker to take it.
    await system.kill('gateway');
    await system.start('gateway', { MAX_QUEUED_JOBS: '1', MAX_BACKLOG_SECONDS: '0' });
    await system.kill('inference');
    try {
      const { page, errors, submissions, close } = await openPage(key);
      await page.setInputFiles('#images', [png('first.png', await renderSample('dark', { seed: 11 }))]);
      await waitForState(page, 'first.png', 'queued');
      await page.setInputFiles('#images', [png('second.png', await renderSample('bright', { seed: 12 }))]);
      await waitForState(page, 'second.png', 'retrying');
      expect(await card(page, 'second.png').locator('.detail').textContent()).toMatch(
        /^OVERLOADED: .*; trying again in \d+ s$/,
      );

      await system.start('inference');
      await waitForState(page, 'first.png', 'classified');
      await waitForState(page, 'second.png', 'classified');
      const second = submissions.slice(1);
      expect(second.length).toBeGreaterThanOrEqual(2);
      expect(new Set(second.map((s) => s.idempotencyKey)).size).toBe(1);
      expect(second[0]!.idempotencyKey).toMatch(/^model-[0-9a-f]{24}-[0-9a-f]{64}$/);
      expect(
        await system.db.models.ClassificationRequest.countDocuments({ idempotency_key: second[0]!.idempotencyKey }),
      ).toBe(1);
      expect(errors).toEqual([]);
      await close();
    } finally {
      // The system as the other tests expect it: a gateway of the default settings, and a worker.
      await system.kill('gateway');
      await system.start('gateway');
      await system.kill('inference');
      await system.start('inference');
    }
  });
});
