// What the load tools (bench, flood) send: a multipart body encoded once, POSTed as bytes.
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';

/** A multipart/form-data body with one file part, as a browser or curl sends it. */
export function multipartFile(
  field: string,
  bytes: Buffer,
  filename: string,
  type: string,
): { body: Buffer; contentType: string } {
  const boundary = `----cxr-${randomBytes(12).toString('hex')}`;
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\n` +
    `Content-Type: ${type}\r\n\r\n`;
  return {
    body: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** POSTs ready bytes with node:http (fetch copies a byte body before it sends it). */
export function postBytes(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  agent: http.Agent,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolvePost, reject) => {
    const request = http.request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (piece: string) => (text += piece));
        response.on('end', () => resolvePost({ status: response.statusCode ?? 0, headers: response.headers, text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
