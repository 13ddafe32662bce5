// Issue 8, finding 5: damaged images that the gateway accepts from their header (it never
// decodes pixels) end `failed` with IMAGE_CORRUPT when inference decodes them strictly, never
// with a classification made up from what the decoder guessed. Garbage inside a JPEG's
// entropy-coded data is covered only where libjpeg reports it (preprocess.test.ts): JPEG has no
// checksum, and SECURITY.md says what that leaves.
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(180_000);

interface View {
  state: string;
  result: { label: string } | null;
  errors: { code: string; message: string }[];
}

/** A PNG whose IDAT chunk has a wrong CRC: every pixel is there, the checksum says it is damaged. */
async function pngWithBadCrc(): Promise<Buffer> {
  const png = Buffer.from(await renderSample('striped', { seed: 3 }));
  const idat = png.indexOf('IDAT');
  png[idat + 4 + png.readUInt32BE(idat - 4)]! ^= 0xff; // the first byte of the chunk's CRC
  return png;
}

/** A JPEG cut in the middle of its scan: libjpeg only warns ("premature end") and would fill in grey. */
async function truncatedJpeg(): Promise<Buffer> {
  const jpeg = await renderSample('striped', { seed: 3, format: 'jpeg' });
  return jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
}

describe('corrupt images: accepted from their header, then failed IMAGE_CORRUPT by inference, never classified', () => {
  let system: System;
  let user: Client;
  let datasetId: string;

  beforeAll(async () => {
    system = await startSystem();
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'ivan')).client;
    ({ datasetId } = await datasetWithDemoModel(user, 'corrupt', 'Corrupt'));
  });
  afterAll(async () => {
    await system?.stop();
  });

  it.each([
    ['a PNG with a bad CRC', pngWithBadCrc, /libpng read error/],
    ['a JPEG cut in the middle of its scan', truncatedJpeg, /premature end of JPEG/i],
  ])('%s ends failed IMAGE_CORRUPT with the decoder’s reason', async (_name, make, reason) => {
    const response = await user.post(`/v1/datasets/${datasetId}/classifications`, imageForm(await make()));
    expect(response.status).toBe(202);
    const id = response.body.id as string;
    const view = await user.get<View>(`/v1/classifications/${id}?wait=60`);
    expect(view.body).toMatchObject({ state: 'failed', result: null });
    expect(view.body.errors).toHaveLength(1);
    expect(view.body.errors[0]!.code).toBe('IMAGE_CORRUPT');
    expect(view.body.errors[0]!.message).toMatch(reason);
    expect(await system.db.models.ClassificationResult.countDocuments({ request: id })).toBe(1);
  });
});
