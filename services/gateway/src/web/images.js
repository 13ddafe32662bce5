// What the page checks in the browser before it sends an image, with the same rules and words
// as the gateway (services/gateway/src/lib/image-rules.ts), and the Idempotency-Key of a file.

/** The dataset's rules, in words, for the page to show before anything is sent. */
export function describeRules(dataset) {
  const size = `at least ${dataset.img_width}×${dataset.img_height} pixels`;
  const ratio = dataset.maintain_ratio
    ? `, in the ratio ${dataset.img_width}:${dataset.img_height} (within ${dataset.ratio_tolerance * 100}%)`
    : '';
  return `PNG or JPEG, ${size}${ratio}.`;
}

/**
 * What is wrong with an image of this size for the dataset, or null: the gateway's rule and
 * message, with the tolerance the gateway states on the dataset.
 */
export function ruleViolation(width, height, dataset) {
  const { img_width: minWidth, img_height: minHeight, ratio_tolerance: tolerance } = dataset;
  if (width < minWidth || height < minHeight) {
    return `image is ${width}x${height}; this dataset needs at least ${minWidth}x${minHeight}`;
  }
  if (dataset.maintain_ratio) {
    const expected = minWidth / minHeight;
    const actual = width / height;
    const off = Math.abs(actual - expected) / expected;
    if (off > tolerance) {
      return (
        `image ratio ${width}:${height} (${actual.toFixed(4)}) differs from this dataset's ` +
        `${minWidth}:${minHeight} (${expected.toFixed(4)}) by ${(off * 100).toFixed(2)}%; ` +
        `the tolerance is ${(tolerance * 100).toFixed(2)}%`
      );
    }
  }
  return null;
}

/** 'png', 'jpeg' or null, from the file's first bytes (its name and type may say anything). */
async function sniffFormat(file) {
  const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.every((byte, i) => head[i] === byte)) return 'png';
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Checks a dropped file against the dataset's rules, decoding it in the preview `img` (whose
 * natural size follows the EXIF orientation, as the gateway's check does). Answers
 * `{refusal}` with the reason to refuse it, or `{width, height}` (null when this browser
 * cannot decode it: then the gateway, which reads the header, decides).
 */
export async function checkImage(file, dataset, img) {
  const format = await sniffFormat(file);
  if (!format) return { refusal: 'the file is not a PNG or JPEG' };
  try {
    await img.decode();
  } catch {
    return { width: null, height: null };
  }
  const refusal = ruleViolation(img.naturalWidth, img.naturalHeight, dataset);
  return refusal ? { refusal } : { width: img.naturalWidth, height: img.naturalHeight };
}

/**
 * The Idempotency-Key of a file for a model, as @cxr/client makes it: the file's SHA-256 with the
 * model's id, so the same image to the same model is one request, retried or dropped again.
 * crypto.subtle exists only in a secure context (HTTPS, or this machine): elsewhere a random key,
 * which still makes this page's retries of the file safe.
 */
export async function idempotencyKey(file, modelId) {
  const bytes = crypto.subtle
    ? new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()))
    : crypto.getRandomValues(new Uint8Array(32));
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `model-${modelId}-${hex}`;
}
