import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ObjectNotFoundError, ObjectTooLargeError } from './errors';

export interface ObjectStoreConfig {
  /** Unset for AWS S3; any S3-compatible endpoint otherwise (MinIO, VersityGW, Ceph…). */
  endpoint?: string | undefined;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

export interface PutOptions {
  contentType: string;
  /** Known length lets a single PUT stream the body; unknown length uses multipart upload. */
  contentLength?: number;
  metadata?: Record<string, string>;
  /**
   * The body's SHA-256 (hex), when the caller has it already: it is signed as the payload hash
   * instead of the SDK hashing the body again, and the server still checks the body against it.
   */
  sha256?: string;
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404)
  );
}

/** The plain S3 API only (no vendor extensions), so any S3 service works. */
export class ObjectStore {
  private closed = false;

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  /** From the S3_* variables every service validates with the same schema. */
  static fromEnv(env: {
    S3_ENDPOINT?: string | undefined;
    S3_REGION: string;
    S3_ACCESS_KEY_ID: string;
    S3_SECRET_ACCESS_KEY: string;
    S3_BUCKET: string;
  }): ObjectStore {
    return ObjectStore.fromConfig({
      endpoint: env.S3_ENDPOINT,
      region: env.S3_REGION,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
      bucket: env.S3_BUCKET,
    });
  }

  static fromConfig(config: ObjectStoreConfig): ObjectStore {
    const client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      // Path-style addressing: self-hosted S3 servers rarely have wildcard DNS for buckets.
      forcePathStyle: true,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      // Checksums only when the operation requires them: not every S3 server knows the newer ones.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return new ObjectStore(client, config.bucket);
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /** Throws when the bucket cannot be reached: used by health checks. */
  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions): Promise<void> {
    if (Buffer.isBuffer(body) || options.contentLength !== undefined) {
      const command = new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: options.contentType,
        ContentLength: Buffer.isBuffer(body) ? body.length : options.contentLength,
        Metadata: options.metadata,
      });
      const { sha256 } = options;
      if (sha256 !== undefined) {
        if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TypeError('sha256 must be 64 lowercase hex digits');
        // SigV4 signs a payload hash found in this header as it is (@smithy/signature-v4 getPayloadHash).
        command.middlewareStack.add(
          (next) => async (args) => {
            (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256;
            return next(args);
          },
          { step: 'build', name: 'precomputedPayloadHash' },
        );
      }
      await this.client.send(command);
      return;
    }
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: options.contentType,
        Metadata: options.metadata,
      },
      queueSize: 2,
      partSize: 8 * 1024 * 1024,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async getStream(key: string): Promise<{ stream: Readable; size: number | undefined }> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { stream: response.Body as Readable, size: response.ContentLength };
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
  }

  /** Reads a whole object, refusing one larger than `maxBytes`. */
  async getBuffer(key: string, maxBytes: number): Promise<Buffer> {
    const { stream, size } = await this.getStream(key);
    if (size !== undefined && size > maxBytes) {
      stream.destroy();
      throw new ObjectTooLargeError(key, maxBytes);
    }
    if (size !== undefined) {
      // The length is known: each chunk is copied into one buffer as it comes. Keeping the
      // chunks for a concat at the end costs twice the CPU on a 3 MB image (they outlive the
      // young generation and the collector moves them).
      const whole = Buffer.allocUnsafe(size);
      let at = 0;
      for await (const chunk of stream) {
        const buffer = chunk as Buffer;
        if (at + buffer.length > size) {
          stream.destroy();
          throw new Error(`object ${key} sent more than its Content-Length of ${size} bytes`);
        }
        buffer.copy(whole, at);
        at += buffer.length;
      }
      if (at !== size) throw new Error(`object ${key} ended after ${at} of its ${size} bytes`);
      return whole;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > maxBytes) {
        stream.destroy();
        throw new ObjectTooLargeError(key, maxBytes);
      }
      chunks.push(buffer);
    }
    return Buffer.concat(chunks, total);
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Deletes every object and then the bucket: for tests that made their own bucket. */
  async destroyBucket(): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        if (object.Key) await this.delete(object.Key);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await this.client.send(new DeleteBucketCommand({ Bucket: this.bucket }));
  }

  async listKeys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }
}
