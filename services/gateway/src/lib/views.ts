// What the API returns for each record: explicit, so no internal field leaks by accident.
import type { InputSpec } from '@cxr/contracts';
import type { RequestRecord, ResultRecord } from '@cxr/db';
import type { Types } from 'mongoose';

type Id = Types.ObjectId;

export function userView(user: { _id: Id; username: string; is_admin: boolean; created_at?: Date }) {
  return { id: String(user._id), username: user.username, is_admin: user.is_admin, created_at: user.created_at };
}

/** A dataset, with the ratio tolerance this gateway applies to it (RATIO_TOLERANCE). */
export function datasetView(
  d: {
    _id: Id;
    owner: Id;
    name: string;
    display_name: string;
    description?: string | null;
    img_width: number;
    img_height: number;
    maintain_ratio: boolean;
    visibility?: string | null;
    default_model?: Id | null;
    created_at?: Date;
    updated_at?: Date;
  },
  ratioTolerance: number,
) {
  return {
    id: String(d._id),
    owner: String(d.owner),
    name: d.name,
    display_name: d.display_name,
    description: d.description ?? '',
    img_width: d.img_width,
    img_height: d.img_height,
    maintain_ratio: d.maintain_ratio,
    ratio_tolerance: ratioTolerance,
    visibility: d.visibility ?? 'private',
    default_model: d.default_model ? String(d.default_model) : null,
    created_at: d.created_at,
    updated_at: d.updated_at,
  };
}

export function modelView(
  m: {
    _id: Id;
    dataset: Id;
    name: string;
    version: number;
    status: string;
    labels: string[];
    input_spec: unknown;
    input_name: string;
    output_name: string;
    blob: { size: number; sha256: string };
    uploaded_on: Date;
    retired_on?: Date | null;
  },
  defaultModel: Id | null | undefined,
) {
  return {
    id: String(m._id),
    dataset: String(m.dataset),
    name: m.name,
    version: m.version,
    status: m.status,
    is_default: defaultModel ? String(defaultModel) === String(m._id) : false,
    labels: m.labels,
    // Stored only after it was checked against InputSpec (POST /v1/datasets/:id/models).
    input_spec: m.input_spec as InputSpec,
    input_name: m.input_name,
    output_name: m.output_name,
    size: m.blob.size,
    sha256: m.blob.sha256,
    uploaded_on: m.uploaded_on,
    retired_on: m.retired_on ?? null,
  };
}

/** Clients see one waiting state: a job not yet confirmed by the broker is queued as far as they can tell. */
export function publicState(state: string): string {
  return state === 'accepted' ? 'queued' : state;
}

/**
 * A classification request as its submitter or its dataset's owner sees it (GET
 * /v1/classifications/:id, and the body of its webhook without `webhook`). The result, when
 * there is one, is the truth about the outcome; the request's state may lag it briefly.
 */
export function classificationView(request: RequestRecord, result: ResultRecord | null) {
  const webhook = request.webhook;
  return {
    id: String(request._id),
    state: result ? result.state : publicState(request.state),
    dataset: String(request.dataset),
    model: String(request.model),
    submitter: String(request.submitter),
    priority: request.priority,
    image: {
      format: request.image.format,
      width: request.image.width,
      height: request.image.height,
      size: request.image.size,
      sha256: request.image.sha256,
    },
    result: result?.classification ?? null,
    errors: result?.errors ?? [],
    worker: result?.worker ?? request.worker ?? null,
    attempts: request.attempts,
    dispatches: request.dispatches,
    timings: (result?.timings ?? {}) as Record<string, number>,
    created_at: request.created_at,
    dispatched_at: request.dispatched_at,
    assigned_on: request.assigned_on,
    completed_at: result?.completed_on ?? null,
    webhook: webhook
      ? {
          url: webhook.url,
          status: webhook.status,
          attempt_count: webhook.attempt_count,
          attempts: webhook.attempts.map((a) => ({
            at: a.at,
            status_code: a.status_code ?? null,
            error: a.error ?? null,
            duration_ms: a.duration_ms,
          })),
        }
      : null,
  };
}
