// The web page in a real browser (Debian's headless Chromium, driven by playwright-core) against
// the running system: a user types their key, picks a dataset, sends an image and sees its label
// with one score bar per label. infra/test.sh installs Chromium; CHROMIUM_PATH overrides where.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { DEMO_LABELS, renderSample } from '@cxr/demo-model';
import { Client } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

const SCREENSHOT = join(__dirname, '../../.state/artifacts/web-page.png');

describe('the web page classifies an image in a browser', () => {
  let system: System;
  let browser: Browser;
  let apiKey: string;

  beforeAll(async () => {
    system = await startSystem();
    const admin = new Client(system.gatewayUrl, system.adminKey);
    const created = await admin.post<{ api_key: { key: string } }>('/v1/users', { username: 'radiologist' });
    apiKey = created.body.api_key.key;
    await datasetWithDemoModel(admin.withKey(apiKey), 'ward-7', 'Ward 7 chest films');
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
  });
  afterAll(async () => {
    await browser?.close();
    await system?.stop();
  });

  it('shows the label and a score bar per label, and says what is wrong with a bad key', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      // The browser itself logs each answer of 4xx it loads (the bad key's 401 below).
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) errors.push(message.text());
    });
    const response = await page.goto(system.gatewayUrl);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");

    await page.fill('#api-key', `cxr_${'0'.repeat(16)}_${'A'.repeat(43)}`);
    await page.click('#key-form button');
    await expect(page.locator('#status.error').textContent()).resolves.toMatch(/API key is not valid/);

    await page.fill('#api-key', apiKey);
    await page.click('#key-form button');
    await page.locator('#classify-form').waitFor({ state: 'visible' });
    expect(await page.locator('#dataset option').allTextContents()).toEqual(['Ward 7 chest films (ward-7)']);

    const image = await renderSample('striped', { width: 256, height: 256 });
    await page.setInputFiles('#image', { name: 'film.png', mimeType: 'image/png', buffer: image });
    await page.click('#classify');
    await page.locator('#outcome').waitFor({ state: 'visible', timeout: 60_000 });

    expect(await page.locator('#label').textContent()).toBe('striped');
    const rows = page.locator('#scores li');
    expect((await rows.allTextContents()).map((row) => row.replace(/[\d.]+$/, ''))).toEqual(
      expect.arrayContaining([...DEMO_LABELS]),
    );
    expect(await rows.count()).toBe(DEMO_LABELS.length);
    expect(await page.locator('#scores li.top').textContent()).toMatch(/^striped/);
    // The bars are drawn: the top label's is wider than the others'.
    const bars = await page.locator('#scores .bar span').all();
    const widths = await Promise.all(bars.map(async (bar) => (await bar.boundingBox())?.width ?? 0));
    expect(widths[0]).toBeGreaterThan(Math.max(...widths.slice(1)));
    expect(await page.locator('#status').textContent()).toBe('Done: classified.');
    expect(errors).toEqual([]);

    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });
});
