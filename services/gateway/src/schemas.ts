// Request schemas shared by validation, TypeScript types and the OpenAPI document.
import { Type } from '@sinclair/typebox';

export const ObjectIdParam = Type.String({ pattern: '^[0-9a-f]{24}$', description: 'a 24-character hex id' });
export const IdParams = Type.Object({ id: ObjectIdParam });

export const Username = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$',
  description: '3-64 letters, digits, . _ -',
});

export const CreateUserBody = Type.Object(
  { username: Username, is_admin: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export const RenameUserBody = Type.Object({ username: Username }, { additionalProperties: false });
export const CreateKeyBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false },
);
export const KeyParams = Type.Object({ keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }) });

export const DatasetName = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: 'short: lowercase letters, digits and -, at most 63',
});
const Side = Type.Integer({ minimum: 1, maximum: 16384 });
export const Visibility = Type.Union([Type.Literal('private'), Type.Literal('public')], {
  description: 'public datasets can be read and classified against by every user; only the owner changes them',
});

export const CreateDatasetBody = Type.Object(
  {
    name: DatasetName,
    display_name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 5000 })),
    img_width: Side,
    img_height: Side,
    maintain_ratio: Type.Optional(Type.Boolean()),
    visibility: Type.Optional(Visibility),
  },
  { additionalProperties: false },
);
export const UpdateDatasetBody = Type.Partial(CreateDatasetBody, { additionalProperties: false, minProperties: 1 });

export const SetDefaultModelBody = Type.Object({ model_id: ObjectIdParam }, { additionalProperties: false });

export const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  before: Type.Optional(ObjectIdParam),
});

export const ListClassificationsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  before: Type.Optional(ObjectIdParam),
  dataset: Type.Optional(ObjectIdParam),
  model: Type.Optional(ObjectIdParam),
  state: Type.Optional(
    Type.Union([Type.Literal('queued'), Type.Literal('assigned'), Type.Literal('classified'), Type.Literal('failed')]),
  ),
  role: Type.Optional(
    Type.Union([Type.Literal('submitter'), Type.Literal('owner')], {
      description: 'only requests I submitted, or only requests to my datasets; both by default',
    }),
  ),
});

export const WaitQuery = Type.Object({
  wait: Type.Optional(
    Type.Number({ minimum: 0, maximum: 60, description: 'seconds to hold the answer until the request ends' }),
  ),
});

export const SubmitQuery = Type.Object({
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 9, default: 0 })),
});
