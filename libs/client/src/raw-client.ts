// A raw HTTP client: any method, path and body, answers untyped. For tests and tools that send what
// the typed client (cxr-client.ts) would refuse to: malformed bodies, bad keys, hostile multipart.
export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export class Client {
  constructor(
    readonly baseUrl: string,
    readonly apiKey?: string,
  ) {}

  withKey(apiKey: string): Client {
    return new Client(this.baseUrl, apiKey);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}`, ...extra } : extra;
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const init: RequestInit = { method, headers: this.headers(headers) };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed as T };
  }

  get<T = Record<string, unknown>>(path: string) {
    return this.request<T>('GET', path);
  }
  post<T = Record<string, unknown>>(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, body, headers);
  }
  patch<T = Record<string, unknown>>(path: string, body: unknown) {
    return this.request<T>('PATCH', path, body);
  }
  put<T = Record<string, unknown>>(path: string, body: unknown) {
    return this.request<T>('PUT', path, body);
  }
  delete<T = Record<string, unknown>>(path: string) {
    return this.request<T>('DELETE', path);
  }
}

export function modelForm(file: Buffer, labels: unknown, inputSpec: unknown, name = 'demo'): FormData {
  const form = new FormData();
  form.append('name', name);
  form.append('labels', typeof labels === 'string' ? labels : JSON.stringify(labels));
  form.append('input_spec', typeof inputSpec === 'string' ? inputSpec : JSON.stringify(inputSpec));
  form.append('file', new Blob([file]), 'model.onnx');
  return form;
}

export function imageForm(image: Buffer, filename = 'image.png'): FormData {
  const form = new FormData();
  form.append('image', new Blob([image]), filename);
  return form;
}

/** Creates a user with the bootstrap admin key and returns a client holding the user's key. */
export async function createUser(admin: Client, username: string): Promise<{ client: Client; id: string }> {
  const created = await admin.post<{ user: { id: string }; api_key: { key: string } }>('/v1/users', { username });
  if (created.status !== 201)
    throw new Error(`creating user ${username}: ${created.status} ${JSON.stringify(created.body)}`);
  return { client: admin.withKey(created.body.api_key.key), id: created.body.user.id };
}
