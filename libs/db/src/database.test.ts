import { isDuplicateKeyError } from './database';

describe('isDuplicateKeyError', () => {
  it("recognises MongoDB's duplicate key code", () => {
    expect(isDuplicateKeyError({ code: 11000, message: 'E11000 duplicate key' })).toBe(true);
  });

  it("recognises FerretDB's unique violation on update, which has no 11000 code", () => {
    expect(
      isDuplicateKeyError({
        code: 1,
        message: "constraint failed: UNIQUE constraint failed: index 'users_username_1' (2067)",
      }),
    ).toBe(true);
  });

  it('recognises the same on the PostgreSQL backend', () => {
    expect(
      isDuplicateKeyError({
        code: 1,
        message:
          '[msg_update.go:133 handler.(*Handler).updateDocument] [collection.go:218 postgresql.(*collection).UpdateAll.func1] ' +
          'ERROR: duplicate key value violates unique constraint "u_f00c3c10_name___318aadbe_idx" (SQLSTATE 23505)',
      }),
    ).toBe(true);
  });

  it('leaves other errors alone', () => {
    expect(isDuplicateKeyError({ code: 1, message: 'internal error' })).toBe(false);
    expect(isDuplicateKeyError({ code: 1, message: 'ERROR: deadlock detected (SQLSTATE 40P01)' })).toBe(false);
    expect(isDuplicateKeyError(new Error('E11000'))).toBe(false);
    expect(isDuplicateKeyError(null)).toBe(false);
  });
});
